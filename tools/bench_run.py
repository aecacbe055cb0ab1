"""One request through the pipeline, timed phase by phase (``python tools/bench.py``'s speed table):
the request a row makes, the studio's model run of it, the hooks that time each part, what the studio
would declare for it, the lyric alignment after it, the cold build, the studio's overhead over a direct
run, and the Markdown the rows make.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench_flops
import studio_root

# (steps, guidance, shift): turbo is distilled (no guidance); SFT runs 50 steps with APG guidance,
# which diffusers batches as one forward of twice the batch.
VARIANTS = {"turbo": (8, 1.0, 3.0), "sft": (50, 7.0, 3.0)}
LYRICS = "[Verse]\nCity lights are calling out my name\n[Chorus]\nWe run into the neon night\n" * 4


def sync(device: str) -> None:
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
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=studio_root.ROOT, capture_output=True, text=True, check=True
        )
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
            sync(self.device)
            started.append(time.perf_counter())

        def after(_module, _args, _kwargs, _output):
            sync(self.device)
            self._add(name, time.perf_counter() - started.pop())

        self._handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
        self._handles.append(module.register_forward_hook(after, with_kwargs=True))

    def _timed_decode(self, *args: Any, **kwargs: Any) -> Any:
        sync(self.device)
        start = time.perf_counter()
        out = self._decode(*args, **kwargs)
        sync(self.device)
        self._add("vae_decode", time.perf_counter() - start)
        return out

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._vae.decode = self._decode


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
    built pipeline as the row measures it: ``duration_estimate.music_seconds`` (the expected GPU seconds with
    their margin) and ``duration_estimate.music_duration`` (that, clamped to what ZeroGPU accepts)."""
    from unittest import mock

    import backend
    import duration_estimate
    import modes

    steps, guidance, _shift = VARIANTS[variant]
    asked = {"audio_duration": seconds, "inference_steps": steps, "batch_size": takes, "guidance_scale": guidance}
    shape = duration_estimate.MusicShape.of(modes.prepare_generate(prompt="bench", think=False, **asked).request)
    # This process measures a pipeline of its own, not the studio's: declare as the studio does once
    # its pipeline is built, since that is the call the row times (a cold call adds the build).
    with mock.patch.object(backend, "is_warm", return_value=True):
        return duration_estimate.music_seconds(shape), duration_estimate.music_duration(shape)


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
        sync(device)
        start = time.perf_counter()
        result = model_run(pipe, req, seeds)
        sync(device)
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
        flops = bench_flops.dit_flops(pipe.transformer, phases.dit_inputs) * phases.calls.get("transformer", 0)
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
    sync(device)
    started = time.perf_counter()
    matrices = alignment.align(
        pipe.transformer, latents, kwargs["encoder_hidden_states"], kwargs["context_latents"], steps, rows.columns
    )
    sync(device)
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
    sync(device)
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
            sync(device)
            start = time.perf_counter()
            model_run(pipe, req, seeds)
            sync(device)
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


def progress_line(row: dict[str, Any]) -> str:
    """One row as it is measured, on one line (the tables follow once every row is in)."""
    return (
        f"{row['variant']:5s} {row['takes']} × {row['seconds']:5g} s: pipeline {row['pipeline_s']:.2f} s, DiT "
        f"{row['dit_step_s'] * 1e3:.1f} ms/step, VAE {row['vae_s']:.2f} s, TFLOP/s "
        f"{_fmt(row.get('tflops'), _tflops_spec(row.get('tflops')))}, MFU "
        f"{_fmt(row['mfu'] and 100 * row['mfu'], '.0f')}, declared {_declared(row)} s = "
        f"{row['declared_ratio']:.2f}× measured"
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
