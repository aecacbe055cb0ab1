"""Memory: the peak host memory of building the XL pipeline from FP32 shards (``--load-memory``) and
the XL base's DiT (``--base-load``), what fits on which card (``parts_fit``), and the parameter
counts and offload mode per card size (``--memory-table``), from the published shapes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bench_steps
import studio_root

_BUILD = """
import resource, sys, time, torch
sys.path.insert(0, {root!r})
import models
started = time.perf_counter()
pipe = models.load_pipeline({dit!r}, models.VARIANTS["xl-sft"], dtype=torch.{dtype})
took = time.perf_counter() - started
size = sum(p.numel() * p.element_size() for m in pipe.components.values() if hasattr(m, "parameters")
           for p in m.parameters())
print(took, size, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def load_memory(folder: Path, layers: int | None = None, root: Path = studio_root.ROOT, dtype: str = "bfloat16") -> str:
    """Peak host memory of building the XL pipeline in ``dtype`` from FP32 upstream shards, in a fresh process.

    ``root`` is the checkout whose loader is measured (another one measures an older loader).
    """
    import random_models

    dit = folder / "acestep-v15-xl-sft"
    if not (dit / "config.json").is_file():
        started = time.perf_counter()
        random_models.write_upstream_checkpoint(folder, "xl", shapes={"num_hidden_layers": layers} if layers else None)
        print(f"wrote the FP32 checkpoint in {time.perf_counter() - started:.0f} s", flush=True)
    shards = sorted(dit.glob("model-*.safetensors"))
    fp32 = sum(p.stat().st_size for p in shards)
    out = subprocess.run(
        [sys.executable, "-c", _BUILD.format(root=str(root), dit=str(dit), dtype=dtype)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if out.returncode != 0:
        return f"the build failed (exit {out.returncode}): {out.stderr.strip().splitlines()[-1:]}"
    took, size, peak = (float(x) for x in out.stdout.split()[-3:])
    gib = 2**30
    largest = max(p.stat().st_size for p in shards)
    return (
        f"| FP32 checkpoint | shards (largest) | {dtype} pipeline | peak host memory | target: pipeline + one shard | build |\n"
        "|---|---|---|---|---|---|\n"
        f"| {fp32 / gib:.1f} GiB | {len(shards)} ({largest / gib:.1f} GiB) | {size / gib:.1f} GiB | "
        f"{peak / gib:.1f} GiB | {(size + largest) / gib:.1f} GiB | {took:.0f} s |"
    )


_BASE_BUILD = """
import resource, sys, time, torch
sys.path[:0] = [{root!r}, {tools!r}]
import base_model, random_models
pipe = random_models.build_pipeline("tiny")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
started = time.perf_counter()
base = base_model.load(pipe, dtype=torch.bfloat16)
took = time.perf_counter() - started
mapped = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
# safetensors maps the files: every weight is read once here, as moving it to the GPU reads it.
params = [p for m in base_model.base_parts(base, pipe) for p in m.parameters()]
started = time.perf_counter()
for p in params:
    p.detach().max()
touched = time.perf_counter() - started
size = sum(p.numel() * p.element_size() for p in params)
print(took, touched, size, before, mapped, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def write_base(folder: Path) -> None:
    """The XL base's own folders at the published shape in bf16 (uninitialised values: only sizes and
    reading speed are measured), in the diffusers layout the studio reads."""
    import torch
    from accelerate import init_empty_weights

    import random_models

    torch.set_default_dtype(torch.bfloat16)
    try:
        with init_empty_weights(include_buffers=False):
            pipe = random_models.build_pipeline("xl")
        for name in ("transformer", "condition_encoder"):
            module = getattr(pipe, name).to_empty(device="cpu")
            module.save_pretrained(folder / name)
            del module
    finally:
        torch.set_default_dtype(torch.float32)


def base_load(folder: Path, root: Path = studio_root.ROOT) -> str:
    """Seconds and host memory of ``base_model.load`` at the published XL base shape, in a fresh
    process (the SFT pipeline beside it is a tiny one: what the base adds is what is measured)."""
    if not (folder / "condition_encoder" / "config.json").is_file():
        started = time.perf_counter()
        write_base(folder)
        print(f"wrote the bf16 base in {time.perf_counter() - started:.0f} s", flush=True)
    on_disk = sum(p.stat().st_size for p in folder.rglob("*.safetensors"))
    out = subprocess.run(
        [sys.executable, "-c", _BASE_BUILD.format(root=str(root), tools=str(studio_root.TOOLS))],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "ACE_STUDIO_BASE_MODEL": str(folder)},
    )
    if out.returncode != 0:
        return f"the build failed (exit {out.returncode}): {out.stderr.strip().splitlines()[-1:]}"
    took, touched, size, before, mapped, peak = (float(x) for x in out.stdout.split()[-6:])
    gib = 2**30
    return (
        "| bf16 on disk | base's own parts | host memory added: built, mapped / every weight read | build | "
        "first read of every weight |\n|---|---|---|---|---|\n"
        f"| {on_disk / gib:.2f} GiB | {size / gib:.2f} GiB | {(mapped - before) / gib:.2f} / "
        f"{(peak - before) / gib:.2f} GiB | {took:.1f} s | {touched:.1f} s |"
    )


def parts_fit(card_gb: float = 48.0) -> str:
    """What the studio keeps on a ZeroGPU half card with Edit's base beside it (bf16 weights, counted
    on the meta device), against the card's usable memory."""
    n = parameter_counts()
    gib = {k: v * 2 / 2**30 for k, v in n.items()}
    sft = sum(v for k, v in gib.items() if k not in ("planner", "lyrics"))
    base = gib["transformer"] + gib["condition_encoder"]
    total = card_gb * 1e9 / 2**30
    rows = [("SFT pipeline (DiT, condition encoder, audio tokenizer and detokenizer, VAE, text encoder)", sft)]
    rows += [("XL base's DiT and condition encoder (Edit's parts)", base), ("5 Hz planner (1.7B)", gib["planner"])]
    rows += [("lyrics writer (Qwen2.5 7B)", gib["lyrics"])]
    weights = sum(v for _, v in rows)
    lines = ["| on the card | bf16 |", "|---|---|", *(f"| {name} | {v:.2f} GiB |" for name, v in rows)]
    lines += [f"| **all of it** | **{weights:.2f} GiB** of {total:.1f} GiB ({weights / total:.0%}) |"]
    demucs = stems_parameters() * 4 / 2**30  # fp32: 4 bytes a parameter
    lines += [f"| Demucs `htdemucs_ft`, fp32, moved in by each split (not packed) | {demucs:.2f} GiB |"]
    return "\n".join(lines)


# The published ``htdemucs`` shape's one change from HTDemucs' defaults (demucs/grids/mmi.py's released
# run: bottom_channels 512, 5 transformer layers): 41.5 M parameters a model, 83 MB in fp16, as the Hub's
# 84 MB files of ``adefossez/HTDemucs-ft`` (the files' own metadata is not read here: no Hub access).
HTDEMUCS_FT = {"sources": ["drums", "bass", "other", "vocals"], "bottom_channels": 512}


def stems_parameters() -> int:
    """Parameters of Demucs ``htdemucs_ft``'s four models (``HTDEMUCS_FT``), counted on the meta device."""
    from accelerate import init_empty_weights
    from demucs.htdemucs import HTDemucs

    with init_empty_weights(include_buffers=False):
        model = HTDemucs(**HTDEMUCS_FT)
    return 4 * sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- what fits on which card

# Qwen3-Embedding-0.6B's published vocabulary (the random pipeline's tokenizer has 512 entries); the
# planner's and the lyrics LLM's published shapes are bench_steps' PLANNER_XL and LYRICS_XL.
TEXT_ENCODER_VOCAB = 151669
CARDS_GB = (8, 12, 16, 24, 48, 80)
BANDWIDTH_GIB_S = 10.0  # assumed host<->device copy speed of pageable memory over PCIe 4.0 x16


def parameter_counts() -> dict[str, int]:
    """Parameters of every model the studio runs, counted on the meta device from the real classes."""
    from accelerate import init_empty_weights
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM, Qwen3Model

    import random_models

    def count(module: Any) -> int:
        return sum(p.numel() for p in module.parameters())

    with init_empty_weights(include_buffers=False):
        pipe = random_models.build_pipeline("xl")
        text = Qwen3Model(
            Qwen3Config(
                vocab_size=TEXT_ENCODER_VOCAB, tie_word_embeddings=True, **random_models.XL_SHAPES["text_encoder"]
            )
        )
        planner = Qwen3ForCausalLM(Qwen3Config(**bench_steps.PLANNER_XL))
        lyrics = Qwen2ForCausalLM(Qwen2Config(**bench_steps.LYRICS_XL))
    planner.tie_weights()  # outside the context: inside it the head keeps its own meta copy
    parts = ("transformer", "condition_encoder", "audio_tokenizer", "audio_token_detokenizer", "vae")
    counts = {name: count(getattr(pipe, name)) for name in parts}
    counts["text_encoder"] = count(text)
    return {**counts, "planner": count(planner), "lyrics": count(lyrics)}


def memory_table(bandwidth: float = BANDWIDTH_GIB_S) -> str:
    """docs/deployment.md's table: bf16 sizes, the mode ``auto`` picks per card, and the weights moved
    per song in each mode (seconds at ``bandwidth`` GiB/s: an estimate, not a measurement)."""
    import offload

    n = parameter_counts()
    gib = {k: v * 2 / 2**30 for k, v in n.items()}  # bf16
    pipeline = sum(v for k, v in gib.items() if k not in ("planner", "lyrics"))
    resident = sum(gib[k] for k in offload.RESIDENT_PARTS)
    lines = ["| part | parameters | bf16 |", "|---|---|---|"]
    lines += [f"| {k} | {v / 1e9:.3f} B | {gib[k]:.2f} GiB |" for k, v in n.items()]
    lines += [
        f"| music pipeline (all parts) | {sum(v for k, v in n.items() if k in gib and k not in ('planner', 'lyrics')) / 1e9:.3f} B | {pipeline:.2f} GiB |",
        "",
    ]  # noqa: E501
    lines += [
        "| card | reported free of total (assumed) | auto picks | planner + pipeline | weights moved per song (1 take, Think) | extra time per song | lyrics LLM |",
        "|---|---|---|---|---|---|---|",
    ]
    for card in CARDS_GB:
        total = card - 0.4
        free = total - 0.5
        mode = offload.choose(free, total, pipeline, gib["transformer"])
        limit = offload.BUDGET * total
        together = pipeline + gib["planner"] <= limit
        if mode == "none":
            moved = 0.0 if together else 2 * (pipeline + gib["planner"])
        elif mode == "model":
            moved = 2 * (pipeline - resident) + 2 * gib["planner"]
        else:  # the DiT streams once per step (50 for SFT), the rest once per song
            moved = 50 * gib["transformer"] + (pipeline - resident - gib["transformer"]) + 2 * gib["planner"]
        if gib["lyrics"] > total:
            writer = "does not fit: use a smaller model"
        elif pipeline + gib["planner"] + gib["lyrics"] <= limit and mode == "none":
            writer = "stays beside them"
        elif mode == "none":
            swap = 2 * (gib["lyrics"] + pipeline + gib["planner"])
            writer = (
                f"holds the GPU after them: {swap:.1f} GiB moved per request and the song after, "
                f"~{swap / bandwidth:.0f} s"
            )
        else:
            writer = f"alone on the card: {2 * gib['lyrics']:.1f} GiB in and out per request, ~{2 * gib['lyrics'] / bandwidth:.0f} s"
        lines.append(
            f"| {card} GB | {free:.1f} of {total:.1f} GiB | `{mode}` | {'together' if together else 'one at a time'} | "
            f"{moved:.1f} GiB | ~{moved / bandwidth:.0f} s | {writer} |"
        )
    return "\n".join(lines)
