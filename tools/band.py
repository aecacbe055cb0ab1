"""The stand-in band: music with a beat at the pipeline's call boundary, for the tests and the bench (a test
switch, never on the page). The tiny random models make noise, so a musical promise (in time, on the bar, a
loop exact in music) is tested on this band instead: a kick, a snare, closed hats, a bass line and a pad at the
tempo and metre the model is told, played with a chosen error (asked 120, played 117.6), a drift (the tempo
from 1 - drift to 1 + drift times its own over the song), tempo changes and a half-time feel. In its
real-record voice (``Band(record="real_groove")``: ``band_record``) a real excerpt is played at those beats.

``play`` is one performance and its truth (every beat and bar line played). ``render`` is what the band
returns for one model call (``music_request.Call``): a new song at the call's tempo, or, for a repaint (Edit,
Extend, a loop's seam), what it hears where it hears music and its own performance where it hears silence
(Extend's padding), so an Extend of a take it played carries its grid on. ``installed`` puts it behind
``backend.Backend.run`` (the real run still runs: every code path is the studio's; only the audio is the
band's), as ``tests/conftest.py``'s ``band`` fixture and the ZeroGPU harness's ``HARNESS_BAND`` do, and as
``python tools/band.py`` does for a person trying the studio on the tiny models (``main``; README).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

RATE = 48000
PEAK = 0.89  # about -1 dBFS, as the pipeline's own output
# The bass's roots, a bar each (A, D, B, G), and the pad's chords over them: pitch classes change with the bar.
ROOTS = (55.0, 73.42, 61.74, 49.0)
# Where a repaint's source counts as silence (Extend's padding): RMS over 20 ms windows under this.
SILENT_RMS = 1e-4
JOIN_S = 0.005


@dataclasses.dataclass(frozen=True)
class Band:
    """How the band plays: ``error`` off the tempo told (-0.02: asked 120, played 117.6), ``drift`` (its tempo
    from 1 - drift to 1 + drift times its own, start to end), ``changes`` ((second, factor): from that second
    the tempo told times ``factor``), ``half_time`` (kick on 1, snare on 3 only: a groove that feels half as
    fast on the same beats), ``lead`` (seconds before the first downbeat), ``tone`` (a steady sine at this pitch,
    Hz, in place of the band: a take with no beat at all), ``seed`` and ``record`` (a real excerpt's name in
    ``tests/data``, played at the band's beats in place of its drums and tones)."""

    error: float = 0.0
    drift: float = 0.0
    changes: tuple[tuple[float, float], ...] = ()
    half_time: bool = False
    lead: float = 0.0
    tone: float = 0.0
    seed: int = 0
    record: str | None = None

    @classmethod
    def from_json(cls, text: str) -> Band:
        fields = json.loads(text)
        fields["changes"] = tuple(tuple(c) for c in fields.get("changes", ()))
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class Performance:
    """What the band played: the audio (``[2, n]`` float32), every beat and bar line (seconds), the tempo it
    was told, the mean tempo it played (first beat to last) and its beats per bar."""

    audio: np.ndarray
    beats: np.ndarray
    bars: np.ndarray
    bpm: float
    played_bpm: float
    beats_per_bar: int


def beat_times(bpm: float, seconds: float, band: Band) -> np.ndarray:
    """Every beat from ``band.lead`` to ``seconds``: the tempo curve (error, drift, changes) integrated."""
    step = 0.001
    t = np.arange(0.0, seconds + 1.0, step)
    tempo = bpm * (1 + band.error) * (1 - band.drift + 2 * band.drift * np.clip(t / max(seconds, 1e-9), 0, 1))
    for at, factor in sorted(band.changes):
        tempo = np.where(t >= at, bpm * factor * (1 + band.error), tempo)
    beats_done = np.concatenate([[0.0], np.cumsum(tempo[:-1] / 60.0 * step)])
    counts = np.arange(0, int(beats_done[-1]) + 1)
    times = band.lead + np.interp(counts, beats_done, t)
    return times[times < seconds]


def _sounds(rng: np.random.Generator, rate: int) -> dict[str, np.ndarray]:
    k = np.arange(int(0.25 * rate))
    kick = np.sin(2 * np.pi * (50 + 90 * np.exp(-k / (0.015 * rate))) * k / rate) * np.exp(-k / (0.09 * rate))
    snare = rng.normal(0, 1, k.size) * np.exp(-k / (0.045 * rate)) * 0.55
    snare += 0.3 * np.sin(2 * np.pi * 190 * k / rate) * np.exp(-k / (0.03 * rate))
    h = np.arange(int(0.03 * rate))
    hat = np.diff(rng.normal(0, 1, h.size), prepend=0.0) * np.exp(-h / (0.006 * rate)) * 0.12
    return {"kick": kick, "snare": snare, "hat": hat}


def _add(song: np.ndarray, at: float, sound: np.ndarray, rate: int, gain: float = 1.0) -> None:
    a = int(round(at * rate))
    if 0 <= a < song.size:
        song[a : a + sound.size] += gain * sound[: song.size - a]


def _drums(song: np.ndarray, beats: np.ndarray, per_bar: int, band: Band, sounds: dict, rate: int) -> None:
    """Kick on the downbeat (softer mid-bar in 4/4, on 4 in 6/8), snare on the backbeats, hats on eighths. In
    half time the kick on 1 and the snare on 3 alone, and the hats softer on the beats without the eighths
    between: the backbeat once a bar, a groove felt at half the tempo on the same beats."""
    if half := band.half_time:
        kicks, snares = {0}, {per_bar // 2}
    else:
        kicks = {0, per_bar // 2} if per_bar in (4, 6) else {0}
        snares = {1, 3} if per_bar == 4 else {3} if per_bar == 6 else set(range(1, per_bar))
    for i, at in enumerate(beats):
        beat = i % per_bar
        if beat in kicks:
            _add(song, at, sounds["kick"], rate, 1.0 if beat == 0 else 0.7)
        if beat in snares:
            _add(song, at, sounds["snare"], rate, 0.9 if half else 0.8)
        _add(song, at, sounds["hat"], rate, 0.5 if half else 1.0)
        if half:
            continue
        after = beats[i + 1] if i + 1 < len(beats) else at + (at - beats[i - 1] if i else 0.5)
        _add(song, (at + after) / 2, sounds["hat"], rate, 0.6)


def _tones(song: np.ndarray, bars: np.ndarray, seconds: float, rate: int) -> None:
    """A bass note and a soft triad a bar, a new root each bar."""
    ends = np.append(bars[1:], seconds)
    for i, (a, b) in enumerate(zip(bars, ends, strict=True)):
        root = ROOTS[i % len(ROOTS)]
        n = np.arange(int((b - a) * rate))
        env = np.minimum(1.0, n / (0.01 * rate)) * np.exp(-n / (1.5 * rate))
        note = 0.35 * np.sin(2 * np.pi * root * n / rate) * env
        pad = sum(np.sin(2 * np.pi * root * 4 * r * n / rate) for r in (1.0, 1.26, 1.5)) * 0.03 * env
        _add(song, a, note + pad, rate)


def play(bpm: float, beats_per_bar: int, seconds: float, band: Band = Band(), rate: int = RATE) -> Performance:
    """The band's performance, ``seconds`` long at ``bpm`` told, and its truth: the same ``band`` (its seed
    too) plays the same audio every time."""
    rng = np.random.default_rng(band.seed)
    n = int(round(seconds * rate))
    if band.tone:  # no floor under it: a pure tone's envelope is as steady as a take's can be
        song = PEAK * np.sin(2 * np.pi * band.tone * np.arange(n) / rate)
        none = np.zeros(0)
        return Performance(np.stack([song, song]).astype(np.float32), none, none, float(bpm), float(bpm), beats_per_bar)
    song = rng.normal(0.0, 0.001, n + rate)  # a floor under the silence, and space for the last hit to ring
    beats = beat_times(bpm, seconds, band)
    bars = beats[::beats_per_bar]
    if band.record:
        import band_record

        stereo = band_record.played(band.record, beats, n, band.seed, rate)
        stereo = (stereo * (PEAK / max(1e-9, float(np.abs(stereo).max()))) + song[:n]).astype(np.float32)
    else:
        _drums(song, beats, beats_per_bar, band, _sounds(rng, rate), rate)
        _tones(song, bars, seconds, rate)
        song = song[:n]
        song *= PEAK / max(1e-9, float(np.abs(song).max()))
        stereo = np.stack([song, song]).astype(np.float32)
    played = 60.0 * (len(beats) - 1) / (beats[-1] - beats[0]) if len(beats) > 1 else float(bpm)
    return Performance(stereo, beats, bars, float(bpm), float(played), beats_per_bar)


def _metre(call: Any) -> int:
    text = str(getattr(call, "timesignature", None) or "4").split("/")[0]
    return int(text) if text.isdigit() and 2 <= int(text) <= 12 else 4


def _repainted(call: Any, n: int, performance: np.ndarray) -> np.ndarray:
    """A repaint: the source where it sounds, the band's own performance (``performance``) where it is silent inside
    the region, switched with 5 ms crossfades."""
    source = np.zeros((2, n), dtype=np.float32)
    given = np.asarray(call.src_audio, dtype=np.float32)[:, :n]
    source[:, : given.shape[-1]] = given
    a = int(round(float(call.repainting_start or 0.0) * RATE))
    end = call.repainting_end
    b = n if end is None or end < 0 else min(n, int(round(float(end) * RATE)))
    window = int(0.02 * RATE)
    frames = source[:, : n // window * window].reshape(2, -1, window)
    silent = np.repeat(np.sqrt((frames**2).mean(axis=(0, 2))) < SILENT_RMS, window)
    mask = np.zeros(n, dtype=np.float32)
    mask[: silent.size] = silent
    mask[:a], mask[b:] = 0.0, 0.0
    join = int(JOIN_S * RATE)
    # Smoothed, the song's own ends held (a plain convolution would fade the band out at the song's end).
    mask = np.convolve(np.pad(mask, (join // 2, join - 1 - join // 2), mode="edge"), np.ones(join) / join, "valid")
    mask = mask.astype(np.float32)
    return source * (1 - mask) + performance * mask


def render(call: Any, made: np.ndarray, band: Band) -> np.ndarray:
    """The band's audio for one model call in the shape the pipeline made (``[takes, 2, n]``)."""
    task = getattr(call, "task_type", "text2music")
    if task not in ("text2music", "cover", "repaint"):
        return made
    takes, _, n = made.shape
    out = np.empty_like(made, dtype=np.float32)
    for i in range(takes):
        played = play(float(call.bpm or 120), _metre(call), n / RATE, dataclasses.replace(band, seed=band.seed + i))
        out[i] = played.audio if task != "repaint" or call.src_audio is None else _repainted(call, n, played.audio)
    return out


def install(read: Callable[[], Band | None]) -> tuple[Callable[..., dict[str, Any]], list[tuple[Any, bool]]]:
    """``backend.Backend.run`` with the band's audio in place of the model's wherever ``read()`` gives a band
    (read at each call: None lets the model's through), for good (a harness's studio); returns the real run
    and the list of every call seen (its render, whether the band played)."""
    import backend

    real, seen = backend.Backend.run, []

    def run(self: Any, render_: Any, progress: Any = None, run_id: Any = None) -> dict[str, Any]:
        out = real(self, render_, progress=progress, run_id=run_id)
        playing = read()
        if playing is not None:
            out = {**out, "audio": render(render_.pipeline, np.asarray(out["audio"]), playing)}
        seen.append((render_, playing is not None))
        return out

    backend.Backend.run = run
    return real, seen


@contextlib.contextmanager
def installed(read: Callable[[], Band | None]) -> Iterator[list[tuple[Any, bool]]]:
    """``install`` while in it (a test's own process); yields every call seen."""
    import backend

    real, seen = install(read)
    try:
        yield seen
    finally:
        backend.Backend.run = real


# What ``python tools/band.py`` plays: a real groove 2 % slow and drifting, as a band might, so a take's tempo
# line says how far it is off and *Lock to the grid* has bars to move (the tests' ``BAND_SLOW``).
SERVED = Band(error=-0.02, drift=0.01, record="real_groove")


def main(argv: list[str] | None = None) -> None:
    """``python tools/band.py``: the studio as ``python app.py`` serves it (its settings from the environment),
    with the stand-in band behind the model's call. The tiny random models make noise, with no beat to lock;
    on the band every take has one, and *Lock to the grid* can be heard at work. Never with a real model: the
    music would be the band's. ``python tools/random_models.py DIR --band`` prints the whole command."""
    import argparse

    import studio_root

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--drums", action="store_true", help="the band's own drums and tones, not the real groove")
    args = parser.parse_args(argv)
    studio_root.reach()
    playing = dataclasses.replace(SERVED, record=None) if args.drums else SERVED
    install(lambda: playing)
    voice = "its own drums and tones" if playing.record is None else f"the record {playing.record}"
    print(f"The stand-in band plays every take ({voice}, 2 % slow, drifting), not the model", flush=True)
    import app

    app.main()


def from_file(path: Path) -> Callable[[], Band | None]:
    """The band a file names, read at each call (no file, or an empty one: none): the ZeroGPU harness's switch."""

    def read() -> Band | None:
        try:
            text = path.read_text().strip()
        except OSError:
            return None
        return Band.from_json(text) if text else None

    return read


if __name__ == "__main__":
    main()
