"""What a request's adapters cost the GPU call: loading and removing one and three (LoRA, LoKr, mixed).

``python tools/bench_adapters.py [--size tiny|xl] [--repeats N]`` times ``Backend.attach_adapters`` then
``drop_adapters`` (the run's own load and unload, under no lock) on the CPU and prints a Markdown table of
the median CPU seconds and wall seconds. ``tiny`` is the tests' model; ``xl`` is the XL DiT's 32 layers with
their real attention shapes in bf16 (its MLP shrunk: no adapter here targets it, and the whole DiT would not
fit a 6 GB process), inside the tiny pipeline. The adapters target the attention projections (upstream's
default targets): a LoRA of rank 64 (the official LoRA's) and a LoKr at upstream's trainer defaults
(``LoKRConfig``: linear_dim 64, alpha 128, factor -1, which on XL's sizes keeps both factors whole). The
file checks are kept per file, so the timed requests after the first read no file's numbers again.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import studio_root

studio_root.reach()

import random_models  # noqa: E402


def build(size: str) -> Any:
    """A backend whose DiT is ``size``'s (``tiny``, or XL's attention shapes in bf16)."""
    import torch
    from diffusers import AceStepTransformer1DModel

    import backend
    import models

    pipe = random_models.build_pipeline("tiny")
    if size == "xl":
        s = random_models.XL_SHAPES
        with torch.device("meta"):
            transformer = AceStepTransformer1DModel(
                hidden_size=s["hidden_size"],
                intermediate_size=64,
                num_hidden_layers=s["num_hidden_layers"],
                num_attention_heads=s["num_attention_heads"],
                num_key_value_heads=s["num_key_value_heads"],
                head_dim=s["head_dim"],
                in_channels=3 * s["acoustic_dim"],
                audio_acoustic_hidden_dim=s["acoustic_dim"],
                encoder_hidden_size=s["encoder_hidden_size"],
            )
        transformer = transformer.to(dtype=torch.bfloat16).to_empty(device="cpu")
        for parameter in transformer.parameters():
            torch.nn.init.normal_(parameter, std=0.02)
        pipe.transformer = transformer
    variant = models.VARIANTS["xl-sft"]
    return backend.Backend(pipe=pipe, variant=variant, source="bench", device="cpu", load_seconds=0.0)


def adapter_files(be: Any, size: str, folder: Path) -> dict[str, Path]:
    """One LoRA and one LoKr for ``be``'s DiT (module docstring's ranks)."""
    transformer = be.pipe.transformer
    if size == "xl":
        lokr = random_models.save_lokr(folder / "lokr.safetensors", transformer, rank=64, alpha=128.0, halves=())
        return {"lora": random_models.save_lora(folder / "lora.safetensors", transformer, rank=64), "lokr": lokr}
    return {
        "lora": random_models.save_lora(folder / "lora.safetensors", transformer),
        "lokr": random_models.save_lokr(folder / "lokr.safetensors", transformer),
    }


def timed(be: Any, adapters: tuple[dict[str, Any], ...], repeats: int) -> tuple[float, float]:
    """Median (CPU s, wall s) of loading and removing ``adapters``."""
    be.attach_adapters(adapters)  # the first: the files' checks, kept from then on
    be.drop_adapters()
    cpu, wall = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        be.attach_adapters(adapters)
        be.drop_adapters()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return statistics.median(cpu), statistics.median(wall)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "xl"), default="tiny")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    be = build(args.size)
    with tempfile.TemporaryDirectory() as folder:
        files = adapter_files(be, args.size, Path(folder))

        def one(kind: str, scale: float) -> dict[str, Any]:
            return {"path": str(files[kind]), "scale": scale, "alpha": 1.0, "name": kind}

        cases = {
            "one LoRA": (one("lora", 1.0),),
            "one LoKr": (one("lokr", 1.0),),
            "three LoRAs": (one("lora", 1.0), one("lora", 0.5), one("lora", 0.8)),
            "three LoKr": (one("lokr", 1.0), one("lokr", 0.5), one("lokr", 0.8)),
            "mixed: two LoRAs and a LoKr": (one("lora", 1.0), one("lokr", 0.7), one("lora", 0.5)),
        }
        sizes = {kind: path.stat().st_size / 2**20 for kind, path in files.items()}
        print(
            f"{args.size}: LoRA file {sizes['lora']:.1f} MB, LoKr file {sizes['lokr']:.1f} MB; median of {args.repeats}"
        )
        print("| adapters | CPU s | wall s |\n|---|---|---|")
        for label, adapters in cases.items():
            cpu, wall = timed(be, adapters, args.repeats)
            print(f"| {label} | {cpu:.3f} | {wall:.3f} |")


if __name__ == "__main__":
    main()
