"""The GPU call, on ZeroGPU and off it: the ``@spaces.GPU`` entry decorator (``entry``), the GPU queue
(``in_gpu_queue``: ``ACE_STUDIO_CONCURRENCY`` calls at once, first come first served), one call path
(``call``, ``stream``: wait for the start-up build, the stop check, the first progress line, the call,
once more at twice the declared time if ZeroGPU aborted it), the errors that survive the trip back from
a worker (``worker_errors``) and the stop's message.

Each feature keeps its entry beside its work (``generation.music_gpu``, ``stems.stems_gpu``,
``describe.describe_gpu``, ``songwriter.songwriter_gpu``, ``lyrics.lyrics_gpu``), decorated here at
import, before anything touches CUDA. The start-up build (``startup``, which only ``app`` imports)
tells this module how it stands (``register``), so a call can wait for it without this module knowing
the models.

ZeroGPU's process model, which every rule here follows (details in docs/deployment.md): each call
runs in a worker forked from this process, and its arguments, results, yields and exceptions cross
by pickle. So only numpy and plain values (and the typed request, ``music_request``) go in and out,
every error a visitor can fix leaves the worker as a ``gr.Error`` carrying its message, models are
built here before any worker is forked, and no lock is held while a worker is forked.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import gradio as gr

import devices
import duration_estimate
import error_messages
import memory
import messages
import runs

T = TypeVar("T")


# ZeroGPU's refusals (the quota, one call's limit) turned into the studio's messages: ``quota.refusal``.
Refused = Callable[[gr.Error], gr.Error]


def on_zero_gpu() -> bool:
    """True on a ZeroGPU Space (or under the test harness that imitates one)."""
    return devices.on_zero_gpu()


def entry(duration: Callable[..., int]) -> Callable[[Callable], Callable]:
    """``spaces.GPU(duration=...)`` where the ``spaces`` package exists (a pass-through off ZeroGPU),
    else the identity. ``duration`` gets the entry's arguments; every entry ends with
    ``progress, run_id, multiplier`` (``call`` passes them)."""
    try:
        import spaces
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


# ---------------------------------------------------------------- the start-up build


class Warmup(Protocol):
    """What ``startup`` tells about the models it builds at start-up."""

    def running(self) -> threading.Thread | None: ...

    def built(self, kind: str) -> bool: ...

    def again(self) -> threading.Thread | None: ...

    def failure(self, kind: str) -> str: ...

    def state(self) -> dict[str, Any]: ...


_warmup: Warmup | None = None


def register(warmup: Warmup) -> None:
    """The start-up build this process runs (``startup.start_warmup``)."""
    global _warmup
    _warmup = warmup


def warmup_state() -> dict[str, Any]:
    """``{"running": bool, "elapsed": seconds, "errors": {kind: message}}`` for the status line."""
    return _warmup.state() if _warmup is not None else {"running": False, "elapsed": 0.0, "errors": {}}


def wait_for_models(kind: str, progress: Any = None, run_id: str | None = None) -> float:
    """On ZeroGPU, wait (outside any GPU call) until the start-up build is over; returns the wait.

    The whole warm-up is awaited, not only ``kind``: a worker forked while the warm-up thread holds
    a lock would inherit that lock held and wait on it forever. A model whose build failed is
    tried once more; if it fails again the visitor is told why.
    """
    if not on_zero_gpu() or _warmup is None:
        return 0.0
    started = time.time()
    # A new attempt only for a model this request needs: a lyrics model that failed to build must
    # not hold up every song.
    thread = _warmup.running() or (_warmup.again() if not _warmup.built(kind) else None)
    while thread is not None and thread.is_alive():
        if runs.is_stopped(run_id):
            raise runs.stopped()
        if progress is not None:
            progress(None, desc=messages.LOADING_MODELS.format(seconds=time.time() - started))
        thread.join(1.0)
    if not _warmup.built(kind):
        raise gr.Error(_warmup.failure(kind), title="Model not available", duration=None)
    return time.time() - started


# ---------------------------------------------------------------- one call path


def is_gpu_abort(exc: BaseException) -> bool:
    # ZeroGPU ends a call that outlives its declared duration with this message.
    return "GPU task aborted" in str(getattr(exc, "message", exc))


def with_retry(call_with: Callable[[float], T], refused: Refused | None = None, run_id: str | None = None) -> T:
    """``call_with(multiplier)``; once more with twice the declared time if ZeroGPU cut the first try
    short, after which the measured figures that declaration came from go back to the prior
    (``duration_estimate.aborted``; the retry itself still declares twice what the first try did).
    ZeroGPU's refusals pass through ``refused`` (the studio's message, with the ways that fit)."""
    as_refused = refused or (lambda exc: exc)
    try:
        return call_with(1.0)
    except gr.Error as exc:
        if not is_gpu_abort(exc):
            raise as_refused(exc) from None
    gr.Info(messages.RETRYING)
    try:
        return call_with(2.0)
    except gr.Error as exc:
        if not is_gpu_abort(exc):
            raise as_refused(exc) from None
        raise gr.Error(error_messages.OUT_OF_GPU_TIME, title=messages.OUT_OF_GPU_TIME_TITLE) from None
    finally:
        duration_estimate.aborted(run_id)


def places() -> int:
    """GPU calls at once (``ACE_STUDIO_CONCURRENCY``, default 1): the GPU queue's places (``in_gpu_queue``)."""
    return max(1, int(os.environ.get("ACE_STUDIO_CONCURRENCY", "1")))


def requests_at_once() -> int:
    """GPU requests Gradio's queue runs at once: the GPU queue's places, and one more that prepares its
    request or finishes its takes on the CPU meanwhile (the finish, previews, map and record run after
    the GPU call, out of the GPU queue: the next visitor's call starts as soon as the GPU work ends)."""
    return places() + 1


_queue = threading.Condition()
_waiting: collections.deque = collections.deque()
_inside = 0


@contextlib.contextmanager
def in_gpu_queue(run_id: str | None, progress: Any = None, stop_message: str = messages.NOT_STARTED) -> Iterator[None]:
    """A place in the GPU queue for one call, first come first served; Stop leaves the queue."""
    global _inside
    me = object()
    with _queue:
        _waiting.append(me)
        try:
            while True:
                if runs.is_stopped(run_id):  # looked at once more as its place comes: a Stop while it waited
                    raise runs.stopped(stop_message)
                if _inside < places() and _waiting[0] is me:
                    break
                if progress is not None:
                    ahead = _inside + _waiting.index(me)
                    progress(None, desc=messages.IN_GPU_QUEUE.format(ahead=ahead, s="s" * (ahead != 1)))
                _queue.wait(0.25)  # a Stop is a flag file: looked at four times a second
            _inside += 1
        finally:
            _waiting.remove(me)
            _queue.notify_all()
    try:
        yield
    finally:
        with _queue:
            _inside -= 1
            _queue.notify_all()


_imports: threading.Thread | None = None


def register_imports(thread: threading.Thread) -> None:
    """Start-up's imports (``startup.import_later``), which every call waits for (``wait_for_imports``)."""
    global _imports
    _imports = thread


def wait_for_imports(
    progress: Any = None, run_id: str | None = None, stop_message: str = messages.NOT_STARTED
) -> float:
    """Wait until start-up's imports are over; returns the wait. A ZeroGPU worker forked while they run
    would inherit a module's import lock held and wait on it for ever (a loop's call would hang its 60 s);
    elsewhere the call needs them all the same."""
    started = time.time()
    while _imports is not None and _imports.is_alive():
        if runs.is_stopped(run_id):
            raise runs.stopped(stop_message)
        if progress is not None:
            progress(None, desc=messages.LOADING_LIBRARIES.format(seconds=time.time() - started))
        _imports.join(0.25)
    return time.time() - started


def _ready(needs: tuple[str, ...], progress: Any, run_id: str | None, stop_message: str) -> float:
    """The wait for start-up's imports and the models ``needs``, then the stop check: the steps before
    every call."""
    waited = wait_for_imports(progress, run_id, stop_message) + sum(
        wait_for_models(kind, progress, run_id) for kind in needs
    )
    if runs.is_stopped(run_id):
        raise runs.stopped(stop_message)
    return waited


def call(
    gpu_entry: Callable[..., T],
    *args: Any,
    needs: tuple[str, ...],
    progress: Any = None,
    run_id: str | None = None,
    stop_message: str = messages.NOT_STARTED,
    starting: Callable[[], str] | None = None,
    refused: Refused | None = None,
    waited: float = 0.0,
) -> T:
    """``gpu_entry(*args, progress, run_id, multiplier)`` from the page's side: wait for the models
    ``needs`` (outside any GPU call), the stop check, ``starting()`` as the first progress line (asked
    after the wait: a model built meanwhile is said so), the call, the retry. A result with
    ``timings`` (a dict's, or a typed one's through ``waited``) gets the wait as ``model_wait_s``, with
    ``waited``, what the caller waited already."""
    waited += _ready(needs, progress, run_id, stop_message)
    with in_gpu_queue(run_id, progress, stop_message):
        if progress is not None and starting is not None:  # after the queue: its message would outlive the wait
            progress(0, desc=starting())
        result = with_retry(lambda multiplier: gpu_entry(*args, progress, run_id, multiplier), refused, run_id)
    # What the call freed (off ZeroGPU, its decode's buffers: half a GB for 4 takes of a minute on a
    # CPU) goes back to the system before the CPU work after it, which other threads' heaps would not reuse.
    memory.trim()
    if isinstance(result, dict):  # what the finished call measured: kept here, where it outlives the worker
        duration_estimate.learn(result.pop("measured", None))
    elif dataclasses.is_dataclass(result) and hasattr(result, "measured"):  # a typed result (``run_result``)
        duration_estimate.learn(result.measured)
        result = dataclasses.replace(result, measured=None)
    if waited >= 0.5 and hasattr(result, "waited"):
        result = result.waited(waited)
    elif waited >= 0.5 and isinstance(result, dict) and "timings" in result:
        result["timings"]["model_wait_s"] = round(waited, 3)
    return result


def stream(
    gpu_entry: Callable[..., Iterator[T]],
    *args: Any,
    needs: tuple[str, ...],
    progress: Any = None,
    run_id: str | None = None,
    stop_message: str = messages.NOT_STARTED,
    refused: Refused | None = None,
) -> Iterator[T]:
    """``call`` for an entry that yields as it goes: a try ZeroGPU aborted starts over once."""
    _ready(needs, progress, run_id, stop_message)
    with in_gpu_queue(run_id, progress, stop_message):
        yield from _tries(gpu_entry, args, progress, run_id, refused)


def _tries(
    gpu_entry: Callable[..., Iterator[T]], args: tuple, progress: Any, run_id: str | None, refused: Refused | None
) -> Iterator[T]:
    as_refused = refused or (lambda exc: exc)
    for multiplier in (1.0, 2.0):
        try:
            yield from _learning(gpu_entry(*args, progress, run_id, multiplier))
            return
        except gr.Error as exc:
            if not is_gpu_abort(exc):
                raise as_refused(exc) from None
        finally:
            if multiplier == 2.0:  # the retry is over: the aborted try's measured figures go back to the prior
                duration_estimate.aborted(run_id)
        if multiplier == 1.0:
            gr.Info(messages.RETRYING)
    raise gr.Error(error_messages.OUT_OF_GPU_TIME, title=messages.OUT_OF_GPU_TIME_TITLE)


def _learning(items: Iterator[T]) -> Iterator[T]:
    """A GPU entry's yields, less its last: the finished call's measurement, kept (``duration_estimate.learn``)."""
    for item in items:
        if isinstance(item, duration_estimate.Report):
            duration_estimate.learn(item)
        else:
            yield item


# ---------------------------------------------------------------- inside the call

# Exception classes and the ``gr.Error`` each becomes, with its feature's message.
Known = tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Callable[[Any], gr.Error]], ...]


@contextlib.contextmanager
def worker_errors(
    failed: Callable[[Exception], gr.Error], known: Known = (), stop_message: str | None = None
) -> Iterator[None]:
    """Inside a GPU entry: every exception leaves as a picklable ``gr.Error`` a musician can act on
    (a ZeroGPU worker replaces any other by its bare class name). A ``gr.Error`` passes; a stop
    (``runs.Cancelled``) says ``stop_message`` (else its own message and that nothing was saved); each
    ``known`` class its feature's message; anything else ``failed``'s, the traceback kept in the log."""
    try:
        yield
    except gr.Error:
        raise
    except runs.Cancelled as exc:
        raise runs.stopped(stop_message or f"{exc} Nothing was saved.") from None
    except Exception as exc:
        for kinds, as_error in known:
            if isinstance(exc, kinds):
                raise as_error(exc) from None
        traceback.print_exc()
        raise failed(exc) from None


def thinned(interval: float = 0.25) -> Callable[[bool], bool]:
    """Whether a progress line is due: the first, a ``final`` one, and between them one each
    ``interval`` seconds. A progress line for every token or step would flood the page: each is an event the server
    sends and the page draws (a fast card or a short take makes dozens of steps a second; Chromium's
    CPU during a 200-step render of the tiny test models went from 0.40 to 0.33 s a second)."""
    said = [-float("inf")]

    def due(final: bool) -> bool:
        now = time.monotonic()
        if not final and now - said[0] < interval:
            return False
        said[0] = now
        return True

    return due
