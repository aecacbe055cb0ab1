"""How much of the studio lives on the GPU: the offload mode, chosen once from the card's free memory.

``ACE_STUDIO_OFFLOAD`` = ``auto`` (the default) | ``none`` | ``model`` | ``sequential``:

- ``none``: the music pipeline stays on the GPU; the planner and the lyrics LLM join it there and
  hold the GPU one at a time with it when they do not all fit (``devices.claim_device``).
- ``model``: diffusers' model CPU offload: each pipeline component comes to the GPU for its own
  forward and goes back when the next one starts, so the largest one (the XL DiT) sets the need;
  the planner and the lyrics LLM are on the GPU only while they hold it.
- ``sequential``: diffusers' sequential CPU offload: weights stream to the GPU layer by layer, for
  every forward; the least memory and by far the slowest.

``auto`` takes the first mode whose weights fit the card's free memory at start-up less a reserve
for activations (``choose``). ZeroGPU always runs ``none``: its slice has ~70 GB and its calls run
in forked workers, where hooks that move weights would work on a copy. docs/deployment.md has the
table of card sizes, modes and what each costs per song.
"""

from __future__ import annotations

import os
from typing import Any

import error_messages
import models

MODES = ("none", "model", "sequential")
# Share of the card the weights may fill; the rest is for activations, the VAE decode and the CUDA
# context. ``devices.claim_device`` uses the same share when models hold the GPU one at a time.
BUDGET = 0.8
# bf16 weights in GiB, counted from the real classes with the published shapes (``python tools/bench.py
# --memory-table``; tests/test_offload.py checks them against that count): the XL pipeline with
# Qwen3-Embedding-0.6B's full vocabulary, and its largest component, the DiT.
PIPELINE_GIB = 10.71
LARGEST_PART_GIB = 7.77
# What the studio puts on the card at start-up on ZeroGPU, which ``spaces`` packs, in bf16 GiB (the same
# count, ``tools/bench_memory.py``'s ``parts_fit``): the music pipeline, Edit's XL base's own parts (its
# DiT and condition encoder), Think's planner (1.7B) and the lyrics writer (Qwen2.5 7B); 37.25 GiB in
# all. ``spaces`` 0.51.3 runs every call of a Space that packs more than its card's ``xlarge_threshold``
# (``spaces/zero/configs.json``: 42 GiB on the RTX Pro 6000) on a whole card at twice the quota; tests/
# test_offload.py holds these under it, and to that count.
PACKED_GIB = {"music": PIPELINE_GIB, "base": 8.90, "planner": 3.45, "lyrics": 14.19}
# Demucs ``htdemucs_ft`` (four HTDemucs of 41.5 M parameters, fp32 as loaded), not packed: each split
# moves it to the card and back (``stems.separate``), so it counts beside the packed weights there.
STEMS_GIB = 0.62
# Called by the pipeline outside forward() (its quantizer's get_output_from_indices for Think's
# codes, tokenize() for Cover), which the offload hooks never see: it stays on the GPU (0.2 GiB).
RESIDENT_PARTS = ("audio_tokenizer",)


def requested() -> str:
    """``ACE_STUDIO_OFFLOAD``, checked; ``auto`` when unset."""
    value = os.environ.get("ACE_STUDIO_OFFLOAD", "").strip().lower() or "auto"
    if value not in ("auto", *MODES):
        raise models.ModelLoadError(error_messages.OFFLOAD_UNKNOWN.format(given=value, modes=", ".join(MODES)))
    return value


def choose(
    free_gib: float, total_gib: float, pipeline_gib: float = PIPELINE_GIB, largest_gib: float = LARGEST_PART_GIB
) -> str:
    """The mode ``auto`` runs on a card that reports ``free_gib`` free of ``total_gib``: the weights
    must fit the free memory less ``1 - BUDGET`` of the card, kept for activations."""
    usable = free_gib - (1.0 - BUDGET) * total_gib
    if pipeline_gib <= usable:
        return "none"
    if largest_gib <= usable:
        return "model"
    return "sequential"


def on_zero_gpu() -> bool:
    # gpu.on_zero_gpu's test; that module sits above this one and cannot be imported here.
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true", "yes")


def device_memory(device: str) -> tuple[float, float] | None:
    """``(free, total)`` GiB of a CUDA device, or None where it is not asked: MPS shares the host's
    memory, and on ZeroGPU the main process has no CUDA (its ~70 GB slice holds every model anyway)."""
    if not device.startswith("cuda") or on_zero_gpu():
        return None
    import torch

    free, total = torch.cuda.mem_get_info()
    return free / 2**30, total / 2**30


def decide(device: str) -> str:
    """The mode for a studio whose accelerator is ``device``: asked for, or chosen from its memory."""
    wanted = requested()
    if device == "cpu" or on_zero_gpu():
        return "none"
    if wanted != "auto":
        return wanted
    memory = device_memory(device)
    return "none" if memory is None else choose(*memory)


def apply(pipe: Any, mode: str, device: str) -> None:
    """Put ``pipe`` on ``device`` as ``mode`` says: whole, or under diffusers' offload hooks."""
    if mode == "none":
        pipe.to(device)
        return
    # An instance's own list and chain: the class attributes are shared by every pipeline.
    pipe._exclude_from_cpu_offload = list(RESIDENT_PARTS)
    if mode == "model":
        chain = [part for part in type(pipe).model_cpu_offload_seq.split("->") if part not in RESIDENT_PARTS]
        pipe.model_cpu_offload_seq = "->".join(chain)
        pipe.enable_model_cpu_offload(device=device)
        # Each hook sends back only its predecessor in the chain, but the pipeline calls its parts out
        # of that order (the detokenizer before the condition encoder, either one only for some
        # tasks), which left the condition encoder or the text encoder beside the DiT for the whole
        # loop: 1.1 GiB a 12 GB card does not have. So the DiT clears the card before it runs.
        pipe.transformer.register_forward_pre_hook(lambda dit, _args: free_parts(pipe, mode, keep=dit))
    else:
        pipe.enable_sequential_cpu_offload(device=device)


def free_parts(pipe: Any, mode: str, keep: Any = None) -> None:
    """Send every part the model-offload hooks manage but ``keep`` back to the CPU. The pipeline
    sends back only the last one, and only at the end of a call that decodes: not after Stop raised
    in its step callback, when the DiT would stay on the card and the next model would not fit
    beside it."""
    if mode != "model":
        return
    for hook in getattr(pipe, "_all_hooks", []):
        if hook.model is not keep:
            hook.offload()
