"""A visitor's LoRA applies to their request only: loaded, used and removed under the pipeline lock."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import ValidationError
from safetensors.torch import save_file

import admission
import backend
import checks
import handlers
import lora
import preparing
import random_models
import runs
from music_request import Render

REQUEST = dict(
    prompt="dub techno",
    lyrics="[Verse]\nechoes in the rain",
    audio_duration=10.0,
    num_inference_steps=3,
    guidance_scale=7.0,
    shift=1.0,
    vocal_language="en",
    task_type="text2music",
)


def _peft_layers(be: backend.Backend) -> int:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return sum(isinstance(m, BaseTunerLayer) for m in be.pipe.transformer.modules())


def _clean(be: backend.Backend) -> bool:
    return _peft_layers(be) == 0 and not getattr(be.pipe.transformer, "peft_config", None)


@pytest.fixture(scope="module")
def loras(warm_backend, tmp_path_factory):
    root = tmp_path_factory.mktemp("loras")
    other = torch.nn.Module()
    other.layers = torch.nn.ModuleList([torch.nn.Module()])
    other.layers[0].self_attn = torch.nn.Module()
    other.layers[0].self_attn.to_q = torch.nn.Linear(48, 48)
    plain = root / "full-model.safetensors"
    save_file({"layers.0.self_attn.to_q.weight": torch.zeros(4, 4)}, str(plain))
    not_st = root / "notes.safetensors"
    not_st.write_text("this is not a tensor file")
    return {
        "good": random_models.save_lora(root / "style.safetensors", warm_backend.pipe.transformer),
        "upstream": random_models.save_lora(
            root / "upstream.safetensors", warm_backend.pipe.transformer, upstream=True
        ),
        "other_model": random_models.save_lora(root / "other.safetensors", other),
        "plain": plain,
        "not_safetensors": not_st,
    }


def _run(be, seed=11, lora=None, **kw):
    req = {**REQUEST, **kw, "seeds": [seed]}
    if lora is not None:
        req["adapters"] = (lora,)
    return be.run(Render.flat(req))["audio"]


def test_lora_changes_only_its_own_request(warm_backend, loras):
    reference = _run(warm_backend)
    styled = _run(warm_backend, lora={"path": str(loras["good"]), "scale": 1.0})
    assert np.abs(styled - reference).max() > 1e-4
    assert _clean(warm_backend)
    np.testing.assert_array_equal(_run(warm_backend), reference)


def test_scale_zero_is_the_bare_model_and_upstream_naming_loads_the_same(warm_backend, loras):
    reference = _run(warm_backend, seed=5)
    np.testing.assert_array_equal(
        _run(warm_backend, seed=5, lora={"path": str(loras["good"]), "scale": 0.0}), reference
    )
    a = _run(warm_backend, seed=5, lora={"path": str(loras["good"]), "scale": 0.7})
    b = _run(warm_backend, seed=5, lora={"path": str(loras["upstream"]), "scale": 0.7})
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_failing_lora_call_leaves_no_adapter(warm_backend, loras, tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_CANCEL_DIR", str(tmp_path))
    reference = _run(warm_backend, seed=8)
    steps = []
    run_id = runs.start_run("visitor-a:generate")

    def stop_at_two(step, total):
        steps.append(step)
        if step == 2:
            runs.request_stop("visitor-a:generate")

    with pytest.raises(runs.Cancelled):
        warm_backend.run(
            Render.flat({**REQUEST, "seeds": [8], "adapters": ({"path": str(loras["good"]), "scale": 1.0},)}),
            progress=stop_at_two,
            run_id=run_id,
        )
    runs.finish_run(run_id)
    assert steps == [1, 2] and _clean(warm_backend)
    np.testing.assert_array_equal(_run(warm_backend, seed=8), reference)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("other_model", "made for a different model"),
        ("plain", "holds no LoRA weights"),
        ("not_safetensors", "cannot be read as a .safetensors file"),
    ],
)
def test_a_file_that_is_not_a_lora_for_this_model_is_refused(warm_backend, loras, name, message):
    reference = _run(warm_backend, seed=2)
    with pytest.raises(lora.BadLora, match=message):
        _run(warm_backend, seed=2, lora={"path": str(loras[name]), "scale": 1.0})
    assert _clean(warm_backend)
    np.testing.assert_array_equal(_run(warm_backend, seed=2), reference)


def test_matrices_that_hold_no_lora_are_refused_in_the_one_template_by_the_files_name():
    """A file of no LoRA weights is told so in one template (``error_messages.LORA_NO_WEIGHTS``), by its
    header (``read_lora_header``) or by its matrices against the model (``check_lora_fits``), the file named."""
    told = r"^plain\.safetensors holds no LoRA weights \(no lora_A / lora_B tensors\)\. Is it a full model instead\?$"
    with pytest.raises(lora.BadLora, match=told):
        lora.check_lora_fits({"blocks.0.proj.weight": (4, 4)}, {"blocks.0.proj": (4, 4)}, "XL SFT", "plain.safetensors")


def test_modes_check_the_file_and_record_it(studio_env, loras, tmp_path):
    with pytest.raises(checks.InputError, match="LoRA file is missing") as info:
        preparing.check_lora(str(tmp_path / "x.ckpt"), 1.0)
    assert info.value.param == "lora"
    (tmp_path / "x.ckpt").write_bytes(b"0")
    with pytest.raises(checks.InputError, match="not a .safetensors file"):
        preparing.check_lora(str(tmp_path / "x.ckpt"), 1.0)
    with pytest.raises(checks.InputError, match="LoRA strength must be between 0 and 2") as info:
        preparing.check_lora(str(loras["good"]), 3)
    assert info.value.param == "lora_scale"
    assert preparing.check_lora(None, 1.5) is None
    # Out of range even without a file: the page names a typed slip on its field.
    with pytest.raises(checks.InputError, match="LoRA strength must be between 0 and 2") as info:
        preparing.check_lora(None, 5)
    assert info.value.param == "lora_scale"
    paths, record = handlers.make(
        "generate",
        prompt="dub",
        audio_duration=10,
        inference_steps=2,
        seed=1,
        lora=str(loras["good"]),
        lora_scale=0.5,
    )
    assert record["params"]["lora"] == "style.safetensors" and record["params"]["lora_scale"] == 0.5
    assert sf.info(paths[0]).frames == 10 * 48000


def test_lora_through_the_api_and_a_misfit_marks_the_field(studio_server, loras):
    url, _ = studio_server
    client = Client(url, verbose=False)
    common = dict(prompt="dub", audio_duration=10, inference_steps=2, seed=4, think=False, api_name="/generate")
    bare = client.predict(**common)
    styled = client.predict(**common, lora=handle_file(str(loras["good"])), lora_scale=1.0)
    again = client.predict(**common)
    assert styled[-1]["params"]["lora"] == "style.safetensors"
    assert not np.array_equal(sf.read(bare[0])[0], sf.read(styled[0])[0])
    np.testing.assert_array_equal(sf.read(bare[0])[0], sf.read(again[0])[0])
    # The backend is warm now, so the validator checks the fit before the request is queued.
    with pytest.raises(ValidationError, match="lora: This LoRA was made for a different model"):
        client.predict(**common, lora=handle_file(str(loras["other_model"])))


def test_a_full_queue_says_busy_before_queueing(studio_server, monkeypatch):
    url, _ = studio_server
    client = Client(url, verbose=False)
    monkeypatch.setattr(admission, "queue_size", lambda: 0)
    with pytest.raises(ValidationError, match="The studio is busy .* try again in a minute"):
        client.predict(prompt="dub", audio_duration=10, inference_steps=1, think=False, api_name="/generate")
    with pytest.raises(ValidationError, match="studio is busy"):
        client.predict(theme="rain", api_name="/lyrics")
    monkeypatch.undo()
    ok = client.predict(prompt="dub", audio_duration=10, inference_steps=1, think=False, api_name="/generate")
    assert sf.info(ok[0]).frames == 10 * 48000
