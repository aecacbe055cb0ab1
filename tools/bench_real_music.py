"""The map on real music (``--real-music``): excerpts of real recordings no one here made, from Debian's packaged
game soundtracks (``real_music.json``: each one's package, file, licence, start and length, and what the field's
trackers hear in it, written by ``real_music_references.py`` in a bench venv of its own), read by a tracker
as the studio hears a song, and held to those references.

A tracker is any function ``(stereo, sr, beats_per_bar, bpm) -> (bar_lines, beats_per_bar, tempo_bpm_or_None)``
(``studio_map``: the studio's ``song_map.grid_of``), run not told and told the BPM (the references' tempo
rounded, as a musician types it). Per excerpt: the tempo and its error against the references' (the mean of
madmom's and essentia's where they agree within 2 %), an octave-class error (``octave_class``), the share of
bar lines on a beat madmom hears (``on_beat``, ±70 ms, the field's tolerance), the bars' steadiness
(``steadiness_ms``; the mean also over the excerpts whose references hear the same beats, ``beats_agree``),
the share of bar lines on a madmom downbeat (``on_beat`` against its downbeats) and the
tracker's CPU seconds a minute of audio. The audio is never committed: the packages are installed here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SET = Path(__file__).resolve().parent / "real_music.json"
RATE = 48000  # as the studio hears a song
TOLERANCE_S = 0.07  # a beat or downbeat heard: the field's F-measure window
SAME_PCT = 2.0  # a tempo within this of another is that tempo
STEADY_MS = 20.0  # a steady track's bars: 95th percentile within this of their median length
OCTAVES = {"1/2": 0.5, "2": 2.0, "1/3": 1 / 3, "3": 3.0, "2/3": 2 / 3, "3/2": 1.5}

Tracker = Callable[[np.ndarray, int, int | None, float | None], tuple[list[float], int | None, float | None]]


def studio_map(
    stereo: np.ndarray, sr: int, beats_per_bar: int | None, bpm: float | None
) -> tuple[list[float], int | None, float | None]:
    """The studio's map of a song: ``song_map.grid_of``'s bar lines, beats a bar and tempo as played."""
    import song_map

    lines, per_bar, tempo = song_map.grid_of(stereo, sr, beats_per_bar=beats_per_bar, bpm=bpm)
    return lines, per_bar, None if tempo is None else tempo.bpm


def error_pct(found: float | None, reference: float | None) -> float | None:
    """How far ``found`` lies from ``reference``, in percent of it (signed); None where either is missing."""
    if not found or not reference:
        return None
    return (found / reference - 1.0) * 100.0


def octave_class(found: float | None, reference: float | None) -> str | None:
    """The octave-class error a tempo makes: the name of the factor of ``OCTAVES`` (of the reference) it lies
    within ``SAME_PCT`` of, or None (right, or wrong in some other way)."""
    if not found or not reference:
        return None
    return next((name for name, f in OCTAVES.items() if abs(found / (reference * f) - 1.0) * 100.0 <= SAME_PCT), None)


def on_beat(lines: list[float], heard: list[float], tolerance: float = TOLERANCE_S) -> float | None:
    """The share of bar ``lines`` within ``tolerance`` of a time in ``heard`` (a reference's beats or
    downbeats); only lines within the span the reference heard count (a bar line before its first beat or
    after its last cannot be judged). None where no line can be."""
    if not heard:
        return None
    times = np.asarray(heard, dtype=np.float64)
    judged = [t for t in lines if times[0] - tolerance <= t <= times[-1] + tolerance]
    if not judged:
        return None
    near = np.abs(np.asarray(judged)[:, None] - times[None, :]).min(axis=1)
    return float(np.mean(near <= tolerance))


def steadiness_ms(lines: list[float]) -> float | None:
    """The 95th percentile of how far each bar's length lies from the median bar's, in ms; None under 3 bars."""
    lengths = np.diff(np.asarray(lines, dtype=np.float64))
    if lengths.size < 2:
        return None
    return float(np.percentile(np.abs(lengths - np.median(lengths)), 95) * 1000.0)


def beats_agree(excerpt: dict[str, Any]) -> bool:
    """Whether the references hear the same beats, not only the same tempo: at least half of essentia's beats
    on madmom's (``on_beat``). Where they lie half a beat apart (an off-beat bass, anticipated chords) which
    half is the beat is theirs to dispute, so the bar lines' mean is also said over the rest (``summary``);
    True where essentia's beats are not kept."""
    essentia = excerpt["references"]["essentia"].get("beats")
    shared = on_beat(essentia, excerpt["references"]["madmom"]["beats"]) if essentia else None
    return shared is None or shared >= 0.5


def reference_bpm(excerpt: dict[str, Any]) -> float:
    """The tempo the bench holds a tracker to: the references' agreed one, else madmom's (whose beats the
    bar lines are held to)."""
    return excerpt["reference_bpm"] or excerpt["references"]["madmom"]["bpm"]


def score(
    excerpt: dict[str, Any], lines: list[float], per_bar: int | None, bpm: float | None, cpu_s: float
) -> dict[str, Any]:
    """One tracker's reading of an excerpt held to its references."""
    madmom = excerpt["references"]["madmom"]
    reference = reference_bpm(excerpt)
    return {
        "id": excerpt["id"],
        "bpm": bpm,
        "beats_per_bar": per_bar,
        "error_pct": error_pct(bpm, reference),
        "octave": octave_class(bpm, reference),
        "on_beat": on_beat(lines, madmom["beats"]),
        "steadiness_ms": steadiness_ms(lines),
        "on_downbeat": on_beat(lines, madmom["downbeats"]),
        "cpu_s_per_minute": cpu_s * 60.0 / excerpt["seconds"],
    }


def excerpt_audio(excerpt: dict[str, Any]) -> np.ndarray:
    """The excerpt as the studio hears a song: decoded from ``start`` for ``seconds``, channels × samples,
    resampled to 48 kHz."""
    import soundfile as sf
    import soxr

    rate = sf.info(excerpt["path"]).samplerate
    data, _ = sf.read(
        excerpt["path"],
        start=int(excerpt["start"] * rate),
        frames=int(excerpt["seconds"] * rate),
        dtype="float32",
        always_2d=True,
    )
    return np.ascontiguousarray(soxr.resample(data, rate, RATE).T if rate != RATE else data.T)


def measure(excerpt: dict[str, Any], tracker: Tracker = studio_map, told: bool = False) -> dict[str, Any]:
    """One excerpt read by ``tracker``, not told or told the BPM (the reference's, rounded), held to its
    references; the tracker's CPU time is its own (``time.process_time``), not the decode's."""
    stereo = excerpt_audio(excerpt)
    bpm = float(round(reference_bpm(excerpt))) if told else None
    started = time.process_time()
    lines, per_bar, found = tracker(stereo, RATE, None, bpm)
    cpu = time.process_time() - started
    return score(excerpt, list(lines), per_bar, found, cpu) | {"told": bpm}


def stored(excerpt: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A reading kept in the set (BeatNet's) scored as a tracker's: its downbeats as bar lines."""
    reading = excerpt["references"].get(name)
    if not reading:
        return None
    row = score(excerpt, reading["downbeats"], reading.get("beats_per_bar"), reading["bpm"], 0.0)
    return row | {"cpu_s_per_minute": reading["cpu_s_per_minute"], "told": None}


def summary(rows: list[dict[str, Any]], excerpts: dict[str, dict[str, Any]]) -> str:
    """Over the excerpts whose references agree: tempo within 2 %, octave errors, mean on-beat share,
    steady bars on the steady tracks, mean downbeat agreement, median CPU s a minute."""
    agreed = [r for r in rows if excerpts[r["id"]]["agree"]]
    if not agreed:
        return "No excerpt whose references agree."
    within = sum(r["error_pct"] is not None and abs(r["error_pct"]) <= SAME_PCT for r in agreed)
    octaves = [f"{r['id']} ({r['octave']})" for r in agreed if r["octave"]]
    steady = [r for r in agreed if excerpts[r["id"]]["tags"]["steadiness"] == "steady"]
    held = sum(r["steadiness_ms"] is not None and r["steadiness_ms"] <= STEADY_MS for r in steady)

    def mean(key: str) -> float:
        values = [r[key] if r[key] is not None else 0.0 for r in agreed]
        return float(np.mean(values))

    cpu = float(np.median([r["cpu_s_per_minute"] for r in agreed]))
    unheard = [r["id"] for r in agreed if r["on_beat"] is None]
    same = [r for r in agreed if beats_agree(excerpts[r["id"]])]
    disputed = [r["id"] for r in agreed if r not in same]
    where = (
        f"{len(same)} whose references hear the same beats{' (not ' + ', '.join(disputed) + ')' if disputed else ''}"
    )

    def also(key: str) -> str:
        return f"{mean(key):.2f} (mean), {np.mean([r[key] or 0.0 for r in same]) if same else 0.0:.2f} on the {where}"

    return (
        f"Where the references agree ({len(agreed)} excerpts): tempo within {SAME_PCT:g} % on {within} of "
        f"{len(agreed)}; octave-class errors {len(octaves)}{': ' + ', '.join(octaves) if octaves else ''}; "
        f"no bar lines on {len(unheard)}{': ' + ', '.join(unheard) if unheard else ''} (counted as 0 below); "
        f"bar lines on a heard beat {also('on_beat')}; steady bars (p95 ≤ {STEADY_MS:g} ms) on "
        f"{held} of {len(steady)} steady tracks; downbeat agreement {also('on_downbeat')}; "
        f"{cpu:.2f} CPU s a minute of audio (median)."
    )


def _cell(value: float | None, form: str, unit: str = "") -> str:
    return "—" if value is None else format(value, form) + unit


def table(rows: list[dict[str, Any]], excerpts: dict[str, dict[str, Any]], title: str) -> str:
    """Rows as a Markdown table under ``title``, then ``summary``."""
    lines = [
        f"{title}:",
        "",
        "| excerpt | madmom | essentia | agree | told | BPM | error | octave | on a beat | bar p95 | on a downbeat | CPU s/min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        refs = excerpts[r["id"]]["references"]
        lines.append(
            f"| {r['id']} | {refs['madmom']['bpm']} | {refs['essentia']['bpm']} | "
            f"{'yes' if excerpts[r['id']]['agree'] else 'no'} | {_cell(r['told'], '.0f')} | {_cell(r['bpm'], '.1f')} | "
            f"{_cell(r['error_pct'], '+.1f', ' %')} | {r['octave'] or '—'} | {_cell(r['on_beat'], '.2f')} | "
            f"{_cell(r['steadiness_ms'], '.0f', ' ms')} | {_cell(r['on_downbeat'], '.2f')} | {r['cpu_s_per_minute']:.2f} |"
        )
    return "\n".join([*lines, "", summary(rows, excerpts)])


def load(path: Path = SET, only: list[str] | None = None) -> list[dict[str, Any]]:
    """The set's excerpts (those named in ``only``, where given), their packages installed."""
    excerpts = [e for e in json.loads(path.read_text())["excerpts"] if not only or e["id"] in only]
    if only and len(excerpts) != len(set(only)):
        raise SystemExit(f"No such excerpt in {path.name}: {sorted(set(only) - {e['id'] for e in excerpts})}")
    installed({e["package"] for e in excerpts})
    return excerpts


def installed(packages: set[str]) -> None:
    """Debian's packages of the set installed: apt-get installs those missing (saying so); a clear stop
    where it cannot."""
    missing = sorted(p for p in packages if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode)
    if not missing:
        return
    if not shutil.which("apt-get"):
        raise SystemExit(f"The real-music set needs Debian's packages {', '.join(missing)}; no apt-get here.")
    print(f"Installing Debian's {', '.join(missing)} (the set's recordings) with apt-get…", flush=True)
    done = subprocess.run(["apt-get", "install", "-y", *missing], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(
            f"apt-get could not install {', '.join(missing)} (as root, after `apt-get update`):\n{done.stderr[-800:]}"
        )


def run(only: list[str] | None = None, tracker: Tracker = studio_map, name: str = "The studio's map") -> str:
    """``--real-music``: every excerpt (or ``only``) read by ``tracker`` not told and told the BPM, and
    BeatNet's stored reading where the set has one: Markdown tables with their summaries."""
    excerpts = load(only=only)
    by_id = {e["id"]: e for e in excerpts}
    tracker(excerpt_audio(excerpts[0])[:, : 5 * RATE], RATE, None, None)  # first-call imports outside the CPU
    parts = []
    for told in (False, True):
        rows = []
        for e in excerpts:
            rows.append(measure(e, tracker, told))
            print(f"{e['id']} ({'told' if told else 'not told'}): {rows[-1]['bpm']}", flush=True)
        how = "told the BPM (the references' tempo, rounded)" if told else "not told"
        parts.append(table(rows, by_id, f"{name}, {how}"))
    beatnet = [r for e in excerpts if (r := stored(e, "beatnet"))]
    if beatnet:
        parts.append(table(beatnet, by_id, "BeatNet 1.1.3 (offline, DBN; its downbeats as bar lines)"))
    note = "Bar lines on a beat and on a downbeat: against madmom's beats and downbeats (±70 ms)."
    return "\n\n".join([note, *parts])
