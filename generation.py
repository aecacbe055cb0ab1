"""One music request on the GPU side, in order: plan (Think) then render; its GPU entry; what it may cost.

``music_gpu`` is the music modes' one ``@spaces.GPU`` entry (called through ``gpu.call``); its body,
``run_music``, has the planner write the plan and blueprint when the request asks for it
(``planner``), then the shared pipeline renders the takes (``backend``). It sits above both, so
neither knows the other. ``user_errors`` converts their exceptions to messages that survive ZeroGPU's
trip back from the worker. What the call declares is the duration estimate (``duration_estimate.music_duration``),
and what it measured goes back with its result (``duration_estimate.report``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import gradio as gr

import audio
import backend
import base_model
import checks
import duration_estimate
import error_messages
import gpu
import loop_takes
import lora
import messages
import models
import music_request
import planner
import run_result
import runs
import take_latents
import text_limits
from music_request import MusicRequest

ProgressFn = backend.ProgressFn
PlanProgressFn = Callable[..., None]


def run_music(
    request: MusicRequest,
    progress: ProgressFn | None = None,
    run_id: str | None = None,
    plan_progress: PlanProgressFn | None = None,
    seam_progress: ProgressFn | None = None,
) -> run_result.Rendered:
    """The GPU-side work of every music mode: the planner when the request asks for it (``plan``),
    then the shared pipeline renders the request with what the plan decided (a loop's seam after it,
    its steps told by ``seam_progress``).

    Returns a ``run_result.Rendered``: picklable values only (numpy audio, floats, strings). ``model_load_s`` is the build
    time only when this call built the pipeline, not when it found it built or waited for it.
    """
    started = time.perf_counter()
    built_now: list[bool] = []
    be = backend.get_backend(on_load=lambda: built_now.append(True))
    request = _take_latents_fit(request, backend.latent_width())
    if request.plan is not None and be.pipe.audio_token_detokenizer is None:
        request = request.without_plan(messages.SKIP_NO_DETOKENIZER)
    render, plan = request.render, None
    if request.plan is not None:
        # One plan for the request, every take's blueprint in one batch, then one DiT call.
        report = plan_progress and (lambda stage, done, total: plan_progress(stage, done, total, render.takes))
        plan = _plan(render, request.plan, report, lambda: runs.is_stopped(run_id))
        plan = _read_as_written(be.pipe, plan, render, request.plan)
        render = render.planned(plan)
    elif request.plan_skipped is not None:
        plan = music_request.Plan(({"skipped": request.plan_skipped},) * render.takes)
    if plan is not None:  # a loop at the tempo and metre Think chose: its length in samples from them
        request, render = loop_takes.planned(request, render, plan)
    had_base = be.base is not None
    if request.source_latents is not None:  # one line a run: the take's own latents, or why the VAE reads it
        print(messages.SONG_LATENTS.format(mode=request.mode, how=request.source_latents), flush=True)
    out = be.run(render, progress=progress, run_id=run_id)
    seam = None
    if request.loop is not None:  # its wrap repainted, one more repaint in this call
        seam = loop_takes.close(
            be.run, request, render, out["audio"], progress=seam_progress or progress, run_id=run_id
        )
    made = out["audio"] if seam is None else seam.audio
    if request.plan is not None and request.plan.seconds is None and request.loop is None:  # Think chose it: cut there
        chosen = plan.chosen_seconds(planner.FALLBACK_SECONDS)
        made = made[..., : int(round(chosen * audio.SAMPLE_RATE))]
    on_base = render.pipeline.task_type in base_model.TASKS
    ran = (base_model.source(), models.VARIANTS[models.BASE_VARIANT]) if on_base else (be.source, be.variant)
    timings = {"model_load_s": round(be.load_seconds, 3) if built_now else 0.0, "pipeline_s": round(out["seconds"], 3)}
    if seam is not None:  # spliced on the CPU (``modes.finish``), the loop as made (Think's tempo)
        timings["seam_s"] = seam.seconds
    if on_base and not had_base:
        timings["base_load_s"] = round(be.base_seconds, 3)
    # A loop keeps no synced lines: it is not sung where the first render sang (``loop_takes.close``).
    lyrics = out.get("lyrics") if seam is None else None
    if lyrics is not None:  # line times and score per take (``lrc``); ``takes`` fits them to each take
        timings["lyrics_s"] = out["lyrics_s"]
    if plan is not None:
        timings["planner_s"] = round(plan.takes[0].get("seconds", 0.0), 3)  # one plan for all takes
    loads = {"music": timings["model_load_s"], "base": timings.get("base_load_s", 0.0)}
    return run_result.Rendered(
        audio=made,
        latents=out["latents"] if seam is None else None,  # each take's own, kept beside it (``take_latents``)
        # What actually ran: a repo id, or a local folder by name (its variant cannot be known).
        model={**backend.model_identity(*ran), "device": be.device},
        timings=timings,
        lyrics=lyrics,
        planners=None if plan is None else list(plan.takes),
        seam=seam,
        loop=request.loop if seam is not None else None,
        # The record says what the run read (``job_record.of``).
        source_latents=request.source_latents,
        measured=_measured(request, render, plan, out, seam, loads, started),
    )


def _take_latents_fit(request: MusicRequest, width: int | None) -> MusicRequest:
    """The request with the VAE reading its song where a take's own latents are not as wide as this
    model's (the admission check reads them only once the model is built: ``preparing``)."""
    kept = request.render.pipeline.src_latents
    why = None if kept is None or width is None else take_latents.misfit(int(kept.shape[-1]), width)
    if why is None:
        return request
    render = request.render.with_pipeline(src_latents=None)
    return dataclasses.replace(request, source_latents=why, render=render)


def _measured(
    request: MusicRequest,
    render: music_request.Render,
    plan: music_request.Plan | None,
    out: dict[str, Any],
    seam: run_result.Seam | None,
    loads: dict[str, float],
    started: float,
) -> duration_estimate.Report:
    """What this call measured of its phases, at the shape that ran (the length Think chose, if it did;
    the steps that ran, as the sampler counted them)."""
    ran = out["phases"]
    phases = {"start": ran["start"], "dit": ran["dit"], "vae": ran["vae"]}
    counts: dict[str, float] = {"dit": max(0, ran["steps"] - 1)}
    captured = {"start": ran["captured"], "dit": ran["captured"]}
    if "lyrics_s" in out:
        phases["align"] = out["lyrics_s"]
    if seam is not None:
        phases["seam"] = seam.seconds
    for name, (seconds, count, on_graphs) in (plan.measured if plan is not None else {}).items():
        phases[name], counts[name], captured[name] = seconds, count, on_graphs
    # The length rendered, as the declaration read it (Extend's is the source and what is added; its
    # pipeline is told the source's own length), else the one Think chose.
    shape = duration_estimate.MusicShape.of(request)
    chose = request.plan is not None and request.plan.seconds is None
    seconds = float(render.pipeline.audio_duration) if chose else shape.seconds
    shape = dataclasses.replace(shape, seconds=seconds, steps=int(ran["steps"]))
    return duration_estimate.report("music", dataclasses.asdict(shape), phases, started, counts, captured, loads)


def _read_as_written(
    pipe: Any, plan: music_request.Plan, render: music_request.Render, args: music_request.PlanArgs
) -> music_request.Plan:
    """``plan`` with its caption within what the text encoder reads of one (``text_limits.fit``): the
    planner's caption is never refused after the plan. Each take's entry keeps the caption as written
    (its blueprint was asked with it: a plan brought back plans the same) and says what the model read
    (``caption_read``) and why (``caption_fit``)."""
    written = plan.pipeline.get("prompt")
    if not isinstance(written, str):
        return plan
    read, said = text_limits.fit(pipe, "prompt", written, render.planned(plan).pipeline, args.caption)
    if said is None:
        return plan
    print(f"Think: the planner's caption ({said['written_tokens']} tokens) read as {said['kept']}", flush=True)
    takes = tuple({**entry, "caption_read": read, "caption_fit": said} for entry in plan.takes)
    return dataclasses.replace(plan, takes=takes, pipeline={**plan.pipeline, "prompt": read})


def fitted(texts: dict[str, str], language: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Texts a model wrote for the form (*Write it*'s caption and lyrics, by field) within what the music
    model reads of each (``text_limits.fit``), and what was done to which; as written where the music
    model cannot be built here (the admission check counts them once it is)."""
    try:
        pipe = backend.get_backend().pipe
    except models.ModelLoadError:
        return dict(texts), {}
    read = {field: text_limits.fit(pipe, field, text, language=language) for field, text in texts.items()}
    return {field: text for field, (text, _) in read.items()}, {f: said for f, (_, said) in read.items() if said}


def _plan(
    render: music_request.Render, args: music_request.PlanArgs, report: Any, should_stop: Any
) -> music_request.Plan:
    """``planner.plan_request``; for variations (``noise``: every take the same seed) the take's one
    blueprint, written once as the take's was (its place in its batch) and given to every variation."""
    if render.noise is None:
        return planner.plan_request(render, args, report, should_stop)
    one = planner.plan_request(dataclasses.replace(render, seeds=render.seeds[:1]), args, report, should_stop)
    changes = dict(one.pipeline)
    if "audio_codes" in changes:
        changes["audio_codes"] = changes["audio_codes"] * render.takes
    return music_request.Plan(one.takes[:1] * render.takes, changes, one.measured)


def planned_if_possible(
    request: MusicRequest, progress: Any = None, run_id: str | None = None
) -> tuple[MusicRequest, float]:
    """On ZeroGPU, Think only with the planner built in this process (a model built inside a worker
    dies with it; a failed start-up build is tried once more here): otherwise the song is made
    without the plan and its records say why. Elsewhere ``request`` as it is. Also the seconds
    waited for the start-up build."""
    if request.plan is None or not gpu.on_zero_gpu():
        return request, 0.0
    started = time.monotonic()
    try:
        gpu.wait_for_models("planner", progress, run_id)
    except gr.Error as exc:
        if runs.is_stop(exc):
            raise
        error = planner.load_error() or gpu.warmup_state()["errors"].get("planner", "?")
        return request.without_plan(messages.SKIP_NOT_LOADED.format(error=error)), time.monotonic() - started
    return request, time.monotonic() - started


def model_missing(error: str) -> str:
    """A music model that could not be built, with the message the page shows (also in the header): a
    copy that is not on this machine says so first, with what to do; any other failure is named, then
    what to do."""
    return error if error.startswith(messages.WEIGHTS_LEADS) else messages.MODEL_MISSING.format(error=error)


def _failed(exc: Exception) -> gr.Error:
    # Out of GPU memory, a pipeline error: the log keeps the traceback.
    return gr.Error(
        error_messages.MUSIC_FAILED.format(kind=type(exc).__name__),
        title="Generation failed",
    )


def _not_built(exc: Exception) -> gr.Error:
    # Stays on the page until dismissed (duration=None): it says what to do next.
    return gr.Error(model_missing(str(exc)), title="Model not available", duration=None)


# The music model's and the planner's exceptions, each as the message of the field or step to change.
KNOWN: gpu.Known = (
    (lora.BadLora, lambda exc: checks.InputError(str(exc), "lora")),
    (text_limits.TooLong, lambda exc: checks.InputError(str(exc), exc.param)),
    ((audio.AudioError, backend.ModeUnavailable, backend.BrokenOutput), lambda exc: gr.Error(str(exc))),
    (base_model.Unavailable, lambda exc: gr.Error(str(exc), title="Parts not available")),
    (models.ModelLoadError, _not_built),
)


def user_errors() -> contextlib.AbstractContextManager[None]:
    """The music model's and the planner's exceptions as picklable ``gr.Error``s a musician can act
    on (``gpu.worker_errors``), inside a GPU entry."""
    return gpu.worker_errors(_failed, KNOWN)


def music_duration(
    request: MusicRequest, progress: Any = None, run_id: str | None = None, multiplier: float = 1.0
) -> int:
    """Seconds of GPU time ``music_gpu`` declares (``duration_estimate``): called by ``spaces`` with the same arguments."""
    return duration_estimate.music_duration(duration_estimate.MusicShape.of(request), multiplier, run_id)


@gpu.entry(duration=music_duration)
def music_gpu(
    request: MusicRequest, progress: Any = None, run_id: str | None = None, multiplier: float = 1.0
) -> run_result.Rendered:
    """The one GPU entry of the music modes (variations too): runs ``request``, returns its ``Rendered``
    (numpy audio and plain values). ``multiplier`` is for the duration."""
    with user_errors():
        chosen: dict[str, int] = {}  # the length Think chose, once it has (Length: auto)
        steps, seam = _step_reporter(progress, chosen), _step_reporter(progress, chosen, messages.LOOP_CLOSING)
        return run_music(request, steps, run_id, _plan_reporter(progress, chosen), seam)


def _step_reporter(progress: Any, chosen: dict[str, int], message: str = messages.STEP) -> ProgressFn | None:
    """The render's progress (``message``: a loop's seam says what it is): the first and last step, and a
    few times a second between them."""
    # Built here, inside the GPU call: a closure cannot be pickled into the worker, gr.Progress can.
    if progress is None:
        return None
    due = gpu.thinned()

    def report(step: int, total: int) -> None:
        if due(step >= total):
            progress((step, total), desc=message.format(step=step, total=total) + _chosen(chosen), unit="steps")

    return report


def _chosen(chosen: dict[str, int]) -> str:
    """What the progress adds once Think has chosen the length: the visitor hears how long before it is made."""
    return messages.PLAN_CHOSE.format(length=audio.clock(chosen["seconds"])) if "seconds" in chosen else ""


def _plan_reporter(progress: Any, chosen: dict[str, int]) -> PlanProgressFn | None:
    """The planner's progress: a token at a time would flood the page, so a few times a second.
    With Length: auto, the length Think chose is said at once and kept in every progress message after it."""
    if progress is None:
        return None
    due = gpu.thinned()

    def report(stage: str, done: int | None, total: int | None, takes: int = 1) -> None:
        if stage == "chosen":
            chosen["seconds"] = int(done or 0)
            progress(None, desc=messages.PLAN_CHOSEN.format(length=audio.clock(chosen["seconds"])))
            return
        if not due(done == total):
            return
        if stage == "thinking":
            progress(None, desc=messages.PLAN_THINKING.format(done=done))
        else:
            which = messages.PLAN_SKETCHING_TAKES.format(takes=takes) if takes > 1 else ""
            said = messages.PLAN_SKETCHING.format(which=which, done=done, total=total, chosen=_chosen(chosen))
            progress((done, total), desc=said, unit="codes")

    return report


def starting_message() -> str:
    """The first progress message of a music request: a cold model says how much longer it takes."""
    if backend.is_warm():
        return messages.STARTING
    return messages.LOADING_MUSIC.format(seconds=duration_estimate.load_seconds("music"))
