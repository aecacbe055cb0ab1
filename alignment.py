"""The lyric-alignment pass on the GPU side: one extra DiT forward over every take at once, which
keeps the lyric cross-attention of chosen layers and heads.

As upstream ACE-Step does it (``acestep/handler.py``, ``get_lyric_timestamp``/``get_lyric_score``):
the final latent is re-noised to t = 1/steps (noise from seed 42), the DiT runs once with the
request's own condition, and the cross-attention probabilities softmax(QKᵀ) of upstream's chosen
heads (``custom_layers_config``) are kept over the lyric tokens. They are reduced here, on the
device, to the two matrices ``lrc`` aligns (DTW) and scores. The forward stops after the deepest
chosen layer (upstream's ``enable_early_exit``): the rest of the DiT cannot change what was kept.

The capture is a custom attention processor set on the chosen layers for this pass only, around
the layer's own processor (whose output the next layers see unchanged); the originals are restored
after it, also when it fails.
"""

from __future__ import annotations

from typing import Any

# Upstream's chosen (layer: heads). The 2B DiT's table is ``_DEFAULT_LAYERS_CONFIG`` in
# ``acestep/core/generation/handler/lyric_alignment_common.py``; the XL DiTs (32 layers × 32 heads)
# carry theirs as ``lyric_alignment_layers_config`` in the checkpoint's config.json.
UPSTREAM_2B = {2: (6,), 3: (10, 11), 4: (3,), 5: (8, 9), 6: (8,)}
UPSTREAM_XL = {3: (18, 27), 4: (22,), 5: (5, 6, 7), 6: (2, 12, 13), 7: (20, 21)}
BY_SHAPE = {(24, 16): UPSTREAM_2B, (32, 32): UPSTREAM_XL}
NOISE_SEED = 42  # upstream's seed for the re-noising
VIOLENCE = 2.0  # upstream's median suppression strength for the timestamps


def heads_for(config: Any) -> dict[int, tuple[int, ...]]:
    """The (layer: heads) whose attention aligns lyrics: the checkpoint's own table when its config
    has one, else upstream's for the DiT's shape; a DiT upstream has none for (the tests' tiny
    models) uses every head of its first quarter of layers, where upstream's chosen heads lie."""
    given = getattr(config, "lyric_alignment_layers_config", None)
    if isinstance(given, dict) and given:
        return {int(k): tuple(int(h) for h in v) for k, v in given.items()}
    known = BY_SHAPE.get((config.num_hidden_layers, config.num_attention_heads))
    if known is not None:
        return known
    return {layer: tuple(range(config.num_attention_heads)) for layer in range(max(1, config.num_hidden_layers // 4))}


class _Enough(Exception):
    """Raised after the deepest chosen layer: the rest of the forward is not needed."""


class _Probe:
    """Cross-attention processor of one chosen layer: keeps its chosen heads' attention
    probabilities over the lyric columns ``[takes, tokens, frames]``, then attends as before."""

    def __init__(self, inner: Any, heads: tuple[int, ...], columns: slice, kept: list[Any]) -> None:
        self.inner, self.heads, self.columns, self.kept = inner, heads, columns, kept

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        import torch

        query = attn.norm_q(attn.to_q(hidden_states).unflatten(-1, (attn.heads, attn.head_dim)))
        key = attn.norm_k(attn.to_k(encoder_hidden_states).unflatten(-1, (attn.kv_heads, attn.head_dim)))
        group = attn.heads // attn.kv_heads  # grouped-query attention: query head h reads key head h // group
        for head in self.heads:  # one head at a time: a head's scores over every column are the peak
            scores = torch.einsum("bqd,bkd->bqk", query[:, :, head].float(), key[:, :, head // group].float())
            probs = (scores * attn.scaling).softmax(dim=-1)
            self.kept.append(probs[:, :, self.columns].transpose(1, 2).contiguous())
        return self.inner(
            attn,
            hidden_states,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=attention_mask,
            image_rotary_emb=image_rotary_emb,
        )


def capture(transformer: Any, inputs: dict[str, Any], columns: slice) -> Any:
    """One forward of ``transformer`` on ``inputs`` keeping the chosen heads' lyric attention:
    ``[takes, heads, tokens, frames]`` (float32, on the device)."""
    import torch

    chosen = {layer: heads for layer, heads in heads_for(transformer.config).items() if layer < len(transformer.layers)}
    kept: dict[int, list[Any]] = {layer: [] for layer in chosen}
    originals = {layer: transformer.layers[layer].cross_attn.processor for layer in chosen}

    def enough(*_args: Any) -> None:
        raise _Enough

    handle = transformer.layers[max(chosen)].register_forward_hook(enough)
    try:
        for layer, heads in chosen.items():
            transformer.layers[layer].cross_attn.set_processor(_Probe(originals[layer], heads, columns, kept[layer]))
        with torch.no_grad():
            transformer(**inputs, return_dict=False)
    except _Enough:
        pass
    finally:
        handle.remove()
        for layer, processor in originals.items():
            transformer.layers[layer].cross_attn.set_processor(processor)
    return torch.stack([probs for layer in sorted(kept) for probs in kept[layer]], dim=1)


def _median(x: Any, dim: int) -> Any:
    """``torch.quantile(x, 0.5, dim)`` (the mean of the two middle values), which refuses inputs
    over 16 M elements: a 4-minute song's heads × tokens × frames passes that."""
    ordered = x.sort(dim=dim).values
    n = x.shape[dim]
    return (ordered.narrow(dim, (n - 1) // 2, 1) + ordered.narrow(dim, n // 2, 1)) / 2


def reduce(probs: Any) -> tuple[Any, Any]:
    """One take's heads ``[heads, tokens, frames]`` → (the timestamps' matrix, the score's energy),
    as upstream reduces them: its bidirectional consensus (row × column softmax, median suppression
    both ways, squared, z-scored, mean of heads), and the heads' mean min-max scaled to [0, 1]."""
    import torch

    p = probs.softmax(dim=-1) * probs.softmax(dim=-2)
    p = (p - VIOLENCE * _median(p, -1)).relu()
    p = (p - VIOLENCE * _median(p, -2)).relu()
    p = p**2
    std, mean = torch.std_mean(p, correction=0)
    stamps = ((p - mean) / (std + 1e-9)).mean(dim=0)
    avg = probs.mean(dim=0)
    lo, hi = avg.min(), avg.max()
    energy = (avg - lo) / (hi - lo) if float(hi - lo) > 1e-9 else torch.zeros_like(avg)
    return stamps, energy


def align(
    transformer: Any,
    latents: Any,
    condition: Any,
    context: Any,
    steps: int,
    columns: slice,
    attention_kwargs: dict[str, Any] | None = None,
) -> list[tuple[Any, Any]]:
    """The pass for every take at once: ``latents`` ``[takes, frames, channels]`` (the final ones),
    ``condition``/``context`` as the last diffusion step gave them to the DiT (their first ``takes``
    rows: guidance's unconditional half follows). Returns per take (stamps, energy) as float32 numpy
    ``[tokens, DiT frames]``."""
    import torch

    takes = latents.shape[0]
    t = 1.0 / max(1, int(steps))
    noise = torch.stack(
        [torch.randn(latents.shape[1:], generator=torch.Generator("cpu").manual_seed(NOISE_SEED)) for _ in range(takes)]
    ).to(device=latents.device, dtype=latents.dtype)
    timestep = torch.full((takes,), t, device=latents.device, dtype=latents.dtype)
    inputs = {
        "hidden_states": t * noise + (1.0 - t) * latents,
        "timestep": timestep,
        "timestep_r": timestep,
        "encoder_hidden_states": condition[:takes],
        "context_latents": context[:takes],
        "attention_kwargs": attention_kwargs,
    }
    probs = capture(transformer, inputs, columns)
    out = []
    for take in probs:
        stamps, energy = reduce(take)
        out.append((stamps.float().cpu().numpy(), energy.float().cpu().numpy()))
    return out


class Pass:
    """The pass as a diffusion call runs it: ``watch()`` keeps what the DiT is given (the request's
    condition and context) during the call's steps; called from the step callback with the final
    latents, it runs ``align`` while the DiT is still on the device (before the VAE decode)."""

    def __init__(self, pipe: Any, steps: int, columns: slice) -> None:
        self.pipe, self.steps, self.columns = pipe, steps, columns
        self.inputs: dict[str, Any] = {}
        self.matrices: list[tuple[Any, Any]] | None = None
        self.seconds = 0.0

    def watch(self) -> Any:
        """A forward pre-hook on the DiT; remove the returned handle after the call."""

        def keep(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
            self.inputs = {k: kwargs.get(k) for k in ("encoder_hidden_states", "context_latents")}

        return self.pipe.transformer.register_forward_pre_hook(keep, with_kwargs=True)

    def __call__(self, latents: Any) -> None:
        import time

        started = time.perf_counter()
        condition, context = self.inputs.get("encoder_hidden_states"), self.inputs.get("context_latents")
        if condition is None or context is None:
            return
        self.matrices = align(
            self.pipe.transformer,
            latents,
            condition,
            context,
            self.steps,
            self.columns,
            getattr(self.pipe, "attention_kwargs", None),
        )
        self.seconds = time.perf_counter() - started
