"""What the studio asks the model for is what upstream ACE-Step 1.5 asks for.

Checked at the pipeline-call boundary of the served studio (a spy around the pipeline object) and
through the API: the real length and language reach the text encoder's prompt, instrumentals are
"unknown", shift defaults to 3.0, and cover strength splits the steps as upstream does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from gradio_client import Client, handle_file
from test_audio_modes import tone

import audio
import backend
import generation
import handlers
import mastering
import models
import modes


class PipelineSpy:
    """The served pipeline, recording every call's keyword arguments (the call boundary)."""

    def __init__(self, pipe):
        self._pipe = pipe
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self._pipe(**kwargs)

    def __getattr__(self, name):
        return getattr(self._pipe, name)


@pytest.fixture(scope="module")
def served(studio_server):
    url, _ = studio_server
    client = Client(url, verbose=False)
    client.predict(prompt="warm up", audio_duration=10, inference_steps=1, api_name="/generate")
    be = backend.get_backend()
    spy = PipelineSpy(be.pipe)
    be.pipe = spy
    yield client, spy
    be.pipe = spy._pipe


def test_audio_modes_tell_the_model_the_real_length_and_the_chosen_language(served, tmp_path):
    client, spy = served
    src = handle_file(str(tone(tmp_path / "song.wav", seconds=12.5)))
    common = {"src_audio": src, "inference_steps": 2, "lyrics": "[Verse]\nla lune", "vocal_language": "fr"}
    client.predict(prompt="chanson", audio_cover_strength=1.0, api_name="/cover", **common)
    client.predict(prompt="chanson", extend_seconds=7.5, api_name="/extend", **common)
    client.predict(prompt="chanson", repainting_start=2, repainting_end=5, api_name="/edit", **common)
    cover, extend, edit = spy.calls[-3:]
    assert cover["audio_duration"] == pytest.approx(12.5) and cover["task_type"] == "cover"
    assert extend["audio_duration"] == pytest.approx(20.0)  # the new total
    assert edit["audio_duration"] == pytest.approx(12.5)
    assert all(call["vocal_language"] == ["fr"] for call in (cover, extend, edit))
    # Nothing sung: upstream's "unknown", whatever language is picked.
    client.predict(
        src_audio=src, prompt="ambient", vocal_language="fr", extend_seconds=5, inference_steps=1, api_name="/extend"
    )
    assert spy.calls[-1]["vocal_language"] == ["unknown"]
    client.predict(prompt="ambient", vocal_language="ja", audio_duration=10, inference_steps=1, api_name="/generate")
    assert spy.calls[-1]["vocal_language"] == ["unknown"]


def test_shift_defaults_to_upstreams_three(served):
    client, spy = served
    assert {v.shift for v in models.VARIANTS.values()} == {3.0}
    record = client.predict(prompt="pop", audio_duration=10, inference_steps=1, api_name="/generate")[-1]
    assert record["params"]["shift"] == 3.0 and spy.calls[-1]["shift"] == 3.0


def _read(path: str) -> np.ndarray:
    return sf.read(path, dtype="int16")[0]


def test_cover_strength_zero_is_the_text_to_music_song(served, tmp_path):
    client, spy = served
    src = handle_file(str(tone(tmp_path / "song.wav", seconds=10)))
    song = {"prompt": "jazz trio", "lyrics": "[Verse]\nsmoke rings", "vocal_language": "en", "seed": 17,
            "inference_steps": 4}  # fmt: skip
    covered = client.predict(src_audio=src, audio_cover_strength=0.0, api_name="/cover", **song)
    assert spy.calls[-1]["task_type"] == "text2music" and "src_audio" not in spy.calls[-1]
    fresh = client.predict(audio_duration=10, think=False, api_name="/generate", **song)
    np.testing.assert_array_equal(_read(covered[0]), _read(fresh[0]))


def test_cover_strength_one_is_the_plain_cover_call(served, tmp_path):
    client, spy = served
    path = tone(tmp_path / "song.wav", seconds=10)
    settings = {"prompt": "string quartet", "seed": 23, "inference_steps": 4}
    covered = client.predict(src_audio=handle_file(str(path)), audio_cover_strength=1.0, api_name="/cover", **settings)
    assert len([c for c in spy.calls[-1:] if c["task_type"] == "cover"]) == 1
    # The plain pipeline call with the same conditioning, seeds and the studio's finish and file writing.
    job = modes.prepare_cover(src_audio=str(path), audio_cover_strength=1.0, **settings)
    request = dict(job.request.render.pipeline)
    for key in ("src_audio", "reference_audio"):
        if request.get(key) is not None:
            request[key] = torch.from_numpy(request[key])
    for key in ("prompt", "lyrics", "vocal_language"):
        request[key] = [request[key]]
    torch.manual_seed(23)
    out = spy._pipe(**request, generator=[torch.Generator("cpu").manual_seed(23)], output_type="np")
    finished, _ = mastering.finish(job.post(np.asarray(out.audios[0])), job.finishing, job.region)
    plain = audio.save(finished, tmp_path / "plain", "wav")
    np.testing.assert_array_equal(_read(covered[0]), _read(str(plain)))


def test_a_middle_strength_runs_the_cover_steps_then_the_rest_as_text_to_music(served, tmp_path):
    client, spy = served
    src = handle_file(str(tone(tmp_path / "song.wav", seconds=10)))
    before = len(spy.calls)
    half = client.predict(
        src_audio=src, prompt="reggae", audio_cover_strength=0.5, inference_steps=6, seed=5, api_name="/cover"
    )
    first, second = spy.calls[before:]
    assert first["task_type"] == "cover" and first["output_type"] == "latent"
    assert second["task_type"] == "text2music" and "src_audio" not in second
    assert second["num_inference_steps"] == 3 and len(second["timesteps"]) == 3
    assert torch.is_tensor(second["latents"])
    full = backend.get_backend().pipe._get_timestep_schedule(num_inference_steps=6, shift=3.0)
    np.testing.assert_allclose(second["timesteps"], full[3:].tolist())
    ends = [
        client.predict(
            src_audio=src, prompt="reggae", audio_cover_strength=s, inference_steps=6, seed=5, api_name="/cover"
        )[0]
        for s in (0.0, 1.0)
    ]
    assert all(not np.array_equal(_read(half[0]), _read(end)) for end in ends)


def test_generate_takes_a_timbre_reference(served, tmp_path):
    client, spy = served
    voice = tone(tmp_path / "voice.wav", seconds=6, freq=330)
    settings = {"prompt": "soul", "audio_duration": 10, "inference_steps": 2, "seed": 8, "api_name": "/generate"}
    plain = client.predict(**settings)
    lent = client.predict(reference_audio=handle_file(str(voice)), **settings)
    assert torch.is_tensor(spy.calls[-1]["reference_audio"])
    assert lent[-1]["params"]["reference_audio"] == "voice.wav"
    assert not np.array_equal(_read(plain[0]), _read(lent[0]))
    assert Path(lent[0]).exists()


def test_the_upload_analysis_prefills_what_cover_extend_and_edit_pass_on(served):
    import examples

    client, spy = served
    demo = handle_file(examples.demo_song())
    line, bpm, key, meter = client.predict(demo, api_name="/cover_analyze")
    assert "0:12.0 long" in line and "C major" in line and "LUFS" in line
    assert abs(bpm - 100) <= 2 and key == "C major" and meter == "4"
    client.predict(
        src_audio=demo,
        prompt="bossa",
        bpm=bpm,
        key_scale=key,
        time_signature=meter,
        audio_cover_strength=1.0,
        inference_steps=1,
        api_name="/cover",
    )
    call = spy.calls[-1]
    assert (call["bpm"], call["keyscale"], call["timesignature"]) == (bpm, "C major", "4")
    client.predict(src_audio=demo, prompt="more", bpm=bpm * 2, extend_seconds=5, inference_steps=1, api_name="/extend")
    assert spy.calls[-1]["bpm"] == bpm * 2 and spy.calls[-1]["keyscale"] is None


def test_a_partial_cover_of_a_frame_exact_length(studio_env, tmp_path):

    # 16.6 s is 415 latent frames, but 16.6 × 25 rounds up to 416 in floating point.
    src = tone(tmp_path / "song.wav", seconds=16.6)
    paths, record = handlers.make(
        "cover", src_audio=str(src), prompt="lounge", audio_cover_strength=0.5, inference_steps=2, seed=3
    )
    assert sf.info(paths[0]).frames == int(16.6 * 48000) and record["params"]["audio_cover_strength"] == 0.5


def test_an_unexpected_pipeline_failure_gets_words(studio_env, monkeypatch):
    import gradio as gr

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(generation, "run_music", out_of_memory)
    with pytest.raises(gr.Error, match=r"The model stopped with an error \(RuntimeError\). Nothing was saved"):
        handlers.make("generate", prompt="pop", audio_duration=10, inference_steps=1)


@pytest.mark.parametrize("seconds", [16.44, 16.6])
def test_lengths_whose_frame_count_rounds_up_work_in_every_mode(studio_env, tmp_path, seconds):

    # 16.44 s and 16.6 s are 411 and 415 latent frames, which diffusers computes back as 412 / 416.
    take, _ = handlers.make("generate", prompt="lounge", audio_duration=seconds, inference_steps=1, seed=1)
    assert sf.info(take[0]).frames == round(seconds * 48000)
    src = tone(tmp_path / "song.wav", seconds=seconds)
    n = int(round(seconds * 48000))
    for mode, extra in (("edit", {"repainting_start": 2, "repainting_end": 5}), ("extend", {"extend_seconds": 5.0})):
        paths, _ = handlers.make(mode, src_audio=str(src), prompt="x", inference_steps=1, **extra)
        assert sf.info(paths[0]).frames == (n if mode == "edit" else n + 5 * 48000)
    assert audio.good_frames(411) == 412 and audio.good_frames(400) == 400
