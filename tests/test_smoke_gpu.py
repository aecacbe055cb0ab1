"""A real generate on a CUDA GPU with the real weights. Skipped by default (``-m gpu`` runs it)."""

from __future__ import annotations

import pytest

import handlers

pytestmark = pytest.mark.gpu


def test_real_generate_on_gpu(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    import backend
    import models

    variant = models.active_variant()
    try:
        models.resolve_local(models.model_source(variant), variant)
    except models.ModelLoadError as exc:
        pytest.skip(f"weights not available: {exc}")
    monkeypatch.setenv("ACE_STUDIO_OUTPUT_DIR", str(tmp_path))
    backend.reset_backend()
    paths, record = handlers.make(
        "generate",
        prompt="uplifting synth pop, female vocals",
        lyrics="[Verse]\nLights across the city\n[Chorus]\nWe are alive tonight",
        audio_duration=30,
        seed=1234,
    )
    import soundfile as sf

    data, rate = sf.read(paths[0], always_2d=True)
    assert rate == 48000 and data.shape == (30 * 48000, 2)
    assert record["model"]["device"] == "cuda"
    assert abs(data).max() > 0.5
