"""Eager against captured steps (``graphs``), side by side, for every model. Run by hand (``python
tools/bench.py --steps``); prints a Markdown table.

On CUDA the models are built at their published shapes with random weights directly on the GPU
(speed does not depend on the weights' values): Think's planner as Qwen3 1.7B with its 217,204-token
vocabulary, the lyrics writer as Qwen2.5 7B (``--lyrics``), the XL SFT DiT. Elsewhere the tiny
random models stand in, so the same commands run on a CPU (tests/test_bench.py keeps them working).
Each row runs the studio's own loops (``Planner._blueprints``, ``decoding.sample_tokens``, the
pipeline through ``graphs.replaying``) once with ``ACE_STUDIO_GRAPHS=off`` and once captured, and
says whether both wrote the same (tokens, or the largest difference of the DiT's final latents).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import bench_run

# Qwen3 1.7B as ACE-Step's 5 Hz planner ships it, and Qwen2.5 7B Instruct (their config.json).
PLANNER_XL = {
    "vocab_size": 217204,
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "tie_word_embeddings": True,
    "rope_theta": 1000000,
    "max_position_embeddings": 40960,
}
LYRICS_XL = {
    "vocab_size": 152064,
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "tie_word_embeddings": False,
    "rope_theta": 1000000,
    "max_position_embeddings": 32768,
}
PLAN = {"bpm": 120, "caption": "pop", "duration": 60, "keyscale": "A minor", "timesignature": "4"}


def _sync(device: Any) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


@contextlib.contextmanager
def graphs_mode(value: str) -> Iterator[list[Any]]:
    """``ACE_STUDIO_GRAPHS`` set for the block; yields the captured steps made in it."""
    import graphs

    made: list[Any] = []
    real = graphs.CapturedStep

    class Recorded(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    before = os.environ.get("ACE_STUDIO_GRAPHS")
    os.environ["ACE_STUDIO_GRAPHS"] = value
    graphs.CapturedStep = Recorded
    try:
        yield made
    finally:
        graphs.CapturedStep = real
        if before is None:
            os.environ.pop("ACE_STUDIO_GRAPHS", None)
        else:
            os.environ["ACE_STUDIO_GRAPHS"] = before


def _peak_reset(device: Any) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: Any) -> float | None:
    import torch

    # Reserved, not allocated: a graph's pool and the cached blocks are held from other work too.
    return torch.cuda.max_memory_reserved() / 2**30 if str(device).startswith("cuda") else None


def _timed(device: Any, mode: str, run: Any) -> dict[str, Any]:
    """``run()`` under ``mode``: its result, seconds, captures made, their seconds, GPU peak."""
    _sync(device)
    _peak_reset(device)
    with graphs_mode(mode) as made:
        started = time.perf_counter()
        result = run()
        _sync(device)
        seconds = time.perf_counter() - started
    captured = sum(s.captures for s in made)
    fell_back = any(s.eager for s in made) and mode != "off"
    return {
        "result": result,
        "s": seconds,
        "captures": captured,
        "capture_s": sum(s.capture_s for s in made),
        "fell_back": fell_back,
        "peak_gib": _peak_gib(device),
    }


# ---------------------------------------------------------------- the models


def planner_model(size: str, device: str) -> tuple[Any, Any]:
    """The planner LM: tiny, or Qwen3 1.7B's shape in bf16 built on the device (random weights), with
    the tiny planner's tokenizer (its audio codes lie inside the big vocabulary)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    import random_models

    model, tokenizer = random_models.build_planner_lm()
    if size == "xl":
        config = Qwen3Config(**PLANNER_XL, eos_token_id=model.config.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        with torch.device(device):
            model = Qwen3ForCausalLM(config).to(torch.bfloat16).eval()
    return model.to(device), tokenizer


def lyrics_model(size: str, device: str) -> tuple[Any, Any]:
    """The lyrics LM: tiny, or Qwen2.5 7B's shape in bf16 built on the device (random weights). Its
    end-of-text token is forgotten, so every run writes the same number of tokens."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    import random_models

    model, tokenizer = random_models.build_lyrics_lm()
    if size == "xl":
        with torch.device(device):
            model = Qwen2ForCausalLM(Qwen2Config(**LYRICS_XL)).to(torch.bfloat16).eval()
    model.generation_config.eos_token_id = None
    return model.to(device), tokenizer


def dit_pipeline(size: str, device: str) -> Any:
    import torch

    import backend
    import models
    import random_models

    with torch.device(device):
        pipe = random_models.build_pipeline(size, dtype=models.dtype_for(device))
    return backend.prepare_pipeline(pipe, device)


# ---------------------------------------------------------------- the rows


def planner_row(model: Any, tokenizer: Any, takes: int, codes: int) -> dict[str, Any]:
    """ms per blueprint code (the decode step and the sampling on the device), ``takes`` at once."""
    import torch

    import plan_constraints
    import planner
    from plan_format import format_plan

    brain = planner.Planner(model, tokenizer, plan_constraints.Vocabulary.of(tokenizer), "bench", str(model.device))
    seeds = list(range(takes))

    def run(count: int = codes) -> Any:
        with torch.inference_mode():
            return brain._blueprints(
                "pop", bench_run.LYRICS, format_plan(PLAN), count, seeds, (0, takes), None, lambda: False
            )

    _timed(model.device, "off", lambda: run(8))  # the device's own first-call costs, outside the rows
    eager, captured = _timed(model.device, "off", run), _timed(model.device, "auto", run)
    return {
        "what": f"planner, {takes} take{'s' * (takes > 1)}, ms a code",
        "eager": 1e3 * eager["s"] / codes,
        "captured": 1e3 * (captured["s"] - captured["capture_s"]) / codes,
        "same": eager["result"] == captured["result"],
        **_extras(eager, captured),
    }


def think_row(model: Any, tokenizer: Any, seconds: int = 60, thinking: int = 250) -> dict[str, Any]:
    """Think's two generations for a ``seconds`` song, capture included: the thinking (at most
    ``thinking`` tokens, about what a trained planner writes; random weights may not end it) and
    the blueprint's ``5 × seconds`` codes."""
    import torch

    import audio
    import plan_constraints
    import planner
    from plan_format import format_plan

    brain = planner.Planner(model, tokenizer, plan_constraints.Vocabulary.of(tokenizer), "bench", str(model.device))
    target = audio.blueprint_codes(seconds)

    def run() -> Any:
        budget, planner.THINK_BUDGET = planner.THINK_BUDGET, thinking
        try:
            with torch.inference_mode():
                text = brain._think("pop", bench_run.LYRICS, {"bpm": 120}, 0, (), 600, None, lambda: False)
                plan = format_plan(PLAN)
                return text, brain._blueprints("pop", bench_run.LYRICS, plan, target, [0], (0, 1), None, lambda: False)
        finally:
            planner.THINK_BUDGET = budget

    eager, captured = _timed(model.device, "off", run), _timed(model.device, "auto", run)
    return {
        "what": f"Think's planning of a {seconds} s song, s",
        "eager": eager["s"],
        "captured": captured["s"],
        "same": eager["result"] == captured["result"],
        **_extras(eager, captured),
    }


def lyrics_row(model: Any, tokenizer: Any, tokens: int = 200) -> dict[str, Any]:
    """Tokens a second through the lyrics writer's loop (``decoding.sample_tokens``), seeded."""
    import torch

    import decoding

    prompt = tokenizer("Write a song about rain on the city.").input_ids

    def run() -> list[int]:
        torch.manual_seed(0)
        return list(decoding.sample_tokens(model, prompt, tokens, 0.8, 0.9, lambda: False))

    _timed(model.device, "off", lambda: list(decoding.sample_tokens(model, prompt, 4, 0.8, 0.9, lambda: False)))
    eager, captured = _timed(model.device, "off", run), _timed(model.device, "auto", run)
    return {
        "what": "lyrics writer, tokens a second",
        "eager": tokens / eager["s"],
        "captured": tokens / captured["s"],
        "same": eager["result"] == captured["result"],
        **_extras(eager, captured),
    }


def dit_row(pipe: Any, seconds: float, steps: int) -> dict[str, Any]:
    """ms per guided DiT step for one take of ``seconds`` (steps after the first, in a
    ``steps``-step call), and the largest difference of the final latents against eager."""

    import graphs

    def run() -> Any:
        stamps: list[float] = []

        def on_step(_pipe: Any, _i: int, _t: Any, _kwargs: Any) -> dict[str, Any]:
            _sync(pipe.device)
            stamps.append(time.perf_counter())
            return {}

        request = bench_run.request_for("sft", seconds)
        request.pop("seeds")
        request["num_inference_steps"] = steps
        with graphs.replaying(pipe.transformer, "DiT"):
            latents = bench_run.model_run(pipe, request, [0], decode=False, on_step=on_step)
        return latents.float(), (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)

    eager, captured = _timed(pipe.device, "off", run), _timed(pipe.device, "auto", run)
    difference = float((eager["result"][0] - captured["result"][0]).abs().max())
    return {
        "what": f"DiT at {seconds:g} s, ms a step",
        "eager": 1e3 * eager["result"][1],
        "captured": 1e3 * captured["result"][1],
        "same": f"{difference:.3g}",
        **_extras(eager, captured),
    }


def _extras(eager: dict[str, Any], captured: dict[str, Any]) -> dict[str, Any]:
    return {
        "capture_s": captured["capture_s"],
        "captures": captured["captures"],
        "fell_back": captured["fell_back"],
        "peak_eager": eager["peak_gib"],
        "peak_captured": captured["peak_gib"],
    }


# ---------------------------------------------------------------- the table


def rows(size: str, device: str, lengths: list[float], lyrics: bool, steps: int = 8, codes: int = 300) -> list[dict]:
    """Every row: the planner (1 and 4 takes, ``codes`` codes; Think's song of ``codes`` / 5 seconds),
    the lyrics writer if asked, the DiT at each of ``lengths`` seconds."""
    import torch

    found = []
    model, tokenizer = planner_model(size, device)
    found += [planner_row(model, tokenizer, takes, codes) for takes in (1, 4)]
    found.append(think_row(model, tokenizer, seconds=codes // 5))
    del model
    if lyrics:
        model, tokenizer = lyrics_model(size, device)
        found.append(lyrics_row(model, tokenizer))
        del model
    if str(device).startswith("cuda"):
        torch.cuda.empty_cache()
    pipe = dit_pipeline(size, device)
    found += [dit_row(pipe, seconds, steps) for seconds in lengths]
    return found


def _gib(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def table(found: list[dict[str, Any]]) -> str:
    lines = [
        "| what | eager | captured | same (tokens / latents' largest difference) | capture s | graphs | fell back | "
        "GPU peak reserved GiB eager / captured |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in found:
        lines.append(
            f"| {r['what']} | {r['eager']:.2f} | {r['captured']:.2f} | {r['same']} | {r['capture_s']:.3f} | "
            f"{r['captures']} | {r['fell_back']} | {_gib(r['peak_eager'])} / {_gib(r['peak_captured'])} |"
        )
    return "\n".join(lines)
