"""One music request on the GPU side, in order: plan (Think) then render; and what it may cost.

``run_music`` is the body of the one GPU entry (``zerogpu.music_gpu``): the planner writes the plan
and blueprint when the request asks for it (``planner``), then the shared pipeline renders the takes
(``backend``). It sits above both, so neither knows the other. ``user_errors`` turns their
exceptions into words that survive ZeroGPU's trip back from the worker; ``estimate_duration`` is the
GPU time the call declares.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

import audio
import backend
import checks
import devices
import lora
import lrc
import models
import planner
import runs
import tooltips as tips

ProgressFn = backend.ProgressFn
PlanProgressFn = Callable[..., None]


def run_music(
    request: dict[str, Any],
    progress: ProgressFn | None = None,
    run_id: str | None = None,
    plan_progress: PlanProgressFn | None = None,
) -> dict[str, Any]:
    """The GPU-side work of every music mode: the planner when the request asks for it (``plan``),
    then the shared pipeline runs ``request``.

    Returns picklable values only (numpy audio, floats, strings). ``model_load_s`` is the build
    time only when this call built the pipeline, not when it found it built or waited for it.
    """
    request = dict(request)
    built_now: list[bool] = []
    be = backend.get_backend(on_load=lambda: built_now.append(True))
    plan_args, skipped = request.pop("plan", None), request.pop("plan_skipped", None)
    if plan_args is not None and be.pipe.audio_token_detokenizer is None:
        plan_args, skipped = None, "this music model has no audio detokenizer, so it cannot read a blueprint"
    plans = None
    if plan_args is not None:
        # One plan for the request, every take's blueprint in one batch, then one DiT call.
        takes = len(request["seeds"])
        report = plan_progress and (lambda stage, done, total: plan_progress(stage, done, total, takes))
        plans = _plan(request, plan_args, report, lambda: runs.is_stopped(run_id))
    elif skipped is not None:
        plans = [{"skipped": skipped}] * len(request["seeds"])
    out = be.run(request, progress=progress, run_id=run_id)
    if plan_args is not None and plan_args.get("seconds") is None:  # Think chose the length: cut there
        chosen = plans[0].get("fields", {}).get("duration") or planner.FALLBACK_SECONDS
        out["audio"] = out["audio"][..., : int(round(chosen * audio.SAMPLE_RATE))]
    result = {
        "audio": out["audio"],
        # What actually ran: a repo id, or a local folder by name (its variant cannot be known).
        "model": {**backend.model_identity(be.source, be.variant), "device": be.device},
        "timings": {
            "model_load_s": round(be.load_seconds, 3) if built_now else 0.0,
            "pipeline_s": round(out["seconds"], 3),
        },
    }
    if "lyrics" in out:  # line times and score per take (``lrc``); ``takes`` fits them to each take
        result["lyrics"] = out["lyrics"]
        result["timings"]["lyrics_s"] = out["lyrics_s"]
    if plans is not None:
        result["planners"] = plans
        result["timings"]["planner_s"] = round(plans[0].get("seconds", 0.0), 3)  # one plan for all takes
    return result


def _plan(request: dict[str, Any], plan_args: dict[str, Any], report: Any, should_stop: Any) -> list[dict[str, Any]]:
    """``planner.plan_request``; for variations (``noise``: every take the same seed) the take's one
    blueprint, written once as the take's was (its place in its batch) and given to every variation."""
    if "noise" not in request:
        return planner.plan_request(request, plan_args, report, should_stop)
    one = {**request, "seeds": request["seeds"][:1]}
    plans = planner.plan_request(one, plan_args, report, should_stop)
    takes = len(request["seeds"])
    request.update({k: v for k, v in one.items() if k != "seeds"})
    if "audio_codes" in one:
        request["audio_codes"] = one["audio_codes"] * takes
    return plans[:1] * takes


def model_missing(error: str) -> str:
    """A music model that could not be built, in the words the page shows (also in the header): a
    copy that is not on this machine says so first, with what to do; any other failure is named, then
    what to do."""
    return error if error.startswith(tips.WEIGHTS_LEADS) else tips.MODEL_MISSING.format(error=error)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the backend's own exceptions into picklable ``gr.Error``s a musician can act on.

    Used inside the GPU call, so the words survive ZeroGPU's trip back from the worker (which
    replaces any other exception by its class name).
    """
    try:
        yield
    except gr.Error:
        raise
    except runs.Cancelled as exc:
        raise gr.Error(f"{exc} Nothing was saved.", title=runs.STOPPED) from None
    except lora.BadLora as exc:
        raise checks.InputError(str(exc), "lora") from None
    except backend.LyricsTooLong as exc:
        raise checks.InputError(str(exc), "lyrics") from None
    except (audio.AudioError, backend.ModeUnavailable, backend.BrokenOutput) as exc:
        raise gr.Error(str(exc)) from None
    except models.ModelLoadError as exc:
        # Stays on the page until dismissed (duration=None): it says what to do next.
        raise gr.Error(model_missing(str(exc)), title="Model not available", duration=None) from None
    except Exception as exc:
        # Anything else (out of GPU memory, a pipeline error) would reach the page as a bare class
        # name from a ZeroGPU worker; the log keeps the traceback.
        traceback.print_exc()
        raise gr.Error(
            f"The model stopped with an error ({type(exc).__name__}). Nothing was saved; try a shorter song, "
            "fewer steps or fewer takes.",
            title="Generation failed",
        ) from None


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


def estimate_seconds(mode: str, params: dict[str, Any]) -> float:
    """``estimate_duration`` before the clamp: what the call is expected to take, with a margin."""
    variant = models.active_variant()
    seconds = float(params.get("audio_duration") or 0) or float(params.get("extend_seconds") or 0) or 60.0
    if seconds < 0:  # Think chooses the length: as long as it may choose
        seconds = float(params.get("longest") or 600)
    steps = int(params.get("inference_steps") or variant.steps)
    takes = max(1, int(params.get("batch_size") or 1))
    guidance = float(params.get("guidance_scale") or variant.guidance)
    forwards = 2 if (guidance > 1.0 and not variant.turbo) else 1
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
    return (_FIXED + work + (0.0 if backend.is_warm() else backend.COLD_START_SECONDS)) * _SAFETY
