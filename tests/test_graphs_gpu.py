"""Captured steps at the published shapes with random weights, on a CUDA GPU (``-m gpu``; skipped by
default and where there is none): the same tokens as eager, the DiT within its tolerance, nothing
fell back, and each row's speed printed (``bench_steps``, as ``python tools/bench.py --steps`` prints it)."""

from __future__ import annotations

import pytest
import torch

import bench_steps

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _shown(row: dict) -> dict:
    print(bench_steps.table([row]).splitlines()[-1])
    assert row["captures"] >= 1 and not row["fell_back"], row
    return row


def test_the_planner_replays_the_same_codes_for_one_and_four_takes():
    model, tokenizer = bench_steps.planner_model("xl", "cuda")
    for takes in (1, 4):
        assert _shown(bench_steps.planner_row(model, tokenizer, takes, 300))["same"]
    assert _shown(bench_steps.think_row(model, tokenizer, seconds=60))["same"]


def test_the_lyrics_writer_replays_the_same_tokens():
    model, tokenizer = bench_steps.lyrics_model("xl", "cuda")
    assert _shown(bench_steps.lyrics_row(model, tokenizer))["same"]


def test_the_dit_replays_within_its_tolerance():
    pipe = bench_steps.dit_pipeline("xl", "cuda")
    for seconds in (10, 60):
        row = _shown(bench_steps.dit_row(pipe, seconds, 8))
        assert float(row["same"]) < 0.05  # eight steps of bf16 on latents of unit scale
