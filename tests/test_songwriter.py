"""A song from one line (``songwriter``, *Write it* on Generate, ``/write_song``): upstream's
inspiration prompt, the planner's fields and lyrics, reproducible from the seed, written into the
fields a visitor left empty, and bad ideas refused with a message."""

from __future__ import annotations

import gradio as gr
import pytest
from gradio_client.exceptions import ValidationError

import checks
import describe
import duration_estimate
import plan_format
import planner
import random_models
import songwriter
from scripted_planner import LONG_CAPTION, LONG_CAPTION_WHEN, ScriptedLM, script_with

IDEA = "a rainy-day bossa nova about missing the last train"


def test_the_prompt_is_upstreams_inspiration_prompt():
    tokenizer = random_models.build_tokenizer()
    tokenizer.chat_template = random_models.PLANNER_CHAT_TEMPLATE
    text = plan_format.inspiration_prompt(tokenizer, IDEA, instrumental=True)
    # upstream's build_formatted_prompt_for_inspiration: "# Instruction\n{instruction}\n\n" as the system
    # message, "{query}\n\ninstrumental: true" as the user's.
    assert "# Instruction\nExpand the user's input into a more detailed and specific musical description:\n\n" in text
    assert f"<|im_start|>user\n{IDEA}\n\ninstrumental: true<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_an_idea_becomes_a_song_and_its_seed_writes_it_again(with_planner, monkeypatch):
    # The lyrics' length is not the point here (their cap: test_describe_and_write_it_call_the_planner_as_
    # upstream_does): the tiny random planner writes to its cap, so the cap is a short one.
    monkeypatch.setattr(songwriter, "LYRIC_TOKENS", 32)
    first = songwriter.write(IDEA, False, checks.UNKNOWN, 7)
    again = songwriter.write(IDEA, False, checks.UNKNOWN, 7)
    assert first["fields"] == again["fields"] and first["lyrics"] == again["lyrics"] and first["seed"] == 7
    fields = first["fields"]
    assert set(fields) == set(plan_format.FIELDS) and 10 <= fields["duration"] <= songwriter.LONGEST
    caption, lyrics, bpm, key, metre, length, language = songwriter.values(first)
    assert checks.check_bpm(bpm) == bpm and checks.check_key(key) and metre in checks.TIME_SIGNATURES
    assert length == fields["duration"] and language in checks.LANGUAGES and lyrics != checks.INSTRUMENTAL_TAG
    assert songwriter.write(IDEA, False, checks.UNKNOWN, 8) != first  # another seed, another song


def test_instrumental_writes_no_words_and_a_chosen_language_is_kept(with_planner):
    written = songwriter.write(IDEA, True, "pt", 3)
    assert written["lyrics"] == checks.INSTRUMENTAL_TAG and written["fields"]["language"] == "pt"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"idea": "  "}, "Write an idea for the song first"),
        ({"idea": "x" * 501}, "at most 500 characters; yours has 501"),
        ({"idea": IDEA, "vocal_language": "klingon"}, "Unknown vocal language"),
        ({"idea": IDEA, "seed": 2.5}, "Seed must be a whole number"),
        ({"idea": IDEA, "instrumental": "maybe"}, "Instrumental"),
    ],
)
def test_a_bad_idea_is_refused_with_a_message(with_planner, kwargs, message):
    with pytest.raises(gr.Error, match=message):
        songwriter.check(**kwargs)


def test_without_a_planner_the_box_says_so(monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_PLANNER_MODEL", "none")
    with pytest.raises(gr.Error, match="needs ACE-Step's planner"):
        songwriter.check(IDEA)


def test_only_the_empty_fields_are_filled_and_the_note_says_which_were_kept():
    written = {
        "fields": {
            "bpm": 96,
            "caption": "bossa nova, nylon guitar",
            "duration": 150,
            "keyscale": "Db major",
            "language": "pt",
            "timesignature": "4",
        },
        "lyrics": "[Verse]\nthe last train",
        "seed": 5,
        "seconds": 1.0,
    }
    form = {
        "prompt": "",
        "lyrics": "[Verse]\nmine",
        "bpm": 0,
        "key_scale": "auto",
        "time_signature": "3",
        "audio_duration": 30,
        "vocal_language": "unknown",
    }
    values, note = songwriter.fill(written, form)
    assert values == ["bossa nova, nylon guitar", "[Verse]\nmine", 96, "C# major", "3", 150, "pt"]
    assert "Kept yours: Lyrics, Time signature." in note and "seed 5" in note and "2:30" in note
    # A planner that wrote no words leaves the lyrics as they were, and says so.
    values, note = songwriter.fill({**written, "lyrics": ""}, {**form, "lyrics": ""})
    assert values[1] == "" and "wrote no words" in note and "Lyrics" not in note


def test_describe_and_write_it_call_the_planner_as_upstream_does(with_planner, monkeypatch):
    """One row, no guidance, temperature 0.85 with no top-k or top-p (upstream's ``understand_music`` and
    ``create_sample`` defaults), and never more tokens than upstream's cap on such a generation (3,500)."""
    lm = planner.get_planner()
    draws, rows = [], []
    real = describe.sample

    def spy(logits, generator, temperature, top_p):
        draws.append((temperature, top_p))
        return real(logits, generator, temperature, top_p)

    monkeypatch.setattr(describe, "sample", spy)
    hook = lm.model.register_forward_pre_hook(
        lambda _m, _a, kw: rows.append(kw["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        prompt = plan_format.understand_prompt(lm.tokenizer, [7, 8, 9] * 10)
        describe.understand(lm, prompt, {"duration": 10}, describe.lyric_budget(10))
        songwriter.write(IDEA, False, checks.UNKNOWN, 7)
    finally:
        hook.remove()
    assert set(rows) == {1} and set(draws) == {(0.85, None)} and len(draws) > 20
    assert plan_format.MAX_NEW_TOKENS == 3500
    assert describe.NOTES_BUDGET + describe.LYRIC_TOKENS_MAX <= plan_format.MAX_NEW_TOKENS
    assert describe.NOTES_BUDGET + songwriter.LYRIC_TOKENS <= plan_format.MAX_NEW_TOKENS


def test_the_declaration_covers_every_token_it_may_write(with_planner):
    tokens = songwriter.describe.NOTES_BUDGET + songwriter.LYRIC_TOKENS
    assert songwriter.estimate_seconds() >= tokens * duration_estimate.PRIOR["planner_per_code"]
    assert 60 <= songwriter.estimate_duration() <= 300


# ---------------------------------------------------------------- through the API


def test_write_song_through_the_api(studio_server, monkeypatch):
    from gradio_client import Client

    # The lyrics' length is not the point (the tiny random planner writes to its cap): a short cap, read
    # by this process's studio.
    monkeypatch.setattr(songwriter, "LYRIC_TOKENS", 32)
    client = Client(studio_server[0], verbose=False)
    first = client.predict(idea=IDEA, seed=11, api_name="/write_song")
    caption, lyrics, bpm, key, metre, length, note = first
    assert isinstance(caption, str) and isinstance(lyrics, str) and 30 <= bpm <= 300 and checks.check_key(key) and metre
    assert 10 <= length <= songwriter.LONGEST and note.startswith("**Written** (seed 11")
    again = client.predict(idea=IDEA, seed=11, api_name="/write_song")
    assert again[:6] == first[:6]
    instrumental = client.predict(idea=IDEA, instrumental=True, vocal_language="ja", seed=1, api_name="/write_song")
    assert instrumental[1] == checks.INSTRUMENTAL_TAG and "Japanese" in instrumental[-1]
    with pytest.raises(Exception, match="Write an idea for the song first"):
        client.predict(idea="", api_name="/write_song")
    # An idea is up to 500 characters at the admission check as in the box.
    long = ("a slow waltz about the harbour lights, " * 20)[: checks.MAX_IDEA_CHARS]
    assert client.predict(idea=long, seed=3, api_name="/write_song")[-1].startswith("**Written** (seed 3")
    with pytest.raises(ValidationError, match=f"idea: .*up to {checks.MAX_IDEA_CHARS} characters; it has 501"):
        client.predict(idea=long + "!", api_name="/write_song")
    # The studio goes on serving after a refusal.
    assert client.predict(idea="lo-fi beat for studying", seed=2, api_name="/write_song")[-1].startswith("**Written**")


def test_stop_ends_the_writing_at_the_next_token(with_planner):
    import runs

    owner = "visitor:generate"
    run_id = runs.start_run(owner)
    written: list[int] = []

    def progress(stage: str, done: int) -> None:
        written.append(done)
        runs.request_stop(owner)  # Stop clicked as the first token is written

    try:
        with pytest.raises(gr.Error, match="Stopped while the planner wrote"):
            songwriter.write(IDEA, False, checks.UNKNOWN, 3, progress, run_id)
    finally:
        runs.finish_run(run_id)
    assert written == [1]


def test_write_songs_caption_fits_what_the_music_model_reads(studio_server, monkeypatch):
    """What the planner writes for Generate is never refused there. Through the API,
    the planner made to write a caption past what the music model reads: the caption comes back cut at
    its last phrase that fits, the note says so, and Generate takes it as it is."""
    from gradio_client import Client

    built = planner.get_planner()
    asked = ScriptedLM(built.model, built.tokenizer, built.vocab, script_with(LONG_CAPTION), None, LONG_CAPTION_WHEN)
    monkeypatch.setattr(built, "model", asked)
    client = Client(studio_server[0], verbose=False)
    caption, *_, note = client.predict(idea=f"jazz, {LONG_CAPTION_WHEN}", seed=4, api_name="/write_song")
    assert LONG_CAPTION.startswith(caption) and LONG_CAPTION[len(caption)] == "," and "cut to fit" in note
    made = client.predict(prompt=caption, audio_duration=10, inference_steps=1, think=False, api_name="/generate")
    assert made[-1]["params"]["prompt"] == caption
