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
"""

from __future__ import annotations

from typing import Any

# Fields of an upstream config.json that only train (or describe) a model: nothing at inference reads them.
_TRAINING_ONLY = ("data_proportion", "timestep_mu", "timestep_sigma", "initializer_range", "use_cache")


class Refused(ValueError):
    """A checkpoint whose config asks for what the studio's model classes cannot compute."""


def alternating(n: int) -> list[str]:
    """Upstream's default layer pattern (and the only one diffusers' timbre encoder builds): sliding
    window on every odd layer, counted from 1."""
    return ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n)]


def _layer_types(cfg: dict[str, Any]) -> list[str]:
    """The layer pattern as upstream's config class settles it: the given one, else the alternation;
    with ``use_sliding_window`` false no layer has a window (upstream then builds no sliding mask)."""
    n = int(cfg["num_hidden_layers"])
    types = list(cfg.get("layer_types") or alternating(n))
    if len(types) < n or any(t not in ("sliding_attention", "full_attention") for t in types):
        raise Refused(f"its config.json field layer_types ({types!r}) is not one attention type per DiT layer")
    if cfg.get("use_sliding_window", True) is False:
        return ["full_attention"] * len(types)
    return types


def check_config(cfg: dict[str, Any]) -> None:
    """Refuse, naming the field, what upstream's XL model code would read from ``cfg`` and the
    diffusers classes cannot compute."""
    act = cfg.get("hidden_act", "silu")
    if act != "silu":
        raise Refused(f"its config.json field hidden_act is {act!r}; the studio's model classes compute SiLU only")
    scaling = cfg.get("rope_scaling")
    if scaling and (not isinstance(scaling, dict) or (scaling.get("rope_type") or scaling.get("type")) != "default"):
        raise Refused(
            f"its config.json field rope_scaling ({scaling!r}) asks for scaled RoPE; the studio computes plain RoPE"
        )
    if cfg.get("is_lego_sft"):
        raise Refused(
            "its config.json field is_lego_sft asks for upstream's lego-SFT captions, which the studio does not write"
        )
    layers = int(cfg["num_hidden_layers"])
    for field in ("num_lyric_encoder_hidden_layers", "num_timbre_encoder_hidden_layers"):
        # Upstream runs an encoder's first num_hidden_layers layers only; diffusers runs all of them.
        if int(cfg[field]) > layers:
            raise Refused(f"its config.json field {field} ({cfg[field]}) exceeds num_hidden_layers ({layers})")
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
    """Everything of this room a loaded pipeline needs, whatever its layout: the timbre encoder's
    layer pattern and its special token."""
    honour_layers(pipe)
    read_special_token(pipe)


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
