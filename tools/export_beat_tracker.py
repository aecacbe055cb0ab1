"""Beat This!'s network as data for the studio (``beat_network``): a checkpoint loaded as
``beat_this.inference.load_model`` loads it (``torch.load(weights_only=True)``, ``BeatThis`` built from the
hyper-parameters its signature takes, the state dict without its ``model.`` prefix), exported with
``torch.export`` on a (1, frames, 128) mel chunk of 33 to 1500 frames (``beat_network.dynamic_shapes``) and saved
as ``.pt2``; the saved program is loaded back and checked against the eager model on random chunks of 1500 and
700 frames, and its SHA-256 printed (``beat_network.SHA256``).

Runs ONLY in a venv with ``beat-this`` (its ``beat_this.model`` imports without torchaudio), on the torch the
studio pins (``requirements.txt``: a ``.pt2`` is read by the torch that wrote it), never the studio's own:

    /work/trackvenv/bin/python tools/export_beat_tracker.py small0.ckpt small0.pt2
    /work/trackvenv/bin/python tools/export_beat_tracker.py --random small0 random-small0.pt2  # the bench's

The authors' ``small0.ckpt`` (MIT) has SHA-256 6074be2c4d490c5f6101fcc374a1ec72ae93456e23bb6019783b849f5dc7d47b
(docs/performance.md, "Beat trackers compared"); it is checked where given.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import beat_network  # noqa: E402 (the studio's module: light at import, its shapes)

SMALL0_SHA256 = "6074be2c4d490c5f6101fcc374a1ec72ae93456e23bb6019783b849f5dc7d47b"
SHAPES = {"final0": 512, "small0": 128}  # transformer_dim; the rest is BeatThis's defaults


def eager(checkpoint: Path | None, shape: str = "small0", seed: int = 0) -> Any:
    """The model in eval mode: from ``checkpoint`` as ``load_model`` reads one, else random at ``shape``."""
    import torch
    from beat_this.model.beat_tracker import BeatThis

    if checkpoint is None:
        torch.manual_seed(seed)
        return BeatThis(transformer_dim=SHAPES[shape]).eval()
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    takes = set(inspect.signature(BeatThis).parameters)
    model = BeatThis(**{k: v for k, v in saved["hyper_parameters"].items() if k in takes})
    model.load_state_dict({k.removeprefix("model."): v for k, v in saved["state_dict"].items()})
    return model.eval()


def export(model: Any, out: Path, checks: int = 2) -> dict[str, Any]:
    """``model`` exported to ``out``; the loaded program's largest difference from the eager model on
    ``checks`` random chunks, the file's size and SHA-256, and the CPU seconds of export and load."""
    import torch

    cpu = time.process_time()
    with torch.no_grad():
        chunk = torch.zeros(1, beat_network.CHUNK, beat_network.BANDS)
        program = torch.export.export(model, (chunk,), dynamic_shapes=beat_network.dynamic_shapes())
    torch.export.save(program, str(out))
    exported, cpu = time.process_time() - cpu, time.process_time()
    loaded = torch.export.load(str(out)).module()
    found = {"export_cpu_s": exported, "load_cpu_s": time.process_time() - cpu, "max_diff": 0.0}
    with torch.inference_mode():
        for i in range(checks):
            frames = beat_network.CHUNK if i % 2 == 0 else 700  # a whole chunk, and a short song's
            chunk = torch.rand(1, frames, beat_network.BANDS, generator=torch.Generator().manual_seed(i)) * 6
            ours, theirs = loaded(chunk), model(chunk)
            for key in ("beat", "downbeat"):
                found["max_diff"] = max(found["max_diff"], float((ours[key] - theirs[key]).abs().max()))
    data = out.read_bytes()
    return found | {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def main(argv: list[str] | None = None) -> None:
    made = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    made.add_argument("checkpoint", nargs="?", type=Path, help="a Beat This! .ckpt (the authors' small0.ckpt)")
    made.add_argument("out", type=Path, help="the .pt2 to write")
    made.add_argument("--random", choices=sorted(SHAPES), help="random weights at this shape (no checkpoint)")
    args = made.parse_args(argv)
    if (args.checkpoint is None) == (args.random is None):
        made.error("give a checkpoint or --random SHAPE")
    if args.checkpoint is not None and args.checkpoint.name == "small0.ckpt":
        digest = hashlib.sha256(args.checkpoint.read_bytes()).hexdigest()
        if digest != SMALL0_SHA256:
            made.error(f"{args.checkpoint} is not the authors' small0.ckpt (SHA-256 {digest})")
    found = export(eager(args.checkpoint, args.random or "small0"), args.out)
    print(
        f"{args.out}: {found['bytes'] / 1e6:.1f} MB, SHA-256 {found['sha256']} (beat_network.SHA256); exported in "
        f"{found['export_cpu_s']:.1f} CPU s, loaded in {found['load_cpu_s']:.1f}; largest difference from the eager "
        f"model {found['max_diff']:.2e}"
    )


if __name__ == "__main__":
    main()
