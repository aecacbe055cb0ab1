"""A visitor's LoRA file: read from its header, checked against the model's layer sizes.

The file is refused in words before it costs a GPU turn: not a LoRA, half a pair, an odd dtype, or
made for another model. Loading and unloading it happen inside ``backend.Backend.run``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


class BadLora(ValueError):
    """An uploaded file is not a LoRA, or not one for the loaded model."""


# Adapter name of a visitor's LoRA; it exists only inside ``Backend.run`` under the lock.
LORA_ADAPTER = "visitor"
_LORA_KEY = re.compile(
    r"^(?:transformer\.)?(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[^.]+)?\.weight$"
)


# What a LoRA's matrices may be stored as (safetensors dtype names).
LORA_DTYPES = {"F16", "BF16", "F32", "F64"}


def read_lora_header(path: str) -> list[str]:
    """The tensor names of a LoRA ``.safetensors`` file, read from its header alone.

    Raises ``BadLora`` for anything that is not a safetensors file of LoRA weights: no LoRA
    tensors, an A matrix without its B (or the reverse), or weights that are not floating point.
    """
    from safetensors import safe_open

    name = Path(path).name
    if not Path(path).is_file():
        raise BadLora("The LoRA file is missing; upload it again.")
    if not name.lower().endswith(".safetensors"):
        raise BadLora(f"{name} is not a .safetensors file. LoRAs for the studio come as .safetensors.")
    try:
        with safe_open(path, framework="np") as f:
            keys = list(f.keys())
            dtypes = {k: f.get_slice(k).get_dtype() for k in keys}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in keys if _LORA_KEY.match(k)}
    except Exception:
        raise BadLora(f"{name} cannot be read as a .safetensors file; it may be damaged or incomplete.") from None
    parts: dict[str, set[str]] = {}
    for key in keys:
        match = _LORA_KEY.match(key)
        if match:
            parts.setdefault(match["module"], set()).add(match["part"])
    if not parts:
        raise BadLora(f"{name} holds no LoRA weights (no lora_A / lora_B tensors). Is it a full model instead?")
    unpaired = sorted(m for m, p in parts.items() if p != {"A", "B"})
    if unpaired:
        raise BadLora(
            f"{name} is incomplete: {len(unpaired)} of its {len(parts)} layers have only half of their LoRA "
            f"pair (lora_A without lora_B, or the reverse; first: {unpaired[0]})."
        )
    check_ranks(shapes, name)
    odd = sorted({dtypes[k] for k in keys if _LORA_KEY.match(k) and dtypes[k] not in LORA_DTYPES})
    if odd:
        raise BadLora(
            f"{name} stores its weights as {', '.join(odd)}; the studio takes LoRAs in float16, bfloat16 or float32."
        )
    return keys


def check_ranks(shapes: dict[str, tuple[int, ...]], name: str) -> None:
    """Raise ``BadLora`` unless each layer's A and B matrices share their rank (A is rank × inputs,
    B outputs × rank): PEFT would fail on them only inside the GPU turn, with its own words."""
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, shape in shapes.items():
        match = _LORA_KEY.match(key)
        if match:
            pairs.setdefault(match["module"], {})[match["part"]] = shape
    for module, pair in sorted(pairs.items()):
        a, b = pair.get("A"), pair.get("B")
        if a is None or b is None:
            continue
        if len(a) < 2 or len(b) < 2 or a[0] != b[1]:
            raise BadLora(
                f"{name} is inconsistent: in {module} the lora_A matrix has rank {a[0] if a else '?'} but lora_B "
                f"has rank {b[1] if len(b) > 1 else '?'}. Export the LoRA again."
            )


def layer_sizes(transformer: Any) -> dict[str, tuple[int, int]]:
    """``{layer name: (inputs, outputs)}`` for every linear or convolution layer a LoRA could target."""
    sizes = {}
    for name, layer in transformer.named_modules():
        size_in = getattr(layer, "in_features", None) or getattr(layer, "in_channels", None)
        size_out = getattr(layer, "out_features", None) or getattr(layer, "out_channels", None)
        if size_in and size_out:
            sizes[name] = (size_in, size_out)
    return sizes


def check_lora_fits(state_dict: dict[str, Any], sizes: dict[str, tuple[int, int]], label: str) -> None:
    """Raise ``BadLora`` unless every LoRA matrix in ``state_dict`` fits a layer in ``sizes``."""
    pairs = [(k, _LORA_KEY.match(k)) for k in state_dict]
    misfits = []
    for key, match in pairs:
        if match is None:
            continue
        size = sizes.get(match["module"])
        shape = tuple(state_dict[key].shape)
        fits = (
            size is not None
            and len(shape) >= 2
            and (shape[1] == size[0] if match["part"] == "A" else shape[0] == size[1])
        )
        if not fits:
            misfits.append(match["module"])
    check_ranks({k: tuple(state_dict[k].shape) for k, m in pairs if m is not None}, "This LoRA")
    used = [m for _, m in pairs if m is not None]
    if not used:
        raise BadLora("The file holds no LoRA weights (no lora_A / lora_B tensors).")
    if misfits:
        raise BadLora(
            f"This LoRA was made for a different model: {len(misfits)} of its {len(used)} weight matrices do not "
            f"fit {label} (first: {misfits[0]}). Use a LoRA trained on this model."
        )
