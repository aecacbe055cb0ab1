"""LoRA presets: LoRAs published on the Hugging Face Hub, offered beside the upload.

A preset is only offered where it fits the loaded variant and its file is already in the local
Hub cache (the Space preloads it through README's ``preload_from_hub``); nothing is downloaded at
request time. Applying one is applying an uploaded LoRA: the same checks (``preparing.check_lora``)
and the same scoped load and unload inside ``backend.Backend.run``. docs/design.md lists which
official LoRAs exist and which base each fits.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import error_messages
import hub


class UnknownPreset(ValueError):
    """A preset name the studio does not offer here."""


@dataclass(frozen=True)
class Preset:
    """One LoRA on the Hub: the name the API takes, where its weights live and which variants
    (``models.VARIANTS`` names) its layer sizes fit."""

    name: str
    repo: str
    file: str
    label: str
    fits: tuple[str, ...]
    base: str = ""  # what it was trained on, as text (docs/design.md)


# The official ACE-Step 1.5 LoRA (ACE-Step's own Hub organisation). It was trained on the 2B DiT
# (PEFT rank 64, alpha 128; acestep.cpp runs it on 1.5 Turbo): its matrices do not fit the XL DiT's
# hidden sizes, and the studio runs XL variants only, so it is listed and never offered here.
OFFICIAL: tuple[Preset, ...] = (
    Preset(
        name="chinese-new-year",
        repo="ACE-Step/ACE-Step-v1.5-chinese-new-year-LoRA",
        file="adapter_model.safetensors",
        label="Chinese New Year (ACE-Step, festive dizi and erhu)",
        fits=(),
        base="ACE-Step 1.5 2B DiT (Turbo / SFT / Base)",
    ),
)

# An operator's own presets (JSON list of objects with name, repo, file, label, fits), e.g. a LoRA
# trained on XL that their Space preloads.
EXTRA_ENV = "ACE_STUDIO_LORA_PRESETS"


def registry() -> tuple[Preset, ...]:
    """Every preset the studio knows: the official ones, then ``ACE_STUDIO_LORA_PRESETS``'s."""
    raw = os.environ.get(EXTRA_ENV, "").strip()
    if not raw:
        return OFFICIAL
    try:
        extra = tuple(
            Preset(
                name=str(e["name"]),
                repo=str(e["repo"]),
                file=str(e["file"]),
                label=str(e.get("label") or e["name"]),
                fits=tuple(str(v) for v in e["fits"]),
                base=str(e.get("base", "")),
            )
            for e in json.loads(raw)
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{EXTRA_ENV} must be a JSON list of objects with name, repo, file, label and fits ({exc})."
        ) from None
    names = [p.name for p in OFFICIAL + extra]
    if len(set(names)) != len(names):
        raise ValueError(f"{EXTRA_ENV} repeats a preset name: {', '.join(names)}.")
    return OFFICIAL + extra


def cached_file(preset: Preset, filename: str | None = None) -> str | None:
    """The preset's file in the local Hub cache, or None; a lookup on disk only, never a download."""
    return hub.cached_file(preset.repo, filename or preset.file)


def offered(variant: str) -> list[Preset]:
    """The presets a visitor may pick with ``variant`` loaded: fitting it and already cached."""
    return [p for p in registry() if variant in p.fits and cached_file(p)]


def resolve(name: str, variant: str) -> tuple[Preset, str]:
    """The preset called ``name`` and its cached file; ``UnknownPreset`` with a message otherwise."""
    known = {p.name: p for p in registry()}
    here = offered(variant)
    said = repr(name) if len(repr(name)) <= 40 else repr(name)[:38] + "…'"  # never echo a huge input back
    choices = ", ".join(p.name for p in here) or error_messages.PRESETS_NONE
    preset = known.get(name)
    if preset is None:
        raise UnknownPreset(error_messages.PRESET_UNKNOWN.format(given=said, choices=choices))
    if variant not in preset.fits:
        base = preset.base or error_messages.PRESET_OTHER_BASE
        raise UnknownPreset(error_messages.PRESET_OTHER_MODEL.format(given=said, base=base, choices=choices))
    path = cached_file(preset)
    if path is None:
        raise UnknownPreset(error_messages.PRESET_NOT_INSTALLED.format(given=said, choices=choices))
    return preset, path


def alpha_ratio(preset: Preset) -> float:
    """``lora_alpha / r`` from the preset's PEFT ``adapter_config.json`` when cached, else 1.

    The studio hands diffusers the weights alone, which then scales them by 1; PEFT trainers
    (ACE-Step's included) scale by alpha / rank, so the preset sounds as trained only with it.
    """
    path = cached_file(preset, _config_name(preset))
    if path is None:
        return 1.0
    try:
        config = json.loads(Path(path).read_text())
        ratio = float(config["lora_alpha"]) / float(config["r"])
    except (ValueError, KeyError, TypeError, OSError, ZeroDivisionError):
        return 1.0
    return ratio if 0 < ratio <= 16 else 1.0


def preload_entries(variant: str) -> list[str]:
    """README ``preload_from_hub`` lines for the presets fitting ``variant`` (the Space's)."""
    return [f"{p.repo} {p.file},{_config_name(p)}" for p in registry() if variant in p.fits]


def _config_name(preset: Preset) -> str:
    # PEFT writes its adapter_config.json beside the weights.
    return str(Path(preset.file).parent / "adapter_config.json").removeprefix("./")
