"""The studio as a ZeroGPU Space serves it: real ``spaces`` wrappers, forked workers, pickled calls.

The studio runs in its own process with ``SPACES_ZERO_GPU=true`` against ``FakeDeviceAPI`` (a thread
of this process, see ``zerogpu_harness.py``), on tiny random models, and is used through
``gradio_client`` as a visitor's script would use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError

import checks
import generation
import lyrics
import modes
import random_models
import stems
from conftest import ROOT, free_port, stopped_result, wait_in_queue, wait_until_serving
from scripted_planner import LONG_CAPTION, LONG_CAPTION_WHEN
from test_api import chain_audio_modes
from test_audio_modes import tone
from test_stems import _check_stems as check_stems
from test_stems import _take as stems_take
from zerogpu_harness import start_studio


@pytest.fixture(scope="module")
def space(zerogpu_space):
    """The studio served under the harness (conftest's ``zerogpu_space``, shared with test_quota:
    Think on, as a visitor finds it); (url, fake API, output folder)."""
    return zerogpu_space.url, zerogpu_space.api, zerogpu_space.outputs


@pytest.fixture
def client(space):
    return Client(space[0], verbose=False)


@pytest.fixture(scope="module")
def refused(space):
    """One page for the requests the admission check refuses: none of them is queued, so none holds its share."""
    return Client(space[0], verbose=False)


def _files(out: Path) -> set[Path]:
    return set(out.rglob("*.*")) if out.exists() else set()


def test_startup_was_reported(space):
    assert space[1].startup_reports == 1


def test_generate_with_two_takes(client, space):
    result = client.predict(
        prompt="funk groove",
        audio_duration=10,
        inference_steps=3,
        seed=21,
        batch_size=2,
        think=False,
        api_name="/generate",
    )
    first, second, meta = result[0], result[1], result[-1]
    assert sf.info(first).frames == sf.info(second).frames == 10 * 48000
    assert [t["seed"] for t in meta["takes"]] == [21, 22]
    assert "ZeroGPU" in result[4] and meta["model"]["device"] == "cpu"
    assert not np.array_equal(sf.read(first)[0], sf.read(second)[0])


def test_think_plans_inside_the_one_gpu_call(client, space):
    api = space[1]
    seen, killed = len(api.durations), len(api.killed)
    result = client.predict(
        prompt="slow blues",
        lyrics="[Verse]\nmidnight train",
        audio_duration=10,
        inference_steps=3,
        seed=30,
        batch_size=4,
        think=True,
        api_name="/generate",
    )
    plans = [take["planner"] for take in result[-1]["takes"]]
    assert [(p["take"], p["of"], p["codes"]) for p in plans] == [(n, 4, 50) for n in (1, 2, 3, 4)]
    assert set(plans[0]["fields"]) >= {"bpm", "keyscale", "caption"} and "Planned in" in result[4]
    assert all(Path(path).exists() for path in result[:4])
    # One plan, four blueprints and four takes in one GPU call, whose declared time held all of it.
    assert len(api.durations) == seen + 1 and len(api.killed) == killed
    plain = client.predict(
        prompt="slow blues",
        lyrics="[Verse]\nmidnight train",
        audio_duration=10,
        inference_steps=3,
        seed=30,
        think=False,
        api_name="/generate",
    )
    assert "planner" not in plain[-1]["takes"][0]


def test_cover_extend_edit_chained(client, tmp_path):
    chain_audio_modes(client, tmp_path)


def _encodes(space) -> list[int]:
    """The VAE encodes the studio and its workers made so far (the harness's spy): each one's samples."""
    log = space[2].parent / "vae-encodes.log"
    return [int(n) for n in log.read_text().split()] if log.exists() else []


def test_an_edit_of_a_take_starts_from_its_latents_across_the_workers_pickle(client, space, tmp_path):
    """The take's final latents come back from the worker with its audio (numpy, pickled), are kept beside
    it, and an Edit of it, in another worker, starts from them: no VAE encode of the song."""
    take, *_, made = client.predict(
        prompt="funk", audio_duration=10, inference_steps=2, seed=61, think=False, api_name="/generate"
    )
    kept = np.load(space[2] / made["takes"][0]["latents"]["file"], allow_pickle=False)
    assert kept.shape[0] == 250 and np.isfinite(kept).all()
    before = len(_encodes(space))
    *_, edited = client.predict(
        src_audio=handle_file(take),
        prompt="brass",
        repainting_start=2,
        repainting_end=5,
        inference_steps=2,
        seed=61,
        api_name="/edit",
    )
    assert len(_encodes(space)) == before and edited["params"]["source_latents"].startswith("the take's own latents")
    assert edited["params"]["seed_redrawn"] == 61 and edited["takes"][0]["seed"] != 61
    before = len(_encodes(space))
    song = tone(tmp_path / "song.wav", seconds=10)
    client.predict(
        src_audio=handle_file(str(song)),
        prompt="x",
        repainting_start=2,
        repainting_end=5,
        inference_steps=2,
        api_name="/edit",
    )
    assert _encodes(space)[before:] == [10 * 48000]  # an upload: its one encode, in the worker


def test_a_takes_morph_is_one_gpu_call_from_its_latents_across_the_workers_pickle(client, space):
    """``/morph`` on ZeroGPU: the request, the take's own latents in it, pickled into a worker,
    one call declared within the clamp and never cut short; no VAE encode of the take in any worker;
    the morph's take and its latents back, to be morphed again."""
    api, out = space[1], space[2]
    *_, record = client.predict(
        prompt="funk",
        lyrics="[Verse]\nla la",
        audio_duration=10,
        inference_steps=2,
        seed=64,
        think=False,
        api_name="/generate",
    )
    seen, killed, before = len(api.durations), len(api.killed), len(_encodes(space))
    take, *_, line, made = client.predict(
        take=1, record=record, prompt="dark techno", lyrics="[Verse]\nla la", seed=5, api_name="/morph"
    )
    assert take and line.startswith("Seeds — take 1: 5") and made["mode"] == "morph"
    assert made["params"]["source_latents"].startswith("the take's own latents") and len(_encodes(space)) == before
    assert len(api.durations) == seen + 1 and 60 <= api.durations[-1] <= 300 and len(api.killed) == killed
    assert np.load(out / made["takes"][0]["latents"]["file"], allow_pickle=False).shape[0] == 250
    *_, again = client.predict(take=1, record=made, prompt="dark techno, choir", api_name="/morph")
    assert again["params"]["morph"]["of"]["audio"] == made["takes"][0]["audio"] and len(_encodes(space)) == before


def test_describe_is_one_gpu_call_with_its_own_declared_time(client, space, tmp_path):
    api = space[1]
    seen, killed = len(api.durations), len(api.killed)
    song = handle_file(str(tone(tmp_path / "song.wav", seconds=10)))
    prompt, *_, note = client.predict(src_audio=song, lyrics="[Verse]\nmine", api_name="/describe")
    assert note.startswith("**What the planner heard** (50 codes") and "Lyrics: kept yours" in note
    # The codes and the planner's generation in one call, declared within the clamp, never cut short.
    assert len(api.durations) == seen + 1 and 60 <= api.durations[-1] <= 300 and len(api.killed) == killed


def test_write_song_is_one_gpu_call_with_its_own_declared_time(client, space):
    api = space[1]
    seen, killed = len(api.durations), len(api.killed)
    *fields, note = client.predict(idea="a bossa nova about the last train", seed=4, api_name="/write_song")
    assert note.startswith("**Written** (seed 4") and 10 <= fields[5] <= 240
    assert len(api.durations) == seen + 1 and 60 <= api.durations[-1] <= 300 and len(api.killed) == killed
    assert client.predict(idea="a bossa nova about the last train", seed=4, api_name="/write_song")[:6] == tuple(fields)


def test_variations_are_one_gpu_call_declared_as_their_takes(client, space):
    api = space[1]
    *_, record = client.predict(
        prompt="funk groove", audio_duration=10, inference_steps=3, seed=23, think=False, api_name="/generate"
    )
    seen, killed = len(api.durations), len(api.killed)
    *slots, line, made = client.predict(take=1, record=record, amount=0.3, count=2, seed=8, api_name="/variations")
    assert slots[0] and slots[1] and "take 1 varied 0.3, new noise 9" in line
    assert [t["variation"]["seed"] for t in made["takes"]] == [8, 9] and [t["seed"] for t in made["takes"]] == [23, 23]
    assert len(api.durations) == seen + 1 and len(api.killed) == killed
    # Declared as Generate declares the take's settings for two takes.
    client.predict(
        prompt="funk groove",
        audio_duration=10,
        inference_steps=3,
        seed=23,
        think=False,
        batch_size=2,
        api_name="/generate",
    )
    assert api.durations[-1] == api.durations[seen]


def test_stems_are_their_own_gpu_call(client, space):
    api, out = space[1], space[2]
    take, record = stems_take(client, 44)
    seen, killed = len(api.durations), len(api.killed)
    paths = client.predict(take=1, record=record, api_name="/stems")
    check_stems(list(paths), take, record, out)
    assert api.durations[seen:] == [stems.estimate_duration(10.0)] and len(api.killed) == killed
    assert "stems model could not be built" not in (out.parent / "studio.log").read_text()
    # Another visitor's page cannot split this take: refused by the admission check, no GPU call asked for.
    with pytest.raises(ValidationError, match="Take 1 is no longer kept by the studio"):
        Client(space[0], verbose=False).predict(take=1, record=record, api_name="/stems")
    assert len(api.durations) == seen + 1


def test_lyrics_stream_and_use_in_generate(client):
    job = client.submit(theme="rain on the city", genre="lo-fi", seed=4, api_name="/lyrics")
    text, caption, seed = job.result(timeout=120)
    assert seed == 4
    streamed = job.outputs()
    assert len(streamed) > 3  # the text arrived piece by piece through the worker
    assert text.startswith("[") and caption
    filled = client.predict(text=text, caption=caption, vocal_language="ja", api_name="/use_in_generate")
    assert filled[0] == text and filled[1] == caption and filled[2] is False and filled[3] == "ja"


def _wait_for_step(job, timeout: float = 60, unit: str = "steps", past: int = 0) -> int:
    """The first step reported past ``past`` (in ``unit``), waited for as the stream's own event."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        progress = job.status().progress_data or []
        if reached := max((p.index or 0 for p in progress if p.unit == unit and (p.index or 0) > past), default=0):
            return reached
        time.sleep(0.1)  # gradio_client keeps the stream's last progress line: nothing to wait on
    raise AssertionError(f"no progress in {unit} past {past} reported: {job.status()}")


def test_stop_ends_the_run_within_seconds_and_saves_nothing(client, space):
    out = space[2]
    before = _files(out)
    job = client.submit(
        prompt="long jam", audio_duration=60, inference_steps=200, seed=1, think=False, api_name="/generate"
    )
    _wait_for_step(job)
    # Stop on another tab leaves this run alone: steps go on after it was answered (a run stopped by it would
    # end at its next step, so two more steps and the run still going are the event, not a sleep).
    client.predict(api_name="/stop_cover")
    stopped_at = _wait_for_step(job)
    _wait_for_step(job, past=stopped_at + 1)
    assert not job.done()
    client.predict(api_name="/stop")
    # Stopped before its 200 steps, with a message (waited for as an event; not timed).
    stopped_result(job, r"^Stopped at step \d+ of 200\. Nothing was saved\.$")
    assert _files(out) == before
    # The studio serves the next request at once: the stopped run released the GPU.
    again = client.predict(prompt="short", audio_duration=10, inference_steps=1, think=False, api_name="/generate")
    assert Path(again[0]).exists()


def test_a_cancelled_request_ends_in_its_worker_and_frees_the_gpu(client, space):
    """Gradio's /cancel gives the queue place back at once; the worker's run must end too."""
    out, api = space[2], space[1]
    before, calls = _files(out), len(api.durations)
    ghost = client.submit(
        prompt="ghost", audio_duration=60, inference_steps=200, seed=5, think=False, api_name="/generate"
    )
    log = out.parent / "studio.log"
    offset = log.stat().st_size
    _wait_for_step(ghost)
    ghost.cancel()
    again = Client(space[0], verbose=False).predict(
        prompt="next", audio_duration=10, inference_steps=1, think=False, api_name="/generate"
    )
    assert Path(again[0]).exists()
    assert len(_files(out) - before) == 4  # the next take, its preview, record, latents; nothing of the cancelled one
    assert len(api.durations) == calls + 2
    # Not behind 200 steps nobody waits for: the ghost's run stopped short of them, in its worker, and its GPU
    # call was given back before the next one was lent (counted and put in order, not timed).
    said = log.read_bytes()[offset:].decode(errors="replace")
    stopped = [int(n) for n in re.findall(r"generate: Stopped: Stopped at step (\d+) of 200", said)]
    assert len(stopped) == 1 and stopped[0] < 200, said[-3000:]
    (ghost_span, next_span) = api.spans[calls : calls + 2]
    assert ghost_span[1] <= next_span[0], (ghost_span, next_span)


def test_stop_while_the_planner_writes_the_blueprint(client, space):
    out = space[2]
    before = _files(out)
    job = client.submit(
        prompt="long jam", audio_duration=120, inference_steps=3, seed=2, think=True, api_name="/generate"
    )
    _wait_for_step(job, unit="codes")
    client.predict(api_name="/stop")
    stopped_result(job, r"Stopped while the planner wrote the blueprint \(\d+ of 600 codes\)")
    assert _files(out) == before


def test_thinks_long_caption_is_made_to_fit_in_the_worker(client, space):
    """A planner's caption past what the model reads is cut to fit in the worker, not refused after the
    whole plan ("The caption is 243 tokens long …"). The harness' planner writes a caption past what
    the model reads for this request (``HARNESS_PLANNER_SCRIPT``): the song is made from the caption cut
    at its last phrase that fits, in the forked worker (a 240 s song's budget: test_planner's
    ``test_texts_a_model_wrote_are_made_to_fit…``)."""
    made = client.predict(
        prompt=f"jazz, {LONG_CAPTION_WHEN}",
        audio_duration=12,
        inference_steps=1,
        seed=6,
        think=True,
        api_name="/generate",
    )
    plan = made[-1]["takes"][0]["planner"]
    assert plan["fields"]["caption"] == LONG_CAPTION and plan["caption_fit"]["kept"] == "phrase", plan
    assert LONG_CAPTION.startswith(plan["caption_read"]) and Path(made[0]).exists()
    assert sf.info(made[0]).duration == pytest.approx(12, abs=0.01) and "cut at its last phrase" in made[-2]


def test_stop_reaches_a_request_still_waiting_in_the_queue(client, space):
    # The long take holds the one GPU slot, so the lyrics request waits behind it.
    generation = client.submit(
        prompt="long jam", audio_duration=60, inference_steps=200, seed=2, think=False, api_name="/generate"
    )
    _wait_for_step(generation)
    writing = client.submit(theme="a ballad", seed=2, api_name="/lyrics")
    wait_in_queue(writing)
    client.predict(api_name="/stop_lyrics")
    assert not generation.done()  # Stop on the Lyrics tab leaves the music run alone
    client.predict(api_name="/stop")
    stopped_result(generation, "Stopped at step")
    assert tuple(writing.result(timeout=60)) == ("", "", 2)  # stopped before the writer wrote a word


BAD = [
    ("/generate", {"prompt": "pop", "audio_duration": 900}, "audio_duration: Duration must be between 10 s and 600 s"),
    ("/generate", {"prompt": "pop", "key_scale": "X minor"}, "key_scale: Unknown key"),
    ("/generate", {"prompt": "pop", "inference_steps": 0}, "inference_steps: Steps must be between 1 and 200"),
    ("/generate", {"prompt": "pop", "audio_format": "ogg"}, "audio_format: Unknown output format"),
    ("/generate", {"prompt": "pop", "bpm": 500}, "bpm: BPM must be between 30 and 300"),
    ("/generate", {"prompt": "pop", "vocal_language": "klingon"}, "vocal_language: Unknown vocal language"),
    ("/generate", {"prompt": "pop", "seed": -7}, "seed: Seed must be a whole number"),
    ("/generate", {}, "prompt: Describe the music"),
    ("/cover", {"prompt": "x"}, "src_audio: .*upload a song first"),
    ("/cover", {"prompt": "x", "audio_cover_strength": 3, "src_audio": "SRC"}, "Cover strength must be between 0"),
    ("/edit", {"prompt": "x", "repainting_start": 5, "repainting_end": 20, "src_audio": "SRC"}, "after the song"),
    ("/edit", {"prompt": "x", "repainting_start": 5, "repainting_end": 4, "src_audio": "SRC"}, "start before it ends"),
    ("/extend", {"prompt": "x", "extend_seconds": 2, "src_audio": "SRC"}, "Seconds to add must be between 5"),
    ("/extend", {"prompt": "x", "src_audio": "NOTES"}, "not an audio file"),
    ("/lyrics", {"theme": ""}, "theme: Tell the writer what the song is about"),
    ("/lyrics", {"theme": "x", "vocal_language": "klingon"}, "vocal_language: Unknown vocal language"),
    ("/lyrics", {"theme": "x", "structure": "sonata"}, "structure: Unknown structure"),
]


@pytest.mark.parametrize(("api", "kwargs", "message"), BAD, ids=[f"{a}-{m[:30]}" for a, _, m in BAD])
def test_bad_input_gets_the_studios_message(refused, api, kwargs, message, tmp_path):
    files = {"SRC": tone(tmp_path / "src.wav", seconds=10), "NOTES": tmp_path / "notes.wav"}
    files["NOTES"].write_text("not audio")
    args = {k: handle_file(str(files[v])) if v in files else v for k, v in kwargs.items()}
    with pytest.raises(ValidationError, match=message):
        refused.predict(**args, api_name=api)


def test_the_lyric_token_limit_is_checked_before_the_queue(refused):
    # Counted by the pipeline's own tokenizer in the page's process: no GPU call is spent on it.
    rng = np.random.default_rng(0)
    lyrics = " ".join("".join(rng.choice(list("qzxjvk"), 5)) for _ in range(680))
    assert len(lyrics) <= checks.MAX_LYRICS_CHARS
    with pytest.raises(ValidationError, match="lyrics: The lyrics are .* tokens long; the model reads at most 2048"):
        refused.predict(
            prompt="pop", lyrics=lyrics, audio_duration=10, inference_steps=1, think=False, api_name="/generate"
        )


def test_four_visitors_at_once(space):
    visitors = [Client(space[0], verbose=False) for _ in range(4)]
    jobs = [
        c.submit(
            prompt=f"visitor {i}", audio_duration=10 + i, inference_steps=2, seed=i, think=False, api_name="/generate"
        )
        for i, c in enumerate(visitors)
    ]
    for i, job in enumerate(jobs):
        result = job.result(timeout=300)
        assert sf.info(result[0]).frames == (10 + i) * 48000 and result[-1]["takes"][0]["seed"] == i


def test_the_next_visitors_gpu_call_is_scheduled_while_the_first_take_is_finished(space):
    """The GPU queue does not wait on CPU work (a take's finish, map and record run after its request
    leaves the queue's one place): the second visitor's call is scheduled by ZeroGPU before the
    first visitor has their take; the GPU's idle time between the two is printed (docs/performance.md)."""
    api = space[1]
    before = len(api.spans)
    visitors = [Client(space[0], verbose=False, download_files=False) for _ in range(2)]
    # 30 s songs: the first take's finish (its mastering, preview, map and record, a second of CPU and more)
    # is still far longer than the second call's lending (60 s ones cost the Space 12 CPU s, not 6).
    song = {"audio_duration": 30, "inference_steps": 2, "think": False, "api_name": "/generate"}
    jobs, done = [], []
    for i, visitor in enumerate(visitors):
        jobs.append(visitor.submit(prompt=f"visitor {i}", seed=i, **song))
        jobs[-1].add_done_callback(lambda _, i=i: done.append((i, time.monotonic())))
    assert all(job.result(timeout=300)[0] for job in jobs)
    (first, second), had = api.spans[before : before + 2], dict(done)
    idle = second[0] - first[1]
    print(
        f"\nZeroGPU harness, two 30 s songs at once: the GPU idle {1000 * idle:.0f} ms between them; the first "
        f"visitor had their take {1000 * (had[0] - first[1]):.0f} ms after its GPU call ended"
    )
    # Waiting for the whole of the first request would leave the GPU idle about 1.5 s here.
    # Put in order, not timed: the second call is lent before the first take's record is written,
    # the last file of its finish (its mtime and the fake API's wall clock).
    records = [(space[2] / job.result()[-1]["takes"][0]["audio"]).with_suffix(".json").stat().st_mtime for job in jobs]
    assert api.scheduled_at[before + 1] < min(records), (api.scheduled_at[before : before + 2], records)


def test_a_lora_request_then_a_plain_one_is_bit_identical(client, tiny_pipeline_dir, tmp_path):
    import models

    pipe = models.load_pipeline(str(tiny_pipeline_dir), models.VARIANTS["xl-sft"])
    lora = random_models.save_lora(tmp_path / "style.safetensors", pipe.transformer)
    plain = {
        "prompt": "dub",
        "audio_duration": 10,
        "inference_steps": 2,
        "seed": 9,
        "think": False,
        "api_name": "/generate",
    }
    reference = sf.read(client.predict(**plain)[0])[0]
    styled = client.predict(**plain, lora=handle_file(str(lora)), lora_scale=1.0)
    assert styled[-1]["params"]["lora"] == "style.safetensors"
    assert not np.array_equal(sf.read(styled[0])[0], reference)
    np.testing.assert_array_equal(sf.read(client.predict(**plain)[0])[0], reference)


def test_an_aborted_call_is_retried_at_twice_the_time_then_reported(client, space):
    api = space[1]
    request = {
        "prompt": "abort me",
        "audio_duration": 10,
        "inference_steps": 2,
        "seed": 4,
        "think": False,
        "api_name": "/generate",
    }
    api.scales = [0.0001]  # the first call is killed right away, the retry gets its full time
    seen, killed = len(api.durations), len(api.killed)
    result = client.predict(**request)
    assert Path(result[0]).exists()
    first, retry = api.durations[seen:]
    assert retry == 2 * first and len(api.killed) == killed + 1
    api.scales = [0.0001, 0.0001]
    with pytest.raises(AppError, match="The GPU time ran out twice for this request"):
        client.predict(**request)
    assert len(api.killed) == killed + 3
    # And the studio goes on serving.
    assert Path(client.predict(**request)[0]).exists()


def test_a_request_over_one_calls_limit_is_refused_before_any_call(client, space):
    """A request past one call's 300 s (4 × 600 s with Think is estimated at 566 s) starts no call, where
    ZeroGPU would abort it and its retry: the visitor is told what fits (with Think's measured 50 ms a
    step, not even one take of 10 minutes with Think fits one call)."""
    seen = len(space[1].durations)
    said = r"2 takes of 10 minutes with Think is more than one request may make here \(about \d+ s of GPU time, "
    fits = r"where one request may take 300 s\)\. Takes up to \d+ min( \d+ s)?, or the same without Think"
    with pytest.raises(ValidationError, match=said + fits):
        client.predict(
            prompt="long", audio_duration=600, batch_size=2, inference_steps=50, think=True, api_name="/generate"
        )
    assert len(space[1].durations) == seen


def test_a_replaced_worker_is_ended_so_a_long_run_holds_few(client, space):
    """The harness ends a worker the wrapper replaced, as ZeroGPU ends a worker it no longer uses (kept
    alive, they made 22 forked workers and 6.3 GB by the end of a run). Every third call is given a fresh worker (``FakeDeviceAPI.fresh_every``): after four more calls (one of
    them fresh, with a worker of the same function before it to replace), at most one worker a GPU function
    lives."""
    from zerogpu_harness import _alive

    api = space[1]
    for seed in range(4):
        client.predict(
            prompt="short", audio_duration=10, inference_steps=1, seed=seed, think=False, api_name="/generate"
        )
    alive = sorted({pid for pid in api.workers if _alive(pid)})
    assert api.ended and len(alive) <= len(set(api._last_pid)), (alive, api.ended)


def test_every_declared_duration_is_within_the_clamp(space):
    durations = space[1].durations
    assert len(durations) >= 15
    assert all(60 <= d <= 300 for d in durations), durations


# ---------------------------------------------------------------- what crosses the worker boundary


def test_visitor_errors_survive_a_pickle_round_trip():
    err = pickle.loads(pickle.dumps(checks.InputError("The LoRA is for another model.", "lora", title="LoRA")))
    assert isinstance(err, gr.Error) and (err.message, err.param, err.title) == (
        "The LoRA is for another model.",
        "lora",
        "LoRA",
    )
    lerr = pickle.loads(pickle.dumps(lyrics.LyricsError("Unknown structure 'x'.", "structure")))
    assert (str(lerr), lerr.param) == ("Unknown structure 'x'.", "structure")
    stopped = pickle.loads(pickle.dumps(gr.Error("Stopped at step 2 of 8. Nothing was saved.", title="Stopped")))
    assert stopped.message.startswith("Stopped at step 2") and stopped.title == "Stopped"


def test_what_a_gpu_call_takes_and_returns_pickles(studio_env):
    job = modes.prepare_generate(prompt="pop", audio_duration=10, inference_steps=1, seed=3)
    progress = gr.Progress()
    pickle.dumps((job.request, progress, "run-id", 1.0))
    result = generation.run_music(job.request)
    assert pickle.loads(pickle.dumps(result)).audio.shape == (1, 2, 480000)


HIDE_SPACES = (
    "import importlib.util, runpy, sys; real = importlib.util.find_spec; "
    "importlib.util.find_spec = lambda name, *a: None if name == 'spaces' else real(name, *a); "
    "sys.argv = ['zerogpu_harness.py', '--serve']; runpy.run_path('tests/zerogpu_harness.py', run_name='__main__')"
)


def test_the_harness_refuses_to_start_without_spaces(monkeypatch, tmp_path):
    import importlib.util

    import zerogpu_harness

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "spaces" else real(name, *a))
    with pytest.raises(zerogpu_harness.NoSpaces, match=r"needs the `spaces` package \(pip install -r requirements-dev"):
        start_studio(dict(os.environ), tmp_path / "never.log")
    assert not (tmp_path / "never.log").exists()
    served = subprocess.run([sys.executable, "-c", HIDE_SPACES], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert served.returncode == 1 and "needs the `spaces` package" in served.stderr, served


RUNNER = """
import sys, time
sys.path.insert(0, "tests")
from zerogpu_harness import start_studio
from pathlib import Path
import os, studio_fork
if os.environ["ACE_STUDIO_TESTS_FORK"] == "1":  # the tie to this process is the point, not the imports
    studio_fork._INTERPRETER[:] = [studio_fork.Interpreter(libraries=False)]
proc = start_studio(dict(__import__("os").environ), Path(sys.argv[1]))
print(proc.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize(("fork", "named"), [("1", "studio_fork.py"), ("0", "--serve")])
def test_a_harness_studio_never_outlives_a_killed_test_run(tmp_path, fork, named):
    """Started as the suite starts it (forked from ``studio_fork``'s interpreter, itself tied to the test
    process) or as a new interpreter: either way it ends with a test process killed with SIGKILL."""
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(free_port())}
    env["ACE_STUDIO_TESTS_FORK"] = fork
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(tmp_path / "studio.log")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    studio = int(runner.stdout.readline())
    try:
        assert named in Path(f"/proc/{studio}/cmdline").read_bytes().decode()  # started, and alive
        runner.kill()  # as a killed pytest dies: no clean-up of its own
        runner.wait()
        deadline = time.monotonic() + 30
        while Path(f"/proc/{studio}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for a process to end: there is no event for that in another tree
        gone = not Path(f"/proc/{studio}").exists() or "Z" in Path(f"/proc/{studio}/stat").read_text().split()[2]
        assert gone, "the harness studio outlived the process that started it"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(studio, signal.SIGKILL)


def test_a_forked_studio_is_its_script_with_its_own_environment_group_output_and_end(tmp_path, monkeypatch):
    """``studio_fork``: what a studio forked from the imported libraries gets, as ``python script`` would
    (its arguments, exactly its environment, a process group of its own, its output in its log, its exit
    code heard; ``wait`` gives up when told), and which environments it refuses (a new interpreter then)."""
    import studio_fork

    script = tmp_path / "studio.py"
    script.write_text(
        "import os, sys, time\n"
        "print(sys.argv[1:], os.environ.get('SETTING'), 'UNSET' in os.environ, os.getpgid(0) == os.getpid())\n"
        "time.sleep(float(sys.argv[1]))\n"
        "sys.exit(3)\n"
    )
    monkeypatch.setenv("UNSET", "the interpreter's, not the studio's")
    for name in ("KMP_INIT_AT_FORK", "TORCHINDUCTOR_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    forks = studio_fork.Interpreter(libraries=False)
    try:
        env = {k: v for k, v in os.environ.items() if k != "UNSET"}
        slow = forks.start([str(script), "60"], {**env, "SETTING": "slow"}, tmp_path / "slow.log")
        quick = forks.start([str(script), "0"], {**env, "SETTING": "quick"}, tmp_path / "quick.log")
        assert quick.wait(60) == 3 and (tmp_path / "quick.log").read_text() == "['0'] quick False True\n"
        with pytest.raises(subprocess.TimeoutExpired):
            slow.wait(0.1)
        assert slow.poll() is None
        slow.kill()
        assert slow.wait(60) == -signal.SIGKILL and "['60'] slow" in (tmp_path / "slow.log").read_text()
        assert forks.fits(
            {**forks.env, "ACE_STUDIO_ANY": "1", "GRADIO_SERVER_PORT": "1", "PYTORCH_ENABLE_MPS_FALLBACK": "1"}
        )
        # What joblib (scikit-learn's import) and torch's inductor set in a test process as it runs.
        assert forks.fits({**forks.env, "KMP_INIT_AT_FORK": "FALSE", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)})
        assert not forks.fits({**forks.env, "HF_HOME": str(tmp_path)})  # read as huggingface_hub is imported
        assert forks.fits({**forks.env, "HF_HUB_CACHE": str(tmp_path)})  # set again in the studio, below
    finally:
        forks.proc.kill()


def test_a_studio_forked_with_a_hub_cache_of_its_own_reads_that_cache(tmp_path, monkeypatch):
    """``studio_fork``: huggingface_hub read ``HF_HUB_CACHE`` as the interpreter imported it; a studio forked
    with its own (the ZeroGPU Space's, holding Demucs's bag) finds its files there, not in the interpreter's."""
    import huggingface_hub
    import huggingface_hub.utils._cache_manager as cache_manager

    import studio_fork

    for module in (huggingface_hub.constants, cache_manager):
        monkeypatch.setattr(module, "HF_HUB_CACHE", module.HF_HUB_CACHE)  # put back after the test
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_HUB_CACHE", huggingface_hub.constants.HF_HUB_CACHE)
    (tmp_path / "models--a--b" / "snapshots" / "c").mkdir(parents=True)
    (tmp_path / "models--a--b" / "refs").mkdir()
    (tmp_path / "models--a--b" / "refs" / "main").write_text("c")
    (tmp_path / "models--a--b" / "snapshots" / "c" / "config.json").write_text("{}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    studio_fork._hub_cache_as_set()
    assert huggingface_hub.try_to_load_from_cache("a/b", "config.json") == str(
        tmp_path / "models--a--b" / "snapshots" / "c" / "config.json"
    )
    assert str(tmp_path) == cache_manager.HF_HUB_CACHE


# What a studio's Gradio holds once imported: every value of its modules' tops, and its functions' and
# methods' defaults, that is a plain value (a setting read on import is one), as JSON.
GRADIO_HELD = """
import inspect, json, os, sys
from pathlib import PurePath
before = "gradio" in sys.modules
import gradio
plain = (str, int, float, bool, type(None), PurePath)
held = {"imported before": before}
for name, module in sorted(sys.modules.items()):
    if not name.startswith("gradio") or module is None:
        continue
    for key, value in vars(module).items():
        if key.startswith("__"):
            continue
        if isinstance(value, plain):
            held[f"{name}.{key}"] = str(value)
        methods = [(f"{key}.{k}", v) for k, v in vars(value).items()] if inspect.isclass(value) else []
        for owner, method in [(key, value), *methods]:
            if inspect.isfunction(method) and method.__module__ == name:
                defaults = [*(method.__defaults__ or ()), *(method.__kwdefaults__ or {}).values()]
                held[f"{name}.{owner}()"] = [str(d) for d in defaults if isinstance(d, plain)]
with open(sys.argv[1], "w") as out:
    json.dump(held, out, indent=0, sort_keys=True)
"""


def test_a_forked_studios_gradio_holds_its_own_settings_as_a_new_interpreters_does(tmp_path):
    """``studio_fork`` imports Gradio before a studio is forked: each of Gradio's settings it read then
    (its temporary folder, the port and addresses) holds the studio's own value, exactly as Gradio imported anew
    in the studio's environment holds it, down to every plain value at a module's top and every default; what
    Gradio draws at random as it is imported (a secret), each studio draws anew. A studio that sets another
    setting Gradio read (its profiling) is a new interpreter, which reads it."""
    import studio_fork

    script = tmp_path / "held.py"
    script.write_text(GRADIO_HELD)
    chosen = {"GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "GRADIO_SERVER_PORT": str(free_port())}
    env = {**os.environ, **chosen, "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_NODE_SERVER_NAME": "localhost"}
    env["ACE_STUDIO_PLANNER_MODEL"] = str(tmp_path)  # a setting of the studio's own, as every studio has
    held, kinds = {}, {}
    runs = (
        ("forked", {}),
        ("again", {}),
        ("new", {"ACE_STUDIO_TESTS_FORK": "0"}),
        ("profiled", {"GRADIO_PROFILING": "1"}),
    )
    for how, told in runs:
        studio = studio_fork.start(
            [str(script), str(tmp_path / f"{how}.json")], {**env, **told}, tmp_path / f"{how}.log"
        )
        assert studio.wait(300) == 0, (tmp_path / f"{how}.log").read_text()
        held[how], kinds[how] = json.loads((tmp_path / f"{how}.json").read_text()), type(studio).__name__
    assert kinds == {"forked": "Forked", "again": "Forked", "new": "Popen", "profiled": "Forked"}
    forked, new = held["forked"], held["new"]
    drawn = {f"{module}.{name}" for module, name in studio_fork._gradio_drawn()}  # at random as it is imported
    differs = {k: (forked.get(k), new.get(k)) for k in forked.keys() | new.keys() if forked.get(k) != new.get(k)}
    assert set(differs) == drawn | {"imported before"}, differs
    assert [held[how]["imported before"] for how, _ in runs] == [True, True, False, False]
    assert all(forked[k] != held["again"][k] for k in drawn)  # each studio its own
    assert new["gradio.route_utils.DEFAULT_TEMP_DIR"] == chosen["GRADIO_TEMP_DIR"]
    # Forked, then a new interpreter in its place (``os.execve``): profiling on, as its setting says.
    assert (
        held["profiled"]["gradio.profiling.PROFILING_ENABLED"] == "True" != forked["gradio.profiling.PROFILING_ENABLED"]
    )


def _port_free(port: int) -> bool:
    """Whether ``python app.py`` could listen on ``port``: bound as uvicorn binds (``SO_REUSEADDR``), so a
    connection the killed studio left in TIME_WAIT (the kernel closing it, on the server's side) is no holder."""
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_killed_harness_takes_its_studio_along_and_frees_the_port(
    tiny_pipeline_dir, tiny_planner_dir, tiny_lyrics_dir, tmp_path
):
    """``python tests/zerogpu_harness.py`` (docs/deployment.md) killed with SIGKILL: its studio ends
    with it, workers and all, so the next ``python app.py`` finds the port free."""
    import psutil

    port, log = free_port(), tmp_path / "harness.log"
    lm = tiny_lyrics_dir
    command = [sys.executable, "tests/zerogpu_harness.py", "--port", str(port), "--model", str(tiny_pipeline_dir)]
    command += ["--lyrics-model", str(lm), "--planner-model", str(tiny_planner_dir)]
    # Its work folder (``mkdtemp``) in this test's: killed, it cannot remove it itself.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with open(log, "wb") as out:
        harness = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    studio = []
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", harness, log)
        studio = psutil.Process(harness.pid).children(recursive=True)
        assert studio and not _port_free(port)
        harness.kill()  # no clean-up of its own: only the studio's tie to it can end the studio
        harness.wait()
        deadline = time.monotonic() + 30
        while not _port_free(port) and time.monotonic() < deadline:
            time.sleep(0.1)  # a port freed in another process tree has no event to wait on
        assert _port_free(port), f"the harness's studio still holds port {port}: {log.read_text()[-2000:]}"
        _, alive = psutil.wait_procs(studio, timeout=10)
        assert not alive, alive
    finally:
        for proc in studio:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(harness.pid, signal.SIGKILL)


def test_parts_are_one_gpu_call_each_on_the_base_built_at_start_up(client, space, tmp_path):
    """A part added, taken out, the song completed, each one call through the music entry,
    on the base's DiT that the start-up built in the main process (no build inside a worker); Stop
    ends a part as it ends every run."""
    api, out = space[1], space[2]
    seen, killed = len(api.durations), len(api.killed)
    song = handle_file(str(tone(tmp_path / "song.wav", seconds=8)))
    for settings in (
        {"change": "add", "part": "drums"},
        {"change": "extract", "part": "vocals"},
        {"change": "complete", "add_parts": ["bass", "keyboard"]},
    ):
        record = client.predict(src_audio=song, inference_steps=2, api_name="/edit", **settings)[-1]
        assert record["params"]["change"] == settings["change"] and record["model"]["folder"] == "tiny-base"
        assert "base_load_s" not in record["timings"]  # built at start-up, not in the worker
    assert (out / record["takes"][0]["audio"]).is_file()
    assert len(api.durations) == seen + 3 and all(60 <= d <= 300 for d in api.durations[-3:])
    assert len(api.killed) == killed
    before = _files(out)
    job = client.submit(src_audio=song, change="extract", part="bass", inference_steps=200, api_name="/edit")
    _wait_for_step(job)
    client.predict(api_name="/stop_edit")
    stopped_result(job, r"^Stopped at step \d+ of 200\. Nothing was saved\.$")
    assert _files(out) == before


def test_edit_and_extend_by_the_bar_under_zerogpu(client, space, tmp_path):
    """Bars counted on the CPU of the Space's own process (the song's map: ``song_map``), the
    region and the length they set sent to the worker like any Edit's and Extend's; each take's record
    carries its map."""
    from bench_bars import clicks

    song, truth = clicks(100, 3, 20.0)
    path = tmp_path / "waltz.wav"
    sf.write(str(path), song.T, 48000)
    *_, edited = client.predict(
        src_audio=handle_file(str(path)), prompt="x", bars="2-3", inference_steps=2, seed=3, api_name="/edit"
    )
    start, end = edited["params"]["repainting_start"], edited["params"]["repainting_end"]
    assert start == pytest.approx(truth[1], abs=0.03) and end == pytest.approx(truth[3], abs=0.03)
    # The same region in seconds makes the same take, sample for sample.
    *_, by_seconds = client.predict(
        src_audio=handle_file(str(path)),
        prompt="x",
        repainting_start=start,
        repainting_end=end,
        inference_steps=2,
        seed=3,
        api_name="/edit",
    )
    takes = [sf.read(str(space[2] / r["takes"][0]["audio"]))[0] for r in (edited, by_seconds)]
    assert np.array_equal(*takes)
    assert isinstance(edited["takes"][0]["bars"], list) and "map_s" in edited["timings"]
    *_, extended = client.predict(
        src_audio=handle_file(str(path)), prompt="x", bars=4, inference_steps=2, api_name="/extend"
    )
    bar = float(np.median(np.diff(truth)))
    added = extended["params"]["extend_seconds"]
    assert extended["params"]["extend_bars"] == 4 and 4 * bar - 0.05 <= added < 5 * bar + 0.05
    after = (20.0 + added - truth[-1]) / bar
    assert after == pytest.approx(round(after), abs=0.03)
