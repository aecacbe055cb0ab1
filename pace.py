"""How long a GPU call will take here: the one room that answers, from what this machine measured.

Every GPU entry declares its duration to ZeroGPU from this room: ``music_duration``, and each other
feature's phases (``pace_phases``: ``describe_phases``, ``write_phases``, ``lyrics_phases``,
``stems_phases``) through ``declare``; ``budget`` bounds a request by ``music_seconds``. A call is split in
*phases* (the music: the DiT's steps, the VAE decode, the lyric alignment, Think's thinking and
blueprint, the rest of the call; the planner's and the writers' tokens; Demucs's split), each with a
*prior* from ``pace_phases.PRIOR``, the figures measured once on an H100, eager, and a *bucket*: the phase at
its shape, keyed by what drives it (length on a power-of-two grid, takes, guidance on or off, captured
steps or eager; a reference's encode, the sung words). A music call's per-call work (the texts and a
source or reference encoded, the first step and its capture) is its own phase, apart from the steps
after it, counted as the worker ran them (a cover's start, turbo's cap): no request's shape can make a
bucket's factors say another's steps cost more or less than they do.

Each finished call's worker measures its phases (``time.perf_counter``) and hands them back with its
result (``report``); the main process keeps them (``learn``): a factor, measured over prior, per
bucket (``pace_store``). Once a bucket holds ``MIN_CALLS`` calls its phase is declared as the prior
times the factors' 90th percentile times ``MARGIN``; until then as the prior times its feature's
``pace_phases.SAFETY``. A call ZeroGPU aborted for time puts every bucket its declaration used back on the prior
(``aborted``). ``ACE_STUDIO_PACE=prior`` declares from the prior alone and learns nothing.

What a call is made of and its prior figures are ``pace_phases``'; this room declares and learns.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import math
import os
import platform
import threading
from pathlib import Path
from typing import Any

import devices
import graphs
import output_folder
import pace_phases
from music_shape import MusicShape
from pace_store import MATURE, Table, gpu_name, key_of, sane

MARGIN = 1.3  # over the 90th percentile of what was measured
PERCENTILE = 0.9
MIN_CALLS = MATURE  # calls in a bucket before its figures are declared (the store evicts the others first)
# The rooms whose code runs on the GPU: a change to any of them is a new version, measured anew.
GPU_ROOMS = (
    *("pace", "pace_phases", "generation", "backend", "sampler", "graphs", "decoding", "planner", "plan_constraints"),
    *("alignment", "dcw", "retake", "lrc", "lyrics", "stems", "describe", "songwriter", "offload", "models"),
    *("flow_edit", "base_model", "xl_model", "music_shape", "loop_takes"),
)
FILE_NAME = "pace.json"


# ---------------------------------------------------------------- what a call declares


def learning() -> bool:
    """``ACE_STUDIO_PACE``: ``learn`` (default) or ``prior`` (declare the prior, learn nothing)."""
    return os.environ.get("ACE_STUDIO_PACE", "learn").strip().lower() != "prior"


def percentile(values: list[float], q: float = PERCENTILE) -> float:
    """The nearest-rank percentile: with 3 to 10 samples, p90 is the largest."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def measured(phase: pace_phases.Phase) -> tuple[str, list[float]] | None:
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


def estimate(phases: list[pace_phases.Phase]) -> tuple[float, list[str]]:
    """Seconds the phases may take, with their margins, and the buckets measured figures came from."""
    total, used = 0.0, []
    for phase in phases:
        found = measured(phase)
        if found is None:
            total += phase.prior * pace_phases.SAFETY[phase.feature if phase.feature in pace_phases.SAFETY else "music"]
        else:
            total += phase.prior * percentile(found[1]) * MARGIN
            used.append(found[0])
    return total, used


_declared: collections.OrderedDict[str, list[str]] = collections.OrderedDict()
_declared_lock = threading.Lock()


def declare(phases: list[pace_phases.Phase], multiplier: float = 1.0, run_id: str | None = None) -> int:
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


def music_seconds(shape: MusicShape) -> float:
    """A music request's GPU seconds before the clamp (``budget`` bounds a request by it)."""
    return estimate(pace_phases.music_phases(shape))[0]


def music_duration(shape: MusicShape, multiplier: float = 1.0, run_id: str | None = None) -> int:
    """Seconds ``generation.music_gpu`` declares for a request of ``shape`` (``MusicShape.of``)."""
    return declare(pace_phases.music_phases(shape), multiplier, run_id)


def load_seconds(kind: str) -> float:
    """How much longer a call that builds ``kind`` takes, as a person expects it (the words a cold
    press says): the median of what was measured, else the prior."""
    phase = pace_phases.load(kind)
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


def version(rooms: tuple[str, ...] = GPU_ROOMS) -> str:
    """The studio's version as its pace depends on it: a hash of the GPU-side ``rooms``' code (each
    module's file as Python finds it) and of the models they run (another model, or new code, is
    measured anew). A room that is not found is an error: a moved room hashed by its name alone would
    leave the pace blind to its changes."""
    digest = hashlib.sha256()
    for room in rooms:
        spec = importlib.util.find_spec(room)
        if spec is None or spec.origin is None or not Path(spec.origin).is_file():
            raise RuntimeError(f"pace.version: no module {room!r} to hash; name the GPU-side rooms as they are now")
        digest.update(room.encode() + Path(spec.origin).read_bytes())
    for name in ("ACE_STUDIO_MODEL", "ACE_STUDIO_VARIANT", "ACE_STUDIO_PLANNER_MODEL", "ACE_STUDIO_LYRICS_MODEL"):
        digest.update(f"{name}={os.environ.get(name, '')}".encode())
    return digest.hexdigest()[:16]


def table() -> Table:
    """This process's table, read from the output folder's ``pace.json`` on first use."""
    global _table
    with _table_lock:
        if _table is None:
            here = version()
            path = output_folder.output_dir() / FILE_NAME if learning() else None
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


def learn(found: Any) -> int:
    """Keep what a finished call measured (only a ``Report``, built in the worker from its own clock);
    every figure must be finite, positive and within ``pace_store.FACTOR_RANGE`` of the prior. Returns
    how many figures were kept."""
    if not learning() or not isinstance(found, Report):
        return 0
    try:
        phases = pace_phases.measured_at(found["feature"], found["shape"])
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
        kept += here.add(kind, "load", {}, seconds / pace_phases.PRIOR[f"{kind}_load"], seconds, "s")
    if kept:
        here.calls += 1
        _changed(save=True)
    return kept
