"""The stand-in band's real-record voice (``band.Band(record=NAME)``): a real excerpt no one here made
(``tests/data/NAME.ogg``, its licence beside it in ``NAME.md``) played at the band's beats instead of its
synthesized drums and tones, so the musical promises are tested on real music too.

The record's own beats and downbeats (``tests/data/NAME.json``: a field tracker's reading, checked against a
second) are its truth. ``played`` moves them onto the band's beats (``band.beat_times``: the tempo told, off by
its error, drifting and changing): song beat 0 is the record's first downbeat (or, for another seed, a later
one), and the record loops from its first downbeat to its last where the song is longer than it.

The move keeps the record's pitch at every tempo: the record is first stretched, its pitch kept, to the speed
of each run of the band's beats, in steps of ``STEP`` (Signalsmith Stretch, ``python-stretch``: each stretched
record made once a process, ``stretched``), and that record is then read at the rest of each beat's speed
(under half a step: 0.09 semitone) by linear interpolation, its time piecewise linear between the beats (a
turntable's varispeed, which alone would move the pitch with the tempo: 4 semitones at 126 BPM). Each beat
lands on its sample by construction (the stretch keeps an attack where its speed puts it, within a
millisecond), with none of the studio's own code (``warp``) between the truth and the audio.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
# The crossfade before each loop seam: the last bar's tail into the record's own lead-in to its first downbeat;
# and before the beat where one run of beats' stretch meets the next's.
SEAM_S = 0.005
# The stretch's step: the record is stretched to each run of beats' speed to the nearest 1 %, the varispeed read
# does the rest (at most half a step: 0.5 %, 0.09 semitone).
STEP = 0.01


@dataclasses.dataclass(frozen=True)
class Record:
    """A record at ``rate``: its audio (``[2, n]`` float32), every beat (seconds), where its first and last
    downbeats are among them (the looped span: whole bars) and its own beats per bar."""

    audio: np.ndarray
    beats: np.ndarray
    first: int
    last: int
    beats_per_bar: int
    rate: int

    @property
    def bars(self) -> int:
        return (self.last - self.first) // self.beats_per_bar


@functools.lru_cache(maxsize=4)
def named(name: str, rate: int) -> Record:
    """The record ``tests/data/NAME.ogg`` at ``rate`` and its truth, read once a process."""
    import soundfile
    import soxr

    truth = json.loads((DATA / f"{name}.json").read_text())
    song, file_rate = soundfile.read(str(DATA / f"{name}.ogg"), dtype="float32", always_2d=True)
    if file_rate != rate:
        song = soxr.resample(song, file_rate, rate)
    stereo = np.ascontiguousarray(np.repeat(song.T, 2, axis=0)[:2] if song.shape[1] == 1 else song.T[:2])
    beats, downs = np.asarray(truth["beats"], dtype=float), np.asarray(truth["downbeats"], dtype=float)
    first, last = (int(np.abs(beats - d).argmin()) for d in (downs[0], downs[-1]))
    return Record(stereo.astype(np.float32), beats, first, last, int(truth["beats_per_bar"]), rate)


def _unrolled(record: Record, repeats: int) -> tuple[np.ndarray, float]:
    """The record looped: its lead-in, ``repeats`` times its span from the first downbeat to the last (each seam
    a short crossfade into the record's own lead-in, so each repeat's downbeat is its own attack), its tail; and
    the span's length in seconds (the span in samples, so every repeat's beats fall on the same samples)."""
    rate, song = record.rate, record.audio
    a, b = (int(round(record.beats[i] * rate)) for i in (record.first, record.last))
    out = np.concatenate([song[:, :a], np.tile(song[:, a:b], (1, repeats)), song[:, b:]], axis=-1)
    join = min(a, max(1, int(SEAM_S * rate)))
    fade = np.linspace(0.0, 1.0, join, dtype=np.float32)
    for repeat in range(1, repeats):
        seam = a + repeat * (b - a)
        out[:, seam - join : seam] = song[:, b - join : b] * (1.0 - fade) + song[:, a - join : a] * fade
    return out, (b - a) / rate


@functools.lru_cache(maxsize=32)
def stretched(name: str, rate: int, step: int) -> Record:
    """The record ``name`` at ``rate`` played ``(1 + STEP) ** step`` times as fast, its pitch kept, and its beats
    where they now fall."""
    record = named(name, rate)
    if step == 0:
        return record
    import python_stretch

    speed = (1.0 + STEP) ** step
    one = python_stretch.Signalsmith.Stretch()
    one.preset(record.audio.shape[0], float(rate))
    one.setTimeFactor(speed)  # the input's seconds a second of output
    audio = np.asarray(one.process(np.ascontiguousarray(record.audio)), dtype=np.float32)
    return dataclasses.replace(record, audio=audio, beats=record.beats / speed)


def played(name: str, beats: np.ndarray, n: int, seed: int, rate: int) -> np.ndarray:
    """The record ``name`` played ``n`` samples long with its beats on ``beats`` (seconds, from the song's first
    beat: the record's downbeat), from its ``seed``-th bar on (so each take of a call is its own), its pitch
    kept at every tempo: ``[2, n]``."""
    record = named(name, rate)
    span = record.last - record.first
    start = (seed % max(1, record.bars)) * record.beats_per_bar
    # The song's beats carried on past its end at its last gap, so the read runs to its last sample.
    gap = float(beats[-1] - beats[-2]) if len(beats) > 1 else 0.6
    more = int(np.ceil((n / rate - beats[-1]) / gap)) + 2
    at = np.concatenate([beats, beats[-1] + gap * np.arange(1, more + 1)])
    k = start + np.arange(at.size)
    repeats = int(k[-1] // span) + 2
    # Which stretch each beat's span is read from: its speed (the record's seconds a second of the song), to STEP.
    looped = record.beats[record.last] - record.beats[record.first]
    speeds = np.diff(record.beats[record.first + k % span] + (k // span) * looped) / np.diff(at)
    steps = np.round(np.log(speeds) / np.log1p(STEP)).astype(int)
    steps = np.append(steps, steps[-1])
    t = np.arange(n) / rate
    beat_of = steps[np.clip(np.searchsorted(at, t, side="right") - 1, 0, at.size - 1)]
    join = max(1, int(SEAM_S * rate))
    out = np.zeros((2, n), dtype=np.float32)
    for step in np.unique(beat_of):
        out += _weight(beat_of == step, join) * _read(stretched(name, rate, int(step)), at, k, repeats, t)
    return out


def _weight(inside: np.ndarray, join: int) -> np.ndarray:
    """1 where ``inside``, faded in over the ``join`` samples before each of its runs starts and out over the
    ``join`` before each ends: where one run meets the next, their crossfade ends on that beat."""
    weight = inside.astype(np.float32)
    ramp = np.linspace(0.0, 1.0, join, endpoint=False, dtype=np.float32)
    for edge in np.flatnonzero(np.diff(inside.astype(np.int8))) + 1:
        a = max(0, edge - join)
        up = ramp[join - (edge - a) :]
        weight[a:edge] = up if inside[edge] else 1.0 - up
    return weight


def _read(record: Record, at: np.ndarray, k: np.ndarray, repeats: int, t: np.ndarray) -> np.ndarray:
    """``record`` looped (``_unrolled``) and read at the song's times ``t`` with its beat ``k[i]`` (counted from its
    first downbeat, on through its loops) on the song's ``at[i]``: a varispeed read, linear between the beats."""
    rate, span = record.rate, record.last - record.first
    song, length = _unrolled(record, repeats)
    source = record.beats[record.first + k % span] + (k // span) * length
    # Before the first beat (a lead): the record's lead-in at the first beat's speed, silence before it.
    if at[0] > 0:
        speed = (source[1] - source[0]) / max(1e-9, at[1] - at[0])
        at, source = np.concatenate([[0.0], at]), np.concatenate([[source[0] - at[0] * speed], source])
    where = np.interp(t, at, source) * rate
    index = np.arange(song.shape[-1])
    return np.stack([np.interp(where, index, channel, left=0.0, right=0.0) for channel in song]).astype(np.float32)
