"""The studio's pace for people: "Pace on this machine" (``line``), the figures a musician asks for
(``at_sixty``), read from what ``pace`` learned."""

from __future__ import annotations

import re
from typing import Any

import gpu
import models
import pace
import pace_phases
import studio_words


def factor(feature: str, phase: str, shape: dict[str, Any]) -> tuple[float, int] | None:
    """The median factor of the newest bucket of ``feature.phase`` whose shape holds ``shape`` (captured
    or not), and its calls; None where none was measured."""
    found = [
        b
        for b in pace.table().snapshot()
        if b.feature == feature and b.phase == phase and all(b.shape.get(k) == v for k, v in shape.items())
    ]
    if not found:
        return None
    newest = max(found, key=lambda b: b.used)
    return pace.percentile(list(newest.factors), 0.5), len(newest.factors)


def at_sixty() -> dict[str, float | None]:
    """The figures a person asks for, at the shapes they know, measured here (None where not yet):
    the planner's ms a code (one take), the DiT's ms a step of one guided 60 s take, the lyrics
    writer's tokens a second."""
    guided = not models.active_variant().turbo
    code = factor("music", "blueprint", {"takes": 1})
    step = factor("music", "dit", {"len": 64, "takes": 1, "guided": int(guided), "mode": "generate"})
    words = factor("lyrics", "write", {})
    return {
        "planner_ms_a_code": code and 1000 * pace_phases.PRIOR["planner_per_code"] * code[0],
        "dit_ms_a_step_60s": step and 1000 * (2 if guided else 1) * pace_phases.per_forward(60) * step[0],
        "lyrics_tokens_a_second": words and pace_phases.PRIOR["lyrics_tokens_per_second"] / words[0],
    }


def line() -> str:
    """ "Pace on this machine", in one line: the GPU, the three figures, from how many calls."""
    if not pace.learning():
        return studio_words.PACE_PRIOR_ONLY[gpu.on_zero_gpu()]
    here = pace.table()
    if here.calls == 0 or not here.machine.get("gpu"):
        return studio_words.PACE_NOT_YET[gpu.on_zero_gpu()]
    figures = at_sixty()
    said = [
        studio_words.PACE_FIGURE[name].format(value=value) if value is not None else studio_words.PACE_UNMEASURED[name]
        for name, value in figures.items()
    ]
    calls = f"{here.calls} call{'s' * (here.calls != 1)}"
    return studio_words.PACE_LINE.format(gpu=as_text(here.machine["gpu"]), figures="; ".join(said), calls=calls)


def as_text(name: str) -> str:
    """``name`` read as plain text where the line is Markdown: every mark that can open Markdown or HTML
    escaped (a GPU's name comes from a worker or a file, and markup in it must not reach the page);
    parentheses, dots and dashes alone make none and stay as a GPU's name spells them."""
    return re.sub(r"([\\`*_{}\[\]<>#+!|~&])", r"\\\1", name)
