"""The output folder, where takes are kept: its place (``output_dir``), which files in it the studio
wrote (``studio_file``; nothing else is ever served or deleted), its disk quota (``free_disk_space``, and
the disk space a running request reserves: ``reserve``), a take being sent (``serving``: never deleted
mid-stream), and the clean-up of old takes (``clean_outputs``). ``takes`` writes into it.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def output_dir() -> Path:
    """The one folder the studio writes to and serves (``ACE_STUDIO_OUTPUT_DIR``)."""
    default = Path(__file__).resolve().parent / "outputs"
    path = Path(os.environ.get("ACE_STUDIO_OUTPUT_DIR", default)).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def output_max_age_hours() -> float:
    return float(os.environ.get("ACE_STUDIO_OUTPUT_MAX_AGE_HOURS", "24"))


# What the studio writes, and nothing else: only these are ever deleted by the clean-up.
_DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STUDIO_FILE = re.compile(
    r"^(?:\.partial-)?(?P<take>(?:generate|cover|extend|edit|morph)-\d{6}-[0-9a-f]{6}-take\d+-seed\d+)"
    r"(?:-preview\.mp3|\.(?:wav|flac|mp3|json|lrc)|-(?P<stem>vocals|drums|bass|other|part|unlocked)\.(?:wav|flac|mp3)"
    r"|(?P<stems>-stems)\.json|(?P<latents>-latents\.npy))$"
)
STEM_NAMES = ("vocals", "drums", "bass", "other")
TAKE_SUFFIXES = (".wav", ".flac", ".mp3")


def studio_file(relative: Any) -> Path | None:
    """The finished take or record ``relative`` names (``"2026-11-22/generate-….wav"``, as records
    name them), or None: anything but a complete file the studio wrote in one of its day folders."""
    parts = str(relative or "").split("/")
    if (
        len(parts) != 2
        or not _DAY_FOLDER.match(parts[0])
        or not _STUDIO_FILE.match(parts[1])
        or parts[1].startswith(".")
    ):
        return None
    path = output_dir() / parts[0] / parts[1]
    return path if path.is_file() else None


def studio_take_audio(relative: Any) -> Path | None:
    """``studio_file``, but only a take's audio: not its record, not one of its stems."""
    path = studio_file(relative)
    if path is None or path.suffix not in TAKE_SUFFIXES:
        return None
    found = _STUDIO_FILE.match(path.name)
    return path if found is not None and not (found["stem"] or found["stems"]) else None


def clean_outputs(max_age_hours: float | None = None, now: float | None = None) -> int:
    """Delete the studio's files older than the age limit so the disk never fills; returns the count.

    Only files named as the studio names its takes, in its day folders, are touched; anything else
    in the output folder is left alone. Today's folder is never removed, so a take being written now
    always has its folder.
    """
    limit = (output_max_age_hours() if max_age_hours is None else max_age_hours) * 3600
    now = time.time() if now is None else now
    root = output_dir()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    removed = 0
    for folder in (p for p in root.iterdir() if p.is_dir() and _DAY_FOLDER.match(p.name)):
        for path in folder.iterdir():
            if _STUDIO_FILE.match(path.name) and path.is_file() and now - path.stat().st_mtime > limit:
                path.unlink(missing_ok=True)
                removed += 1
        removed += _clean_orphan_stems(folder)
        if folder.name != today:
            with contextlib.suppress(OSError):  # not empty, or removed by a concurrent clean-up
                folder.rmdir()
    return removed


# ---------------------------------------------------------------- the output folder's quota


def output_quota_bytes() -> int:
    """``ACE_STUDIO_OUTPUT_QUOTA_MB`` (default 2048): what the output folder may hold."""
    try:
        mb = float(os.environ.get("ACE_STUDIO_OUTPUT_QUOTA_MB", "2048"))
    except ValueError:
        mb = 2048.0
    return int(max(mb, 0.0) * 2**20)


# A take its visitor was just handed, or fetched a moment ago, is theirs to download: the quota
# removes neither it nor a take being streamed right now (``asgi_gate``).
FRESH_S = 300.0
_quota_lock = threading.RLock()  # freeing disk space, and the bytes promised (a disk walk: never in the event loop)
_marks_lock = threading.Lock()  # what is being sent: taken in the event loop, so only for a moment
_streaming: collections.Counter[str] = collections.Counter()
_last_served: dict[str, float] = {}
_reserved = 0


@contextlib.contextmanager
def serving(path: Path) -> Iterator[None]:
    """Keep ``path`` (a take being sent to its visitor) out of the quota's reach while it is sent,
    and for ``FRESH_S`` after."""
    key = os.path.realpath(path)
    with _marks_lock:
        _streaming[key] += 1
        _last_served[key] = time.time()
    try:
        yield
    finally:
        with _marks_lock:
            _streaming[key] -= 1
            if _streaming[key] <= 0:
                del _streaming[key]
            _last_served[key] = time.time()


def _take_groups() -> list[tuple[float, int, list[Path], bool]]:
    """The studio's files by take (its audio and record together): (last used, bytes, files,
    protected), where protected means being written, being sent, or fresh."""
    groups: dict[str, list[Path]] = {}
    root = output_dir()
    for folder in (p for p in root.iterdir() if p.is_dir() and _DAY_FOLDER.match(p.name)):
        with contextlib.suppress(OSError):
            for path in folder.iterdir():
                if (found := _STUDIO_FILE.match(path.name)) is not None:  # a take with its preview, record, stems
                    groups.setdefault(f"{folder.name}/{found['take']}", []).append(path)
    existing = {os.path.realpath(p) for files in groups.values() for p in files}
    with _marks_lock:
        for gone in set(_last_served) - existing:  # removed by age, or by hand: forget it
            del _last_served[gone]
        served, streaming = dict(_last_served), set(_streaming)
    now, found = time.time(), []
    for files in groups.values():
        used, size, busy = 0.0, 0, False
        for path in files:
            with contextlib.suppress(OSError):
                stat = path.stat()
                key = os.path.realpath(path)
                used = max(used, stat.st_mtime, served.get(key, 0.0))
                size += stat.st_size
                busy |= path.name.startswith(".partial-") or key in streaming
        found.append((used, size, files, busy or now - used < FRESH_S))
    return found


def free_disk_space(incoming: int = 0, dry_run: bool = False) -> bool:
    """Remove the oldest takes (audio and record together) until the folder, the bytes promised to
    runs under way (``reserve``) and ``incoming`` more fit the quota; False when they cannot
    (what is left is being written, being sent, or fresh). ``dry_run`` only says whether they could."""
    with _quota_lock:
        groups = _take_groups()
        total = sum(size for _, size, _, _ in groups) + _reserved + incoming
        limit = output_quota_bytes()
        for _used, size, files, protected in sorted(groups, key=lambda g: g[0]):
            if total <= limit:
                break
            if protected:
                continue
            if not dry_run:
                for path in files:
                    path.unlink(missing_ok=True)
            total -= size
        return total <= limit


@contextlib.contextmanager
def reserve(nbytes: int) -> Iterator[bool]:
    """Disk space for ``nbytes`` freed (oldest takes removed) and reserved for the block, so that runs
    under way do not promise the same space twice; yields False, reserving nothing, when there is none."""
    global _reserved
    with _quota_lock:
        ok = free_disk_space(nbytes)
        if ok:
            _reserved += nbytes
    try:
        yield ok
    finally:
        if ok:
            with _quota_lock:
                _reserved -= nbytes


def _clean_orphan_stems(folder: Path) -> int:
    """Stems and latents go with their take: removed once it is gone (made later, stems would outlive it)."""
    removed = 0
    for path in list(folder.iterdir()):
        found = _STUDIO_FILE.match(path.name)
        if found is None or not (found["stem"] or found["stems"] or found["latents"]) or path.name.startswith("."):
            continue
        if not any((folder / f"{found['take']}{suffix}").exists() for suffix in TAKE_SUFFIXES):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


# A long-running studio must also drop old files, not only at start-up; walking the whole output
# tree on every write would be wasted I/O when the age limit is hours.
_CLEAN_EVERY_S = 600.0
_last_clean = 0.0


def clean_now_and_then() -> None:
    global _last_clean
    if time.time() - _last_clean >= _CLEAN_EVERY_S:
        _last_clean = time.time()
        clean_outputs()
