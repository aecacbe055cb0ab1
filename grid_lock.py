"""*Lock to the grid* (Generate's ``lock_to_grid``), on the CPU as each take is finished: the take's bars, as
its map hears them (``song_map.grid_of``, at the BPM asked or planned), warped onto that BPM (``warp.onto``),
so every bar lasts exactly its length at the tempo asked from the take's first downbeat on; what comes before
that downbeat (a pickup, an intro's silence) is kept as played. The take as played is kept beside it
(``<take>-unlocked``), and its record says what was stretched. A take with no steady beat, or whose bars would
be stretched more than ``warp.MOST_PCT`` (a tempo change, a half-time bridge), is kept as played, and its
record says why: a finish option never costs a take.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import analysis
import audio
import mastering
import messages
import song_map
import uploads
import warp
from music_request import Job
from run_result import Locked, Rendered


def knots(lines: list[float], bpm: float, per_bar: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The time map (samples as played → samples locked): the song's start and its first downbeat stay, every
    later bar line lands a bar of ``per_bar`` beats at ``bpm`` after the last, and the song's end (``n``)
    follows its last bar at the last bar's stretch."""
    rate, bar = audio.SAMPLE_RATE, per_bar * 60.0 / bpm * audio.SAMPLE_RATE
    played = np.asarray(lines, dtype=float) * rate
    locked = played[0] + bar * np.arange(played.size)
    last = bar / (played[-1] - played[-2]) if played.size > 1 else 1.0
    tail = max(0.0, n - played[-1])
    head = [0.0] if played[0] > 0 else []
    return (
        np.array([*head, *played, played[-1] + tail]),
        np.round(np.array([*head, *locked, locked[-1] + tail * last])).astype(np.int64),
    )


def lock(take: np.ndarray, bpm: float | None, per_bar: int | None) -> tuple[np.ndarray | None, dict[str, Any]]:
    """``take`` (``[2, samples]``) locked to ``bpm``: (the locked take, its record's ``lock``), or (None, the
    message why it was kept as played). The record's ``lock`` holds ``moved``: where each second of the take as
    played lies in the locked one (its synced lines move with it), taken out before it is written."""
    if not bpm:
        return None, {"locked": False, "why": messages.LOCK_NO_BPM}
    try:
        with analysis.place(song_map.TAKE_WAIT_S):  # one of the analyses' places, as every take's map
            return _locked(take, bpm, per_bar)
    except uploads.Busy:
        return None, {"locked": False, "why": messages.LOCK_BUSY}


def _locked(take: np.ndarray, bpm: float, per_bar: int | None) -> tuple[np.ndarray | None, dict[str, Any]]:
    lines, found, tempo = song_map.grid_of(take, audio.SAMPLE_RATE, per_bar, bpm)
    if tempo is None or len(lines) < 2 or found is None:
        return None, {"locked": False, "why": messages.LOCK_NO_BEAT}
    played, locked = knots(lines, bpm, found, take.shape[-1])
    most = warp.most_pct(played, locked)
    said = {"bpm": float(bpm), "played_bpm": tempo.bpm, "most_pct": round(most, 2)}
    if warp.too_far(most):
        return None, {"locked": False, **said, "why": messages.LOCK_TOO_FAR.format(pct=most, most=warp.MOST_PCT)}
    out = warp.onto(take, played, locked, audio.SAMPLE_RATE)
    said["moved"] = (played / audio.SAMPLE_RATE, locked / audio.SAMPLE_RATE)
    first = lines[0] if lines[0] > 0 else 0.0
    grid = {"first": round(first, 3), "bar": round(found * 60.0 / bpm, 6), "beats_per_bar": found}
    seconds = round(out.shape[-1] / audio.SAMPLE_RATE, 3)
    return out, {"locked": True, **said, **grid, "seconds": seconds, "stretcher": warp.stretcher()}


def grid(entry: dict[str, Any], seconds: float) -> list[float]:
    """A locked take's bar lines (its record's ``lock``): its first downbeat, a bar at the tempo asked after
    the last while more than a quarter of it fits in the take, and whole bars before it while they fall in
    the take (as ``song_map`` counts a song's bars)."""
    first, bar = float(entry["first"]), float(entry["bar"])
    before = int(np.floor(first / bar + 1e-9))
    after = int(np.ceil((seconds - first) / bar - 0.25))
    return [round(first + k * bar, 3) for k in range(-before, max(0, after))]


def moved_lines(lines: list[dict[str, Any]], info: dict[str, Any]) -> list[dict[str, Any]]:
    """A locked take's synced lines (``lrc``'s ``{"time", …}``) at their times in the locked take."""
    played, locked = info["moved"]
    return [{**line, "time": round(float(np.interp(float(line["time"]), played, locked)), 3)} for line in lines]


def locked(job: Job, made: list[np.ndarray], result: Rendered) -> Locked:
    """A Generate job's takes (``made``, fitted, not finished) each locked to its tempo (``lock``): the takes,
    the take as played finished beside each (``unlocked``, None where it was kept as played), what was done
    (``locks``), its synced lines moved with it, and no latents for a locked take (it is not their decode)."""
    call = job.request.render.pipeline
    planners = result.planners or [None] * len(made)
    done = [
        lock(take, *song_map.asked(call.bpm, call.timesignature, plan))
        for take, plan in zip(made, planners, strict=True)
    ]
    latents = result.latents
    if latents is not None:  # a locked take is no longer its latents' decode
        latents = [None if new is not None else own for own, (new, _) in zip(latents, done, strict=True)]
    lyrics = [
        found and (found if "moved" not in info else {**found, "lines": moved_lines(found["lines"], info)})
        for found, (_, info) in zip(result.lyrics or [None] * len(made), done, strict=True)
    ]
    pairs = list(zip(made, done, strict=True))
    return Locked(
        takes=[take if new is None else new for take, (new, _) in pairs],
        latents=latents,
        lyrics=lyrics,
        unlocked=[None if new is None else mastering.finish(take, job.finishing)[0] for take, (new, _) in pairs],
        locks=[{k: v for k, v in info.items() if k != "moved"} for _, info in done],
    )
