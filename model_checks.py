"""The checks that ask the loaded models, or what the studio has installed for them, before a request
queues: lyrics the text encoder would cut short, a LoRA file or preset that does not fit, Think without
a planner. Every other field check is model-free and lives in ``checks``, below the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

import backend
import lora
import models
import planner
import presets
from checks import LORA_SCALE_RANGE, InputError, about, check_switch, in_range, shown


def check_lyric_tokens(lyrics: str, language: str) -> None:
    """Lyrics the text encoder would cut short are refused before the queue once the model is loaded
    (its tokenizer is small and runs on the CPU); the run checks again in any case."""
    if not lyrics or not backend.is_warm():
        return
    n = backend.get_backend().lyric_tokens(lyrics, language)
    if n > backend.MAX_LYRIC_TOKENS:
        raise InputError(
            f"The lyrics are {n} tokens long; the model reads at most {backend.MAX_LYRIC_TOKENS}. Shorten them.",
            "lyrics",
        )


def check_lora(path: Any, scale: Any, preset: Any = None) -> dict[str, Any] | None:
    """``{"path", "scale", "name"}`` for an uploaded LoRA file or a preset (plus ``preset``,
    ``repo`` and ``alpha``), or None when there is neither.

    The file itself is always checked, from its header and once per file (``lora.check_file``);
    whether it fits the model is checked here once the model is loaded, and in any case again
    inside the run. A preset is a cached Hub file going through the same checks.
    """
    # Checked with or without a file: a strength typed out of range is a slip the page must name too.
    with about("lora_scale"):
        weight = in_range(1.0 if scale is None else scale, "LoRA strength", *LORA_SCALE_RANGE)
    chosen = _preset(preset)
    uploaded = path is not None and str(path).strip() != ""
    if chosen and uploaded:
        raise InputError(
            "Pick a LoRA preset or upload a LoRA file, not both: one LoRA applies at a time. "
            "Clear the upload or set the preset to None.",
            "lora_preset",
        )
    if not chosen and not uploaded:
        return None
    extra: dict[str, Any] = {}
    if chosen:
        with about("lora_preset"):
            try:
                found, path = presets.resolve(chosen, models.active_variant().name)
            except presets.UnknownPreset as exc:
                raise gr.Error(str(exc)) from None
        extra = {"preset": found.name, "repo": found.repo, "alpha": presets.alpha_ratio(found)}
    with about("lora_preset" if chosen else "lora"):
        if backend.is_warm():
            # Cheap once the model is in memory, and it saves the visitor a GPU turn for a misfit.
            backend.get_backend().check_lora(str(path))
        else:
            lora.check_file(str(path))
    return {"path": str(path), "scale": weight, "name": Path(str(path)).name, **extra}


def _preset(value: Any) -> str | None:
    """A preset name as sent (None, "" and "none" mean no preset)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"The LoRA preset must be a preset's name, not {shown(value)}.", "lora_preset")
    name = value.strip()
    return None if name.lower() in ("", "none") else name


def check_think(value: Any) -> bool:
    """Whether the planner runs: ``None`` means "when one is set up"."""
    if value is None:
        return planner.enabled()
    if check_switch(value) and not planner.enabled():
        raise gr.Error(
            "Think is not available here: this studio runs without ACE-Step's planner "
            "(ACE_STUDIO_PLANNER_MODEL=none). Turn Think off."
        )
    return check_switch(value)
