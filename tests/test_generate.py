"""Generate end to end through the real tiny pipeline: files, metadata, seeds, validation."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pylrc
import pytest
import soundfile as sf

import backend
import checks
import generation
import gpu
import handlers
import modes
import results
import runs


def _generate(**kw):
    args = {"prompt": "bright synth pop", "lyrics": "[Verse]\nneon lights", "audio_duration": 10, "inference_steps": 3}
    args.update(kw)
    return handlers.make("generate", **args)


def test_generate_writes_48k_stereo_and_metadata(studio_env):
    paths, record = _generate(seed=42, audio_format="wav")
    assert len(paths) == 1
    path = Path(paths[0])
    assert path.parent.parent == studio_env and path.suffix == ".wav"
    data, rate = sf.read(path, always_2d=True)
    assert rate == 48000 and data.shape == (480000, 2)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["seed"] == 42 and meta["params"]["seed"] == 42
    assert meta["params"]["inference_steps"] == 3 and meta["params"]["prompt"] == "bright synth pop"
    # A folder: named by its last name only (no server path), and no variant claimed for it.
    folder = Path(os.environ["ACE_STUDIO_MODEL"]).name
    assert meta["model"] == {
        "label": f"a local model ({folder})",
        "repo": None,
        "folder": folder,
        "variant": None,
        "device": "cpu",
    }
    assert "·" in results.seeds_text(meta) and "**" not in results.seeds_text(meta)  # plain text
    assert meta["timings"]["pipeline_s"] > 0 and meta["timings"]["model_load_s"] > 0 and "write_s" in meta["timings"]
    assert record["takes"][0]["audio"] == path.relative_to(studio_env).as_posix()
    # Its synced lyrics: an .lrc beside it (a standard reader reads it), the line times and score recorded.
    lines, lrc_file = meta["lyric_lines"], path.with_suffix(".lrc")
    assert [line["text"] for line in lines] == ["neon lights"] and 0 <= lines[0]["time"] < 10
    assert 0 <= meta["lyric_score"] <= 1 and meta["lrc"] == lrc_file.relative_to(studio_env).as_posix()
    assert [(line.text, round(line.time, 2)) for line in pylrc.parse(lrc_file.read_text())] == [
        ("neon lights", round(lines[0]["time"], 2))
    ]
    assert record["takes"][0]["lyric_lines"] == lines and "lyrics_s" in meta["timings"]
    # The second call reuses the built pipeline.
    _, again = _generate(seed=1)
    assert again["timings"]["model_load_s"] == 0.0


def test_same_seed_same_audio_and_takes_get_their_own_seeds(studio_env):
    a, _ = _generate(seed=7)
    b, _ = _generate(seed=7)
    c, rec = _generate(seed=7, batch_size=3, audio_format="flac")
    assert [t["seed"] for t in rec["takes"]] == [7, 8, 9]
    first = sf.read(a[0])[0]
    np.testing.assert_array_equal(first, sf.read(b[0])[0])
    # A take from a batch is reproducible alone from the seed written beside it (16-bit WAV vs 24-bit FLAC).
    np.testing.assert_allclose(sf.read(c[0])[0], first, atol=2e-4)
    assert not np.allclose(sf.read(c[1])[0], first, atol=1e-2)
    meta = json.loads(Path(c[2]).with_suffix(".json").read_text())
    assert meta["seed"] == 9 and meta["params"]["batch_size"] == 1


def test_random_seed_is_recorded(studio_env):
    paths, record = _generate(seed=-1, audio_format="mp3")
    seed = record["takes"][0]["seed"]
    assert 0 <= seed < 2**32 and record["params"]["seed"] == seed
    info = sf.info(paths[0])
    assert info.samplerate == 48000 and info.channels == 2 and abs(info.duration - 10) < 0.1
    again, _ = _generate(seed=seed, audio_format="wav")
    assert np.abs(sf.read(again[0])[0]).max() > 0.5


def test_instrumental_and_metadata_fields_reach_the_pipeline(studio_env, monkeypatch):
    seen = {}

    real = generation.run_music

    def spy(request, *rest):
        seen.update(vars(request.render.pipeline))
        return real(request, *rest)

    monkeypatch.setattr(generation, "run_music", spy)
    handlers.make(
        "generate",
        prompt="ambient",
        lyrics="",
        audio_duration=12,
        bpm=95,
        key_scale="f# Minor",
        time_signature="3/4",
        vocal_language="Japanese",
        inference_steps=2,
    )
    assert seen["lyrics"] == checks.INSTRUMENTAL_TAG
    assert (seen["bpm"], seen["keyscale"], seen["timesignature"]) == (95, "F# minor", "3")
    # Nothing is sung: upstream tells the model "unknown" whatever language was picked.
    assert seen["vocal_language"] == "unknown" and seen["audio_duration"] == 12
    assert not list(studio_env.rglob("*.lrc"))  # an instrumental has no synced lyrics
    handlers.make(
        "generate",
        prompt="city pop",
        lyrics="[Verse]\n夜の街",
        audio_duration=10,
        vocal_language="Japanese",
        inference_steps=1,
    )
    assert seen["vocal_language"] == "ja"


def test_progress_goes_to_the_page(studio_env, monkeypatch):
    calls = []

    def progress(value, desc=None, unit=None):
        calls.append((value, desc))

    handlers.make("generate", progress, prompt="jazz", audio_duration=10, inference_steps=3)
    assert calls[0][0] == 0 and "Loading the model" in calls[0][1]
    steps = [c[0] for c in calls[1:]]
    assert steps[0] == (1, 3) and steps[-1] == (3, 3) and steps == sorted(set(steps)), steps

    # Between the first and the last step, a few lines a second, not one a step: counted on a clock that
    # moves 0.1 s each time the thinning reads it (the lines' seconds apart were asserted).
    class Clock:
        read = 0

        def __getattr__(self, name):
            return getattr(time, name)

        def monotonic(self) -> float:
            Clock.read += 1
            return 0.1 * Clock.read

    monkeypatch.setattr(gpu, "time", Clock())
    seen = []
    handlers.make(
        "generate",
        lambda value, desc=None, unit=None: seen.append(value),
        prompt="jazz",
        audio_duration=10,
        inference_steps=60,
    )
    steps = [value for value in seen if isinstance(value, tuple)]
    assert steps[0] == (1, 60) and steps[-1] == (60, 60) and Clock.read >= 60
    # Without the thinning, 60 lines; with it, one each 0.25 s of that clock: at most every third step's.
    assert len(steps) <= 60 // 3 + 2, steps


def test_stop_gives_a_clear_message_and_saves_nothing(studio_env):
    run_id = runs.start_run("me:generate")

    def progress(value, desc=None, unit=None):
        if value == (1, 30):
            assert runs.request_stop("someone-else:generate") == 0
            assert runs.request_stop("me:cover") == 0  # Stop on another tab leaves this run alone
            assert runs.request_stop("me:generate") == 1

    with pytest.raises(gr.Error, match=r"Stopped at step 2 of 30\. Nothing was saved\."):
        handlers.make("generate", progress, run_id, prompt="rock", audio_duration=10, inference_steps=30)
    runs.finish_run(run_id)
    assert not runs.cancel_path(run_id).exists()
    assert not list(Path(studio_env).rglob("*.wav"))
    paths, _ = _generate(seed=3)
    assert Path(paths[0]).exists()


BAD = [
    ({"prompt": "", "lyrics": "  "}, "both are empty"),
    ({"audio_duration": 5}, "Duration must be between 10 s and 600 s"),
    ({"audio_duration": 601}, "Duration must be between 10 s and 600 s"),
    ({"audio_duration": "long"}, "Duration must be a number"),
    ({"bpm": 20}, "BPM must be between 30 and 300"),
    ({"bpm": 301}, "BPM must be between 30 and 300"),
    ({"key_scale": "H major"}, "Unknown key 'H major'"),
    ({"key_scale": "C"}, "Unknown key 'C'"),
    ({"time_signature": "5"}, "Unknown time signature '5'"),
    ({"vocal_language": "klingon"}, "Unknown vocal language 'klingon'"),
    ({"inference_steps": 0}, "Steps must be between 1 and 200"),
    ({"inference_steps": 2.5}, "Steps must be a whole number"),
    ({"guidance_scale": 0.5}, "Guidance must be between 1 and 20"),
    ({"guidance_scale": 30}, "Guidance must be between 1 and 20"),
    ({"shift": 9}, "Shift must be between 1 and 5"),
    ({"batch_size": 5}, "Takes must be between 1 and 4"),
    ({"audio_format": "ogg"}, "Unknown output format 'ogg'"),
    ({"seed": -5}, "Seed must be a whole number"),
    ({"prompt": "x" * 600}, "keep it under 512"),
    ({"lyrics": "la " * 2000}, "the model takes up to 4096"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_input_is_refused_before_any_gpu_work(kwargs, message, studio_env):
    args = {"prompt": "pop", "lyrics": "", "audio_duration": 30}
    args.update(kwargs)
    with pytest.raises(gr.Error, match=message):
        modes.prepare_generate(**args)
    assert not backend.is_warm()


def test_lyrics_over_the_token_limit_get_a_clear_error(studio_env):
    rng = np.random.default_rng(1)
    words = "\n".join("".join(rng.choice(list("qzxjvkw"), 3)) for _ in range(1000))
    with pytest.raises(gr.Error, match="tokens long; the model reads at most 2048"):
        _generate(lyrics=words[:4000])


def test_model_that_fails_to_load_is_a_clear_error(studio_env, monkeypatch, tmp_path):
    monkeypatch.setenv("ACE_STUDIO_MODEL", str(tmp_path / "missing-model"))
    with pytest.raises(gr.Error, match="missing-model does not exist on this machine. What to do"):
        _generate()
    assert not backend.is_warm()


@pytest.mark.parametrize(
    ("given", "want"),
    [
        ("C major", "C major"),
        ("c# minor", "C# minor"),
        ("B♭ major", "Bb major"),
        ("Am", "A minor"),
        ("auto", None),
        ("", None),
    ],
)
def test_key_spellings(given, want):
    assert checks.check_key(given) == want


def test_every_offered_choice_is_accepted():
    assert len(checks.KEYS) == 24 and all(checks.check_key(k) == k for k in checks.KEYS)
    assert len(checks.LANGUAGES) == 50 and all(checks.check_language(c) == c for c in checks.LANGUAGES)
    assert [checks.check_time_signature(t) for t in ("2", "3", "4", "6", "auto")] == ["2", "3", "4", "6", None]
    assert checks.check_bpm(0) is None and checks.check_bpm(None) is None and checks.check_bpm(128.4) == 128
