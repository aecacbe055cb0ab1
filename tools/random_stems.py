"""A tiny random Demucs bag, built with Demucs's own ``HTDemucs`` and laid out as the studio reads
``htdemucs_ft`` (``stems.weights_folder``): the bag's ``htdemucs_ft.yaml`` and one ``.safetensors``
per model, its class and init arguments as JSON in the file's metadata (the layout of the Demucs
maintainer's Hub export, read by ``demucs.hf.load_safetensors_model``). A tool, like ``random_models``
(a module of its own: it builds Demucs's classes, which the music models do not need).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

# The real bag's signatures, one model per source (htdemucs_ft.yaml's one-hot weights).
SIGNATURES = ("f7e0c4bc", "d12395a8", "92cfc3b6", "04573f0d")
SOURCES = ["drums", "bass", "other", "vocals"]
# Four layers as the real model (so its attention sees short sequences), four channels, 1 s segments.
TINY = {
    "channels": 4,
    "depth": 4,
    "nfft": 1024,
    "t_layers": 1,
    "t_heads": 1,
    "dconv_depth": 1,
    "dconv_comp": 2,
    "segment": Fraction(1, 1),
}


def _encode(value: Any) -> Any:
    if isinstance(value, Fraction):
        return {"_type": "fraction", "numerator": value.numerator, "denominator": value.denominator}
    return value


def save_stems_model(folder: str | Path, seed: int = 0, hub_repo: str | None = None, **sizes: Any) -> Path:
    """Write a tiny random ``htdemucs_ft`` bag into ``folder`` and return the folder the studio
    reads. With ``hub_repo`` (``"adefossez/HTDemucs-ft"``), ``folder`` is a Hub cache
    (``HF_HUB_CACHE``) and the bag is laid out as a snapshot of that repo."""
    import torch
    import yaml
    from demucs.htdemucs import HTDemucs
    from safetensors.torch import save_file

    target = Path(folder)
    if hub_repo is not None:
        revision = "0" * 40
        repo = target / f"models--{hub_repo.replace('/', '--')}"
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(revision)
        target = repo / "snapshots" / revision
    target.mkdir(parents=True, exist_ok=True)
    kwargs = {"sources": SOURCES, **TINY, **sizes}
    for i, sig in enumerate(SIGNATURES):
        torch.manual_seed(seed + i)
        model = HTDemucs(**kwargs)
        metadata = {
            "klass": "demucs.htdemucs.HTDemucs",
            "args": "[]",
            "kwargs": json.dumps({k: _encode(v) for k, v in kwargs.items()}),
        }
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(target / f"{sig}.safetensors"), metadata=metadata)
    weights = [[1.0 if j == SOURCES.index(s) else 0.0 for j in range(4)] for s in ("drums", "bass", "other", "vocals")]
    (target / "htdemucs_ft.yaml").write_text(yaml.safe_dump({"models": list(SIGNATURES), "weights": weights}))
    return target


def measure(seconds: float, folder: Path) -> dict[str, float]:
    """Split ``seconds`` of noise with the bag in ``folder`` (the studio's own ``stems.separate``):
    wall and CPU seconds per minute of audio, and the process's peak RSS before and after."""
    import os
    import resource
    import time

    import numpy as np

    os.environ["ACE_STUDIO_STEMS_MODEL"] = str(folder)
    import audio
    import stems

    stems.get_separator()
    mix = (0.1 * np.random.default_rng(0).standard_normal((2, int(seconds * audio.SAMPLE_RATE)))).astype(np.float32)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu, rss, started = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, time.perf_counter()
    stems.residual(mix, stems.separate(mix)["stems"])
    wall, usage = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    return {
        "audio_s": seconds,
        "wall_s_per_audio_min": round(wall / seconds * 60, 1),
        "cpu_s_per_audio_min": round((usage.ru_utime + usage.ru_stime - cpu) / seconds * 60, 1),
        "peak_rss_mb_before": round(rss),
        "peak_rss_mb_after": round(usage.ru_maxrss / 1024),
    }


def main(argv: list[str] | None = None) -> None:
    """``python tools/random_stems.py DIR``: write the tiny bag and print how to serve the studio with it;
    ``--measure SECONDS`` also splits that much noise with it and prints the cost."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--measure", type=float, default=0.0)
    args = parser.parse_args(argv)
    import studio_root

    studio_root.reach()
    folder = save_stems_model(args.folder)
    print(f"ACE_STUDIO_STEMS_MODEL={folder}")
    if args.measure > 0:
        print(measure(args.measure, folder))


if __name__ == "__main__":
    main()
