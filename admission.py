"""Who may join the queue: every request's checks run before it takes a place, and a full studio
says so in its own words.

Two queues with places of their own: GPU work (songs and lyrics, ``ACE_STUDIO_QUEUE_SIZE``) and
reading uploads (``ACE_STUDIO_UPLOAD_PLACES``), so a flood of uploads never reaches the GPU's count
or its message. GPU work still running counts until it ends, also when its visitor cancelled it in
Gradio's queue (which gives the place back while the work goes on until its run notices).
"""

from __future__ import annotations

import collections
import inspect
import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import gradio as gr

import checks
import lyrics as lyricist
import runs
import tooltips as tips
import uploads

GPU = "gpu"
UPLOADS = "uploads"


def queue_size() -> int:
    """GPU requests a visitor may wait behind (``ACE_STUDIO_QUEUE_SIZE``, default 32)."""
    return int(os.environ.get("ACE_STUDIO_QUEUE_SIZE", "32"))


def upload_places() -> int:
    """Uploads that may wait to be read (``ACE_STUDIO_UPLOAD_PLACES``, default 8)."""
    return int(os.environ.get("ACE_STUDIO_UPLOAD_PLACES", "8"))


def queued(demo: gr.Blocks, concurrency_id: str) -> int:
    """Requests of one concurrency group waiting in ``demo``'s queue (not yet running)."""
    waiting = getattr(getattr(demo, "_queue", None), "event_queue_per_concurrency_id", {}).get(concurrency_id)
    return len(waiting.queue) if waiting is not None else 0


def gpu_waiting(demo: gr.Blocks) -> Callable[[], int]:
    """GPU requests queued plus GPU work still running (a cancelled request's work included)."""
    return lambda: queued(demo, GPU) + runs.active()


def uploads_waiting(demo: gr.Blocks) -> Callable[[], int]:
    return lambda: queued(demo, UPLOADS)


def queued_files(demo: gr.Blocks) -> Callable[[], set[str]]:
    """The files named by every request in ``demo``'s queue, waiting or running, for the upload
    quota (``uploads.needed_by``): a file a request still needs is never removed, however long it
    waits; a request that ends (done, failed, stopped, cancelled, its page closed) leaves the queue."""

    def files() -> set[str]:
        queue = getattr(demo, "_queue", None)
        events = [e for w in list(getattr(queue, "event_queue_per_concurrency_id", {}).values()) for e in list(w.queue)]
        events += [e for job in list(getattr(queue, "active_jobs", ())) for e in (job or ())]
        found: set[str] = set()
        for event in events:
            for value in getattr(getattr(event, "data", None), "data", None) or ():
                if isinstance(value, dict) and isinstance(value.get("path"), str):
                    found.add(value["path"])
        return found

    return files


class _Admission:
    """Places in the queue promised by validators in the last few seconds.

    Validators run concurrently and a request joins Gradio's queue only after its validator
    returns, so counting the queue alone let a burst of 30 simultaneous joins through a cap of 2.
    A place is promised before the request's checks run (so a burst is turned away before any
    upload is decoded) and given back if they fail; it counts until ``WINDOW_S`` later, by when the
    request is in the queue (and counted there; for those seconds it counts twice, erring on the
    busy side).
    """

    WINDOW_S = 5.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._promised: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._tokens = itertools.count()

    def promise(self, queued: int, cap: int) -> tuple[int | None, int]:
        """``(token, waiting)``: a place promised under ``token``, or None when ``waiting`` fill it."""
        now = time.monotonic()
        with self._lock:
            while self._promised and now - next(iter(self._promised.values())) > self.WINDOW_S:
                self._promised.popitem(last=False)
            waiting = queued + len(self._promised)
            if waiting >= cap:
                return None, waiting
            token = next(self._tokens)
            self._promised[token] = now
            return token, waiting

    def release(self, token: int) -> None:
        with self._lock:
            self._promised.pop(token, None)


_gpu = _Admission()
_uploads = _Admission()


def validator(check: Callable, names: list[str], waiting: Callable[[], int], anchor: str) -> Callable:
    """A Gradio ``validator=`` for GPU work: promises a place, runs the handler's checks before the
    request takes it and marks the field at fault; a full queue answers with a busy message.

    ``check`` takes the endpoint's inputs (``names``, the components ``inputs``) and raises an
    error with a ``param`` attribute (or a plain ``gr.Error``, shown on ``anchor``, an always visible
    field). Only the field at fault is marked: for one in a closed accordion the page opens it and
    notes the message on its label (``theme.JS``). ``waiting`` counts GPU requests (``gpu_waiting``).
    The handler repeats the checks when it runs, so nothing depends on this alone.
    """

    def verdict(param: str | None = None, message: str = "") -> list[dict[str, Any]]:
        return _verdict(names, anchor, param, message)

    def validate(*args: Any) -> list[dict[str, Any]]:
        token, ahead = _gpu.promise(waiting(), queue_size())
        if token is None:
            return verdict(anchor, tips.BUSY.format(waiting=ahead))
        uploads.note_named(list(args))  # from the door on, the quota keeps what this request names
        try:
            checks.check_text_lengths(dict(zip(names, args, strict=True)))
            check(*args)
        except checks.InputError as exc:
            _gpu.release(token)
            return verdict(exc.param, exc.message)
        except lyricist.LyricsError as exc:
            _gpu.release(token)
            return verdict(exc.param, str(exc))
        except gr.Error as exc:
            _gpu.release(token)
            return verdict(anchor, exc.message)
        return verdict()

    return _with_signature(validate, names)


def upload_validator(names: list[str], waiting: Callable[[], int]) -> Callable:
    """A Gradio ``validator=`` for reading an upload: a place in the uploads' own queue, or a busy
    message on the upload (the first input)."""

    def validate(*args: Any) -> list[dict[str, Any]]:
        token, _ = _uploads.promise(waiting(), upload_places())
        if token is None:
            return _verdict(names, names[0], names[0], tips.UPLOADS_BUSY)
        uploads.note_named(list(args))
        return _verdict(names, names[0])

    return _with_signature(validate, names)


def _verdict(names: list[str], anchor: str, param: str | None = None, message: str = "") -> list[dict[str, Any]]:
    if param is not None and param not in names:
        param = anchor
    return [gr.validate(name != param, message if name == param else "") for name in names]


def _with_signature(validate: Callable, names: list[str]) -> Callable:
    validate.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    return validate
