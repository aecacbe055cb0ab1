"""The DiT's work counted (``python tools/bench.py --work-only``, and each speed row's TFLOP/s and
MFU): FLOPs of a forward on a meta copy (shapes without memory or kernels), at XL's published shapes
or the model's own, and the device's dense bf16 peak.
"""

from __future__ import annotations

from typing import Any

# Dense bf16 tensor-core peaks (no sparsity), for model FLOPs utilisation.
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 80GB HBM3": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "RTX 4090": 165.0,
}


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
