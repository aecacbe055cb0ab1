"""The accelerator: which model holds it, and how long one call may ask for it.

Where the music pipeline, the planner and the lyrics LLM do not fit on the device together, the one
about to run claims it (``gpu_turn``) and the others wait on the CPU.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from typing import Any

import models

GPU_MIN_SECONDS = 60
GPU_MAX_SECONDS = 300

# Models that live on the accelerator. Where the music pipeline and the lyrics LLM do not fit
# together (XL in bf16 is ~10 GiB, Qwen 2.5 7B ~15 GiB: a 24 GiB card holds one at a time), the one
# about to run claims the device and the others wait on the CPU.
_residents: dict[str, dict[str, Any]] = {}
_resident_lock = threading.Lock()
# Share of device memory models may fill; the rest is for activations and the VAE decode.
DEVICE_BUDGET = 0.8


def _gib(obj: Any) -> float:
    modules = [c for c in getattr(obj, "components", {}).values() if hasattr(c, "parameters")] or [obj]
    return sum(p.numel() * p.element_size() for m in modules for p in m.parameters()) / 2**30


def register_resident(name: str, obj: Any, device: str, gib: float | None = None) -> None:
    """Record a model that runs on ``device`` so it can be parked on the CPU when room is short."""
    with _resident_lock:
        _residents[name] = {"obj": obj, "gib": _gib(obj) if gib is None else gib, "home": device, "on": device}


def forget_resident(name: str) -> None:
    with _resident_lock:
        _residents.pop(name, None)


# Held by a model for the whole time it runs on the accelerator, so the lyrics writer cannot park
# the music pipeline on the CPU in the middle of a song (or the reverse) when both run at once.
_turn_lock = threading.RLock()


@contextlib.contextmanager
def gpu_turn(name: str) -> Iterator[None]:
    """Claim the accelerator for ``name`` and keep it until the block ends."""
    with _turn_lock:
        claim_device(name)
        yield


def claim_device(name: str) -> None:
    """Put ``name`` on its accelerator, first moving the others to the CPU if all would not fit."""
    with _resident_lock:
        me = _residents.get(name)
        if me is None or me["home"] != "cuda":
            return
        limit = models.vram_limit_for("cuda")
        others = [r for n, r in _residents.items() if n != name and r["on"] == "cuda"]
        if limit is not None and me["gib"] + sum(r["gib"] for r in others) > DEVICE_BUDGET * limit:
            for other in others:
                _move(other, "cpu")
        if me["on"] != "cuda":
            _move(me, "cuda")


def _move(resident: dict[str, Any], device: str) -> None:
    resident["obj"].to(device)
    resident["on"] = device
    if device == "cpu":
        import torch

        torch.cuda.empty_cache()


def clamp_duration(seconds: float, multiplier: float = 1.0) -> int:
    """``seconds`` clamped to [60, 300], then ``multiplier`` times that (a retry after an abort
    declares twice what the aborted try had, also when that was the 60 s floor), at most 300."""
    first = min(GPU_MAX_SECONDS, max(GPU_MIN_SECONDS, math.ceil(seconds)))
    return int(min(GPU_MAX_SECONDS, max(GPU_MIN_SECONDS, math.ceil(first * max(multiplier, 0.0)))))
