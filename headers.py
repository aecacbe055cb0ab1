"""What the admission check reads of a visitor's files: their headers, never their contents.

A join answers at once on a busy machine: Gradio runs a request's checks inside the HTTP join
(``admission.validator``), so those checks read a song's header (its length), a LoRA's (its shapes) and a
take's record, and nothing whose cost grows with a file: no decode, no hash, no scan. One exception: a song
whose header cannot say its length (``audio_length``) is counted once, up to the studio's limit, and the
count kept, so admission estimates the length the run decodes. ``only`` marks the admission check; the
readers under it (``uploads.load``, ``preparing``, ``take_latents``, ``voice``) ask ``reading`` and answer
from what a header says, a song as a stand-in of its length (``stand_in``: silence that takes no memory).
The run reads every file in full and checks it all again.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import numpy as np

_ONLY = contextvars.ContextVar("ace_studio_headers_only", default=False)


@contextlib.contextmanager
def only() -> Iterator[None]:
    """The admission check: files are read by their headers only, in this thread's context."""
    token = _ONLY.set(True)
    try:
        yield
    finally:
        _ONLY.reset(token)


def reading() -> bool:
    """Whether files are read by their headers only here (``only``)."""
    return _ONLY.get()


def stand_in(samples: int, channels: int = 2) -> np.ndarray:
    """A song of ``samples`` as the admission check knows it: read-only silence of that shape, one float in memory."""
    return np.broadcast_to(np.zeros((), np.float32), (channels, max(0, int(samples))))
