"""The accelerator: which model holds it, the offload mode, and how long one call may ask for it.

Where the music pipeline, the planner and the lyrics LLM do not fit on the device together, the one
about to run claims it (``holding_gpu``) and the others wait on the CPU.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator
from typing import Any

import offload

GPU_MIN_SECONDS = 60
GPU_MAX_SECONDS = 300


def on_zero_gpu() -> bool:
    """True on a ZeroGPU Space (or under the test harness that imitates one): one call may not
    declare more than ``GPU_MAX_SECONDS``."""
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true", "yes")


# Models that live on the accelerator. Where the music pipeline and the lyrics LLM do not fit
# together (XL in bf16 is ~10.7 GiB, Qwen 2.5 7B ~14.2 GiB: a 24 GiB card holds one at a time), the
# one about to run claims the device and the others wait on the CPU. Under an offload mode the
# studio's own models (planner, lyrics) are on the device only while they hold it, and the music
# pipeline is ``managed``: diffusers' hooks move its parts, the studio never moves it.
_residents: dict[str, dict[str, Any]] = {}
_resident_lock = threading.Lock()
_mode: str | None = None
_mode_lock = threading.Lock()


def offload_mode(device: str) -> str:
    """The studio's offload mode (``offload.decide``), fixed by the first model built: every build
    asks before it puts anything on the device, so the free memory read is the card's own."""
    global _mode
    with _mode_lock:
        if _mode is None:
            _mode = offload.decide(device)
        return _mode


def reset_offload_mode() -> None:
    """Decide again at the next build (tests, or after changing ``ACE_STUDIO_OFFLOAD``)."""
    global _mode
    with _mode_lock:
        _mode = None


def weights_gib(obj: Any) -> float:
    """GiB of the parameters of a model, or of every component of a pipeline."""
    modules = [c for c in getattr(obj, "components", {}).values() if hasattr(c, "parameters")] or [obj]
    return sum(p.numel() * p.element_size() for m in modules for p in m.parameters()) / 2**30


def register_resident(
    name: str, obj: Any, device: str, gib: float | None = None, *, on: str | None = None, managed: bool = False
) -> None:
    """Record a model that runs on ``device`` and is now on ``on`` (default: there already), so it
    can be brought over when it holds the GPU and parked on the CPU when memory is short."""
    with _resident_lock:
        _residents[name] = {
            "obj": obj,
            "gib": weights_gib(obj) if gib is None else gib,
            "home": device,
            "on": on or device,
            "managed": managed,
        }


def forget_resident(name: str) -> None:
    with _resident_lock:
        _residents.pop(name, None)


def placement() -> dict[str, str]:
    """Where each registered model is now (``managed`` ones: where their hooks put them between calls)."""
    with _resident_lock:
        return {n: ("offloaded" if r["managed"] else r["on"]) for n, r in _residents.items()}


def fits_alone(gib: float, device: str) -> bool:
    """False when ``gib`` of weights cannot fit the card at all (then the model cannot run there)."""
    memory = offload.device_memory(device)
    return memory is None or gib <= memory[1]


# Held by a model for the whole time it runs on the accelerator, so the lyrics writer cannot park
# the music pipeline on the CPU in the middle of a song (or the reverse) when both run at once.
_gpu_lock = threading.RLock()


@contextlib.contextmanager
def holding_gpu(name: str) -> Iterator[None]:
    """Claim the accelerator for ``name`` and keep it until the block ends; under an offload mode,
    ``name`` goes back to the CPU then."""
    with _gpu_lock:
        claim_device(name)
        try:
            yield
        finally:
            if _mode not in (None, "none"):
                _park(name)


def claim_device(name: str) -> None:
    """Put ``name`` on its accelerator, first moving the others to the CPU if all would not fit
    (always, under an offload mode: there each model has the card to itself)."""
    with _resident_lock:
        me = _residents.get(name)
        if me is None or me["home"] == "cpu":
            return
        memory = offload.device_memory(me["home"])
        others = [r for n, r in _residents.items() if n != name and r["on"] == r["home"] and not r["managed"]]
        crowded = memory is not None and me["gib"] + sum(r["gib"] for r in others) > offload.BUDGET * memory[1]
        if crowded or _mode not in (None, "none"):
            for other in others:
                _move(other, "cpu")
        if me["on"] != me["home"] and not me["managed"]:
            _move(me, me["home"])


def _park(name: str) -> None:
    with _resident_lock:
        me = _residents.get(name)
        if me is not None and not me["managed"] and me["on"] != "cpu":
            _move(me, "cpu")


def _move(resident: dict[str, Any], device: str) -> None:
    resident["obj"].to(device)
    resident["on"] = device
    if device == "cpu" and resident["home"].startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def clamp_duration(seconds: float, multiplier: float = 1.0) -> int:
    """``seconds`` clamped to [60, 300], then ``multiplier`` times that (a retry after an abort
    declares twice what the aborted try had, also when that was the 60 s floor), at most 300."""
    first = min(GPU_MAX_SECONDS, max(GPU_MIN_SECONDS, math.ceil(seconds)))
    return int(min(GPU_MAX_SECONDS, max(GPU_MIN_SECONDS, math.ceil(first * max(multiplier, 0.0)))))
