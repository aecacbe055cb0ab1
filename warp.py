"""A song's bars moved onto a grid, on the CPU: each bar time-stretched on its own to its length on the grid
(a variable stretch where the tempo wanders), the bars joined by short crossfades just before each bar line
so every downbeat's attack is its own bar's.

The stretch is a well-kept library's, never the studio's: Signalsmith Stretch (``python-stretch``, MIT), or
Rubber Band (``pedalboard``, GPLv3: an optional extra, ``ACE_STUDIO_STRETCH=rubberband`` where it is
installed). Both keep a stretched bar's attacks where the stretch puts them, to the millisecond
(docs/performance.md, "In time": librosa's phase vocoder and audiotsm's WSOLA were measured too).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

# A loop is never stretched further than this (per bar, either way): beyond it a take is too far off its
# tempo to be a loop of it (``loops``), and a stretch starts to be heard on voices and held notes.
MOST_PCT = 6.0
# Each bar is stretched with this much of its neighbours either side (so the stretcher starts and ends in
# music, not silence), then cut to its own span.
CONTEXT_S = 0.1
# The crossfade between two stretched bars ends on the bar line: the earlier bar's tail meets the later's
# lead-in, and the downbeat itself is the later bar's alone.
JOIN_S = 0.005
STRETCHERS = ("signalsmith", "rubberband")


def stretcher() -> str:
    """The stretch library the studio uses: ``ACE_STUDIO_STRETCH`` where it names one, else Signalsmith."""
    chosen = os.environ.get("ACE_STUDIO_STRETCH", "").strip().lower()
    return chosen if chosen in STRETCHERS else "signalsmith"


def _signalsmith(x: np.ndarray, ratio: float, rate: int) -> np.ndarray:
    import python_stretch

    one = python_stretch.Signalsmith.Stretch()
    one.preset(x.shape[0], float(rate))
    one.setTimeFactor(1.0 / ratio)
    return np.asarray(one.process(np.ascontiguousarray(x, dtype=np.float32)))


def _rubberband(x: np.ndarray, ratio: float, rate: int) -> np.ndarray:
    import pedalboard

    return np.asarray(pedalboard.time_stretch(np.ascontiguousarray(x, dtype=np.float32), rate, 1.0 / ratio))


def stretch_with(name: str) -> Callable[[np.ndarray, float, int], np.ndarray]:
    """The function that makes ``x`` ``[channels, samples]`` ``ratio`` times as long at ``rate``."""
    return {"signalsmith": _signalsmith, "rubberband": _rubberband}[name]


def ratios(lines: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Each bar's stretch: its length on the grid over its length as played."""
    return np.diff(np.asarray(targets, dtype=float)) / np.diff(np.asarray(lines, dtype=float))


def most_pct(lines: np.ndarray, targets: np.ndarray) -> float:
    """The most any bar is stretched, in percent either way, to move ``lines`` onto ``targets``."""
    return float(np.abs(ratios(lines, targets) - 1.0).max() * 100.0)


def too_far(pct: float) -> bool:
    """Whether bars stretched up to ``pct`` % (``most_pct``) are stretched too far to be warped (``MOST_PCT``):
    a loop then refused, a take locked to the grid kept as played."""
    return pct > MOST_PCT


def onto(
    stereo: np.ndarray,
    lines: np.ndarray,
    targets: np.ndarray,
    rate: int,
    stretch: Callable[[np.ndarray, float, int], np.ndarray] | None = None,
) -> np.ndarray:
    """``stereo`` ``[channels, samples]`` from its bar line ``lines[0]`` to ``lines[-1]`` (samples, as played)
    warped so that each line lands on its ``targets`` sample (from 0): ``targets[-1]`` samples long."""
    stretch = stretch or stretch_with(stretcher())
    lines, targets = np.asarray(lines, dtype=float), np.asarray(targets, dtype=np.int64)
    out = np.zeros((stereo.shape[0], int(targets[-1])), dtype=np.float32)
    pad, join = int(CONTEXT_S * rate), max(1, int(JOIN_S * rate))
    fade = np.linspace(0.0, 1.0, join, dtype=np.float32)
    for i, ratio in enumerate(ratios(lines, targets)):
        a, b = int(round(lines[i])), int(round(lines[i + 1]))
        lo, hi = max(0, a - pad), min(stereo.shape[-1], b + pad)
        # A bar kept at its length (a lead-in before the first downbeat) is copied as played, not re-synthesised.
        made = stereo[:, lo:hi] if abs(ratio - 1.0) < 1e-9 else stretch(stereo[:, lo:hi], ratio, rate)
        # Where this bar's own line lies in what the stretch made (its lead-in was stretched as much).
        at = int(round((a - lo) * made.shape[-1] / max(1, hi - lo)))
        start, end = int(targets[i]), int(targets[i + 1])
        span = made[:, at : at + end - start]
        out[:, start : start + span.shape[-1]] = span
        if (
            i and min(at, start) >= join
        ):  # the crossfade before this bar line: the last bar's tail into this one's lead-in
            lead = made[:, at - join : at]
            out[:, start - join : start] = out[:, start - join : start] * (1.0 - fade) + lead * fade
    return out
