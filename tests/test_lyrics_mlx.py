"""The lyrics writer's mlx-lm path for real, on Linux: mlx's CPU backend runs the same mlx-lm code a Mac
runs on Metal. The tiny Qwen2 lyrics model is converted with mlx-lm's own converter (4-bit, as the
default ``mlx-community`` build is), then streamed and stopped through ``lyrics.stream_lyrics``.

What Linux cannot run: Metal itself (``mx.metal.is_available()`` is False), so mlx-lm's wired-memory
limit is a no-op here; and the default model is a Hub download, so the converted tiny one stands in.
"""

from __future__ import annotations

import gc
import importlib
import threading
import types

import pytest

import lyrics
import lyrics_page
import random_models
import runs

mlx_lm = pytest.importorskip("mlx_lm", reason="mlx-lm is not installed (requirements-dev.txt installs it on Linux)")


@pytest.fixture(scope="module")
def mlx_lm_dir(tmp_path_factory):
    from mlx_lm import convert

    folder = tmp_path_factory.mktemp("lm")
    source = random_models.save_lyrics_lm(folder / "tiny-qwen2")
    # Groups of 32: the tiny model's rows are 32 wide (mlx-lm's default group is 64).
    convert(str(source), mlx_path=str(folder / "tiny-qwen2-mlx-4bit"), quantize=True, q_group_size=32, q_bits=4)
    return folder / "tiny-qwen2-mlx-4bit"


@pytest.fixture
def mlx_env(mlx_lm_dir, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_LYRICS_MODEL", str(mlx_lm_dir))
    monkeypatch.setenv("ACE_STUDIO_LYRICS_ENGINE", "mlx")
    lyrics.reset_writer()
    yield mlx_lm_dir
    lyrics.reset_writer()


def _generations_alive() -> list:
    """mlx-lm's decoding generators (and the writer's own) that have not ended."""
    generate = importlib.import_module("mlx_lm.generate")  # the module; mlx_lm.generate is its function
    gc.collect()
    codes = {
        f.__code__
        for f in (
            generate.stream_generate,
            generate.generate_step,
            lyrics.Writer.stream,
            lyrics.Writer._stream_mlx,
            lyrics.stream_lyrics,
        )
    }
    # type(), not isinstance(): gc also holds weak proxies, and isinstance() on a dead one raises.
    return [g for g in gc.get_objects() if type(g) is types.GeneratorType and g.gi_code in codes and g.gi_frame]


def test_real_mlx_path_streams_and_reproduces(mlx_env):
    req = lyrics.make_request("city rain", "lo-fi", "calm", "en", "short-loop", temperature=0.9, seed=7)
    chunks = list(lyrics.stream_lyrics(req, "English"))
    assert len(chunks) > 3 and all(b.startswith(a) for a, b in zip(chunks, chunks[1:], strict=False))
    again = list(lyrics.stream_lyrics(req, "English"))
    assert again[-1] == chunks[-1]  # mx.random.seed(seed) makes the take reproducible
    writer = lyrics.get_writer()
    assert writer.engine == "mlx" and writer.source == str(mlx_env) and writer.device == "cpu"
    assert type(writer.model).__module__.startswith("mlx_lm.models.qwen2")


def test_stop_ends_the_mlx_writer_mid_stream(mlx_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_CANCEL_DIR", str(tmp_path))
    lyrics.get_writer()
    threads_before = set(threading.enumerate())
    run_id = runs.start_run("me:lyrics")
    req = lyrics.make_request("long road", structure="full-song", length="long", seed=1)
    seen = []
    stream = lyrics.stream_lyrics(req, "English", run_id=run_id)
    with pytest.raises(lyrics.Stopped):
        for text in stream:
            seen.append(text)
            if len(seen) == 2:
                runs.request_stop("me:lyrics")
    assert len(seen) == 2
    # The decoding ended with the Stop: no mlx-lm generator is left suspended, no thread was left behind.
    del stream
    assert _generations_alive() == []
    assert set(threading.enumerate()) <= threads_before
    runs.finish_run(run_id)
    assert len(list(lyrics.stream_lyrics(req, "English", run_id=runs.start_run("me:lyrics")))) > 2


def test_a_reader_that_goes_away_ends_the_generation(mlx_env):
    stream = lyrics.stream_lyrics(lyrics.make_request("sea", structure="full-song", seed=2), "English")
    next(stream)
    stream.close()  # what Gradio does when the visitor leaves
    del stream
    assert _generations_alive() == []


def test_handler_streams_then_cleans_through_mlx(mlx_env):
    outputs = list(
        lyrics_page.write_lyrics(
            "city rain", "lo-fi", "calm", "en", "short-loop", 0.9, 7, progress=lambda *a, **k: None
        )
    )
    assert len(outputs) > 2
    final_text, final_caption, seed = outputs[-1]
    assert final_text.startswith("[") and final_caption and seed == 7
    assert lyrics.get_writer().engine == "mlx"
