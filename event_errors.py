"""The wrapper every event function a visitor starts runs in (``expected_errors``): a refusal titled by
the button clicked and logged in one line, not a traceback, and the memory the event freed given back
to the system as it ends."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

import error_messages
import memory

# A refusal's words in the log: its first line's whole sentences up to about this many characters (the first always).
LOGGED_CHARS = 300


def logged(message: Any) -> str:
    """The words of a refusal the log keeps: whole sentences of its first line (cut at a character count, a long
    message stopped mid-word)."""
    first = (str(message or "").strip().splitlines() or [""])[0]
    kept, *rest = re.split(r"(?<=[.!?])\s+", first)
    for sentence in rest:
        if len(kept) + 1 + len(sentence) > LOGGED_CHARS:
            break
        kept = f"{kept} {sentence}"
    return kept


def expected_errors(fn: Callable) -> Callable:
    """An event function whose visitor errors (``gr.Error``: a stop, a missing model, a missing input)
    are logged in one line each; Gradio would print a full traceback for every one. Anything else
    keeps its traceback. A visitor error without a title of its own gets the studio's for the event
    (``error_messages.TITLES``: the button clicked), not Gradio's "Error". However it ends, the memory it
    freed goes back to the system (``memory.trim``: glibc would keep it, and a server would grow by
    gigabytes)."""
    title = next(
        (titled for name, titled in error_messages.TITLES if fn.__name__.startswith(name)), error_messages.TITLE
    )

    def note(exc: gr.Error) -> None:
        if exc.title == "Error":  # gr.Error's default
            exc.title = title
        print(f"{fn.__name__}: {exc.title}: {logged(exc.message)}", flush=True)
        exc.print_exception = False

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                return (yield from fn(*args, **kwargs))
            except gr.Error as exc:
                note(exc)
                raise
            finally:
                memory.trim()

        return stream

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            note(exc)
            raise
        finally:
            memory.trim()

    return call
