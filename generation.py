"""One music request on the GPU side, in order: plan (Think) then render; its GPU entry; what it may cost.

``music_gpu`` is the music modes' one ``@spaces.GPU`` entry (through ``gpu``'s door); its body,
``run_music``, has the planner write the plan and blueprint when the request asks for it
(``planner``), then the shared pipeline renders the takes (``backend``). It sits above both, so
neither knows the other. ``user_errors`` turns their exceptions into words that survive ZeroGPU's
trip back from the worker; ``estimate_duration`` is the GPU time the call declares.
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
import devices
import gpu
import lora
import lrc
import models
import music_request
import planner
import runs
import tooltips as tips
from music_request import MusicRequest

ProgressFn = backend.ProgressFn
PlanProgressFn = Callable[..., None]


def run_music(
    request: MusicRequest,
    progress: ProgressFn | None = None,
    run_id: str | None = None,
    plan_progress: PlanProgressFn | None = None,
) -> dict[str, Any]:
    """The GPU-side work of every music mode: the planner when the request asks for it (``plan``),
    then the shared pipeline renders the request with what the plan decided.

    Returns picklable values only (numpy audio, floats, strings). ``model_load_s`` is the build
    time only when this call built the pipeline, not when it found it built or waited for it.
    """
    built_now: list[bool] = []
    be = backend.get_backend(on_load=lambda: built_now.append(True))
    if request.plan is not None and be.pipe.audio_token_detokenizer is None:
        request = request.without_plan("this music model has no audio detokenizer, so it cannot read a blueprint")
    render, plan = request.render, None
    if request.plan is not None:
        # One plan for the request, every take's blueprint in one batch, then one DiT call.
        report = plan_progress and (lambda stage, done, total: plan_progress(stage, done, total, render.takes))
        plan = _plan(render, request.plan, report, lambda: runs.is_stopped(run_id))
        render = render.planned(plan)
    elif request.plan_skipped is not None:
        plan = music_request.Plan(({"skipped": request.plan_skipped},) * render.takes)
    had_base = be.base is not None
    out = be.run(render, progress=progress, run_id=run_id)
    if request.plan is not None and request.plan.seconds is None:  # Think chose the length: cut there
        chosen = plan.chosen_seconds(planner.FALLBACK_SECONDS)
        out["audio"] = out["audio"][..., : int(round(chosen * audio.SAMPLE_RATE))]
    on_base = render.pipeline.get("task_type") in backend.PART_TASKS
    ran = (base_model.source(), models.VARIANTS[models.BASE_VARIANT]) if on_base else (be.source, be.variant)
    result = {
        "audio": out["audio"],
        # What actually ran: a repo id, or a local folder by name (its variant cannot be known).
        "model": {**backend.model_identity(*ran), "device": be.device},
        "timings": {
            "model_load_s": round(be.load_seconds, 3) if built_now else 0.0,
            "pipeline_s": round(out["seconds"], 3),
        },
    }
    if on_base and not had_base:
        result["timings"]["base_load_s"] = round(be.base_seconds, 3)
    if "lyrics" in out:  # line times and score per take (``lrc``); ``takes`` fits them to each take
        result["lyrics"] = out["lyrics"]
        result["timings"]["lyrics_s"] = out["lyrics_s"]
    if plan is not None:
        result["planners"] = list(plan.takes)
        result["timings"]["planner_s"] = round(plan.takes[0].get("seconds", 0.0), 3)  # one plan for all takes
    return result


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
    return music_request.Plan(one.takes[:1] * render.takes, changes)


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
        if exc.title == runs.STOPPED:
            raise
        error = planner.load_error() or gpu.warmup_state()["errors"].get("planner", "?")
        return request.without_plan(f"the planner could not be loaded ({error})"), time.monotonic() - started
    return request, time.monotonic() - started


def model_missing(error: str) -> str:
    """A music model that could not be built, in the words the page shows (also in the header): a
    copy that is not on this machine says so first, with what to do; any other failure is named, then
    what to do."""
    return error if error.startswith(tips.WEIGHTS_LEADS) else tips.MODEL_MISSING.format(error=error)


def _failed(exc: Exception) -> gr.Error:
    # Out of GPU memory, a pipeline error: the log keeps the traceback.
    return gr.Error(
        f"The model stopped with an error ({type(exc).__name__}). Nothing was saved; try a shorter song, "
        "fewer steps or fewer takes.",
        title="Generation failed",
    )


def _not_built(exc: Exception) -> gr.Error:
    # Stays on the page until dismissed (duration=None): it says what to do next.
    return gr.Error(model_missing(str(exc)), title="Model not available", duration=None)


# The music model's and the planner's own exceptions, each in the words of the field or step to change.
KNOWN: gpu.Known = (
    (lora.BadLora, lambda exc: checks.InputError(str(exc), "lora")),
    (backend.LyricsTooLong, lambda exc: checks.InputError(str(exc), "lyrics")),
    ((audio.AudioError, backend.ModeUnavailable, backend.BrokenOutput), lambda exc: gr.Error(str(exc))),
    (models.ModelLoadError, _not_built),
)


def user_errors() -> contextlib.AbstractContextManager[None]:
    """The music model's and the planner's exceptions as picklable ``gr.Error``s a musician can act
    on (``gpu.worker_errors``), inside a GPU entry."""
    return gpu.worker_errors(_failed, KNOWN)


def music_duration(
    request: MusicRequest, progress: Any = None, run_id: str | None = None, multiplier: float = 1.0
) -> int:
    """Seconds of GPU time ``music_gpu`` declares: called by ``spaces`` with the same arguments."""
    return estimate_duration(request.mode, request.params, multiplier)


@gpu.entry(duration=music_duration)
def music_gpu(
    request: MusicRequest, progress: Any = None, run_id: str | None = None, multiplier: float = 1.0
) -> dict[str, Any]:
    """The one GPU entry of the music modes (variations too): runs ``request``, returns numpy audio and
    plain values. ``multiplier`` is for the duration."""
    with user_errors():
        chosen: dict[str, int] = {}  # the length Think chose, once it has (Length: auto)
        return run_music(request, _step_reporter(progress, chosen), run_id, _plan_reporter(progress, chosen))


def _step_reporter(progress: Any, chosen: dict[str, int]) -> ProgressFn | None:
    """The render's progress: the first and last step, and a few times a second between them."""
    # Built here, inside the GPU call: a closure cannot be pickled into the worker, gr.Progress can.
    if progress is None:
        return None
    due = gpu.thinned()

    def report(step: int, total: int) -> None:
        if due(step >= total):
            progress((step, total), desc=f"Step {step}/{total}{_chosen(chosen)}", unit="steps")

    return report


def _chosen(chosen: dict[str, int]) -> str:
    """What the progress adds once Think has chosen the length: the visitor hears how long before it is made."""
    return f" · Think chose {audio.clock(chosen['seconds'])}" if "seconds" in chosen else ""


def _plan_reporter(progress: Any, chosen: dict[str, int]) -> PlanProgressFn | None:
    """The planner's progress: a token at a time would flood the page, so a few times a second.
    With Length: auto, the length Think chose is said at once and kept in every line after it."""
    if progress is None:
        return None
    due = gpu.thinned()

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


def starting_words() -> str:
    """The first progress line of a music press: a cold model says how much longer it takes."""
    if backend.is_warm():
        return "Starting…"
    return f"Loading the model… the first song takes about {backend.COLD_START_SECONDS:.0f} s longer"


# GPU-time model, seconds, for the XL DiT in bf16: two forwards (guidance's halves, one batch) of
# a 1-take step at least what was measured eager on one H100 (docs/performance.md): 113 / 119 / 232
# / 629 ms at 10 / 60 / 240 / 600 s; this fit gives 114 / 131 / 232 / 629. Work per forward grows
# with the latent length (25 frames a second), attention with its square; below ~4 minutes a step
# is bound by launching its ~3,600 kernels (``_FORWARD_BASE``), counted again for every take
# although a batch launches them once (4 takes were not measured). The captured step is declared
# only once it has been measured on a GPU.
_FORWARD_BASE = 0.0558
_FORWARD_PER_SECOND = 1.3061e-4
_FORWARD_PER_MINUTE_SQ = 1.8033e-3
# The VAE decode and encode, linear in audio length (not measured apart from the pipeline's total).
_VAE_PER_SECOND = 0.03
_FIXED = 8.0  # text encoding, host-device copies, file hand-off
_SAFETY = 1.5
# The lyric DTW and score (``lrc.sync_take``, numpy) per take: 0.7 s for 240 s and 500 lyric tokens,
# 3.8 s for 600 s and 1000 tokens on one CPU core.
_LYRICS_DTW_PER_SECOND = 0.0065


def estimate_duration(mode: str, params: dict[str, Any], multiplier: float = 1.0) -> int:
    """Seconds of GPU time to declare for one call, clamped to [60, 300].

    ``params`` holds the endpoint's keyword arguments: ``audio_duration`` (or ``extend_seconds``),
    ``inference_steps``, ``batch_size``, ``guidance_scale``, ``think``. Cover, Extend and Edit also
    encode their source audio.
    """
    return devices.clamp_duration(estimate_seconds(mode, params), multiplier)


# Edit's changes made on the XL base (``parts.CHANGES``; this room sits below ``parts``).
_PART_CHANGES = ("add", "extract", "complete")


def estimate_seconds(mode: str, params: dict[str, Any]) -> float:
    """``estimate_duration`` before the clamp: what the call is expected to take, with a margin."""
    # A part runs on the XL base, guided whatever the studio's own model is (a turbo one is not).
    part = params.get("change") in _PART_CHANGES
    variant = models.VARIANTS[models.BASE_VARIANT] if part else models.active_variant()
    seconds = float(params.get("audio_duration") or 0) or float(params.get("extend_seconds") or 0) or 60.0
    if seconds < 0:  # Think chooses the length: as long as it may choose
        seconds = float(params.get("longest") or 600)
    steps = int(params.get("inference_steps") or variant.steps)
    takes = max(1, int(params.get("batch_size") or 1))
    guidance = float(params.get("guidance_scale") or variant.guidance)
    forwards = 2 if (guidance > 1.0 and not variant.turbo) else 1
    forwards *= 2 if params.get("morph") else 1  # the morph's two descriptions of the song, every step
    minutes = seconds / 60.0
    per_forward = _FORWARD_BASE + _FORWARD_PER_SECOND * seconds + _FORWARD_PER_MINUTE_SQ * minutes**2
    work = steps * forwards * per_forward * takes + _VAE_PER_SECOND * seconds * takes
    if mode in ("cover", "extend", "edit"):
        work += _VAE_PER_SECOND * seconds
    if mode == "cover" and params.get("reference_audio"):
        work += _VAE_PER_SECOND * 30
    if mode == "generate" and params.get("think"):
        # Variations write the take's one blueprint for all of them (``_plan``).
        work += planner.estimate_seconds(seconds, 1 if params.get("variation") else takes)
    if lrc.sung_lines(params.get("lyrics")):  # the lyric alignment pass: at most one more forward a take,
        work += (per_forward + _LYRICS_DTW_PER_SECOND * seconds) * takes  # and its DTW on the worker's CPU
    if part and not backend.base_is_warm():
        work += backend.BASE_COLD_SECONDS  # the XL base's DiT built beside the pipeline, then moved
    return (_FIXED + work + (0.0 if backend.is_warm() else backend.COLD_START_SECONDS)) * _SAFETY
