"""*Describe my song*: the planner reads an upload's audio codes and fills the empty fields.

Upstream's prompt and lyric reading are compared with its literal strings (``acestep/constants.py``,
``acestep/llm_inference.py``), the notes' constraints with out-of-range wishes, and the whole path
runs on the tiny random models; the served page and API (``test_api``, ``test_browser``) and the
ZeroGPU harness (``test_zerogpu``) run it from outside.
"""

from __future__ import annotations

import math

import gradio as gr
import numpy as np
import pytest
import soundfile as sf
import torch

import analysis
import backend
import checks
import describe
import plan_constraints
import plan_format
import planner
import runs
import text_limits
from test_audio_modes import tone
from test_planner import _drive


@pytest.fixture(scope="module")
def lm(tiny_planner_dir):
    """The tiny planner, built once for this module (Describe's prompts and notes use its tokenizer)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ACE_STUDIO_PLANNER_MODEL", str(tiny_planner_dir))
    planner.reset_planner()
    yield planner.get_planner()
    planner.reset_planner()
    mp.undo()


# acestep/constants.py, DEFAULT_LM_UNDERSTAND_INSTRUCTION, copied as it stands there.
UPSTREAM_UNDERSTAND = "Understand the given musical conditions and describe the audio semantics accordingly:"


def test_the_prompt_is_upstreams_understanding_prompt(lm):
    tok = lm.tokenizer
    assert plan_format.UNDERSTAND_INSTRUCTION == UPSTREAM_UNDERSTAND
    # build_formatted_prompt_for_understanding: the instruction as the system message, the codes as the
    # whole user message, then the assistant message opened.
    assert plan_format.understand_prompt(tok, [7, 63999]) == (
        f"<|im_start|>system\n# Instruction\n{UPSTREAM_UNDERSTAND}\n\n<|im_end|>\n"
        "<|im_start|>user\n<|audio_code_7|><|audio_code_63999|><|im_end|>\n<|im_start|>assistant\n"
    )


def test_the_lyrics_are_read_as_upstream_reads_them():
    # _extract_lyrics_from_output: what follows </think>, its "# Lyric" header and closing <|im_end|> gone.
    said = "<think>\nbpm: 96\ncaption: x\n</think>\n\n# Lyric\n[Verse]\nlow tide\n<|im_end|>"
    assert plan_format.parse_lyrics(said) == "[Verse]\nlow tide"
    assert plan_format.parse_lyrics("<think>\nbpm: 96\n") == ""  # no </think>: no lyrics
    assert plan_format.parse_lyrics("</think>\n[Instrumental]") == "[Instrumental]"
    # Upstream's pattern keeps a "# Lyrics" header; the studio takes it off too.
    assert plan_format.parse_lyrics("</think>\n# Lyrics\n[Chorus]\nhey") == "[Chorus]\nhey"


def test_the_notes_keep_every_field_in_range_and_close_the_block(lm):
    tok, vocab = lm.tokenizer, lm.vocab
    end = vocab.encode("</think>")
    wanted = "<think>\nbpm: 500\ncaption: dub\nduration: 9999\nkeyscale: H minor\nlanguage: xx\ntimesignature: 7\n"
    text = _drive(plan_constraints.ThinkingConstraint(vocab, {"duration": 42}, end=end), vocab, wanted, tok)
    fields = plan_format.check_plan(plan_format.parse_plan(text))
    assert text.endswith("\n</think>") and fields["duration"] == 42 and fields["caption"] == "dub"
    # Whatever the model's scores, every field comes out in upstream's ranges.
    newline = torch.zeros(len(tok))
    newline[vocab.newline] = 4.0  # captions of a few tokens, as a trained model's, keep this quick
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        constraint = plan_constraints.ThinkingConstraint(vocab, {"duration": 42}, end=end)
        written = []
        while not constraint.done:
            scores = torch.randn(len(tok), generator=generator) + newline
            token = plan_constraints.sample(constraint.mask(scores), generator, describe.TEMPERATURE, None)
            constraint.feed(token)
            written.append(token)
        fields = plan_format.check_plan(plan_format.parse_plan(tok.decode(written)))
        assert plan_format.BPM_RANGE[0] <= fields["bpm"] <= plan_format.BPM_RANGE[1]
        assert fields["keyscale"] in plan_format.KEYSCALES and fields["language"] in plan_format.LANGUAGES
        assert fields["timesignature"] in plan_format.TIME_SIGNATURES and fields["duration"] == 42


def test_the_lyrics_take_no_codes_or_chat_markers(lm):
    """Upstream blocks only audio codes in the lyrics; the studio blocks every added token but the
    chat message's end, which ends them."""
    tok = lm.tokenizer
    ends, banned = describe._lyric_rules(lm, torch.zeros(len(tok)))
    assert tok.convert_tokens_to_ids("<|im_end|>") in ends and all(banned[t] == 0 for t in ends)
    assert torch.isinf(banned[lm.vocab.code_ids]).all()
    for marker in ("<|im_start|>", "<think>", "</think>"):
        assert torch.isinf(banned[tok.convert_tokens_to_ids(marker)])
    assert int(torch.isinf(banned).sum()) == len(set(lm.vocab.markup) - ends)  # the lyrics' own tokens stay


def test_describe_runs_on_the_tiny_models(studio_env, lm, tmp_path):
    song = np.ascontiguousarray(sf.read(str(tone(tmp_path / "song.wav", seconds=6)), dtype="float32")[0].T)
    stages = []
    heard = describe.describe_song(song, lambda stage, _: stages.append(stage))
    # One code per five 25 Hz latent frames, each a codebook index the pipeline reads back.
    assert heard["codes"] == math.ceil(6 * 25 / 5) == 30
    fields = heard["fields"]
    # The planner never guesses the length it is given (10 s at the least, upstream's range).
    assert fields == plan_format.check_plan(fields) and fields["duration"] == 10
    assert set(stages) == {"listening", "notes", "lyrics"}
    assert len(heard["lyrics"]) <= checks.MAX_LYRICS_CHARS and len(fields["caption"]) <= checks.MAX_CAPTION_CHARS
    codes = backend.get_backend().song_codes(song)
    assert len(codes) == 30 and all(0 <= c < plan_format.CODEBOOK for c in codes)
    # The same song is described the same way.
    again = describe.describe_song(song)
    assert {**again, "timings": None, "measured": None} == {**heard, "timings": None, "measured": None}
    # Stop: nothing starts, and the message says so.
    run_id = runs.start_run("someone:cover")
    runs.request_stop("someone:cover")
    with pytest.raises(gr.Error) as stopped:
        describe.describe_song(song, None, run_id)
    runs.finish_run(run_id)
    assert stopped.value.title == "Stopped" and stopped.value.message == describe.messages.DESCRIBE_STOPPED


HEARD = {
    "fields": {
        "bpm": 118,
        "caption": "dusty soul, brass",
        "duration": 12,
        "keyscale": "D♭ major",
        "language": "en",
        "timesignature": "3",
    },
    "lyrics": "[Verse]\nline one\nline two",
    "codes": 60,
    "timings": {"codes_s": 0.5, "planner_s": 1.0},
}
EMPTY = {
    "prompt": "",
    "lyrics": "",
    "vocal_language": "unknown",
    "bpm": 0,
    "key_scale": "auto",
    "time_signature": "auto",
}


def test_empty_fields_are_filled_and_the_measured_bpm_and_key_win():
    measured = analysis.Analysis(bpm=120.2, key="C# major", beats_per_bar=4, lufs=-14.0, seconds=12.0)
    values, note = describe.fill(HEARD, EMPTY, measured)
    assert values == ["dusty soul, brass", "[Verse]\nline one\nline two", "en", 120, "C# major", "4"]
    assert "BPM: planner heard 118, measured 120 — kept 120" in note
    assert "Key: C# major (the planner hears it as measured)" in note  # D♭ major is C# major
    assert "Lyrics: written — 3 lines" in note and "Time signature: planner heard 3/4, measured 4/4 — kept 4/4" in note
    # What the visitor wrote stays, and the note says what the planner heard instead.
    mine = {
        **EMPTY,
        "prompt": "my style",
        "vocal_language": "ja",
        "bpm": 90,
        "key_scale": "A minor",
        "time_signature": "4",
    }
    values, note = describe.fill(HEARD, mine, measured)
    assert values == ["my style", "[Verse]\nline one\nline two", "ja", 90, "A minor", "4"]
    assert "BPM: planner heard 118, measured 120 — kept 90 (yours)" in note and "Style: kept yours" in note
    # Nothing measured (no steady beat): the planner's tempo fills the empty field.
    values, note = describe.fill(HEARD, EMPTY, analysis.Analysis(None, "C# major", None, None, 12.0))
    assert values[3] == 118 and values[5] == "3" and "BPM: planner heard 118 — kept 118" in note


def test_the_door_refuses_in_words(tmp_path, lm, monkeypatch):
    with pytest.raises(checks.InputError, match="upload a song first") as no_song:
        describe.check(None)
    assert no_song.value.param == "src_audio"
    sf.write(str(tmp_path / "silence.wav"), np.zeros((48000 * 3, 2), np.float32), 48000)
    with pytest.raises(checks.InputError, match=r"The song \(silence.wav\) is silent"):
        describe.check(str(tmp_path / "silence.wav"))
    (tmp_path / "notes.wav").write_text("not a song")
    with pytest.raises(checks.InputError) as unreadable:
        describe.check(str(tmp_path / "notes.wav"))
    assert unreadable.value.param == "src_audio" and "Traceback" not in unreadable.value.message
    monkeypatch.setenv("ACE_STUDIO_PLANNER_MODEL", "none")
    with pytest.raises(gr.Error, match="needs ACE-Step's planner"):
        describe.check(str(tone(tmp_path / "song.wav", seconds=3)))


def test_the_declared_duration_is_within_the_clamp_and_grows_with_the_song():
    short, long = describe.estimate_seconds(10), describe.estimate_seconds(600)
    assert short < long
    assert 60 <= describe.estimate_duration(10) <= describe.estimate_duration(600) <= 300
    assert describe.estimate_duration(600, multiplier=2.0) == 300
    assert describe.lyric_budget(10) == 144 and describe.lyric_budget(600) == text_limits.MAX_LYRIC_TOKENS - 64
