"""Who may join the queue: every request's checks run before it takes a place, and a full studio
says so in its own words.
"""

from __future__ import annotations

import collections
import inspect
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import gradio as gr

import checks
import lyrics as lyricist
import tooltips as tips


def queue_size() -> int:
    """Requests a visitor may wait behind (``ACE_STUDIO_QUEUE_SIZE``, default 32)."""
    return int(os.environ.get("ACE_STUDIO_QUEUE_SIZE", "32"))


class _Admission:
    """Places in the queue promised by validators in the last few seconds.

    Validators run concurrently and a request joins Gradio's queue only after its validator
    returns, so counting the queue alone let a burst of 30 simultaneous joins through a cap of 2.
    A place counts from the moment it is promised until ``WINDOW_S`` later, by when the request
    is in the queue (and counted there; for those seconds it counts twice, erring on the busy side).
    """

    WINDOW_S = 5.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._promised: collections.deque[float] = collections.deque()

    def admit(self, queued: int, cap: int) -> int | None:
        """Promise a place and return None, or return how many wait when there is none."""
        now = time.monotonic()
        with self._lock:
            while self._promised and now - self._promised[0] > self.WINDOW_S:
                self._promised.popleft()
            waiting = queued + len(self._promised)
            if waiting >= cap:
                return waiting
            self._promised.append(now)
            return None


_admission = _Admission()


def validator(check: Callable, names: list[str], waiting: Callable[[], int], anchor: str) -> Callable:
    """A Gradio ``validator=``: runs the handler's checks before the request takes a queue slot and
    marks the field at fault; a full queue answers with a busy message instead.

    ``check`` takes the endpoint's inputs (``names``, the components ``inputs``) and raises an
    error with a ``param`` attribute (or a plain ``gr.Error``, shown on ``anchor``, an always visible
    field). Only the field at fault is marked: for one in a closed accordion the page opens it and
    notes the message on its label (``theme.JS``). ``waiting`` counts the requests queued in the
    page's Blocks. The handler repeats the checks when it runs, so nothing depends on this alone.
    """

    def verdict(param: str | None = None, message: str = "") -> list[dict[str, Any]]:
        if param is not None and param not in names:
            param = anchor
        return [gr.validate(name != param, message if name == param else "") for name in names]

    def validate(*args: Any) -> list[dict[str, Any]]:
        queued = waiting()
        if queued >= queue_size():  # cheap, before an upload is decoded
            return verdict(anchor, tips.BUSY.format(waiting=queued))
        try:
            checks.check_text_lengths(dict(zip(names, args, strict=True)))
            check(*args)
        except checks.InputError as exc:
            return verdict(exc.param, exc.message)
        except lyricist.LyricsError as exc:
            return verdict(exc.param, str(exc))
        except gr.Error as exc:
            return verdict(anchor, exc.message)
        full = _admission.admit(waiting(), queue_size())
        if full is not None:
            return verdict(anchor, tips.BUSY.format(waiting=full))
        return verdict()

    validate.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    return validate
