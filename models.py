"""Model registry, device choice, precision per device and the loader for both checkpoint layouts.

Two layouts reach the studio: the diffusers layout (``model_index.json``) that ``from_pretrained``
reads directly, and the upstream ACE-Step layout that XL SFT is published in (``config.json``,
``model.safetensors`` maybe sharded, ``silence_latent.pt``; VAE and text encoder in a shared repo).
The upstream one is converted in memory by key prefix with a strict key check; nothing is written
back to disk.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dcw
import error_messages
import hub
import messages
import xl_model

SHARED_REPO = "ACE-Step/Ace-Step1.5"
VAE_DIRS = ("vae",)
TEXT_ENCODER_DIRS = ("Qwen3-Embedding-0.6B", "text_encoder")


@dataclass(frozen=True)
class Variant:
    """One ACE-Step 1.5 checkpoint the studio knows how to run, with its sampling defaults.

    The defaults are upstream's (``ace-step/ACE-Step-1.5``, its Gradio UI): 50 steps with guidance
    7 for SFT and Base, 8 steps and no guidance for the distilled Turbo, and shift 3.0 for all
    three (also the pipeline's own default). docs/design.md lists where each comes from.
    """

    name: str
    label: str
    repo: str
    layout: str  # "diffusers" or "upstream"
    steps: int
    guidance: float
    shift: float
    turbo: bool = False
    shared_repo: str | None = None  # upstream layout: where VAE + text encoder live
    allow_patterns: tuple[str, ...] = field(default=("*.json", "*.safetensors", "*.pt", "*.txt", "*.jinja"))

    @property
    def dcw(self) -> bool:
        """Whether its runs correct their steps (DCW) where nobody says: upstream's rule (``dcw``)."""
        return dcw.on_by_default(self.turbo)


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            name="xl-sft",
            label="ACE-Step 1.5 XL SFT",
            repo="ACE-Step/acestep-v15-xl-sft",
            layout="upstream",
            steps=50,
            guidance=7.0,
            shift=3.0,
            shared_repo=SHARED_REPO,
        ),
        Variant(
            name="xl-turbo",
            label="ACE-Step 1.5 XL Turbo",
            repo="ACE-Step/acestep-v15-xl-turbo-diffusers",
            layout="diffusers",
            steps=8,
            guidance=1.0,
            shift=3.0,
            turbo=True,
        ),
        Variant(
            name="xl-base",
            label="ACE-Step 1.5 XL Base",
            repo="ACE-Step/acestep-v15-xl-base-diffusers",
            layout="diffusers",
            steps=32,  # upstream's UI for base (50 for SFT, 8 for turbo)
            guidance=7.0,
            shift=3.0,
        ),
    )
}
DEFAULT_VARIANT = "xl-sft"
# The checkpoint Edit's parts run on, beside the loaded one (``base_model``).
BASE_VARIANT = "xl-base"


class ModelLoadError(RuntimeError):
    """A checkpoint could not be found or does not match what the loader expects."""


def active_variant() -> Variant:
    """The registry entry picked by ``ACE_STUDIO_VARIANT`` (default ``xl-sft``)."""
    name = os.environ.get("ACE_STUDIO_VARIANT", DEFAULT_VARIANT).strip() or DEFAULT_VARIANT
    if name not in VARIANTS:
        raise ModelLoadError(error_messages.VARIANT_UNKNOWN.format(given=name, choices=", ".join(VARIANTS)))
    return VARIANTS[name]


def model_source(variant: Variant | None = None) -> str:
    """Where the weights come from: ``ACE_STUDIO_MODEL`` (repo id or folder) or the variant's repo."""
    override = os.environ.get("ACE_STUDIO_MODEL", "").strip()
    return override or (variant or active_variant()).repo


def pick_device() -> str:
    """CUDA, else Apple MPS, else CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


# Upstream ACE-Step 1.5's precision per device and part: the DiT (with its condition encoder and
# audio tokenizer) and the text encoder in ``acestep/handler.py`` ``initialize_service``, the VAE
# in its ``_get_vae_dtype``, the 5 Hz LM in ``acestep/llm_inference.py`` ``initialize``. On MPS
# fp16 beats bf16 for the diffusion parts, while the LMs stay fp32: bf16-trained LM weights can
# overflow fp16, and token-by-token decoding gains little from it. The lyrics LLM is an LM too.
PRECISION: dict[str, dict[str, str]] = {
    "cuda": {"dit": "bfloat16", "text_encoder": "bfloat16", "vae": "bfloat16", "lm": "bfloat16"},
    "mps": {"dit": "float16", "text_encoder": "float16", "vae": "float16", "lm": "float32"},
    "cpu": {"dit": "float32", "text_encoder": "float32", "vae": "float32", "lm": "float32"},
}
# The pipeline's components by the part of the table that sets their precision.
_DIT_PARTS = ("transformer", "condition_encoder", "audio_tokenizer", "audio_token_detokenizer")
PIPELINE_PARTS = {**dict.fromkeys(_DIT_PARTS, "dit"), "text_encoder": "text_encoder", "vae": "vae"}


def dtype_for(device: str, part: str = "dit"):
    """The torch dtype ``part`` (``dit``, ``text_encoder``, ``vae`` or ``lm``) runs in on ``device``."""
    import torch

    return getattr(torch, PRECISION.get(device, PRECISION["cpu"])[part])


def pipeline_dtypes(device: str) -> dict[str, Any]:
    """``{component: dtype}`` for every pipeline component on ``device`` (what ``load_pipeline`` takes)."""
    return {name: dtype_for(device, part) for name, part in PIPELINE_PARTS.items()}


def detect_layout(folder: str | Path) -> str:
    """``diffusers`` (model_index.json) or ``upstream`` (config.json + model weights)."""
    folder = Path(folder)
    if (folder / "model_index.json").is_file():
        return "diffusers"
    if (folder / "config.json").is_file() and (
        (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()
    ):
        return "upstream"
    raise ModelLoadError(error_messages.MODEL_LAYOUT_UNKNOWN.format(folder=folder))


class WeightsMissing(ModelLoadError):
    """A model's weights are not here and cannot be downloaded now; its message says what to do."""


def download(repo: str, patterns: tuple[str, ...], what: str = messages.MUSIC_MODEL, env: str = "ACE_STUDIO_MODEL"):
    """A local snapshot (``Path``) of ``repo``'s files matching ``patterns``; else ``ModelLoadError``
    with a message (``WeightsMissing`` where the Hub cannot be reached), never the Hub client's own text."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=repo, allow_patterns=list(patterns)))
    except Exception as exc:  # network, auth, a missing repo, disk: "cannot get the weights", as a message
        closed = hub_closed(repo, exc)
        if closed is not None:
            raise WeightsMissing(weights_missing(what, repo, env, closed)) from exc
        raise ModelLoadError(
            error_messages.HUB_REFUSED[hub.why_not(exc)].format(repo=repo, kind=type(exc).__name__)
        ) from exc


def hub_closed(repo: str, failure: BaseException | None = None, wait: float = 0.0) -> tuple[str, str] | None:
    """Why the Hub cannot give ``repo``'s weights now and what to do (``messages.HUB_*``), or None where it
    may: downloads switched off, or the Hub not reached (by ``failure``, else by ``hub.reachable``'s
    last answer, waiting up to ``wait`` s for one; an unknown one is no reason)."""
    if hub.offline():
        return messages.HUB_OFFLINE
    if hub.unreachable(failure) if failure is not None else hub.reachable(repo, wait) is False:
        return messages.HUB_UNREACHABLE
    return None


def weights_missing(what: str, repo: str, env: str, closed: tuple[str, str]) -> str:
    """``what``'s weights are not here and the Hub cannot give them (``closed``: why, and what to do)."""
    return messages.WEIGHTS_MISSING.format(what=what, repo=repo, why=closed[0], fix=closed[1], env=env)


def resolve_local(source: str, variant: Variant) -> Path:
    """A local folder for ``source``: itself when it is a folder, else a Hub snapshot."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if source.startswith((".", "/", "~")):
        raise WeightsMissing(messages.WEIGHTS_NO_FOLDER.format(folder=source))
    return download(source, variant.allow_patterns)


def _find_shared(dit_folder: Path, names: tuple[str, ...], variant: Variant) -> Path:
    """The VAE or text-encoder folder for an upstream checkpoint.

    Upstream keeps them beside the DiT folders in one ``checkpoints/`` tree, so look inside the
    folder, then beside it, then in the variant's shared repo.
    """
    for base in (dit_folder, dit_folder.parent):
        for name in names:
            if (base / name / "config.json").is_file():
                return base / name
    if variant.shared_repo is None:
        raise ModelLoadError(error_messages.MODEL_NO_SHARED.format(name=names[0], folder=dit_folder))
    patterns = tuple(f"{n}/*" for n in VAE_DIRS + TEXT_ENCODER_DIRS)
    shared = download(variant.shared_repo, patterns)
    for name in names:
        if (shared / name / "config.json").is_file():
            return shared / name
    raise ModelLoadError(error_messages.MODEL_SHARED_LACKS.format(repo=variant.shared_repo, name=names[0]))


# Upstream attention projections are named like transformers' Qwen3; diffusers' Attention names them
# to_q / to_out.0 / norm_q. The DiT wraps its in/out convolutions in nn.Sequential (index 1).
_ATTN_RENAMES = (
    (".q_proj.", ".to_q."),
    (".k_proj.", ".to_k."),
    (".v_proj.", ".to_v."),
    (".o_proj.", ".to_out.0."),
    (".q_norm.", ".norm_q."),
    (".k_norm.", ".norm_k."),
)
_PREFIXES = {
    "decoder.": "transformer",
    "encoder.": "condition_encoder",
    "tokenizer.": "audio_tokenizer",
    "detokenizer.": "audio_token_detokenizer",
}


def map_upstream_key(key: str) -> tuple[str, str] | None:
    """``(component, key in that component)`` for an upstream checkpoint key, or None if none takes it."""
    if key == "null_condition_emb":
        return "condition_encoder", key
    for prefix, component in _PREFIXES.items():
        if key.startswith(prefix):
            new = key[len(prefix) :]
            if component == "transformer":
                new = new.replace("proj_in.1.", "proj_in_conv.").replace("proj_out.1.", "proj_out_conv.")
            for old, repl in _ATTN_RENAMES:
                new = new.replace(old, repl)
            return component, new
    return None


def split_upstream_state_dict(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Map upstream checkpoint keys onto the diffusers pipeline components.

    Returns ``{component: state_dict}``. Keys that fit no component raise, naming them.
    """
    parts: dict[str, dict[str, Any]] = {name: {} for name in _PREFIXES.values()}
    unknown = []
    for key, value in state.items():
        target = map_upstream_key(key)
        if target is None:
            unknown.append(key)
        else:
            parts[target[0]][target[1]] = value
    if unknown:
        raise ModelLoadError(error_messages.CHECKPOINT_KEYS_UNKNOWN.format(keys=_few(unknown)))
    return parts


def _few(keys: list[str], n: int = 8) -> str:
    keys = sorted(keys)
    more = error_messages.MODEL_KEYS_MORE.format(n=len(keys) - n) if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _upstream_shards(folder: Path) -> list[Path]:
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = [folder / name for name in sorted(set(index["weight_map"].values()))]
    for shard in shards:
        if not shard.is_file():
            raise ModelLoadError(error_messages.CHECKPOINT_SHARD_MISSING.format(shard=shard.name, folder=folder))
    return shards


def _assign(module: Any, key: str, value: Any) -> str | None:
    """Put ``value`` in place of ``module``'s parameter or buffer ``key``; the reason if it does not fit."""
    import torch

    *path, name = key.split(".")
    owner = module
    for part in path:
        owner = getattr(owner, part, None)
        if owner is None:
            return "unexpected"
    if name in owner._parameters:
        old = owner._parameters[name]
        if old is not None and old.shape != value.shape:
            return f"shape {tuple(value.shape)} vs {tuple(old.shape)}"
        owner._parameters[name] = torch.nn.Parameter(value, requires_grad=False)
    elif name in owner._buffers:
        old = owner._buffers[name]
        if old is not None and old.shape != value.shape:
            return f"shape {tuple(value.shape)} vs {tuple(old.shape)}"
        owner._buffers[name] = value
    else:
        return "unexpected"
    return None


def _stream_upstream_weights(
    folder: Path, modules: dict[str, Any], dtypes: dict[str, Any]
) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """Fill ``modules`` from the checkpoint one tensor at a time; returns the keys each got, and
    for each component the checkpoint keys that did not fit it.

    Each tensor is read, cast to its component's dtype (``dtypes``) and assigned before the next is
    read, so the build never holds the FP32 checkpoint: XL SFT ships ~20 GB of FP32 in 4 shards, and
    reading it whole before casting peaked near 30 GB of host memory for a 10.4 GiB bf16 pipeline.
    """
    from safetensors import safe_open

    loaded: dict[str, set[str]] = {name: set() for name in modules}
    unknown: list[str] = []
    misfits: dict[str, list[str]] = {}
    for shard in _upstream_shards(folder):
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (a safetensors handle is not a dict)
                target = map_upstream_key(key)
                if target is None:
                    unknown.append(key)
                    continue
                component, new = target
                tensor = f.get_tensor(key)
                dtype = dtypes.get(component)
                if dtype is not None and tensor.is_floating_point():
                    tensor = tensor.to(dtype)
                problem = _assign(modules[component], new, tensor)
                if problem is None:
                    loaded[component].add(new)
                else:
                    misfits.setdefault(component, []).append(f"{new} ({problem})")
                del tensor
    if unknown:
        raise ModelLoadError(error_messages.CHECKPOINT_KEYS_UNKNOWN.format(keys=_few(unknown)))
    return loaded, misfits


def _upstream_components(folder: Path) -> set[str]:
    """The components an upstream checkpoint has weights for, read from the shard headers only."""
    from safetensors import safe_open

    present = set()
    for shard in _upstream_shards(folder):
        with safe_open(str(shard), framework="pt") as f:
            present |= {t[0] for t in map(map_upstream_key, f.keys()) if t is not None}
    return present


def _per_component(dtype: Any) -> dict[str, Any]:
    """``load_pipeline``'s ``dtype`` (one dtype, ``{component: dtype}`` or None) for each component."""
    if isinstance(dtype, dict):
        return {name: dtype.get(name, dtype.get("default")) for name in PIPELINE_PARTS}
    return dict.fromkeys(PIPELINE_PARTS, dtype)


def load_upstream(folder: Path, variant: Variant, dtype=None):
    """Build an ``AceStepPipeline`` from an upstream-layout checkpoint folder, in memory; ``dtype`` is
    one dtype for all, or ``{component: dtype}`` (``pipeline_dtypes``)."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import (
        AceStepPipeline,
        AceStepTransformer1DModel,
        AutoencoderOobleck,
        FlowMatchEulerDiscreteScheduler,
    )
    from diffusers.pipelines.ace_step import (
        AceStepAudioTokenDetokenizer,
        AceStepAudioTokenizer,
        AceStepConditionEncoder,
    )
    from transformers import AutoModel, AutoTokenizer

    cfg = json.loads((folder / "config.json").read_text())
    try:
        configs = xl_model.component_configs(cfg)
    except KeyError as exc:
        raise ModelLoadError(
            error_messages.MODEL_CONFIG_FIELD.format(config=folder / "config.json", field=exc)
        ) from exc
    except xl_model.Refused as exc:
        raise ModelLoadError(error_messages.MODEL_CODE_REFUSED.format(folder=folder.name, why=exc)) from exc
    silence_file = folder / "silence_latent.pt"
    if not silence_file.is_file():
        raise ModelLoadError(error_messages.MODEL_NO_SILENCE.format(folder=folder))
    classes = {
        "transformer": AceStepTransformer1DModel,
        "condition_encoder": AceStepConditionEncoder,
        "audio_tokenizer": AceStepAudioTokenizer,
        "audio_token_detokenizer": AceStepAudioTokenDetokenizer,
    }
    present = _upstream_components(folder)
    modules: dict[str, Any] = {}
    for name, cls in classes.items():
        if name not in present and name.startswith("audio_"):
            continue  # cover needs them; text2music and repaint do not
        # Random init of a multi-billion-parameter model is wasted work: the weights follow.
        # Buffers stay real (the FSQ quantizer computes its own), parameters are assigned.
        with init_empty_weights(include_buffers=False):
            modules[name] = cls(**configs[name])
    dtypes = _per_component(dtype)
    loaded, misfits = _stream_upstream_weights(folder, modules, dtypes)
    # Stored as [1, C, T]; the condition encoder keeps it as [1, T, C].
    silence = torch.load(silence_file, map_location="cpu", weights_only=True).transpose(1, 2).contiguous()
    to = dtypes["condition_encoder"]
    modules["condition_encoder"].silence_latent = silence.to(to) if to is not None else silence
    loaded["condition_encoder"].add("silence_latent")
    components: dict[str, Any] = {"audio_tokenizer": None, "audio_token_detokenizer": None}
    for name, module in modules.items():
        missing = set(module.state_dict()) - loaded[name]
        if missing or misfits.get(name):
            detail = [error_messages.MODEL_WEIGHTS_MISSING_KEYS.format(keys=_few(list(missing)))] if missing else []
            if misfits.get(name):
                detail.append(error_messages.MODEL_WEIGHTS_MISFIT_KEYS.format(keys=_few(misfits[name])))
            raise ModelLoadError(error_messages.MODEL_WEIGHTS_MISFIT.format(name=name, detail="; ".join(detail)))
        # Casts what the checkpoint did not hold (computed buffers); what it held is already cast.
        components[name] = (module.to(dtypes[name]) if dtypes[name] is not None else module).eval()
    vae_dir = _find_shared(folder, VAE_DIRS, variant)
    te_dir = _find_shared(folder, TEXT_ENCODER_DIRS, variant)
    components["vae"] = AutoencoderOobleck.from_pretrained(vae_dir, torch_dtype=dtypes["vae"])
    components["text_encoder"] = AutoModel.from_pretrained(te_dir, dtype=dtypes["text_encoder"])
    components["tokenizer"] = AutoTokenizer.from_pretrained(te_dir)
    components["scheduler"] = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0)
    return AceStepPipeline(**components)


def load_pipeline(source: str | None = None, variant: Variant | None = None, dtype=None):
    """The ``AceStepPipeline`` for ``source`` (repo id or folder, either layout), on the CPU, in ``dtype``:
    one dtype, or ``{component: dtype}`` as ``pipeline_dtypes`` gives it."""
    from diffusers import AceStepPipeline

    variant = variant or active_variant()
    folder = resolve_local(source or model_source(variant), variant)
    if detect_layout(folder) == "diffusers":
        pipe = AceStepPipeline.from_pretrained(folder, torch_dtype=dtype)
    else:
        pipe = load_upstream(folder, variant, dtype)
    xl_model.match_upstream(pipe)  # every layout: the timbre encoder as upstream's XL computes it
    return pipe


def public_source(source: str) -> str:
    """A model as a record may show it: a Hub repo id, or a local folder's name (not its path)."""
    return Path(source).name if Path(source).exists() else source


def enable_mps_fallback() -> None:
    """Let ops MPS lacks fall back to the CPU; read by torch at import, so call before it."""
    os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
