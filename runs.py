"""Runs and Stop: who started what, whether its visitor asked it to stop, and the Stop buttons.

Every run gets a fresh id in the page's process (``start_run``); Stop touches that run's flag file,
which the work checks between steps (the DiT's step callback, the planner's and the lyrics writer's
token loops). A file, because on ZeroGPU the work runs in a forked worker that shares nothing else
with the page. Also here: requests stopped while they wait in Gradio's queue or in the admission check
(``stop_event``, ``stop_joining``), the error a stopped run ends with (``stopped``, ``is_stop``), a tab's
run registered for its Stop button (``tab_run``), the button's event function (``stopper``), and the
watcher that stops runs whose page is gone.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import gradio as gr

import messages

# The title every stop carries, also across ZeroGPU's worker boundary: a stop is the visitor's own
# doing, so the page shows it as a stop (``handlers``), not as an error.
STOPPED = "Stopped"


class Cancelled(Exception):
    """The visitor clicked Stop; nothing is returned."""


T = TypeVar("T")
# Whether a run's visitor asked it to stop, for work that knows no run id: a take's finish and its writing
# (``modes.finish``, ``takes``): about 50 s of CPU for one take of 240 s on the tiny model at load 9, with no
# progress line.
Stop = Callable[[], bool]


def _never() -> bool:
    return False


NEVER: Stop = _never


def unless(stop: Stop) -> None:
    """A Stop asked (``stop()``) ends the work here (``Cancelled``)."""
    if stop():
        raise Cancelled(messages.STOPPED_FINISHING)


def until(stop: Stop, items: Iterable[T]) -> Iterator[T]:
    """``items`` one at a time, each only while no Stop is asked (``unless``)."""
    for item in items:
        unless(stop)
        yield item


def _cancel_dir() -> Path:
    path = Path(os.environ.get("ACE_STUDIO_CANCEL_DIR", Path(tempfile.gettempdir()) / "ace-studio-cancel"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cancel_path(run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_-]", "", run_id)[:64] or "anonymous"
    return _cancel_dir() / safe


# Runs in progress in this (the page's) process: run id -> owner ("<session>:<tab>"), and for runs
# started by a visitor's request, whether that request is still wanted (its page open, not cancelled).
_runs: dict[str, str] = {}
_wanted: dict[str, Callable[[], bool]] = {}
_runs_lock = threading.Lock()
_watcher: threading.Thread | None = None
# How often the watcher asks whether a run is still wanted: a run nobody waits for ends within this
# and one step of its work.
WATCH_S = 0.2


def start_run(owner: str, wanted: Callable[[], bool] | None = None) -> str:
    """A fresh id for one run of ``owner`` (a visitor's tab); Stop for that owner flags it, and so
    does ``wanted()`` turning False (the visitor closed the page or cancelled the request)."""
    global _watcher
    run_id = secrets.token_hex(8)
    with _runs_lock:
        _runs[run_id] = owner
        if wanted is not None:
            _wanted[run_id] = wanted
            if _watcher is None:
                _watcher = threading.Thread(target=_watch, name="ace-studio-runs", daemon=True)
                _watcher.start()
    return run_id


def finish_run(run_id: str) -> None:
    """Forget a run and remove its flag, however it ended."""
    with _runs_lock:
        _runs.pop(run_id, None)
        _wanted.pop(run_id, None)
        cancel_path(run_id).unlink(missing_ok=True)


def request_stop(owner: str) -> int:
    """Flag every run of ``owner``; returns how many there were."""
    with _runs_lock:  # held while touching, so a run cannot finish in between and leave its flag behind
        ids = [run_id for run_id, who in _runs.items() if who == owner]
        for run_id in ids:
            cancel_path(run_id).touch()
    return len(ids)


# Requests stopped by their Gradio event id (Stop clicked while one waits; an agent gone, ``agents``):
# one still waiting ends as "Stopped before it started" when it leaves the queue and no longer counts as its
# visitor's meanwhile; one running stops within a step (its run no longer wanted, ``handlers``). Each id
# is forgotten when its run starts or ends, and any left longer than ``STOPPED_KEPT_S`` (a request that
# ended before its run began: refused, or dropped from the queue with its page) when the next is
# stopped, so a server left running stays flat. By id, not Gradio's ``/cancel``: that ends every running
# request of the session's endpoint, and an agent's calls share one session.
STOPPED_KEPT_S = 3600.0
_stopped_events: dict[str, float] = {}


def stop_event(event_id: str) -> None:
    now = time.monotonic()
    for old in [e for e, at in list(_stopped_events.items()) if now - at > STOPPED_KEPT_S]:
        _stopped_events.pop(old, None)
    _stopped_events[event_id] = now


def event_stopped(event_id: str | None) -> bool:
    return event_id in _stopped_events


def forget_event(event_id: str | None) -> bool:
    """Whether ``event_id`` was stopped; it is forgotten either way."""
    return event_id is not None and _stopped_events.pop(event_id, None) is not None


# Joins whose admission check still runs (``admission.guard``): a request enters Gradio's queue only after its
# validator returns, so a Stop clicked meanwhile would find neither a queued request nor a run. Stop marks its
# visitor's joins here (``stop_joining``) and each becomes a stopped event as it enters the queue. Entries live
# only while their join does.
_joining: dict[int, tuple[str | None, str | None, list[bool]]] = {}
_joins = itertools.count()


@contextlib.contextmanager
def joining(session_hash: str | None, api_name: str | None) -> Iterator[Callable[[], bool]]:
    """A join of ``session_hash`` to ``api_name`` while its checks run; yields whether a Stop was asked meanwhile."""
    token, asked = next(_joins), [False]
    with _runs_lock:
        _joining[token] = (session_hash, api_name, asked)
    try:
        yield lambda: asked[0]
    finally:
        with _runs_lock:
            _joining.pop(token, None)


def stop_joining(session_hash: str | None, api_names: tuple[str, ...]) -> int:
    """Mark this visitor's joins to ``api_names`` whose checks still run as stopped; returns how many."""
    with _runs_lock:
        found = [asked for who, api, asked in _joining.values() if who == session_hash and api in api_names]
        for asked in found:
            asked[0] = True
    return len(found)


def active() -> int:
    """Runs still working, whether or not anyone waits for them (a stopped one counts until it ends)."""
    with _runs_lock:
        return len(_runs)


def is_stopped(run_id: str | None) -> bool:
    return bool(run_id) and cancel_path(run_id).exists()


def _watch() -> None:
    """Flag the runs nobody wants any more; ends when no run is watched."""
    global _watcher
    while True:
        with _runs_lock:
            watched = list(_wanted.items())
            if not watched:  # decided under the lock, so a run started now gets a new watcher
                _watcher = None
                return
        for run_id, wanted in watched:
            try:
                gone = not wanted()
            except Exception:  # a probe that cannot answer keeps the run: Stop still works
                gone = False
            if gone:
                with _runs_lock:
                    if _wanted.pop(run_id, None) is not None and run_id in _runs:
                        cancel_path(run_id).touch()
        time.sleep(WATCH_S)


def stopped(message: str = messages.NOT_STARTED) -> gr.Error:
    """The error a stopped run ends with: its title is the one the page knows a stop by."""
    return gr.Error(message, title=STOPPED)


def is_stop(exc: gr.Error) -> bool:
    return exc.title == STOPPED


def said_stopped(where: str, message: str) -> None:
    """A stop in the page (a grey "Stopped" note, not Gradio's red "Error") and one line in the log."""
    print(f"{where}: {STOPPED}: {message}", flush=True)
    gr.Info(message, title=STOPPED)


def _owner(request: gr.Request | None, tab: str) -> str:
    """Whose run it is: one visitor's page (the session) on one tab."""
    return f"{getattr(request, 'session_hash', None) or 'anonymous'}:{tab}"


@contextlib.contextmanager
def tab_run(tab: str, request: gr.Request | None):
    """A run of ``tab`` for this visitor, registered so that Stop on that tab (and only there) ends it."""
    from gradio.context import LocalContext

    event_id = LocalContext.event_id.get(None)
    if forget_event(event_id):
        raise stopped()
    blocks = LocalContext.blocks.get(None)
    wanted = _still_wanted(blocks, event_id) if blocks is not None and event_id is not None else None
    run_id = start_run(_owner(request, tab), wanted)
    try:
        yield run_id
    finally:
        finish_run(run_id)
        forget_event(event_id)  # stopped while it ran (an agent gone): nothing left to stop


def _still_wanted(blocks: gr.Blocks, event_id: str) -> Callable[[], bool]:
    """Whether the request ``event_id`` is still wanted: Gradio drops a cancelled request from its
    running jobs (``/gradio_api/cancel``) and marks one whose page closed or reloaded as not alive,
    while the function it called keeps running; the run's watcher then stops it (``runs``). One
    stopped by its id (``runs.stop_event``: an agent gone) is not wanted either."""
    queue = blocks._queue

    def wanted() -> bool:
        if event_stopped(event_id):
            return False
        for job in list(queue.active_jobs):
            for event in job or ():
                if event._id == event_id:
                    return bool(event.alive)
        return False

    return wanted


def _stop_queued(blocks: gr.Blocks, session_hash: str | None, api_names: tuple[str, ...]) -> int:
    """Mark this visitor's requests to ``api_names`` that Gradio holds as stopped: those still waiting in
    ``blocks``' queue, and those it has taken out of it whose run has not yet registered (their uploads
    read, the handler called, before ``tab_run``): Stop in that gap would find neither a queued request
    nor a run, and the request would go on to make its take. One whose run has registered is stopped by
    ``runs.request_stop`` as well; marking it too only hurries its watcher."""
    queue = getattr(blocks, "_queue", None)
    waiting = [
        event
        for waiting_events in list(getattr(queue, "event_queue_per_concurrency_id", {}).values())
        for event in list(waiting_events.queue)
    ]
    started = [event for job in list(getattr(queue, "active_jobs", None) or ()) for event in (job or ())]
    marked = 0
    for event in waiting + started:
        if event.session_hash == session_hash and event.fn.api_name in api_names:
            stop_event(event._id)
            marked += 1
    return marked


def stopper(blocks: gr.Blocks, tab: str, also: tuple[str, ...] = ()) -> Callable[..., None]:
    """The Stop button of ``tab``: ends this visitor's run there and its requests still in the queue
    (the tab's event has the tab's name as its ``api_name``; ``also`` names the tab's other
    events it stops: its stems, Describe, Write it, variations)."""

    def stop(request: gr.Request = None) -> None:
        # The running one, and what still waits (variations queued behind a run, too).
        request_stop(_owner(request, tab))
        session = getattr(request, "session_hash", None)
        stop_joining(session, (tab, *also))  # still in the admission check: its checks running
        _stop_queued(blocks, session, (tab, *also))

    stop.__name__ = f"stop_{tab}"
    return stop
