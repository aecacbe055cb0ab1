"""Tests of ``budget`` and ``output_folder``'s quota: what one request may cost a shared studio. Its GPU
seconds, the audio it holds and the bytes it writes are bounded at admission, the output folder keeps
its quota (oldest first, never a take being fetched), and a LoRA is checked once, from its header.

The studio runs as ``python app.py`` in its own process (its resident memory is its own) on tiny
models, attacked through ``gradio_client`` and raw HTTP as a stranger would.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
import soundfile as sf
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError
from safetensors.torch import load_file, save_file

import backend
import budget
import devices
import duration_estimate
import handlers
import job_record
import lora
import modes
import output_folder
import random_models
import records
from conftest import CLIENT_TIMEOUT_S, inputs, page_api, served_env, studio_process
from music_shape import MusicShape
from test_shared_space import Rss, _files

MB = 2**20
QUOTA_MB = 20
FORGED_PLAN = json.dumps({"bpm": 120, "duration": 600, "keyscale": "C major", "timesignature": "4", "caption": "x"})


@pytest.fixture(scope="module")
def studio(tiny_pipeline_dir, tiny_planner_dir, tiny_base_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("cost")
    env = served_env(
        tiny_pipeline_dir,
        work,
        tiny_planner_dir,
        **{
            "ACE_STUDIO_OUTPUT_QUOTA_MB": str(QUOTA_MB),
            "ACE_STUDIO_BASE_MODEL": str(tiny_base_dir),  # Edit's parts: a part added writes two files a take
        },
    )
    with studio_process(env, work) as (url, proc):
        client = Client(url, verbose=False)
        client.predict(prompt="warm up", audio_duration=10, inference_steps=1, think=False, api_name="/generate")
        yield SimpleNamespace(url=url, proc=proc, out=work / "outputs", client=client)


# ---------------------------------------------------------------- one request's budget


def test_a_forged_four_by_ten_minutes_request_is_refused_at_admission(studio):
    """Unbounded, Think, auto length, 4 takes, 1 step and a plan asking 600 s would run 185 s and +4.29 GB."""
    before = _files(studio.out)
    with Rss(studio.proc.pid).peak() as memory:
        started = time.perf_counter()
        with pytest.raises(ValidationError) as info:
            studio.client.predict(
                prompt="forged",
                think=True,
                auto_length=True,
                batch_size=4,
                inference_steps=1,
                plan=FORGED_PLAN,
                api_name="/generate",
            )
        took = time.perf_counter() - started
    text = str(info.value)
    print(f"\nforged 4 × 600 s: refused in {took:.2f} s, +{memory['delta'] / MB:.0f} MB peak RSS\n{text}")
    # Think's measured 50 ms a step: two takes of 10 minutes no longer fit one call's GPU time either,
    # so the length is what the message points at.
    assert "audio_duration: 4 takes of 10 minutes with Think is more than one request may make here" in text, text
    assert "40 minutes of audio at once, where one request may make 20 minutes" in text
    assert "Takes up to 5 minutes" in text and "At most 2 takes" not in text
    # Refused at admission (a ``ValidationError``: the join's checks), at little memory and no file; its seconds
    # are printed, not bounded.
    assert memory["delta"] < 150 * MB and _files(studio.out) == before
    # The same without a plan (the plain path) meets the same bound, with the same message.
    with pytest.raises(ValidationError, match="4 takes of 10 minutes is more than one request may make here"):
        studio.client.predict(
            prompt="plain", audio_duration=600, batch_size=4, inference_steps=1, think=False, api_name="/generate"
        )
    # A visitor behind it is not kept waiting.
    started = time.perf_counter()
    studio.client.predict(prompt="victim", audio_duration=10, inference_steps=1, think=False, api_name="/generate")
    print(f"a victim's 10 s take right after: {time.perf_counter() - started:.2f} s")


def _admitted(job: modes.Job) -> modes.Job:
    """``job`` admitted as the admission check admits it, under the limit the studio gives it here."""
    return budget.admit(job, budget.max_gpu_seconds())


def test_the_plan_the_auto_and_the_plain_path_meet_one_bound(studio_env, with_planner):
    common = {"prompt": "x", "batch_size": 4, "inference_steps": 1}
    # Think choosing the length: bounded to the longest that fits, everywhere the length is used.
    auto = _admitted(modes.prepare_generate(**common, think=True, auto_length=True))
    # 270 s: with Think's measured figures (50 ms a code, 85 ms a thinking token), 4 takes of 280 s
    # pass the GPU seconds a request may take.
    assert job_record.of(auto)["longest"] == auto.request.plan.longest == auto.request.seconds == 270
    shape = MusicShape.of(auto.request)
    assert budget.over(dataclasses.replace(shape, seconds=280))
    assert auto.request.render.pipeline.audio_duration <= 270.1 and not budget.over(shape)
    # A fixed length and a plan brought back are refused where Think's own choice is bounded.
    for kwargs in ({"audio_duration": 310, "think": False}, {"think": True, "auto_length": True, "plan": FORGED_PLAN}):
        with pytest.raises(Exception, match="more than one request may make here"):
            _admitted(modes.prepare_generate(**common, **kwargs))
    assert _admitted(modes.prepare_generate(**common, audio_duration=300, think=False))
    # A plan's length within the budget is the song's length, and the planner keeps to it.
    fits = json.loads(FORGED_PLAN) | {"duration": 120}
    job = _admitted(modes.prepare_generate(**common, think=True, auto_length=True, plan=json.dumps(fits)))
    assert job_record.of(job)["longest"] == 120


def test_the_gpu_seconds_one_request_declares_stay_within_one_zerogpu_call(studio_env, monkeypatch):
    """4 × 600 s is estimated at 390 s (566 s with Think): declared as such, clamped to 300, it would be a
    call doomed to abort, so it is refused."""
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setenv("ACE_STUDIO_MAX_REQUEST_GPU_S", "1000")  # an owner's setting cannot pass ZeroGPU's limit
    monkeypatch.setenv("ACE_STUDIO_MAX_REQUEST_AUDIO_S", "3000")
    assert budget.max_gpu_seconds() == devices.GPU_MAX_SECONDS
    job = modes.prepare_generate(prompt="x", audio_duration=600, batch_size=4, inference_steps=50, think=False)
    monkeypatch.setattr(backend, "is_warm", lambda: True)
    assert duration_estimate.music_seconds(MusicShape.of(job.request)) > devices.GPU_MAX_SECONDS
    with pytest.raises(Exception, match=r"about \d+ s of GPU time, where one request may take 300 s") as info:
        _admitted(job)
    offered = re.search(r"At most (\d) takes? of that length", info.value.message)
    assert info.value.param == "batch_size" and offered, info.value.message
    # What the refusal offers fits, and a retry after an abort declares no more than one call may last.
    fits = modes.prepare_generate(
        prompt="x", audio_duration=600, batch_size=int(offered[1]), inference_steps=50, think=False
    )
    assert duration_estimate.music_seconds(MusicShape.of(_admitted(fits).request)) <= devices.GPU_MAX_SECONDS
    assert duration_estimate.music_duration(MusicShape.of(fits.request), 2.0) <= devices.GPU_MAX_SECONDS
    # The limit is the caller's argument, nothing else rewrites it: off ZeroGPU an owner may raise it.
    assert budget.admit(job, 1000).request is job.request
    monkeypatch.delenv("SPACES_ZERO_GPU")
    assert _admitted(job).request is job.request


def test_a_guidance_interval_costs_its_guided_steps_and_the_rest_half(studio_env):
    """Outside upstream's guidance interval a step runs the song's rows alone (``sampler``): the shape
    counts the steps within it (the sampler's times, t from 1 down), and the duration estimate declares less."""
    import music_shape

    asked = {"prompt": "x", "audio_duration": 120, "inference_steps": 50, "think": False}
    whole = MusicShape.of(modes.prepare_generate(**asked).request)
    part = modes.prepare_generate(**asked, cfg_interval_start=0.5)
    shape = MusicShape.of(part.request)
    within = sum(0.5 <= t <= 1.0 for t in music_shape.times(50, 3.0))  # shift 3: t >= 0.5 for 38 of 50
    assert (whole.guided_steps, whole.forwards) == (50, 2.0) and within == 38
    assert (shape.guided_steps, shape.forwards) == (38, 1.76)
    assert duration_estimate.music_seconds(shape) < duration_estimate.music_seconds(whole)
    # The record says it, *Use these settings* brings it back; a record without one: the whole schedule.
    back = records.settings({"params": job_record.of(part), "takes": [{"seed": 1}]})
    assert (back["cfg_interval_start"], back["cfg_interval_end"]) == (0.5, 1.0)
    before = records.settings({"params": {"prompt": "x"}, "takes": [{"seed": 1}]})
    assert (before["cfg_interval_start"], before["cfg_interval_end"]) == (0.0, 1.0)


# ---------------------------------------------------------------- the output folder's quota


def _old_take(out: Path, n: int, megabytes: float, age_s: float) -> Path:
    day = out / "2026-01-01"
    day.mkdir(parents=True, exist_ok=True)
    audio = day / f"generate-000000-00000{n}-take1-seed{n}.wav"
    audio.write_bytes(b"\0" * int(megabytes * MB))
    record = audio.with_suffix(".json")
    record.write_text("{}")
    for path in (audio, record):
        os.utime(path, (time.time() - age_s, time.time() - age_s))
    return audio


def test_the_output_folder_keeps_its_quota_oldest_first_never_a_take_being_fetched(studio):
    for path in _files(studio.out):
        path.unlink()
    oldest, older, old = (_old_take(studio.out, n, 6.5, age) for n, age in ((1, 3 * 3600), (2, 2 * 3600), (3, 3600)))
    url = f"{studio.url}takes/2026-01-01/{oldest.name}"
    # A visitor is fetching the oldest take right now.
    with httpx.stream("GET", url, timeout=CLIENT_TIMEOUT_S) as download:
        assert download.status_code == 200
        next(download.iter_bytes(4096))
        result = studio.client.predict(
            prompt="new", audio_duration=10, inference_steps=1, think=False, api_name="/generate"
        )
    held = sum(p.stat().st_size for p in _files(studio.out))
    print(f"\noutput folder after a new take: {held / MB:.1f} MB of {QUOTA_MB} MB")
    assert oldest.exists() and not older.exists() and not older.with_suffix(".json").exists() and old.exists()
    assert Path(result[0]).exists() and held <= QUOTA_MB * MB
    # Room the folder cannot make (what is left is fresh or being fetched) is refused before anything runs.
    _old_take(studio.out, 4, 6, 0)  # another visitor's take, just made
    before = _files(studio.out)
    for takes_, seconds, message in (
        (4, 10, "folder for finished songs is full"),
        (4, 60, r"MB, more than the studio's folder for finished songs holds \(20 MB\)"),
    ):
        with pytest.raises((ValidationError, AppError), match=message):
            studio.client.predict(
                prompt="big",
                audio_duration=seconds,
                batch_size=takes_,
                inference_steps=1,
                think=False,
                api_name="/generate",
            )
    assert _files(studio.out) == before
    for path in _files(studio.out):  # the next tests start with an empty folder
        path.unlink()


def test_the_bytes_a_request_may_write_cover_every_file_it_writes(studio, studio_env, tmp_path):
    """The disk space a request reserves in the output folder (``budget.bytes_written``) covers every file
    it leaves there: each take, its MP3 preview (WAV, FLAC), its latents, record and .lrc, a part added
    alone beside its take; read from the folder after real requests of each format, the estimate from the
    same request's shape as the admission check prepares it."""
    from test_audio_modes import tone

    song = str(tone(tmp_path / "song.wav", seconds=15))
    # An Extend of an Ogg upload writes 32-bit float WAV at its own rate (``untouched``): twice a 16-bit take.
    ogg = str(tone(tmp_path / "song.ogg", seconds=10, fmt="OGG", subtype="VORBIS"))
    sung = "[Verse]\nglass in the morning\nstrings in the evening"
    made_new = {"think": False, "audio_duration": 12}
    try:
        for api, settings in (
            ("/extend", {"src_audio": ogg, "extend_seconds": 5, "audio_format": "wav"}),
            ("/generate", {**made_new, "audio_format": "wav", "batch_size": 2, "lyrics": sung}),
            ("/generate", {**made_new, "audio_format": "flac"}),
            ("/generate", {**made_new, "audio_format": "mp3", "lyrics": sung}),
            ("/edit", {"src_audio": song, "change": "add", "part": "drums"}),
        ):
            sent = {
                **settings,
                **({"src_audio": handle_file(settings["src_audio"])} if "src_audio" in settings else {}),
            }
            made = studio.client.predict(prompt="glass", inference_steps=1, api_name=api, **sent)[-1]
            first = studio.out / made["takes"][0]["audio"]
            request = first.name.split("-take1-")[0] + "-"  # every file of this request: its mode, time and mark
            files = [p for p in first.parent.iterdir() if p.name.startswith(request)]
            asked = handlers.prepare_for_admission(
                api[1:], {"prompt": "glass", "inference_steps": 1, **settings}
            ).request
            written, estimate = sum(p.stat().st_size for p in files), budget.bytes_written(MusicShape.of(asked))
            print(
                f"\n{api} {made['params']['audio_format']}: {estimate:,} B estimated, {written:,} B in {len(files)} files"
            )
            assert estimate >= written, (api, sorted(p.name for p in files))
            for path in files:  # the folder holds 20 MB: the next request starts with free space
                path.unlink()
    finally:
        for path in _files(studio.out):  # the next tests start with an empty folder (its quota is 20 MB)
            path.unlink()


def test_disk_space_is_freed_and_reserved_for_runs_under_way(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("ACE_STUDIO_OUTPUT_QUOTA_MB", "10")
    first, second = _old_take(tmp_path, 1, 4, 7200), _old_take(tmp_path, 2, 4, 3600)
    assert output_folder.free_disk_space(3 * MB, dry_run=True) and first.exists()  # a dry run only tells
    with output_folder.reserve(3 * MB) as made:
        assert made and not first.exists() and second.exists()
        with output_folder.reserve(3 * MB) as again:  # the first run's space is not promised twice
            assert again and not second.exists()
        with output_folder.reserve(8 * MB) as too_much:
            assert not too_much


# ---------------------------------------------------------------- LoRAs at admission


@pytest.fixture(scope="module")
def tiny_transformer(tiny_pipeline_dir):
    import models

    return models.load_pipeline(str(tiny_pipeline_dir), models.VARIANTS["xl-sft"]).transformer


@pytest.fixture(scope="module")
def bad_loras(tiny_transformer, tmp_path_factory):
    """A LoRA for the tiny pipeline in four spellings, and its pair scaled as an alpha of 2 means."""
    root = tmp_path_factory.mktemp("bad-loras")
    good = load_file(str(random_models.save_lora(root / "good.safetensors", tiny_transformer)))
    a_keys = [k for k in good if ".lora_A." in k]

    def save(name: str, tensors: dict) -> Path:
        save_file(tensors, str(root / f"{name}.safetensors"))
        return root / f"{name}.safetensors"

    return {
        "good": root / "good.safetensors",
        "rank0": save(
            "rank0",
            {k: torch.zeros(0, v.shape[1]) if ".lora_A." in k else torch.zeros(v.shape[0], 0) for k, v in good.items()},
        ),
        "alpha": save("alpha", {**good, **{k.replace(".lora_A.weight", ".alpha"): torch.tensor(2.0) for k in a_keys}}),
        "halved": save("halved", {k: v * 0.5 if ".lora_B." in k else v for k, v in good.items()}),  # rank 4, alpha 2
        "default": save("default", {k.replace(".weight", ".default.weight"): v for k, v in good.items()}),
        "junk": save("junk", {**good, "transformer.time_embed.weight": torch.zeros(3)}),
    }


def _join(url: str, fn: int, data: list, session: str) -> httpx.Response:
    return httpx.post(
        f"{url}gradio_api/queue/join",
        timeout=300,
        json={"data": data, "fn_index": fn, "session_hash": session, "trigger_id": None},
    )


def test_twelve_joins_naming_one_big_lora_read_it_once_from_its_header(studio, tiny_transformer, tmp_path):
    """Read in full at admission, 12 joins naming one 190 MB LoRA would cost +2,049 MB."""
    big = tmp_path / "big.safetensors"
    targets = {
        name: size
        for name, size in lora.layer_sizes(tiny_transformer).items()
        if name.endswith(("to_q", "to_k", "to_v", "to_out.0"))
    }
    rank = 190 * MB // (4 * sum(a + b for a, b in targets.values()))  # 190 MB in float32
    save_file(
        {
            f"transformer.{name}.lora_{part}.weight": torch.zeros((rank, i) if part == "A" else (o, rank))
            for name, (i, o) in targets.items()
            for part in "AB"
        },
        str(big),
    )
    with open(big, "rb") as f:
        server_path = httpx.post(f"{studio.url}gradio_api/upload", files={"files": (big.name, f)}, timeout=120).json()[
            0
        ]
    fns, parameters = page_api(studio.url)
    fn = fns["generate"]
    # A seed out of range is checked after the LoRA: each join pays for the LoRA check and is then turned away.
    values = {
        "prompt": "lora",
        "audio_duration": 10,
        "inference_steps": 1,
        "think": False,
        "seed": -5,
        "lora": {"path": server_path, "meta": {"_type": "gradio.FileData"}},
    }
    data = inputs(parameters["generate"], **values)
    answers: list[httpx.Response] = []
    with Rss(studio.proc.pid).peak() as memory:
        threads = [
            threading.Thread(target=lambda i=i: answers.append(_join(studio.url, fn, data, f"lora{i}")))
            for i in range(12)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print(f"\n12 joins naming one {big.stat().st_size / MB:.0f} MB LoRA: +{memory['delta'] / MB:.0f} MB peak RSS")
    assert all(a.status_code == 422 and "Seed must be a whole number" in a.text for a in answers), answers[0].text
    assert memory["delta"] < 100 * MB


def test_loras_that_failed_on_the_gpu_get_a_message_at_admission_or_load(studio, bad_loras):
    """A LoRA of rank 0 or of tensors that are not LoRA weights is refused with a message at admission; an
    ``alpha`` tensor and PEFT's ``lora_A.default.weight`` names load as PEFT reads them; none ends as "The
    model stopped with an error (ValueError)"."""
    common = dict(prompt="dub", audio_duration=10, inference_steps=2, seed=4, think=False, api_name="/generate")
    client = studio.client
    for name, message in (("rank0", "has rank 0 in"), ("junk", "holds tensors that are not LoRA weights")):
        with pytest.raises(ValidationError, match=f"lora: {name}.safetensors {message}"):
            client.predict(**common, lora=handle_file(str(bad_loras[name])))
    made = {
        name: sf.read(client.predict(**common, lora=handle_file(str(bad_loras[name])))[0])[0]
        for name in ("good", "alpha", "halved", "default")
    }
    np.testing.assert_array_equal(made["default"], made["good"])  # PEFT's adapter names: the same LoRA
    np.testing.assert_array_equal(made["alpha"], made["halved"])  # alpha 2 over rank 4: B at half
    assert not np.array_equal(made["alpha"], made["good"])
