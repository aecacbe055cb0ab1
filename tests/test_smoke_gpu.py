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


def test_real_parts_on_gpu(tmp_path, monkeypatch):
    """A part added to a real take, the take's drums taken out, the song completed: on the real XL base
    beside the real SFT model, each a take of the song's length with its part where one is made."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    import soundfile as sf

    import backend
    import base_model

    if base_model.missing() is not None:
        pytest.skip(f"base weights not available: {base_model.missing()}")
    monkeypatch.setenv("ACE_STUDIO_OUTPUT_DIR", str(tmp_path))
    backend.reset_backend()
    song, _ = handlers.make("generate", prompt="acoustic guitar ballad", audio_duration=20, seed=7, think=False)
    for settings in (
        {"change": "add", "part": "drums", "prompt": "soft brushed drums"},
        {"change": "extract", "part": "guitar"},
        {"change": "complete", "add_parts": ["bass", "strings"], "prompt": "warm ballad"},
    ):
        paths, record = handlers.make("edit", src_audio=song[0], seed=3, **settings)
        data, rate = sf.read(paths[0], always_2d=True)
        assert rate == 48000 and data.shape[0] == pytest.approx(20 * 48000, abs=2) and abs(data).max() > 0.1
        assert record["model"]["variant"] == "xl-base" and ("part" in record["takes"][0]) == (
            settings["change"] == "add"
        )
