"""What an uploaded song is: tempo, key, beats per bar, loudness and length, on the CPU.

librosa finds the beats and the pitch-class profile (chroma), pyloudnorm measures integrated
loudness (ITU-R BS.1770, LUFS). The key is the major or minor key whose Krumhansl–Kessler profile
correlates best with the song's average chroma; beats per bar compare how strongly the onsets
accent every 3rd against every 4th beat. No GPU time is spent: this runs when a song is uploaded.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import audio
import result_words
import tooltips as tips
import uploads

# Krumhansl & Kessler (1982) key profiles, tonic first.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# The studio's spelling of the twelve tonics (as in ``modes.KEYS``).
NOTES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
RATE = 22050  # analysis rate: enough for beats and chroma, a quarter of the work of 48 kHz


@dataclass
class Analysis:
    bpm: float | None  # None: no steady beat was found, so the tempo is left to the model
    key: str
    beats_per_bar: int | None  # None with the tempo: bars are counted in beats
    lufs: float | None
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def key_of(chroma: np.ndarray) -> str:
    """The best-fitting key ("A minor") for a 12-bin pitch-class profile."""
    best, name = -2.0, "C major"
    for tonic in range(12):
        for mode, profile in (("major", _MAJOR), ("minor", _MINOR)):
            r = float(np.corrcoef(np.roll(profile, tonic), chroma)[0, 1])
            if r > best:
                best, name = r, f"{NOTES[tonic]} {mode}"
    return name


def metre(onset: np.ndarray, beats: np.ndarray) -> int:
    """3 or 4: which grouping of beats the onset accents repeat in (4 when it cannot tell)."""
    if len(beats) < 12:
        return 4
    strength = onset[np.clip(beats, 0, len(onset) - 1)]
    strength = strength - strength.mean()

    def periodicity(n: int) -> float:
        usable = len(strength) // n * n
        folded = strength[:usable].reshape(-1, n)
        return float(folded.mean(axis=0).std())

    return 3 if periodicity(3) > 1.25 * periodicity(4) else 4


# How regular the onsets must be for a tempo to be believed: the onset envelope's autocorrelation at
# the beat period, as a share of its energy. Clicks and songs with a beat read 0.7–0.9; silence or noise
# read under 0.1 (a steady 440 Hz tone was "≈ 112.3 BPM" before this check).
BEAT_CONFIDENCE = 0.25
# A steady tone's envelope ripples by hundredths of a dB (the analysis frames against its period) as regularly
# as a beat (a 220 Hz tone: 0.96 at 112.3 BPM): an envelope whose RMS about its mean is under this (dB) holds
# nothing that rises like a beat. A beat's attacks rise by tens of dB (the stand-in band at 30 BPM: 2-3 dB RMS; the tone 0.02).
LEAST_ONSET_DB = 0.1
HOP = 512  # librosa's onset envelope: one value per 512 samples


def beat_confidence(onset: np.ndarray, bpm: float) -> float:
    """0–1: how much of the onset envelope repeats at the period of ``bpm`` (±1 frame, as the period
    falls between frames)."""
    if not bpm > 0 or len(onset) < 8:
        return 0.0
    wave = onset - onset.mean()
    energy = float(np.dot(wave, wave))
    if energy <= len(wave) * LEAST_ONSET_DB**2:
        return 0.0
    lag = 60.0 / bpm * RATE / HOP
    lags = [k for k in range(max(1, int(lag) - 1), int(lag) + 3) if k < len(wave)]
    return max((float(np.dot(wave[:-k], wave[k:])) / energy for k in lags), default=0.0)


# Analyses at once, held by the work itself: a request cancelled in the queue gives its place back
# while its thread still measures, so Gradio's own concurrency limit alone does not bound them.
_places = threading.BoundedSemaphore(uploads.decodes_at_once())


@contextlib.contextmanager
def place(wait_s: float = uploads.WAIT_S) -> Iterator[None]:
    """One of the analyses at once (``uploads.Busy`` after ``wait_s`` without one): every measurement of
    a song's audio (this room's, a take's map: ``song_map``) shares them."""
    if not _places.acquire(timeout=wait_s):
        raise uploads.Busy(uploads.BUSY)
    try:
        yield
    finally:
        _places.release()


# How many songs' measurements are kept, by file: *Describe* reads the measurement of the song its upload
# already measured, and Edit or Extend by the bar the map its upload already read, instead of a second pass.
KEPT = 32


class ByFile:
    """The last ``KEPT`` results of one measurement, by file (its path, size and mtime: a file written
    again is measured again; an upload Gradio named by its bytes, by its path and size)."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, int, int, Any], Any] = {}
        self._lock = threading.Lock()

    def get(self, path: str | Path, measure_it: Callable[[], Any], told: Any = None) -> Any:
        """The kept result for ``path`` (and what it was ``told``: a tempo typed), else ``measure_it()``'s, kept."""
        key = self._key(path, told)
        with self._lock:
            if key in self._found:
                return self._found[key]
        found = measure_it()
        with self._lock:
            while len(self._found) >= KEPT:
                self._found.pop(next(iter(self._found)))
            self._found[key] = found
        return found

    def kept(self, path: str | Path, told: Any = None) -> Any:
        """The kept result for ``path`` and ``told``, or None: nothing is measured (the door reads a file's
        header only, and what the studio measured of it already)."""
        try:
            key = self._key(path, told)
        except OSError:
            return None
        with self._lock:
            return self._found.get(key)

    @staticmethod
    def _key(path: str | Path, told: Any) -> tuple[str, int, int, Any]:
        stat, where = Path(path).stat(), Path(path).resolve()
        # Gradio keeps an upload in a folder named by the SHA-256 of its bytes: that path is that song however
        # often it is uploaded again (each upload writes it anew: an API caller's every call), so its time is not
        # part of what it is.
        named_by_bytes = re.fullmatch(r"[0-9a-f]{64}", where.parent.name) and uploads.in_upload_folder(where)
        return (str(where), stat.st_size, 0 if named_by_bytes else stat.st_mtime_ns, told)


_measured = ByFile()


def analyze(path: str | Path) -> Analysis:
    """Tempo, key, beats per bar, loudness and length of an upload (``audio.AudioError`` if unusable,
    ``uploads.Busy`` when the studio is measuring as many songs as it may)."""
    stereo = uploads.load(path)

    def measured() -> Analysis:
        with place():
            return measure(stereo)

    return _measured.get(path, measured)


# Tempo, key, metre and loudness are read from at most this much of the song, from its middle (past
# an intro): enough for a steady estimate, where the whole of a ten-minute song cost 30 s of CPU.
EXCERPT_SECONDS = 60.0


def measure(stereo: np.ndarray) -> Analysis:
    """``analyze`` for decoded 48 kHz stereo audio."""
    import librosa
    import pyloudnorm
    import soxr

    seconds = audio.seconds(stereo)
    span = int(EXCERPT_SECONDS * audio.SAMPLE_RATE)
    start = max(0, (stereo.shape[-1] - span) // 2)
    mono = soxr.resample(stereo[:, start : start + span].mean(axis=0), audio.SAMPLE_RATE, RATE)
    onset = librosa.onset.onset_strength(y=mono, sr=RATE)
    tempo, beats = librosa.beat.beat_track(onset_envelope=onset, sr=RATE)
    bpm = float(np.atleast_1d(tempo)[0])
    chroma = librosa.feature.chroma_cqt(y=mono, sr=RATE).mean(axis=1)
    try:
        lufs = float(pyloudnorm.Meter(audio.SAMPLE_RATE).integrated_loudness(stereo[:, start : start + span].T))
    except ValueError:  # shorter than one 400 ms gating block
        lufs = None
    if lufs is not None and not np.isfinite(lufs):
        lufs = None
    steady = beat_confidence(onset, bpm) >= BEAT_CONFIDENCE
    return Analysis(
        bpm=round(bpm, 1) if steady else None,
        key=key_of(chroma),
        beats_per_bar=metre(onset, beats) if steady else None,
        lufs=None if lufs is None else round(lufs, 1),
        seconds=round(seconds, 2),
    )


def describe(result: Analysis) -> str:
    """One line for under the upload."""
    minutes, secs = divmod(result.seconds, 60)
    loudness = f"{result.lufs:.1f} LUFS" if result.lufs is not None else "loudness n/a"
    if result.lufs is not None and result.seconds > EXCERPT_SECONDS:
        loudness += " (its middle minute)"
    length = f"{int(minutes)}:{secs:04.1f}"
    if result.bpm is None:
        return f"{length} · {result_words.NO_STEADY_BEAT} · {result.key} · {loudness}"
    metre = tips.METRE_NAMES.get(str(result.beats_per_bar), f"{result.beats_per_bar} beats per bar")
    return f"{length} · ≈ {result.bpm:g} BPM · {result.key} · {metre} · {loudness}"
