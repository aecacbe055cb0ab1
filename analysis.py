"""What an uploaded song is: tempo, key, beats per bar, loudness and length, on the CPU.

``beats`` finds the beats and the tempo, librosa the pitch-class profile (chroma), pyloudnorm measures integrated
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
import beat_network
import beats
import messages
import tooltips as tips
import uploads

# Krumhansl & Kessler (1982) key profiles, tonic first.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# The studio's spelling of the twelve tonics (as in ``modes.KEYS``).
NOTES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
RATE = beats.RATE  # analysis rate: enough for beats and chroma, a quarter of the work of 48 kHz


@dataclass
class Analysis:
    bpm: float | None  # None: no steady beat was found, so the tempo is left to the model
    key: str
    beats_per_bar: int | None  # None with the tempo: bars are counted in beats
    lufs: float | None
    seconds: float
    felt_as: float | None = None  # the other reading where the music allows two (a half-time feel)

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


# Analyses at once, held by the work itself: a request cancelled in the queue gives its place back
# while its thread still measures, so Gradio's own concurrency limit alone does not bound them.
_places = threading.BoundedSemaphore(uploads.decodes_at_once())


@contextlib.contextmanager
def place(wait_s: float = uploads.WAIT_S) -> Iterator[None]:
    """One of the analyses at once (``uploads.Busy`` after ``wait_s`` without one): every measurement of
    a song's audio (this module's, a take's map: ``song_map``) shares them."""
    if not _places.acquire(timeout=wait_s):
        raise uploads.Busy(uploads.BUSY)
    try:
        yield
    finally:
        _places.release()


# How many songs' measurements are kept, by file: *Describe* reads the measurement of the song its upload
# already measured, and Edit or Extend by the bar the map its upload already read, instead of measuring it again.
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
        """The kept result for ``path`` and ``told``, or None: nothing is measured (the admission check reads a file's
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
# What the learned beat tracker heard in an upload, by file alone: the tempo a musician types is resolved on it
# (``song_map.heard_grid``), so typing one never pays the network again.
_networked = ByFile()


def learned(path: str | Path, stereo: np.ndarray | None = None) -> beat_network.Heard | None:
    """The learned tracker's beats and downbeats of an upload (``stereo`` where decoded already), kept by file;
    None where the network is absent or still being read (``beat_network.ready``), or failed on this file (said
    once in the log, kept: the map is then the studio's own, and the next request does not run it again). The
    caller holds one of the ``place``s."""
    if not beat_network.ready():
        return None

    def heard() -> beat_network.Heard | None:
        try:
            return beat_network.heard(uploads.load(path) if stereo is None else stereo, audio.SAMPLE_RATE)
        except Exception as exc:  # the network failing on one song must not cost the song its map
            print(messages.BEATS_FAILED.format(name=Path(path).name, why=type(exc).__name__), flush=True)
            return None

    return _networked.get(path, heard)


def analyze(path: str | Path) -> Analysis:
    """Tempo, key, beats per bar, loudness and length of an upload (``audio.AudioError`` if unusable,
    ``uploads.Busy`` when the studio is measuring as many songs as it may); its tempo and metre the learned
    tracker's where it is present (``heard``)."""
    stereo = uploads.load(path)

    def measured() -> Analysis:
        with place():
            return measure(stereo, learned(path, stereo))

    return _measured.get(path, measured)


# Tempo, key, metre and loudness are read from at most this much of the song, from its middle (past
# an intro): enough for a steady estimate, where the whole of a ten-minute song cost 30 s of CPU.
EXCERPT_SECONDS = 60.0


def measure(stereo: np.ndarray, heard: beat_network.Heard | None = None) -> Analysis:
    """``analyze`` for decoded 48 kHz stereo audio (its tempo and metre the learned tracker's where it ``heard``
    enough of a beat: ``beat_network.Heard.read``)."""
    import pyloudnorm
    import soxr

    seconds = audio.seconds(stereo)
    span = int(EXCERPT_SECONDS * audio.SAMPLE_RATE)
    start = max(0, (stereo.shape[-1] - span) // 2)
    mono = soxr.resample(stereo[:, start : start + span].mean(axis=0), audio.SAMPLE_RATE, RATE)
    reading = None if heard is None else heard.read()
    found = beats.track(mono) if reading is None else None
    chroma = key_chroma(mono)
    try:
        lufs = float(pyloudnorm.Meter(audio.SAMPLE_RATE).integrated_loudness(stereo[:, start : start + span].T))
    except ValueError:  # shorter than one 400 ms gating block
        lufs = None
    if lufs is not None and not np.isfinite(lufs):
        lufs = None
    if reading is not None:  # the learned tracker's tempo and metre, over the whole song
        bpm, per_bar, felt_as = reading[0], reading[1], None
    elif found.heard:
        bpm, per_bar = found.bpm, beats.metre(beats.accents(mono, found.times))
        felt_as = round(found.felt_as, 1) if found.felt_as else None
    else:
        bpm = per_bar = felt_as = None
    return Analysis(
        bpm=bpm,
        key=key_of(chroma),
        beats_per_bar=per_bar,
        lufs=None if lufs is None else round(lufs, 1),
        seconds=round(seconds, 2),
        felt_as=felt_as,
    )


# The key is read from the song's harmonic part at half the analysis rate (its pitch classes up to 4 kHz):
# a drum's hits spread over every pitch class and a groove's weigh as much as its chords. librosa's HPSS
# (median filters along time and along frequency, Fitzgerald 2010) keeps what holds its pitch. The band's real
# record (``tools/band_record.py``) at 80-126 BPM read Ab minor at 80-110 and C minor at 120-126 from the whole
# signal (its own loop: Ab minor by 0.025 of correlation over C minor), Ab minor at every one of them from its
# harmonic part (by 0.05-0.38); 0.7 CPU s per 30 s of song where the whole signal's took 0.2 (at the analysis
# rate the harmonic part's took 1.6). From 128 BPM the band's stretch (1.28 times as fast and more) blurs the
# record's harmony: B minor, C minor or Ab minor within 0.03 of each other there, read either way.
KEY_RATE = RATE // 2
KEY_FFT, KEY_HOP = 1024, 256


def key_chroma(mono: np.ndarray) -> np.ndarray:
    """The 12-bin pitch-class profile (C first) of ``mono`` (at ``RATE``) the key is read from: the mean chroma
    (constant-Q, librosa) of its harmonic part at ``KEY_RATE``."""
    import librosa
    import soxr

    low = soxr.resample(mono, RATE, KEY_RATE)
    harmonic = librosa.effects.harmonic(low, n_fft=KEY_FFT, hop_length=KEY_HOP)
    return librosa.feature.chroma_cqt(y=harmonic, sr=KEY_RATE, hop_length=KEY_HOP).mean(axis=1)


def describe(result: Analysis, tempo: bool = True) -> str:
    """One line for under the upload; without its tempo and metre (``tempo`` False) where the song's map says
    them after it (``edit_bars.map_line``: one line, one tempo, the one its bars follow)."""
    minutes, secs = divmod(result.seconds, 60)
    loudness = f"{result.lufs:.1f} LUFS" if result.lufs is not None else "loudness n/a"
    if result.lufs is not None and result.seconds > EXCERPT_SECONDS:
        loudness += " (its middle minute)"
    length = f"{int(minutes)}:{secs:04.1f}"
    if not tempo:
        return f"{length} · {result.key} · {loudness}"
    if result.bpm is None:
        return f"{length} · {messages.NO_STEADY_BEAT} · {result.key} · {loudness}"
    metre = tips.METRE_NAMES.get(str(result.beats_per_bar), f"{result.beats_per_bar} beats per bar")
    tempo = f"≈ {result.bpm:g} BPM"
    if result.felt_as:
        tempo = messages.FELT_AS.format(tempo=tempo, felt=round(result.felt_as))
    return f"{length} · {tempo} · {result.key} · {metre} · {loudness}"
