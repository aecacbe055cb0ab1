"""A LoKr adapter on the DiT for one request, through LyCORIS as upstream loads it (ACE-Step PR #530).

Upstream builds a LyCORIS network on its decoder and loads ``lokr_weights.safetensors`` into it; each
adapted layer's forward becomes the base layer's plus ``x @ ΔWᵀ``, ``ΔW = kron(w1, w2) · alpha / rank``
at the adapter's multiplier (its strength; with a DoRA scale, LyCORIS's weight decomposition). Here the
file's layer names (upstream's, or diffusers') are mapped onto the diffusers DiT (``lora.lokr_layer_names``)
and LyCORIS builds each layer's module from the tensors themselves (``create_lycoris_from_weights``), so
a file loads as it was trained whatever its factorisation. ``attach`` wraps the layers, ``detach`` puts
them back as they were; both run inside ``backend.Backend.run`` under the pipeline lock. The file was
checked first (``lora.check_file``): a layer the model lacks is left out, as the header check counted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import error_messages
import lora

# LyCORIS's eager torch ops: its Triton and torch.compile kernels would be built inside a ZeroGPU call,
# or while the DiT's steps are captured as CUDA graphs (``graphs``). LyCORIS reads the choice from the
# environment at every call: set once for the process as it imports this module (``backend`` does at start),
# never in a request, so the environment a request sees is the one the process started with.
os.environ.setdefault("LYCORIS_KERNEL_BACKEND", "torch")


def attach(transformer: Any, path: str, multiplier: float, label: str, device: Any = None) -> Any:
    """The LoKr adapter in ``path`` wrapped around ``transformer``'s layers at ``multiplier`` (its strength),
    on ``device`` in the transformer's dtype; returns the LyCORIS network ``detach`` takes. Raises
    ``lora.BadLora`` (in words naming the file and "LoKr adapter") when LyCORIS cannot build it, or
    when none of its layers is one LyCORIS can adapt."""
    import torch
    from lycoris import create_lycoris_from_weights
    from safetensors.torch import load_file

    name = Path(path).name
    names = lora.lokr_layer_names(lora.layer_sizes(transformer))
    state = {}
    for key, value in load_file(path).items():
        module, part = key.split(".", 1)
        if (layer := names.get(module)) is not None:
            state[f"{lora.LOKR_PREFIX}{layer.replace('.', '_')}.{part}"] = value
    dtype = next(transformer.parameters()).dtype
    try:
        with torch.no_grad():
            network, _ = create_lycoris_from_weights(multiplier, None, transformer, weights_sd=state)
            network.to(device=device, dtype=dtype).requires_grad_(False)
    except Exception as exc:
        raise lora.BadLora(error_messages.LOKR_NOT_APPLIED.format(name=name, label=label, error=exc)) from None
    network.loras = [m for m in network.loras if not m.not_supported]
    named = {key.split(".", 1)[0] for key in state} or {name}
    lora.landed(network.loras, named, label, name, "LoKr adapter")
    network.apply_to()
    return network


def detach(network: Any) -> None:
    """Every layer ``attach`` wrapped back as it was: LyCORIS's restore, then the plain forward it leaves
    as the layer's own attribute dropped (the class's forward is the same call), so the model is bare."""
    network.restore()
    for module in network.loras:
        layer = module.org_module[0]
        kept = layer.__dict__.get("forward")
        if getattr(kept, "__self__", None) is layer and getattr(kept, "__func__", None) is type(layer).forward:
            del layer.forward


def wrapped(transformer: Any) -> bool:
    """Whether any layer of ``transformer`` still carries a LoKr adapter's wrapper."""
    return any(
        "_lycoris_wrappers" in m.__dict__ or "_lycoris_original_forward" in m.__dict__ for m in transformer.modules()
    )
