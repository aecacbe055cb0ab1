"""The studio's learned pace, kept: per bucket (a feature's phase at one shape) the last few measured
figures, bounded in memory and in one small JSON file in the output folder.

A bucket keeps at most ``KEEP`` samples; the table at most ``MAX_BUCKETS`` buckets, the one used
longest ago leaving first. Each sample is a *factor*, the measured seconds over what the prior table
says for the same shape (``pace``), and the figure a person reads (ms a step, tokens a second).

The file is written whole to a temporary name and moved over the old one (``os.replace``), so a
crash leaves the old file or the new, never half of one. It holds one machine's table: its key is the
GPU's name and the studio's version, and a file with another key, or one that is corrupt or larger
than ``MAX_FILE_BYTES``, is ignored with one log line: that machine starts from the prior.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MATURE = 3  # samples before a bucket's figures are declared (``pace.MIN_CALLS``)
KEEP = 12  # samples a bucket: enough for a 90th percentile, few enough that a new pace shows soon
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
        ``MATURE`` samples), else the one used longest ago: a flood of one-off shapes (one visitor's
        lengths and takes) churns among its own buckets and leaves the measured ones to every visitor."""
        for key, bucket in self.buckets.items():
            if key != keep and len(bucket.factors) < MATURE:
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
                print(f"pace: {self.path} could not be written ({exc}); the figures stay in memory")
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
            print(f"pace: {self.path} ignored, {why}; the figures start from the prior")
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
    """Why ``path`` is no table this room wrote (None where it is one), and what it holds: read once, so
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
        return "it is not a pace table of this format", data
    machine, buckets, calls = data.get("machine"), data.get("buckets"), data.get("calls")
    # ``calls`` an int like the rest: a string or a missing count once stopped every declaration.
    if not isinstance(machine, dict) or not isinstance(buckets, list) or type(calls) is not int or calls < 0:
        return "it is not a pace table of this format", data
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
