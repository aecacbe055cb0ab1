"""How fast the studio is, phase by phase. Run by hand; prints Markdown tables.

    python bench.py                      # tiny random models on the CPU, or the XL architecture on CUDA
    python bench.py --size xl --lengths 10,60,240,600 --attention flash --compile --no-vae-tiling
    python bench.py --markdown docs/performance.md   # also append the tables there
    python bench.py --load-memory /tmp/xl-fp32       # peak host memory of building bf16 XL from FP32 shards
    python bench.py --steps --lyrics                 # every model's step eager against captured (graphs)
    python bench.py --think --threads 1              # Think's planning of a 60 s song: rows while thinking, s
    python bench.py --pace outputs/pace.json         # the pace a studio learned, as a table (any machine)
    python bench.py --pace-learn 4                   # what 4 identical 240 s Think songs declare, as they are learned
    python bench.py --latents --threads 1            # a take's own latents against the VAE encode an edit made

Phases per (variant, takes, song length): text and lyric encoding, DiT seconds per step, its TFLOP/s
(FLOPs counted on a meta copy of the DiT) and model FLOPs utilisation on a GPU, VAE decode, writing
the WAV, peak host and GPU memory, what the studio would declare to ZeroGPU for that request
against the pipeline seconds measured, and the lyric alignment pass after it (one DiT forward over the
takes, then the DTW on the CPU; ``--work-only`` counts its FLOPs at XL's shapes). Once per run:
``import app``, the cold pipeline build (random weights saved to disk, then loaded by the studio's
own loader) and the studio overhead: one ``/generate`` through ``gradio_client`` against a direct
model run (``sampler``) doing the same work on the same pipeline. Weights are random: speed does not
depend on their values.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
# (steps, guidance, shift): turbo is distilled (no guidance); SFT runs 50 steps with APG guidance,
# which diffusers batches as one forward of twice the batch.
VARIANTS = {"turbo": (8, 1.0, 3.0), "sft": (50, 7.0, 3.0)}
LYRICS = "[Verse]\nCity lights are calling out my name\n[Chorus]\nWe run into the neon night\n" * 4
# Dense bf16 tensor-core peaks (no sparsity), for model FLOPs utilisation.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 PCIe": 756.0, "H100": 989.0,
                    "A100": 312.0, "L40S": 362.0, "L4": 121.0, "RTX 4090": 165.0}  # fmt: skip


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _host_peak_gib() -> float:
    # ru_maxrss is the process's lifetime peak, in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def import_app_seconds(runs: int = 3) -> tuple[float, float]:
    """Median seconds for ``import app`` and for bare ``import gradio``, each in a fresh interpreter."""

    def once(module: str) -> float:
        code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    return statistics.median(once("app") for _ in range(runs)), statistics.median(once("gradio") for _ in range(runs))


class Phases:
    """Times the pipeline's parts with hooks, synchronising the device around each."""

    def __init__(self, pipe: Any, device: str) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.dit_inputs: tuple[tuple, dict] | None = None
        self._handles = []
        for name in ("text_encoder", "condition_encoder", "transformer"):
            self._time_module(name, getattr(pipe, name))
        self._vae = pipe.vae
        self._decode = pipe.vae.decode
        pipe.vae.decode = self._timed_decode

    def _add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    def _time_module(self, name: str, module: Any) -> None:
        started: list[float] = []

        def before(_module, args, kwargs):
            if name == "transformer" and self.dit_inputs is None:
                self.dit_inputs = (args, kwargs)
            _sync(self.device)
            started.append(time.perf_counter())

        def after(_module, _args, _kwargs, _output):
            _sync(self.device)
            self._add(name, time.perf_counter() - started.pop())

        self._handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
        self._handles.append(module.register_forward_hook(after, with_kwargs=True))

    def _timed_decode(self, *args: Any, **kwargs: Any) -> Any:
        _sync(self.device)
        start = time.perf_counter()
        out = self._decode(*args, **kwargs)
        _sync(self.device)
        self._add("vae_decode", time.perf_counter() - start)
        return out

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._vae.decode = self._decode


def _meta_twin(transformer: Any) -> Any:
    """A copy of ``transformer``'s architecture on the meta device (float32): shapes without memory or kernels."""
    import torch

    with torch.device("meta"):
        return type(transformer).from_config(transformer.config).eval()


def dit_flops(transformer: Any, inputs: tuple[tuple, dict]) -> float:
    """FLOPs of one DiT forward on inputs of these shapes (matmuls, convolutions and attention).

    Counted on a meta copy of the model with meta inputs, not on the device's kernels: a meta
    tensor takes SDPA's math path, whose attention is plain batched matmuls with the key/value
    heads expanded to the query heads. Counting the real call depended on the kernel that ran:
    torch 2.11's formula for the fused CUDA kernels refused grouped-query attention ("sdpa_flop_count:
    query/key/value shapes are incompatible"), the CPU's fused kernel and flash-attn are not counted
    at all. Sliding-window layers count dense, as the default SDPA path computes them.
    """
    import torch
    from torch.utils._pytree import tree_map
    from torch.utils.flop_counter import FlopCounterMode

    def meta(value: Any) -> Any:
        if not isinstance(value, torch.Tensor):
            return value
        # The twin's own precision: the count does not depend on it.
        return torch.empty(
            value.shape, dtype=torch.float32 if value.is_floating_point() else value.dtype, device="meta"
        )

    args, kwargs = tree_map(meta, inputs)
    twin = _meta_twin(transformer)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        twin(*args, **kwargs)
    return float(counter.get_total_flops())


def align_flops(transformer: Any, inputs: tuple[tuple, dict], lyric_tokens: int) -> float:
    """FLOPs of the lyric alignment pass (``alignment.capture``: the DiT up to its deepest chosen layer,
    plus each chosen head's softmax(QKᵀ)) on inputs of these shapes, counted on the meta twin."""
    import torch
    from torch.utils._pytree import tree_map
    from torch.utils.flop_counter import FlopCounterMode

    import alignment

    def meta(value: Any) -> Any:
        if not isinstance(value, torch.Tensor):
            return value
        return torch.empty(value.shape, dtype=torch.float32, device="meta")

    _args, kwargs = tree_map(meta, inputs)
    kwargs = {k: v for k, v in kwargs.items() if k != "return_dict"}
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        alignment.capture(_meta_twin(transformer), kwargs, slice(0, lyric_tokens))
    return float(counter.get_total_flops())


def dit_flops_from_shapes(config: Any, batch: int, frames: int, cond_tokens: int) -> float:
    """FLOPs of one DiT forward from the transformer's config alone (2 per multiply-add): a count
    that shares no code with ``dit_flops``, to check it. ``frames`` are latent frames (25 a second)."""
    h, d, layers = config.hidden_size, config.head_dim, config.num_hidden_layers
    heads, q, kv = config.num_attention_heads, config.num_attention_heads * d, config.num_key_value_heads * d
    tokens = -(-frames // config.patch_size)  # the DiT pads to whole patches
    n, m = batch * tokens, batch * cond_tokens

    def mm(rows: int, inner: int, cols: int) -> int:
        return 2 * rows * inner * cols

    # Two timestep embeddings (t and t - r): 256 sinusoid channels -> h -> h, then 6 AdaLN vectors.
    total = 2 * (mm(batch, 256, h) + mm(batch, h, h) + mm(batch, h, 6 * h))
    total += mm(n, config.in_channels * config.patch_size, h)  # patchify convolution
    total += mm(m, config.encoder_hidden_size or h, h)  # condition embedder
    self_attn = mm(n, h, q + 2 * kv) + mm(n, q, h) + 2 * mm(batch * heads * tokens, d, tokens)
    cross_attn = mm(n, h, q) + mm(m, h, 2 * kv) + mm(n, q, h) + 2 * mm(batch * heads * tokens, d, cond_tokens)
    mlp = mm(n, h, 2 * config.intermediate_size) + mm(n, config.intermediate_size, h)
    total += layers * (self_attn + cross_attn + mlp)
    total += mm(n, h, config.audio_acoustic_hidden_dim * config.patch_size)  # de-patchify
    return float(total)


def dit_inputs(config: Any, batch: int, frames: int, cond_tokens: int, dtype: Any) -> tuple[tuple, dict]:
    """Meta inputs of one DiT forward as the pipeline makes them: ``frames`` latent frames, the
    packed caption + lyrics + timbre sequence of ``cond_tokens``."""
    import torch

    channels = config.audio_acoustic_hidden_dim

    def meta(*shape: int) -> torch.Tensor:
        return torch.empty(*shape, device="meta", dtype=dtype)

    return (), dict(
        hidden_states=meta(batch, frames, channels),
        timestep=meta(batch),
        timestep_r=meta(batch),
        encoder_hidden_states=meta(batch, cond_tokens, config.encoder_hidden_size or config.hidden_size),
        context_latents=meta(batch, frames, config.in_channels - channels),
        return_dict=False,
    )


def xl_work_per_step(lengths: list[float], cond_tokens: int = 600) -> list[tuple[float, float, float, float]]:
    """TFLOPs of one XL DiT forward (batch 1) per song length: counted on meta tensors (no memory,
    any machine) by the code that fills a CUDA row's MFU, and from the shapes.

    ``cond_tokens`` is the packed caption + lyrics + timbre sequence the DiT cross-attends to.
    """
    import torch
    from accelerate import init_empty_weights

    import random_models

    with init_empty_weights():
        transformer = random_models.build_pipeline("xl").transformer.to(dtype=torch.bfloat16)
    out = []
    for seconds in lengths:
        frames = int(seconds * 25)
        counted = dit_flops(transformer, dit_inputs(transformer.config, 1, frames, cond_tokens, torch.bfloat16))
        shapes = dit_flops_from_shapes(transformer.config, 1, frames, cond_tokens)
        lyric = align_flops(
            transformer, dit_inputs(transformer.config, 1, frames, cond_tokens, torch.bfloat16), cond_tokens // 2
        )
        out.append((seconds, counted / 1e12, shapes / 1e12, lyric / 1e12))
    return out


def work_table(lengths: list[float]) -> str:
    lines = [
        "| audio s | XL DiT TFLOP per forward (batch 1) | from the shapes | SFT: 50 steps × 2 (guidance) "
        "| turbo: 8 steps × 1 | lyric pass TFLOP (300 lyric tokens) | its share of SFT / turbo |",
        "|---|---|---|---|---|---|---|",
    ]
    for seconds, tf, shapes, lyric in xl_work_per_step(lengths):
        lines.append(
            f"| {seconds:g} | {tf:.2f} | {shapes:.2f} | {tf * 100:.0f} | {tf * 8:.0f} | {lyric:.2f} | "
            f"{100 * lyric / (tf * 100):.2f} % / {100 * lyric / (tf * 8):.2f} % |"
        )
    return "\n".join(lines) + "\n"


def peak_tflops(device: str, override: float | None) -> float | None:
    if override:
        return override
    if device != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def request_for(variant: str, seconds: float, seed: int = 0, takes: int = 1) -> dict[str, Any]:
    steps, guidance, shift = VARIANTS[variant]
    return {
        "prompt": "upbeat synth-pop, bright analog synths, punchy drums, catchy female vocals",
        "lyrics": LYRICS,
        "audio_duration": float(seconds),
        "vocal_language": "en",
        "num_inference_steps": steps,
        "guidance_scale": guidance,
        "shift": shift,
        "task_type": "text2music",
        "seeds": list(range(seed, seed + takes)),
    }


def model_run(pipe: Any, req: dict[str, Any], seeds: list[int], decode: bool = True, on_step: Any = None) -> Any:
    """The studio's model run of ``req`` (``sampler``: upstream's loop over the pipeline's modules),
    one CPU generator per seed; the audio, or with ``decode`` off the final latents."""
    import torch

    import backend
    import sampler
    from music_request import Render

    call = backend._as_pipeline_inputs(Render.flat({**req, "seeds": seeds}).pipeline, len(seeds))
    latents = sampler.run(pipe, call, [torch.Generator("cpu").manual_seed(s) for s in seeds], on_step)
    return sampler.decode(pipe, latents) if decode else latents


def declaration(variant: str, seconds: float, takes: int = 1) -> tuple[float, int]:
    """What the studio declares to ZeroGPU for a Generate request like this row's (no Think), on a
    built pipeline as the row measures it: ``pace.music_seconds`` (the expected GPU seconds with
    their margin) and ``pace.music_duration`` (that, clamped to what ZeroGPU accepts)."""
    from unittest import mock

    import backend
    import pace

    steps, guidance, _shift = VARIANTS[variant]
    params = {"audio_duration": seconds, "inference_steps": steps, "batch_size": takes,
              "guidance_scale": guidance, "think": False}  # fmt: skip
    # This process measures a pipeline of its own, not the studio's: declare as the studio does once
    # its pipeline is built, since that is the call the row times (a cold call adds the build).
    with mock.patch.object(backend, "is_warm", return_value=True):
        return pace.music_seconds("generate", params), pace.music_duration("generate", params)


def run_case(
    pipe: Any, device: str, variant: str, seconds: float, peak: float | None, out: Path, takes: int = 1
) -> dict[str, Any]:
    """One request of ``takes`` songs through the pipeline with every phase timed, the DiT's work
    counted, and what the studio would declare for it."""
    import torch

    import audio

    req = request_for(variant, seconds, takes=takes)
    seeds = req.pop("seeds")
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    phases = Phases(pipe, device)
    try:
        _sync(device)
        start = time.perf_counter()
        result = model_run(pipe, req, seeds)
        _sync(device)
        total = time.perf_counter() - start
    finally:
        phases.remove()
    started = time.perf_counter()
    audio.save(result[0], out / f"{variant}-{int(seconds)}s", "wav")
    write = time.perf_counter() - started
    steps = VARIANTS[variant][0]
    dit = phases.seconds.get("transformer", 0.0)
    declared, declares = declaration(variant, seconds, takes)
    row = {
        "variant": variant,
        "seconds": seconds,
        "takes": takes,
        "steps": steps,
        "encode_s": phases.seconds.get("text_encoder", 0.0) + phases.seconds.get("condition_encoder", 0.0),
        "dit_s": dit,
        "dit_step_s": dit / steps,
        "vae_s": phases.seconds.get("vae_decode", 0.0),
        "pipeline_s": total,
        "write_s": write,
        "host_peak_gib": _host_peak_gib(),
        "gpu_peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "mfu": None,
        "declared_s": declared,
        "declares_s": declares,
        "declared_ratio": declared / total,
    }
    if phases.dit_inputs is not None:
        row.update(lyric_pass(pipe, device, phases.dit_inputs, steps))
        # Every forward of a request has the first one's shapes (the batch includes guidance's half).
        flops = dit_flops(pipe.transformer, phases.dit_inputs) * phases.calls.get("transformer", 0)
        row["tflops"] = flops / dit / 1e12
        row["mfu"] = row["tflops"] / peak if peak else None
    return row


def lyric_pass(pipe: Any, device: str, inputs: tuple[tuple, dict], steps: int) -> dict[str, float]:
    """The studio's lyric alignment pass after a request like this row's: one DiT forward over its
    takes (``alignment.align``, on the condition the row's DiT calls were given and latents of their
    shape), then the DTW, line times and score on the CPU (``lrc.sync_take``)."""
    import torch

    import alignment
    import lrc

    rows = lrc.lyric_rows(pipe.tokenizer, LYRICS, "en")
    kwargs = inputs[1]
    shape = kwargs["hidden_states"].shape
    # The takes the DiT calls rendered (guidance doubles the batch): a str prompt renders one take.
    takes = shape[0] // (2 if pipe.do_classifier_free_guidance else 1)
    latents = torch.randn(takes, shape[1], shape[2], generator=torch.Generator("cpu").manual_seed(0))
    latents = latents.to(device=kwargs["hidden_states"].device, dtype=kwargs["hidden_states"].dtype)
    _sync(device)
    started = time.perf_counter()
    matrices = alignment.align(
        pipe.transformer, latents, kwargs["encoder_hidden_states"], kwargs["context_latents"], steps, rows.columns
    )
    _sync(device)
    passed = time.perf_counter() - started
    started = time.perf_counter()
    for stamps, energy in matrices:
        lrc.sync_take(stamps, energy, rows, shape[1] / 25)
    return {"lyric_pass_s": passed, "lyric_dtw_s": time.perf_counter() - started}


def cold_build(size: str, device: str, folder: Path) -> tuple[Any, float]:
    """Save random weights in the studio's layout, then time the studio's own loader and the move."""
    import backend
    import models
    import random_models

    random_models.save_pipeline(folder, size, dtype=models.dtype_for(device))
    started = time.perf_counter()
    pipe = models.load_pipeline(str(folder), models.VARIANTS["xl-sft"], dtype=models.dtype_for(device))
    backend.prepare_pipeline(pipe, device)
    _sync(device)
    return pipe, time.perf_counter() - started


@contextmanager
def studio(folder: Path, out: Path):
    """The real app on a free port against ``folder``; yields (url, backend module)."""
    os.environ.update(
        ACE_STUDIO_MODEL=str(folder),
        ACE_STUDIO_VARIANT="xl-sft",
        ACE_STUDIO_OUTPUT_DIR=str(out),
        GRADIO_ANALYTICS_ENABLED="False",
    )
    import app
    import backend

    url, demo = app.serve_here()
    try:
        yield url, backend
    finally:
        demo.close()


def studio_overhead(folder: Path, device: str, variant: str, seconds: float, out: Path, runs: int) -> dict[str, float]:
    """Median wall time of ``/generate`` via gradio_client vs a direct call on the same pipeline."""
    from gradio_client import Client

    steps, guidance, shift = VARIANTS[variant]
    with studio(folder, out) as (url, backend):
        client = Client(url, verbose=False)
        kwargs = dict(
            prompt=request_for(variant, seconds)["prompt"],
            lyrics=LYRICS,
            audio_duration=seconds,
            inference_steps=steps,
            guidance_scale=guidance,
            shift=shift,
            seed=1,
            think=False,
            api_name="/generate",
        )
        client.predict(**kwargs)  # builds the pipeline in the server, and warms both paths
        pipe = backend.get_backend().pipe
        req = request_for(variant, seconds, seed=1)
        req["lyrics"] = req["lyrics"].strip()
        seeds = req.pop("seeds")

        def direct() -> float:
            _sync(device)
            start = time.perf_counter()
            model_run(pipe, req, seeds)
            _sync(device)
            return time.perf_counter() - start

        writes: list[float] = []
        around: list[float] = []

        def through_studio() -> float:
            start = time.perf_counter()
            record = client.predict(**kwargs)[-1]
            took = time.perf_counter() - start
            writes.append(record["timings"]["write_s"])
            # Everything but the pipeline call, from the same run: steadier than two runs' difference.
            around.append(took - record["timings"]["pipeline_s"])
            return took

        direct()
        studio_times, direct_times = [], []
        for _ in range(runs):
            studio_times.append(through_studio())
            direct_times.append(direct())
    s, d = statistics.median(studio_times), statistics.median(direct_times)
    return {
        "studio_s": s,
        "direct_s": d,
        "overhead": (s - d) / d,
        "write_s": statistics.median(writes),
        "around_s": statistics.median(around),
    }


def apply_speedups(pipe: Any, attention: str | None, compile_blocks: bool, vae_tiling: bool) -> None:
    if attention:
        pipe.transformer.set_attention_backend(attention)
    if not vae_tiling:
        pipe.vae.disable_tiling()
    if compile_blocks:
        # Regional compilation: every DiT layer has the same structure, so one compiled graph is
        # reused 32 times and compiles in seconds rather than minutes.
        for layer in pipe.transformer.layers:
            layer.compile(fullgraph=False, dynamic=False)


def environment(device: str) -> str:
    import diffusers
    import gradio
    import torch
    import transformers

    if device == "cuda":
        where = f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    else:
        where = f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} threads"
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {where} · Python {platform.python_version()} · torch "
        f"{torch.__version__} · diffusers {diffusers.__version__} · transformers {transformers.__version__} · "
        f"gradio {gradio.__version__}"
    )


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def _tflops_spec(tflops: float | None) -> str:
    # A GPU reaches hundreds; the tiny model on a CPU a few hundredths.
    return ".0f" if tflops is None or tflops >= 10 else ".3g"


def _declared(row: dict[str, Any]) -> str:
    if row.get("declared_s") is None:
        return "–"
    return f"{row['declared_s']:.1f} ({row['declares_s']})"


def _lyric_cells(row: dict[str, Any]) -> str:
    if row.get("lyric_pass_s") is None:
        return "– | –"
    return (
        f"{row['lyric_pass_s']:.3f} ({100 * row['lyric_pass_s'] / row['pipeline_s']:.1f} %) | {row['lyric_dtw_s']:.3f}"
    )


def tables(info: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        f"### {info['size']} model on {info['device']}",
        "",
        info["environment"],
        "",
        f"Options: attention `{info['attention'] or 'default (SDPA)'}`, regional compile "
        f"{'on' if info['compile'] else 'off'}, VAE tiling {'on' if info['vae_tiling'] else 'off'}.",
        "",
        "| once | seconds |",
        "|---|---|",
        f"| `import app` (median of 3; bare `import gradio`: {info['import_gradio_s']:.2f}) | "
        f"{info['import_app_s']:.2f} |",
        f"| cold pipeline build: studio loader from disk + move to {info['device']} | {info['cold_build_s']:.2f} |",
        "",
        "| variant | takes | audio s | steps | encode s | DiT s/step | DiT s | VAE decode s | pipeline s "
        "| write WAV s | TFLOP/s | MFU | declared s (ZeroGPU gets) | declared / measured | GPU peak GiB "
        "| host peak GiB | lyric pass s (of pipeline) | lyric DTW s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r.get('takes', 1)} | {r['seconds']:g} | {r['steps']} | {r['encode_s']:.3f} | "
            f"{r['dit_step_s']:.4f} | {r['dit_s']:.3f} | {r['vae_s']:.3f} | {r['pipeline_s']:.3f} | "
            f"{r['write_s']:.3f} | {_fmt(r.get('tflops'), _tflops_spec(r.get('tflops')))} | "
            f"{_fmt(r['mfu'] and 100 * r['mfu'], '.0f')}{'%' if r['mfu'] else ''} | {_declared(r)} | "
            f"{_fmt(r.get('declared_ratio'), '.2f')}{'×' if r.get('declared_ratio') else ''} | "
            f"{_fmt(r['gpu_peak_gib'], '.2f')} | {r['host_peak_gib']:.2f} | {_lyric_cells(r)} |"
        )
    if info.get("overhead"):
        o = info["overhead"]
        lines += [
            "",
            f"Studio overhead ({info['overhead_case']}, median of {info['overhead_runs']}): `/generate` through "
            f"gradio_client {o['studio_s']:.3f} s vs direct model run {o['direct_s']:.3f} s → "
            f"**{100 * o['overhead']:+.1f} %**. Around the pipeline call in the same runs: {o.get('around_s', 0):.3f} s "
            f"(of which writing the take and its record {o.get('write_s', 0):.3f} s).",
        ]
    return "\n".join(lines) + "\n"


def decode_table() -> str:
    """Peak traced memory, wall and CPU seconds of decoding uploads that expand a lot, one at a time
    in a fresh budget; refusals are timed too (they must cost nothing)."""
    import time
    import tracemalloc

    import numpy as np
    import soundfile as sf

    import audio

    work = Path(tempfile.mkdtemp(prefix="ace-decode-"))

    def tone(name: str, seconds: float, rate: int, channels: int, fmt: str) -> Path:
        path = work / name
        with sf.SoundFile(str(path), "w", rate, channels, format=fmt) as f:
            for start in range(0, int(seconds * rate), rate):
                t = np.arange(start, min(start + rate, int(seconds * rate))) / rate
                f.write(np.repeat((0.1 * np.sin(2 * np.pi * 110 * t))[:, None], channels, 1).astype(np.float32))
        return path

    files = [
        ("10 min, 8 kHz mono FLAC", tone("long.flac", 600, 8000, 1, "FLAC")),
        ("3 min, 44.1 kHz stereo WAV", tone("song.wav", 180, 44100, 2, "WAV")),
        ("60 s, 8 channels at 384 kHz FLAC", tone("surround.flac", 60, 384_000, 8, "FLAC")),
        ("1 Hz WAV of 500 s (1 kB)", tone("one-hz.wav", 500, 1, 2, "WAV")),
    ]
    rows = ["| upload | file | decoded | peak traced | peak / decoded | wall | CPU |", "|---|---|---|---|---|---|---|"]
    for label, path in files:
        tracemalloc.start()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            song = audio.load(path)
            decoded = f"{song.nbytes / 2**20:.0f} MB"
            ratio = f"{tracemalloc.get_traced_memory()[1] / song.nbytes:.2f}"
        except audio.AudioError as exc:
            decoded, ratio = f"refused: {str(exc)[:60]}…", "–"
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append(
            f"| {label} | {path.stat().st_size / 2**20:.2f} MB | {decoded} | {peak / 2**20:.0f} MB | {ratio} | "
            f"{time.perf_counter() - wall:.2f} s | {time.process_time() - cpu:.2f} s |"
        )
    return "\n".join(rows)


def encode_table(seconds: float = 60.0) -> str:
    """What a take costs to write, per minute of audio: bytes on disk and one core's CPU seconds, for
    each output format and the page's MP3 preview (``audio.save``, as ``takes`` calls it)."""
    import time

    import numpy as np

    import audio

    work = Path(tempfile.mkdtemp(prefix="ace-encode-"))
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * audio.SAMPLE_RATE)) / audio.SAMPLE_RATE
    # Chords, a beat and some noise: content a lossless codec cannot shrink to nothing.
    song = sum(0.12 * np.sin(2 * np.pi * f * t) for f in (110, 138.6, 164.8, 220)) * (
        0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)
    )
    song = np.stack([song, np.roll(song, 240)]) + 0.02 * rng.standard_normal((2, t.size))
    tags = {"title": "bench", "artist": audio.STUDIO, "comment": "seed 0"}
    cases = [("WAV 16-bit", "wav"), ("FLAC 24-bit", "flac"), ("MP3 320 kbps (take, libsndfile)", "mp3"),
             ("MP3 128 kbps (preview, lameenc)", "preview")]  # fmt: skip
    rows = ["| file | MB a minute | CPU s a minute | wall s a minute |", "|---|---|---|---|"]
    for i, (label, fmt) in enumerate(cases):
        wall, cpu = time.perf_counter(), time.process_time()
        if fmt == "preview":
            path = audio.save_preview(song.astype(np.float32), work / f"take{i}.mp3", tags)
        else:
            path = audio.save(song.astype(np.float32), work / f"take{i}.{fmt}", fmt, tags)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        per = 60.0 / seconds
        rows.append(f"| {label} | {path.stat().st_size * per / 1e6:.2f} | {cpu * per:.2f} | {wall * per:.2f} |")
    return "\n".join(rows)


def latents_table(lengths: tuple[int, ...] = (30, 120, 240), trips: int = 3, runs: int = 3) -> str:
    """What a take's own latents spare an Edit, Extend or Cover of it (issue 53; tiny random models on this
    machine's CPU). First, how far the take's latents read back through the VAE are from its own: from the
    take as the studio writes it (finished, 16-bit WAV), and after 1 to ``trips`` plain VAE round trips
    (decode, encode: what each further edit of an edit did outside its region), as relative L2 and the
    largest difference. Then, per length, the VAE encode an edit no longer makes against what reading the
    take's latents costs instead (the SHA-256 of its file, once a file, and the ``.npy``), medians of ``runs``."""
    import numpy as np
    import torch

    work = Path(tempfile.mkdtemp(prefix="ace-latents-"))
    import random_models

    random_models.save_pipeline(work / "pipeline")
    os.environ.update(
        ACE_STUDIO_MODEL=str(work / "pipeline"),
        ACE_STUDIO_VARIANT="xl-sft",
        ACE_STUDIO_OUTPUT_DIR=str(work / "out"),
        ACE_STUDIO_PLANNER_MODEL="none",
    )
    import backend
    import handlers
    import preparing
    import sampler
    import take_latents

    pipe = backend.get_backend().pipe

    def encoded(song: np.ndarray) -> torch.Tensor:
        torch.manual_seed(0)  # the posterior's draw, seeded as a run seeds it
        wave = torch.from_numpy(np.require(preparing.model_input(song), np.float32, ["C_CONTIGUOUS", "WRITEABLE"]))
        return pipe.prepare_src_latents(device="cpu", dtype=torch.float32, src_audio=wave, task_type="repaint")[0][0]

    def far(latents: torch.Tensor, own: torch.Tensor) -> str:
        diff = latents[: len(own)] - own
        return f"{float(diff.norm() / own.norm()) * 100:.1f} % | {float(diff.abs().max()):.3f}"

    rows = ["| the take's latents read back through the VAE | relative L2 | largest difference |", "|---|---|---|"]
    times = [
        "| song | VAE encode (tiny, CPU) | its latents instead: SHA-256 of the WAV + `.npy` | saved |",
        "|---|---|---|---|",
    ]
    for seconds in lengths:
        settings = {"prompt": "bench", "audio_duration": seconds, "inference_steps": 2, "think": False, "seed": 1}
        paths, _ = handlers.make("generate", **settings)
        take = Path(paths[0])
        own = torch.from_numpy(np.load(take_latents.file_of(take), allow_pickle=False))
        song = preparing.source(str(take))
        if seconds == lengths[0]:
            rows.append(
                f"| the take as written ({seconds} s, -14 LUFS, 16-bit WAV), encoded | {far(encoded(song), own)} |"
            )
            latents = own
            for trip in range(1, trips + 1):
                wave = sampler.decode(pipe, latents[None], normalize=False)[0]
                latents = encoded(wave)
                rows.append(f"| after {trip} VAE round trip{'s' if trip > 1 else ''} | {far(latents, own)} |")
        vae, check = [], []
        for _ in range(runs):
            started = time.perf_counter()
            encoded(song)
            vae.append(time.perf_counter() - started)
            take_latents._digests.clear()
            started = time.perf_counter()
            found = preparing.own_latents(str(take))
            sampler._own(pipe, torch.from_numpy(found.latents), len(own), 1, "cpu", torch.float32)
            check.append(time.perf_counter() - started)
        vae_s, check_s = statistics.median(vae), statistics.median(check)
        times.append(f"| {seconds} s | {vae_s:.3f} s | {check_s:.3f} s | {vae_s - check_s:.3f} s |")
    return "\n".join(rows) + "\n\n" + "\n".join(times)


def planner_table(lengths: tuple[int, ...] = (300, 1500, 3000), takes_seconds: int = 60) -> str:
    """The planner on its own (tiny random Qwen3 on this machine's device): ms per blueprint code at
    several code counts, the share of a step spent sampling against the model's forward pass, and a
    4-take request's planning against a 1-take request's (thinking included)."""
    import torch

    import models
    import plan_constraints
    import planner
    import random_models
    from plan_format import format_plan

    model, tokenizer = random_models.build_planner_lm()
    device = models.pick_device()
    model.to(device)
    brain = planner.Planner(model, tokenizer, plan_constraints.Vocabulary.of(tokenizer), "tiny", device)
    plan = format_plan({"bpm": 120, "caption": "pop", "duration": 60, "keyscale": "A minor", "timesignature": "4"})
    rows = [
        "| codes | ms per code | model ms per step | sampling ms per step | sampling share |",
        "|---|---|---|---|---|",
    ]
    with torch.inference_mode():
        brain._blueprints("pop", LYRICS, plan, 20, [0], (0, 1), None, lambda: False)  # warm-up
        for count in lengths:
            _sync(device)
            started = time.perf_counter()
            brain._blueprints("pop", LYRICS, plan, count, [0], (0, 1), None, lambda: False)
            _sync(device)
            per_code = (time.perf_counter() - started) / count
            model_s, sample_s = _planner_step_parts(brain, plan, count)
            rows.append(
                f"| {count} | {per_code * 1e3:.2f} | {model_s * 1e3:.2f} | {sample_s * 1e3:.2f} | "
                f"{100 * sample_s / (model_s + sample_s):.0f} % |"
            )
        seeds = {1: [0], 4: [0, 1, 2, 3]}
        took = {}
        for n, chosen in seeds.items():
            _sync(device)
            started = time.perf_counter()
            brain.plan("pop", LYRICS, takes_seconds, chosen)
            _sync(device)
            took[n] = time.perf_counter() - started
    rows += [
        "",
        f"| request ({takes_seconds} s, Think) | planning s |",
        "|---|---|",
        f"| 1 take | {took[1]:.2f} |",
        f"| 4 takes | {took[4]:.2f} ({took[4] / took[1]:.2f} ×) |",
    ]
    return "\n".join(rows)


def _planner_step_parts(brain: Any, plan: str, count: int, samples: int = 200) -> tuple[float, float]:
    """Seconds per decode step of the model alone (the same prompts and cache, one code fed back)
    and of sampling alone (guidance, nucleus, temperature and draw over the step's real logits)."""
    import torch

    import plan_constraints
    import planner
    from plan_format import blueprint_negative, blueprint_prompt

    steps = min(count, samples)
    prompts = [
        blueprint_prompt(brain.tokenizer, "pop", LYRICS, plan),
        blueprint_negative(brain.tokenizer),
    ]
    code_ids = torch.tensor(brain.vocab.code_ids, device=brain.model.device)
    step = brain.decoder(prompts, count)
    logits = next(step)
    token = code_ids[:1].repeat(2)
    started = time.perf_counter()
    for _ in range(steps):
        logits = step.send(token)
    _sync(str(brain.model.device.type))
    model_s = (time.perf_counter() - started) / steps
    step.close()
    generators = [torch.Generator().manual_seed(0)]
    only_codes = logits[:, code_ids]
    started = time.perf_counter()
    for _ in range(steps):
        plan_constraints.sample_rows(planner._guide(only_codes[:1], only_codes[1:]), generators)
    _sync(str(brain.model.device.type))
    return model_s, (time.perf_counter() - started) / steps


def think_table(seconds: int = 60, runs: int = 5) -> str:
    """``--think``: Think's planning of one ``seconds`` song with the tiny random planner on this
    machine's device, ``runs`` times (medians, the range in brackets): the rows the model reads while
    thinking, the tokens the thinking wrote and its seconds, then the whole plan (thinking and the
    blueprint's codes), and what the pace room's prior declares for it (a warm planner, its
    H100 figures). Wall seconds, and the process's CPU seconds, which another load on a shared
    machine changes less (with ``--threads 1``)."""
    import torch

    import models
    import pace
    import pace_phases
    import plan_constraints
    import planner
    import random_models

    model, tokenizer = random_models.build_planner_lm()
    device = models.pick_device()
    model.to(device)
    brain = planner.Planner(model, tokenizer, plan_constraints.Vocabulary.of(tokenizer), "tiny", device)
    rows: list[int] = []
    hook = model.register_forward_pre_hook(lambda _m, _a, kw: rows.append(kw["input_ids"].shape[0]), with_kwargs=True)
    took: dict[str, list[float]] = {"thinking": [], "thinking_cpu": [], "whole": [], "whole_cpu": []}
    tokens = []

    def timed(name: str, run: Callable[[], Any]) -> None:
        _sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        _sync(device)
        took[name].append(time.perf_counter() - wall)
        took[f"{name}_cpu"].append(time.process_time() - cpu)

    try:
        with torch.inference_mode():
            brain.plan("pop", LYRICS, 10, [0])  # warm-up
            for run in range(runs):
                rows.clear()
                timed(
                    "thinking",
                    lambda seed=run: brain._think(
                        "pop", LYRICS, {"duration": seconds}, seed, (), seconds, None, lambda: False
                    ),
                )
                tokens.append(len(rows))  # a forward a token: the prompt's gives the first
                read = rows[0]
                timed("whole", lambda seed=run: brain.plan("pop", LYRICS, seconds, [seed]))
    finally:
        hook.remove()

    def cell(name: str) -> str:
        values = took[name]
        return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"

    per_token = statistics.median(t / n for t, n in zip(took["thinking_cpu"], tokens, strict=True))
    shape = pace.MusicShape.of("generate", {"audio_duration": seconds, "think": True})
    declared = sum(p.prior for p in pace_phases.music_phases(shape, loads=False) if p.phase in ("think", "blueprint"))
    return "\n".join(
        [
            f"| Think, {seconds} s song, 1 take ({runs} runs, medians) | value |",
            "|---|---|",
            f"| rows the model reads while thinking | {read} |",
            f"| thinking tokens written | {statistics.median(tokens):.0f} |",
            f"| thinking, s | {cell('thinking')} |",
            f"| thinking, CPU s | {cell('thinking_cpu')} |",
            f"| thinking, CPU ms a token | {1e3 * per_token:.2f} |",
            f"| whole planning (thinking + {5 * seconds} codes), s | {cell('whole')} |",
            f"| whole planning, CPU s | {cell('whole_cpu')} |",
            f"| declared (the `pace` prior, warm, H100 figures) | {declared:.1f} s |",
        ]
    )


def steps_table(args: argparse.Namespace) -> str:
    """``--steps``: every model's step eager and captured, side by side (``bench_steps``)."""
    import bench_steps
    import models

    device = models.pick_device()
    size = args.size or ("xl" if device == "cuda" else "tiny")
    lengths = [float(s) for s in args.lengths.split(",")]
    found = bench_steps.rows(size, device, lengths, args.lyrics, steps=args.step_count, codes=args.codes)
    where = "" if device == "cuda" else " (no CUDA: 'captured' is the same static-buffer path, nothing captured)"
    return f"{environment(device)}, {size} shapes{where}\n\n{bench_steps.table(found)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["tiny", "xl"], help="default: xl on CUDA, tiny elsewhere")
    parser.add_argument("--lengths", default="10,60,240,600", help="seconds of audio, comma-separated")
    parser.add_argument("--variants", default="turbo,sft")
    parser.add_argument("--takes", default="1", help="takes per request, comma-separated (e.g. 1,4)")
    parser.add_argument("--attention", help="diffusers attention backend, e.g. native, flash, _native_cudnn")
    parser.add_argument("--compile", action="store_true", help="compile each DiT layer (regional torch.compile)")
    parser.add_argument(
        "--no-vae-tiling",
        dest="vae_tiling",
        action="store_false",
        help="decode the VAE in one piece (the studio tiles it)",
    )
    parser.add_argument("--overhead", default="sft:60", help="variant:seconds for the studio-overhead check; '' skips")
    parser.add_argument("--overhead-runs", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, if not known by name")
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    parser.add_argument("--work-only", action="store_true", help="only count the XL DiT FLOPs per step (any machine)")
    parser.add_argument(
        "--load-memory",
        type=Path,
        metavar="DIR",
        help="write random FP32 XL shards in upstream's layout to DIR (kept for reruns), then measure "
        "the peak host memory of building the bf16 pipeline from them",
    )
    parser.add_argument(
        "--base-load", type=Path, help="seconds and peak host memory of building the XL base's DiT (Edit's parts)"
    )
    parser.add_argument("--load-layers", type=int, help="DiT layers of that checkpoint (default: XL's 32)")
    parser.add_argument(
        "--decode",
        action="store_true",
        help="what decoding hostile uploads costs (memory, seconds), as uploads.load does it",
    )
    parser.add_argument("--load-dtype", default="bfloat16", help="the dtype it is built in (float16: a Mac's)")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (1 on a machine others share)")
    parser.add_argument("--encode", action="store_true", help="bytes and CPU seconds a minute of each take format")
    parser.add_argument("--latents", action="store_true", help="a take's own latents against a VAE encode (tiny, CPU)")
    parser.add_argument(
        "--planner",
        action="store_true",
        help="Think's planner alone: ms per code, sampling against the model, 4 takes against 1",
    )
    parser.add_argument(
        "--think",
        action="store_true",
        help="Think's planning of a 60 s song (tiny planner): rows while thinking, thinking and whole planning s",
    )
    parser.add_argument("--runs", type=int, default=5, help="with --think: runs (medians are printed)")
    parser.add_argument(
        "--steps",
        action="store_true",
        help="eager against captured steps (graphs): planner, Think, lyrics (with --lyrics), DiT",
    )
    parser.add_argument("--lyrics", action="store_true", help="with --steps: the lyrics writer too (7B shape on CUDA)")
    parser.add_argument("--step-count", type=int, default=8, help="with --steps: DiT steps a call")
    parser.add_argument("--codes", type=int, default=300, help="with --steps: blueprint codes (300: a 60 s song)")
    parser.add_argument(
        "--memory-table",
        action="store_true",
        help="parameter counts, bf16 sizes and the offload mode per card size (any machine)",
    )
    parser.add_argument("--pace", type=Path, help="print the pace a studio learned (its pace.json) as a table")
    parser.add_argument("--pace-learn", type=int, help="declarations of N identical 240 s Think songs (tiny models)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.work_only:
        print(work_table([float(s) for s in args.lengths.split(",")]))
        return
    if args.load_memory:
        print(load_memory(args.load_memory, args.load_layers, dtype=args.load_dtype))
        return
    if args.base_load:
        print(base_load(args.base_load))
        print(parts_fit())
        return
    if args.memory_table:
        print(memory_table())
        return
    if args.decode:
        print(decode_table())
        return
    if args.planner:
        print(planner_table())
        return
    if args.think:
        print(think_table(runs=args.runs))
        return
    if args.steps:
        print(steps_table(args))
        return
    if args.encode:
        print(encode_table())
        return
    if args.latents:
        print(latents_table())
        return
    if args.pace or args.pace_learn:
        import bench_pace

        print(bench_pace.table(args.pace) if args.pace else bench_pace.learned_songs(args.pace_learn))
        return
    import_app, import_gradio = import_app_seconds()
    import models

    device = models.pick_device()
    size = args.size or ("xl" if device == "cuda" else "tiny")
    work = Path(tempfile.mkdtemp(prefix="ace-bench-"))
    pipe, cold = cold_build(size, device, work / "pipeline")
    apply_speedups(pipe, args.attention, args.compile, args.vae_tiling)
    peak = peak_tflops(device, args.peak_tflops)
    rows = []
    cases = [
        (v, float(s), int(t))
        for v in args.variants.split(",")
        for t in args.takes.split(",")
        for s in args.lengths.split(",")
    ]
    for variant, seconds, takes in cases:
        if args.compile:
            run_case(pipe, device, variant, seconds, None, work, takes)  # compile outside the measurement
        row = run_case(pipe, device, variant, seconds, peak, work, takes)
        rows.append(row)
        print(
            f"{variant:5s} {takes} × {seconds:5g} s: pipeline {row['pipeline_s']:.2f} s, DiT "
            f"{row['dit_step_s'] * 1e3:.1f} ms/step, VAE {row['vae_s']:.2f} s, TFLOP/s "
            f"{_fmt(row.get('tflops'), _tflops_spec(row.get('tflops')))}, MFU "
            f"{_fmt(row['mfu'] and 100 * row['mfu'], '.0f')}, declared {_declared(row)} s = "
            f"{row['declared_ratio']:.2f}× measured",
            flush=True,
        )
    info = {
        "size": size,
        "device": device,
        "environment": environment(device),
        "attention": args.attention,
        "compile": args.compile,
        "vae_tiling": args.vae_tiling,
        "import_app_s": import_app,
        "import_gradio_s": import_gradio,
        "cold_build_s": cold,
    }
    if args.overhead:
        variant, seconds = args.overhead.split(":")
        del pipe
        info["overhead"] = studio_overhead(
            work / "pipeline", device, variant, float(seconds), work / "out", args.overhead_runs
        )
        info["overhead_case"] = f"{variant}, {float(seconds):g} s"
        info["overhead_runs"] = args.overhead_runs
    text = tables(info, rows)
    print()
    print(text)
    if args.markdown:
        with args.markdown.open("a") as f:
            f.write("\n" + text)


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


def load_memory(folder: Path, layers: int | None = None, root: Path = ROOT, dtype: str = "bfloat16") -> str:
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
sys.path.insert(0, {root!r})
import base_model, random_models
pipe = random_models.build_pipeline("tiny")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
started = time.perf_counter()
base = base_model.load(pipe, dtype=torch.bfloat16)
took = time.perf_counter() - started
mapped = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
# safetensors maps the files: every weight is read once here, as moving it to the GPU reads it.
params = [p for m in base_model.own_parts(base, pipe) for p in m.parameters()]
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


def base_load(folder: Path, root: Path = ROOT) -> str:
    """Seconds and host memory of ``base_model.load`` at the published XL base shape, in a fresh
    process (the SFT pipeline beside it is a tiny one: what the base adds is what is measured)."""
    if not (folder / "condition_encoder" / "config.json").is_file():
        started = time.perf_counter()
        write_base(folder)
        print(f"wrote the bf16 base in {time.perf_counter() - started:.0f} s", flush=True)
    on_disk = sum(p.stat().st_size for p in folder.rglob("*.safetensors"))
    out = subprocess.run(
        [sys.executable, "-c", _BASE_BUILD.format(root=str(root))],
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
    return "\n".join(lines)


# ---------------------------------------------------------------- what fits on which card

# Published shapes (each model's config.json on the Hub) of what random_models does not build at full
# size: Qwen3-Embedding-0.6B's vocabulary (the random pipeline's tokenizer has 512 entries), Qwen3-1.7B,
# whose vocabulary ACE-Step's 5 Hz planner extends by its 64,000 audio-code tokens, and Qwen2.5-7B-Instruct.
TEXT_ENCODER_VOCAB = 151669
PLANNER_CONFIG = {
    "vocab_size": 151936 + 64000,
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "tie_word_embeddings": True,
}
LYRICS_CONFIG = {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                 "num_attention_heads": 28, "num_key_value_heads": 4, "tie_word_embeddings": False}  # fmt: skip
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
        planner = Qwen3ForCausalLM(Qwen3Config(**PLANNER_CONFIG))
        lyrics = Qwen2ForCausalLM(Qwen2Config(**LYRICS_CONFIG))
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
            words = "does not fit: use a smaller model"
        elif pipeline + gib["planner"] + gib["lyrics"] <= limit and mode == "none":
            words = "stays beside them"
        elif mode == "none":
            swap = 2 * (gib["lyrics"] + pipeline + gib["planner"])
            words = (
                f"takes turns with them: {swap:.1f} GiB moved per request and the song after, ~{swap / bandwidth:.0f} s"
            )
        else:
            words = f"alone on the card: {2 * gib['lyrics']:.1f} GiB in and out per request, ~{2 * gib['lyrics'] / bandwidth:.0f} s"
        lines.append(
            f"| {card} GB | {free:.1f} of {total:.1f} GiB | `{mode}` | {'together' if together else 'take turns'} | "
            f"{moved:.1f} GiB | ~{moved / bandwidth:.0f} s | {words} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
