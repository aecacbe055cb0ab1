"""The duration estimate (``duration_estimate``): every GPU entry declares from what this machine measured
once a bucket holds three calls, keeps the figures in one bounded JSON file that survives a restart, goes
back to the prior on an abort, and the page's cost lines follow the build and the learned figures.

The rules on the module's reports (in this process); the real path under the ZeroGPU harness (the
durations ``spaces.GPU`` received, a worker killed for time); the page in Debian's Chromium.
Screenshots go to ``test-screenshots/duration_estimate/`` (where asked for: ``conftest.picture``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client

import duration_estimate
import gpu
import lyrics
import startup
import widgets
from conftest import close_here, free_port, music_shape, picture, wait_until_serving
from test_browser import SHOTS, _fill_number, _open
from zerogpu_harness import FakeDeviceAPI, start_studio, stop_studio, studio_env

# 4 takes of 10 s at 200 steps: the prior declares 151 s, the tiny models take a few seconds.
SONG = {"prompt": "estimate", "audio_duration": 10, "batch_size": 4, "inference_steps": 200, "think": False}
OTHER = {**SONG, "batch_size": 3}  # another bucket of the DiT and the VAE


@pytest.fixture
def learning(tmp_path, monkeypatch):
    """This process learns into its own output folder, every model counted as built; yields the file."""
    monkeypatch.setenv("ACE_STUDIO_DURATION_ESTIMATE", "learn")
    monkeypatch.setenv("ACE_STUDIO_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("ACE_STUDIO_VARIANT", "xl-sft")
    monkeypatch.setattr(duration_estimate, "_probes", {kind: (lambda: True) for kind in ("music", "planner", "lyrics")})
    # Each report names its device, and asking torch whether CUDA is there costs about 12 ms of CPU: 923
    # times in this file (the bounded table's 600 calls), 11 s. The name is this machine's, asked once.
    name = duration_estimate.device_name()
    monkeypatch.setattr(duration_estimate, "device_name", lambda: name)
    duration_estimate.reset()
    yield tmp_path / "outputs" / duration_estimate.FILE_NAME
    duration_estimate.reset()


def _shape(mode: str, params) -> duration_estimate.MusicShape:
    """A request's shape: ``params`` itself where it is one, else Generate's settings (``music_shape``)."""
    return params if isinstance(params, duration_estimate.MusicShape) else music_shape(mode, **params)


def _song(
    params: dict, dit: float, vae: float, rest: float = 3.5, gpu_name: str | None = None, start: float = 0.5
) -> duration_estimate.Report:
    """What a worker reports of a finished song of ``params`` (the seconds its clock gave each phase:
    the call's per-call work to its first step's end, the steps after it, the decode)."""
    shape = dataclasses.asdict(_shape("generate", params))
    found = duration_estimate.report("music", shape, {"start": start, "dit": dit, "vae": vae}, time.perf_counter())
    found["total"], found["captured"] = start + dit + vae + rest, {"dit": False, "start": False}
    if gpu_name is not None:
        found["gpu"] = gpu_name
    return found


def _priors(params: dict) -> dict[str, float]:
    return {p.phase: p.prior for p in duration_estimate.music_phases(_shape("generate", params), loads=False)}


def test_three_calls_of_a_bucket_make_the_next_declare_what_they_measured(learning):
    prior = _priors(SONG)
    assert duration_estimate.music_duration(_shape("generate", SONG)) == 151 == math.ceil(1.5 * sum(prior.values()))
    for dit in (40.0, 50.0):
        assert duration_estimate.learn(_song(SONG, dit, 1.0)) == 4  # its start, the DiT's steps, the VAE, the rest
        assert duration_estimate.music_duration(_shape("generate", SONG)) == 151  # fewer than three calls: the prior
    duration_estimate.learn(_song(SONG, 45.0, 1.0))
    # p90 of three is the largest: 0.5 s to the first step's end, 50 s of steps, 1 s of decode, 3.5 s of
    # the rest, × 1.3.
    assert duration_estimate.music_duration(_shape("generate", SONG)) == math.ceil(1.3 * (0.5 + 50 + 1 + 3.5)) == 72
    # Another bucket keeps the prior for its DiT and VAE; the rest of a call is measured for all.
    other = _priors(OTHER)
    unmeasured = other["start"] + other["dit"] + other["vae"]
    assert duration_estimate.music_duration(_shape("generate", OTHER)) == math.ceil(1.5 * unmeasured + 1.3 * 3.5)
    figures = widgets.at_sixty()
    assert figures["dit_ms_a_step_60s"] is None and figures["planner_ms_a_code"] is None
    assert (
        widgets.duration_text().startswith("Pace on this machine, CPU (") and "from 3 calls." in widgets.duration_text()
    )


def test_the_duration_line_speaks_of_a_declaration_only_on_zerogpu(learning, monkeypatch):
    """On a local CPU the duration line says nothing of ZeroGPU ("each click declares", "one H100") and
    nests no parentheses ("(CPU (x86_64))")."""
    for zero in (False, True):
        monkeypatch.setattr(gpu, "on_zero_gpu", lambda zero=zero: zero)
        for mode in ("learn", "prior"):
            monkeypatch.setenv("ACE_STUDIO_DURATION_ESTIMATE", mode)
            said = widgets.duration_text()
            assert said.startswith("Pace on this machine: not ") and ("declares" in said) == zero, said
            assert ("H100" in said) == (zero and mode == "learn"), said
    monkeypatch.setenv("ACE_STUDIO_DURATION_ESTIMATE", "learn")
    for dit in (40.0, 50.0, 45.0):
        duration_estimate.learn(_song(SONG, dit, 1.0))
    said = widgets.duration_text()
    assert said.startswith("Pace on this machine, CPU (") and said.count("(") == said.count(")") == 1, said


def test_the_file_survives_a_restart_and_a_bad_one_is_ignored_with_one_line(learning, capsys):
    for dit in (40.0, 50.0, 45.0):
        duration_estimate.learn(_song(SONG, dit, 1.0))
    saved = json.loads(learning.read_text())
    assert saved["calls"] == 3 and saved["machine"]["version"] == duration_estimate.version()
    duration_estimate.reset()  # a restart: the next declaration reads the file
    assert duration_estimate.music_duration(_shape("generate", SONG)) == 72
    bad = {
        "corrupt": "{not json",
        "foreign": json.dumps({**saved, "machine": {**saved["machine"], "version": "another"}}),
        "oversized": json.dumps(saved) + " " * duration_estimate.MAX_FILE_BYTES,
        "forged": json.dumps({**saved, "buckets": [{**saved["buckets"][0], "factors": [1e9, float("nan")]}]}),
    }
    for what, text in bad.items():
        learning.write_text(text)
        duration_estimate.reset()
        capsys.readouterr()
        assert duration_estimate.music_duration(_shape("generate", SONG)) == 151, what
        said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("duration estimate:")]
        assert len(said) == 1 and "ignored" in said[0] and "start from the prior" in said[0], (what, said)
    # Another GPU's report: its figures start from the prior, the file's are set aside.
    learning.write_text(json.dumps(saved))
    duration_estimate.reset()
    duration_estimate.learn(_song(SONG, 45.0, 1.0, gpu_name="NVIDIA H100 80GB HBM3"))
    assert duration_estimate.music_duration(_shape("generate", SONG)) == 151 and duration_estimate.table().calls == 1


def test_the_version_hashes_every_gpu_module_and_a_missing_one_is_an_error(tmp_path, monkeypatch):
    """``version`` reads each GPU-side module's file: a module that moved or is misnamed raises, never
    hashing its bare name (the estimate would not see its code change), and a change to a module's code
    is a new version."""
    with pytest.raises(RuntimeError, match="no_such_module"):
        duration_estimate.version((*duration_estimate.GPU_MODULES, "no_such_module"))
    (tmp_path / "gpu_side_module.py").write_text("STEPS = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = duration_estimate.version(("sampler", "gpu_side_module"))
    (tmp_path / "gpu_side_module.py").write_text("STEPS = 2\n")
    assert duration_estimate.version(("sampler", "gpu_side_module")) != first
    assert duration_estimate.version() == duration_estimate.version(duration_estimate.GPU_MODULES)


def test_a_file_whose_count_is_no_number_is_ignored_not_fatal(learning, capsys):
    """A file with its calls missing or not a whole number is ignored like any foreign file, in one line,
    and raises nothing out of ``duration_estimate.table`` (every declaration and cost line reads it)."""
    for dit in (40.0, 50.0, 45.0):
        duration_estimate.learn(_song(SONG, dit, 1.0))
    saved = json.loads(learning.read_text())
    without = {k: v for k, v in saved.items() if k != "calls"}
    for what, data in {"missing": without, "text": {**saved, "calls": "3"}, "none": {**saved, "calls": None}}.items():
        learning.write_text(json.dumps(data))
        duration_estimate.reset()
        capsys.readouterr()
        assert duration_estimate.music_duration(_shape("generate", SONG)) == 151, what
        said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("duration estimate:")]
        assert len(said) == 1 and "ignored" in said[0], (what, said)


def test_a_flood_of_one_off_shapes_leaves_the_measured_buckets(learning):
    """One visitor's many lengths and takes, each requested once, churn among buckets that declare nothing
    yet: the buckets measured three times, which every visitor's declaration uses, stay."""
    for dit in (40.0, 50.0, 45.0):
        duration_estimate.learn(_song(SONG, dit, 1.0))
    for n in range(2 * duration_estimate.MAX_BUCKETS):
        duration_estimate.learn(_song(dataclasses.replace(_shape("generate", SONG), takes=5 + n), 40.0, 1.0))
    assert len(duration_estimate.table().buckets) == duration_estimate.MAX_BUCKETS
    assert duration_estimate.music_duration(_shape("generate", SONG)) == 72


def test_two_calls_learned_at_once_leave_the_newer_table_in_the_file(learning, monkeypatch):
    """The first save is held between its snapshot and the file's replacement while a second call is
    learned and saved: the file must end with both samples, not the first call's older snapshot."""
    import os

    held, replacing, replace = threading.Event(), threading.Event(), os.replace

    def slow_replace(src, dst):
        if not held.is_set():
            held.set()
            replacing.wait(5)
        replace(src, dst)

    monkeypatch.setattr(duration_estimate.os, "replace", slow_replace)
    first = threading.Thread(target=duration_estimate.learn, args=(_song(SONG, 40.0, 1.0),))
    first.start()
    held.wait(5)
    second = threading.Thread(target=duration_estimate.learn, args=(_song(SONG, 50.0, 1.0),))
    second.start()
    second.join(0.5)
    replacing.set()
    first.join(5)
    second.join(5)
    dit = [b for b in json.loads(learning.read_text())["buckets"] if b["phase"] == "dit"]
    assert len(dit[0]["factors"]) == 2


def test_what_is_not_a_measurement_is_not_kept(learning):
    forged = dict(_song(SONG, 40.0, 1.0))  # the same numbers, but a plain dict: not a worker's report
    assert duration_estimate.learn(forged) == 0
    broken = _song(SONG, 40.0, 1.0)
    broken["phases"] = {"dit": float("nan"), "vae": -1.0}
    assert duration_estimate.learn(broken) == 1  # only the rest of the call is a number
    assert duration_estimate.learn(_song(SONG, 1e9, 1.0)) == 3  # a step ten million times the prior's: no measurement
    assert duration_estimate.learn(duration_estimate.Report(feature="rumour", shape={}, phases={}, total=1.0)) == 0
    shape = {**dataclasses.asdict(_shape("generate", SONG)), "extra": 1}
    assert (
        duration_estimate.learn(duration_estimate.report("music", shape, {"dit": 40.0}, time.perf_counter() - 45)) == 0
    )
    # Through the GPU call: a result's "measured" that is no report leaves nothing behind.
    made = gpu.call(lambda progress, run_id, multiplier: {"measured": forged, "timings": {}}, needs=())
    assert "measured" not in made and duration_estimate.table().calls == 2


def test_an_extend_is_measured_at_the_length_it_declared(learning):
    """Extend renders the source and what it adds (its params' length, which it declares) while its
    pipeline is told the source's length: a report of the latter would keep a 60 s song extended by 60 s
    as 120 s of work in the 64 s buckets (shared by the VAE with every mode), never in its own."""
    import generation
    from music_request import Call, MusicRequest, Render

    sampling = {"num_inference_steps": 8, "guidance_scale": 1.0, "shift": 3.0}
    call = Call(prompt="estimate", task_type="repaint", audio_duration=60.0, **sampling)
    request = MusicRequest("extend", Render(call, (1,)), 120.0, "wav")
    declared = duration_estimate.MusicShape.of(request)
    out = {"phases": {"start": 0.5, "dit": 10.0, "vae": 1.0, "steps": declared.steps, "captured": False}}
    found = generation._measured(request, request.render, None, out, None, {}, time.perf_counter())
    assert found["shape"] == dataclasses.asdict(declared)
    assert found["shape"]["seconds"] == 120.0


def test_the_cost_line_counts_an_edit_part_and_a_morph(studio_env, learning, tmp_path):
    """Edit's part (the XL base: guided, built beside the pipeline) and Cover's morph (two DiT forwards a
    step) declare more than a plain edit or cover: the cost line reads the request its mode's preparer
    makes of the fields, as the admission check reads it."""
    import audio
    import handlers
    import messages
    from test_audio_modes import tone

    song = str(tone(tmp_path / "song.wav", seconds=10.0))
    plain = {"src_audio": song, "prompt": "estimate", "inference_steps": 100, "guidance_scale": 7.0}
    for mode, fields in (("edit", {"change": "add"}), ("cover", {"morph": True, "morph_prompt": "as it is"})):
        asked, alone = (
            duration_estimate.MusicShape.of(handlers.prepare_for_admission(mode, v).request)
            for v in ({**plain, **fields}, plain)
        )
        declared = duration_estimate.music_duration(asked)
        # A 10 s song: both declarations are clamped to 60 s, the seconds before the clamp differ.
        assert duration_estimate.music_seconds(asked) > duration_estimate.music_seconds(alone), mode
        line = handlers.reserves(mode)({**plain, **fields})
        assert line.startswith(messages.RESERVES.format(time=audio.clock(declared))), (mode, line)


def test_an_abort_puts_what_the_declaration_used_back_on_the_prior(learning):
    for dit in (40.0, 50.0, 45.0):
        duration_estimate.learn(_song(SONG, dit, 1.0))
    assert duration_estimate.music_duration(_shape("generate", SONG), run_id="run-1") == 72
    tries = []

    def call_with(multiplier: float) -> str:
        tries.append(multiplier)
        if multiplier == 1.0:
            raise gr.Error("GPU task aborted")
        return "made"

    assert gpu.with_retry(call_with, run_id="run-1") == "made" and tries == [1.0, 2.0]
    assert duration_estimate.music_duration(_shape("generate", SONG)) == 151
    assert duration_estimate.music_duration(_shape("generate", SONG), 2.0) == 300  # the retry's twice the time stays


def test_the_table_stays_bounded_under_many_shapes(learning):
    kept = 0
    for n in range(600):  # 11 lengths × 4 takes × 4 modes × 2 guidance × 2 captured: more than it may hold
        params = {**SONG, "audio_duration": 10 + n % 590, "batch_size": 1 + n % 4, "guidance_scale": 1 + n % 2 * 6}
        found = _song(params, 40.0, 1.0)
        found["shape"]["mode"] = ("generate", "cover", "extend", "edit")[n // 4 % 4]
        found["captured"] = {"dit": bool(n // 16 % 2)}
        kept += duration_estimate.learn(found)
    table = duration_estimate.table()
    assert kept == 2400 and len(table.buckets) == duration_estimate.MAX_BUCKETS
    assert all(len(b.factors) <= duration_estimate.KEEP for b in table.buckets.values())
    assert learning.stat().st_size <= duration_estimate.MAX_FILE_BYTES
    duration_estimate.reset()
    assert len(duration_estimate.table().buckets) == duration_estimate.MAX_BUCKETS  # read back whole


# ---------------------------------------------------------------- under the ZeroGPU harness


@pytest.fixture(scope="module")
def space(tiny_pipeline_dir, tiny_lyrics_dir, tmp_path_factory):
    """The studio under the harness, learning its durations (no planner: Think off); yields (url, api, env)."""
    work = tmp_path_factory.mktemp("duration_estimate")
    api = FakeDeviceAPI(scale=1.0).start()
    port = free_port()
    env = {
        **studio_env(api.url, work, tiny_pipeline_dir, tiny_lyrics_dir, port),
        "ACE_STUDIO_DURATION_ESTIMATE": "learn",
    }
    proc = start_studio(env, work / "studio.log")
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, proc, work / "studio.log")
        yield url, api, env
    finally:
        stop_studio(proc)
        api.close()


def _declared(space, params: dict, monkeypatch) -> int:
    """What the studio's file says ``params`` declares (this process reads it as the studio does)."""
    for name in ("ACE_STUDIO_MODEL", "ACE_STUDIO_VARIANT", "ACE_STUDIO_PLANNER_MODEL", "ACE_STUDIO_LYRICS_MODEL"):
        monkeypatch.setenv(name, space[2][name])
    monkeypatch.setenv("ACE_STUDIO_OUTPUT_DIR", space[2]["ACE_STUDIO_OUTPUT_DIR"])
    monkeypatch.setenv("ACE_STUDIO_DURATION_ESTIMATE", "learn")
    monkeypatch.setattr(duration_estimate, "_probes", {kind: (lambda: True) for kind in ("music", "planner", "lyrics")})
    duration_estimate.reset()
    try:
        return duration_estimate.music_duration(_shape("generate", params))
    finally:
        duration_estimate.reset()


# Served songs: 2 takes of 10 s at 150 steps, whose prior (65 s) is over ZeroGPU's 60 s floor, so a
# learned figure below it shows. The tiny models' work is about 0.45 s a take and 6 ms a step whatever
# the takes, so this is the cheapest shape over the floor with a margin (2 × 138 steps would declare 61;
# 3 takes need 91 steps, 4 takes 68): 6 songs a run, 7 GPU calls (one killed and retried). Another bucket:
# 3 takes, its prior 79 s or more.
SERVED = {**SONG, "batch_size": 2, "inference_steps": 150}
SERVED_PRIOR = 65
SERVED_OTHER = {**SERVED, "batch_size": 3}


def test_under_zerogpu_a_bucket_declares_what_its_calls_measured(space, monkeypatch):
    url, api, env = space
    client = Client(url, verbose=False)
    seen = len(api.durations)
    assert _declared(space, SERVED, monkeypatch) == SERVED_PRIOR  # nothing learned yet: the prior
    for _ in range(3):
        client.predict(**SERVED, seed=3, api_name="/generate")
    assert api.durations[seen:] == [SERVED_PRIOR] * 3  # the prior, until the bucket holds three calls
    learned = _declared(space, SERVED, monkeypatch)  # what the studio's file says, as its worker measured
    # The next call declares what was learned, and ZeroGPU kills it for time (one song less than a learned
    # call and a killed one apart: each costs about 10 CPU s here): the retry at twice the time.
    api.scales, killed = [0.0001], len(api.killed)
    client.predict(**SERVED, seed=3, api_name="/generate")
    aborted, retry = api.durations[-2:]
    assert aborted == learned < SERVED_PRIOR and len(api.killed) == killed + 1 and retry == 2 * aborted
    saved = json.loads((Path(env["ACE_STUDIO_OUTPUT_DIR"]) / duration_estimate.FILE_NAME).read_text())
    assert saved["calls"] == 4 and saved["machine"]["gpu"].startswith("CPU")
    assert not any(b["phase"] == "dit" and b["shape"]["takes"] == SERVED_OTHER["batch_size"] for b in saved["buckets"])
    other = _declared(space, SERVED_OTHER, monkeypatch)
    client.predict(**SERVED_OTHER, seed=3, api_name="/generate")
    assert api.durations[-1] == other > 60  # its DiT and VAE: the prior
    client.predict(**SERVED, seed=3, api_name="/generate")
    assert api.durations[-1] == SERVED_PRIOR  # the killed call's buckets went back to the prior


# ---------------------------------------------------------------- the page


class GatedBuild(startup.Warmup):
    """The start-up build of the lyrics writer (the real one), held until the test lets it go on."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def builds(self):
        def lyrics_when_let() -> object:
            self.gate.wait(120)
            return lyrics.get_writer()

        return (("lyrics", lyrics_when_let),)


@pytest.fixture
def building(studio_env, tiny_lyrics_dir, monkeypatch):
    """The page as a ZeroGPU Space serves it while its start-up build is still making the lyrics
    writer; yields (url, gate): setting the gate lets the build finish."""
    import app
    import backend

    backend.get_backend()  # the music model built: only the lyrics writer is left to build
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setenv("ACE_STUDIO_DURATION_ESTIMATE", "learn")
    monkeypatch.setenv("ACE_STUDIO_LYRICS_MODEL", str(tiny_lyrics_dir))
    monkeypatch.setattr(lyrics, "_mlx_available", lambda: False)
    monkeypatch.setattr(gpu, "_warmup", None)
    # The page asks whether the learned figures changed every ESTIMATE_POLL_S (30 s: another visitor's call); here every
    # second, so the test waits for the page's next question, not for half a minute.
    monkeypatch.setattr(widgets, "ESTIMATE_POLL_S", 1.0)
    lyrics.reset_writer()
    duration_estimate.reset()
    gate = threading.Event()
    build = GatedBuild(gate)
    gpu.register(build)
    build.again()
    url, demo = app.serve_here()
    try:
        yield url, gate
    finally:
        gate.set()
        close_here(demo)
        lyrics.reset_writer()
        duration_estimate.reset()


def test_the_cost_line_follows_the_build_and_says_what_fits_a_day(browser, building, request):
    url, gate = building
    desk = {"viewport": {"width": 1280, "height": 1000}}
    for page in _open(browser, url, f"duration_estimate/{request.node.name}", True, **desk):
        page.get_by_role("tab", name="Lyrics", exact=True).click()
        line = page.locator("#ly-reserves")
        line.get_by_text("reserves about 1:38").wait_for()  # a cold writer: its build counted in
        gate.set()
        line.get_by_text("reserves about 1:00").wait_for()  # the build ended: the page was told
        picture(page, SHOTS / "duration_estimate" / "built.png")
        page.get_by_role("tab", name="Generate", exact=True).click()
        page.locator("#gen-advanced").get_by_text("Advanced settings").click()
        _fill_number(page, "#gen-takes", 4)
        _fill_number(page, "#gen-duration", 240)
        said = page.locator("#gen-reserves").get_by_text("a visitor who is not signed in gets")
        said.wait_for()
        assert "Within that: at most 3 takes of that length" in said.inner_text()
        # A song made: its measured phases are kept, and its details say this machine's duration line.
        for selector, value in (("#gen-takes", 1), ("#gen-duration", 10), ("#gen-steps", 3)):
            _fill_number(page, selector, value)
        page.locator("#gen-prompt textarea").fill("night drive")
        page.locator("#gen-button").click()
        page.locator("#gen-take-1 a.download-link").wait_for()
        page.locator("#gen-details").get_by_text("Details").click()
        page.locator("#gen-estimate").get_by_text("Pace on this machine, CPU (").wait_for()
        assert "from 1 call." in page.locator("#gen-estimate").inner_text()
        picture(page, SHOTS / "duration_estimate" / "duration-line.png")


# ---------------------------------------------------------------- what drives each phase


@pytest.fixture
def measuring(studio_env, monkeypatch):
    """Songs made in this process through the GPU call (``handlers.make``): each call's worker measures
    its phases and the duration estimate learns them; every model counted as built. Yields the reports learned."""
    reports = []
    learn = duration_estimate.learn
    monkeypatch.setenv("ACE_STUDIO_DURATION_ESTIMATE", "learn")
    monkeypatch.setattr(duration_estimate, "_probes", {kind: (lambda: True) for kind in ("music", "planner", "lyrics")})
    monkeypatch.setattr(duration_estimate, "learn", lambda found: reports.append(found) or learn(found))
    duration_estimate.reset()
    yield reports
    duration_estimate.reset()


def _phase_declared(mode: str, params: dict, *names: str) -> float:
    """What the phases ``names`` of a request of ``params`` declare."""
    found = [p for p in duration_estimate.music_phases(_shape(mode, params), loads=False) if p.phase in names]
    return duration_estimate.estimate(found)[0]


def test_a_one_step_song_leaves_a_fifty_step_songs_declaration_alone(measuring):
    """A 1-step song leaves an ordinary 10 s 50-step song's declared DiT time alone (counted as one step,
    its per-call work would raise it 3.1–4×). The call's per-call work and first step are measured
    apart from the steps after it: the 1-step song teaches the steps nothing, and the song's declaration
    moves by no more than that per-call work as it measured it (the same work for every song)."""
    import handlers

    song = {"prompt": "estimate", "audio_duration": 10, "inference_steps": 50, "think": False, "seed": 1}
    for _ in range(3):
        handlers.make("generate", **song)
    first = (_phase_declared("generate", song, "start"), _phase_declared("generate", song, "dit"))
    handlers.make("generate", **{**song, "inference_steps": 1})
    after = (_phase_declared("generate", song, "start"), _phase_declared("generate", song, "dit"))
    start = measuring[-1]["phases"]["start"]
    print(f"\nthe 50-step song's start and steps declared {first[0]:.3f} + {first[1]:.3f} s; after a 1-step")
    print(f"song {after[0]:.3f} + {after[1]:.3f} s (its start took {start:.3f} s)")
    assert after[1] == first[1] and sum(after) <= sum(first) + duration_estimate.MARGIN * start, (first, after, start)
    assert measuring[-1]["shape"]["steps"] == 1 and measuring[-1]["counts"]["dit"] == 0


def test_covers_that_start_near_the_end_leave_an_ordinary_cover_declared_honestly(measuring, tmp_path):
    """Three covers starting from the song at the schedule's end (``cover_noise_strength`` 1.0, 200 steps:
    the sampler runs one) are kept as one step's work, not 200 (counted as 200, an ordinary 20 s 50-step
    cover was declared 1.56 s of DiT and took 4.01 s). The worker counts the steps that ran, so the
    ordinary cover's steps keep their figures (here the prior's, with its margin)."""
    import handlers
    import modes
    from test_audio_modes import tone

    song = str(tone(tmp_path / "song.wav", seconds=10.0))  # the 20 s, 50-step case, smaller
    for seed in range(3):
        handlers.make("cover", src_audio=song, prompt="jazz", cover_noise_strength=1.0, inference_steps=200, seed=seed)
    ordinary = {"src_audio": song, "prompt": "jazz", "inference_steps": 20, "seed": 5}
    declared = _phase_declared(
        "cover", duration_estimate.MusicShape.of(modes.prepare_cover(**ordinary).request), "start", "dit"
    )
    handlers.make("cover", **ordinary)
    ran = measuring[-1]["phases"]
    print(f"\nthe ordinary cover's DiT declared {declared:.2f} s, took {ran['start'] + ran['dit']:.2f} s")
    assert declared >= ran["start"] + ran["dit"], (declared, ran)
    assert [found["shape"]["steps"] for found in measuring] == [1, 1, 1, 20]


def _made(
    mode: str, params: dict, start: float, dit: float, vae: float, align: float | None = None
) -> duration_estimate.Report:
    """A worker's report of a call of ``params`` that took these seconds, its steps as they ran."""
    shape = dataclasses.asdict(_shape(mode, params))
    phases = {"start": start, "dit": dit, "vae": vae, **({} if align is None else {"align": align})}
    found = duration_estimate.report("music", shape, phases, time.perf_counter(), {"dit": shape["steps"] - 1})
    found["total"], found["captured"] = sum(phases.values()) + 3.5, {"start": False, "dit": False}
    return found


def test_a_timbre_reference_is_its_own_bucket_in_every_mode(learning):
    """A timbre reference's encode is counted for every mode, not Cover's alone (timed inside Generate's
    DiT phase, it made factors of 22–26×), its calls in buckets of their own: they leave a plain song's
    declaration as it was."""
    plain = {"prompt": "estimate", "audio_duration": 10, "inference_steps": 50}
    lent = {**plain, "reference": True}
    for _ in range(3):
        duration_estimate.learn(_made("generate", plain, 0.3, 4.9, 0.5))
    alone = _phase_declared("generate", plain, "start")
    for _ in range(3):  # the same song with 2 s of a reference's encode before its first step
        duration_estimate.learn(_made("generate", lent, 2.3, 4.9, 0.5))
    assert _phase_declared("generate", plain, "start") == alone == pytest.approx(0.3 * duration_estimate.MARGIN)
    assert _phase_declared("generate", lent, "start") == pytest.approx(2.3 * duration_estimate.MARGIN)


def test_the_alignment_is_bucketed_by_the_lyrics_it_aligns(learning):
    """The alignment's buckets follow the sung words' count as well as the song's length (by length alone,
    90 lyric lines made its factors 13–16× a short verse's): a long lyric's calls leave a short verse's
    declaration as it was, and declare their own."""
    verse = {"prompt": "estimate", "audio_duration": 10, "inference_steps": 8, "lyrics": "[Verse]\nla la la\nhold on"}
    lines = "\n".join(f"line {i} of the longest song we sing" for i in range(90))
    long = {**verse, "lyrics": f"[Verse]\n{lines}"}
    for _ in range(3):
        duration_estimate.learn(_made("generate", verse, 0.3, 0.7, 0.5, align=0.2))
    short = _phase_declared("generate", verse, "align")
    for _ in range(3):
        duration_estimate.learn(_made("generate", long, 0.3, 0.7, 0.5, align=3.0))
    assert _phase_declared("generate", verse, "align") == short == pytest.approx(0.2 * duration_estimate.MARGIN)
    assert _phase_declared("generate", long, "align") == pytest.approx(3.0 * duration_estimate.MARGIN)


def test_a_gpu_name_that_is_no_plain_name_never_reaches_the_page(learning, capsys):
    """A learned table (pace.json) whose ``machine.gpu`` holds Markdown or HTML never reaches the duration
    line ("Pace on this machine"): a file naming its machine so is ignored (one log line), a worker's
    report so is not kept, and a real name's marks are shown as text."""
    import messages

    for dit in (40.0, 50.0, 45.0):
        duration_estimate.learn(_song(SONG, dit, 1.0))
    saved = json.loads(learning.read_text())
    planted = "**H100** <img src=x onerror=alert(1)> [more](https://example.com)"
    learning.write_text(json.dumps({**saved, "machine": {**saved["machine"], "gpu": planted}}))
    duration_estimate.reset()
    capsys.readouterr()
    assert widgets.duration_text() == messages.DURATION_NOT_YET[gpu.on_zero_gpu()]
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("duration estimate:")]
    assert len(said) == 1 and "ignored" in said[0] and "GPU's name" in said[0], said
    assert duration_estimate.learn(_song(SONG, 45.0, 1.0, gpu_name=planted)) == 0
    duration_estimate.learn(_song(SONG, 45.0, 1.0, gpu_name="NVIDIA RTX_6000 (Blackwell)"))
    assert "NVIDIA RTX\\_6000 (Blackwell)" in widgets.duration_text()
