"""Tool: a tiny random XL-base-shaped model in the registry's layout (the published
``ACE-Step/acestep-v15-xl-base-diffusers``: a whole diffusers pipeline, of which the studio reads the
``transformer/`` and ``condition_encoder/`` folders), for Edit's parts in tests."""

from __future__ import annotations

from pathlib import Path

import random_models


def save_base(path: str | Path, seed: int = 1, encoder_like: str | Path | None = None) -> Path:
    """A tiny pipeline with its own random DiT (``seed``, other than the SFT one's 0), its transformer
    marked as a base model, saved in diffusers layout; ``encoder_like``: a saved pipeline whose
    condition encoder this one's copies, tensor for tensor (a base whose encoder equals SFT's)."""
    path = Path(path)
    pipe = random_models.build_pipeline("tiny", seed=seed)
    pipe.transformer.register_to_config(model_version="base")
    if encoder_like is not None:
        from diffusers.pipelines.ace_step import AceStepConditionEncoder

        same = AceStepConditionEncoder.from_pretrained(Path(encoder_like), subfolder="condition_encoder")
        pipe.condition_encoder.load_state_dict(same.state_dict())
    pipe.save_pretrained(path)
    return path
