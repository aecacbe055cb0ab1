"""A learned beat and downbeat tracker for the songs the map is not told: Beat This! ``small0`` (Foscarin,
Schlüter and Widmer, ISMIR 2024; MIT code and weights), as a ``torch.export`` program (``.pt2``, the network
as data: none of its authors' Python runs here) written by ``tools/export_beat_tracker.py`` and read from
the Hub cache alone (the Space's build preloads it; nothing is downloaded at run time).

Its front end, chunking and peak picking are the studio's own code written from the facts of
``beat_this.preprocessing`` and ``beat_this.inference`` (the package itself cannot be installed beside the
studio's torch: docs/performance.md, "Beat trackers compared"): 22.05 kHz mono, a magnitude STFT (1024, hop
441: 50 frames a second), 128 Slaney mel bands from 30 Hz to 11 kHz, log(1 + 1000 x); 1500-frame chunks whose
6-frame borders overlap, the earlier chunk's frames kept; a frame is a beat where its logit is above 0 and the
largest within ±3 frames (±60 ms), adjacent ones merged, each downbeat moved onto its nearest beat.

``torch.export.load`` unpickles the file's tensors with ``weights_only=False`` (torch's own warning: never load
one from an untrusted source), so the file is loaded only where its SHA-256 is the one pinned here (``SHA256``).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import beats
import hub
import messages

# Where the owners keep the exported network (docs/deployment.md): None until they publish it, so the map is
# the studio's own tracker's everywhere; its file's SHA-256, as ``tools/export_beat_tracker.py`` prints it.
REPO: str | None = None
FILE = "small0.pt2"
SHA256: str | None = None
RATE = 22050
N_FFT, HOP, BANDS, F_MIN, F_MAX = 1024, 441, 128, 30.0, 11000.0
FPS = RATE / HOP  # 50 frames a second
CHUNK, BORDER = 1500, 6  # the frames of a chunk, and each chunk's border the network does not trust
# The fewest frames the exported program takes (its shortest chunk; torch.export's guard for BeatThis): a
# chunk is as long as its part of the song, as the package runs it (a song under 30 s is one shorter chunk).
FEWEST = 33
PEAK_REACH = 3  # frames either side a beat's logit must be the largest of (±60 ms)


@dataclass(frozen=True)
class Heard:
    """What the network heard in a song: its beats and downbeats (seconds from the start, ascending)."""

    beats: np.ndarray
    downbeats: np.ndarray

    def read(self) -> tuple[float, int] | None:
        """Its tempo (``beats.fitted_bpm``: a least-squares line through its beats) and beats per bar
        (the median count of beats from one downbeat to the next); None where it heard under 4 beats or 2
        downbeats, or bars of under 2 or over 12 beats (a downbeat it did not hear)."""
        times, downs = np.asarray(self.beats, dtype=float), np.asarray(self.downbeats, dtype=float)
        if len(times) < 4 or len(downs) < 2:
            return None
        per_bar = int(np.median(np.diff(np.searchsorted(times, downs))))
        return (beats.fitted_bpm(times), per_bar) if 2 <= per_bar <= 12 else None


_state: dict[str, Any] = {"network": None, "why": None, "tried": False}
_lock = threading.Lock()


def logmel(mono: np.ndarray) -> Any:
    """Beat This!'s front end for ``mono`` at ``RATE``: (frames, 128), a torch tensor."""
    import librosa
    import torch

    signal = torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))
    window = torch.hann_window(N_FFT)
    spec = torch.stft(signal, N_FFT, HOP, window=window, normalized=True, return_complex=True).abs()
    bank = librosa.filters.mel(sr=RATE, n_fft=N_FFT, n_mels=BANDS, fmin=F_MIN, fmax=F_MAX, htk=False, norm=None)
    return torch.log1p(1000.0 * (torch.from_numpy(bank) @ spec).T)


def _file() -> Path:
    """The network's file in the Hub cache, checked against ``SHA256`` (``Absent``, its message, where it cannot
    be)."""
    if not REPO:
        raise Absent(messages.BEATS_NOT_SET_UP)
    where = hub.cached_file(REPO, FILE)
    if where is None:
        raise Absent(messages.BEATS_NOT_CACHED.format(repo=REPO, file=FILE))
    digest = hashlib.sha256(Path(where).read_bytes()).hexdigest()
    if digest != SHA256:
        raise Absent(messages.BEATS_NOT_PINNED.format(repo=REPO, file=FILE))
    return Path(where)


class Absent(Exception):
    """Why the network is not used (its message), the map then being the studio's own tracker's."""


def _built() -> Any:
    import torch

    path = _file()
    try:
        network = torch.export.load(str(path)).module()
        with torch.inference_mode():
            for frames in (CHUNK, FEWEST):
                out = network(torch.zeros(1, frames, BANDS))
                if tuple(out["beat"].shape) != (1, frames) or tuple(out["downbeat"].shape) != (1, frames):
                    raise ValueError("outputs of the wrong shape")
    except Exception as exc:  # a file torch cannot read, or a program of another shape: the map is the studio's
        raise Absent(messages.BEATS_UNREADABLE.format(file=FILE, why=type(exc).__name__)) from None
    return network


def _tried() -> None:
    """Read the network where no one has tried yet (``_lock`` held); its reason said once in the log where not."""
    if not _state["tried"]:
        try:
            _state["network"] = _built()
        except Absent as exc:
            _state["why"] = str(exc)
            print(f"Beat network: {exc}", flush=True)
        _state["tried"] = True


def load() -> Any:
    """The network, loaded once a process; ``Absent`` (its message, said once in the log) where it
    is not there or cannot be read."""
    with _lock:
        _tried()
        if _state["network"] is None:
            raise Absent(_state["why"])
        return _state["network"]


def ready() -> bool:
    """Whether the network can hear an upload now. False, without waiting, while another thread (start-up's
    warm-up) is still reading it: reading it costs seconds of CPU, and an upload then gets the studio's own
    tracker's map rather than holding one of the uploads' places until the read is done."""
    if not _lock.acquire(blocking=False):
        return False
    try:
        _tried()
        return _state["network"] is not None
    finally:
        _lock.release()


def why_absent() -> str | None:
    """Why the map is the studio's own (None where the network is loaded); loads it where not tried yet."""
    try:
        load()
    except Absent as exc:
        return str(exc)
    return None


def tried() -> bool:
    """Whether this process has looked for the network (loaded it, or knows why not)."""
    return bool(_state["tried"])


def forget() -> None:
    """Forget the loaded network (and why not), so the next use looks for it again."""
    with _lock:
        _state.update(network=None, why=None, tried=False)


def _starts(frames: int) -> list[int]:
    """Each chunk's first frame (negative: padded before the song), the last moved to end with the song."""
    starts = list(range(-BORDER, frames - BORDER, CHUNK - 2 * BORDER))
    if frames > CHUNK - 2 * BORDER:
        starts[-1] = frames - (CHUNK - BORDER)
    return starts


def dynamic_shapes() -> tuple[dict[int, Any]]:
    """The exported program's input shapes: one chunk of ``FEWEST`` to ``CHUNK`` frames (``torch.export``'s
    ``dynamic_shapes``, for ``tools/export_beat_tracker.py`` and the tests' stand-in)."""
    import torch

    return ({1: torch.export.Dim("frames", min=FEWEST, max=CHUNK)},)


def logits(mel: Any) -> tuple[np.ndarray, np.ndarray]:
    """The network's beat and downbeat logits for every frame of ``mel`` (frames, 128), chunk by chunk, each
    chunk's part of the song with its borders padded with silence (0) before the song and after it."""
    import torch

    network = load()
    frames = int(mel.shape[0])
    beat, down = np.full(frames, -1000.0, np.float32), np.full(frames, -1000.0, np.float32)
    with torch.inference_mode():
        for start in reversed(_starts(frames)):  # the earlier chunk's frames written last: kept
            part = mel[max(start, 0) : min(start + CHUNK, frames)]
            after = max(0, min(BORDER, start + CHUNK - frames), FEWEST - max(0, -start) - part.shape[0])
            chunk = torch.nn.functional.pad(part, (0, 0, max(0, -start), after))
            out = network(chunk[None])
            first, last = start + BORDER, min(start + CHUNK - BORDER, frames)  # a chunk's frame p is start + p
            beat[first:last] = out["beat"][0, BORDER : BORDER + last - first].float().numpy()
            down[first:last] = out["downbeat"][0, BORDER : BORDER + last - first].float().numpy()
    return beat, down


def _frames(logit: np.ndarray) -> np.ndarray:
    """The frames where ``logit`` peaks above 0 (the largest within ``PEAK_REACH``); peaks a frame apart are
    one, at their running mean (as Beat This!'s own post-processing merges them)."""
    from scipy.ndimage import maximum_filter1d

    top = maximum_filter1d(logit, 2 * PEAK_REACH + 1, mode="constant", cval=-np.inf)
    merged: list[float] = []
    count = 0
    for frame in np.flatnonzero((logit == top) & (logit > 0)):
        if merged and frame - merged[-1] <= 1:
            count += 1
            merged[-1] += (frame - merged[-1]) / count
        else:
            merged.append(float(frame))
            count = 1
    return np.array(merged)


def peaks(beat: np.ndarray, down: np.ndarray) -> Heard:
    """Beats and downbeats (seconds) from their logits, each downbeat on its nearest beat."""
    beats = _frames(beat) / FPS
    downs = _frames(down) / FPS
    if beats.size:
        downs = np.unique(beats[np.abs(beats[None, :] - downs[:, None]).argmin(axis=1)]) if downs.size else downs
    return Heard(beats, downs)


def heard(stereo: np.ndarray, rate: int) -> Heard:
    """The beats and downbeats of a song (``stereo``: channels × samples at ``rate``); ``Absent`` where the
    network is not there."""
    import soxr

    load()
    mono = np.asarray(stereo, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim > 1 else mono
    mono = soxr.resample(mono, rate, RATE) if rate != RATE else mono
    beat, down = logits(logmel(mono))
    if not (np.isfinite(beat).all() and np.isfinite(down).all()):  # a beat lost to a NaN would move the bars
        return Heard(np.array([]), np.array([]))
    return peaks(beat, down)
