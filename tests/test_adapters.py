"""Up to three adapters at once (``parameters.ADAPTER_SLOTS``), each a LoRA or a LoKr file or a preset with its own
strength: checked into ``Render.adapters`` (``preparing.check_adapters``), run, written to the take's record slot by
slot (``job_record.lora_record``: the first slot's fields those a record of one LoRA always had) and brought back by
*Use these settings*; through the handlers, ``gradio_client``, MCP, the page (Chromium) and the ZeroGPU harness, on
the tiny models with adapter files the tests write themselves."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import ValidationError

import checks
import handlers
import job_record
import lora_presets
import modes
import parameters
import random_models
import records
import results
from conftest import ROOT, TIMEOUT_MS, page_here
from test_mcp import tools
from test_presets import open_generate_settings

SLOTS = parameters.ADAPTER_SLOTS
FILES = tuple(file for file, _, _ in SLOTS)
QUICK = {"prompt": "dub techno", "audio_duration": 10, "inference_steps": 2, "seed": 5, "think": False}


@pytest.fixture(scope="module")
def adapters(warm_backend, tmp_path_factory) -> dict[str, Path]:
    """Three distinct tiny LoRAs for the tiny transformer, and a copy of the first under another name."""
    root = tmp_path_factory.mktemp("adapters")
    made = {
        name: random_models.save_lora(root / f"{name}.safetensors", warm_backend.pipe.transformer, seed=seed)
        for seed, name in enumerate(("style", "voice", "genre"), 1)
    }
    (root / "copy").mkdir()
    made["copy"] = Path(shutil.copy(made["style"], root / "copy" / "again.safetensors"))
    return made


def _audio(paths: list[str]) -> np.ndarray:
    return sf.read(paths[0])[0]


# ---------------------------------------------------------------- in the handlers


def test_every_music_mode_takes_three_adapter_slots_and_no_fourth():
    """Each slot's file, strength and preset are parameters of every music mode (the declaration's), and there is
    no fourth: four adapters cannot be asked for."""
    for mode, prepare in modes.PREPARE.items():
        names = set(inspect.signature(prepare).parameters)
        assert {name for slot in SLOTS for name in slot} <= names, mode
        assert "lora_4" not in names and "lora_4_scale" not in names, mode
    assert len(SLOTS) == 3 and SLOTS[0] == ("lora", "lora_scale", "lora_preset")
    with pytest.raises(TypeError):
        modes.prepare_generate(prompt="dub", lora_4="x.safetensors")


def test_three_adapters_reach_the_run_in_order_each_at_its_own_strength(studio_env, adapters):
    job = handlers.prepare_for_admission(
        "generate",
        {
            **QUICK,
            "lora": str(adapters["style"]),
            "lora_scale": 0.5,
            "lora_2": str(adapters["voice"]),
            "lora_2_scale": 1.25,
            "lora_3": str(adapters["genre"]),
            "lora_3_scale": 0.0,
        },
    )
    got = [(a["name"], a["scale"], a["kind"], a["alpha"]) for a in job.request.render.adapters]
    assert got == [
        ("style.safetensors", 0.5, "lora", 1.0),
        ("voice.safetensors", 1.25, "lora", 1.0),
        ("genre.safetensors", 0.0, "lora", 1.0),
    ]
    assert handlers.prepare_for_admission("generate", QUICK).request.render.adapters == ()


@pytest.mark.parametrize("slot", SLOTS, ids=FILES)
def test_a_strength_without_an_adapter_in_its_slot_is_refused_naming_it(studio_env, slot):
    """A strength set (not 1) with nothing in its row would be dropped without a word: refused, on its field.
    At 1 (its default, as the page always sends it) it asks for nothing."""
    _, strength, _ = slot
    with pytest.raises(checks.InputError, match="its row holds no adapter") as refused:
        handlers.prepare_for_admission("generate", {**QUICK, strength: 0.5})
    assert refused.value.param == strength
    assert parameters.PARAMS[strength].label in str(refused.value)
    assert handlers.prepare_for_admission("generate", {**QUICK, strength: 1.0}).request.render.adapters == ()


@pytest.mark.parametrize("second", FILES[1:])
def test_the_same_adapter_twice_is_refused_by_its_bytes(studio_env, adapters, second):
    for same in (adapters["style"], adapters["copy"]):  # the same path, or the same bytes uploaded again
        with pytest.raises(checks.InputError, match="given twice") as refused:
            handlers.prepare_for_admission("generate", {**QUICK, "lora": str(adapters["style"]), second: str(same)})
        assert refused.value.param == second


@pytest.mark.parametrize("slot", SLOTS, ids=FILES)
def test_a_file_and_a_preset_in_one_row_are_refused_on_that_rows_preset(studio_env, adapters, slot):
    file, _, preset = slot
    with pytest.raises(checks.InputError, match="not both") as refused:
        handlers.prepare_for_admission("generate", {**QUICK, file: str(adapters["style"]), preset: "anything"})
    assert refused.value.param == preset


def test_a_record_of_one_lora_is_written_and_read_as_it_always_was():
    """The first slot's fields are those a record of one LoRA always had, and a stored record given one LoRA
    (as a studio with one slot wrote it) comes back with it in the first row, the other rows empty."""
    upload = {"path": "/up/style.safetensors", "scale": 0.7, "alpha": 1.0, "kind": "lora", "name": "style.safetensors"}
    preset = {**upload, "preset": "tiny", "repo": "org/tiny", "name": "adapter_model.safetensors", "alpha": 2.0}
    assert job_record.lora_record(()) == {"lora": None}
    assert job_record.lora_record((upload,)) == {"lora": "style.safetensors", "lora_scale": 0.7}
    assert job_record.lora_record((preset,)) == {
        "lora": "adapter_model.safetensors",
        "lora_scale": 0.7,
        "lora_preset": "tiny",
        "lora_repo": "org/tiny",
    }
    stored = json.loads((ROOT / "tests" / "records" / "generate-401856c.json").read_text())
    plain = records.settings(stored)
    stored["params"] |= {"lora": "style.safetensors", "lora_scale": 0.7}
    values = records.settings(stored)
    assert values["files"] == {"lora": "style.safetensors", **plain["files"]}
    assert (values["lora_preset"], values["lora_scale"]) == ("", 0.7)
    assert all((values[p], values[s]) == ("", 1.0) for _, s, p in SLOTS[1:])
    assert records.adapters_used(stored) == 1 and records.adapters_used(plain) == 1
    assert results.adapters_text(stored) == "Adapters — style.safetensors (LoRA) at 0.7"


def test_three_adapters_write_their_record_and_come_back_slot_by_slot(monkeypatch):
    """Files in the first two rows, a preset in the third: the record names each in its slot's fields, *Use these
    settings* gives the strengths and the preset back and names the files to upload again, showing three rows."""
    monkeypatch.setattr(lora_presets, "offered", lambda variant: [SimpleNamespace(name="tiny", repo="org/tiny")])
    made = (
        {"path": "/a", "scale": 0.5, "alpha": 1.0, "kind": "lora", "name": "style.safetensors"},
        {"path": "/b", "scale": 1.5, "alpha": 1.0, "kind": "lokr", "name": "voice.safetensors", "layers": (3, 8)},
        {"path": "/c", "scale": 0.25, "alpha": 2.0, "kind": "lora", "name": "m.safetensors", "preset": "tiny",
         "repo": "org/tiny"},
    )  # fmt: skip
    stored = json.loads((ROOT / "tests" / "records" / "generate-401856c.json").read_text())
    stored["params"] |= job_record.lora_record(made)
    assert stored["params"]["lora_2_kind"] == "lokr" and stored["params"]["lora_2_layers"] == [3, 8]
    values = records.settings(stored)
    assert {k: v for k, v in values["files"].items() if k in FILES} == {
        "lora": "style.safetensors",
        "lora_2": "voice.safetensors",
    }
    got = [(values[p], values[s]) for _, s, p in SLOTS]
    assert got == [("", 0.5), ("", 1.5), ("tiny", 0.25)]
    assert records.adapters_used(stored) == 3
    assert "adapter 2 'voice.safetensors'" in records.files_note(values["files"])
    assert results.adapters_text(stored) == (
        "Adapters — style.safetensors (LoRA) at 0.5 · voice.safetensors (LoKr) at 1.5, changes 3 of 8 layers"
        " · org/tiny (LoRA) at 0.25"
    )


def test_three_adapters_each_change_the_take_by_its_own_strength(studio_env, adapters):
    """On the tiny pipeline: a second adapter changes the take, at strength 0 it is as if absent, and the take
    after them is the bare model's. The record names both, each at its strength."""
    one = {**QUICK, "lora": str(adapters["style"])}
    alone, _ = handlers.make("generate", **one)
    both, record = handlers.make("generate", **one, lora_2=str(adapters["voice"]), lora_2_scale=0.8)
    silent, _ = handlers.make("generate", **one, lora_2=str(adapters["voice"]), lora_2_scale=0.0)
    three, _ = handlers.make("generate", **one, lora_2=str(adapters["voice"]), lora_3=str(adapters["genre"]))
    assert not np.array_equal(_audio(alone), _audio(both))
    assert not np.array_equal(_audio(both), _audio(three))
    np.testing.assert_array_equal(_audio(alone), _audio(silent))
    params = record["params"]
    assert (params["lora"], params["lora_scale"], params["lora_2"], params["lora_2_scale"]) == (
        "style.safetensors",
        1.0,
        "voice.safetensors",
        0.8,
    )


def test_an_adapter_that_changes_only_some_of_its_layers_says_how_many_in_the_takes_details(
    studio_env, adapters, warm_backend, tmp_path
):
    """A LoRA naming a layer this model lacks beside its own: the take is made, and its record and the line under
    it say how many layers it changes of those it names."""
    from safetensors.torch import load_file, save_file

    import lora

    tensors = load_file(str(adapters["style"]))
    module = sorted(tensors)[0].rsplit(".lora_", 1)[0]  # one layer's pair, named again under a layer none has
    for key in [k for k in tensors if k.startswith(module + ".lora_")]:
        tensors[key.replace("transformer.", "transformer.ghost.", 1)] = tensors[key].clone()
    partial = tmp_path / "partial.safetensors"
    save_file(tensors, str(partial))
    changed, named = lora.layers_changed(str(partial), warm_backend.layer_sizes, warm_backend.variant.label)
    assert changed < named
    _, record = handlers.make("generate", **QUICK, lora=str(partial))
    assert record["params"]["lora_layers"] == [changed, named]
    assert f"partial.safetensors (LoRA) at 1, changes {changed} of {named} layers" in results.seeds_text(record)


# ---------------------------------------------------------------- served: the API, MCP, the page


def test_two_adapters_through_the_api(studio_server, adapters):
    url, _ = studio_server
    client = Client(url, verbose=False)
    common = dict(QUICK, api_name="/generate")
    one = client.predict(**common, lora=handle_file(str(adapters["style"])))
    two = client.predict(
        **common, lora=handle_file(str(adapters["style"])), lora_2=handle_file(str(adapters["voice"])), lora_2_scale=0.6
    )
    params = two[-1]["params"]
    assert (params["lora"], params["lora_2"], params["lora_2_scale"]) == ("style.safetensors", "voice.safetensors", 0.6)
    assert not np.array_equal(sf.read(one[0])[0], sf.read(two[0])[0])
    with pytest.raises(ValidationError, match="lora_3_scale: Adapter 3 strength is 0.5"):
        client.predict(**common, lora_3_scale=0.5)


def test_the_mcp_tools_take_three_adapters(studio_server):
    url, _ = studio_server
    listed = tools(url)
    for name in ("generate", "cover", "extend", "edit"):
        properties = listed[name].inputSchema["properties"]
        for file, strength, preset in SLOTS[1:]:
            assert {file, strength, preset} <= set(properties), name
            assert "LoRA or a LoKr file or a preset" in properties[file]["description"], name
            assert properties[strength]["description"], name


@pytest.mark.browser
def test_the_page_adds_a_second_adapter_row_and_makes_a_take_with_both(studio_server, browser, adapters):
    with page_here() as (url, _):
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            open_generate_settings(page, url)
            assert not page.locator("#gen-adapter-2").is_visible()
            page.locator("#gen-lora input[type=file]").set_input_files(str(adapters["style"]))
            page.locator("#gen-lora-note").get_by_text("style.safetensors").wait_for()
            page.locator("#gen-add-adapter").click()
            page.locator("#gen-adapter-2").wait_for(state="visible")
            assert not page.locator("#gen-adapter-3").is_visible()
            page.locator("#gen-lora-2 input[type=file]").set_input_files(str(adapters["voice"]))
            page.locator("#gen-lora-2-note").get_by_text("voice.safetensors").wait_for()
            page.locator("#gen-button").click()
            page.locator("#gen-take-1 a.download-link").first.wait_for()
            line = page.locator("#gen-seeds")
            line.get_by_text("voice.safetensors (LoRA) at 1").wait_for()
            assert "style.safetensors (LoRA) at 1" in line.inner_text()
            assert page.locator("[data-testid=toast-body].error").count() == 0
        finally:
            context.close()


# ---------------------------------------------------------------- the ZeroGPU harness


def test_two_adapters_on_zerogpu(zerogpu_space, tiny_pipeline_dir, tmp_path):
    import models

    pipe = models.load_pipeline(str(tiny_pipeline_dir), models.VARIANTS["xl-sft"])
    style = random_models.save_lora(tmp_path / "style.safetensors", pipe.transformer, seed=1)
    voice = random_models.save_lora(tmp_path / "voice.safetensors", pipe.transformer, seed=2)
    client = Client(zerogpu_space.url, verbose=False)
    made = client.predict(
        **QUICK, lora=handle_file(str(style)), lora_2=handle_file(str(voice)), lora_2_scale=0.5, api_name="/generate"
    )
    params = made[-1]["params"]
    assert (params["lora"], params["lora_2"], params["lora_2_scale"]) == ("style.safetensors", "voice.safetensors", 0.5)
    assert sf.info(made[0]).frames == 10 * 48000
