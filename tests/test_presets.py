"""LoRA presets from the Hub cache, offered only when installed and fitting, applied
per request exactly as an uploaded LoRA (scoped, unloaded after), recorded and brought back.

The "Hub" is a temporary cache folder laid out as huggingface_hub lays out a snapshot
(``models--org--name/snapshots/<hash>/file`` and ``refs/main``), holding a tiny random LoRA shaped
for the tiny pipeline: nothing is downloaded.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client
from gradio_client.exceptions import ValidationError

import checks
import handlers
import lora_presets
import preparing
import random_models
import records
from conftest import ROOT, SHOTS, TIMEOUT_MS, page_here, picture
from music_request import Call, Render

REPO = "tiny-org/tiny-style-lora"
NAME = "tiny-style"
LABEL = "Tiny style (test)"
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"
REQUEST = dict(
    prompt="dub techno",
    lyrics="[Verse]\nechoes",
    audio_duration=10.0,
    num_inference_steps=3,
    guidance_scale=7.0,
    shift=1.0,
    vocal_language="en",
    task_type="text2music",
)


def _extra(fits: tuple[str, ...] = ("xl-sft",)) -> str:
    return json.dumps(
        [{"name": NAME, "repo": REPO, "file": "adapter_model.safetensors", "label": LABEL, "fits": list(fits)}]
    )


def _snapshot(cache: Path, repo: str, files: dict[str, Path | str]) -> Path:
    """``repo`` in a Hub cache at ``cache`` with ``files`` (a path to copy, or text) in its snapshot."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    snap = folder / "snapshots" / SNAPSHOT
    snap.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        target = snap / name
        target.write_bytes(content.read_bytes() if isinstance(content, Path) else content.encode())
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(SNAPSHOT)
    return snap


@pytest.fixture(scope="module")
def hub(warm_backend, tmp_path_factory):
    """A Hub cache holding the tiny preset (PEFT alpha 8 over rank 4: strength ×2) and an upload of
    the same weights; returns (cache folder, the weights as an upload)."""
    root = tmp_path_factory.mktemp("hub")
    weights = random_models.save_lora(root / "upload" / "style.safetensors", warm_backend.pipe.transformer, seed=3)
    cache = root / "cache"
    _snapshot(
        cache,
        REPO,
        {"adapter_model.safetensors": weights, "adapter_config.json": json.dumps({"r": 4, "lora_alpha": 8})},
    )
    return cache, weights


@pytest.fixture
def with_hub(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(hub[0]))
    monkeypatch.setenv(lora_presets.EXTRA_ENV, _extra())
    return hub


def _clean(be) -> bool:
    return not be.has_adapter_layers() and not getattr(be.pipe.transformer, "peft_config", None)


def test_a_preset_is_offered_only_when_cached_and_made_for_the_loaded_model(hub, monkeypatch, tmp_path):
    monkeypatch.setenv(lora_presets.EXTRA_ENV, _extra())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    assert lora_presets.offered("xl-sft") == []
    with pytest.raises(lora_presets.UnknownPreset, match="not installed on this studio"):
        lora_presets.resolve(NAME, "xl-sft")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub[0]))
    assert [p.name for p in lora_presets.offered("xl-sft")] == [NAME]
    assert lora_presets.offered("xl-turbo") == []  # another variant's layer sizes: not offered
    # The official 2B LoRA, even when installed, is never offered to an XL model.
    official = lora_presets.OFFICIAL[0]
    _snapshot(hub[0], official.repo, {official.file: hub[1]})
    assert [p.name for p in lora_presets.offered("xl-sft")] == [NAME]
    with pytest.raises(lora_presets.UnknownPreset, match="made for ACE-Step 1.5 2B"):
        lora_presets.resolve(official.name, "xl-sft")
    assert lora_presets.alpha_ratio(lora_presets.resolve(NAME, "xl-sft")[0]) == 2.0
    assert lora_presets.preload_entries("xl-sft") == [f"{REPO} adapter_model.safetensors,adapter_config.json"]


def test_the_space_preloads_every_preset_for_its_model_within_the_hubs_limit():
    front = (ROOT / "README.md").read_text().split("---")[1]
    block = front.split("preload_from_hub:")[1].split("models:")[0]
    entries = [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("- ")]
    assert len(entries) <= 10  # the Hub's limit on preload_from_hub
    for line in lora_presets.preload_entries("xl-sft"):
        assert line in entries


def test_a_preset_applies_as_the_same_upload_would_and_leaves_no_adapter(warm_backend, with_hub):
    bare = warm_backend.run(Render.flat({**REQUEST, "seeds": [4]}))["audio"]
    adapter = preparing.check_lora(None, 0.5, NAME)
    assert adapter["repo"] == REPO and adapter["alpha"] == 2.0 and Path(adapter["path"]).is_file()
    styled = warm_backend.run(Render.flat({**REQUEST, "seeds": [4], "adapters": (adapter,)}))["audio"]
    assert np.abs(styled - bare).max() > 1e-4
    assert _clean(warm_backend)
    # Strength 0.5 of a preset trained at alpha/rank 2 is the same weights uploaded at strength 1.
    upload = warm_backend.run(Render(Call(**REQUEST), [4], (preparing.check_lora(str(with_hub[1]), 1.0),)))["audio"]
    np.testing.assert_allclose(styled, upload, atol=1e-6)
    np.testing.assert_array_equal(warm_backend.run(Render(Call(**REQUEST), [4]))["audio"], bare)
    assert _clean(warm_backend)


def test_an_unknown_preset_or_a_preset_with_an_upload_is_refused_with_a_message(with_hub):
    for value, message in [
        ("no-such-style", "no LoRA preset called 'no-such-style'. Presets here: tiny-style"),
        ("chinese-new-year", "made for ACE-Step 1.5 2B DiT"),
        (7, "must be a preset's name"),
        ("x" * 10_000, "no LoRA preset called 'xxxxxxxx"),
    ]:
        with pytest.raises(checks.InputError, match=message) as info:
            preparing.check_lora(None, 1.0, value)
        assert info.value.param == "lora_preset" and len(info.value.message) < 200
    with pytest.raises(checks.InputError, match="Pick a LoRA preset or upload a LoRA file, not both") as info:
        preparing.check_lora(str(with_hub[1]), 1.0, NAME)
    assert info.value.param == "lora_preset"
    assert preparing.check_lora(None, 1.0, "") is None and preparing.check_lora(None, 1.0, "None") is None


def test_a_preset_job_crosses_to_the_gpu_side_as_plain_values(studio_env, with_hub):
    """What ZeroGPU pickles into its worker (tests/test_zerogpu.py does the same for an upload)."""
    import backend
    import generation
    import modes

    styled = modes.prepare_generate(prompt="pop", audio_duration=10, inference_steps=1, seed=3, lora_preset=NAME)
    bare = modes.prepare_generate(prompt="pop", audio_duration=10, inference_steps=1, seed=3)
    a = generation.run_music(pickle.loads(pickle.dumps(styled.request))).audio
    assert not backend.get_backend().has_adapter_layers()
    assert np.abs(a - generation.run_music(pickle.loads(pickle.dumps(bare.request))).audio).max() > 1e-4


# ---------------------------------------------------------------- served: API and page


@pytest.fixture(scope="module")
def served(hub, studio_server):
    """The studio with the Hub cache set before its page is built, as on the Space (its page offers the
    presets the cache holds as it is built), served in this process (``page_here``): a studio of its own
    (``python app.py``) would be a new interpreter, the Hub cache read as huggingface_hub is imported,
    and its first request would wait on its libraries' import (47.5 s at load 4). The presets read the cache
    from the environment as they run (``hub.cached_file``). No planner, as that studio had none."""
    import planner

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_CACHE", str(hub[0]))
        mp.setenv(lora_presets.EXTRA_ENV, _extra())
        mp.setenv("ACE_STUDIO_PLANNER_MODEL", "none")
        planner.reset_planner()
        try:
            with page_here() as (url, _):
                yield url
        finally:
            planner.reset_planner()


def test_a_preset_through_the_api_is_scoped_to_its_request_and_its_record_brings_it_back(served, monkeypatch, tmp_path):
    """The preset styles its own request alone; its take's record names the preset's repo and brings it back,
    and brought to a studio that does not hold it, names it in the note (one styled take for both: the record's
    test would make a take of its own)."""
    client = Client(served, verbose=False)
    common = dict(prompt="dub", audio_duration=10, inference_steps=2, seed=4, api_name="/generate")
    bare = client.predict(**common)
    styled = client.predict(**common, lora_preset=NAME, lora_scale=0.7)
    again = client.predict(**common)
    assert not np.array_equal(sf.read(bare[0])[0], sf.read(styled[0])[0])
    np.testing.assert_array_equal(sf.read(bare[0])[0], sf.read(again[0])[0])
    with pytest.raises(ValidationError, match="lora_preset: There is no LoRA preset called 'jazz'"):
        client.predict(**common, lora_preset="jazz")
    brought = client.predict(styled[-1], 1, api_name="/settings_from_generate")
    assert list(brought[-2:]) == [NAME, 0.7], brought  # the tab switch is not an API output
    record = styled[-1]
    params = record["params"]
    assert (params["lora_preset"], params["lora_repo"], params["lora_scale"]) == (NAME, REPO, 0.7)
    assert sf.info(styled[0]).frames == 10 * 48000
    values = records.settings(record)
    assert (values["lora_preset"], values["lora_scale"], values["files"]) == (NAME, 0.7, {})
    # Brought to a studio that does not hold it: not set, and named in the note (the served studio reads the
    # cache as it runs: nothing is clicked after this).
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    values = records.settings(record)
    assert values["lora_preset"] == "" and values["files"] == {"lora_preset": REPO}
    assert "LoRA preset (not installed here) 'tiny-org/tiny-style-lora'" in records.files_note(values["files"])


def test_every_music_endpoint_takes_a_preset_last():
    for mode, prepare in handlers.modes.PREPARE.items():
        assert handlers.preparer_parameters(prepare)[-1].name == "lora_preset", mode


def open_generate_settings(page, url: str) -> None:
    """The page at ``url`` with a style typed on Generate, its *Advanced settings* open and 2 steps asked."""
    page.goto(url)
    page.wait_for_selector("#studio-tabs")
    page.locator("#gen-prompt textarea").fill("dub techno")
    page.locator("#gen-advanced").get_by_text("Advanced settings").click()
    steps = page.locator("#gen-steps input[type=number]").first
    steps.fill("2")
    steps.press("Tab")


def test_the_page_offers_the_preset_and_generates_with_it(served, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        open_generate_settings(page, served)
        preset = page.locator("#gen-lora-preset input")
        preset.scroll_into_view_if_needed()
        preset.click()
        page.get_by_role("option", name=LABEL).click()
        assert preset.input_value() == LABEL
        picture(page.locator("#gen-lora-preset"), SHOTS / "lora-preset-field.png")
        page.locator("#gen-button").click()
        page.locator("#gen-take-1 a.download-link").first.wait_for()
        assert "take 1" in page.locator("#gen-seeds").inner_text()
        assert page.locator("[data-testid=toast-body].error").count() == 0
        # The record beside the take names the preset's repo.
        page.get_by_text("Details: every setting").click()
        page.get_by_text(REPO).first.wait_for()
        picture(page, SHOTS / "lora-preset.png")
    finally:
        context.close()
