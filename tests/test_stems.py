"""Split into stems: Demucs's own classes on a tiny random bag laid out as the studio reads
``htdemucs_ft``, through the separator, the files, the API, the page and the ZeroGPU harness."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client
from gradio_client.exceptions import AppError, ValidationError

import output_folder
import random_stems
import runs
import stems
import takes
from conftest import SHOTS, TIMEOUT_MS, picture

# A WAV take's stems are 32-bit float WAV: their sum is the take within float32 rounding.
FLOAT_SUM = 1e-5


def _mix(seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * 48000)) / 48000
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.random.default_rng(0).standard_normal(t.size)
    return np.stack([tone, np.roll(tone, 7)]).astype(np.float32)


@pytest.fixture(scope="module")
def stems_folder(tmp_path_factory) -> Path:
    return random_stems.save_stems_model(tmp_path_factory.mktemp("stems") / "htdemucs_ft")


@pytest.fixture(scope="module")
def stems_hub_cache(tmp_path_factory):
    """The tiny bag as a snapshot of ``adefossez/HTDemucs-ft`` in a Hub cache, as a Space preloads it."""
    cache = tmp_path_factory.mktemp("hub-cache")
    random_stems.save_stems_model(cache, hub_repo=stems.DEFAULT_MODEL)
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_CACHE", str(cache))
    mp.delenv("ACE_STUDIO_STEMS_MODEL", raising=False)
    stems.reset()
    yield cache
    stems.reset()
    mp.undo()


@pytest.fixture
def local_stems(stems_folder, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_STEMS_MODEL", str(stems_folder))
    stems.reset()
    yield stems_folder
    stems.reset()


def test_four_stems_of_the_takes_length_that_add_up_to_it(local_stems):
    mix = _mix()
    made = stems.separate(mix)
    split = made.stems
    assert set(split) == {"vocals", "drums", "bass"} and all(part.shape == mix.shape for part in split.values())
    # Demucs's models each guess their own source: with random weights their sum is nowhere near the
    # mix, and even trained ones do not promise it. The studio's ``other`` is the rest, so four add up.
    assert np.abs(split["vocals"] + split["drums"] + split["bass"] - mix).max() > 1e-3
    four = stems.residual(mix, split)
    assert list(four) == list(stems.STEMS)
    assert np.abs(sum(four.values()) - mix).max() < 1e-6
    assert made.device == "cpu" and made.timings["separate_s"] > 0


def test_a_split_on_the_cpu_runs_at_one_thread_and_gives_the_count_back(local_stems, monkeypatch):
    """Torch's pool spinning between the segments' small operations made a 30 s take on the tiny bag take 234-298 s
    on a busy 2-core machine (13-15 s at one thread): on the CPU the split runs at one, and the process's count is
    back after, however the split ends."""
    import demucs.apply
    import torch

    seen = []
    real = demucs.apply.apply_model

    def counted(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(demucs.apply, "apply_model", counted)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert stems.separate(_mix(1.0)).device == "cpu"
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_stop_ends_a_split_at_the_next_segment(local_stems):
    run_id = runs.start_run("test:stems")
    seen = []

    def report(done: int, total: int) -> None:
        seen.append((done, total))
        runs.request_stop("test:stems")

    try:
        with pytest.raises(runs.Cancelled):
            stems.separate(_mix(4.0), run_id, report)
    finally:
        runs.finish_run(run_id)
    assert len(seen) == 1 and seen[0][1] > 4  # one segment of many, then it stopped


def test_missing_weights_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("ACE_STUDIO_STEMS_MODEL", "adefossez/HTDemucs-ft")
    stems.reset()
    assert "adefossez/HTDemucs-ft is not in this machine's Hugging Face cache" in stems.missing_reason()
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("ACE_STUDIO_STEMS_MODEL", str(empty))
    assert "htdemucs_ft.yaml" in stems.missing_reason()


def test_the_gpu_time_declared_grows_with_the_take_and_stays_within_a_call():
    assert stems.estimate_duration(10) == 60  # ZeroGPU's floor
    assert stems.estimate_duration(600) == 90  # a 10-minute take: 10 s + 10 × 8 s
    assert stems.estimate_duration(600, 2.0) == 180 and stems.estimate_duration(10**6) == 300


def test_stems_are_served_and_cleaned_with_their_take_and_nothing_else_is(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_OUTPUT_DIR", str(tmp_path))
    day = tmp_path / "2026-11-20"
    day.mkdir()
    take = "generate-120000-abcdef-take1-seed5"
    names = [
        f"{take}.wav",
        f"{take}.json",
        f"{take}.lrc",
        f"{take}-stems.json",
        *(f"{take}-{s}.wav" for s in stems.STEMS),
    ]
    odd = [
        f"{take}-stems.wav",
        f"{take}-vocals.json",
        f"{take}-piano.wav",
        f"{take}-vocals.wav.txt",
        "notes.txt",
        f"{take}-vocals.lrc",
    ]
    for name in names + odd:
        (day / name).write_bytes(b"x")
    for name in names:
        assert output_folder.studio_file(f"2026-11-20/{name}") == day / name
    for name in odd:
        assert output_folder.studio_file(f"2026-11-20/{name}") is None
    assert output_folder.studio_take_audio(f"2026-11-20/{take}.wav") == day / f"{take}.wav"
    assert output_folder.studio_take_audio(f"2026-11-20/{take}-vocals.wav") is None  # a stem is not split again
    # The take is old, its stems were made later: they go with it all the same.
    old = time.time() - 48 * 3600
    for name in (f"{take}.wav", f"{take}.json", f"{take}.lrc"):
        os.utime(day / name, (old, old))
    assert output_folder.clean_outputs(max_age_hours=24) == len(names)
    assert sorted(p.name for p in day.iterdir()) == sorted(odd)


# ---------------------------------------------------------------- through the API


@pytest.fixture(scope="module")
def served(stems_hub_cache, studio_server):
    return studio_server


@pytest.fixture(scope="module")
def client(served):
    return Client(served[0], verbose=False)


def _take(client: Client, seed: int) -> tuple[str, dict]:
    result = client.predict(
        prompt="funk groove", audio_duration=10, inference_steps=3, seed=seed, think=False, api_name="/generate"
    )
    return result[0], result[-1]


# Two takes for the file's API tests, not one a test (a take is its render, its preview, its mastering and
# its map): one the tests split, one no test splits (refused without weights, then stopped).
@pytest.fixture(scope="module")
def split_take(client: Client) -> tuple[str, dict]:
    """A take of ``client``'s that the tests split, and split again."""
    return _take(client, 41)


@pytest.fixture(scope="module")
def unsplit_take(client: Client) -> tuple[str, dict]:
    """A take of ``client``'s that no split finishes: its folder holds no stem."""
    return _take(client, 42)


def _check_stems(paths: list[str], take: str, record: dict, out: Path) -> None:
    mix, rate = sf.read(take, dtype="float64", always_2d=True)
    parts = [sf.read(p, dtype="float64", always_2d=True) for p in paths]
    assert all(r == rate == 48000 and part.shape == mix.shape for part, r in parts)
    assert np.abs(sum(part for part, _ in parts) - mix).max() <= FLOAT_SUM
    assert all(sf.info(p).subtype == "FLOAT" for p in paths)
    name = Path(record["takes"][0]["audio"])
    assert [Path(p).name for p in paths] == [f"{name.stem}-{s}.wav" for s in stems.STEMS]
    beside = json.loads((out / name.parent / f"{name.stem}-stems.json").read_text())
    assert beside["take"] == name.as_posix() and beside["model"]["name"] == "htdemucs_ft"
    assert list(beside["stems"]) == list(stems.STEMS) and beside["timings"]["separate_s"] > 0


def test_split_into_stems_through_the_api(client, served, split_take):
    take, record = split_take
    paths = client.predict(take=1, record=record, api_name="/stems")
    _check_stems(list(paths), take, record, served[1])


def test_another_visitors_take_is_not_split_and_their_stems_stay(client, served, split_take):
    """With A's record, B's /stems neither splits A's take nor rewrites A's four stem files. Stems follow
    the rule Send to follows (``take_owners.made_by``): B is refused by the admission check with the message
    a gone take gets, A's stems stay as they were, and A may split again."""
    take, record = split_take
    client.predict(take=1, record=record, api_name="/stems")
    made = Path(served[1], record["takes"][0]["audio"])
    written = lambda: {p.name: p.stat().st_mtime_ns for p in made.parent.glob(f"{made.stem}-*")}  # noqa: E731
    before = written()
    assert len(before) == len(stems.STEMS) + 3  # four stems, their record, the take's preview and latents
    with pytest.raises(ValidationError, match="record: Take 1 is no longer kept by the studio"):
        Client(served[0], verbose=False).predict(take=1, record=record, api_name="/stems")
    assert written() == before
    _check_stems(list(client.predict(take=1, record=record, api_name="/stems")), take, record, served[1])


def test_a_take_that_is_not_the_studios_gets_words(client):
    with pytest.raises((ValidationError, AppError), match="no longer kept"):
        client.predict(take=1, record={"takes": [{"audio": "../../etc/passwd"}]}, api_name="/stems")
    with pytest.raises((ValidationError, AppError), match="make one first"):
        client.predict(take=1, record={}, api_name="/stems")


def test_without_weights_the_stems_button_says_so(client, unsplit_take, monkeypatch, tmp_path):
    _, record = unsplit_take
    monkeypatch.setenv("ACE_STUDIO_STEMS_MODEL", str(tmp_path / "nowhere"))
    stems.reset()
    with pytest.raises((ValidationError, AppError), match="Stems need the Demucs separation model"):
        client.predict(take=1, record=record, api_name="/stems")


def test_stop_ends_a_split(client, served, unsplit_take, monkeypatch):
    take, record = unsplit_take
    # The tiny bag splits a 10 s take faster than /stop arrives: its first segment is held at the
    # model's call until Stop has been asked, so the test sees Stop land mid-split on any machine.
    first = getattr(stems.get_separator(), "models", [None])[0] or stems.get_separator()
    forward, reached, stopped = first.forward, threading.Event(), threading.Event()

    def held(*args, **kwargs):
        reached.set()
        assert stopped.wait(120), "Stop never came"
        return forward(*args, **kwargs)

    monkeypatch.setattr(first, "forward", held)
    job = client.submit(take=1, record=record, api_name="/stems")
    assert reached.wait(120), job.status()
    client.predict(api_name="/stop")
    stopped.set()
    assert job.result(timeout=120) == (None, None, None, None)
    made = served[1] / record["takes"][0]["audio"]
    # No stem and no stems record beside the take (its MP3 preview and its latents are the take's own).
    assert made.is_file() and not [
        p
        for p in made.parent.glob(f"{made.stem}-*")
        if p.name not in (f"{made.stem}-preview.mp3", f"{made.stem}-latents.npy")
    ]


# ---------------------------------------------------------------- in the page


def test_split_into_stems_in_the_page(served, client, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(served[0])
        page.locator("#gen-prompt textarea").fill("funk groove")
        page.locator("#gen-think input[type=checkbox]").uncheck()
        page.locator("#gen-duration input[type=number]").fill("10")
        page.locator("#gen-button").click()
        page.locator("#gen-take-1 a.download-link").wait_for()
        assert not page.locator("#gen-stems-box-1").is_visible()
        page.locator("#gen-stems-1").click()
        for name in stems.STEMS:
            link = page.locator(f"#gen-take-1-{name} a.download-link")
            link.wait_for()
            assert link.get_attribute("href").endswith(f"-{name}.wav")
        assert page.locator("#gen-stems-box-1").is_visible()
        assert page.locator("[data-testid=toast-body].error").count() == 0
        picture(page, SHOTS / "stems.png", full_page=True)
    finally:
        context.close()


# ---------------------------------------------------------------- under ZeroGPU


def test_a_full_disk_leaves_no_stem_behind(tmp_path, monkeypatch):
    import errno

    import soundfile

    monkeypatch.setenv("ACE_STUDIO_OUTPUT_DIR", str(tmp_path))
    day = tmp_path / "2026-11-20"
    day.mkdir()
    take = day / "generate-120000-abcdef-take1-seed5.wav"
    take.write_bytes(b"x")
    real, calls = soundfile.write, []

    def write(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:  # the third stem: half written, then the disk is full
            Path(path).write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(soundfile, "write", write)
    parts = {name: np.zeros((2, 4800), np.float32) for name in stems.STEMS}
    with pytest.raises(takes.SaveError, match="disk of the studio's output folder is full"):
        takes.write_stems(take, parts, {"timings": {}})
    assert sorted(p.name for p in day.iterdir()) == [take.name]
