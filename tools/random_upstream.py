"""Random ACE-Step checkpoints in upstream's own layout (``checkpoints/``: a DiT folder with
``config.json``, ``model*.safetensors`` and ``silence_latent.pt``, the VAE and the text encoder beside
it), written from ``random_models``' pipelines: what ``models``' upstream-layout loader reads, and
what the load-memory bench measures at XL's shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import random_models


def save_upstream_layout(root: str | Path, size: str = "tiny", variant_dir: str = "acestep-v15-xl-sft", **kw):
    """Write a random pipeline the way upstream ACE-Step publishes checkpoints.

    ``root/<variant_dir>/`` holds ``config.json``, ``model.safetensors`` and ``silence_latent.pt``
    (``[1, C, T]``); ``root/vae/`` and ``root/Qwen3-Embedding-0.6B/`` hold the shared VAE and
    text encoder with its tokenizer. Returns ``(variant_path, pipeline)`` so a test can compare
    the loaded copy with the original.
    """
    import torch
    from safetensors.torch import save_file

    root = Path(root)
    pipe = random_models.build_pipeline(size, **kw)
    s = random_models.SHAPES[size]
    dit = root / variant_dir
    dit.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {}
    for k, v in pipe.transformer.state_dict().items():
        state[random_models.upstream_key("decoder.", k)] = v
    for k, v in pipe.condition_encoder.state_dict().items():
        if k == "silence_latent":
            continue
        state[k if k == "null_condition_emb" else random_models.upstream_key("encoder.", k)] = v
    for k, v in pipe.audio_tokenizer.state_dict().items():
        state[random_models.upstream_key("tokenizer.", k)] = v
    for k, v in pipe.audio_token_detokenizer.state_dict().items():
        state[random_models.upstream_key("detokenizer.", k)] = v
    save_file({k: v.contiguous() for k, v in state.items()}, str(dit / "model.safetensors"))
    silence = pipe.condition_encoder.silence_latent.transpose(1, 2).contiguous()
    torch.save(silence, dit / "silence_latent.pt")
    config = _upstream_config(pipe, s)
    (dit / "config.json").write_text(json.dumps(config, indent=2))
    pipe.vae.save_pretrained(root / "vae")
    pipe.text_encoder.save_pretrained(root / "Qwen3-Embedding-0.6B")
    pipe.tokenizer.save_pretrained(root / "Qwen3-Embedding-0.6B")
    return dit, pipe


def _upstream_config(pipe: Any, s: dict[str, Any]) -> dict[str, Any]:
    """The ``config.json`` upstream ACE-Step writes for a DiT checkpoint like ``pipe``'s."""
    t = pipe.transformer.config
    return {
        "model_type": "acestep",
        "hidden_size": t.hidden_size,
        "intermediate_size": t.intermediate_size,
        "num_hidden_layers": t.num_hidden_layers,
        "num_attention_heads": t.num_attention_heads,
        "num_key_value_heads": t.num_key_value_heads,
        "head_dim": t.head_dim,
        "in_channels": t.in_channels,
        "audio_acoustic_hidden_dim": t.audio_acoustic_hidden_dim,
        "patch_size": t.patch_size,
        "rope_theta": t.rope_theta,
        "attention_bias": t.attention_bias,
        "attention_dropout": t.attention_dropout,
        "rms_norm_eps": t.rms_norm_eps,
        "sliding_window": t.sliding_window,
        "layer_types": list(t.layer_types or pipe.transformer.layer_types),
        "encoder_hidden_size": s["encoder_hidden_size"],
        "encoder_intermediate_size": s["encoder_intermediate_size"],
        "encoder_num_attention_heads": s["encoder_num_attention_heads"],
        "encoder_num_key_value_heads": s["encoder_num_key_value_heads"],
        "text_hidden_dim": s["text_hidden_dim"],
        "timbre_hidden_dim": s["acoustic_dim"],
        "num_lyric_encoder_hidden_layers": s["num_lyric_encoder_hidden_layers"],
        "num_timbre_encoder_hidden_layers": s["num_timbre_encoder_hidden_layers"],
        "pool_window_size": 5,
        "fsq_dim": s["encoder_hidden_size"],
        "fsq_input_levels": [8, 8, 8, 5, 5, 5],
        "fsq_input_num_quantizers": 1,
        "num_attention_pooler_hidden_layers": 2,
        "is_turbo": bool(t.is_turbo),
        "model_version": t.model_version,
    }


def write_upstream_checkpoint(
    root: str | Path, size: str = "xl", shard_gib: float = 5.0, seed: int = 0, shapes: dict[str, Any] | None = None
) -> Path:
    """A random FP32 checkpoint in upstream's sharded layout, written one shard at a time.

    Full XL is ~20 GB of FP32: it is never held in memory here, so the loader's own peak can be
    measured on a machine that could not hold it twice. The VAE and text encoder (real random
    weights, ~2.4 GB) go beside it as in upstream's ``checkpoints/`` tree. Returns the DiT folder.
    """
    import torch
    from accelerate import init_empty_weights
    from safetensors.torch import save_file

    root = Path(root)
    s = {**random_models.SHAPES[size], **(shapes or {})}
    with init_empty_weights(include_buffers=False):
        meta = random_models.build_pipeline(size, shapes=shapes)
    dit = root / "acestep-v15-xl-sft"
    dit.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    entries: list[tuple[str, Any]] = []
    for prefix, module in (
        ("decoder.", meta.transformer),
        ("encoder.", meta.condition_encoder),
        ("tokenizer.", meta.audio_tokenizer),
        ("detokenizer.", meta.audio_token_detokenizer),
    ):
        for k, v in module.state_dict().items():
            if k == "silence_latent":
                continue
            name = k if k == "null_condition_emb" else random_models.upstream_key(prefix, k)
            entries.append((name, v))
    shard: dict[str, Any] = {}
    written, size_now, limit, weight_map = 0, 0, shard_gib * 2**30, {}

    def flush() -> None:
        nonlocal shard, size_now, written
        written += 1
        name = f"model-{written:05d}.safetensors"
        save_file(shard, str(dit / name))
        weight_map.update(dict.fromkeys(shard, name))
        shard, size_now = {}, 0

    for name, v in entries:
        value = torch.randn(v.shape, generator=gen) * 0.02 if v.is_meta else v.float().contiguous()
        shard[name] = value
        size_now += value.numel() * 4
        if size_now >= limit:
            flush()
    if shard:
        flush()
    (dit / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    torch.save(meta.condition_encoder.silence_latent.transpose(1, 2).contiguous(), dit / "silence_latent.pt")
    (dit / "config.json").write_text(json.dumps(_upstream_config(meta, s), indent=2))
    vae = type(meta.vae).from_config(meta.vae.config)
    vae.save_pretrained(root / "vae")
    text_encoder = type(meta.text_encoder)(meta.text_encoder.config)
    text_encoder.save_pretrained(root / "Qwen3-Embedding-0.6B")
    meta.tokenizer.save_pretrained(root / "Qwen3-Embedding-0.6B")
    return dit
