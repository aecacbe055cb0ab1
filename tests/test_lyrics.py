"""The lyrics writer: prompts, streaming through a real tiny Qwen2, clean-up (lyrics_page.clean), wiring (mlx-lm: test_lyrics_mlx.py)."""

from __future__ import annotations

import sys

import gradio as gr
import pytest

import checks
import devices
import lyrics
import lyrics_page
import models
import offload
import runs


@pytest.fixture(scope="module")
def tiny_lm_dir(tiny_lyrics_dir):
    return tiny_lyrics_dir


@pytest.fixture
def lyrics_env(tiny_lm_dir, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_LYRICS_MODEL", str(tiny_lm_dir))
    monkeypatch.setattr(lyrics, "_mlx_available", lambda: False)
    lyrics.reset_writer()
    yield tiny_lm_dir
    lyrics.reset_writer()
    devices.forget_resident("lyrics")


@pytest.mark.parametrize(
    ("language", "structure", "tags"),
    [
        ("ja", "verse-chorus", ["[Verse 1]", "[Chorus]", "[Verse 2]", "[Chorus]"]),
        ("es", "verse-chorus-bridge", ["[Verse 1]", "[Chorus]", "[Verse 2]", "[Chorus]", "[Bridge]", "[Chorus]"]),
        ("en", "short-loop", ["[Verse]", "[Chorus]"]),
    ],
)
def test_prompt_names_language_and_sections(language, structure, tags):
    req = lyrics.make_request("night drive", "synthwave", "wistful", language, structure)
    messages = lyrics.build_messages(req, checks.LANGUAGES[language])
    user = messages[-1]["content"]
    assert messages[0]["role"] == "system" and f"in {checks.LANGUAGES[language]}" in user
    assert "\n".join(tags) in user and "Theme: night drive" in user and "Genre/style: synthwave" in user
    assert "Caption:" in user


def test_custom_structure():
    req = lyrics.make_request("x", structure="custom", custom_sections="Intro, [Verse], Hook; Outro")
    assert req.sections() == ["Intro", "Verse", "Hook", "Outro"]
    with pytest.raises(lyrics.LyricsError, match="list the sections"):
        lyrics.make_request("x", structure="custom", custom_sections=" , ")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"theme": "  "}, "theme is empty"),
        ({"theme": "x", "vocal_language": "elvish"}, "Unknown vocal language"),
        ({"theme": "x", "structure": "sonata"}, "Unknown structure 'sonata'"),
        ({"theme": "x", "temperature": 3}, "Creativity must be between 0 and 1.5"),
        ({"theme": "x", "length": "epic"}, "Unknown length"),
    ],
)
def test_bad_requests(kwargs, message):
    with pytest.raises(lyrics.LyricsError, match=message):
        lyrics.make_request(**kwargs)


MESSY = """Sure! Here's a song about the sea for you:

**Title: Salt and Silver**

## Verse 1
1. The tide comes in at morning
2. It carries all my doubt

**Chorus:**
- Oh the sea, the silver sea
- Sing it back to me

(Verse 2)
Waves that never settle
Like a heart that won't lie down

[Chorus]
Oh the sea, the silver sea

Caption: folk ballad, acoustic guitar, warm male vocals, gentle
Note: I kept the chorus short so it is easy to sing.
Hope you enjoy it!"""


def test_clean_up_of_a_messy_answer():
    text, caption = lyrics_page.clean(MESSY, ["Verse 1", "Chorus", "Verse 2", "Chorus"])
    assert text == (
        "[Verse 1]\nThe tide comes in at morning\nIt carries all my doubt\n\n"
        "[Chorus]\nOh the sea, the silver sea\nSing it back to me\n\n"
        "[Verse 2]\nWaves that never settle\nLike a heart that won't lie down\n\n"
        "[Chorus]\nOh the sea, the silver sea"
    )
    assert caption == "folk ballad, acoustic guitar, warm male vocals, gentle"


def test_missing_tags_are_added_from_the_structure_and_length_is_capped():
    text, caption = lyrics_page.clean("line one\nline two\n\nhook line\nhook again\n\nmore words", ["Verse", "Chorus"])
    assert text.splitlines()[0] == "[Verse]" and "[Chorus]\nhook line" in text and "[Verse]\nmore words" in text
    assert caption == ""
    long_song = "\n\n".join(f"[Verse {i}]\n" + "\n".join(["la " * 20] * 4) for i in range(60))
    trimmed, _ = lyrics_page.clean(long_song)
    assert len(trimmed) <= lyrics_page.MAX_LYRICS_CHARS and trimmed.rstrip().endswith("la")
    assert trimmed.count("[Verse") == trimmed.count("\n\n[") + 1


def test_duplicate_adjacent_tags_collapse():
    text, _ = lyrics_page.clean("[Chorus]\n[Chorus]\nsing\n[Chorus]\nsing more")
    assert text == "[Chorus]\nsing\nsing more"


def test_real_transformers_path_streams_and_reproduces(lyrics_env):
    req = lyrics.make_request("city rain", "lo-fi", "calm", "en", "short-loop", temperature=0.9, seed=7)
    chunks = list(lyrics.stream_lyrics(req, "English"))
    assert len(chunks) > 3 and all(b.startswith(a) for a, b in zip(chunks, chunks[1:], strict=False))
    again = list(
        lyrics.stream_lyrics(lyrics.make_request("city rain", "lo-fi", "calm", "en", "short-loop", 0.9, 7), "English")
    )
    assert again[-1] == chunks[-1]
    writer = lyrics.get_writer()
    assert writer.engine == "transformers" and writer.source == str(lyrics_env) and writer.device == "cpu"


def test_stop_ends_the_writer_mid_stream_and_its_generate_thread(lyrics_env, tmp_path, monkeypatch):
    import threading

    monkeypatch.setenv("ACE_STUDIO_CANCEL_DIR", str(tmp_path))
    run_id = runs.start_run("me:lyrics")
    req = lyrics.make_request("long road", structure="full-song", length="long", seed=1)
    seen = []
    with pytest.raises(lyrics.Stopped):
        for text in lyrics.stream_lyrics(req, "English", run_id=run_id):
            seen.append(text)
            if len(seen) == 2:
                runs.request_stop("me:lyrics")
    assert len(seen) == 2
    # generate() was told to end too: no thread goes on writing for nobody.
    assert not [t for t in threading.enumerate() if t.name == "lyrics-generate"]
    runs.finish_run(run_id)
    assert len(list(lyrics.stream_lyrics(req, "English", run_id=runs.start_run("me:lyrics")))) > 2


def test_handler_streams_then_cleans(lyrics_env):
    outputs = list(
        lyrics_page.write_lyrics(
            "city rain", "lo-fi", "calm", "en", "short-loop", 0.9, 7, progress=lambda *a, **k: None
        )
    )
    assert len(outputs) > 2
    final_text, final_caption, seed = outputs[-1]
    assert final_text.startswith("[") and final_caption and seed == 7
    assert {out[2] for out in outputs} == {7}  # the seed used comes with every update


def test_model_that_fails_to_load(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_LYRICS_MODEL", str(tmp_path / "no-model"))
    monkeypatch.setattr(lyrics, "_mlx_available", lambda: False)
    lyrics.reset_writer()
    with pytest.raises(gr.Error, match="lyrics model could not be loaded"):
        list(lyrics_page.write_lyrics("x", progress=lambda *a, **k: None))
    lyrics.reset_writer()


def test_failure_midway_keeps_what_was_written(lyrics_env, monkeypatch):
    def broken(req, name, run_id=None):
        yield "[Verse]\nhalf a"
        yield "[Verse]\nhalf a line"
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(lyrics, "stream_lyrics", broken)
    seen = []
    with pytest.raises(gr.Error, match="What it wrote so far is kept"):
        for out in lyrics_page.write_lyrics("x", progress=lambda *a, **k: None):
            seen.append(out)
    assert seen[-1][0] == "[Verse]\nhalf a line"


def test_use_in_generate_fills_generate_and_switches_tab():
    text, caption, instrumental, language, tabs = lyrics_page.use_in_generate("[Verse]\nhola", "pop, bright", "Spanish")
    assert language == "es"  # the Lyrics tab's language comes along
    assert text == "[Verse]\nhola"
    assert caption == "pop, bright" and instrumental is False
    assert tabs.selected == "generate"
    with pytest.raises(gr.Error, match="no lyrics"):
        lyrics_page.use_in_generate("", "")


def test_the_engine_is_mlx_only_on_apple_silicon_unless_forced(monkeypatch):
    monkeypatch.delenv("ACE_STUDIO_LYRICS_ENGINE", raising=False)
    monkeypatch.setattr(lyrics, "_mlx_available", lambda: True)  # mlx has Linux wheels too
    monkeypatch.setattr(lyrics.sys, "platform", "linux")
    assert lyrics.engine() == "transformers"
    monkeypatch.setattr(lyrics.sys, "platform", "darwin")
    monkeypatch.setattr(lyrics.platform, "machine", lambda: "arm64")
    assert lyrics.engine() == "mlx"
    monkeypatch.setattr(lyrics, "_mlx_available", lambda: False)
    assert lyrics.engine() == "transformers"
    monkeypatch.setenv("ACE_STUDIO_LYRICS_ENGINE", "mlx")
    with pytest.raises(models.ModelLoadError, match="mlx-lm is not installed"):
        lyrics.engine()
    monkeypatch.setenv("ACE_STUDIO_LYRICS_ENGINE", "transformers")
    assert lyrics.engine() == "transformers"
    monkeypatch.setenv("ACE_STUDIO_LYRICS_ENGINE", "vllm")
    with pytest.raises(models.ModelLoadError, match="ACE_STUDIO_LYRICS_ENGINE 'vllm'"):
        lyrics.engine()


def test_models_take_turns_when_they_do_not_fit(monkeypatch):
    moves = []

    class Fake:
        def __init__(self, name):
            self.name = name

        def to(self, device):
            moves.append((self.name, device))
            return self

    monkeypatch.setattr(offload, "device_memory", lambda device: (23.0, 24.0))
    monkeypatch.setattr(sys.modules["torch"].cuda, "empty_cache", lambda: None)
    devices.register_resident("music", Fake("music"), "cuda", gib=10.5)
    devices.register_resident("lyrics", Fake("lyrics"), "cuda", gib=15.2)
    try:
        devices.claim_device("lyrics")
        assert moves == [("music", "cpu")]
        devices.claim_device("music")
        assert moves[1:] == [("lyrics", "cpu"), ("music", "cuda")]
        monkeypatch.setattr(offload, "device_memory", lambda device: (79.0, 80.0))
        devices.claim_device("lyrics")
        assert moves[3:] == [("lyrics", "cuda")]  # both fit on 80 GiB: music stays
    finally:
        devices.forget_resident("music")
        devices.forget_resident("lyrics")


def test_lyrics_estimate_is_clamped_and_knows_cold_start(monkeypatch):
    monkeypatch.setattr(lyrics, "is_loaded", lambda: False)
    longest = lyrics.make_request("x", structure="full-song", length="long")
    cold = lyrics.estimate_duration(longest)
    monkeypatch.setattr(lyrics, "is_loaded", lambda: True)
    warm = lyrics.estimate_duration(lyrics.make_request("x", structure="short-loop", length="short"))
    assert 60 <= warm <= cold <= 300
    assert lyrics.estimate_duration(longest, 10.0) == 300


def test_the_cost_line_under_write_lyrics_prices_the_request_its_form_makes():
    """The cost path reads the typed request (``make_request``'s): the cost line under *Write lyrics* is what
    the request its form makes declares (a custom structure by the sections it lists, what the writer is
    held to), and a form the admission check would refuse waits until it can be sent."""
    import audio
    import messages
    import quota

    fields = {"structure": "custom", "custom_sections": "Intro, Verse, Chorus", "length": "short"}
    req = lyrics.make_request("night drive", **fields)
    assert lyrics.max_new_tokens(req) == 80 + 3 * lyrics.LENGTHS["short"] * 16
    declared = quota.charged(lyrics.lyrics_duration(req, "English"))
    assert quota.reserves_line("lyrics", fields).startswith(messages.RESERVES.format(time=audio.clock(declared)))
    assert quota.reserves_line("lyrics", {**fields, "custom_sections": " , "}) == messages.RESERVES_LATER


def test_lyrics_endpoint_through_gradio_client(studio_server, tiny_lm_dir, monkeypatch):
    from gradio_client import Client

    monkeypatch.setenv("ACE_STUDIO_LYRICS_MODEL", str(tiny_lm_dir))
    monkeypatch.setattr(lyrics, "_mlx_available", lambda: False)
    lyrics.reset_writer()
    client = Client(studio_server[0], verbose=False)
    text, caption, seed = client.predict(
        theme="summer road trip", vocal_language="es", structure="short-loop", seed=4, api_name="/lyrics"
    )
    assert text.startswith("[") and caption and seed == 4
    from gradio_client.exceptions import ValidationError

    with pytest.raises(ValidationError, match="theme: .*theme is empty"):
        client.predict(theme="", api_name="/lyrics")
    with pytest.raises(ValidationError, match="temperature: Creativity must be between 0 and 1.5"):
        client.predict(theme="rain", temperature=3, api_name="/lyrics")
    lyrics.reset_writer()


def test_lyrics_without_weights_answers_the_studios_message_before_any_download(studio_server, monkeypatch):
    """``/lyrics`` with a writer whose weights are not here (a repo id not in the Hub cache,
    ``HF_HUB_OFFLINE=1`` as the suite runs) answers with the studio's message, as the music model and the
    planner have it, before any load or download is tried: not transformers' "We couldn't connect to
    'https://huggingface.co'…" after its tries (46.9 s where the Hub is out of reach)."""
    import huggingface_hub
    import transformers
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    tried = []

    def spy(name):
        def tries(*args, **kwargs):
            tried.append((name, args))
            raise OSError(f"{name} was tried")  # as the client fails offline, once its tries are spent

        return tries

    for owner, name in (
        (transformers.AutoModelForCausalLM, "from_pretrained"),
        (transformers.AutoTokenizer, "from_pretrained"),
        (huggingface_hub, "snapshot_download"),
    ):
        monkeypatch.setattr(owner, name, spy(name))
    monkeypatch.setenv("ACE_STUDIO_LYRICS_MODEL", "someone/not-cached-writer")
    monkeypatch.setattr(lyrics, "_mlx_available", lambda: False)
    lyrics.reset_writer()
    with pytest.raises(AppError) as said:
        Client(studio_server[0], verbose=False).predict(theme="rain", api_name="/lyrics")
    message = str(said.value)
    assert "The weights of the lyrics writer (someone/not-cached-writer) are not on this machine" in message
    assert "HF_HUB_OFFLINE is set" in message and "ACE_STUDIO_LYRICS_MODEL" in message
    assert "couldn't connect" not in message and "huggingface.co" not in message
    assert tried == []  # nothing loaded, nothing asked of the Hub: no client's retries to wait through
    lyrics.reset_writer()
