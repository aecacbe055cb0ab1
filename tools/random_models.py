"""Randomly initialised ACE-Step pipelines and lyrics LMs built from the real classes.

Tests, the CPU benchmark and the GPU benchmark need the real loading and inference code to run
without any download. Speed does not depend on weight values, so the same builders serve two
shapes: ``tiny`` (hidden 32, two layers: seconds on a CPU) and ``xl`` (the published XL
architecture). Everything heavy is imported inside the functions.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

# The published XL DiT: hidden 2560, 32 layers, 32 query / 8 KV heads of 128, MLP 9728, fed by a
# 2048-wide condition encoder. The VAE and the Qwen3-Embedding-0.6B text encoder are shared by all
# ACE-Step 1.5 variants.
XL_SHAPES: dict[str, Any] = {
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "encoder_hidden_size": 2048,
    "encoder_intermediate_size": 6144,
    "encoder_num_attention_heads": 16,
    "encoder_num_key_value_heads": 8,
    "num_lyric_encoder_hidden_layers": 8,
    "num_timbre_encoder_hidden_layers": 4,
    "acoustic_dim": 64,
    "text_hidden_dim": 1024,
    "vae": {"encoder_hidden_size": 128, "decoder_channels": 128, "channel_multiples": [1, 2, 4, 8, 16]},
    "text_encoder": {
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
    },
}

TINY_SHAPES: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "encoder_hidden_size": 32,
    "encoder_intermediate_size": 64,
    "encoder_num_attention_heads": 4,
    "encoder_num_key_value_heads": 2,
    "num_lyric_encoder_hidden_layers": 2,
    "num_timbre_encoder_hidden_layers": 2,
    "acoustic_dim": 2,
    "text_hidden_dim": 32,
    # The VAE's decoder at its least width (its hop, rates and latent width are ACE-Step's; the encoder's width is
    # twice the latent's, its mean and scale): it runs at the audio's 48 kHz, and a take's decode was about 10 %
    # of the suite's CPU at width 2; at 1 a 30 s decode is 0.16-0.19 CPU s, not 0.27-0.52.
    "vae": {"encoder_hidden_size": 4, "decoder_channels": 1, "channel_multiples": [1, 1, 1, 1, 1]},
    "text_encoder": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
    },
}

SHAPES = {"tiny": TINY_SHAPES, "xl": XL_SHAPES}

# A little text in several scripts so the trained tokenizer covers what tests send.
_CORPUS = [
    "# Instruction\nFill the audio semantic mask based on the given conditions:\n\n# Caption\n",
    "# Metas\n- bpm: 120\n- timesignature: 4\n- keyscale: C major\n- duration: 30 seconds\n",
    "# Languages\nen\n\n# Lyric\n[Verse]\nWalking down the empty street tonight\n[Chorus]\nSing it loud\n",
    "upbeat synth pop, female vocals, bright drums, warm bass, dreamy piano ballad, lo-fi hip hop",
    "[Intro] [Bridge] [Outro] [Pre-Chorus] [Instrumental] la la la oh yeah hey",
    "Theme: summer love. Genre: rock. Mood: happy. Write song lyrics with section tags.",
    "El amor es fuego, corazón, noche, canción. Je t'aime, la nuit, la lumière. 夜の街 愛 歌 心",
    "0123456789 .,:;!?'\"()-_/ A B C D E F G H I J K L M N O P Q R S T U V W X Y Z",
]
_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
# Qwen's ChatML template, enough for apply_chat_template in the lyrics path.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer trained on the spot, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _text_encoder(shapes: dict[str, Any], vocab_size: int):
    from transformers import Qwen3Config, Qwen3Model

    te = shapes["text_encoder"]
    config = Qwen3Config(
        vocab_size=vocab_size,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        tie_word_embeddings=True,
        **te,
    )
    return Qwen3Model(config)


def _vae(shapes: dict[str, Any]):
    """The Oobleck VAE at ACE-Step's geometry: 48 kHz stereo, hop 1920 (2·4·4·6·10)."""
    from diffusers import AutoencoderOobleck

    v = shapes["vae"]
    # The Oobleck encoder emits mean and scale, so its width is twice the latent width.
    return AutoencoderOobleck(
        encoder_hidden_size=v["encoder_hidden_size"],
        downsampling_ratios=[2, 4, 4, 6, 10],
        channel_multiples=v["channel_multiples"],
        decoder_channels=v["decoder_channels"],
        decoder_input_channels=shapes["acoustic_dim"],
        audio_channels=2,
        sampling_rate=48000,
    )


def build_pipeline(
    size: str = "tiny", *, turbo: bool = False, seed: int = 0, dtype: Any = None, shapes: dict[str, Any] | None = None
):
    """An ``AceStepPipeline`` with random weights and the real ACE-Step audio geometry.

    48 kHz stereo, VAE hop 1920 (25 latent frames per second). ``turbo`` marks the transformer
    config the way the turbo checkpoints do (guidance distilled). ``shapes`` overrides entries of
    the size's shapes (e.g. fewer DiT layers).
    """
    import torch
    from diffusers import (
        AceStepPipeline,
        AceStepTransformer1DModel,
        FlowMatchEulerDiscreteScheduler,
    )
    from diffusers.pipelines.ace_step import (
        AceStepAudioTokenDetokenizer,
        AceStepAudioTokenizer,
        AceStepConditionEncoder,
    )

    s = {**SHAPES[size], **(shapes or {})}
    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    vocab = len(tokenizer)
    acoustic = s["acoustic_dim"]
    enc = {
        "hidden_size": s["encoder_hidden_size"],
        "intermediate_size": s["encoder_intermediate_size"],
        "num_attention_heads": s["encoder_num_attention_heads"],
        "num_key_value_heads": s["encoder_num_key_value_heads"],
        "head_dim": s["head_dim"],
    }
    transformer = AceStepTransformer1DModel(
        hidden_size=s["hidden_size"],
        intermediate_size=s["intermediate_size"],
        num_hidden_layers=s["num_hidden_layers"],
        num_attention_heads=s["num_attention_heads"],
        num_key_value_heads=s["num_key_value_heads"],
        head_dim=s["head_dim"],
        in_channels=3 * acoustic,
        audio_acoustic_hidden_dim=acoustic,
        encoder_hidden_size=s["encoder_hidden_size"],
        is_turbo=turbo,
        model_version="turbo" if turbo else "sft",
    )
    condition_encoder = AceStepConditionEncoder(
        text_hidden_dim=s["text_hidden_dim"],
        timbre_hidden_dim=acoustic,
        num_lyric_encoder_hidden_layers=s["num_lyric_encoder_hidden_layers"],
        num_timbre_encoder_hidden_layers=s["num_timbre_encoder_hidden_layers"],
        **enc,
    )
    # Random, non-zero silence so a test can tell it was carried through conversion.
    condition_encoder.silence_latent.copy_(torch.randn_like(condition_encoder.silence_latent) * 0.1)
    audio_tokenizer = AceStepAudioTokenizer(audio_acoustic_hidden_dim=acoustic, fsq_dim=s["encoder_hidden_size"], **enc)
    audio_token_detokenizer = AceStepAudioTokenDetokenizer(audio_acoustic_hidden_dim=acoustic, **enc)
    pipe = AceStepPipeline(
        vae=_vae(s),
        text_encoder=_text_encoder(s, vocab),
        tokenizer=tokenizer,
        transformer=transformer,
        condition_encoder=condition_encoder,
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0),
        audio_tokenizer=audio_tokenizer,
        audio_token_detokenizer=audio_token_detokenizer,
    )
    if dtype is not None:
        pipe.to(dtype=dtype)
    return pipe


def save_pipeline(path: str | Path, size: str = "tiny", **kwargs: Any) -> Path:
    """Build a random pipeline and save it in diffusers layout (``model_index.json``)."""
    path = Path(path)
    build_pipeline(size, **kwargs).save_pretrained(path)
    return path


def save_base(path: str | Path, seed: int = 1, encoder_like: str | Path | None = None) -> Path:
    """A tiny pipeline with its own random DiT (``seed``, other than the SFT one's 0), its transformer
    marked as a base model, saved in diffusers layout; ``encoder_like``: a saved pipeline whose
    condition encoder this one's copies, tensor for tensor (a base whose encoder equals SFT's)."""
    path = Path(path)
    pipe = build_pipeline("tiny", seed=seed)
    pipe.transformer.register_to_config(model_version="base")
    if encoder_like is not None:
        from diffusers.pipelines.ace_step import AceStepConditionEncoder

        same = AceStepConditionEncoder.from_pretrained(Path(encoder_like), subfolder="condition_encoder")
        pipe.condition_encoder.load_state_dict(same.state_dict())
    pipe.save_pretrained(path)
    return path


def save_lora(
    path: str | Path,
    transformer: Any,
    rank: int = 4,
    seed: int = 0,
    upstream: bool = False,
    targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0"),
) -> Path:
    """A random LoRA for ``transformer``'s attention projections, as a ``.safetensors`` file.

    Diffusers naming (``transformer.<layer>.lora_A.weight``) by default; ``upstream=True`` writes
    the PEFT naming ACE-Step's own trainer produces (``base_model.model.<layer>.q_proj.lora_A.weight``).
    Both factors are non-zero so the adapter audibly changes the output.
    """
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in transformer.named_modules():
        if not isinstance(module, torch.nn.Linear) or not name.endswith(targets):
            continue
        key = f"transformer.{name}"
        if upstream:
            key = "base_model.model." + upstream_key("", name + ".")[:-1]
        tensors[f"{key}.lora_A.weight"] = torch.randn(rank, module.in_features, generator=gen) * 0.5
        tensors[f"{key}.lora_B.weight"] = torch.randn(module.out_features, rank, generator=gen) * 0.5
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def save_lokr(
    path: str | Path,
    transformer: Any,
    rank: int = 2,
    alpha: float = 4.0,
    seed: int = 0,
    targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0"),
    halves: tuple[str, ...] = ("w2",),
    dora: bool = False,
    upstream: bool = True,
) -> Path:
    """A random LoKr adapter for ``transformer``'s linear layers ending in ``targets``, in LyCORIS's layout
    as upstream's trainer saves ``lokr_weights.safetensors``: per layer ``lycoris_<layer>.lokr_w1`` and
    ``.lokr_w2`` (those named in ``halves`` stored as ``_a`` / ``_b`` of ``rank``), its ``alpha`` and, with
    ``dora``, a ``dora_scale`` (one per output). Each size is split as LyCORIS splits it; layers are named
    as upstream's model names them unless ``upstream=False`` (diffusers' names). Every factor is non-zero."""
    import torch
    from lycoris.functional import factorization
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in transformer.named_modules():
        if not isinstance(module, torch.nn.Linear) or not name.endswith(targets):
            continue
        stem = "lycoris_" + (upstream_key("", name + ".")[:-1] if upstream else name).replace(".", "_")
        (rows_1, rows_2), (columns_1, columns_2) = (
            factorization(n, -1) for n in (module.out_features, module.in_features)
        )
        for side, rows, columns in (("w1", rows_1, columns_1), ("w2", rows_2, columns_2)):
            if side in halves:
                tensors[f"{stem}.lokr_{side}_a"] = torch.randn(rows, rank, generator=gen) * 0.3
                tensors[f"{stem}.lokr_{side}_b"] = torch.randn(rank, columns, generator=gen) * 0.3
            else:
                tensors[f"{stem}.lokr_{side}"] = torch.randn(rows, columns, generator=gen) * 0.3
        tensors[f"{stem}.alpha"] = torch.tensor(float(alpha))
        if dora:
            norms = module.weight.detach().float().norm(dim=1, keepdim=True)
            tensors[f"{stem}.dora_scale"] = norms * (1 + 0.2 * torch.rand(norms.shape, generator=gen))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


# Inverse of the loader's key mapping: diffusers module names back to the upstream checkpoint's.
_ATTN_BACK = [
    (".to_q.", ".q_proj."),
    (".to_k.", ".k_proj."),
    (".to_v.", ".v_proj."),
    (".to_out.0.", ".o_proj."),
    (".norm_q.", ".q_norm."),
    (".norm_k.", ".k_norm."),
]


def upstream_key(prefix: str, key: str) -> str:
    key = key.replace("proj_in_conv.", "proj_in.1.").replace("proj_out_conv.", "proj_out.1.")
    for new, old in _ATTN_BACK:
        key = key.replace(new, old)
    return prefix + key


def _tiny_lm_config(tokenizer: Any) -> dict[str, Any]:
    """The shape and special tokens every tiny chat LM here shares, for its vocabulary."""
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": True,
    }


def _save_lm(path: str | Path, built: tuple[Any, Any]) -> Path:
    path = Path(path)
    model, tokenizer = built
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_lyrics_lm(seed: int = 0):
    """A tiny random ``Qwen2ForCausalLM`` and its tokenizer with Qwen's chat template."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    config = Qwen2Config(max_position_embeddings=4096, **_tiny_lm_config(tokenizer))
    return Qwen2ForCausalLM(config), tokenizer


def save_lyrics_lm(path: str | Path, seed: int = 0) -> Path:
    return _save_lm(path, build_lyrics_lm(seed))


# The part of Qwen3's chat template the planner's prompts use: an assistant message holding
# "<think>…</think>" is re-rendered as reasoning plus content, as the real template does.
PLANNER_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' and '</think>' in message['content'] %}"
    "{% set content = message['content'].split('</think>')[-1].lstrip('\\n') %}"
    "{% set reasoning = message['content'].split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}"
    "<|im_start|>assistant\n<think>\n{{ reasoning.strip('\\n') }}\n</think>\n\n{{ content.lstrip('\\n') }}<|im_end|>\n"
    "{% else %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_planner_lm(seed: int = 0, codes: int = 64000):
    """A tiny random ``Qwen3ForCausalLM`` shaped like ACE-Step's 5 Hz planner: Qwen's chat tokens,
    ``<think>``/``</think>`` and ``codes`` audio-code tokens ``<|audio_code_N|>`` after the text
    vocabulary, as in the real one."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    tokenizer.add_tokens(["<think>", "</think>"], special_tokens=True)
    tokenizer.add_tokens([f"<|audio_code_{n}|>" for n in range(codes)], special_tokens=True)
    tokenizer.chat_template = PLANNER_CHAT_TEMPLATE
    config = Qwen3Config(head_dim=8, max_position_embeddings=8192, **_tiny_lm_config(tokenizer))
    model = Qwen3ForCausalLM(config).eval()
    # A loud newline: random weights rarely pick it, so a random caption would run to the 512-token
    # cap; with it the tiny planner's captions end after a few tokens, as a trained one's do after
    # a sentence or two, and tests that think stay quick.
    with torch.no_grad():
        model.get_output_embeddings().weight[tokenizer.encode("\n")[-1]] *= 40.0
    return model, tokenizer


def save_planner_lm(path: str | Path, seed: int = 0) -> Path:
    return _save_lm(path, build_planner_lm(seed))


def main(argv: list[str] | None = None) -> None:
    """``python tools/random_models.py DIR``: write a tiny music pipeline, the tiny XL base beside it (Edit's
    parts), a lyrics LM, a planner and a Demucs bag (Stems: ``random_stems``) for trying the UI, and
    print the command that serves it on them (``--band``: with the stand-in band behind the model's call,
    ``band.main``, so takes have a beat to lock to the grid; the tiny models alone make noise)."""
    import argparse

    import random_stems
    import studio_root

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--band", action="store_true", help="serve with the stand-in band (music with a beat)")
    args = parser.parse_args(argv)
    studio_root.reach()
    music = save_pipeline(args.folder / "music")
    base = save_base(args.folder / "base")
    writer = save_lyrics_lm(args.folder / "lyrics")
    plans = save_planner_lm(args.folder / "planner")
    split = random_stems.save_stems_model(args.folder / "stems")
    print(launch_command(music, base, writer, plans, split, band=args.band))


def launch_command(
    music: Path, base: Path, writer: Path, plans: Path, split: Path, band: bool = False, cpu: bool | None = None
) -> str:
    """The command that serves the studio on the tiny models: every one named, so all of it works. Where the studio
    runs on the CPU (``cpu``; None: this machine has no GPU) torch and its maths libraries get one thread each: their
    pools spin between the tiny models' many small operations, and a 30 s take's stems took 234-298 s on a busy
    2-core machine at 2 threads, 13-15 s at one (the tests set the same, in conftest)."""
    models = {"MODEL": music, "BASE_MODEL": base, "LYRICS_MODEL": writer, "PLANNER_MODEL": plans, "STEMS_MODEL": split}
    threads = "OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 " if (_no_gpu() if cpu is None else cpu) else ""
    serve = " python tools/band.py" if band else " python app.py"
    return threads + " ".join(f"ACE_STUDIO_{name}={shlex.quote(str(path))}" for name, path in models.items()) + serve


def _no_gpu() -> bool:
    """No CUDA and no Apple GPU here: the studio would run on the CPU (as ``models.pick_device`` chooses)."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


if __name__ == "__main__":
    main()
