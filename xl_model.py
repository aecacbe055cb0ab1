"""What diffusers' ACE-Step classes compute differently from upstream's XL model, made good at load time.

The XL weights were trained with upstream's own model code (``acestep/models/xl_sft/
modeling_acestep_v15_xl_base.py``; XL base and turbo alike), so where diffusers' classes differ the
studio corrects them here, once, for every checkpoint it loads, whatever its layout:

- **The timbre token** (``read_special_token``): upstream's timbre encoder puts its learned
  ``special_token`` in front of the reference frames and reads its output at that position; diffusers'
  ``AceStepTimbreEncoder`` loads the token, never prepends it, and reads the first reference frame
  instead. With no reference the silence latent is the reference, so every song is conditioned
  through it.
- **The config** (``component_configs``, ``honour_layers``): an upstream ``config.json`` read into
  each diffusers component's arguments. Every field upstream's model code reads is honoured (the
  layer pattern reaches the lyric and timbre encoders too; ``use_sliding_window: false`` takes every
  window away, as upstream's config class does) or, where a diffusers class cannot compute it
  (another activation, scaled RoPE), refused here by name instead of loading a model that computes
  something else.
- **RoPE's rounding** (``round_rope``): upstream's Qwen3 rotary embedding keeps its frequencies in a
  buffer, which the model's cast to bf16 (or fp16) rounds; the angles are then taken in float32 from
  those rounded frequencies, and the rotation ``q·cos + rotate_half(q)·sin`` is computed in the
  model's dtype. diffusers takes the angles from float32 frequencies and rotates in float32. In fp32
  the two are the same numbers; in bf16 every self-attention of the DiT and of the encoders differed
  (a whole run by about 1 % of its magnitude on a tiny checkpoint). Hooks make the rotation
  upstream's: the frequencies as a buffer of the model's dtype, the angles once per forward, the
  rotation applied to the query and key norms' outputs, and diffusers' own rotation not called.
- **The audio tokenizer's rounding** (``quantize_as_upstream``): upstream quantizes with
  vector-quantize-pytorch's ``ResidualFSQ``, whose soft clamp (1 + 1/(L − 1) per level) is a buffer
  rounded by the model's cast (bf16: 1.140625 for 8 levels, not 1.142857) and whose codebook is
  computed, under the model's dtype, in that dtype; Think's codes are turned back into latents
  through that codebook and a ``project_out`` in the model's dtype. diffusers' quantizer computes
  both in float32. Its two methods are replaced on the instance by the same steps with upstream's
  constants (diffusers' own level arithmetic reused), so a cover's codes and Think's blueprint are
  upstream's in bf16 too; in fp32 nothing changes.
- **The text encoder's RoPE** (``round_text_rope``): upstream's handler loads Qwen3-Embedding in
  float32 and casts it, which rounds its rotary frequencies (a buffer) to the model's dtype; the
  studio loads it in that dtype directly, which keeps them float32. Their values are rounded in place.
"""

from __future__ import annotations

from typing import Any

import error_messages

# Fields of an upstream config.json that only train (or describe) a model: nothing at inference reads them.
_TRAINING_ONLY = ("data_proportion", "timestep_mu", "timestep_sigma", "initializer_range", "use_cache")


class Refused(ValueError):
    """A checkpoint whose config asks for what the studio's model classes cannot compute."""


def alternating(n: int) -> list[str]:
    """Upstream's default layer pattern (and the only one diffusers' timbre encoder builds): sliding
    window on every odd layer, counted from 1."""
    return ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n)]


def _layer_types(cfg: dict[str, Any]) -> list[str]:
    """The layer pattern as upstream's config class sets it: the given one, else the alternation;
    with ``use_sliding_window`` false no layer has a window (upstream then builds no sliding mask)."""
    n = int(cfg["num_hidden_layers"])
    types = list(cfg.get("layer_types") or alternating(n))
    if len(types) < n or any(t not in ("sliding_attention", "full_attention") for t in types):
        raise Refused(error_messages.XL_LAYER_TYPES.format(types=types))
    if cfg.get("use_sliding_window", True) is False:
        return ["full_attention"] * len(types)
    return types


def check_config(cfg: dict[str, Any]) -> None:
    """Refuse, naming the field, what upstream's XL model code would read from ``cfg`` and the
    diffusers classes cannot compute."""
    act = cfg.get("hidden_act", "silu")
    if act != "silu":
        raise Refused(error_messages.XL_ACTIVATION.format(act=act))
    scaling = cfg.get("rope_scaling")
    if scaling and (not isinstance(scaling, dict) or (scaling.get("rope_type") or scaling.get("type")) != "default"):
        raise Refused(error_messages.XL_ROPE_SCALING.format(scaling=scaling))
    if cfg.get("is_lego_sft"):
        raise Refused(error_messages.XL_LEGO_SFT)
    layers = int(cfg["num_hidden_layers"])
    for field in ("num_lyric_encoder_hidden_layers", "num_timbre_encoder_hidden_layers"):
        # Upstream runs an encoder's first num_hidden_layers layers only; diffusers runs all of them.
        if int(cfg[field]) > layers:
            raise Refused(error_messages.XL_ENCODER_LAYERS.format(field=field, value=cfg[field], layers=layers))
    _layer_types(cfg)


def component_configs(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Constructor arguments of each diffusers component from an upstream ``config.json`` (checked
    first: ``Refused`` names a field the classes cannot honour)."""
    check_config(cfg)
    enc_hidden = cfg.get("encoder_hidden_size") or cfg["hidden_size"]
    enc = {
        "hidden_size": enc_hidden,
        "intermediate_size": cfg.get("encoder_intermediate_size") or cfg["intermediate_size"],
        "num_attention_heads": cfg.get("encoder_num_attention_heads") or cfg["num_attention_heads"],
        "num_key_value_heads": cfg.get("encoder_num_key_value_heads") or cfg["num_key_value_heads"],
    }
    types = _layer_types(cfg)
    common = {
        k: cfg[k]
        for k in ("head_dim", "rope_theta", "attention_bias", "attention_dropout", "rms_norm_eps", "sliding_window")
    }
    pooler_layers = cfg.get("num_attention_pooler_hidden_layers", 2)
    pooler = {
        "audio_acoustic_hidden_dim": cfg["audio_acoustic_hidden_dim"],
        "pool_window_size": cfg.get("pool_window_size", 5),
        "num_attention_pooler_hidden_layers": pooler_layers,
        "layer_types": types[:pooler_layers],
    }
    dit = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")
    dit += ("in_channels", "audio_acoustic_hidden_dim", "patch_size")
    return {
        "transformer": {
            **common,
            **{k: cfg[k] for k in dit},
            "layer_types": types,
            "encoder_hidden_size": enc_hidden,
            "is_turbo": bool(cfg.get("is_turbo", False)),
            "model_version": cfg.get("model_version"),
        },
        "condition_encoder": {
            **common,
            **enc,
            "text_hidden_dim": cfg["text_hidden_dim"],
            "timbre_hidden_dim": cfg["timbre_hidden_dim"],
            "num_lyric_encoder_hidden_layers": cfg["num_lyric_encoder_hidden_layers"],
            "num_timbre_encoder_hidden_layers": cfg["num_timbre_encoder_hidden_layers"],
            # Read by the lyric encoder, layer by layer, as upstream's reads config.layer_types.
            "layer_types": types,
        },
        "audio_tokenizer": {
            **common,
            **enc,
            **pooler,
            "fsq_dim": cfg.get("fsq_dim", enc_hidden),
            "fsq_input_levels": cfg.get("fsq_input_levels", [8, 8, 8, 5, 5, 5]),
            "fsq_input_num_quantizers": cfg.get("fsq_input_num_quantizers", 1),
        },
        "audio_token_detokenizer": {**common, **enc, **pooler},
    }


def honour_layers(pipe: Any) -> None:
    """Give the timbre encoder's layers the checkpoint's pattern (the condition encoder's
    ``layer_types``, as upstream's reads ``config.layer_types``): diffusers' timbre encoder builds
    the alternation whatever it is told, so where they differ each layer's window and mask are set
    as upstream's would be."""
    encoder = pipe.condition_encoder.timbre_encoder
    given = getattr(pipe.condition_encoder.config, "layer_types", None)
    types = list(given or alternating(len(encoder.layers)))[: len(encoder.layers)]
    if types == list(encoder._layer_types):
        return
    encoder._layer_types = types
    for layer, kind in zip(encoder.layers, types, strict=True):
        layer.self_attn.sliding_window = encoder.sliding_window if kind == "sliding_attention" else None


def match_upstream(pipe: Any) -> None:
    """Everything of this module a loaded pipeline needs, whatever its layout: the timbre encoder's
    layer pattern and its special token; RoPE, the audio tokenizer and the text encoder's RoPE rounded as
    upstream's."""
    honour_layers(pipe)
    read_special_token(pipe)
    round_rope(pipe)
    quantize_as_upstream(pipe)
    round_text_rope(pipe)


def read_special_token(pipe: Any) -> None:
    """Make ``pipe``'s timbre encoder read its ``special_token`` as upstream's XL does: put in front
    of the embedded reference frames, the output read at its position (diffusers' forward reads
    position 0, which then is the token). Done with a forward hook on the frame embedding, so the
    module, its weights' names and every other line of diffusers' forward stay as they are; once per
    encoder."""
    encoder = pipe.condition_encoder.timbre_encoder
    if getattr(encoder, "reads_special_token", False):
        return

    def prepend(_module: Any, _args: Any, frames: Any) -> Any:
        import torch

        token = encoder.special_token.to(dtype=frames.dtype, device=frames.device)
        return torch.cat([token.expand(frames.shape[0], 1, -1), frames], dim=1)

    encoder.embed_tokens.register_forward_hook(prepend)
    encoder.reads_special_token = True


def round_rope(pipe: Any) -> None:
    """Give every self-attention of ``pipe`` (the DiT, the lyric and timbre encoders, the audio
    tokenizer's pooler and the detokenizer) upstream's RoPE arithmetic; once per model, so a
    condition encoder shared by two pipelines is corrected once."""
    owners = [pipe.transformer, pipe.condition_encoder.lyric_encoder, pipe.condition_encoder.timbre_encoder]
    if getattr(pipe, "audio_tokenizer", None) is not None:
        owners.append(pipe.audio_tokenizer.attention_pooler)
    if getattr(pipe, "audio_token_detokenizer", None) is not None:
        owners.append(pipe.audio_token_detokenizer)
    for owner in owners:
        if not getattr(owner, "rounds_rope_as_upstream", False):
            _round_rope(owner)


def _round_rope(owner: Any) -> None:
    """Upstream's inverse frequencies (computed in float32, as its rotary module's init does) kept as
    a buffer in ``owner``'s dtype, so they are rounded as upstream's buffer is by the model's cast and
    follow the model to its device; each self-attention rotates with them."""
    import torch
    from diffusers.models.transformers.ace_step_transformer import AceStepAttention

    weight = next(owner.parameters())
    dim = owner.head_dim
    inv = 1.0 / (owner.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float32) / dim))
    owner.register_buffer("upstream_inv_freq", inv.to(device=weight.device, dtype=weight.dtype), persistent=False)
    for attn in owner.modules():
        if isinstance(attn, AceStepAttention) and not attn.is_cross_attention:
            _rotate_as_upstream(owner, attn)
    owner.rounds_rope_as_upstream = True


def _rotate_as_upstream(owner: Any, attn: Any) -> None:
    """Take the rotary pair diffusers hands ``attn`` (so its processor rotates nothing) and rotate the
    normed query and key with upstream's pair instead, as upstream rotates right after those norms."""
    held: dict[str, Any] = {}

    def take(_attn: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        given = kwargs.get("image_rotary_emb")
        held["pair"] = None if given is None else upstream_rope(owner, given[0])
        return None if given is None else (args, {**kwargs, "image_rotary_emb": None})

    def rotate_q(_norm: Any, _args: Any, out: Any) -> Any:
        pair = held.get("pair")
        return None if pair is None else rotated(out, *pair)

    def rotate_k(_norm: Any, _args: Any, out: Any) -> Any:
        pair = held.pop("pair", None)  # the key comes last: nothing is kept past the call
        return None if pair is None else rotated(out, *pair)

    attn.register_forward_pre_hook(take, with_kwargs=True)
    attn.norm_q.register_forward_hook(rotate_q)
    attn.norm_k.register_forward_hook(rotate_k)


def upstream_rope(owner: Any, cos: Any) -> tuple[Any, Any]:
    """Upstream's ``(cos, sin)`` for the positions of diffusers' ``cos`` (``[positions, head_dim]``):
    the angles in float32 from the rounded frequencies, then cast to the model's dtype. Computed once
    per forward (every layer is handed the same ``cos``; the pair goes with it)."""
    import torch

    pair = getattr(cos, "upstream_pair", None)
    if pair is not None:
        return pair
    inv = owner.upstream_inv_freq.to(device=cos.device).float()
    positions = torch.arange(cos.shape[0], device=cos.device, dtype=torch.float32)
    freqs = (inv[:, None] @ positions[None, :]).transpose(0, 1)
    angles = torch.cat((freqs, freqs), dim=-1)
    pair = (angles.cos().to(cos.dtype), angles.sin().to(cos.dtype))
    cos.upstream_pair = pair
    return pair


def rotated(x: Any, cos: Any, sin: Any) -> Any:
    """Upstream's rotation of ``x`` (``[batch, positions, heads, head_dim]``) in ``x``'s dtype: each
    product and the sum rounded (``q·cos + rotate_half(q)·sin``)."""
    import torch

    half = x.shape[-1] // 2
    turned = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos[:, None, :] + turned * sin[:, None, :]


def quantize_as_upstream(pipe: Any) -> None:
    """Give ``pipe``'s audio tokenizer (if it has one) upstream's quantizer constants: the soft clamp
    computed in the model's dtype (a buffer, cast with the model as upstream's is), and Think's codes
    read back through a codebook in that dtype; once per quantizer."""
    tokenizer = getattr(pipe, "audio_tokenizer", None)
    if tokenizer is None or getattr(tokenizer.quantizer, "quantizes_as_upstream", False):
        return
    fsq = tokenizer.quantizer
    levels = fsq._levels.to(device=fsq.project_in.weight.device, dtype=fsq.project_in.weight.dtype)
    fsq.register_buffer("upstream_soft_clamp", 1 + 1 / (levels - 1), persistent=False)
    fsq.forward = lambda hidden_states: quantized(fsq, hidden_states)
    fsq.get_output_from_indices = lambda indices: from_codes(fsq, indices)
    fsq.quantizes_as_upstream = True


def quantized(fsq: Any, hidden_states: Any) -> tuple[Any, Any]:
    """The residual FSQ of ``hidden_states`` as upstream's runs it (in float32, its constants as its
    buffers hold them): ``(quantized, indices)``, the quantized in ``hidden_states``' dtype."""
    import torch
    import torch.nn.functional as F

    bias = fsq.project_in.bias
    x = F.linear(hidden_states.float(), fsq.project_in.weight.float(), None if bias is None else bias.float())
    clamp = fsq.upstream_soft_clamp.float()
    residual = (x / clamp).tanh() * clamp
    total, indices = torch.zeros_like(residual), []
    for scale in fsq.scales.float():
        codes = fsq._quantize(residual / scale)
        indices.append(fsq._codes_to_indices(codes))  # from the codes, before the scale (as upstream)
        residual = residual - codes * scale
        total = total + codes * scale
    bias = fsq.project_out.bias
    out = F.linear(total, fsq.project_out.weight.float(), None if bias is None else bias.float())
    return out.to(hidden_states.dtype), torch.stack(indices, dim=-1)


def from_codes(fsq: Any, indices: Any) -> Any:
    """Think's codes (``[batch, tokens, quantizers]`` or ``[batch, tokens]``) as latents the way
    upstream's handler reads them: each level's code ``k·(2/(L − 1)) − 1`` computed in the model's
    dtype (upstream's codebook is built under it), scaled, summed and projected in that dtype."""
    import torch

    dtype = fsq.project_out.weight.dtype
    indices = indices.unsqueeze(-1) if indices.ndim == 2 else indices
    levels = fsq._levels.to(device=indices.device)
    basis = fsq._basis.to(device=indices.device)
    steps = 2.0 / (levels.to(dtype) - 1.0)
    codes = [
        (((indices[..., q].long().unsqueeze(-1) // basis) % levels).to(dtype) * steps - 1.0) * fsq.scales[q].to(dtype)
        for q in range(indices.shape[-1])
    ]
    return fsq.project_out(torch.stack(codes).sum(dim=0))


def round_text_rope(pipe: Any) -> None:
    """Round the text encoder's rotary frequencies to its dtype as upstream's cast does (kept in their
    own dtype: transformers' rotary module reads them as float32 either way); none in fp32."""
    import torch

    encoder = getattr(pipe, "text_encoder", None)
    if encoder is None:
        return
    dtype = next(encoder.parameters()).dtype
    with torch.no_grad():
        for module in encoder.modules():
            freqs = getattr(module, "inv_freq", None)
            if isinstance(freqs, torch.Tensor) and freqs.is_floating_point():
                freqs.copy_(freqs.to(dtype))
