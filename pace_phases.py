"""What a GPU call is made of, and what each part costs by the book: ``PRIOR`` (the one table of first
figures, measured once on an H100, eager), each feature's *phases* at its shape (``music_phases``,
``describe_phases``, ``write_phases``, ``lyrics_phases``, ``stems_phases``; ``measured_at`` for a
finished call's), and whether a model is built (``watch``, ``built``: a cold call adds its build).
``pace`` declares and learns from these phases.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import audio
from music_shape import MusicShape

# The prior, in seconds unless named otherwise: what each phase took on one H100, eager, bf16
# (docs/performance.md: the prior's table under "Captured steps", and "The studio's own pace").
PRIOR: dict[str, float] = {
    # The XL DiT, one forward of a 1-take step: 113 / 119 / 232 / 629 ms measured at 10 / 60 / 240 /
    # 600 s; this fit gives 114 / 131 / 232 / 629 (the launch-bound base, then length and its square).
    "dit_base": 0.0558,
    "dit_per_second": 1.3061e-4,
    "dit_per_minute_sq": 1.8033e-3,
    "vae_per_second": 0.03,  # the VAE's decode or encode, a second of audio (not measured apart)
    "music_fixed": 8.0,  # text encoding, host-device copies, the hand-off
    "music_load": 45.0,  # building or moving the pipeline inside a call
    "base_load": 30.0,  # the XL base's DiT built beside the pipeline, then moved (Edit's parts; not measured)
    "lyric_dtw_per_second": 0.0065,  # the alignment's DTW, a take (numpy, one CPU core)
    "lyric_dtw_per_word": 0.0004,  # a word is a token or two, each one more diagonal of the DTW's grid
    # A loop's bars found and warped onto its grid between its renders (``loop_takes.in_time``), a second of its first
    # render, a take, on the worker's CPU: 0.02-0.05 s measured on a 2-core machine (docs/performance.md).
    "loop_in_time_per_second": 0.06,
    # The 1.7B planner, two rows (guided): 38.8–49.8 ms a code for one take, ≤ 51.5 for four.
    "planner_per_code": 0.050,
    "planner_extra_per_take": 0.01,
    # Think's thinking: ~250 tokens, declared at 85 ms a token so a 60 s song's plan declares its
    # most measured (24–38 s), plus 2 s for the prompt's pass.
    "think_tokens": 250,
    "think_per_token": 0.085,
    "think_fixed": 2.0,
    "planner_load": 20.0,
    "describe_prefill_per_code": 0.002,  # Describe reads the song's codes in one pass
    "describe_fixed": 8.0,
    "write_fixed": 4.0,  # Write it: the prompt's pass, the caption's prefix trees
    "lyrics_tokens_per_second": 12.0,  # the 7B writer, eager
    "lyrics_fixed": 10.0,
    "lyrics_load": 60.0,
    # Demucs htdemucs_ft: reasoned from the CPU's cost and Demucs's own figures, with a 2x margin.
    "stems_per_minute": 8.0,
    "stems_fixed": 10.0,
}
# The prior's margin per feature (today's figures already hold one where it is 1.0).
SAFETY = {"music": 1.5, "describe": 1.5, "write": 1.5, "lyrics": 1.0, "stems": 1.0}


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of a call at its shape: its prior seconds, and how a person reads its figure."""

    feature: str
    phase: str
    shape: dict[str, Any]
    prior: float
    unit: str = "s"  # "ms a step", "ms a code", "tokens/s", "s a minute", "s"
    count: float = 1.0  # steps, codes, tokens or minutes of the work (for the figure)
    captured: bool = False  # the bucket also says whether the steps were captured

    def figure(self, seconds: float, count: float | None = None) -> float:
        n = self.count if count is None else count
        if self.unit.startswith("ms"):
            return 1000.0 * seconds / max(n, 1e-9)
        if self.unit == "tokens/s":
            return n / max(seconds, 1e-9)
        return seconds / max(n, 1e-9) if self.unit == "s a minute" else seconds


# ---------------------------------------------------------------- models built or not

_probes: dict[str, Callable[[], bool]] = {}


def watch(kind: str, built: Callable[[], bool]) -> None:
    """How to ask whether ``kind`` ("music", "planner", "lyrics") is built: its room says, at import."""
    _probes[kind] = built


def built(kind: str) -> bool:
    probe = _probes.get(kind)
    return bool(probe()) if probe is not None else False


# ---------------------------------------------------------------- the shapes of a call


def length_bucket(seconds: float) -> int:
    """A length on the power-of-two grid: 10 s → 16, 60 → 64, 240 → 256, 600 → 1024."""
    return 2 ** max(0, math.ceil(math.log2(max(float(seconds), 1.0))))


def per_forward(seconds: float) -> float:
    return PRIOR["dit_base"] + PRIOR["dit_per_second"] * seconds + PRIOR["dit_per_minute_sq"] * (seconds / 60) ** 2


def music_phases(s: MusicShape, loads: bool = True) -> list[Phase]:
    """A music call's phases at shape ``s``; with ``loads``, the builds a cold model adds."""
    length, vae = length_bucket(s.seconds), PRIOR["vae_per_second"]
    forwards, one = s.forwards, per_forward(s.seconds)
    encode = (vae * s.seconds if s.mode != "generate" else 0.0) + (vae * 30 if s.reference else 0.0)
    at = {"len": length, "takes": s.takes}
    mode = "cover-morph" if s.morph and s.mode == "cover" else s.mode  # two passes a step: measured apart
    step = forwards * one * s.takes
    steps = {**at, "guided": int(s.guided), "mode": mode}
    phases = [
        Phase("music", "fixed", {}, PRIOR["music_fixed"]),
        # Per call: the texts, a source's and a reference's encode, the first step (and its capture).
        Phase("music", "start", {**steps, "ref": int(s.reference)}, encode + step, captured=True),
        Phase("music", "dit", steps, (s.steps - 1) * step, "ms a step", s.steps - 1, True),
        Phase("music", "vae", at, vae * s.seconds * s.takes, "s a minute", s.seconds * s.takes / 60),
    ]
    if s.sung:  # at most one more forward a take, and its DTW on the worker's CPU
        dtw = PRIOR["lyric_dtw_per_second"] * s.seconds + PRIOR["lyric_dtw_per_word"] * s.words
        phases.append(Phase("music", "align", {**at, "words": length_bucket(s.words)}, (one + dtw) * s.takes))
    if s.loop:  # the seam: one more repaint of the song's length, a take at a time (``loops``)
        phases.append(Phase("music", "seam", {**at, "guided": int(s.guided)}, seam(s)))
    if s.think:
        codes = math.ceil(s.seconds * audio.CODES_PER_SECOND)
        per_code = PRIOR["planner_per_code"] * (1 + PRIOR["planner_extra_per_take"] * (s.plan_takes - 1))
        thinking = PRIOR["think_fixed"] + PRIOR["think_tokens"] * PRIOR["think_per_token"]
        phases.append(Phase("music", "think", {}, thinking, "tokens/s", PRIOR["think_tokens"], True))
        phases.append(Phase("music", "blueprint", {"takes": s.plan_takes}, codes * per_code, "ms a code", codes, True))
    if loads and not built("music"):
        phases.append(load("music"))
    if loads and s.think and not built("planner"):
        phases.append(load("planner"))
    if loads and s.part and not built("base"):
        phases.append(load("base"))
    return phases


def seam(s: MusicShape) -> float:
    """A loop's seam by the book: what an Edit of the same song would cost, its fixed part aside, and its bars
    put in time before it (``loop_takes.in_time``)."""
    repaint = dataclasses.replace(s, mode="edit", loop=False, think=False)
    in_time = PRIOR["loop_in_time_per_second"] * s.seconds * s.takes  # its bars put in time first, on the CPU
    return sum(p.prior for p in music_phases(repaint, loads=False) if p.phase != "fixed") + in_time


def load(kind: str) -> Phase:
    """The build of ``kind`` ("music", "base", "planner", "lyrics") inside a call."""
    return Phase(kind, "load", {}, PRIOR[f"{kind}_load"])


def describe_phases(seconds: float, tokens: int, loads: bool = True) -> list[Phase]:
    """*Describe*: the song encoded and its codes read, then ``tokens`` at most written."""
    work = PRIOR["vae_per_second"] * seconds + PRIOR["describe_prefill_per_code"] * seconds * audio.CODES_PER_SECOND
    work += tokens * PRIOR["planner_per_code"]
    phases = [
        Phase("describe", "fixed", {}, PRIOR["describe_fixed"]),
        Phase("describe", "listen", {"len": length_bucket(seconds)}, work, captured=True),
    ]
    return phases + ([load("music")] if loads and not built("music") else []) + _planner_load(loads)


def _planner_load(loads: bool) -> list[Phase]:
    return [load("planner")] if loads and not built("planner") else []


def write_phases(tokens: int, loads: bool = True) -> list[Phase]:
    """*Write it*: ``tokens`` at most written by the planner."""
    return [
        Phase("write", "fixed", {}, PRIOR["write_fixed"]),
        Phase("write", "write", {}, tokens * PRIOR["planner_per_code"], "tokens/s", tokens, True),
    ] + _planner_load(loads)


def lyrics_phases(tokens: int, loads: bool = True) -> list[Phase]:
    """The lyrics writer: ``tokens`` at most."""
    phases = [
        Phase("lyrics", "fixed", {}, PRIOR["lyrics_fixed"]),
        Phase("lyrics", "write", {}, tokens / PRIOR["lyrics_tokens_per_second"], "tokens/s", tokens, True),
    ]
    return phases + ([load("lyrics")] if loads and not built("lyrics") else [])


def stems_phases(take_seconds: float) -> list[Phase]:
    minutes = max(take_seconds, 0.0) / 60.0
    split = minutes * PRIOR["stems_per_minute"]
    return [
        Phase("stems", "fixed", {}, PRIOR["stems_fixed"]),
        Phase("stems", "split", {"len": length_bucket(take_seconds)}, split, "s a minute", minutes),
    ]


def measured_at(feature: str, shape: dict[str, Any]) -> list[Phase]:
    """The phases a finished call of ``feature`` measured, at the ``shape`` that ran (tokens as many
    as were written; no build: a report gives its builds apart)."""
    if feature == "music":
        fields = {f.name: f.type for f in dataclasses.fields(MusicShape)}
        if set(shape) != set(fields):
            raise ValueError(f"a music shape of {sorted(shape)}")
        return music_phases(MusicShape(**shape), loads=False)
    if feature == "describe":
        return describe_phases(float(shape["seconds"]), int(shape["tokens"]), loads=False)
    if feature == "write":
        return write_phases(int(shape["tokens"]), loads=False)
    if feature == "lyrics":
        return lyrics_phases(int(shape["tokens"]), loads=False)
    if feature == "stems":
        return stems_phases(float(shape["seconds"]))
    raise ValueError(f"no feature {feature!r}")
