"""The fitted tempo line of a song's beats, as ``beats`` reads it once they sit on their attacks: each beat moved
onto the straight line fitted through its neighbours (``smoothed``: a flam or a hi-hat before the kick makes no
bar longer or shorter), and the beats at either end that leave it dropped (``steady_ends``: where the song stops,
a tracker may end on a beat of its own).

A song that speeds up or slows down bends its beats into a curve: at about 1 % a beat (a real drifting record,
86 -> 105 BPM over 40 s) a straight line fitted through nine beats runs 15-18 ms off the middle and the ends of
that curve by the ramp alone, and one through eight beats misses the next four by a tenth of a beat. So both
read the beats against the curve (a quadratic through more beats: ``BEND_BEATS``, ``END_BASE``) and fit the
straight line only to what is left around it, the attacks' jitter.
"""

from __future__ import annotations

import numpy as np

# The beats a beat's place is read over once on its attack (``smoothed``): two bars of 4/4 and one more; a beat
# further than ``ASTRAY_SECONDS`` from it is on another instrument's attack.
SMOOTH_BEATS = 9
ASTRAY_SECONDS = 0.015
# The curve a drift bends the beats into, read over this many (four bars and one): wide enough that one beat
# astray moves it a sixth of its own distance (nine beats: a quarter), and a steady song's curve is its straight
# fitted line.
BEND_BEATS = 17
# The curve is read only where the beats' length changes by more than this share over the song (the band
# drifting ±10 %: 0.13, ±15 %: 0.21; drascula-track26 0.10-0.17; the bench's other 19 excerpts 0.013 at most,
# one 0.065 before its ends are dropped), so a steady song's beats are read by the straight fitted line alone.
DRIFT_SHARE = 0.08
# The curve is read too where the song's tempo ramps steadily enough that the straight line fitted through
# ``SMOOTH_BEATS`` runs more than ``RAMP_SECONDS`` off it (the whole's quadratic: a straight line fitted through
# nine beats on it sits a * 20/3 off): a slow, short loop's drift is a small share but a long beat (the band at
# 60 BPM 3/4, ±1.5 % over eight bars: 3.5 ms, its bar lines 5.6 ms off without the curve, 1.8 with it); the
# bench's steady excerpts 0.06 ms at most (drascula-track13 0.62; told 57, 3.25 but its beats 48 ms RMS off the
# quadratic, so not a ramp), --bars' clicks drifting 2 % 1.6 at most (60 BPM), so they are read by the straight
# fitted line alone.
RAMP_SECONDS = 0.002
# A beat at either end of the song this far (a share of a beat) off where the beats before it lead is left out
# (``steady_ends``); the curve is read through ``END_BASE`` beats where the song has that many before its last
# four, else the straight line fitted through the eight (or the four to seven a short song has).
END_SLACK = 0.08
END_BASE = 12
LINE_BASE = 8


def drifting(times: np.ndarray) -> bool:
    """Whether the beats' length changes by more than ``DRIFT_SHARE`` over the song (read as the slope of the
    straight line fitted through each ``BEND_BEATS``): a drift, where a line fitted through nine or eight runs off the
    beats."""
    from scipy.signal import savgol_filter

    if len(times) < BEND_BEATS:
        return False
    lengths = savgol_filter(times, BEND_BEATS, 1, deriv=1, mode="interp")
    return bool(lengths.min() > 0 and lengths.max() / lengths.min() - 1.0 > DRIFT_SHARE)


def _ramping(times: np.ndarray) -> bool:
    """Whether the quadratic through all of ``times`` bends the straight line fitted through ``SMOOTH_BEATS`` of
    them more than ``RAMP_SECONDS`` off it (a over the beat's index squared, times k² averaged over -4..4: 20/3),
    and more than the beats scatter off that quadratic (where they scatter more, it is not what they follow)."""
    if len(times) < BEND_BEATS:
        return False
    index = np.arange(len(times))
    fit = np.polyfit(index, times, 2)
    scatter = float(np.sqrt(np.mean((times - np.polyval(fit, index)) ** 2)))
    return bool(abs(fit[0]) * 20.0 / 3.0 > max(RAMP_SECONDS, scatter))


def _bend(times: np.ndarray) -> np.ndarray:
    """The curve through ``times`` where they drift (``drifting``) or ramp (``_ramping``): a quadratic over the
    ``BEND_BEATS`` around each; zero where they do not (the straight fitted line is then read alone, as a steady
    song's is)."""
    from scipy.signal import savgol_filter

    bent = drifting(times) or _ramping(times)
    return savgol_filter(times, BEND_BEATS, 2, mode="interp") if bent else np.zeros(len(times))


def smoothed(times: np.ndarray) -> np.ndarray:
    """Each beat on the straight line fitted through the ``SMOOTH_BEATS`` around it (around the curve a drift bends
    them into, ``_bend``): an attack a few milliseconds early or late does not make its bar longer or shorter than the
    music plays it. A beat more than ``ASTRAY_SECONDS`` off it (on another instrument's attack) is first put on
    the line fitted through the eight nearest the rest, so it pulls no neighbour off its own place."""
    from scipy.signal import savgol_filter

    if len(times) <= SMOOTH_BEATS:
        return times
    bend = _bend(times)
    fitted = bend + savgol_filter(times - bend, SMOOTH_BEATS, 1, mode="interp")
    astray = np.abs(times - fitted) > ASTRAY_SECONDS
    if astray.any() and (~astray).sum() >= SMOOTH_BEATS:
        index, kept = np.arange(len(times)), np.flatnonzero(~astray)
        times = times.copy()
        for i in np.flatnonzero(astray):
            near = kept[np.argsort(np.abs(kept - i))[:8]]
            times[i] = bend[i] + np.polyval(np.polyfit(index[near], (times - bend)[near], 1), i)
        bend = _bend(times)  # again: a beat astray at either end had pulled the curve toward it
        fitted = bend + savgol_filter(times - bend, SMOOTH_BEATS, 1, mode="interp")
    return fitted


def steady_ends(times: np.ndarray) -> np.ndarray:
    """``times`` without the beats at either end that leave where the beats before them lead (more than
    ``END_SLACK`` of a beat off the curve through the ``END_BASE`` before the last four, or the straight line
    fitted through the eight, or the four to seven a short song has): where the song stops, the tracker may end
    on a beat of its own."""
    kept = np.asarray(times)
    for _ in range(2):
        bent = len(kept) - 4 >= END_BASE and drifting(kept)
        # A slow, short take has few beats (30 BPM, 20 s: nine), its last as likely the tracker's own.
        if (n := END_BASE if bent else min(LINE_BASE, len(kept) - 4)) >= 4:
            fit = np.polyfit(np.arange(n), kept[-n - 4 : -4], 2 if bent else 1)
            slope = fit[-2] + (2 * fit[0] * n if bent else 0.0)  # a beat's length where the four start
            off = np.abs(kept[-4:] - np.polyval(fit, np.arange(n, n + 4))) > END_SLACK * slope
            kept = kept[: len(kept) - 4 + int(np.argmax(off))] if off.any() else kept
        kept = kept[::-1] * -1.0
    return kept
