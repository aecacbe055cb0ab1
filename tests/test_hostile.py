"""A stranger attacks the served studio through its API: every attack gets the studio's own message.

Each kind of attack (text floods, bad numbers, hostile uploads and LoRAs, a
burst past the queue cap, a full disk, Stop) runs against the real app on tiny models through
``gradio_client``; ``test_tally`` prints tried / clear / unclear / leaked.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError
from safetensors.torch import load_file, save_file

import audio
import backend
import output_folder
import random_models
import runs
import takes
from conftest import CLIENT_TIMEOUT_S, ROOT, stopped_result, wait_in_queue, wait_running

TALLY = {"tried": 0, "clear": 0, "unclear": 0, "leaked": 0}
# What a visitor must never see: Gradio's or HTTP's own message, Python's, or a server path.
UNCLEAR = ("Bad Request", "upstream Gradio app", "Traceback", "Error(", "exception", "/tmp/")


@pytest.fixture(scope="module")
def served(studio_server):
    url, out = studio_server
    return Client(url, verbose=False), url, out


def _attack(client, api: str, expect: str, error=ValidationError, **kwargs) -> None:
    """One attack: it must fail with ``expect`` in the studio's message, and leave no file behind."""
    out = Path(output_folder.output_dir())
    before = set(out.rglob("*"))
    TALLY["tried"] += 1
    with pytest.raises((ValidationError, AppError)) as info:
        client.predict(**kwargs, api_name=api)
    text = str(info.value)
    clear = isinstance(info.value, error) and expect in text and not any(u in text for u in UNCLEAR)
    TALLY["clear" if clear else "unclear"] += 1
    if set(out.rglob("*")) != before:
        TALLY["leaked"] += 1
    assert clear, text
    assert set(out.rglob("*")) == before


def _tone(path: Path, seconds: float, rate: int = 48000, channels: int = 2, fmt: str = "WAV") -> Path:
    """A quiet sine written block by block, so even a long many-channel file needs little memory here."""
    with sf.SoundFile(str(path), "w", rate, channels, format=fmt) as f:
        step = rate
        for start in range(0, int(seconds * rate), step):
            t = (np.arange(start, min(start + step, int(seconds * rate))) / rate)[:, None]
            f.write(np.repeat(0.1 * np.sin(2 * np.pi * 220 * t), channels, axis=1).astype(np.float32))
    return path


# ---------------------------------------------------------------- texts and numbers


FLOODS = [
    ("/lyrics", {"theme": "song", "genre": "x" * 1_000_000}, "genre: This field takes up to 200 characters"),
    ("/lyrics", {"theme": "song", "mood": "x" * 5000}, "mood: This field takes up to 200 characters"),
    ("/lyrics", {"theme": "x" * 1001}, "theme: This field takes up to 1000 characters"),
    ("/lyrics", {"theme": "song", "custom_sections": "Verse," * 200}, "custom_sections: This field takes up to 500"),
    ("/lyrics", {"theme": "song", "structure": "x" * 100_000}, "structure: This field takes up to 64 characters"),
    ("/generate", {"prompt": "pop", "key_scale": "C" * 10_000}, "key_scale: This field takes up to 64"),
    ("/generate", {"prompt": "pop", "vocal_language": "en" * 5000}, "vocal_language: This field takes up to 64"),
    ("/generate", {"prompt": "x" * 100_000}, "prompt: This field takes up to 512 characters"),
    ("/generate", {"prompt": "pop", "lyrics": "la " * 100_000}, "lyrics: This field takes up to 4096 characters"),
    ("/edit", {"prompt": "x" * 2000}, "prompt: This field takes up to 512"),
]


@pytest.mark.parametrize(("api", "kwargs", "expect"), FLOODS, ids=[e[:24] for *_, e in FLOODS])
def test_every_text_field_has_a_limit_before_the_queue(served, api, kwargs, expect, monkeypatch):
    """Refused at admission (a ``ValidationError``, ``_attack``), not after a GPU call: no GPU call made
    (counted, not timed)."""
    import gpu

    calls = []
    for name in ("call", "stream"):
        real = getattr(gpu, name)
        monkeypatch.setattr(gpu, name, lambda *args, _real=real, **kw: calls.append(args) or _real(*args, **kw))
    _attack(served[0], api, expect, **kwargs)
    assert calls == []


NUMBERS = [
    ("/generate", {"prompt": "pop", "bpm": "fast"}, "bpm: BPM must be a number"),
    ("/generate", {"prompt": "pop", "seed": "abc"}, "seed: Seed must be a number"),
    ("/generate", {"prompt": "pop", "seed": 1.5}, "seed: Seed must be a whole number"),
    ("/generate", {"prompt": "pop", "seed": 2**40}, "seed: Seed must be a whole number from 0 to 4294967295"),
    ("/generate", {"prompt": "pop", "audio_duration": "nan"}, "audio_duration: Duration must be a number"),
    ("/generate", {"prompt": "pop", "batch_size": 2.5}, "batch_size: Takes must be a whole number"),
    ("/lyrics", {"theme": "song", "seed": 2**70}, "seed: Seed must be a whole number from 0 to 4294967295"),
    ("/lyrics", {"theme": "song", "seed": 1.5}, "seed: Seed must be a whole number"),
    ("/lyrics", {"theme": "song", "temperature": "hot"}, "temperature: Creativity must be a number"),
]


@pytest.mark.parametrize(("api", "kwargs", "expect"), NUMBERS, ids=[e[:30] for *_, e in NUMBERS])
def test_numbers_reach_the_studios_own_checks(served, api, kwargs, expect):
    _attack(served[0], api, expect, **kwargs)


# JSON carries NaN and infinity as text (gradio_client refuses to send a float NaN).
@pytest.mark.parametrize("seed", ["abc", "nan", "inf", 1.5], ids=["text", "nan", "inf", "fraction"])
def test_every_seed_gets_the_same_message_on_its_field(served, seed):
    """Every public seed, /write_song's too, goes through one lenient field and one check: the same
    message, not Gradio's own 400 for "abc", NaN and inf, nor 1.5 rounded and run."""
    said = {}
    for api, asked in (
        ("/generate", {"prompt": "pop"}),
        ("/write_song", {"idea": "a song"}),
        ("/lyrics", {"theme": "x"}),
    ):
        with pytest.raises(ValidationError) as info:
            served[0].predict(**asked, seed=seed, api_name=api)
        said[api] = str(info.value)
    assert len(set(said.values())) == 1, said
    assert "seed: Seed must be a" in said["/write_song"] and not any(u in said["/write_song"] for u in UNCLEAR)


def test_every_public_number_slider_and_radio_is_lenient(served):
    """Gradio's own preprocess answers a bad number with a bare 400 or rounds it without a word: every
    number, slider and radio an endpoint takes is the studio's lenient field (``widgets.lenient``); so is
    every dropdown that holds to its choices and every checkbox group (Edit's repaint mode answered
    "Balanced" with a bare 400, not on its field)."""
    import gradio as gr

    import app

    def strict_choices(c: object) -> bool:
        return isinstance(c, gr.CheckboxGroup) or (isinstance(c, gr.Dropdown) and not c.allow_custom_value)

    strict = [
        (fn.api_name, type(c).__name__, c.label)
        for fn in app.demo.fns.values()
        if fn.api_visibility != "private"
        for c in fn.inputs
        if (isinstance(c, gr.Number | gr.Slider | gr.Radio) or strict_choices(c))
        and not getattr(c, "studio_lenient", False)
    ]
    assert strict == []


def test_a_repaint_mode_outside_its_choices_is_told_on_its_field(served, tmp_path):
    """An API value the repaint modes lack (a capital, a word of its own) gets the studio's message on
    ``repaint_mode``, not Gradio's bare 400; the studio serves on. The song and its lyrics are given: a request
    without them is refused on them first (``preparing.render``'s order)."""
    client, song = served[0], handle_file(str(_tone(tmp_path / "song.wav", 10)))
    region = {"src_audio": song, "prompt": "pop", "repainting_start": 1, "repainting_end": 4}
    for mode in ("Balanced", "gentle"):
        with pytest.raises((ValidationError, AppError), match=r"repaint_mode: Repaint mode must be one of"):
            client.predict(**region, repaint_mode=mode, api_name="/edit")


def test_the_docs_give_every_text_limit_the_admission_check_checks():
    """One limit for each text parameter, spelled once (``checks.TEXT_LIMITS``): README's list of limits
    and /write_song's row say the same numbers (an idea over 64 characters is refused at admission)."""
    import re

    import checks
    import idea_row

    readme = (ROOT / "README.md").read_text()
    listed = dict(re.findall(r"`([a-z_]+)` (\d+)", readme[readme.index("Text parameters have limits") :][:700]))
    assert {name: int(n) for name, n in listed.items()} == checks.TEXT_LIMITS
    assert f"`idea` (at most {checks.MAX_IDEA_CHARS} characters)" in readme
    assert f"at most {checks.MAX_IDEA_CHARS} characters" in idea_row.write_song.__doc__


def test_region_numbers_and_a_lora_with_another_suffix(served, tmp_path):
    client = served[0]
    src = handle_file(str(_tone(tmp_path / "song.wav", 12)))
    _attack(
        client,
        "/edit",
        "repainting_start: The region -1–4 s starts 1 s before the song does",
        src_audio=src,
        prompt="x",
        repainting_start=-1,
        repainting_end=4,
    )
    _attack(
        client,
        "/edit",
        "repainting_start: Region start must be a number",
        src_audio=src,
        prompt="x",
        repainting_start="abc",
        repainting_end=4,
    )
    notes = tmp_path / "style.txt"
    notes.write_text("not a lora")
    _attack(
        client, "/generate", "lora: style.txt is not a .safetensors file", prompt="pop", lora=handle_file(str(notes))
    )


# ---------------------------------------------------------------- uploads


def test_a_file_that_decodes_to_an_hour_is_refused_from_its_header(tmp_path):
    hour = _tone(tmp_path / "hour.flac", 3600, rate=1000, channels=1, fmt="FLAC")
    assert hour.stat().st_size < 2_000_000
    tracemalloc.start()
    with pytest.raises(audio.AudioError, match="60.0 minutes long; the studio takes up to 10 minutes"):
        audio.load(hour)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5 * 2**20  # an hour decoded would hold 14 MB: refused from its header (not timed)


def test_a_many_channel_high_rate_file_decodes_in_bounded_memory(tmp_path):
    # 8 channels at 192 kHz for 20 s: 123 MB as float32 if decoded whole, before any conversion.
    src = _tone(tmp_path / "surround.flac", 20, rate=192_000, channels=8, fmt="FLAC")
    tracemalloc.start()
    song = audio.load(src)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert song.shape == (2, 20 * 48000)
    result = song.nbytes
    assert peak < result + 40 * 2**20, f"peak {peak / 2**20:.0f} MiB for a {result / 2**20:.0f} MiB result"


def test_an_upload_with_no_place_to_be_read_is_told_so_and_the_next_request_is_served(served, tmp_path, monkeypatch):
    """``uploads.Busy`` as a visitor meets it. Every place to read an upload is held (one place, held here as
    another visitor's decode holds it): a Cover's song waits ``uploads.WAIT_S`` for one and the request is
    refused with ``error_messages.DECODES_BUSY``'s message, nothing written; the place given back, the same
    request is served."""
    import error_messages
    import uploads

    client = served[0]
    monkeypatch.setenv("ACE_STUDIO_DECODES", "1")
    song = handle_file(str(_tone(tmp_path / "song.wav", 10)))
    busy = uploads.stats["busy"]
    with uploads._budget.hold(0):
        _attack(client, "/cover", error_messages.DECODES_BUSY, AppError, src_audio=song, prompt="x")
    assert uploads.stats["busy"] == busy + 1  # refused by the decode budget, not before it
    covered = client.predict(src_audio=song, prompt="x", inference_steps=1, api_name="/cover")
    assert covered[-1]["mode"] == "cover" and sf.info(covered[0]).frames == 10 * 48000


def test_uploads_through_the_api(served, tmp_path):
    client = served[0]
    hour = handle_file(str(_tone(tmp_path / "hour.flac", 3600, rate=1000, channels=1, fmt="FLAC")))
    _attack(client, "/cover", "src_audio: The song is 60.0 minutes long", src_audio=hour, prompt="x")
    many = tmp_path / "many.wav"
    with sf.SoundFile(str(many), "w", 8000, 32, format="WAV") as f:
        f.write(np.full((8000, 32), 0.1, dtype=np.float32))
    _attack(
        client,
        "/extend",
        "src_audio: The song (many.wav) has 32 channels",
        src_audio=handle_file(str(many)),
        prompt="x",
    )


# ---------------------------------------------------------------- LoRA files


def test_broken_loras_are_refused_with_a_message(served, tmp_path):
    """A LoRA whose header is wrong is refused on its field before the queue; one whose numbers are not
    finite when its run reads the whole file (the admission check reads headers only), nothing made."""
    client = served[0]
    client.predict(prompt="warm the model", audio_duration=10, inference_steps=1, think=False, api_name="/generate")
    # The LoRA is shaped on the served studio's own tiny transformer (no adapter on it: asserted below).
    good = random_models.save_lora(tmp_path / "good.safetensors", backend.get_backend().pipe.transformer)
    state = load_file(str(good))
    save_file({k: v for k, v in state.items() if "lora_A" in k}, str(tmp_path / "half.safetensors"))
    save_file({k: (v * 100).to(torch.int8) for k, v in state.items()}, str(tmp_path / "int8.safetensors"))
    save_file({k: torch.full_like(v, float("nan")) for k, v in state.items()}, str(tmp_path / "nan.safetensors"))
    for name, expect, error in (
        ("half", "lora: half.safetensors is incomplete", ValidationError),
        ("int8", "lora: int8.safetensors stores its weights as I8", ValidationError),
        ("nan", "nan.safetensors is damaged", AppError),
    ):
        lora = handle_file(str(tmp_path / f"{name}.safetensors"))
        _attack(client, "/generate", expect, error, prompt="pop", lora=lora)
    assert not backend.get_backend().has_adapter_layers()


def test_broken_output_is_never_delivered():
    with pytest.raises(backend.BrokenOutput, match="broken audio"):
        backend.check_output(np.full((1, 2, 480000), np.nan, dtype=np.float32))
    with pytest.raises(backend.BrokenOutput):
        backend.check_output(np.full((1, 2, 480000), 0.89, dtype=np.float32))  # full-scale DC
    backend.check_output(np.sin(np.linspace(0, 100, 960000, dtype=np.float32)).reshape(1, 2, -1))


# ---------------------------------------------------------------- the queue, the disk, Stop


def test_a_burst_cannot_pass_the_queue_cap(served, monkeypatch):
    _, url, _ = served
    monkeypatch.setenv("ACE_STUDIO_QUEUE_SIZE", "2")
    visitors = [Client(url, verbose=False) for _ in range(30)]
    gate = threading.Barrier(len(visitors))
    outcomes: list[str] = []

    def join(client: Client) -> None:
        gate.wait()
        try:
            job = client.submit(prompt="burst", audio_duration=10, inference_steps=1, think=False, api_name="/generate")
            job.result(timeout=300)
            outcomes.append("admitted")
        except ValidationError as exc:
            outcomes.append("busy" if "The studio is busy" in str(exc) else str(exc))
        except Exception as exc:  # reported in the assertion below
            outcomes.append(f"{type(exc).__name__}: {exc}"[:200])

    # A long take holds the GPU, so whoever is admitted waits in the queue and counts there,
    # however slowly the burst arrives.
    holder = Client(url, verbose=False)
    long_take = holder.submit(prompt="hold", audio_duration=60, inference_steps=200, think=False, api_name="/generate")
    wait_running(long_take)
    threads = [threading.Thread(target=join, args=(c,)) for c in visitors]
    for t in threads:
        t.start()
    deadline = time.time() + 120
    while len(outcomes) < 28 and time.time() < deadline:
        time.sleep(0.2)
    holder.predict(api_name="/stop")
    for t in threads:
        t.join(timeout=300)
    TALLY["tried"] += 1
    ok = outcomes.count("admitted") <= 2 and outcomes.count("busy") == 30 - outcomes.count("admitted")
    TALLY["clear" if ok else "unclear"] += 1
    assert ok, [o for o in outcomes if o != "busy"]


def test_a_full_disk_gets_a_clear_message_and_leaves_nothing(served, monkeypatch):
    client, _, out = served
    real_save = audio.save

    def full_disk(x, path, fmt="wav", *args, **kwargs):
        written = real_save(x[:, :1000], path, fmt, *args, **kwargs)  # half a file, then the disk is full
        raise OSError(28, "No space left on device", str(written))

    monkeypatch.setattr(audio, "save", full_disk)
    _attack(
        client,
        "/generate",
        "Your song was made but could not be saved: the disk of the studio's output folder is full",
        error=AppError,
        prompt="pop",
        audio_duration=10,
        inference_steps=1,
        think=False,
    )
    assert not [p for p in out.rglob("*") if p.is_file() and (p.name.startswith(".partial") or p.stat().st_size == 0)]
    monkeypatch.setattr(audio, "save", real_save)
    assert Path(
        client.predict(prompt="pop", audio_duration=10, inference_steps=1, think=False, api_name="/generate")[0]
    ).exists()


def test_a_full_disk_seen_only_by_libsndfile_is_still_a_full_disk(served, monkeypatch):
    import shutil

    import soundfile

    client = served[0]

    def system_error(x, path, fmt="wav", *_, **__):
        raise soundfile.LibsndfileError(0, "Error writing to file: ")  # what libsndfile says, no errno

    monkeypatch.setattr(audio, "save", system_error)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100 * 2**30, 100 * 2**30, 2**20))
    _attack(
        client,
        "/generate",
        "could not be saved: the disk of the studio's output folder is full",
        error=AppError,
        prompt="pop",
        audio_duration=10,
        inference_steps=1,
        think=False,
    )
    assert takes.FULL_DISK_BYTES > 2**20


def test_stop_through_the_api_ends_this_run_only_and_cleans_up(served):
    client, _, out = served
    cancel_dir = runs._cancel_dir()
    before = {p for p in out.rglob("*") if p.is_file()}
    job = client.submit(
        prompt="long jam", audio_duration=60, inference_steps=200, seed=1, think=False, api_name="/generate"
    )
    wait_running(job)
    client.predict(api_name="/stop_edit")  # another tab of the same visitor
    Client(served[1], verbose=False).predict(api_name="/stop")  # another visitor
    # Neither stop touched this run: a Stop flags a run (its flag file) or its request (by event id) before its
    # call returns, and both marks last as long as the run, which is still registered; read at once, not after a
    # sleep that a loaded machine's slow stop can outlast.
    assert runs.active() == 1 and not list(cancel_dir.iterdir()) and not runs.event_stopped(_event_of(job))
    client.predict(api_name="/stop")
    TALLY["tried"] += 1
    stopped_result(job, r"^Stopped at step \d+ of 200\. Nothing was saved\.$")  # a stop, not an error
    TALLY["clear"] += 1
    assert {p for p in out.rglob("*") if p.is_file()} == before
    assert not list(cancel_dir.iterdir())  # the run's flag is gone with the run


def test_stop_reaches_a_request_still_in_the_queue(served, tmp_path):
    client, _, _ = served
    song = handle_file(str(_tone(tmp_path / "song.wav", 10)))
    running = client.submit(
        prompt="long jam", audio_duration=60, inference_steps=200, think=False, api_name="/generate"
    )
    wait_running(running)
    waiting = client.submit(src_audio=song, prompt="more", extend_seconds=5, inference_steps=1, api_name="/extend")
    wait_in_queue(waiting)
    client.predict(api_name="/stop_extend")
    client.predict(api_name="/stop")
    stopped_result(running, "Stopped at step")
    stopped_result(waiting, "^Stopped before it started. Nothing was saved.$")


def _stopped_while_held(served, tmp_path, in_gap: threading.Event, stop_clicked: threading.Event) -> None:
    """An Extend sent, held (by the test's seam) until ``in_gap`` is set, Stop clicked on its tab, the seam let
    go (``stop_clicked``): it ends as "Stopped before it started" and writes nothing."""
    client, _, out = served
    song = handle_file(str(_tone(tmp_path / "song.wav", 10)))
    before = {p for p in out.rglob("*") if p.is_file()}
    job = client.submit(src_audio=song, prompt="more", extend_seconds=5, inference_steps=1, api_name="/extend")
    assert in_gap.wait(60), job.status()
    client.predict(api_name="/stop_extend")
    stop_clicked.set()
    stopped_result(job, "^Stopped before it started. Nothing was saved.$")
    assert {p for p in out.rglob("*") if p.is_file()} == before


def test_stop_reaches_a_request_taken_from_the_queue_before_its_run_begins(served, tmp_path, monkeypatch):
    # Gradio takes a request out of its queue, reads its uploads and calls the handler before the run
    # registers (``runs.tab_run``): a Stop clicked in that gap must still find it (else the take is written).
    import contextlib

    import handlers

    in_gap, stop_clicked = threading.Event(), threading.Event()
    real_using = handlers.uploads.using

    @contextlib.contextmanager
    def held(files):
        in_gap.set()
        assert stop_clicked.wait(60)
        with real_using(files):
            yield

    monkeypatch.setattr(handlers.uploads, "using", held)
    _stopped_while_held(served, tmp_path, in_gap, stop_clicked)


def test_stop_reaches_a_request_whose_admission_check_still_runs(served, tmp_path, monkeypatch):
    # A request enters Gradio's queue only after its validator returns: a Stop clicked while the checks run
    # finds neither a queued request nor a run, so ``runs.stop_joining`` marks the join.
    import checks

    in_admission, stop_clicked = threading.Event(), threading.Event()
    real_lengths = checks.check_text_lengths

    def held(values):
        if "extend_seconds" in values:
            in_admission.set()
            assert stop_clicked.wait(60)
        return real_lengths(values)

    monkeypatch.setattr(checks, "check_text_lengths", held)
    _stopped_while_held(served, tmp_path, in_admission, stop_clicked)


def _in_the_gpu_queue(job, timeout: float = 60) -> None:
    """Return once ``job`` runs and waits in the GPU queue (``gpu.in_gpu_queue``: its progress line says so)."""
    import messages

    waiting = messages.IN_GPU_QUEUE.split(":")[0]
    deadline = time.monotonic() + timeout
    while not any((p.desc or "").startswith(waiting) for p in job.status().progress_data or []):
        assert time.monotonic() < deadline and not job.done(), job.status()
        time.sleep(0.05)  # the client has no callback for a progress line; its status is the event


def _event_of(job, timeout: float = 60) -> str:
    """The event id Gradio gave ``job``'s join (``gradio_client`` keeps it on the job's helper)."""
    deadline = time.monotonic() + timeout
    while job.communicator.event_id is None:
        assert time.monotonic() < deadline and not job.done(), job.status()
        time.sleep(0.02)  # set by the job's own thread once the join is answered
    return job.communicator.event_id


def test_another_sessions_cancel_neither_drops_nor_holds_a_waiting_request(served):
    """A stranger's ``/gradio_api/cancel`` naming a victim's event id (under the stranger's own session), 20
    cancels of guessed ids under a session one character off the victim's, and the stranger's own Stop:
    Gradio alone would take the victim's request out of the queue by its id and tell no one (its completion
    goes to the session the cancel named), so the victim's Edit would never end. A cancel acts on the
    caller's own session's events only; the victim's request stays and its take comes."""
    import uuid

    import httpx

    from conftest import SERVED, page_api

    client, url, out = served
    queue = SERVED[url]._queue
    fns, _ = page_api(url)
    holder, victim, stranger = (Client(url, verbose=False) for _ in range(3))
    running, queued, job = _a_request_waiting_behind(holder, victim)
    event = _event_of(job)
    assert any(e._id == event for waiting in queue.event_queue_per_concurrency_id.values() for e in waiting.queue)
    cancel = f"{url}gradio_api/cancel"
    said = httpx.post(
        cancel,
        json={"session_hash": stranger.session_hash, "fn_index": fns["generate"], "event_id": event},
        timeout=CLIENT_TIMEOUT_S,
    )
    assert said.status_code == 200, said.text
    near = victim.session_hash[:-1] + ("a" if victim.session_hash[-1] != "a" else "b")
    for _ in range(20):
        guess = {"session_hash": near, "fn_index": fns["generate"], "event_id": uuid.uuid4().hex}
        assert httpx.post(cancel, json=guess, timeout=CLIENT_TIMEOUT_S).status_code == 200
    stranger.predict(api_name="/stop")
    assert event in queue.event_ids_to_events, "another session's cancel took the request out of the queue"
    assert any(e._id == event for waiting in queue.event_queue_per_concurrency_id.values() for e in waiting.queue)
    _holders_stop(holder, running, queued)
    take, *_ = job.result(timeout=120)
    assert take and Path(take).is_file()


def _a_request_waiting_behind(holder, victim) -> tuple:
    """The holder's long take running and its next one in the GPU queue (the GPU requests Gradio runs at once,
    ``gpu.requests_at_once``, are taken), then the victim's short Generate, which waits in Gradio's queue:
    (running, queued, the victim's job)."""
    running = holder.submit(
        prompt="long jam", audio_duration=60, inference_steps=200, think=False, api_name="/generate"
    )
    wait_running(running)
    queued = holder.submit(prompt="next jam", audio_duration=60, inference_steps=200, think=False, api_name="/generate")
    _in_the_gpu_queue(queued)
    return (
        running,
        queued,
        victim.submit(prompt="mine", audio_duration=10, inference_steps=1, think=False, api_name="/generate"),
    )


def _holders_stop(holder, running, queued) -> None:
    """The holder's own Stop: both its runs end, and the victim's request gets the GPU."""
    holder.predict(api_name="/stop")
    stopped_result(running, "^Stopped at step")
    stopped_result(queued, "^Stopped before it started")


def _first_said(url: str, path: str, past: tuple[str, ...] = ()) -> tuple[str, object]:
    """The first event (its kind and data) of the REST API's result stream at ``path`` whose kind is not
    in ``past``: a heartbeat comes within ``streams.HEARTBEAT_S`` on any stream Gradio opens."""
    import json

    import httpx

    with httpx.stream("GET", f"{url}gradio_api/{path}", timeout=60) as answer:
        assert answer.status_code == 200, answer.read()
        kind = None
        for line in answer.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind not in past:
                return kind, json.loads(line.split(":", 1)[1])
    raise AssertionError(f"{path}: the stream ended without an event")


def test_another_sessions_event_id_opens_neither_its_stream_nor_its_result(served):
    """A stranger who read a visitor's event id (every message of the visitor's stream names it) asked
    the REST API's result stream for it: Gradio opens the id's *session*'s stream, so the stranger
    took over the visitor's whole stream (its results with it) and the visitor's own was ended. A
    ``/call`` GET opens only the REST API's own events now; the visitor keeps its stream and its run,
    and a REST caller's own GET still gets its take."""
    import httpx

    import streams
    from conftest import inputs, page_api

    _, url, _ = served
    _, parameters = page_api(url)
    victim = Client(url, verbose=False)
    job = victim.submit(prompt="mine", audio_duration=60, inference_steps=200, think=False, api_name="/generate")
    event = _event_of(job)
    wait_running(job)
    for path in (f"call/generate/{event}", f"call/v2/generate/{event}", f"call/stop/{event}"):
        assert _first_said(url, path) == ("error", streams.GONE), path
    victim.predict(api_name="/stop")
    stopped_result(job, "^Stopped at step")  # the visitor's own stream, still its own, tells it
    data = inputs(parameters["generate"], prompt="by curl", audio_duration=10, inference_steps=1, think=False)
    posted = httpx.post(f"{url}gradio_api/call/generate", json={"data": data}, timeout=60)
    assert posted.status_code == 200, posted.text
    kind, said = _first_said(url, f"call/generate/{posted.json()['event_id']}", past=("heartbeat", "generating"))
    assert kind == "complete" and said[0]["url"].startswith("http"), (kind, said)


def test_another_sessions_inputs_and_close_reach_no_waiting_request(served):
    """``POST /gradio_api/stream/{id}`` put a stranger's inputs in place of a waiting request's (Gradio
    runs a queued event from its ``data``, past the join's checks) and ``…/close`` answered "success"
    for any live id: both act on streaming events only, and the studio has none. Each is answered as
    an id never held, and the victim's request runs as its owner asked."""
    import httpx

    from conftest import SERVED, inputs, page_api

    _, url, _ = served
    queue = SERVED[url]._queue
    fns, parameters = page_api(url)
    holder, victim, stranger = (Client(url, verbose=False) for _ in range(3))
    running, queued, job = _a_request_waiting_behind(holder, victim)
    event = _event_of(job)
    asked = queue.event_ids_to_events[event].data
    theirs = inputs(parameters["generate"], prompt="the stranger's", audio_duration=10, inference_steps=1)
    body = {"data": theirs, "fn_index": fns["generate"], "session_hash": stranger.session_hash}
    for path, sent in ((f"stream/{event}", body), (f"stream/{event}/close", {})):
        answer = httpx.post(f"{url}gradio_api/{path}", json=sent, timeout=60)
        assert (answer.status_code, answer.content) == (404, b""), (path, answer.text)
    assert queue.event_ids_to_events[event].data is asked, "a stranger's inputs replaced the waiting request's"
    _holders_stop(holder, running, queued)
    *slots, _, record = job.result(timeout=120)
    assert slots[0] and Path(slots[0]).is_file()
    assert record["params"]["prompt"] == "mine", record


def _held_in(monkeypatch, module, name: str) -> threading.Event:
    """``module.name`` waits, each time it is called, for a Stop's flag (a file in the studio's
    ``ACE_STUDIO_CANCEL_DIR``) before it runs; the event says the run got there."""
    real, there = getattr(module, name), threading.Event()

    def held(*args, **kwargs):
        there.set()
        deadline = time.monotonic() + 60
        while not any(runs._cancel_dir().iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)  # the flag is a file: the run's own step callback polls it the same way
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, held)
    return there


@pytest.mark.parametrize(
    ("module", "name"),
    [("mastering", "finish"), ("song_map", "of_take")],
    ids=["while-the-take-is-finished", "while-its-files-are-written"],
)
def test_the_owners_stop_after_other_tabs_stops_ends_the_finish_and_saves_nothing(served, monkeypatch, module, name):
    """A stranger's Stop, a Stop naming no session and one naming an empty one, then the same page's Stops
    of Cover, Extend, Edit and Lyrics flag nothing; the owner's own Stop then comes while the take is
    finished (mastered, mapped, written: 20 s of CPU for a 240 s take here, no progress line): it ends the
    finish too, and nothing is kept."""
    import importlib

    import httpx

    client, url, out = served
    before = {p for p in out.rglob("*") if p.is_file()}
    there = _held_in(monkeypatch, importlib.import_module(module), name)
    job = client.submit(prompt="short", audio_duration=10, inference_steps=2, think=False, api_name="/generate")
    assert there.wait(120)
    Client(url, verbose=False).predict(api_name="/stop")  # a stranger
    for body in ({"data": []}, {"data": [], "session_hash": ""}):  # no session, an empty one
        assert httpx.post(f"{url}gradio_api/run/stop", json=body, timeout=CLIENT_TIMEOUT_S).status_code == 200
    for api in ("/stop_cover", "/stop_extend", "/stop_edit", "/stop_lyrics"):  # this page's other tabs
        client.predict(api_name=api)
    assert not list(runs._cancel_dir().iterdir()), "another tab's or another visitor's Stop flagged this run"
    client.predict(api_name="/stop")
    stopped_result(job, r"^Stopped after the last step, before the take was saved\. Nothing was saved\.$")
    assert {p for p in out.rglob("*") if p.is_file()} == before
    assert not list(runs._cancel_dir().iterdir())


def test_tally():  # last in the file: it reads what the tests above counted
    print(f"\nhostile inputs: {TALLY}")
    assert TALLY["unclear"] == 0 and TALLY["leaked"] == 0


def test_a_call_with_too_few_values_is_refused_with_a_message(served):
    """A raw HTTP caller who sends fewer values than the endpoint takes gets the studio's message, naming the
    endpoint and what it takes, not Gradio's own ("An event handler (validate) didn't receive enough input
    values…")."""
    import httpx

    _, url, _ = served
    for sent in ([], ["a song"]):
        said = httpx.post(f"{url}gradio_api/call/generate", json={"data": sent}, timeout=60)
        assert said.status_code == 400, said.text
        message = said.json()["detail"]
        assert message.startswith(f"This call sends {len(sent)} value") and "/generate takes" in message, message
        assert not any(u in message for u in (*UNCLEAR, "event handler", "validate")), message
