"""The duration estimate: how long a GPU call will take on this machine, declared to ZeroGPU
(``@spaces.GPU(duration=...)``) and learned from the calls this machine ran.

What a call is made of (its *phases*): the music's DiT steps, VAE decode, lyric alignment, Think's
thinking and blueprint and the rest of the call; the planner's and the writers' tokens; Demucs's split.
Each phase has a *prior*, ``PRIOR``, measured once on an H100, eager, and a *bucket*: the phase at its
shape, keyed by what drives it (length on a power-of-two grid, takes, guidance on or off, captured steps
or eager; a reference's encode, the sung lyrics). A music call's per-call work (the texts and a source
or reference encoded, the first step and its capture) is a phase of its own, apart from the steps after
it, so no request's shape can make a bucket's factors say another's steps cost more or less than they do.

- ``music_duration`` and ``declare`` (with ``describe_phases``, ``write_phases``, ``lyrics_phases``,
  ``stems_phases``) give each GPU entry its duration estimate; ``budget`` bounds a request by
  ``music_seconds``.
- Each finished call's worker measures its phases (``time.perf_counter``) and returns them with its
  result (``report``); the main process keeps them (``learn``) as a factor, measured over prior, per
  bucket. Once a bucket holds ``MIN_CALLS`` calls its phase is declared as the prior times the factors'
  90th percentile times ``MARGIN``; until then as the prior times its feature's ``SAFETY``. A call
  ZeroGPU aborted for time puts every bucket its estimate used back on the prior (``aborted``).
  ``ACE_STUDIO_DURATION_ESTIMATE=prior`` declares from the prior alone and learns nothing.
- The learned factors are kept (``Table``): a bucket keeps at most ``KEEP`` samples, the table at most
  ``MAX_BUCKETS`` buckets (the one used longest ago leaves first), in one small JSON file in the output
  folder (``FILE_NAME``), written whole to a temporary name and moved over the old one (``os.replace``),
  so a crash leaves the old file or the new. Its key is the GPU's name and the studio's version; a file
  with another key, a corrupt one, or one larger than ``MAX_FILE_BYTES`` is ignored with one log line.

The sections below: the learned table (``Bucket``, ``Table`` and its file's checks); the prior and a
call's phases (``PRIOR``, ``Phase``, the models a cold call builds, ``music_phases`` and the other
features'); what a call declares
(``estimate``, ``declare``, ``aborted``); this process's table (``table``, ``version``); what a finished
call measured (``report``, ``learn``)."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import math
import os
import platform
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import audio
import devices
import graphs
import output_folder
from music_shape import MusicShape

# ---------------------------------------------------------------- the learned table

MIN_CALLS = 3  # calls in a bucket before its figures are declared (the table evicts the others first)
KEEP = 12  # samples a bucket: enough for a 90th percentile, few enough that a change of speed shows soon
MAX_BUCKETS = 160  # every shape the page can ask for is about 120 buckets; more leave oldest first
MAX_FILE_BYTES = 256 * 1024  # the table at its bounds takes 35 KB (160 buckets of 12 samples)
FORMAT = 1
# A factor outside this range is not a measurement of this work (a clock glitch, a call that did
# nothing): from ten thousand times faster than the prior's H100 figures (the rest of a call on a CPU
# was 8 ms against the prior's 8 s) to fifty times slower.
FACTOR_RANGE = (1e-4, 50.0)
# A GPU's name as a worker reads it ("NVIDIA H100 80GB HBM3", "Apple MPS", "CPU (x86_64)"): short and
# plain. A file naming its machine otherwise was written by no studio, and the page shows the name.
GPU_NAME = re.compile(r"[A-Za-z0-9 ._()+,:@/-]{0,120}")


def plain_name(value: Any) -> bool:
    """Whether ``value`` may be a GPU's name as the studio writes one (``GPU_NAME``)."""
    return isinstance(value, str) and GPU_NAME.fullmatch(value) is not None


def gpu_name(value: Any) -> str:
    """``value``, a GPU's name as a worker reports it; ``ValueError`` where it is none (markup, say)."""
    if not plain_name(value):
        raise ValueError(f"a GPU named {str(value)[:40]!r}")
    return value


def sane(value: Any, low: float = 0.0, high: float = math.inf) -> bool:
    """A finite number strictly above ``low`` and at most ``high``."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and low < value <= high
    )


@dataclass
class Bucket:
    """One phase of one feature at one shape: its recent factors and readable figures."""

    feature: str
    phase: str
    shape: dict[str, Any]
    unit: str = ""
    factors: collections.deque = field(default_factory=lambda: collections.deque(maxlen=KEEP))
    figures: collections.deque = field(default_factory=lambda: collections.deque(maxlen=KEEP))
    used: int = 0  # the table's clock when a sample last came in: the newest way a shape ran wins

    def as_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "phase": self.phase,
            "shape": self.shape,
            "unit": self.unit,
            "factors": [float(f"{f:.4g}") for f in self.factors],
            "figures": [float(f"{f:.4g}") for f in self.figures],
            "used": self.used,
        }


def key_of(feature: str, phase: str, shape: dict[str, Any]) -> str:
    return f"{feature}.{phase}" + "".join(f"|{k}={shape[k]}" for k in sorted(shape))


class Table:
    """The buckets of one machine (``machine``: its GPU's name and the studio's version), in memory and,
    where ``path`` is given, in that file."""

    def __init__(self, path: Path | None, machine: dict[str, str]) -> None:
        self.path = path
        self.machine = dict(machine)
        self.buckets: collections.OrderedDict[str, Bucket] = collections.OrderedDict()
        self.calls = 0  # calls measured into this table
        self.clock = 0
        self.lock = threading.Lock()
        # Held from the snapshot to the file's replacement: two calls learned at once must not leave the
        # older snapshot written last (the newer sample lost from the file till the next call).
        self.saving = threading.Lock()

    # -- samples in and out

    def add(self, feature: str, phase: str, shape: dict[str, Any], factor: float, figure: float, unit: str) -> bool:
        """Keep one sample; False (nothing kept) where ``factor`` is no measurement of the work."""
        if not sane(factor, FACTOR_RANGE[0], FACTOR_RANGE[1]) or not sane(figure):
            return False
        key = key_of(feature, phase, shape)
        with self.lock:
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = Bucket(feature, phase, dict(shape), unit)
            self.buckets.move_to_end(key)
            self.clock += 1
            bucket.factors.append(float(factor))
            bucket.figures.append(float(figure))
            bucket.used = self.clock
            while len(self.buckets) > MAX_BUCKETS:
                self._evict(key)
        return True

    def _evict(self, keep: str) -> None:
        """One bucket out, the one used longest ago among those that declare nothing yet (fewer than
        ``MIN_CALLS`` samples), else the one used longest ago: a flood of one-off shapes (one visitor's
        lengths and takes) churns among its own buckets and leaves the measured ones to every visitor."""
        for key, bucket in self.buckets.items():
            if key != keep and len(bucket.factors) < MIN_CALLS:
                del self.buckets[key]
                return
        self.buckets.popitem(last=False)

    def get(self, key: str) -> Bucket | None:
        with self.lock:
            return self.buckets.get(key)

    def forget(self, keys: list[str]) -> int:
        """Drop these buckets (their shapes go back to the prior); how many were there."""
        with self.lock:
            return sum(self.buckets.pop(key, None) is not None for key in keys)

    def snapshot(self) -> list[Bucket]:
        with self.lock:
            return list(self.buckets.values())

    def rekey(self, machine: dict[str, str]) -> None:
        """Another machine (a GPU that is not the file's): its figures start from the prior."""
        with self.lock:
            if machine != self.machine:
                self.machine = dict(machine)
                self.buckets.clear()
                self.calls = 0

    # -- the file

    def as_json(self) -> dict[str, Any]:
        with self.lock:
            buckets = [b.as_json() for b in self.buckets.values()]
            return {"format": FORMAT, "machine": self.machine, "calls": self.calls, "buckets": buckets}

    def save(self) -> None:
        """The table into its file, atomically; a folder that cannot be written keeps it in memory."""
        if self.path is None:
            return
        with self.saving:
            text = json.dumps(self.as_json(), separators=(",", ":"))
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_text(text)
                os.replace(tmp, self.path)
            except OSError as exc:
                print(f"duration estimate: {self.path} could not be written ({exc}); the figures stay in memory")
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def load(self, same_machine: Any = None) -> bool:
        """The file's buckets, where it holds this machine's table (``same_machine(file's machine)``:
        the version must match; the GPU's name is checked when a call reports it). One log line and
        nothing loaded for a missing key, a corrupt file, one too large or of another machine."""
        if self.path is None or not self.path.is_file():
            return False
        why, data = _unreadable(self.path)
        if why is None and not (same_machine or (lambda m: m == self.machine))(data["machine"]):
            why = f"it is another machine's or version's ({data['machine']})"
        if why is not None:
            print(f"duration estimate: {self.path} ignored, {why}; the figures start from the prior")
            return False
        with self.lock:
            self.machine = {str(k): str(v) for k, v in data["machine"].items()}
            self.calls = int(data["calls"])
            for entry in data["buckets"][-MAX_BUCKETS:]:
                bucket = Bucket(entry["feature"], entry["phase"], entry["shape"], entry["unit"])
                bucket.factors.extend(entry["factors"][-KEEP:])
                bucket.figures.extend(entry["figures"][-KEEP:])
                bucket.used = int(entry["used"])
                self.buckets[key_of(bucket.feature, bucket.phase, bucket.shape)] = bucket
            self.clock = max((b.used for b in self.buckets.values()), default=0)
        return True


def _unreadable(path: Path) -> tuple[str | None, Any]:
    """Why ``path`` is no table this module wrote (None where it is one), and what it holds: read once, so
    what is checked is what is loaded even if another process replaces the file meanwhile."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            return f"it is more than the {MAX_FILE_BYTES} bytes a table may take", None
        data = json.loads(raw.decode())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        return f"it cannot be read ({type(exc).__name__})", None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return "it is not a duration table of this format", data
    machine, buckets, calls = data.get("machine"), data.get("buckets"), data.get("calls")
    # ``calls`` an int like the rest: a string or a missing count would stop every declaration.
    if not isinstance(machine, dict) or not isinstance(buckets, list) or type(calls) is not int or calls < 0:
        return "it is not a duration table of this format", data
    if not all(isinstance(v, str) for v in machine.values()) or not plain_name(machine.get("gpu", "")):
        return "its machine's name is not a GPU's name", None
    if not all(_bucket_ok(entry) for entry in buckets):
        return "a bucket in it is malformed", data
    return None, data


def _bucket_ok(entry: Any) -> bool:
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("feature", "phase", "unit")):
        return False
    shape, factors, figures = entry.get("shape"), entry.get("factors"), entry.get("figures")
    if not isinstance(shape, dict) or not all(isinstance(v, int | str) for v in shape.values()):
        return False
    if not isinstance(factors, list) or not isinstance(figures, list) or not isinstance(entry.get("used"), int):
        return False
    low, high = FACTOR_RANGE
    return all(sane(f, low, high) for f in factors) and all(sane(f) for f in figures)


# ---------------------------------------------------------------- the prior and a call's phases

# The prior, in seconds unless named otherwise: what each phase took on one H100, eager, bf16
# (docs/performance.md, the duration estimate).
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
    # most measured (24–38 s), plus 2 s for the prompt's prefill.
    "think_tokens": 250,
    "think_per_token": 0.085,
    "think_fixed": 2.0,
    "planner_load": 20.0,
    "describe_prefill_per_code": 0.002,  # Describe reads the song's codes in one prefill
    "describe_fixed": 8.0,
    "write_fixed": 4.0,  # Write it: the prompt's prefill, the caption's prefix trees
    "lyrics_tokens_per_second": 12.0,  # the 7B writer, eager
    "lyrics_fixed": 10.0,
    "lyrics_load": 60.0,
    # Demucs htdemucs_ft: reasoned from the CPU's cost and Demucs's own figures, with a 2x margin.
    "stems_per_minute": 8.0,
    "stems_fixed": 10.0,
}
# The prior's margin per feature (the prior's figures already hold one where it is 1.0).
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


# ---------------------------------------------------------------- models built or not (a cold call builds them)

_probes: dict[str, Callable[[], bool]] = {}


def watch(kind: str, built: Callable[[], bool]) -> None:
    """How to ask whether ``kind`` ("music", "planner", "lyrics") is built: its module says, at import."""
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
    mode = "cover-morph" if s.morph and s.mode == "cover" else s.mode  # two DiT forwards a step: measured apart
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


# ---------------------------------------------------------------- what a call declares

MARGIN = 1.3  # over the 90th percentile of what was measured
PERCENTILE = 0.9


def learning() -> bool:
    """``ACE_STUDIO_DURATION_ESTIMATE``: ``learn`` (default) or ``prior`` (declare the prior, learn nothing)."""
    return os.environ.get("ACE_STUDIO_DURATION_ESTIMATE", "learn").strip().lower() != "prior"


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


def music_seconds(shape: MusicShape) -> float:
    """A music request's GPU seconds before the clamp (``budget`` bounds a request by it)."""
    return estimate(music_phases(shape))[0]


def music_duration(shape: MusicShape, multiplier: float = 1.0, run_id: str | None = None) -> int:
    """Seconds ``generation.music_gpu`` declares for a request of ``shape`` (``MusicShape.of``)."""
    return declare(music_phases(shape), multiplier, run_id)


def load_seconds(kind: str) -> float:
    """How much longer a call that builds ``kind`` takes, as a person expects it (the message of a
    request that builds a model): the median of what was measured, else the prior."""
    phase = load(kind)
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
        print(f"duration estimate: a call ran past its declared time; {dropped} measured figures go back to the prior")
        _changed(save=True)
    return dropped


# ---------------------------------------------------------------- this process's table

# The modules whose code runs on the GPU: a change to any of them is a new version, measured anew.
GPU_MODULES = (
    "duration_estimate",
    "generation",
    "backend",
    "sampler",
    "graphs",
    "decoding",
    "planner",
    "plan_constraints",
    "alignment",
    "dcw",
    "retake",
    "lrc",
    "lyrics",
    "stems",
    "describe",
    "songwriter",
    "offload",
    "models",
    "flow_edit",
    "base_model",
    "xl_model",
    "music_shape",
    "loop_takes",
)
# The learned table's file in the output folder (the name every studio has written: a running Space's
# file keeps being read).
FILE_NAME = "pace.json"

_table: Table | None = None
_table_lock = threading.Lock()
_changes = 0


def version(modules: tuple[str, ...] = GPU_MODULES) -> str:
    """The studio's version as the duration estimate depends on it: a hash of the GPU-side ``modules``'
    code (each module's file as Python finds it) and of the models they run (another model, or new code,
    is measured anew). A module that is not found is a ``RuntimeError``: a moved module hashed by its name
    alone would leave the estimate blind to its changes."""
    digest = hashlib.sha256()
    for module in modules:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None or not Path(spec.origin).is_file():
            raise RuntimeError(
                f"duration_estimate.version: no module {module!r} to hash; name the GPU-side modules as they are"
            )
        digest.update(module.encode() + Path(spec.origin).read_bytes())
    for name in ("ACE_STUDIO_MODEL", "ACE_STUDIO_VARIANT", "ACE_STUDIO_PLANNER_MODEL", "ACE_STUDIO_LYRICS_MODEL"):
        digest.update(f"{name}={os.environ.get(name, '')}".encode())
    return digest.hexdigest()[:16]


def table() -> Table:
    """This process's table, read from the output folder's ``FILE_NAME`` on first use."""
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
    """A counter that moves whenever the learned figures do (the page refreshes its cost lines on it)."""
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
    every figure must be finite, positive and within ``duration_estimate.FACTOR_RANGE`` of the prior. Returns
    how many figures were kept."""
    if not learning() or not isinstance(found, Report):
        return 0
    try:
        phases = measured_at(found["feature"], found["shape"])
        spent = {k: v for k, v in found["phases"].items() if sane(v)}
        loads = {k: v for k, v in found["loads"].items() if sane(v) and k in ("music", "base", "planner", "lyrics")}
        rest = float(found["total"]) - sum(spent.values()) - sum(loads.values())
        gpu = gpu_name(found["gpu"])  # shown on the page: a name, not markup
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        print(f"duration estimate: a call's report was not kept ({type(exc).__name__}: {exc})")
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
