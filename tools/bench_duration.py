"""Tool: the duration estimate's learned table for people (``python tools/bench.py --duration-table FILE``),
and what identical songs declare as it is learned (``python tools/bench.py --duration-learn N``).

``table`` reads a studio's learned table (``pace.json`` in its output folder, ``duration_estimate.FILE_NAME``)
and prints every bucket in the layout of docs/performance.md: what was measured here against the prior,
so the owner of a Space can read its GPU's figures without a benchmark run. ``learned_songs`` makes N
identical 240 s songs with Think on the tiny random models, through the GPU call as the studio makes it
(``gpu.call``), and prints what each declared before it ran: the prior until a bucket holds three calls,
then the measured figure.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import studio_root


def _prior_figure(unit: str, figure: float, factor: float) -> float:
    """The figure the prior gives for the same work (a rate goes the other way)."""
    return figure * factor if unit == "tokens/s" else figure / factor


def _shape_text(shape: dict) -> str:
    """A bucket's shape as a table cell: "≤ 64 s, captured, guided, takes 2"."""
    parts = []
    for key, value in sorted(shape.items()):
        if key == "len":
            parts.append(f"≤ {value} s")
        elif key == "captured":
            parts.append("captured" if value else "eager")
        elif key == "guided":
            parts.append("guided" if value else "unguided")
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts) or "–"


def table(path: Path) -> str:
    """``path``'s learned durations, one row a bucket: median measured figure, the prior's, the factor."""
    studio_root.reach()
    import duration_estimate

    store = duration_estimate.Table(Path(path), {})
    if not store.load(lambda machine: True):
        return f"{path}: no duration table could be read (the log line above says why)."
    rows = [
        f"Durations learned on **{store.machine.get('gpu') or 'a machine not named yet'}** (studio version "
        f"{store.machine.get('version', '?')}), from {store.calls} calls; declared from the measured figure "
        f"once a row has {duration_estimate.MIN_CALLS} calls (p{int(100 * duration_estimate.PERCENTILE)} × {duration_estimate.MARGIN}).",
        "",
        "| what | shape | calls | measured here (median) | prior (H100, eager) | factor (median / p90) |",
        "|---|---|---|---|---|---|",
    ]
    for bucket in sorted(store.snapshot(), key=lambda b: (b.feature, b.phase, sorted(b.shape.items()))):
        figures, factors = list(bucket.figures), list(bucket.factors)
        prior = statistics.median(_prior_figure(bucket.unit, f, k) for f, k in zip(figures, factors, strict=True))
        rows.append(
            f"| {bucket.feature} {bucket.phase} | {_shape_text(bucket.shape)} | {len(factors)} | "
            f"{statistics.median(figures):.4g} {bucket.unit} | {prior:.4g} {bucket.unit} | "
            f"{statistics.median(factors):.3g} / {duration_estimate.percentile(factors):.3g} |"
        )
    return "\n".join(rows)


def learned_songs(n: int, seconds: int = 240) -> str:
    """N identical Think songs of ``seconds`` on the tiny models, each declared, then made and measured."""
    studio_root.reach()
    import random_models

    work = Path(tempfile.mkdtemp(prefix="ace-duration-"))
    os.environ.update(
        ACE_STUDIO_MODEL=str(random_models.save_pipeline(work / "tiny-diffusers")),
        ACE_STUDIO_VARIANT="xl-sft",
        ACE_STUDIO_PLANNER_MODEL=str(random_models.save_planner_lm(work / "tiny-planner")),
        ACE_STUDIO_OUTPUT_DIR=str(work / "outputs"),
        ACE_STUDIO_DURATION_ESTIMATE="learn",
        HF_HUB_OFFLINE="1",
    )
    import backend
    import duration_estimate
    import generation
    import gpu
    import modes
    import planner

    # Both models built before the first request, as a Space's start-up builds them.
    backend.get_backend()
    planner.get_planner()
    duration_estimate.reset()
    rows = [
        f"{n} identical {seconds} s songs with Think (tiny random models, {duration_estimate.device_name()}, default steps):",
        "",
        "| song | declared, s | made in, s | measured calls before it |",
        "|---|---|---|---|",
    ]
    for song in range(1, n + 1):
        job = modes.prepare_generate(prompt="night drive", audio_duration=seconds, seed=7, think=True)
        calls = duration_estimate.table().calls
        declared = generation.music_duration(job.request, None, f"duration-{song}")
        started = time.perf_counter()
        gpu.call(generation.music_gpu, job.request, needs=("music",), run_id=f"duration-{song}")
        rows.append(f"| {song} | {declared} | {time.perf_counter() - started:.1f} | {calls} |")
    return "\n".join(rows)
