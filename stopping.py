"""Stop, as the page knows it: the error a stopped run ends with (``stopped``), told from any other
(``is_stop``) and said as a stop (``said_stopped``: a grey note, not an error); a tab's run registered so that
its Stop button, and only it, ends it (``tab_run``), and the Stop button itself (``stopper``: the run and this
visitor's requests still in the queue). A run's Stop flag, asked and read, is ``runs``'."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import gradio as gr

import progress_words
import runs

STOPPED = runs.STOPPED


def stopped(words: str = progress_words.NOT_STARTED) -> gr.Error:
    """The error a stopped run ends with: its title is the one the page knows a stop by."""
    return gr.Error(words, title=STOPPED)


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
    if runs.forget_event(event_id):
        raise stopped()
    blocks = LocalContext.blocks.get(None)
    wanted = _still_wanted(blocks, event_id) if blocks is not None and event_id is not None else None
    run_id = runs.start_run(_owner(request, tab), wanted)
    try:
        yield run_id
    finally:
        runs.finish_run(run_id)
        runs.forget_event(event_id)  # stopped while it ran (an agent gone): nothing left to stop


def _still_wanted(blocks: gr.Blocks, event_id: str) -> Callable[[], bool]:
    """Whether the request ``event_id`` is still wanted: Gradio drops a cancelled request from its
    running jobs (``/gradio_api/cancel``) and marks one whose page closed or reloaded as not alive,
    while the function it called keeps running; the run's watcher then stops it (``runs``). One
    stopped by its id (``runs.stop_event``: an agent gone) is not wanted either."""
    queue = blocks._queue

    def wanted() -> bool:
        if runs.event_stopped(event_id):
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
    read, the handler called, before ``tab_run``): Stop in that gap found neither a queued request
    nor a run, and the request went on to make its take. One whose run has registered is stopped by
    ``runs.request_stop`` as well; marking it too only hurries its watcher."""
    queue = getattr(blocks, "_queue", None)
    waiting = [
        event
        for line in list(getattr(queue, "event_queue_per_concurrency_id", {}).values())
        for event in list(line.queue)
    ]
    started = [event for job in list(getattr(queue, "active_jobs", None) or ()) for event in (job or ())]
    marked = 0
    for event in waiting + started:
        if event.session_hash == session_hash and event.fn.api_name in api_names:
            runs.stop_event(event._id)
            marked += 1
    return marked


def stopper(blocks: gr.Blocks, tab: str, also: tuple[str, ...] = ()) -> Callable[..., None]:
    """The Stop button of ``tab``: ends this visitor's run there and its requests still in the queue
    (the tab's event has the tab's name as its ``api_name``; ``also`` names the tab's other
    events it stops: its stems, Describe, Write it, variations)."""

    def stop(request: gr.Request = None) -> None:
        # The running one, and what still waits (variations queued behind a run, too).
        runs.request_stop(_owner(request, tab))
        session = getattr(request, "session_hash", None)
        runs.stop_joining(session, (tab, *also))  # still at the door: its checks running
        _stop_queued(blocks, session, (tab, *also))

    stop.__name__ = f"stop_{tab}"
    return stop
