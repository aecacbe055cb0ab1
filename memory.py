"""The server's memory between requests: what glibc holds free goes back to the system after each event.

Without it, two visitors' ordinary requests take a served studio from 163 MB to 5.8 GB in six minutes,
still growing, with no Python object growing: each large buffer freed raises glibc's mmap
threshold (up to 32 MiB), so later audio-sized buffers come from its heaps, and what they leave there
when freed stays the process's. ``malloc_trim(0)`` gives it back. Trimmed after every event a visitor
starts (``event_errors.expected_errors``), a soak of 300 mixed requests rests near 2 GB between requests
(docs/performance.md, "Memory over a long run"). Fixing the thresholds at start-up (``mallopt``) holds
its peaks too, but makes every audio-sized buffer a fresh mapping: a 4 × 45 s song takes 41 % more CPU.
Done here, in the process, for every way the studio is started: a Space's repository cannot set
``MALLOC_*`` before Python starts. A no-op where the C library is not glibc (macOS, musl).
"""

from __future__ import annotations

import collections
import ctypes
import threading
import time
from typing import Any

_lock = threading.Lock()
_libc: list[Any] = []  # glibc once found (or None where it is not there)
stats: collections.Counter = collections.Counter()  # trims and their seconds: read by tests and the soak


def _glibc() -> Any:
    if not _libc:
        try:
            libc = ctypes.CDLL(None)
            libc.gnu_get_libc_version  # noqa: B018 (glibc's own symbol: present in glibc alone)
            libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
            _libc.append(libc)
        except (OSError, AttributeError):
            _libc.append(None)
    return _libc[0]


def trim() -> float | None:
    """Give back to the system the memory glibc holds free (every heap, every thread's), as an event
    ends; one at a time (an event ending meanwhile has nothing more to give). Returns the seconds it
    took, None where it did not run."""
    libc = _glibc()
    if libc is None or not _lock.acquire(blocking=False):
        return None
    try:
        started = time.perf_counter()
        libc.malloc_trim(0)
        took = time.perf_counter() - started
        stats["trims"] += 1
        stats["seconds"] += took
        return took
    finally:
        _lock.release()
