"""An upload's true length where its header cannot say it, found by reading the audio.

libsndfile takes a file's length from its header and stops reading there, so three real files were
read wrong: a FLAC whose header says "length unknown" (what stream encoders write; libsndfile then
reports billions of minutes, as it does for chained Ogg Opus), an MP3 with no Xing/Info frame count
(its length an estimate from the first frame's bitrate: a 40 s song cut to 26.5 s without a word), and
a WAV whose data size is 0 or too small (a recorder stopped before it wrote the sizes: "empty").

``source`` says how a file is read and whether its header's length holds; ``length`` reads the ones
that do not (once a file: the answer is kept), and ``opened`` is how the decode reads them too, so the
length the admission check reads and the decode's are the same count. Nothing here decides what the studio takes:
``audio.probe`` does, with a message a musician can read.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import shutil
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# The most frames any format packs into one byte of file: FLAC's largest block (65,535 frames) takes
# at least 12 bytes (frame header, a one-byte constant subframe, CRC), an Ogg page of silent Opus far
# more. A header that claims more frames than this for its file's size cannot be true.
MOST_FRAMES_PER_BYTE = 8192
# Pages an Ogg file of ten minutes may take: 200 a second (FLAC in Ogg at 192 kHz in blocks of 1,152
# frames makes 167; Vorbis and Opus encoders make 1 to 50), and its opening pages (a cover image).
MOST_OGG_PAGES = 200 * 600 + 1024
# Bytes after an Ogg file's last page the studio reads past (a tagger's ID3v1 or APE tag): beyond them
# the rest is not audio, and libsndfile's hunt through it costs CPU in proportion.
OGG_TAIL = 64 * 1024
# How far into a WAV its chunks are looked for, and how far into an MP3's first frame its Xing/Info tag.
_MOST_CHUNKS = 64
_TAG_WINDOW = 48
# Counted lengths kept, by file (path, size, modification time) and limit: every step that asks for
# an upload's length (its line, the admission check, the quota, the run) gets it without reading it again.
_KEPT = 64
_lengths: collections.OrderedDict[tuple[Any, ...], Length] = collections.OrderedDict()
_lock = threading.Lock()
stats: collections.Counter[str] = collections.Counter()  # lengths read, by source kind: read by the tests


@dataclass(frozen=True)
class Source:
    """How a file's samples are read: ``header`` (libsndfile, whose length holds), ``read`` (libsndfile,
    its length found by reading), ``stream`` (an MP3 fed to libsndfile as a stream, which it reads to
    the end instead of stopping at its estimate) or ``raw`` (a WAV's samples from byte ``start``)."""

    kind: str = "header"
    start: int = 0
    subtype: str = ""
    rate: int = 0
    channels: int = 0


HEADER = Source()


@dataclass(frozen=True)
class Length:
    """Frames read: ``whole`` when the file ended, else reading stopped as the count passed the limit."""

    frames: int
    whole: bool


def source(path: Path, info: Any) -> Source:
    """How ``path`` (whose ``soundfile.info`` is ``info``) is read, and whether its header's length holds."""
    import soundfile as sf

    frames, size = max(0, int(info.frames)), os.path.getsize(path)
    if info.format in ("WAV", "WAVEX") and info.subtype in sf.available_subtypes("RAW"):
        start = _unsized_data(path, size)
        if start is not None:
            return Source("raw", start, info.subtype, int(info.samplerate), int(info.channels))
    if info.format == "MP3" and (holds := _frame_count_holds(path, size)) is not True:
        # No frame count: fed through a pipe, where libsndfile reads every frame. A count the file cannot
        # hold (a lie, or a file cut short): read from the file to its end, which a pipe fails at a frame
        # cut in two.
        return Source("stream" if holds is None else "read")
    if frames > size * MOST_FRAMES_PER_BYTE:
        return Source("read")
    return HEADER


@dataclass(frozen=True)
class Pages:
    """An Ogg file's pages walked from its start (``pages``): ``end``, where the last whole page whose
    checksum holds ends; ``chained``, a stream begun after another's data (a chained Ogg, of which
    libsndfile reads only the first); ``most``, the walk stopped at ``MOST_OGG_PAGES``."""

    end: int
    pages: int
    chained: bool = False
    most: bool = False


def pages(path: Path) -> Pages:
    """Walk an Ogg file page by page, each checked as libogg checks it (capture pattern, version, its
    checksum), until a page is not whole or not a page: what follows is no audio. Costs a checksum over
    each byte walked and one step a page (at most ``MOST_OGG_PAGES``): libsndfile, given bytes that
    only look like pages, hunted through them at 0.8 CPU s a MB (31 s for a 60 MB tail after 5 s)."""
    at, count, data_seen = 0, 0, False
    with open(path, "rb") as f:
        while count < MOST_OGG_PAGES:
            f.seek(at)
            head = f.read(27)
            if len(head) < 27 or head[:5] != b"OggS\x00":
                return Pages(at, count)
            table = f.read(head[26])
            body = f.read(sum(table))
            if len(table) < head[26] or len(body) < sum(table) or not _crc_holds(head, table, body):
                return Pages(at, count)
            if not head[5] & 2:
                data_seen = True
            elif data_seen:  # a stream's opening pages come before its data: one after data starts another
                return Pages(at, count, chained=True)
            at, count = at + 27 + len(table) + len(body), count + 1
    return Pages(at, count, most=True)


def _crc_holds(head: bytes, table: bytes, body: bytes) -> bool:
    """Ogg's page checksum (CRC-32, polynomial 0x04C11DB7, not reflected, from 0) over the page with its
    own field zeroed: zlib's reflected CRC-32 of the bit-reversed bytes is the checksum bit-reversed."""
    page = (head[:22] + bytes(4) + head[26:] + table + body).translate(_REVERSED)
    crc = zlib.crc32(page, 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{crc:032b}"[::-1], 2) == int.from_bytes(head[22:26], "little")


_REVERSED = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def _unsized_data(path: Path, size: int) -> int | None:
    """Where a WAV's samples start when its data chunk's size cannot be trusted (0 with samples after
    it, or smaller than what follows and followed by no chunk or tag); None when the size holds."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return None  # RF64 and big-endian RIFX keep libsndfile's reading
        at = 12
        for _ in range(_MOST_CHUNKS):
            f.seek(at)
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            stated = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                break
            at += 8 + stated + (stated & 1)
        else:
            return None
        start = at + 8
        if stated >= size - start:  # libsndfile reads such a chunk to the file's end itself
            return None
        if stated == 0:
            return start
        f.seek(start + stated + (stated & 1))
        after = f.read(8)
    left = size - start - stated - 8
    chunk_next = all(32 <= c < 127 for c in after[:4]) and int.from_bytes(after[4:], "little") <= left
    # A few stray bytes, the next chunk or an ID3 tag: the size holds. Anything else is more samples.
    return None if len(after) < 8 or chunk_next or after[:3] in (b"ID3", b"TAG") else start


def _frame_count_holds(path: Path, size: int) -> bool | None:
    """Whether an MP3's first frame is a Xing/Info frame that states a frame count its file can hold,
    the only length libsndfile reads exactly (without it, its length is the first frame's bitrate over
    the file's size; a VBRI tag it ignores): None where it states none. False for a count its bytes
    cannot hold at the format's lowest bitrate, or a byte count past the file's end (a lie, or a file
    cut short): counted instead."""
    start = _after_id3(path)
    with open(path, "rb") as f:
        f.seek(start)
        frame = f.read(4 + _TAG_WINDOW + 12)
    least = _least_frame_bytes(frame)
    if not least:
        return None
    for tag in (b"Xing", b"Info"):
        at = frame.find(tag, 4, 4 + _TAG_WINDOW)
        if at < 0 or len(frame) < at + 16:
            continue
        flags, count, stated = struct.unpack_from(">III", frame, at + 4)
        held = size - start
        if not flags & 1:
            return None
        return count * least <= held and not (flags & 2 and stated > held)
    return None


def _least_frame_bytes(head: bytes) -> int:
    """The fewest bytes an MPEG audio frame of ``head``'s version, layer and rate takes (its lowest
    bitrate, no padding); 0 where ``head`` is no frame header."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return 0
    version, layer, rate_at = head[1] >> 3 & 3, head[1] >> 1 & 3, head[2] >> 2 & 3
    if version == 1 or layer == 0 or rate_at == 3:
        return 0
    rate = (44100, 48000, 32000)[rate_at] >> (0 if version == 3 else 1 if version == 2 else 2)
    samples = 384 if layer == 3 else 1152 if layer == 2 or version == 3 else 576
    kbps = 32 if version == 3 or layer == 3 else 8
    return samples * kbps * 1000 // 8 // rate


def _after_id3(path: Path) -> int:
    """Where an MP3's frames start: after its ID3v2 tags (a cover image makes one tens of KB, and a
    tagger may leave two). libsndfile cannot skip a tag past 64 KB in a pipe, and frames are the audio."""
    start = 0
    with open(path, "rb") as f:
        for _ in range(4):
            f.seek(start)
            head = f.read(10)
            if head[:3] != b"ID3" or len(head) < 10 or any(b & 0x80 for b in head[6:10]):
                break
            start += 10 + sum(b << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
            start += 10 if head[5] & 0x10 else 0  # a footer
    return start


def length(path: Path, found: Source, limit: int, block: int) -> Length:
    """The frames ``path`` holds, read ``block`` frames at a time into one buffer (a raw WAV's from its
    size): to the end, or until the count passes ``limit``. Kept, so a file is read once."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, found, limit)
    with _lock:
        if key in _lengths:
            return _lengths[key]
    stats[found.kind] += 1
    with opened(path, found) as f:
        counted = Length(int(f.frames), True) if found.kind == "raw" else _count(f, limit, block)
    with _lock:
        _lengths[key] = counted
        while len(_lengths) > _KEPT:
            _lengths.popitem(last=False)
    return counted


def _count(f: Any, limit: int, block: int) -> Length:
    buf = np.empty((block, f.channels), dtype=np.float32)
    frames = 0
    while frames <= limit:
        got = len(f.read(out=buf))
        if not got:
            return Length(frames, True)
        frames += got
    return Length(frames, False)


@contextlib.contextmanager
def opened(path: Path, found: Source) -> Iterator[Any]:
    """``path`` open for reading as ``found`` says, a ``soundfile.SoundFile`` whose reads go to the end."""
    import soundfile as sf

    if found.kind == "stream":
        with _streamed(path) as f:
            yield f
    elif found.kind == "raw":
        with open(path, "rb") as raw:
            window = _From(raw, found.start)
            kw = {"samplerate": found.rate, "channels": found.channels, "subtype": found.subtype}
            with sf.SoundFile(window, "r", format="RAW", endian="LITTLE", **kw) as f:
                yield f
    else:
        with (_straight() if found.kind == "read" else sf.SoundFile)(str(path)) as f:
            yield f


@functools.cache
def _straight() -> type:
    import soundfile as sf

    class Straight(sf.SoundFile):
        """A file read straight through. soundfile seeks to where each read ended, and libsndfile cannot
        seek a stream, nor a FLAC whose length is unknown: that seek fails the read."""

        def seekable(self) -> bool:
            return False

    return Straight


@contextlib.contextmanager
def _streamed(path: Path) -> Iterator[Any]:
    """An MP3 fed to libsndfile through a pipe: a stream's length is unknown to it, so it reads every
    frame there is (a file's length it takes from the first frame's bitrate, and stops there). Fed from
    its first frame: libsndfile failed a stream whose ID3 tag held a cover of 60 KB or more."""
    read_end, write_end = os.pipe()
    args = (path, write_end, _after_id3(path))
    feeder = threading.Thread(target=_feed, args=args, name="audio-feed", daemon=True)
    feeder.start()
    try:
        with _straight()(read_end, closefd=False) as f:
            yield f
    finally:
        os.close(read_end)  # a feeder blocked on a full pipe stops on the broken pipe
        feeder.join()


def _feed(path: Path, fd: int, start: int) -> None:
    try:
        with os.fdopen(fd, "wb") as pipe, open(path, "rb") as src:
            src.seek(start)
            shutil.copyfileobj(src, pipe, 1 << 16)
    except OSError:  # the reader stopped (the limit, or damage) or the file went: the reader says why
        pass


class _From:
    """A file seen from byte ``start`` on: libsndfile reads a headerless (RAW) file from its byte 0."""

    def __init__(self, f: Any, start: int) -> None:
        self.f, self.start = f, start
        f.seek(start)

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(pos + (self.start if whence == 0 else 0), whence) - self.start

    def tell(self) -> int:
        return self.f.tell() - self.start

    def read(self, n: int = -1) -> bytes:
        return self.f.read(n)
