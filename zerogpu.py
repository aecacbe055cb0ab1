"""Everything that exists only for Hugging Face Spaces and ZeroGPU, in one place.

- ``music_gpu``, ``lyrics_gpu``, ``describe_gpu``, ``songwriter_gpu`` and ``stems_gpu``: the five
  ``@spaces.GPU`` entries, decorated at import with duration callables (``spaces`` is absent on a
  Mac and a pass-through off ZeroGPU); variations of a take go through ``music_gpu``.
- ``run_music``, ``stream_lyrics``, ``run_describe``, ``run_songwriter`` and ``run_stems``: how the
  page calls them: wait for the models outside the GPU call, then call, and once more at twice the
  declared time if ZeroGPU aborted the first try.
- ``start_warmup()``: build the models in the main process at start-up (the Hub-cache mirror is
  ``hub.bootstrap``).

ZeroGPU's process model, which every rule here follows (details in docs/deployment.md): each GPU
call runs in a worker process forked from this one, and its arguments, results, yields and
exceptions cross by pickle. So only numpy and plain values go in and out, every error a visitor can
fix leaves the worker as a ``gr.Error`` carrying its words, models are built here before any worker
is forked (a model built in a worker dies with it), and no lock is held while a worker is forked.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import gradio as gr

import audio
import backend
import budget
import describe
import devices
import lyrics
import models
import modes
import music
import planner
import quota
import runs
import songwriter
import stems
import tooltips as tips

T = TypeVar("T")


def on_zero_gpu() -> bool:
    """True on a ZeroGPU Space (or under the test harness that imitates one)."""
    return devices.on_zero_gpu()


def on_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


# ---------------------------------------------------------------- warm-up

_warmup: threading.Thread | None = None
_warmup_since: float | None = None
_warmup_errors: dict[str, str] = {}
_warmup_lock = threading.Lock()


def warmup_enabled() -> bool:
    """Always on ZeroGPU (models must exist before a worker is forked); on a Space by default
    (``ACE_STUDIO_WARMUP=0`` turns it off there); elsewhere only with ``ACE_STUDIO_WARMUP=1``."""
    if on_zero_gpu():
        return True
    return os.environ.get("ACE_STUDIO_WARMUP", "1" if on_space() else "0") == "1"


def _built(kind: str) -> bool:
    if kind == "planner":
        return planner.is_loaded() or not planner.enabled()
    if kind == "stems":  # without its weights there is nothing to build: the Stems button says so
        return stems.is_loaded() or stems.missing_reason() is not None
    return backend.is_warm() if kind == "music" else lyrics.is_loaded()


def _warm() -> None:
    """Build whatever is not built yet, music first; a failure is kept for the requests to report."""
    builds = (("music", backend.get_backend), ("planner", planner.get_planner), ("lyrics", lyrics.get_writer),
              ("stems", stems.get_separator))  # fmt: skip
    for kind, build in builds:
        if _built(kind):
            continue
        try:
            build()
            _warmup_errors.pop(kind, None)
        except Exception as exc:  # the requests that need this model report it to the visitor
            _warmup_errors[kind] = str(exc)
            print(f"Warm-up: the {kind} model could not be built: {exc}")


def start_warmup() -> threading.Thread | None:
    """Start building both models in a background thread of this process, unless they are built,
    a build is already under way, or warm-up is off. Returns the thread doing it, if any."""
    global _warmup, _warmup_since
    if not warmup_enabled():
        return None
    with _warmup_lock:
        if _warmup is not None and _warmup.is_alive():
            return _warmup
        if all(_built(kind) for kind in ("music", "planner", "lyrics", "stems")):
            return None
        _warmup_since = time.time()
        _warmup = threading.Thread(target=_warm, name="ace-studio-warmup", daemon=True)
        _warmup.start()
        return _warmup


def warmup_state() -> dict[str, Any]:
    """``{"running": bool, "elapsed": seconds, "errors": {kind: message}}`` for the status line."""
    running = _warmup is not None and _warmup.is_alive()
    elapsed = time.time() - _warmup_since if running and _warmup_since is not None else 0.0
    return {"running": running, "elapsed": elapsed, "errors": dict(_warmup_errors)}


def wait_for_models(kind: str, progress: Any = None, run_id: str | None = None) -> float:
    """On ZeroGPU, wait (outside any GPU call) until the start-up build is over; returns the wait.

    The whole warm-up is awaited, not only ``kind``: a worker forked while the warm-up thread holds
    a lock would inherit that lock held and wait on it forever. A model whose build failed is
    tried once more; if it fails again the visitor is told why.
    """
    if not on_zero_gpu():
        return 0.0
    started = time.time()
    running = _warmup if _warmup is not None and _warmup.is_alive() else None
    # A new attempt only for a model this request needs: a lyrics model that failed to build must
    # not hold up every song.
    thread = running or (start_warmup() if not _built(kind) else None)
    while thread is not None and thread.is_alive():
        if runs.is_stopped(run_id):
            raise gr.Error("Stopped before it started. Nothing was saved.", title=runs.STOPPED)
        if progress is not None:
            progress(None, desc=f"The studio is still loading its models ({time.time() - started:.0f} s so far)…")
        thread.join(1.0)
    if not _built(kind):
        what = {"music": "music model", "planner": "planner", "stems": "stem separation model"}.get(
            kind, "lyrics model"
        )
        error = _warmup_errors.get(kind, "unknown error")
        message = music.model_missing(error) if kind == "music" else f"The {what} could not be loaded: {error}"
        raise gr.Error(message, title="Model not available", duration=None)
    return time.time() - started


# ---------------------------------------------------------------- the GPU entries


def _gpu(duration: Callable[..., int]) -> Callable[[Callable], Callable]:
    """``spaces.GPU(duration=...)`` where the ``spaces`` package exists, else the identity."""
    try:
        import spaces
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def music_duration(
    mode: str,
    params: dict[str, Any],
    request: dict[str, Any],
    progress: Any = None,
    run_id: str | None = None,
    multiplier: float = 1.0,
) -> int:
    """Seconds of GPU time ``music_gpu`` declares: called by ``spaces`` with the same arguments."""
    return music.estimate_duration(mode, params, multiplier)


def _thinned(interval: float = 0.25) -> Callable[[bool], bool]:
    """Whether a progress line is due: the first, a ``final`` one, and between them one each
    ``interval`` seconds. A line a token or a step would flood the page: each is an event the server
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


def _step_reporter(progress: Any, chosen: dict[str, int]) -> music.ProgressFn | None:
    """The render's progress: the first and last step, and a few times a second between them."""
    # Built here, inside the GPU call: a closure cannot be pickled into the worker, gr.Progress can.
    if progress is None:
        return None
    due = _thinned()

    def report(step: int, total: int) -> None:
        if due(step >= total):
            progress((step, total), desc=f"Step {step}/{total}{_chosen(chosen)}", unit="steps")

    return report


def _chosen(chosen: dict[str, int]) -> str:
    """What the progress adds once Think has chosen the length: the visitor hears how long before it is made."""
    return f" · Think chose {audio.clock(chosen['seconds'])}" if "seconds" in chosen else ""


def _plan_reporter(progress: Any, chosen: dict[str, int]) -> Callable[..., None] | None:
    """The planner's progress: a token at a time would flood the page, so a few times a second.
    With Length: auto, the length Think chose is said at once and kept in every line after it."""
    if progress is None:
        return None
    due = _thinned()

    def report(stage: str, done: int | None, total: int | None, takes: int = 1) -> None:
        if stage == "chosen":
            chosen["seconds"] = int(done or 0)
            progress(None, desc=f"Think chose {audio.clock(chosen['seconds'])} for the song; now its blueprint…")
            return
        if not due(done == total):
            return
        if stage == "thinking":
            progress(None, desc=f"Thinking, the planner writes the song's plan ({done} tokens)…")
        else:
            which = f"s of {takes} takes" if takes > 1 else ""
            progress(
                (done, total), desc=f"Writing the blueprint{which}, {done}/{total} codes{_chosen(chosen)}", unit="codes"
            )

    return report


@_gpu(duration=music_duration)
def music_gpu(
    mode: str,
    params: dict[str, Any],
    request: dict[str, Any],
    progress: Any = None,
    run_id: str | None = None,
    multiplier: float = 1.0,
) -> dict[str, Any]:
    """The one GPU entry of the music modes: runs ``request`` and returns numpy audio and plain values.

    ``mode``, ``params`` and ``multiplier`` are for the duration estimate.
    """
    with music.user_errors():
        chosen: dict[str, int] = {}  # the length Think chose, once it has (Length: auto)
        return music.run_music(request, _step_reporter(progress, chosen), run_id, _plan_reporter(progress, chosen))


def lyrics_duration(
    request: dict[str, Any], language_name: str, run_id: str | None = None, multiplier: float = 1.0
) -> int:
    return lyrics.estimate_duration(request, multiplier)


@_gpu(duration=lyrics_duration)
def lyrics_gpu(
    request: dict[str, Any], language_name: str, run_id: str | None = None, multiplier: float = 1.0
) -> Iterator[str]:
    """The GPU entry of the lyrics writer; yields the text written so far."""
    try:
        yield from lyrics.stream_lyrics(lyrics.Request(**request), language_name, run_id=run_id)
    except lyrics.Stopped:
        raise gr.Error("Stopped. What the writer wrote so far is kept.", title=runs.STOPPED) from None
    except models.ModelLoadError as exc:
        raise gr.Error(f"The lyrics model could not be loaded: {exc}", title="Model not available") from None
    except gr.Error:
        raise
    except Exception as exc:
        raise gr.Error(
            f"The writer stopped partway ({type(exc).__name__}: {exc}). What it wrote so far is kept; try again."
        ) from None


def is_gpu_abort(exc: BaseException) -> bool:
    # ZeroGPU ends a call that outlives its declared duration with this message.
    return "GPU task aborted" in str(getattr(exc, "message", exc))


OUT_OF_GPU_TIME = "The GPU time ran out twice for this request. Try a shorter song or fewer steps or takes."
RETRYING = "Retrying with a longer GPU budget…"


def with_retry(call: Callable[[float], T], ways: quota.Ways | None = None) -> T:
    """``call(multiplier)``; once more with twice the declared time if ZeroGPU cut the first try short.
    ZeroGPU's refusals (the quota, one call's limit) in the studio's words, with ``ways`` that fit."""
    try:
        return call(1.0)
    except gr.Error as exc:
        if not is_gpu_abort(exc):
            raise quota.in_words(exc, ways) from None
    gr.Info(RETRYING)
    try:
        return call(2.0)
    except gr.Error as exc:
        if not is_gpu_abort(exc):
            raise quota.in_words(exc, ways) from None
        raise gr.Error(OUT_OF_GPU_TIME, title="Out of GPU time") from None


def _plan_or_not(job: modes.Job, progress: Any, run_id: str | None) -> modes.Job:
    """On ZeroGPU, Think only where it can run: with the planner built in this process (a model
    built inside a worker dies with it; a failed start-up build is tried once more here) and
    within one call's time limit. Otherwise the song is made without the plan and says why."""
    reason = None
    try:
        wait_for_models("planner", progress, run_id)
    except gr.Error as exc:
        if exc.title == "Stopped":
            raise
        reason = f"the planner could not be loaded ({planner.load_error() or _warmup_errors.get('planner', '?')})"
    if reason is None and job.params.get("audio_duration") == -1 and not job.request["plan"].get("given"):
        longest = budget.longest(job.mode, job.params)  # Think chooses: no longer than the budget allows
        if longest is None:
            reason = f"no song planned by Think fits the {budget.max_gpu_seconds():.0f} s one request may take here"
        elif longest < int(job.params.get("longest") or 600):
            job = budget.with_longest(job, longest)
    if reason is None and budget.over(job.mode, job.params) and not budget.over(job.mode, {**job.params, "think": 0}):
        reason = (
            f"planning and making this song would take longer than the {budget.max_gpu_seconds():.0f} s one "
            "request may take here; fewer takes or a shorter song leave room for it"
        )
    if reason is None:
        return job
    request = {k: v for k, v in job.request.items() if k != "plan"}
    return dataclasses.replace(job, request={**request, "plan_skipped": reason})


def run_music(job: modes.Job, progress: Any = None, run_id: str | None = None) -> dict[str, Any]:
    """Run a prepared job on the GPU (page side): wait for the model, call, retry once on abort."""
    waited = wait_for_models("music", progress, run_id)
    if "plan" in job.request and on_zero_gpu():
        job = _plan_or_not(job, progress, run_id)
    if runs.is_stopped(run_id):
        raise gr.Error("Stopped before it started. Nothing was saved.", title=runs.STOPPED)
    if progress is not None:
        if backend.is_warm():
            progress(0, desc="Starting…")
        else:
            progress(0, desc=f"Loading the model… the first song takes about {backend.COLD_START_SECONDS:.0f} s longer")
    ways = quota.music_ways(job.mode, job.params)
    result = with_retry(lambda m: music_gpu(job.mode, job.params, job.request, progress, run_id, m), ways)
    if waited >= 0.5:
        result["timings"]["model_wait_s"] = round(waited, 3)
    return result


def stream_lyrics(
    request: dict[str, Any], language_name: str, progress: Any = None, run_id: str | None = None
) -> Iterator[str]:
    """The lyrics writer's text as it grows (page side); a try aborted by ZeroGPU starts over once."""
    wait_for_models("lyrics", progress, run_id)
    if runs.is_stopped(run_id):
        raise gr.Error("Stopped before the writer started.", title=runs.STOPPED)
    for multiplier in (1.0, 2.0):
        try:
            yield from lyrics_gpu(request, language_name, run_id, multiplier)
            return
        except gr.Error as exc:
            if not is_gpu_abort(exc):
                raise quota.in_words(exc) from None
        if multiplier == 1.0:
            gr.Info(RETRYING)
    raise gr.Error(OUT_OF_GPU_TIME, title="Out of GPU time")


def describe_duration(song: Any, progress: Any = None, run_id: str | None = None, multiplier: float = 1.0) -> int:
    """Seconds of GPU time ``describe_gpu`` declares, from the song's length."""
    return describe.estimate_duration(audio.seconds(song), multiplier)


@_gpu(duration=describe_duration)
def describe_gpu(song: Any, progress: Any = None, run_id: str | None = None, multiplier: float = 1.0) -> dict[str, Any]:
    """The GPU entry of *Describe*: a song (``[2, samples]`` at 48 kHz) in, the planner's notes and
    lyrics out (plain values); its own words for a stop, an unusable description, a missing planner."""
    with music.user_errors():
        return describe.describe_song(song, describe.reporter(progress), run_id)


def run_describe(song: Any, progress: Any = None, run_id: str | None = None) -> dict[str, Any]:
    """*Describe* on the GPU (page side): wait for the start-up build, call, retry once on abort."""
    wait_for_models("music", progress, run_id)
    wait_for_models("planner", progress, run_id)
    if runs.is_stopped(run_id):
        raise gr.Error(tips.DESCRIBE_STOPPED, title=runs.STOPPED)
    return with_retry(lambda m: describe_gpu(song, progress, run_id, m))


def songwriter_duration(
    idea: str, instrumental: bool, language: str, seed: int, progress: Any, run_id: str | None, multiplier: float
) -> int:
    """Seconds of GPU time ``songwriter_gpu`` declares: the same for every idea (the bounds')."""
    return songwriter.estimate_duration(multiplier)


@_gpu(duration=songwriter_duration)
def songwriter_gpu(
    idea: str, instrumental: bool, language: str, seed: int, progress: Any, run_id: str | None, multiplier: float
) -> dict[str, Any]:
    """The GPU entry of *Write it*: an idea in, the planner's fields and lyrics out (plain values)."""
    with music.user_errors():
        return songwriter.write(idea, instrumental, language, seed, songwriter.reporter(progress), run_id)


def run_songwriter(
    idea: str, instrumental: bool, language: str, seed: int, progress: Any = None, run_id: str | None = None
) -> dict[str, Any]:
    """*Write it* on the GPU (page side): wait for the start-up build, call, retry once on abort."""
    wait_for_models("planner", progress, run_id)
    if runs.is_stopped(run_id):
        raise gr.Error(tips.WRITE_IT_STOPPED, title=runs.STOPPED)
    return with_retry(lambda m: songwriter_gpu(idea, instrumental, language, seed, progress, run_id, m))


def stems_duration(mix: Any, progress: Any = None, run_id: str | None = None, multiplier: float = 1.0) -> int:
    """Seconds of GPU time ``stems_gpu`` declares, from the take's length."""
    return stems.estimate_duration(mix.shape[-1] / stems.SAMPLE_RATE, multiplier)


@_gpu(duration=stems_duration)
def stems_gpu(mix: Any, progress: Any = None, run_id: str | None = None, multiplier: float = 1.0) -> dict[str, Any]:
    """The GPU entry of stem separation: a take (``[2, samples]`` at 48 kHz) in, vocals, drums and
    bass out (numpy, picklable); a stop leaves the worker as a picklable "Stopped" ``gr.Error``."""
    report = None
    if progress is not None:

        def report(done: int, total: int) -> None:
            progress((done, total), desc=f"Splitting into stems, segment {done} of {total}", unit="segments")

    try:
        return stems.separate(mix, run_id, report)
    except runs.Cancelled:
        raise gr.Error(tips.STEMS_STOPPED, title=runs.STOPPED) from None
    except stems.WeightsMissing as exc:
        raise gr.Error(tips.STEMS_MISSING.format(error=exc), title="Stems not available") from None
    except Exception as exc:  # out of memory, a broken weights file: words, not a traceback
        raise gr.Error(tips.STEMS_FAILED.format(error=f"{type(exc).__name__}: {exc}")) from None


def run_stems(mix: Any, progress: Any = None, run_id: str | None = None) -> dict[str, Any]:
    """Split a take on the GPU (page side): wait for the start-up build, call, retry once on abort."""
    waited = wait_for_models("stems", progress, run_id)
    if runs.is_stopped(run_id):
        raise gr.Error("Stopped before it started. Nothing was saved.", title=runs.STOPPED)
    if progress is not None:
        progress(0, desc="Splitting into stems…" if stems.is_loaded() else "Loading the stem separation model…")
    result = with_retry(lambda m: stems_gpu(mix, progress, run_id, m))
    if waited >= 0.5:
        result["timings"]["model_wait_s"] = round(waited, 3)
    return result
