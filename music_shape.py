"""What a music call's cost depends on, read from its params (``pace`` declares and learns by it):
``MusicShape`` (``of``), the steps that really run (``steps_run``: a cover's start, turbo's cap), and
the sung words the lyric alignment's DTW grows with."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import audio
import base_model
import lrc
import models
import sampler

# Edit's changes made on the XL base (``part_tasks.CHANGES``; this room sits below ``part_tasks``).


@dataclasses.dataclass(frozen=True)
class MusicShape:
    """What a music call's cost depends on, read from its params (the declaration's and the report's,
    whose ``steps`` are those the worker ran)."""

    mode: str
    seconds: float
    steps: int  # the steps that run: a cover's start skips some, turbo stops at its cap
    takes: int
    guided: bool
    sung: bool
    think: bool
    plan_takes: int
    reference: bool  # a timbre reference encoded (any mode)
    part: bool = False  # Edit's parts run on the XL base, guided whatever the studio's own model is
    morph: bool = False  # a morph (Cover's, a take's): the song's two descriptions, every step
    words: int = 0  # sung words: the alignment's DTW grows with them

    @classmethod
    def of(cls, mode: str, params: dict[str, Any]) -> MusicShape:
        part = params.get("change") in base_model.CHANGES
        variant = models.VARIANTS[models.BASE_VARIANT] if part else models.active_variant()
        seconds = float(params.get("audio_duration") or 0) or float(params.get("extend_seconds") or 0) or 60.0
        if seconds < 0:  # Think chooses the length: as long as it may choose
            seconds = float(params.get("longest") or audio.MAX_SECONDS)
        takes = max(1, int(params.get("batch_size") or 1))
        guidance = float(params.get("guidance_scale") or variant.guidance)
        think = mode == "generate" and bool(params.get("think"))
        morph = mode in ("cover", "morph") and bool(params.get("morph"))  # Cover's, a take's
        sung = lrc.sung_lines(params.get("lyrics"))
        return cls(
            mode=str(mode),
            seconds=seconds,
            steps=steps_run(mode, params, variant, morph),
            takes=takes,
            guided=guidance > 1.0 and not variant.turbo,
            sung=bool(sung),
            think=think,
            plan_takes=1 if params.get("variation") else takes,  # variations share the take's blueprint
            reference=bool(params.get("reference_audio")),
            part=part,
            morph=morph,
            words=len(_WORD.findall("\n".join(sung))),
        )


# A sung word: a run of letters, or one character of a script written without spaces.
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+")


def steps_run(mode: str, params: dict[str, Any], variant: models.Variant, morph: bool) -> int:
    """The steps a call of ``params`` runs, as the sampler runs them: turbo stops at its cap (not the
    morph, whose schedule is its own), and a cover that starts from the song noised to the schedule's
    time nearest 1 - ``cover_noise_strength`` runs only the steps after it (``sampler._start``). Read at
    the door, so without torch: the schedule in Python's floats, where the sampler's float32 times may
    pick a neighbouring step (about 2 in 1,000 choices of steps, shift and start: one step more or less
    declared; the worker reports the steps it ran)."""
    steps = max(1, int(params.get("inference_steps") or variant.steps))
    if morph:
        return steps
    steps = min(steps, sampler.TURBO_MAX_STEPS) if variant.turbo else steps
    strength = float(params.get("cover_noise_strength") or 0.0)
    if mode != "cover" or strength <= 0.0:
        return steps
    shift = float(params.get("shift") or 3.0)
    picks = [1.0 - i / steps for i in range(steps)]
    picks = [shift * t / (1.0 + (shift - 1.0) * t) for t in picks] if shift != 1.0 else picks
    return steps - min(range(steps), key=lambda i: abs(picks[i] - (1.0 - strength)))
