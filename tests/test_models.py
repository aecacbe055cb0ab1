"""The loader: both checkpoint layouts, strict key checks, registry and device choice."""

from __future__ import annotations

import json

import pytest
import torch

import models
import random_upstream
import xl_model


def _audio(pipe, seed: int = 3):
    xl_model.read_special_token(pipe)  # as the loader makes every pipeline read it, the original too
    return pipe(
        prompt="dreamy synth pop",
        lyrics="[Verse]\nhello night",
        audio_duration=10.0,
        num_inference_steps=3,
        guidance_scale=7.0,
        generator=torch.Generator().manual_seed(seed),
    ).audios


def test_layout_detection(tiny_pipeline_dir, tiny_upstream, tmp_path):
    dit, _ = tiny_upstream
    assert models.detect_layout(tiny_pipeline_dir) == "diffusers"
    assert models.detect_layout(dit) == "upstream"
    with pytest.raises(models.ModelLoadError, match="neither"):
        models.detect_layout(tmp_path)


def test_upstream_layout_round_trips_to_identical_audio(tiny_upstream):
    dit, original = tiny_upstream
    loaded = models.load_pipeline(str(dit), models.VARIANTS["xl-sft"])
    for name in ("transformer", "condition_encoder", "audio_tokenizer", "audio_token_detokenizer"):
        want = getattr(original, name).state_dict()
        got = getattr(loaded, name).state_dict()
        assert want.keys() == got.keys()
        assert all(torch.equal(want[k], got[k]) for k in want), name
    assert torch.equal(_audio(original), _audio(loaded))


def test_upstream_layout_casts_as_it_reads_and_builds_eval_modules(tiny_upstream):
    dit, original = tiny_upstream
    loaded = models.load_pipeline(str(dit), models.VARIANTS["xl-sft"], dtype=torch.bfloat16)
    for name in ("transformer", "condition_encoder", "audio_tokenizer", "audio_token_detokenizer"):
        module = getattr(loaded, name)
        assert not module.training, name
        floats = [t for t in module.state_dict().values() if t.is_floating_point()]
        assert floats and all(t.dtype == torch.bfloat16 for t in floats), name
        assert not any(t.is_meta for t in module.state_dict().values()), name
    want = original.transformer.state_dict()
    got = loaded.transformer.state_dict()
    assert all(torch.equal(want[k].to(torch.bfloat16), got[k]) for k in want)


def test_a_checkpoint_written_shard_by_shard_loads(tmp_path):
    dit = random_upstream.write_upstream_checkpoint(tmp_path / "checkpoints", size="tiny", shard_gib=2e-5)
    assert len(list(dit.glob("model-*.safetensors"))) > 2
    pipe = models.load_pipeline(str(dit), models.VARIANTS["xl-sft"], dtype=torch.bfloat16)
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.audio_tokenizer is not None


def test_diffusers_layout_loads_through_from_pretrained(tiny_pipeline_dir, tiny_upstream):
    pipe = models.load_pipeline(str(tiny_pipeline_dir), models.VARIANTS["xl-turbo"])
    assert type(pipe).__name__ == "AceStepPipeline"
    assert pipe.sample_rate == 48000 and pipe.latents_per_second == 25.0
    out = _audio(pipe)
    assert out.shape == (1, 2, 480000)


def test_upstream_sharded_weights(tiny_upstream, tmp_path):
    from safetensors.torch import load_file, save_file

    dit, original = tiny_upstream
    copy = tmp_path / "sharded"
    copy.mkdir()
    state = load_file(str(dit / "model.safetensors"))
    keys = sorted(state)
    halves = {
        "model-00001-of-00002.safetensors": keys[: len(keys) // 2],
        "model-00002-of-00002.safetensors": keys[len(keys) // 2 :],
    }
    weight_map = {}
    for shard, names in halves.items():
        save_file({k: state[k] for k in names}, str(copy / shard))
        weight_map.update(dict.fromkeys(names, shard))
    (copy / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    for name in ("config.json", "silence_latent.pt"):
        (copy / name).write_bytes((dit / name).read_bytes())
    # VAE and text encoder are found beside the DiT folder, as in upstream's checkpoints/ tree.
    for shared in ("vae", "Qwen3-Embedding-0.6B"):
        (tmp_path / shared).symlink_to(dit.parent / shared)
    loaded = models.load_pipeline(str(copy), models.VARIANTS["xl-sft"])
    assert torch.equal(_audio(original), _audio(loaded))


def test_strict_key_check_names_the_keys(tiny_upstream, tmp_path):
    from safetensors.torch import load_file, save_file

    dit, _ = tiny_upstream
    bad = tmp_path / "acestep-bad"
    bad.mkdir()
    state = load_file(str(dit / "model.safetensors"))
    dropped = next(k for k in state if k.startswith("decoder.layers.0.mlp"))
    del state[dropped]
    state["decoder.surprise.weight"] = torch.zeros(1)
    save_file(state, str(bad / "model.safetensors"))
    for name in ("config.json", "silence_latent.pt"):
        (bad / name).write_bytes((dit / name).read_bytes())
    for shared in ("vae", "Qwen3-Embedding-0.6B"):
        (tmp_path / shared).symlink_to(dit.parent / shared)
    with pytest.raises(models.ModelLoadError) as err:
        models.load_pipeline(str(bad), models.VARIANTS["xl-sft"])
    message = str(err.value)
    assert "transformer" in message and "surprise.weight" in message
    assert dropped.removeprefix("decoder.") in message


def test_unknown_prefix_is_refused():
    with pytest.raises(models.ModelLoadError, match="lm_head.weight"):
        models.split_upstream_state_dict({"lm_head.weight": torch.zeros(1)})


def test_key_mapping():
    parts = models.split_upstream_state_dict(
        {
            "decoder.proj_in.1.weight": 1,
            "decoder.layers.0.self_attn.q_proj.weight": 2,
            "decoder.layers.0.cross_attn.o_proj.weight": 3,
            "encoder.lyric_encoder.layers.0.self_attn.k_norm.weight": 4,
            "null_condition_emb": 5,
            "tokenizer.quantizer.project_in.weight": 6,
            "detokenizer.proj_out.weight": 7,
        }
    )
    assert parts["transformer"] == {
        "proj_in_conv.weight": 1,
        "layers.0.self_attn.to_q.weight": 2,
        "layers.0.cross_attn.to_out.0.weight": 3,
    }
    assert parts["condition_encoder"] == {"lyric_encoder.layers.0.self_attn.norm_k.weight": 4, "null_condition_emb": 5}
    assert parts["audio_tokenizer"] == {"quantizer.project_in.weight": 6}
    assert parts["audio_token_detokenizer"] == {"proj_out.weight": 7}


def test_missing_folder_and_missing_silence(tiny_upstream, tmp_path):
    with pytest.raises(models.ModelLoadError, match="does not exist"):
        models.load_pipeline(str(tmp_path / "nowhere"), models.VARIANTS["xl-sft"])
    dit, _ = tiny_upstream
    copy = tmp_path / "nosilence"
    copy.mkdir()
    for name in ("config.json", "model.safetensors"):
        (copy / name).write_bytes((dit / name).read_bytes())
    with pytest.raises(models.ModelLoadError, match="silence_latent"):
        models.load_pipeline(str(copy), models.VARIANTS["xl-sft"])


def test_registry_defaults_and_overrides(monkeypatch):
    monkeypatch.delenv("ACE_STUDIO_VARIANT", raising=False)
    monkeypatch.delenv("ACE_STUDIO_MODEL", raising=False)
    v = models.active_variant()
    assert v.name == "xl-sft" and v.layout == "upstream" and v.steps == 50 and v.guidance > 1
    assert models.model_source() == "ACE-Step/acestep-v15-xl-sft"
    turbo = models.VARIANTS["xl-turbo"]
    assert turbo.steps == 8 and turbo.turbo and turbo.layout == "diffusers"
    assert models.VARIANTS["xl-base"].repo.endswith("-diffusers")
    monkeypatch.setenv("ACE_STUDIO_VARIANT", "xl-turbo")
    assert models.active_variant() is turbo
    assert models.model_source() == turbo.repo
    monkeypatch.setenv("ACE_STUDIO_MODEL", "/some/folder")
    assert models.model_source() == "/some/folder"
    monkeypatch.setenv("ACE_STUDIO_VARIANT", "xl-mega")
    with pytest.raises(models.ModelLoadError, match="xl-mega"):
        models.active_variant()


def test_device_and_dtype(monkeypatch):
    # Upstream's table (acestep/handler.py initialize_service, _get_vae_dtype; llm_inference.py initialize).
    for part in ("dit", "text_encoder", "vae", "lm"):
        assert models.dtype_for("cuda", part) == torch.bfloat16
        assert models.dtype_for("cpu", part) == torch.float32
    assert [models.dtype_for("mps", p) for p in ("dit", "text_encoder", "vae")] == [torch.float16] * 3
    assert models.dtype_for("mps", "lm") == torch.float32
    assert models.dtype_for("mps") == torch.float16  # the DiT, by default
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert models.pick_device() == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert models.pick_device() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert models.pick_device() == "cuda"


@pytest.mark.parametrize("layout", ["upstream", "diffusers"])
def test_a_mac_build_has_upstreams_precision_per_part(layout, tiny_upstream, tiny_pipeline_dir):
    """What a load for MPS builds, without an MPS device: fp16 for every pipeline part (upstream keeps
    none of them in fp32 there), cast from the FP32 checkpoint as it is read; the LMs stay fp32."""
    dit, original = tiny_upstream
    source = dit if layout == "upstream" else tiny_pipeline_dir
    pipe = models.load_pipeline(str(source), models.VARIANTS["xl-sft"], dtype=models.pipeline_dtypes("mps"))
    for name, part in models.PIPELINE_PARTS.items():
        floats = [t for t in getattr(pipe, name).state_dict().values() if t.is_floating_point()]
        assert floats and {t.dtype for t in floats} == {models.dtype_for("mps", part)} == {torch.float16}, name
    assert pipe.condition_encoder.silence_latent.dtype == torch.float16
    if layout == "upstream":
        want = original.transformer.state_dict()
        got = pipe.transformer.state_dict()
        assert all(torch.equal(want[k].to(torch.float16), got[k]) for k in want)
    # The whole take runs in those dtypes (on the CPU here) and comes out as finite float32 audio.
    out = _audio(pipe)
    assert out.dtype == torch.float32 and torch.isfinite(out).all() and out.abs().max() > 0


def test_mixed_precision_per_component(tiny_upstream):
    dit, _ = tiny_upstream
    dtypes = {**models.pipeline_dtypes("cpu"), "vae": torch.float16, "text_encoder": torch.bfloat16}
    pipe = models.load_pipeline(str(dit), models.VARIANTS["xl-sft"], dtype=dtypes)
    assert pipe.vae.dtype == torch.float16 and pipe.text_encoder.dtype == torch.bfloat16
    assert pipe.transformer.dtype == torch.float32 and pipe.audio_tokenizer.dtype == torch.float32
