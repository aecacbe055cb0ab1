"""How long a GPU call will take here: the one room that answers, from what this machine measured.

Every GPU entry declares its duration to ZeroGPU from this room: ``music_duration``, and each other
feature's phases (``describe_phases``, ``write_phases``, ``lyrics_phases``, ``stems_phases``) through
``declare``; ``budget`` bounds a request by ``music_seconds``. A call is split in
*phases* (the music: the DiT's steps, the VAE decode, the lyric alignment, Think's thinking and
blueprint, the rest of the call; the planner's and the writers' tokens; Demucs's split), each with a
*prior* from ``PRIOR``, the figures measured once on an H100, eager, and a *bucket*: the phase at
its shape, keyed by what drives it (length on a power-of-two grid, takes, guidance on or off, captured
steps or eager; a reference's encode, the sung words). A music call's per-call work (the texts and a
source or reference encoded, the first step and its capture) is its own phase, apart from the steps
after it, counted as the worker ran them (a cover's start, turbo's cap): no request's shape can make a
bucket's factors say another's steps cost more or less than they do.

Each finished call's worker measures its phases (``time.perf_counter``) and hands them back with its
result (``report``); the main process keeps them (``learn``): a factor, measured over prior, per
bucket (``pace_store``). Once a bucket holds ``MIN_CALLS`` calls its phase is declared as the prior
times the factors' 90th percentile times ``MARGIN``; until then as the prior times its feature's
``SAFETY``. A call ZeroGPU aborted for time puts every bucket its declaration used back on the prior
(``aborted``). ``ACE_STUDIO_PACE=prior`` declares from the prior alone and learns nothing.

Of the models it knows whether each is built (``watch``) and the variants' defaults, nothing more.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import os
import platform
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import audio
import devices
import graphs
import takes
from music_shape import MusicShape
from pace_store import MATURE, Table, gpu_name, key_of, sane

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
MARGIN = 1.3  # over the 90th percentile of what was measured
PERCENTILE = 0.9
MIN_CALLS = MATURE  # calls in a bucket before its figures are declared (the store evicts the others first)
# The rooms whose code runs on the GPU: a change to any of them is a new version, measured anew.
GPU_ROOMS = (
    *("pace", "generation", "backend", "sampler", "graphs", "decoding", "planner", "plan_constraints"),
    *("alignment", "dcw", "retake", "lrc", "lyrics", "stems", "describe", "songwriter", "offload", "models"),
    *("morph", "base_model", "xl_model", "music_shape"),
)
FILE_NAME = "pace.json"


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
    forwards, one = (2 if s.guided else 1) * (2 if s.morph else 1), per_forward(s.seconds)
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
    if s.think:
        codes = math.ceil(s.seconds * audio.CODES_PER_SECOND)
        per_code = PRIOR["planner_per_code"] * (1 + PRIOR["planner_extra_per_take"] * (s.plan_takes - 1))
        thinking = PRIOR["think_fixed"] + PRIOR["think_tokens"] * PRIOR["think_per_token"]
        phases.append(Phase("music", "think", {}, thinking, "tokens/s", PRIOR["think_tokens"], True))
        phases.append(Phase("music", "blueprint", {"takes": s.plan_takes}, codes * per_code, "ms a code", codes, True))
    if loads and not built("music"):
        phases.append(_load("music"))
    if loads and s.think and not built("planner"):
        phases.append(_load("planner"))
    if loads and s.part and not built("base"):
        phases.append(_load("base"))
    return phases


def _load(kind: str) -> Phase:
    return Phase(kind, "load", {}, PRIOR[f"{kind}_load"])


def describe_phases(seconds: float, tokens: int, loads: bool = True) -> list[Phase]:
    """*Describe*: the song encoded and its codes read, then ``tokens`` at most written."""
    work = PRIOR["vae_per_second"] * seconds + PRIOR["describe_prefill_per_code"] * seconds * audio.CODES_PER_SECOND
    work += tokens * PRIOR["planner_per_code"]
    phases = [
        Phase("describe", "fixed", {}, PRIOR["describe_fixed"]),
        Phase("describe", "listen", {"len": length_bucket(seconds)}, work, captured=True),
    ]
    return phases + ([_load("music")] if loads and not built("music") else []) + _planner_load(loads)


def _planner_load(loads: bool) -> list[Phase]:
    return [_load("planner")] if loads and not built("planner") else []


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
    return phases + ([_load("lyrics")] if loads and not built("lyrics") else [])


def stems_phases(take_seconds: float) -> list[Phase]:
    minutes = max(take_seconds, 0.0) / 60.0
    split = minutes * PRIOR["stems_per_minute"]
    return [
        Phase("stems", "fixed", {}, PRIOR["stems_fixed"]),
        Phase("stems", "split", {"len": length_bucket(take_seconds)}, split, "s a minute", minutes),
    ]


# ---------------------------------------------------------------- what a call declares


def learning() -> bool:
    """``ACE_STUDIO_PACE``: ``learn`` (default) or ``prior`` (declare the prior, learn nothing)."""
    return os.environ.get("ACE_STUDIO_PACE", "learn").strip().lower() != "prior"


def percentile(values: list[float], q: float = PERCENTILE) -> float:
    """The nearest-rank percentile: with 3 to 10 samples, p90 is the largest."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def measured(phase: Phase) -> tuple[str, list[float]] | None:
    """The bucket ``phase`` is declared from, and its factors, once it holds ``MIN_CALLS`` calls: where
    steps may be captured or eager, the way this machine ran that shape most recently."""
    if not learning():
        return None
    shapes = [{**phase.shape, "captured": c} for c in (1, 0)] if phase.captured else [phase.shape]
    found = []
    for key in (key_of(phase.feature, phase.phase, shape) for shape in shapes):
        bucket = table().get(key)
        if bucket is not None and len(bucket.factors) >= MIN_CALLS:
            found.append((bucket.used, key, list(bucket.factors)))
    if not found:
        return None
    _, key, factors = max(found)
    return key, factors


def estimate(phases: list[Phase]) -> tuple[float, list[str]]:
    """Seconds the phases may take, with their margins, and the buckets measured figures came from."""
    total, used = 0.0, []
    for phase in phases:
        found = measured(phase)
        if found is None:
            total += phase.prior * SAFETY[phase.feature if phase.feature in SAFETY else "music"]
        else:
            total += phase.prior * percentile(found[1]) * MARGIN
            used.append(found[0])
    return total, used


_declared: collections.OrderedDict[str, list[str]] = collections.OrderedDict()
_declared_lock = threading.Lock()


def declare(phases: list[Phase], multiplier: float = 1.0, run_id: str | None = None) -> int:
    """What a GPU entry declares: ``estimate`` clamped to [60, 300] (``devices.clamp_duration``); the
    buckets it used are remembered for ``run_id``, so an abort can put them back on the prior."""
    seconds, used = estimate(phases)
    if run_id is not None:
        with _declared_lock:
            _declared[run_id] = used
            _declared.move_to_end(run_id)
            while len(_declared) > 256:
                _declared.popitem(last=False)
    return devices.clamp_duration(seconds, multiplier)


def music_seconds(mode: str, params: dict[str, Any]) -> float:
    """A music request's GPU seconds before the clamp (``budget`` bounds a request by it)."""
    return estimate(music_phases(MusicShape.of(mode, params)))[0]


def music_duration(mode: str, params: dict[str, Any], multiplier: float = 1.0, run_id: str | None = None) -> int:
    """Seconds ``generation.music_gpu`` declares for ``params`` (the endpoint's keyword arguments)."""
    return declare(music_phases(MusicShape.of(mode, params)), multiplier, run_id)


def load_seconds(kind: str) -> float:
    """How much longer a call that builds ``kind`` takes, as a person expects it (the words a cold
    press says): the median of what was measured, else the prior."""
    phase = _load(kind)
    found = measured(phase)
    return phase.prior * (percentile(found[1], 0.5) if found is not None else 1.0)


def aborted(run_id: str | None) -> int:
    """ZeroGPU cut ``run_id``'s call short: the buckets its declaration used go back to the prior
    (their figures were too low for it); how many there were."""
    if run_id is None:
        return 0
    with _declared_lock:
        used = _declared.pop(run_id, [])
    dropped = table().forget(used)
    if dropped:
        print(f"pace: a call ran past its declared time; {dropped} measured figures go back to the prior")
        _changed(save=True)
    return dropped


# ---------------------------------------------------------------- the table and its file

_table: Table | None = None
_table_lock = threading.Lock()
_changes = 0


def version() -> str:
    """The studio's version as its pace depends on it: a hash of the GPU-side rooms' code and of the
    models they run (another model, or new code, is measured anew)."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for room in GPU_ROOMS:
        path = root / f"{room}.py"
        digest.update(path.read_bytes() if path.is_file() else room.encode())
    for name in ("ACE_STUDIO_MODEL", "ACE_STUDIO_VARIANT", "ACE_STUDIO_PLANNER_MODEL", "ACE_STUDIO_LYRICS_MODEL"):
        digest.update(f"{name}={os.environ.get(name, '')}".encode())
    return digest.hexdigest()[:16]


def table() -> Table:
    """This process's table, read from the output folder's ``pace.json`` on first use."""
    global _table
    with _table_lock:
        if _table is None:
            here = version()
            path = takes.output_dir() / FILE_NAME if learning() else None
            _table = Table(path, {"gpu": "", "version": here})
            _table.load(lambda machine: isinstance(machine, dict) and machine.get("version") == here)
        return _table


def reset() -> None:
    """Read the file again at next use (a restart, in tests)."""
    global _table
    with _table_lock:
        _table = None
    with _declared_lock:
        _declared.clear()


def changes() -> int:
    """A counter that moves whenever the pace does (the page refreshes its cost lines on it)."""
    return _changes


def _changed(save: bool) -> None:
    global _changes
    _changes += 1
    if save:
        table().save()


def device_name() -> str:
    """The accelerator's name as the worker sees it (never asked in a ZeroGPU main process)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    if torch.backends.mps.is_available():
        return "Apple MPS"
    return f"CPU ({platform.machine() or 'unknown'})"


def captured(device: Any) -> bool:
    """Whether a language model's steps on ``device`` are replayed from CUDA graphs (``graphs``)."""
    return str(getattr(device, "type", device)).startswith("cuda") and graphs.mode() == "auto"


# ---------------------------------------------------------------- what a finished call measured


class Report(dict):
    """What a worker measured of one finished call, handed back with its result (plain values, so
    it crosses ZeroGPU's pickle); ``gpu.call`` and ``gpu.stream`` give it to ``learn``."""


def report(
    feature: str,
    shape: dict[str, Any],
    phases: dict[str, float],
    started: float,
    counts: dict[str, float] | None = None,
    captured: dict[str, bool] | None = None,
    loads: dict[str, float] | None = None,
) -> Report:
    """Inside the worker, at the end of a call that began at ``started`` (``time.perf_counter``)."""
    import time

    return Report(
        feature=feature,
        gpu=device_name(),
        shape=dict(shape),
        phases={k: float(v) for k, v in phases.items()},
        total=time.perf_counter() - started,
        counts=dict(counts or {}),
        captured={k: bool(v) for k, v in (captured or {}).items()},
        loads={k: float(v) for k, v in (loads or {}).items() if v},
    )


def _phases_of(found: Report) -> list[Phase]:
    """The phases a report measured, at the shape that ran (tokens as many as were written)."""
    shape, feature = found["shape"], found["feature"]
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


def learn(found: Any) -> int:
    """Keep what a finished call measured (only a ``Report``, built in the worker from its own clock);
    every figure must be finite, positive and within ``pace_store.FACTOR_RANGE`` of the prior. Returns
    how many figures were kept."""
    if not learning() or not isinstance(found, Report):
        return 0
    try:
        phases = _phases_of(found)
        spent = {k: v for k, v in found["phases"].items() if sane(v)}
        loads = {k: v for k, v in found["loads"].items() if sane(v) and k in ("music", "base", "planner", "lyrics")}
        rest = float(found["total"]) - sum(spent.values()) - sum(loads.values())
        gpu = gpu_name(found["gpu"])  # shown on the page: a name, not markup
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        print(f"pace: a call's report was not kept ({type(exc).__name__}: {exc})")
        return 0
    here = table()
    here.rekey({"gpu": gpu, "version": here.machine["version"]})
    kept = 0
    for phase in phases:
        seconds = rest if phase.phase == "fixed" else spent.get(phase.phase)
        if seconds is None or not sane(seconds) or phase.prior <= 0:
            continue
        shape = (
            {**phase.shape, "captured": int(found["captured"].get(phase.phase, False))}
            if phase.captured
            else phase.shape
        )
        figure = phase.figure(seconds, found["counts"].get(phase.phase))
        kept += here.add(phase.feature, phase.phase, shape, seconds / phase.prior, figure, phase.unit)
    for kind, seconds in loads.items():
        kept += here.add(kind, "load", {}, seconds / PRIOR[f"{kind}_load"], seconds, "s")
    if kept:
        here.calls += 1
        _changed(save=True)
    return kept
