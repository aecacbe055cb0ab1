"""A musician's correction of a song's map (*Bar 1 here*, ``first_downbeat``): its bars counted from the bar 1 the
musician set, exactly there, on the beats the map heard moved onto it (a real song's drift kept) or, where it
heard none or the BPM typed is not their tempo, laid at that BPM from bar 1; and a take's record's map counted so (``of_take``). Where the map
comes from is ``song_map``'s; the page counts the same in its JavaScript (``waveform.REPHASE_JS``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

import plan_format
import song_map
from beats import OCTAVE_REACH

# A musician's correction (*Bar 1 here*, ``first_downbeat``): the map's beats kept where the BPM typed is theirs,
# or a whole multiple or part of it (``WHOLE``: each beat split evenly, or every other or third kept), within
# ``beats.OCTAVE_REACH``; else a steady grid at the BPM typed.
WHOLE = (1 / 3, 1 / 2, 1.0, 2.0, 3.0)


def rephased(
    lines: list[float],
    first: float,
    bpm: Any,
    beats_per_bar: int | None,
    seconds: float,
    heard_per_bar: int | None = None,
) -> list[float]:
    """The bar lines counted from bar 1 at ``first`` (seconds), the first of them ``first`` itself: the map's beats
    (``lines``, each bar split into ``heard_per_bar`` beats) moved so the one nearest ``first`` falls on it, and
    grouped ``beats_per_bar`` at a time from there, a real song's drift kept; where the map heard no bars, or
    ``bpm`` (typed) is not its tempo within an octave, bars at ``bpm`` from ``first``. Nothing before bar 1 is
    counted. Empty where neither is known. The page draws the same (``waveform.REPHASE_JS``)."""
    per_bar = beats_per_bar or heard_per_bar or song_map.ASSUMED_BEATS
    inside = sorted({float(t) for t in lines if 0 <= float(t) < seconds})  # a line met twice is one
    tempo = song_map.positive(bpm)
    low, high = plan_format.BPM_RANGE
    tempo = tempo if tempo is not None and low <= tempo <= high else None  # the request is refused with a message
    beats = _beats(inside, heard_per_bar or per_bar, seconds) if len(inside) >= 2 else None
    beats = None if beats is None else _at_tempo(beats, tempo, first)
    if beats is None:
        if tempo is None:
            return []
        bar = per_bar * 60.0 / tempo
        found = first + bar * np.arange(int(max(0.0, seconds - first) / bar) + 2)
    else:
        # Bar 1 where the musician set it, whatever the map heard: its beats moved as far as the nearest is off
        # bar 1 (a map half a beat off is counted on the beats as played), each beat's length, its drift, kept.
        nearest = int(np.argmin(np.abs(beats - first)))
        found = beats[nearest::per_bar] + (first - beats[nearest])
        bar = float(np.median(np.diff(found))) if found.size > 1 else per_bar * float(np.median(np.diff(beats)))
    # To the millisecond as the page rounds (``Math.round``: half up), so a line half a millisecond off is the page's.
    return [math.floor(max(0.0, float(t)) * 1000.0 + 0.5) / 1000.0 for t in found if t < seconds - 0.25 * bar]


def _beats(lines: list[float], per_bar: int, seconds: float) -> np.ndarray:
    """The map's beats: each bar split into ``per_bar`` even beats, carried on at its first bar's beat before it
    and its last bar's after it, across the whole song (a click on an intro the map left out finds a beat)."""
    inner = [a + (b - a) * i / per_bar for a, b in zip(lines, lines[1:], strict=False) for i in range(per_bar)]
    head, tail = (lines[1] - lines[0]) / per_bar, (lines[-1] - lines[-2]) / per_bar
    before = [lines[0] - head * k for k in range(int(lines[0] / head + 0.5), 0, -1)]
    after = [lines[-1] + tail * k for k in range(int((seconds - lines[-1]) / tail) + 1)]
    return np.array([*before, *inner, *after])


def _at_tempo(beats: np.ndarray, tempo: float | None, first: float) -> np.ndarray | None:
    """The map's ``beats`` at the ``tempo`` typed: as they are, each split in two or three, or every second or
    third (the one nearest ``first`` among them); None where the tempo typed is none of those."""
    if tempo is None:
        return beats
    ratio = float(np.median(np.diff(beats))) * tempo / 60.0  # the typed beats in each of the map's
    factor = min(WHOLE, key=lambda f: abs(np.log(ratio / f)))
    if abs(np.log(ratio / factor)) > np.log(1 + OCTAVE_REACH):
        return None
    if factor >= 1:
        n = round(factor)
        split = [a + (b - a) * i / n for a, b in zip(beats, beats[1:], strict=False) for i in range(n)]
        return np.array([*split, beats[-1]])
    step = round(1 / factor)
    return beats[int(np.argmin(np.abs(beats - first))) % step :: step]


def of_take(
    mapped: song_map.Map | None, first: float | None, bpm: Any, time_signature: Any, seconds: float
) -> song_map.Map | None:
    """A take's map (``song_map.of_take``) counted from the musician's bar 1 (``first``, seconds: its record's
    ``first_downbeat``) at the ``bpm`` and metre asked: as it is where none was set. The map's beats per bar
    are read off its bars and tempo where the metre was left to auto."""
    if first is None or mapped is None:
        return mapped
    lines = [float(t) for t in mapped.bars]
    per_bar = song_map.beats_per_bar_of(time_signature)
    counted = rephased(lines, first, bpm, per_bar, seconds, per_bar or _heard_per_bar(mapped))
    return dataclasses.replace(mapped, bars=counted)


def _heard_per_bar(mapped: song_map.Map) -> int | None:
    """How many beats the map's bars hold: its median bar at its tempo as played (``tempo.bpm``), or None."""
    lines = mapped.bars
    tempo = None if mapped.tempo is None else song_map.positive(mapped.tempo.bpm)
    if len(lines) < 2 or tempo is None:
        return None
    beats = round(float(np.median(np.diff(lines))) * tempo / 60.0)
    return beats if 2 <= beats <= 12 else None
