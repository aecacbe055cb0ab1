"""The stand-in band's real-record voice (``band.Band(record=NAME)``): a real excerpt no one here made
(``tests/data/NAME.ogg``, its licence beside it in ``NAME.md``) played at the band's beats instead of its
synthesized drums and tones, so the musical promises are tested on real music too.

The record's own beats and downbeats (``tests/data/NAME.json``: a field tracker's reading, checked against a
second) are its truth. ``played`` moves them onto the band's beats (``band.beat_times``: the tempo told, off by
its error, drifting and changing): song beat 0 is the record's first downbeat (or, for another seed, a later
one), and the record loops from its first downbeat to its last where the song is longer than it.

The move is a varispeed read of the record (a turntable's): its time piecewise linear between the beats, read
by linear interpolation. Each beat lands on its sample by construction, with no library the studio itself
uses (``warp``'s stretch) between the truth and the audio, and it costs milliseconds. The pitch moves with the
speed (a record of 100 BPM played at 116 sounds 16 % higher); the tests care about time, and the trackers
read onsets, not pitch.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
# The crossfade before each loop seam: the last bar's tail into the record's own lead-in to its first downbeat.
SEAM_S = 0.005


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


def played(name: str, beats: np.ndarray, n: int, seed: int, rate: int) -> np.ndarray:
    """The record ``name`` played ``n`` samples long with its beats on ``beats`` (seconds, from the song's first
    beat: the record's downbeat), from its ``seed``-th bar on (so each take of a call is its own): ``[2, n]``."""
    record = named(name, rate)
    span = record.last - record.first
    start = (seed % max(1, record.bars)) * record.beats_per_bar
    # The song's beats carried on past its end at its last gap, so the read runs to its last sample.
    gap = float(beats[-1] - beats[-2]) if len(beats) > 1 else 0.6
    more = int(np.ceil((n / rate - beats[-1]) / gap)) + 2
    at = np.concatenate([beats, beats[-1] + gap * np.arange(1, more + 1)])
    k = start + np.arange(at.size)
    repeats = int(k[-1] // span) + 2
    song, length = _unrolled(record, repeats)
    source = record.beats[record.first + k % span] + (k // span) * length
    # Before the first beat (a lead): the record's lead-in at the first beat's speed, silence before it.
    if at[0] > 0:
        speed = (source[1] - source[0]) / max(1e-9, at[1] - at[0])
        at, source = np.concatenate([[0.0], at]), np.concatenate([[source[0] - at[0] * speed], source])
    where = np.interp(np.arange(n) / rate, at, source) * rate
    index = np.arange(song.shape[-1])
    return np.stack([np.interp(where, index, channel, left=0.0, right=0.0) for channel in song]).astype(np.float32)
