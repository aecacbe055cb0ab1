"""The musical promises on real music. The stand-in band's real-record voice (``band.Band(record=...)``,
``tools/band_record.py``) plays a real excerpt no one here made (``tests/data/real_groove.ogg``, its licence in
``real_groove.md``) at a chosen error and drift; its truth is the record's own beats (a field tracker's reading,
``real_groove.json``) moved where the band plays them. A loop of it, a take of it locked to the grid and an
Edit by the bar of it are measured against that truth: in this process and under the ZeroGPU harness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import audio
import grid_lock
import loop_takes
import song_map
from band import Band, play
from bench_bars import furthest
from music_request import Loop

SR = audio.SAMPLE_RATE
RECORD = "real_groove"
# Where a bar line of the music may lie from its grid (or from the truth's) once the studio has put it in time:
# the tracker's reading of a real record, warped.
GRID_S = 0.010


def _on(times: np.ndarray, step: float) -> float:
    """Seconds from the furthest of ``times`` to its nearest line of a grid ``step`` apart from 0."""
    return float(np.abs(times - np.round(times / step) * step).max())


def test_a_loop_of_a_real_record_played_slow_and_drifting_is_its_bars_on_the_grid():
    """The record played 3 % slow drifting 1 % (116.4 BPM, told 120): the loop of 8 bars is exactly 8 bars of
    120 BPM in samples, and every true beat of the cycle kept, carried through the studio's warp, lies on the
    120 BPM grid (its bar lines on the grid's, none missed); heard round its wrap, the loop's bars are there."""
    loop = Loop.of(8, 4, 120)
    played = play(120, 4, loop.made_samples / SR, Band(error=-0.03, drift=0.01, record=RECORD))
    one, said = loop_takes.in_time(played.audio, loop)
    assert one.shape == (2, 8 * 4 * SR // 2) == (2, 768_000) and said["stretched"]
    assert said["played_bpm"] == pytest.approx(116.4, rel=0.015) and said["off_grid_ms"] > 40
    lines, _ = loop_takes._played(played.audio, loop)
    targets = np.round(np.arange(loop.bars + 1) * loop.samples / loop.bars)
    beats, bars = (
        np.interp(t[(t >= lines[0] - 0.05) & (t <= lines[-1] + 0.05)] * SR, lines * SR, targets) / SR
        for t in (played.beats, played.bars)
    )
    assert bars.size == loop.bars + 1 and np.abs(bars - np.arange(loop.bars + 1) * 2.0).max() <= GRID_S
    assert beats.size == 4 * loop.bars + 1 and _on(beats, 0.5) <= GRID_S
    heard, _, tempo = song_map.grid_of(np.tile(one, (1, 2)), SR, 4, 120)
    assert tempo is not None and tempo.bpm == pytest.approx(120, abs=0.3)
    assert furthest(heard[: loop.bars], np.arange(loop.bars) * 2.0) <= GRID_S


def test_a_real_record_locked_to_the_grid_keeps_its_lead_in_and_puts_its_bars_on_128_bpm():
    """The record told 128 BPM, played 2 % slow drifting 1 % after 0.4 s of lead-in, locked: its true bar lines,
    moved as the lock moves the take, on the grid of 128 BPM from its first downbeat; the lead-in as played."""
    played = play(128, 4, 24.0, Band(error=-0.02, drift=0.01, lead=0.4, record=RECORD))
    locked, info = grid_lock.lock(played.audio, 128, 4)
    assert locked is not None and info["locked"] and info["bar"] == 1.875
    assert info["first"] == pytest.approx(played.bars[0], abs=GRID_S) and 0 < info["most_pct"] <= 6
    grid = np.asarray(grid_lock.grid(info, locked.shape[-1] / SR))
    moved = np.interp(played.bars, *info["moved"])
    inside = moved[moved < grid[-1] + 0.5]
    assert inside.size == grid.size and np.abs(inside - grid).max() <= GRID_S
    a = int(round(played.bars[0] * SR)) - int(0.01 * SR)
    assert np.array_equal(locked[:, :a], played.audio[:, :a])
    heard, _, tempo = song_map.grid_of(locked, SR, 4, 128)
    assert tempo is not None and tempo.bpm == pytest.approx(128, abs=0.3)
    assert furthest(heard, grid) <= GRID_S


def test_lock_to_grid_on_a_real_record_keeps_the_take_as_played_beside_it(studio_env, band):
    import handlers

    calls = band(Band(error=-0.02, record=RECORD))
    paths, record = handlers.make(
        "generate", prompt="synthwave", bpm=128, time_signature="4", audio_duration=16, lock_to_grid=True,
        inference_steps=1, think=False, seed=1,
    )  # fmt: skip
    take = record["takes"][0]
    truth = play(128, 4, 16.0, Band(error=-0.02, record=RECORD)).bars
    assert calls[-1][1] and take["lock"]["locked"] and take["lock"]["first"] == pytest.approx(truth[0], abs=GRID_S)
    assert take["lock"]["played_bpm"] == pytest.approx(125.44, abs=0.3)
    played = studio_env / take["unlocked"]
    assert played.exists() and audio.probe(str(played)).frames == 16 * SR
    heard, _, _ = song_map.grid_of(_load(paths[0]), SR, 4, 128)
    assert furthest(heard, np.asarray(take["bars"])) <= GRID_S


def _load(path: str) -> np.ndarray:
    import uploads

    return uploads.load(path)


def _edit_by_the_bar(client, made: list, truth: np.ndarray) -> tuple[float, float]:
    from gradio_client import handle_file

    edited = client.predict(src_audio=handle_file(made[0]), prompt="x", bars="5-8", inference_steps=1, api_name="/edit")
    start, end = edited[-1]["params"]["repainting_start"], edited[-1]["params"]["repainting_end"]
    assert start == pytest.approx(truth[4], abs=0.03) and end == pytest.approx(truth[8], abs=0.03)
    return start, end


def test_a_real_record_under_zerogpu_loops_in_time_and_edits_by_its_own_bars(zerogpu_space):
    """In the ZeroGPU worker (``HARNESS_BAND``) the record plays 2 % slow after a lead-in: a loop of it is 4 bars
    of 120 BPM, put in time from the bar lines this process finds in the same render (its true bar lines, carried
    through, on the grid), and "bars 5-8" of a take of it is the region between its own fifth and ninth bar lines
    (the record's, as played), not the grid's of the tempo told."""
    from gradio_client import Client

    client = Client(zerogpu_space.url, verbose=False)
    how = Band(error=-0.02, lead=0.25, record=RECORD)
    with zerogpu_space.band(how):
        looped = client.predict(
            prompt="dnb", bpm=120, loop_bars=4, inference_steps=1, seed=8, think=False, api_name="/generate"
        )
        made = client.predict(
            prompt="dnb", bpm=120, time_signature="4", audio_duration=18, inference_steps=1, seed=2, think=False,
            api_name="/generate",
        )  # fmt: skip
        _edit_by_the_bar(client, made, play(120, 4, 18.0, how).bars)
    loop = Loop.of(4, 4, 120)
    first = play(120, 4, loop.made_samples / SR, how)
    _, said = loop_takes.in_time(first.audio, loop)
    assert looped[-1]["loop"]["samples"] == 8 * SR and _load(looped[0]).shape == (2, 8 * SR)
    assert looped[-1]["takes"][0]["stretch"] == said and said["stretched"]  # the worker's warp is this one
    lines, _ = loop_takes._played(first.audio, loop)
    truth = first.bars[(first.bars >= lines[0] - 0.05) & (first.bars <= lines[-1] + 0.05)]
    assert (
        np.abs(np.interp(truth, lines, np.arange(loop.bars + 1) * 2.0) - np.arange(loop.bars + 1) * 2.0).max() <= GRID_S
    )


@pytest.mark.xfail(strict=True, reason="the map hears this real loop's bar 1 on its third beat")
def test_the_map_hears_a_finished_real_loops_bar_one_where_it_is():
    """The loop the ZeroGPU test makes (its true bar lines within 2 ms of its grid: above), finished as a cycle and
    heard alone at the BPM told: today the map puts its bar lines at 1, 3, 5 and 7 s, half a bar off (heard twice
    round, unfinished, it finds 0, 2, 4 and 6). An upload of it to Edit would be cut mid-bar."""
    import mastering

    loop = Loop.of(4, 4, 120)
    first = play(120, 4, loop.made_samples / SR, Band(error=-0.02, lead=0.25, record=RECORD))
    one, _ = loop_takes.in_time(first.audio, loop)
    finished, _ = mastering.cycled(one, mastering.Finish(cycle=True))
    heard, _, _ = song_map.grid_of(finished, SR, 4, 120)
    assert furthest(heard, np.arange(4) * 2.0) <= GRID_S


def test_the_record_is_credited_and_its_truth_is_a_trackers():
    data = Path(__file__).parent / "data"
    said = (data / "real_groove.md").read_text()
    assert "CC BY-SA 3.0" in said and "Max McCracken" in said and "singularity-music" in said
    truth = __import__("json").loads((data / "real_groove.json").read_text())
    assert truth["tracker"].startswith("madmom") and truth["downbeats"] == truth["beats"][:: truth["beats_per_bar"]]
