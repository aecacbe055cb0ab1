"""The bar grid's accuracy and cost (``--bars``): click tracks with accented downbeats, from 60 to 180 BPM in
3/4 and 4/4, their tempo drifting 2 % across the track, read by ``song_map`` as a take's map is read; each
row says how far the furthest bar line lies from the truth, and the CPU seconds a minute of audio costs.
``clicks`` is the tests' track too (tests/test_song_map.py).
"""

from __future__ import annotations

import time

import numpy as np

TEMPI = (60, 75, 90, 105, 120, 140, 160, 180)
METRES = (3, 4)
DRIFT = 0.02
TOLERANCE_S = 0.03


def clicks(
    bpm: float, per_bar: int, seconds: float = 40.0, drift: float = DRIFT, lead: float = 0.4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A click track (48 kHz stereo) and its true bar lines: a click on every beat, the downbeat's louder
    and higher, the tempo rising by ``drift`` from start to end, over a faint hiss."""
    import audio

    rate = audio.SAMPLE_RATE
    times, t = [], lead
    while t < seconds - 0.2:
        times.append(t)
        t += 60.0 / (bpm * (1 + drift * t / seconds))
    song = np.random.default_rng(seed).normal(0.0, 0.002, int(seconds * rate))
    k = np.arange(int(0.04 * rate))
    decay = np.exp(-k / (0.008 * rate))
    for i, at in enumerate(times):
        down = i % per_bar == 0
        burst = (1.0 if down else 0.45) * decay * np.sin(2 * np.pi * (1500 if down else 1000) * k / rate)
        a = int(round(at * rate))
        song[a : a + len(k)] += burst[: len(song) - a]
    return np.stack([song, song]).astype(np.float32), np.array(times[::per_bar])


def furthest(found: list[float], truth: np.ndarray) -> float:
    """Seconds from the furthest true bar line to its nearest found one, or from a found one to the truth
    (a bar line too many counts as much as one missed); inf where none was found."""
    if not found:
        return float("inf")
    lines = np.asarray(found)
    return float(
        max(np.abs(lines[:, None] - truth[None, :]).min(axis=1).max(), np.abs(truth[:, None] - lines).min(axis=1).max())
    )


def row(bpm: float, per_bar: int, told: bool, seconds: float = 40.0) -> dict[str, float | int | bool]:
    """One track read: the metre told (the record's) or found (the tracker's)."""
    import song_map

    song, truth = clicks(bpm, per_bar, seconds)
    started = time.process_time()
    bars, found, _ = song_map.bars_of(song, beats_per_bar=per_bar if told else None)
    cpu = time.process_time() - started
    return {
        "bpm": bpm,
        "metre": per_bar,
        "told": told,
        "found": found or 0,
        "bars": len(bars),
        "true": len(truth),
        "error_ms": 1000 * furthest(bars, truth),
        "cpu_per_minute": cpu * 60 / seconds,
    }


def table() -> str:
    """Every tempo and metre, the metre told and found: a Markdown table and the CPU cost a minute."""
    import song_map

    song_map.bars_of(clicks(120, 4, 5.0)[0])  # librosa's first call (its imports, numba) outside the measurement
    rows = [row(bpm, per_bar, told) for told in (True, False) for per_bar in METRES for bpm in TEMPI]
    lines = [
        "| BPM | metre | metre from | bars found / true | furthest bar line | CPU s a minute |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        metre = f"{r['metre']}/4" + ("" if r["found"] == r["metre"] else f" (read {r['found']})")
        told = "record" if r["told"] else "tracker"
        lines.append(
            f"| {r['bpm']} | {metre} | {told} | {r['bars']} / {r['true']} | {r['error_ms']:.1f} ms | {r['cpu_per_minute']:.2f} |"
        )
    worst = max(r["error_ms"] for r in rows)
    cpu = sorted(r["cpu_per_minute"] for r in rows)[len(rows) // 2]
    lines.append(
        f"\nFurthest bar line {worst:.1f} ms (within {1000 * TOLERANCE_S:g} ms: {worst <= 1000 * TOLERANCE_S}); median {cpu:.2f} CPU s a minute of audio."
    )
    return "\n".join(lines)


def long_song_cost(minutes: float = 10.0) -> str:
    """The CPU seconds of the longest song's map (a click track ``minutes`` long)."""
    import song_map

    song, _ = clicks(120, 4, minutes * 60)
    started = time.process_time()
    song_map.bars_of(song)
    return f"A {minutes:g}-minute song: {time.process_time() - started:.2f} CPU s."
