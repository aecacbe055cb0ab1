"""A take's final latents: written beside it, read back for an Edit, Extend or Cover of it.

Upstream ACE-Step keeps each generated take's final DiT latents (``<take>.repaint_latents.npy``) and a
repaint of that take starts from them instead of encoding its waveform through the VAE again (PR #1177:
``inference.py``, ``handler/conditioning_target.py``): a VAE round trip is not the identity, so every
edit of a take would start from a blurred copy of what the model made, and each further edit would blur
it again; the encode costs GPU time too. Here every take keeps them (``write_all``, called by ``takes``
as it writes the take): float32 ``[frames, channels]`` as many frames as the take's audio covers, in
``.npy`` read back without pickle, bound to the take's audio file by the SHA-256 of its bytes in the
take's record. ``check`` gives them back only for that very file: a file that changed, or a take whose
latents are gone, goes through the VAE (``preparing.source_latents`` finds the take by name).
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import audio
import headers
import messages

SUFFIX = "-latents.npy"
# The XL VAE's latent width: what a second of a take's latents costs on disk (float32), for the budget.
CHANNELS = 64
BYTES_PER_SECOND = audio.LATENT_RATE * CHANNELS * 4
HEADER_BYTES = 128  # numpy's own header of a .npy file


def frames_for(samples: int) -> int:
    """The latent frames a source of ``samples`` is read as (``preparing.model_input`` pads it to them)."""
    return audio.good_frames(math.ceil(samples / audio.HOP))


def file_of(take: Path) -> Path:
    """Where the latents of the take ``take`` (its audio file) lie."""
    return take.with_name(take.stem + SUFFIX)


def write_all(made: Any, entries: list[dict[str, Any]], takes: Any, paths: list[Path], root: Path) -> None:
    """Each take's final latents (``made``, ``[takes, frames, channels]``) beside its audio file (``takes``:
    its audio), complete or absent, and in its record entry the file and the audio's SHA-256."""
    if made is None:  # a part added: its latents are the part's alone, not the take's
        return
    for path, entry, take, latents in zip(paths, entries, takes, made, strict=True):
        if latents is None:  # a take locked to the grid is not its latents' decode (``grid_lock``)
            continue
        file, partial = file_of(path), path.with_name(f".partial-{file_of(path).name}")
        kept = np.ascontiguousarray(latents[: frames_for(take.shape[-1])], dtype=np.float32)
        np.save(partial, kept, allow_pickle=False)
        os.replace(partial, file)
        entry["latents"] = {"file": file.relative_to(root).as_posix(), "audio_sha256": digest(path)}


# Digests by (real path, size, mtime): the admission check and the run each ask about the same song.
_digests: collections.OrderedDict[tuple, str] = collections.OrderedDict()
_digests_lock = threading.Lock()


def digest(path: Path | str) -> str:
    """The SHA-256 of a file's bytes (remembered while the file is unchanged)."""
    import hashlib

    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    with _digests_lock:
        if key in _digests:
            return _digests[key]
    with open(path, "rb") as f:
        found = hashlib.file_digest(f, "sha256").hexdigest()
    with _digests_lock:
        _digests[key] = found
        while len(_digests) > 256:
            _digests.popitem(last=False)
    return found


@dataclass(frozen=True)
class SourceLatents:
    """A source song's latents as its take kept them (``latents``: float32 ``[frames, channels]``, or None: the VAE reads
    the song), the seed its take was made with (None: not a take of the studio's), and why, as a message."""

    latents: np.ndarray | None
    seed: int | None
    why: str  # the record's ``source_latents`` and the run's log line

    @property
    def used(self) -> bool:
        return self.latents is not None


# The same message for an upload, a take's file changed in any way, and a take that kept none (a part added):
# what a visitor reads never tells whether a take of that name exists (``my_takes`` holds to the same).
UPLOAD = messages.LATENTS_UPLOAD
# A take's song moved later in the new take (an Extend's intro): the VAE reads it where it now lies.
MOVED = messages.LATENTS_MOVED


def _known(path: Path | str) -> str | None:
    """The digest of a file as it is now, where one was taken (nothing is read)."""
    with contextlib.suppress(OSError):
        stat = os.stat(path)
        with _digests_lock:
            return _digests.get((os.path.realpath(path), stat.st_size, stat.st_mtime_ns))
    return None


def same(a: Path | str, b: Path | str) -> bool:
    """Whether two files hold the same bytes; at the admission check (``headers``) the same size, unless their
    digests are known (the run compares their bytes)."""
    if headers.reading() and None in (_known(a), _known(b)):
        return os.path.getsize(a) == os.path.getsize(b)
    return digest(a) == digest(b)


def belongs(source: Path, take: Any) -> bool:
    """Whether ``source``'s bytes are those of ``take`` (``records.Take``: the take its own ``.json`` was
    written for; None: none), bound by its latents' digest, or a take that keeps none (a loop, a take locked to
    the grid) by its file's (``takes``); at the admission check (``headers``) taken on trust unless its digest is known (the
    run hashes it)."""
    if take is None or (take.latents is None and take.audio_sha256 is None):
        return False
    if headers.reading() and _known(source) is None:
        return os.path.isfile(source)
    return take.bound_to == digest(source)


def check(source: Path, take: Any, latents: Path | None, channels: int | None = None) -> SourceLatents:
    """The latents of ``take`` (``records.Take``: the take its own ``.json`` was written for), in the file
    ``latents`` it names, for the song ``source``: only where ``source``'s bytes are the take's as written and
    the file holds what the take's would (``read``: as many frames as the song, ``channels`` wide where the
    model's width is known); else why not."""
    if not belongs(source, take):
        return SourceLatents(None, None, UPLOAD)
    seed = take.seed
    if latents is None and take.latents is None:
        return SourceLatents(None, seed, messages.LATENTS_NONE_KEPT)
    if latents is None:
        return SourceLatents(None, seed, messages.LATENTS_GONE)
    try:
        frames = frames_for(audio.probe(source, "take").samples)  # an Edit's may be at its source's rate
        found = read(latents, frames, channels)
    except Misfit as exc:
        return SourceLatents(None, seed, messages.LATENTS_MISFIT.format(why=exc))
    except Exception as exc:  # any damage a parser meets (0 bytes, a cut file, a header that lies)
        return SourceLatents(None, seed, messages.LATENTS_UNREADABLE.format(kind=type(exc).__name__))
    found.setflags(write=False)  # shared with the run, as an upload's samples are (``uploads``)
    return SourceLatents(found, seed, messages.LATENTS_OF_TAKE.format(name=source.name))


class Misfit(ValueError):
    """A latents file that reads well but is not the take's (its message ends the record's reason)."""


NOT_THIS_MODELS = messages.LATENTS_NOT_THIS_MODELS


def misfit(have: int, width: int) -> str | None:
    """Why a take's latents ``have`` channels wide go through the VAE on a model ``width`` wide; None: they fit."""
    return None if have == width else messages.LATENTS_MISFIT.format(why=NOT_THIS_MODELS.format(have=have, width=width))


# Where the model's width is not known yet (the admission check before the build): the widest a take's may be.
MOST_CHANNELS = 4 * CHANNELS


def read(path: Path, frames: int, channels: int | None = None) -> np.ndarray:
    """The float32 ``[frames, channels]`` array in the ``.npy`` file ``path``, its header checked before
    a byte of data is read: a header that promises more than the take's length (or its file holds)
    is never followed; ``Misfit`` with a message where the file is not the take's, the parser's errors else."""
    from numpy.lib import format as npy

    with open(path, "rb") as f:
        version = npy.read_magic(f)
        reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = reader(f, max_header_size=HEADER_BYTES * 8)
        if dtype != np.dtype("<f4") or fortran or len(shape) != 2:
            raise Misfit(messages.LATENTS_NOT_A_TAKES)
        if shape[0] != frames:
            raise Misfit(messages.LATENTS_TOO_SHORT.format(have=shape[0], frames=frames))
        if channels is not None and shape[1] != channels:
            raise Misfit(NOT_THIS_MODELS.format(have=shape[1], width=channels))
        if not 0 < shape[1] <= MOST_CHANNELS:
            raise Misfit(messages.LATENTS_NOT_A_TAKES)
        size = frames * shape[1] * 4
        if os.fstat(f.fileno()).st_size != f.tell() + size:
            raise Misfit(messages.LATENTS_NOT_A_TAKES)
        found = np.frombuffer(f.read(size), dtype=np.float32).reshape(shape)
    if not np.isfinite(found).all():
        raise Misfit(messages.LATENTS_NOT_A_TAKES)
    return found
