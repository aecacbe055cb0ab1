"""The shared backend: singleton, progress, cancel, lyric limit and the GPU-time estimate."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import backend
import devices
import duration_estimate
import models
import runs
import text_limits
from conftest import music_shape
from music_request import Render


def _request(**over):
    req = {
        "prompt": "warm lo-fi",
        "lyrics": "[Verse]\nrain on the window",
        "audio_duration": 10.0,
        "vocal_language": "en",
        "num_inference_steps": 4,
        "guidance_scale": 7.0,
        "shift": 1.0,
        "task_type": "text2music",
        "seeds": [11],
    }
    req.update(over)
    return Render.flat(req)
    return req


def test_get_backend_builds_once_under_concurrency(studio_env, monkeypatch):
    calls = []
    real = models.load_pipeline
    gate = threading.Barrier(4)

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "load_pipeline", counting)
    got = []

    def first_request():
        gate.wait()
        got.append(backend.get_backend())

    threads = [threading.Thread(target=first_request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len({id(b) for b in got}) == 1
    assert backend.is_warm()
    be = got[0]
    assert be.device == "cpu" and be.variant.name == "xl-sft" and be.load_seconds > 0
    assert be.pipe.vae.use_tiling


def test_tiled_vae_decode_matches_the_whole_decode(warm_backend):
    import torch

    vae = warm_backend.pipe.vae
    frames = vae.tile_latent_min_length + 250  # two tiles with their overlap
    z = torch.randn(1, vae.config.decoder_input_channels, frames, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        vae.disable_tiling()
        whole = vae.decode(z).sample
        vae.enable_tiling()
        tiled = vae.decode(z).sample
        vae.disable_tiling()
    # Far below one step of 16-bit audio (3e-5): the written files do not change.
    assert (whole - tiled).abs().max().item() < 1e-5


def test_run_returns_numpy_takes_and_reports_progress(warm_backend):
    seen = []
    out = warm_backend.run(_request(seeds=[1, 2]), progress=lambda i, n: seen.append((i, n)))
    audio = out["audio"]
    assert isinstance(audio, np.ndarray) and audio.dtype == np.float32
    assert audio.shape == (2, 2, 480000)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert not np.allclose(audio[0], audio[1])
    # -1 dBFS peak from the pipeline's own normalisation.
    assert np.isclose(np.abs(audio[0]).max(), 10 ** (-1 / 20), atol=1e-3)


def test_take_of_a_batch_equals_the_same_seed_alone(warm_backend):
    pair = warm_backend.run(_request(seeds=[5, 6]))["audio"]
    single = warm_backend.run(_request(seeds=[6]))["audio"]
    np.testing.assert_allclose(pair[1], single[0], atol=1e-4)


def test_cancel_stops_within_one_step(warm_backend, tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_CANCEL_DIR", str(tmp_path))
    seen = []

    run_id = runs.start_run("visitor-1:generate")

    def progress(i, n):
        seen.append(i)
        if i == 2:
            runs.request_stop("visitor-1:generate")

    with pytest.raises(runs.Cancelled, match="step 3 of 20"):
        warm_backend.run(_request(num_inference_steps=20), progress=progress, run_id=run_id)
    assert seen == [1, 2]
    runs.finish_run(run_id)
    assert not runs.cancel_path(run_id).exists()
    # A new run of the same visitor starts clean; another visitor's Stop does not touch it.
    again = runs.start_run("visitor-1:generate")
    assert again != run_id and runs.request_stop("visitor-2:generate") == 0
    out = warm_backend.run(_request(), run_id=again)
    assert out["audio"].shape[0] == 1
    runs.finish_run(again)


def test_no_other_model_can_take_the_accelerator_mid_song(warm_backend):
    import threading

    taken = []

    def progress(i, n):
        if i == 1:  # the lyrics writer tries to claim the device while the song is on it
            probe = threading.Thread(target=lambda: taken.append(devices._gpu_lock.acquire(blocking=False)))
            probe.start()
            probe.join()

    warm_backend.run(_request(), progress=progress)
    assert taken == [False]
    assert devices._gpu_lock.acquire(blocking=False)  # and it is free once the song is done: no clock to wait on
    devices._gpu_lock.release()


def test_lyrics_longer_than_the_encoder_takes(warm_backend):
    # Random words so the tokenizer cannot merge them into few tokens.
    rng = np.random.default_rng(0)
    lyrics = " ".join("".join(rng.choice(list("qzxjvk"), 6)) for _ in range(900))
    with pytest.raises(text_limits.TooLong, match="2048") as refused:
        warm_backend.run(_request(lyrics=lyrics))
    assert refused.value.param == "lyrics"


@pytest.mark.parametrize("mode", ["generate", "cover", "extend", "edit"])
def test_estimate_is_clamped(mode, monkeypatch):
    monkeypatch.setattr(backend, "is_warm", lambda: True)
    tiny = duration_estimate.music_duration(music_shape(mode, audio_duration=10, inference_steps=1, batch_size=1))
    huge = duration_estimate.music_duration(
        music_shape(mode, audio_duration=600, inference_steps=200, batch_size=4), 4.0
    )
    assert tiny == devices.GPU_MIN_SECONDS
    assert huge == devices.GPU_MAX_SECONDS
    assert isinstance(tiny, int) and isinstance(huge, int)


def test_estimate_is_monotonic(monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_VARIANT", "xl-sft")
    monkeypatch.setattr(backend, "is_warm", lambda: True)

    def est(mode="generate", multiplier=1.0, **p):
        params = {"audio_duration": 120, "inference_steps": 50, "batch_size": 1, **p}
        return duration_estimate.music_duration(music_shape(mode, **params), multiplier)

    durations = [est(audio_duration=d) for d in (10, 30, 60, 120, 240, 400, 600)]
    assert durations == sorted(durations) and durations[-1] > durations[0]
    for key, values in (("inference_steps", (8, 25, 50, 100)), ("batch_size", (1, 2, 3, 4))):
        got = [est(audio_duration=600, **{key: v}) for v in values]
        assert got == sorted(got) and got[-1] > got[0], key
    assert est(audio_duration=600, multiplier=2.0) > est(audio_duration=600)
    assert est("extend", audio_duration=240) >= est("extend", audio_duration=20)
    warm = est(audio_duration=240)
    monkeypatch.setattr(backend, "is_warm", lambda: False)
    assert est(audio_duration=240) > warm
