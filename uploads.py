"""Every upload the studio decodes goes through here: once, within a budget the whole studio shares.

An upload is read by several steps (the text under it with its waveform and analysis, the admission
check, the run itself), so ``load`` decodes it once and keeps it in a small cache keyed by the
file's path, size and modification time; two requests for the same file at once share one decode.
The header is checked first (``audio.probe``); a decode then holds one of ``ACE_STUDIO_DECODES``
places and its promised size counts against ``ACE_STUDIO_DECODE_MB`` until it is done, so a crowd
of small files that expand to minutes of audio cannot run the server out of memory or CPU. Beyond
the budget the visitor is told the studio is busy; nothing waits long.

Refused uploads (not audio, damaged, too long) are deleted from Gradio's upload folder at once, and
that folder never holds more than ``ACE_STUDIO_UPLOAD_QUOTA``: each upload reserves its length before
it is read (``reserve``, from ``asgi_gate``), the oldest uploads nobody needs go first, and when that is not enough the newcomer
is refused (see the quota's section below for what is never removed).
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import audio
import error_messages
import headers

MB = 2**20


def _mb(name: str, default: float) -> int:
    return int(float(os.environ.get(name, default)) * MB)


def decodes_at_once() -> int:
    return max(1, int(os.environ.get("ACE_STUDIO_DECODES", "2")))


class Busy(audio.AudioError):
    """Too many uploads are being decoded right now; the visitor may try again in a moment."""


# How long a decode waits for a place before the visitor is told the studio is busy.
WAIT_S = 3.0


@dataclass
class _Budget:
    """Decodes at once and the bytes they promise, held by the work itself (not by a queue place,
    which a cancelled request gives back while its thread still runs)."""

    running: int = 0
    bytes: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)

    @contextlib.contextmanager
    def hold(self, size: int) -> Iterator[None]:
        limit, places = _mb("ACE_STUDIO_DECODE_MB", 1024), decodes_at_once()
        if size > limit:
            raise Busy(error_messages.DECODES_BUSY)
        with self.cond:
            fits = self.cond.wait_for(lambda: self.running < places and self.bytes + size <= limit, WAIT_S)
            if not fits:
                raise Busy(error_messages.DECODES_BUSY)
            self.running += 1
            self.bytes += size
        try:
            yield
        finally:
            with self.cond:
                self.running -= 1
                self.bytes -= size
                self.cond.notify_all()


_budget = _Budget()


class _Cache:
    """Decoded uploads by (path, size, mtime), least recently used out first, at most
    ``ACE_STUDIO_DECODE_CACHE_MB``; a key being decoded is shared with whoever asks meanwhile."""

    def __init__(self) -> None:
        self._items: collections.OrderedDict[tuple, np.ndarray] = collections.OrderedDict()
        self._pending: dict[tuple, threading.Event] = {}
        self._lock = threading.Lock()

    def get_or_claim(self, key: tuple) -> tuple[np.ndarray | None, threading.Event | None]:
        """The cached array; or an event to wait on (another thread decodes it); or (None, None):
        this caller decodes it and must ``put`` or ``drop`` the key."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key], None
            if key in self._pending:
                return None, self._pending[key]
            self._pending[key] = threading.Event()
            return None, None

    def peek(self, key: tuple) -> np.ndarray | None:
        """The cached array, if any (never waits, claims nothing)."""
        with self._lock:
            return self._items.get(key)

    def put(self, key: tuple, value: np.ndarray) -> None:
        limit = _mb("ACE_STUDIO_DECODE_CACHE_MB", 512)
        with self._lock:
            if value.nbytes <= limit:
                self._items[key] = value
                while sum(v.nbytes for v in self._items.values()) > limit:
                    self._items.popitem(last=False)
            self._pending.pop(key).set()

    def drop(self, key: tuple) -> None:
        with self._lock:
            self._pending.pop(key).set()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _Cache()
# Why recent uploads were refused, by path: the file is gone (``forget_refused``), but a step that
# asks again (the admission check after the waveform) gets the same message.
_refused: collections.OrderedDict[str, str] = collections.OrderedDict()
stats = collections.Counter()  # decodes, hits, shared, busy: read by tests and the benchmark


def load(path: Any, what: str = "song") -> np.ndarray:
    """An upload as float32 ``[2, samples]`` at 48 kHz, read-only and shared: decoded at most once
    while it is cached. ``audio.AudioError`` with a message a musician reads (``Busy`` when the decode
    budget is spent). In the admission check (``headers.only``) nothing is decoded: the cached decode, else a stand-in of the
    header's length (its silence and damage are found when the run decodes it)."""
    if path is None or str(path).strip() == "":
        raise audio.AudioError(error_messages.UPLOAD_FIRST.format(what=what))
    if (why := audio.unseen(path, what)) is not None:  # a URL, a path that is no upload: never opened
        raise audio.AudioError(why)
    if (why := _refused.get(os.path.realpath(str(path)))) is not None:
        raise audio.AudioError(why)
    try:
        stat = os.stat(str(path))
    except OSError:
        raise audio.AudioError(error_messages.UPLOAD_NOT_FOUND.format(what=what)) from None
    key = (os.path.realpath(str(path)), stat.st_size, stat.st_mtime_ns)
    if headers.reading():  # the admission check: the decode already made, else the header's length
        found = _cache.peek(key)
        return found if found is not None else headers.stand_in(_probed(Path(str(path)), what).samples)
    deadline = time.monotonic() + 60
    while True:
        hit, pending = _cache.get_or_claim(key)
        if hit is not None:
            stats["hits"] += 1
            return hit
        if pending is None:
            break
        stats["shared"] += 1
        if not pending.wait(max(0.0, deadline - time.monotonic())):
            raise Busy(error_messages.DECODES_BUSY)
    try:
        with using([path]):
            song = _decode(Path(str(path)), what)
    except BaseException:
        _cache.drop(key)
        raise
    _cache.put(key, song)
    return song


def _decode(path: Path, what: str) -> np.ndarray:
    header = _probed(path, what)
    try:
        with _budget.hold(header.decoded_bytes):
            stats["decodes"] += 1
            song = audio.decode(path, header, what)
    except Busy:
        stats["busy"] += 1
        raise
    except audio.AudioError as exc:
        _refuse(path, exc)
        raise
    song.setflags(write=False)
    return song


def own_samples(path: Any, what: str = "song") -> np.ndarray:
    """An upload at its source rate, its samples as decoded, in stereo (``audio.decode``'s ``native_rate``): an Edit's
    or Extend's untouched part (``untouched``), read once as its take is finished, never cached. Outside the
    decode budget: read after the GPU call, where a refusal would lose the take made; no larger than the
    48 kHz copy the run holds for a song up to 48 kHz (four times it for 192 kHz)."""
    with using([path]):
        return audio.decode(Path(str(path)), _probed(Path(str(path)), what), what, native_rate=True)


def _probed(path: Path, what: str) -> audio.Header:
    """The upload's header (``audio.probe``); one the studio refuses is refused for good and removed."""
    try:
        return audio.probe(path, what)
    except audio.AudioError as exc:
        _refuse(path, exc)
        raise


def _refuse(path: Path, exc: audio.AudioError) -> None:
    _refused[os.path.realpath(path)] = str(exc)
    while len(_refused) > 256:
        _refused.popitem(last=False)
    forget_refused(path)


# ---------------------------------------------------------------- Gradio's upload folder


def upload_folder() -> Path:
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def in_upload_folder(path: Any) -> bool:
    """Whether ``path`` (links and ``..`` resolved, without opening it) lies in Gradio's upload folder."""
    try:
        return Path(os.path.realpath(str(path))).is_relative_to(upload_folder())
    except (OSError, ValueError, ImportError):
        return False


def forget_refused(path: Any) -> None:
    """Delete an upload the studio refused, if it lies in Gradio's upload folder (and only then)."""
    _remove(path)


def _remove(path: Any) -> None:
    with contextlib.suppress(OSError, ImportError):
        file = Path(str(path)).resolve()
        if file.is_file() and file.is_relative_to(upload_folder()):
            file.unlink()
            with contextlib.suppress(OSError):
                file.parent.rmdir()  # Gradio keeps each upload in a folder of its own


# ---------------------------------------------------------------- the upload quota
#
# What Gradio's upload folder may hold (``ACE_STUDIO_UPLOAD_QUOTA``) is never exceeded: an upload is
# admitted by the gate (``asgi_gate.Gate``) only when the folder, the bytes every upload still in flight
# may yet write, and its own length fit; otherwise the oldest removable uploads go, and when that is
# not enough the newcomer is refused. Never removed: a file a queued or running request names (Gradio's
# queue, asked through ``needed_by``; a run's own ``using``), the page's own files, the files of uploads
# in flight, and any upload younger than ``ACE_STUDIO_UPLOAD_KEEP_MINUTES`` (default 5) since it came
# or a request last named it (the song a visitor has just put on the page, before they click).

_in_use: collections.Counter[str] = collections.Counter()
_named: dict[str, float] = {}  # realpath -> when a request last named it (admission, a run, a reading)
_in_use_lock = threading.Lock()
_needed: list[Any] = []  # callables: the paths queued or running requests name


def keep_seconds() -> float:
    """How long an upload is safe from the quota after it came or was last named by a request (at
    admission, which covers the moment between a request's checks and its place in Gradio's queue; 0
    keeps only what a queue or a run holds right now)."""
    return float(os.environ.get("ACE_STUDIO_UPLOAD_KEEP_MINUTES", "5")) * 60


def needed_by(paths: Any) -> None:
    """Register ``paths()``: the files requests waiting in (or running from) a queue name."""
    _needed.append(paths)


def note_named(values: Any) -> None:
    """Mark the uploads among ``values`` (paths, or anything else, which is ignored) as just named
    by a request: the quota keeps them at least ``keep_seconds`` from now."""
    keys = _upload_keys(values)
    now = time.time()
    with _in_use_lock:
        for key in keys:
            _named[key] = now
        if len(_named) > 4096:  # forget what no longer protects anything
            for key in [k for k, t in _named.items() if now - t > keep_seconds()]:
                del _named[key]


def _upload_keys(values: Any) -> list[str]:
    with contextlib.suppress(ImportError, OSError):
        folder = upload_folder()
        keys = []
        for value in values if isinstance(values, list | tuple) else [values]:
            # Any text a request carries may come here: a NUL or an over-long string is no upload.
            if (
                isinstance(value, str | Path)
                and str(value).strip()
                and "\0" not in str(value)
                and len(str(value)) < 4096
            ):
                key = os.path.realpath(str(value))
                if Path(key).is_relative_to(folder):
                    keys.append(key)
        return keys
    return []


@contextlib.contextmanager
def using(paths: list[Any]) -> Iterator[None]:
    """Keep ``paths`` out of the quota's reach while the block runs (and ``keep_seconds`` after)."""
    keys = [os.path.realpath(str(p)) for p in paths if p]
    note_named(keys)
    with _in_use_lock:
        _in_use.update(keys)
    try:
        yield
    finally:
        with _in_use_lock:
            _in_use.subtract(keys)
            for key in keys:
                if _in_use[key] <= 0:
                    del _in_use[key]
        note_named(keys)


def quota_bytes() -> int:
    """``ACE_STUDIO_UPLOAD_QUOTA`` in MB (default 2048): what Gradio's upload folder may hold."""
    return _mb("ACE_STUDIO_UPLOAD_QUOTA", 2048)


def largest_upload() -> int:
    """What one upload may bring (``ACE_STUDIO_MAX_UPLOAD``, as Gradio reads it; default 200 MB):
    what an upload that does not say its length is allowed, and reserved for, by the gate (``asgi_gate``)."""
    from gradio.utils import _parse_file_size

    return int(_parse_file_size(os.environ.get("ACE_STUDIO_MAX_UPLOAD", "200mb")) or 200 * MB)


# The files the page itself shows (Gradio's copies of the examples and default values): the quota
# never removes them. Anything else may go, also what earlier runs of the studio left in a shared
# folder: were every file older than this process kept, a folder filled by earlier runs would refuse
# every upload for good.
_page_files: set[str] = set()
_quota_lock = threading.Lock()


def keep_page_files(blocks: Any) -> None:
    """Mark the files ``blocks`` (the built page) shows as its own, for the quota."""
    for block in blocks.blocks.values():
        for path in (*getattr(block, "temp_files", ()), *getattr(block, "keep_in_cache", ())):
            _page_files.add(os.path.realpath(path))


@dataclass(eq=False)
class Ticket:
    """Room promised to one upload in flight: ``size`` bytes, of which ``received`` have come."""

    size: int
    received: int = 0


_tickets: set[Ticket] = set()


def reserve(incoming: int) -> Ticket | None:
    """Space for an upload of ``incoming`` bytes (removing the oldest removable uploads as needed),
    reserved until ``release``; None when it cannot fit: the newcomer is refused, nobody's file goes."""
    with _quota_lock:
        if not _free_space(incoming):
            return None
        ticket = Ticket(incoming)
        _tickets.add(ticket)
        return ticket


def release(ticket: Ticket) -> None:
    """The upload is over (done, refused or cut off): what it wrote is on disk and counted there."""
    with _quota_lock:
        _tickets.discard(ticket)


# A take's place in the upload folder: named from this key (made by this process) and the take, so each
# take has one place, handed out again, and nobody can name another visitor's take there.
_PLACE_KEY = os.urandom(16)
_places_lock = threading.Lock()


def link_in(path: Path) -> str | None:
    """The studio's file ``path`` in the upload folder, as if the visitor had uploaded it (how a
    take reaches another tab's source): one place per take, made once and handed out again (twelve
    clicks would otherwise make twelve full copies, each counted in the quota all visitors share). A hard link: its
    bytes are the take's, counted in the output folder's quota where the take is, and the upload quota
    leaves them out while the take is kept (``_counted``). Where no link can be made (the folders on
    two file systems), one copy per take, within the quota; None when that cannot fit."""
    import hashlib
    import hmac

    digest = hmac.new(_PLACE_KEY, os.fsencode(os.path.realpath(path)), hashlib.sha256).hexdigest()[:32]
    place = upload_folder() / f"take-{digest}" / path.name
    with _places_lock:
        with contextlib.suppress(OSError):
            if os.path.samefile(place, path) or place.stat().st_size == path.stat().st_size:
                note_named([str(place)])
                return str(place)
        place.parent.mkdir(parents=True, exist_ok=True)
        place.unlink(missing_ok=True)  # a copy cut short, or of another take that had this name
        try:
            os.link(path, place)
        except OSError:
            return _copy_in(path, place)
    note_named([str(place)])
    return str(place)


def _copy_in(path: Path, place: Path) -> str | None:
    """``link_in`` where no link can be made: a copy, within the quota (complete or absent)."""
    import shutil

    size = path.stat().st_size
    ticket = reserve(size)
    if ticket is None:
        return None
    partial = place.with_name(f".partial-{place.name}")
    try:
        shutil.copyfile(path, partial)
        os.replace(partial, place)
        ticket.received = size
        note_named([str(place)])
        return str(place)
    finally:
        partial.unlink(missing_ok=True)
        release(ticket)


def enforce_quota(incoming: int = 0) -> bool:
    """Remove the oldest removable uploads until the folder, the uploads in flight and ``incoming``
    more bytes fit the quota; False when they cannot."""
    with _quota_lock:
        return _free_space(incoming)


def _counted(folder: Path) -> list[tuple[float, int, Path]]:
    """The files the quota counts (mtime, size, path): all but a take's link while the take is kept
    (``link_in``: its bytes are the take's, counted in the output folder's quota). Once the take is
    cleaned the link is the file's only name, and it counts, and may go, as any upload."""
    files = []
    with contextlib.suppress(OSError):
        for entry in folder.rglob("*"):
            with contextlib.suppress(OSError):
                stat = entry.stat()
                linked = stat.st_nlink > 1 and entry.parent.name.startswith("take-")
                if entry.is_file() and not linked:
                    files.append((stat.st_mtime, stat.st_size, entry))
    return files


def _free_space(incoming: int) -> bool:
    folder, limit, now = upload_folder(), quota_bytes(), time.time()
    in_flight = bool(_tickets)
    files = _counted(folder)
    # Every upload in flight may still write what it was promised and has not yet sent; what it has
    # written lies in the folder (Gradio's temporary files at its top) and is counted there.
    total = sum(size for _, size, _ in files) + sum(max(0, t.size - t.received) for t in _tickets) + incoming
    if total <= limit:
        return True
    kept = _kept()
    for last, size, entry in sorted((max(m, _named.get(os.path.realpath(e), 0.0)), s, e) for m, s, e in files):
        if total <= limit:
            break
        if now - last < keep_seconds():
            break  # sorted: every file from here on is younger still
        if os.path.realpath(entry) in kept or (in_flight and entry.parent == folder):
            continue
        _remove(entry)
        total -= size
    return total <= limit


def _kept() -> set[str]:
    """Files no quota may remove: in use by a run, named by a request in a queue, the page's own."""
    with _in_use_lock:
        kept = set(_in_use) | _page_files
    for paths in _needed:
        with contextlib.suppress(Exception):  # a queue that changed while read is asked next time
            kept.update(os.path.realpath(p) for p in paths())
    return kept
