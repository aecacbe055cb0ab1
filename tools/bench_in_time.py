"""Loops in time (``--in-time``): the stand-in band (``band``) plays a loop's first render at a tempo off the one
asked (-3 … +3 %) and drifting ±1.5 % over it, from 60 to 180 BPM in 3/4 and 4/4; ``loop_takes.in_time`` finds its
bars and warps them onto the grid. Each row: the furthest bar line from the grid before (the cycle cut as
played) and after, both as the band's truth lands through the warp and as the tracker hears the warped loop;
whether the tracker read the tempo at the right octave; the step at the wrap against the largest inside. Then
the stretch libraries side by side on one groove (attacks and CPU), and the warp's CPU a minute of audio.
"""

from __future__ import annotations

import time

import numpy as np

TEMPI = (60, 75, 90, 105, 120, 140, 160, 180)
METRES = (3, 4)
ERRORS = (-0.03, -0.015, 0.0, 0.015, 0.03)
DRIFT = 0.015
BARS = 8
TOLERANCE_MS = 5.0


def _truth_through(lines: np.ndarray, targets: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Where the warp puts each true bar line (seconds, played) on the loop (samples): its piecewise-linear
    time map from the measured ``lines`` to the grid's ``targets``."""
    return np.interp(truth, lines, targets)


def row(bpm: int, per_bar: int, error: float, drift: float = DRIFT) -> dict[str, float | int | bool | str]:
    """One loop: the band's first render, put in time, measured."""
    import audio
    import band
    import loop_takes
    import song_map
    from music_request import Loop

    rate = audio.SAMPLE_RATE
    loop = Loop.of(BARS, per_bar, bpm)
    played = band.play(bpm, per_bar, loop.made_samples / rate, band.Band(error=error, drift=drift))
    first = played.audio
    started = time.process_time()
    one, said = loop_takes.in_time(first, loop)
    cpu = time.process_time() - started
    grid = np.arange(BARS + 1) * loop.samples / BARS
    start = loop_takes.kept(loop) * loop.samples / rate
    downs = played.bars[played.bars >= start - 0.25 * loop.samples / BARS / rate][: BARS + 1]
    before = np.abs((downs - downs[0]) * rate - grid[: downs.size]).max() / rate * 1000
    found = loop_takes._played(first, loop)
    after = float("nan")
    if found is not None and said.get("stretched"):
        lines = found[0] * rate
        mapped = _truth_through(lines, grid, downs * rate)
        after = float(np.abs(mapped - grid[: mapped.size]).max() / rate * 1000)
    elif found is not None:
        after = before
    heard_lines, _, tempo = song_map.grid_of(np.tile(one, (1, 2)), rate, per_bar, bpm)
    heard = np.asarray(heard_lines[:BARS]) * rate
    heard_ms = float(np.abs(heard[:, None] - grid[None, :BARS]).min(axis=1).max() / rate * 1000) if heard.size else 0.0
    wrap = float(np.abs(one[:, 0] - one[:, -1]).max())
    inside = float(np.abs(np.diff(one, axis=-1)).max())
    return {
        "bpm": bpm,
        "metre": per_bar,
        "error": error,
        "played": played.played_bpm,
        "read": said.get("played_bpm", 0.0),
        "octave_right": bool(said.get("heard")) and abs(said["played_bpm"] / played.played_bpm - 1) < 0.02,
        "before_ms": before,
        "after_ms": after,
        "heard_ms": heard_ms,
        "stretched": bool(said.get("stretched")),
        "most_pct": said.get("most_pct", 0.0),
        "wrap_ok": wrap <= inside,
        "tempo_after": tempo.bpm if tempo is not None else 0.0,
        "cpu_s": cpu,
    }


def table(tempi: tuple[int, ...] = TEMPI, errors: tuple[float, ...] = ERRORS) -> str:
    """Every tempo, metre and error: a Markdown table, then what it adds up to."""
    rows = [row(bpm, per_bar, e) for per_bar in METRES for bpm in tempi for e in errors]
    lines = [
        f"{BARS}-bar loops, the band {DRIFT * 100:g} % off its mean tempo at either end:",
        "",
        "| BPM | metre | played | read | furthest bar line before | after (truth) | after (heard) | stretch | wrap step ≤ inside |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['bpm']} | {r['metre']}/4 | {r['played']:.1f} | {r['read']:.1f}{'' if r['octave_right'] else ' ✗'} "
            f"| {r['before_ms']:.1f} ms | {r['after_ms']:.1f} ms | {r['heard_ms']:.1f} ms | {r['most_pct']:.2f} % "
            f"| {'yes' if r['wrap_ok'] else 'no'} |"
        )
    worst = max(r["after_ms"] for r in rows)
    heard = max(r["heard_ms"] for r in rows)
    octaves = sum(not r["octave_right"] for r in rows)
    cpu = sorted(r["cpu_s"] for r in rows)[len(rows) // 2]
    lines.append(
        f"\n{len(rows)} loops: furthest bar line after the warp {worst:.1f} ms by the truth, {heard:.1f} ms as heard "
        f"(within {TOLERANCE_MS:g} ms: {worst <= TOLERANCE_MS}); before it up to {max(r['before_ms'] for r in rows):.0f} ms; "
        f"tempo read at the wrong octave {octaves} times; wraps no steeper than inside: "
        f"{sum(r['wrap_ok'] for r in rows)} of {len(rows)}; median CPU of finding and warping one loop {cpu:.2f} s."
    )
    return "\n".join(lines)


def _librosa(x: np.ndarray, ratio: float, rate: int) -> np.ndarray:
    import librosa

    return np.asarray(librosa.effects.time_stretch(x, rate=1.0 / ratio))


def _wsola(x: np.ndarray, ratio: float, rate: int) -> np.ndarray:
    from audiotsm import wsola
    from audiotsm.io.array import ArrayReader, ArrayWriter

    writer = ArrayWriter(x.shape[0])
    wsola(x.shape[0], speed=1.0 / ratio).run(ArrayReader(np.ascontiguousarray(x)), writer)
    return writer.data


def _stretchers() -> dict[str, object]:
    """Each library the comparison can run here, by name (a missing one is left out and said)."""
    import warp

    found: dict[str, object] = {}
    for name, make, module in (
        ("Signalsmith Stretch (python-stretch, MIT)", lambda: warp.stretch_with("signalsmith"), "python_stretch"),
        ("Rubber Band (pedalboard, GPLv3)", lambda: warp.stretch_with("rubberband"), "pedalboard"),
        ("WSOLA (audiotsm, MIT)", lambda: _wsola, "audiotsm"),
        ("phase vocoder (librosa, ISC)", lambda: _librosa, "librosa"),
    ):
        try:
            __import__(module)
        except ImportError:
            continue
        found[name] = make()
    return found


def _attacks(x: np.ndarray, at: np.ndarray, rate: int) -> tuple[float, float]:
    """The furthest attack (the fine envelope's steepest rise within 30 ms of each line) from its line (ms),
    and the mean sharpness of the attacks (the first 5 ms's high-passed energy against the 20 ms before)."""
    mono = x.mean(axis=0)
    high = np.diff(mono, prepend=0.0) ** 2
    total = np.concatenate([[0.0], np.cumsum(high)])
    offsets, sharp = [], []
    w, reach = int(0.005 * rate), int(0.03 * rate)
    for t in at.astype(int):
        if t - reach - 4 * w < 0 or t + reach + w >= len(mono):
            continue
        starts = np.arange(t - reach, t + reach)
        rise = (total[starts + w] - total[starts]) - (total[starts] - total[starts - w])
        peak = int(starts[np.argmax(rise)])
        offsets.append(abs(peak - t) / rate * 1000)
        sharp.append((total[peak + w] - total[peak]) / (total[peak] - total[peak - 4 * w] + 1e-12))
    return (max(offsets) if offsets else float("nan")), float(np.mean(np.log10(np.asarray(sharp) + 1e-12)))


def libraries(bpm: int = 120, error: float = -0.03, seconds: float = 60.0) -> str:
    """The stretch libraries on one band take (``seconds`` long, ``error`` off ``bpm``, drifting): each bar
    warped onto the grid by ``warp.onto`` with each library, its attacks against the grid, its CPU a minute."""
    import audio
    import band
    import warp

    rate = audio.SAMPLE_RATE
    played = band.play(bpm, 4, seconds, band.Band(error=error, drift=DRIFT))
    downs = played.bars[:-1]
    bar = 4 * 60.0 / bpm * rate
    targets = np.round(np.arange(downs.size) * bar).astype(np.int64)
    _, dry = _attacks(played.audio, downs * rate, rate)
    lines = [
        f"One {seconds:g} s groove at {bpm * (1 + error):g} BPM (±{DRIFT * 100:g} %), its {downs.size - 1} bars warped onto "
        f"{bpm} BPM bar by bar (``warp.onto``); attack sharpness: log10 of the first 5 ms's high-passed energy over "
        f"the 20 ms before, at each bar line (unwarped: {dry:.2f}; lower is smeared).",
        "",
        "| library | furthest downbeat attack from the grid | attack sharpness | CPU s a minute of audio |",
        "|---|---|---|---|",
    ]
    for name, stretch in _stretchers().items():
        stretch(played.audio[:, : rate // 2], 1.01, rate)  # a first call's set-up (numba, FFT plans) left out
        started = time.process_time()
        out = warp.onto(played.audio, downs * rate, targets, rate, stretch)
        cpu = (time.process_time() - started) * 60.0 / (targets[-1] / rate)
        furthest, sharp = _attacks(out, targets[:-1].astype(float), rate)
        lines.append(f"| {name} | {furthest:.1f} ms | {sharp:.2f} | {cpu:.2f} |")
    return "\n".join(lines)


# ``--metres``: every tempo and metre the studio offers, on the band played steadily (2 % slow, and in time).
SWEEP_TEMPI = (30, 45, 60, 80, 100, 120, 140, 170, 200, 240, 274, 300)
SWEEP_METRES = (2, 3, 4, 6)
SWEEP_ERRORS = (-0.02, 0.0)
SWEEP_BARS = 4
METRE = {2: "2/4", 3: "3/4", 4: "4/4", 6: "6/8"}
TEMPO_PCT = 0.5  # the tempo line's error the sweep allows, against the band's played tempo


def _nearest_ms(at: float, truth: np.ndarray) -> float:
    return float(np.abs(truth - at).min() * 1000.0)


def _locked(played, bpm: int, per_bar: int) -> dict[str, float | bool | str]:
    """*Lock to the grid* on the band's take: the stretch it says, whether it locked, its first bar line's
    distance from the band's nearest bar line."""
    import grid_lock

    _, info = grid_lock.lock(played.audio, bpm, per_bar)
    first = info.get("first")
    return {
        "lock_pct": float(info.get("most_pct", float("nan"))),
        "locked": bool(info["locked"]),
        "lock_first_ms": float("nan") if first is None else _nearest_ms(float(first), played.bars),
        "lock_why": str(info.get("why", "")),
    }


def _looped(bpm: int, per_bar: int, error: float) -> dict[str, float | bool | str]:
    """A ``SWEEP_BARS``-bar loop's first render by the band, put in time (``loop_takes.in_time``): the stretch
    it says (or its refusal), its first bar line's distance from the band's nearest bar line."""
    import audio
    import band
    import loop_takes
    from checks import InputError
    from music_request import Loop

    loop = Loop.of(SWEEP_BARS, per_bar, bpm)
    played = band.play(bpm, per_bar, loop.made_samples / audio.SAMPLE_RATE, band.Band(error=error))
    try:
        _, said = loop_takes.in_time(played.audio, loop)
    except InputError as refused:
        return {"loop_pct": float("nan"), "loop_first_ms": float("nan"), "loop_why": str(refused)}
    found = loop_takes._played(played.audio, loop)
    first = float("nan") if found is None else _nearest_ms(float(found[0][0]), played.bars)
    return {"loop_pct": float(said.get("most_pct", float("nan"))), "loop_first_ms": first, "loop_why": ""}


def metre_row(bpm: int, per_bar: int, error: float) -> dict[str, float | int | bool | str]:
    """The band at ``bpm`` in ``per_bar``, ``error`` off, steady: its take's map against the band's truth (every
    bar line the map promises: those a quarter of a bar before the end), its tempo line, and its lock and loop."""
    import audio
    import band
    import bench_bars
    import song_map

    rate = audio.SAMPLE_RATE
    bar = per_bar * 60.0 / (bpm * (1 + error))
    seconds = max(20.0, SWEEP_BARS * bar)
    played = band.play(bpm, per_bar, seconds, band.Band(error=error))
    lines, _, tempo = song_map.grid_of(played.audio, rate, per_bar, bpm)
    truth = played.bars[played.bars < seconds - 0.25 * bar]
    return {
        "bpm": bpm,
        "metre": per_bar,
        "error": error,
        "played": played.played_bpm,
        "bars_ms": 1000.0 * bench_bars.furthest(lines, truth),
        "read": tempo.bpm if tempo else float("nan"),
        "tempo_pct": (tempo.bpm / played.played_bpm - 1) * 100 if tempo else float("nan"),
        "said": tempo.said() if tempo else "no beat",
        "steady": bool(tempo and tempo.steady),
        # Each bar's true stretch onto the grid: its length at the tempo asked over its length as played.
        "true_pct": abs(played.played_bpm / bpm - 1) * 100,
        **_locked(played, bpm, per_bar),
        **_looped(bpm, per_bar, error),
    }


def _mark(ok: bool) -> str:
    return "" if ok else " ✗"


def metres_table(
    tempi: tuple[int, ...] = SWEEP_TEMPI,
    metres: tuple[int, ...] = SWEEP_METRES,
    errors: tuple[float, ...] = SWEEP_ERRORS,
) -> str:
    """Every tempo, metre and error: a Markdown table (✗ where a bar line lies over ``TOLERANCE_MS`` off, the
    tempo over ``TEMPO_PCT`` off, a steady band said to wander, a stretch said over 0.5 % from the true one, a
    lock or loop starting off a bar line), then what it adds up to."""
    rows = [metre_row(bpm, per_bar, e) for e in errors for per_bar in metres for bpm in tempi]
    lines = [
        f"The band played steadily, its take's map, its lock and a {SWEEP_BARS}-bar loop against its truth:",
        "",
        "| error | metre | BPM | played | furthest bar line | tempo read | tempo line | stretch true | lock said | loop said | lock, loop bar 1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    bad = 0
    for r in rows:
        checks = [
            r["bars_ms"] <= TOLERANCE_MS,
            abs(r["tempo_pct"]) <= TEMPO_PCT,
            r["steady"],
            abs(r["lock_pct"] - r["true_pct"]) <= 0.5,
            abs(r["loop_pct"] - r["true_pct"]) <= 0.5 or (r["true_pct"] < 0.5 and r["loop_pct"] <= 0.5),
            max(r["lock_first_ms"], r["loop_first_ms"]) <= TOLERANCE_MS,
        ]
        bad += not all(checks)
        lock = f"{r['lock_pct']:.2f} %" if r["locked"] else f"refused ({r['lock_pct']:.1f} %)"
        loop = f"{r['loop_pct']:.2f} %" if not r["loop_why"] else "refused"
        lines.append(
            f"| {r['error'] * 100:+g} % | {METRE[r['metre']]} | {r['bpm']} | {r['played']:.1f} "
            f"| {r['bars_ms']:.1f} ms{_mark(checks[0])} | {r['read']:.1f} ({r['tempo_pct']:+.2f} %){_mark(checks[1])} "
            f"| {r['said']}{_mark(checks[2])} | {r['true_pct']:.2f} % | {lock}{_mark(checks[3])} | {loop}{_mark(checks[4])} "
            f"| {r['lock_first_ms']:.1f}, {r['loop_first_ms']:.1f} ms{_mark(checks[5])} |"
        )
    lines.append(
        f"\n{len(rows)} takes: furthest bar line {max(r['bars_ms'] for r in rows):.1f} ms (within {TOLERANCE_MS:g} ms: "
        f"{sum(r['bars_ms'] <= TOLERANCE_MS for r in rows)}); tempo within {TEMPO_PCT:g} %: "
        f"{sum(abs(r['tempo_pct']) <= TEMPO_PCT for r in rows)}; said steady: {sum(r['steady'] for r in rows)}; "
        f"every check held on {len(rows) - bad} of {len(rows)}."
    )
    return "\n".join(lines)
