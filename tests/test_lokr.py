"""A LoKr adapter (LyCORIS's layout, upstream's ``lokr_weights.safetensors``) loads as upstream loads it,
changes only its own request, and is refused in words when it cannot change the model as it says.

The fidelity reference is LyCORIS's LoKr as upstream runs it (ACE-Step PR #530: ``create_lycoris`` then
``load_weights`` on its decoder; ``lycoris/modules/lokr.py``, ``LokrModule._rebuild_forward``): a layer's
output is its base output plus ``x @ (W' − W)ᵀ``, with ``W' = W + m · ΔW``, ``ΔW = kron(w1, w2) · alpha / rank``
(``w1 = w1_a @ w1_b``, ``w2 = w2_a @ w2_b`` when halved; the scale is 1 when neither factor is halved,
``LokrModule.__init__``) and, with a ``dora_scale``, ``W' = (W + ΔW) · (m · (dora_scale / ‖W + ΔW‖ − 1) + 1)``,
the norm per output row (``functional/general.py``, ``_weight_decompose``). It is computed here, in the
test's own code, from the file's tensors.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import backend
import lokr
import lora
import models
import random_models
from music_request import Render
from test_lora import REQUEST

MODEL = models.VARIANTS["xl-sft"].label
LABEL = re.escape(MODEL)  # as a pattern


def _bare(be: backend.Backend) -> bool:
    transformer = be.pipe.transformer
    peft = any(hasattr(m, "lora_A") for m in transformer.modules()) or getattr(transformer, "peft_config", None)
    own_forward = [n for n, m in transformer.named_modules() if "forward" in m.__dict__]
    return not peft and not lokr.wrapped(transformer) and not be.lokr_networks and own_forward == []


def _run(be, seed=3, adapters=()):
    return be.run(Render.flat({**REQUEST, "seeds": [seed], "adapters": adapters}))["audio"]


def _adapter(path, scale=1.0):
    return {"path": str(path), "scale": scale, "alpha": 1.0, "name": path.name}


def _delta(tensors: dict, stem: str, weight: torch.Tensor, strength: float) -> torch.Tensor:
    """``W' − W`` of one layer, LyCORIS's LoKr formula (module docstring) in float64."""
    t = {k.split(".", 1)[1]: v.double() for k, v in tensors.items() if k.startswith(stem + ".")}
    w1 = t["lokr_w1"] if "lokr_w1" in t else t["lokr_w1_a"] @ t["lokr_w1_b"]
    w2 = t["lokr_w2"] if "lokr_w2" in t else t["lokr_w2_a"] @ t["lokr_w2_b"]
    halved = [t[k] for k in ("lokr_w1_a", "lokr_w2_a") if k in t]
    scale = 1.0 if not halved else float(t["alpha"]) / halved[0].shape[1]
    change, base = torch.kron(w1, w2) * scale, weight.double()
    if "dora_scale" not in t:
        return change * strength
    merged = base + change
    ratio = t["dora_scale"] / (merged.norm(dim=1, keepdim=True) + torch.finfo(weight.dtype).eps)
    return merged * (strength * (ratio - 1) + 1) - base


def _layer_outputs(be, path, strength, x):
    """Every adapted layer's output for ``x`` with the adapter on (through the backend), and LyCORIS's
    formula's, both keyed by the layer."""
    tensors = load_file(str(path))
    names = lora.lokr_layer_names(be.layer_sizes)
    stems = {k.split(".", 1)[0] for k in tensors}
    layers = {names[s]: (s, be.pipe.transformer.get_submodule(names[s])) for s in stems}
    be.attach_adapters((_adapter(path, strength),))
    try:
        got = {name: layer(x[:, : layer.in_features]).double() for name, (_, layer) in layers.items()}
    finally:
        be.drop_adapters()
    wanted = {}
    for name, (stem, layer) in layers.items():
        inputs = x[:, : layer.in_features]
        wanted[name] = layer(inputs).double() + inputs.double() @ _delta(tensors, stem, layer.weight, strength).T
    return got, wanted


@pytest.fixture(scope="module")
def files(warm_backend, tmp_path_factory):
    root, transformer = tmp_path_factory.mktemp("lokr"), warm_backend.pipe.transformer
    made = {
        "halved": random_models.save_lokr(root / "lokr_weights.safetensors", transformer),
        "whole": random_models.save_lokr(root / "whole.safetensors", transformer, halves=(), alpha=7.0, seed=1),
        "both_halved": random_models.save_lokr(root / "both.safetensors", transformer, rank=1, halves=("w1", "w2")),
        "dora": random_models.save_lokr(root / "dora.safetensors", transformer, dora=True, seed=2),
        "diffusers_names": random_models.save_lokr(root / "named.safetensors", transformer, upstream=False),
        "mlp": random_models.save_lokr(
            root / "mlp.safetensors", transformer, targets=("gate_proj", "up_proj", "down_proj"), seed=3
        ),
        "lora": random_models.save_lora(root / "style.safetensors", transformer),
    }
    tensors = load_file(str(made["halved"]))
    elsewhere = {k.replace("lycoris_layers_", "lycoris_blocks_"): v for k, v in tensors.items()}
    save_file(elsewhere, str(root / "elsewhere.safetensors"))
    half_there = {**tensors, **{k: v.clone() for k, v in elsewhere.items() if "_self_attn_" in k}}
    save_file({k: v for k, v in half_there.items() if "_cross_attn_" not in k}, str(root / "partial.safetensors"))
    made["elsewhere"], made["partial"] = root / "elsewhere.safetensors", root / "partial.safetensors"
    return made


@pytest.mark.parametrize("kind", ["halved", "whole", "both_halved", "dora", "diffusers_names", "mlp"])
@pytest.mark.parametrize("strength", [1.0, 0.6, 1.7])
def test_each_layer_is_the_base_layer_plus_upstreams_lokr_change(warm_backend, files, kind, strength):
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(7))  # each layer takes its first inputs
    got, wanted = _layer_outputs(warm_backend, files[kind], strength, x)
    assert got.keys() == wanted.keys() and len(got) > 0
    for name in got:
        torch.testing.assert_close(got[name], wanted[name], rtol=1e-5, atol=1e-5, msg=name)
    assert _bare(warm_backend)


def test_a_lokr_changes_only_its_own_request_and_strength_zero_is_the_bare_model(warm_backend, files):
    reference = _run(warm_backend)
    styled = _run(warm_backend, adapters=(_adapter(files["halved"]),))
    assert np.abs(styled - reference).max() > 1e-4
    assert _bare(warm_backend)
    np.testing.assert_array_equal(_run(warm_backend), reference)
    np.testing.assert_array_equal(_run(warm_backend, adapters=(_adapter(files["dora"], 0.0),)), reference)
    # Upstream's layer names and diffusers' name the same layers: the same take.
    same = _run(warm_backend, adapters=(_adapter(files["diffusers_names"]),))
    np.testing.assert_allclose(same, styled, atol=1e-6)


def test_a_lora_and_a_lokr_together_both_change_the_layer(warm_backend, files):
    """Three adapters in one request, two kinds, each at its own strength: the layer's change is the sum of
    each one's change alone, and the model is bare after."""
    x = torch.randn(4, 32, generator=torch.Generator().manual_seed(1))

    def layer(x):  # looked up each time: a LoRA puts its own layer in the base layer's place
        return warm_backend.pipe.transformer.get_submodule("layers.0.cross_attn.to_q")(x)

    base = layer(x)
    asked = (_adapter(files["lora"], 0.8), _adapter(files["halved"], 0.5), _adapter(files["whole"], 1.3))
    alone = []
    for adapter in asked:
        warm_backend.attach_adapters((adapter,))
        alone.append(layer(x) - base)
        warm_backend.drop_adapters()
    assert all(change.abs().max() > 1e-3 for change in alone)
    warm_backend.attach_adapters(asked)
    together = layer(x) - base
    warm_backend.drop_adapters()
    torch.testing.assert_close(together, sum(alone), rtol=1e-5, atol=1e-5)
    assert _bare(warm_backend) and torch.equal(layer(x), base)
    reference = _run(warm_backend, seed=6)
    mixed = _run(warm_backend, seed=6, adapters=asked)
    assert np.abs(mixed - reference).max() > 1e-4 and _bare(warm_backend)
    np.testing.assert_array_equal(_run(warm_backend, seed=6), reference)


def test_two_loras_each_at_its_own_strength(warm_backend, files, tmp_path):
    other = random_models.save_lora(tmp_path / "voice.safetensors", warm_backend.pipe.transformer, seed=4)
    name = "layers.1.self_attn.to_v"
    x = torch.randn(4, 32, generator=torch.Generator().manual_seed(2))
    base, changes = warm_backend.pipe.transformer.get_submodule(name)(x), []
    for path, strength in ((files["lora"], 0.4), (other, 1.5)):
        t = load_file(str(path))
        a, b = (t[f"transformer.layers.1.self_attn.to_v.lora_{p}.weight"] for p in "AB")
        changes.append(x @ (b @ a).T * strength)
    warm_backend.attach_adapters((_adapter(files["lora"], 0.4), _adapter(other, 1.5)))
    got = warm_backend.pipe.transformer.get_submodule(name)(x)
    warm_backend.drop_adapters()
    torch.testing.assert_close(got, base + changes[0] + changes[1], rtol=1e-5, atol=1e-5)
    assert _bare(warm_backend)


def test_a_failing_request_leaves_no_adapter(warm_backend, files, tmp_path):
    broken = load_file(str(files["halved"]))
    broken = {k: v for k, v in broken.items() if not k.startswith("lycoris_layers_1_self_attn_q_proj")}
    broken["lycoris_layers_1_self_attn_q_proj.lokr_w1"] = torch.randn(3, 5)
    broken["lycoris_layers_1_self_attn_q_proj.lokr_w2"] = torch.randn(11, 7)
    save_file(broken, str(tmp_path / "misfit.safetensors"))
    with pytest.raises(lora.BadLora, match="misfit.safetensors is a LoKr adapter made for a different model"):
        _run(warm_backend, adapters=(_adapter(files["lora"]), _adapter(tmp_path / "misfit.safetensors")))
    assert _bare(warm_backend)


def test_the_issues_three_tensor_lokr_is_taken_not_called_a_full_model(warm_backend, tmp_path):
    """One layer, ``lokr_w1``, ``lokr_w2_a``, ``lokr_w2_b``: the file a new user tried."""
    g = torch.Generator().manual_seed(0)
    path = tmp_path / "lokr_weights.safetensors"
    save_file(
        {
            "lycoris_layers_0_cross_attn_k_proj.lokr_w1": torch.randn(4, 4, generator=g),
            "lycoris_layers_0_cross_attn_k_proj.lokr_w2_a": torch.randn(4, 2, generator=g),
            "lycoris_layers_0_cross_attn_k_proj.lokr_w2_b": torch.randn(2, 8, generator=g),
        },
        str(path),
    )
    assert lora.adapter_kind(str(path)) == "lokr"
    lora.check_file(str(path), warm_backend.layer_sizes, MODEL)
    total = len(warm_backend.layer_sizes)
    assert lora.layers_changed(str(path), warm_backend.layer_sizes) == (1, 1) and total > 1


def test_layers_changed_counts_a_partial_adapter_and_one_that_changes_nothing_is_refused(warm_backend, files):
    sizes = warm_backend.layer_sizes
    assert lora.layers_changed(str(files["halved"]), sizes) == (16, 16)
    assert lora.layers_changed(str(files["partial"]), sizes) == (8, 16)
    assert lora.layers_changed(str(files["lora"]), sizes) == (16, 16)
    told = rf"^elsewhere\.safetensors changes nothing in {LABEL}: none of its 16 layers .* LoKr adapter trained"
    with pytest.raises(lora.BadLora, match=told):
        lora.check_file(str(files["elsewhere"]), sizes, MODEL)
    with pytest.raises(lora.BadLora, match="changes nothing"):
        _run(warm_backend, adapters=(_adapter(files["elsewhere"]),))
    assert _bare(warm_backend)
    # A partial one loads and changes what it names.
    reference = _run(warm_backend, seed=9)
    assert np.abs(_run(warm_backend, seed=9, adapters=(_adapter(files["partial"]),)) - reference).max() > 1e-4


def test_a_lora_naming_none_of_the_models_layers_changes_nothing_and_is_refused(warm_backend, files, tmp_path):
    tensors = load_file(str(files["lora"]))
    save_file({k.replace(".layers.", ".blocks."): v for k, v in tensors.items()}, str(tmp_path / "x.safetensors"))
    with pytest.raises(lora.BadLora, match=rf"^x\.safetensors changes nothing in {LABEL}: .* Use a LoRA trained"):
        lora.check_file(str(tmp_path / "x.safetensors"), warm_backend.layer_sizes, MODEL)
    part = {**{k: v for k, v in tensors.items() if ".layers.0." in k}, **load_file(str(tmp_path / "x.safetensors"))}
    save_file(part, str(tmp_path / "part.safetensors"))
    assert lora.layers_changed(str(tmp_path / "part.safetensors"), warm_backend.layer_sizes) == (8, 24)
    reference = _run(warm_backend, seed=4)
    assert np.abs(_run(warm_backend, seed=4, adapters=(_adapter(tmp_path / "part.safetensors"),)) - reference).max() > 0
    assert _bare(warm_backend)


def _edited(files, tmp_path, name, change):
    tensors = load_file(str(files["halved"]))
    change(tensors)
    save_file(tensors, str(tmp_path / name))
    return str(tmp_path / name)


@pytest.mark.parametrize(
    ("change", "told"),
    [
        (
            lambda t: t.pop("lycoris_layers_0_self_attn_q_proj.lokr_w2_b"),
            r"is an incomplete LoKr adapter: its layer lycoris_layers_0_self_attn_q_proj has no lokr_w2_b",
        ),
        (
            lambda t: t.pop("lycoris_layers_0_self_attn_q_proj.lokr_w1"),
            r"incomplete LoKr adapter: .* has no lokr_w1\.",
        ),
        (
            lambda t: t.update({"lycoris_layers_0_self_attn_q_proj.lokr_w2_b": torch.zeros(3, 8)}),
            r"inconsistent LoKr adapter: .* the halves of lokr_w2 have ranks 2 and 3",
        ),
        (
            lambda t: t.update(
                {
                    "lycoris_layers_0_self_attn_q_proj.lokr_w2_a": torch.zeros(8, 0),
                    "lycoris_layers_0_self_attn_q_proj.lokr_w2_b": torch.zeros(0, 8),
                }
            ),
            r"is a LoKr adapter of rank 0 in lycoris_layers_0_self_attn_q_proj",
        ),
        (
            lambda t: t.update({"lycoris_layers_0_self_attn_q_proj.alpha": torch.ones(2)}),
            r"alpha is not one number",
        ),
        (
            lambda t: t.update({"lycoris_layers_0_self_attn_q_proj.dora_scale": torch.ones(5, 1)}),
            r"dora_scale holds 5 numbers for 32 outputs",
        ),
        (
            lambda t: t.update({"lycoris_layers_0_self_attn_q_proj.lokr_w1": torch.ones(4, 4, dtype=torch.int32)}),
            r"stores its LoKr adapter weights as I32",
        ),
        (
            lambda t: t.update({"lycoris_layers_0_self_attn_q_proj.hada_w1_a": torch.ones(4, 4)}),
            r"holding tensors that are not LoKr weights \(first: lycoris_layers_0_self_attn_q_proj\.hada_w1_a\)",
        ),
        (
            lambda t: t.update({"lycoris_layers_0_self_attn_k_proj.lokr_w1": torch.ones(8, 4)}),
            rf"made for a different model: 1 of its 16 layers do not fit {LABEL} \(first: "
            r"lycoris_layers_0_self_attn_k_proj makes 32×32 where that layer is 16×32\)",
        ),
        (
            lambda t: t.pop("lycoris_layers_1_cross_attn_v_proj.lokr_w2_a"),
            r"no lokr_w2_a",
        ),
    ],
)
def test_a_lokr_that_cannot_be_what_it_says_is_refused_in_words(warm_backend, files, tmp_path, change, told):
    path = _edited(files, tmp_path, "bad.safetensors", change)
    with pytest.raises(lora.BadLora, match=r"^bad\.safetensors .*" + told):
        lora.check_file(path, warm_backend.layer_sizes, MODEL)


def test_a_lokr_with_invalid_numbers_is_refused_when_read_whole(warm_backend, files, tmp_path):
    path = _edited(
        files, tmp_path, "nan.safetensors", lambda t: t["lycoris_layers_1_cross_attn_v_proj.lokr_w1"].fill_(np.nan)
    )
    lora.check_file(path, warm_backend.layer_sizes, MODEL, whole=False)  # the header is whole
    with pytest.raises(lora.BadLora, match=r"^nan\.safetensors is a damaged LoKr adapter: 1 of its tensors"):
        lora.check_file(path, warm_backend.layer_sizes, MODEL)


def test_upstream_layer_names_are_the_ones_the_upstream_checkpoint_loader_maps(warm_backend):
    """``lora.upstream_layer`` inverts ``models.map_upstream_key``: one fact, both ways."""
    for layer in warm_backend.layer_sizes:
        if layer:
            assert models.map_upstream_key(f"decoder.{lora.upstream_layer(layer)}.weight") == (
                "transformer",
                f"{layer}.weight",
            )


def test_the_adapter_bench_times_each_case_on_the_tiny_model(capsys):
    import bench_adapters

    bench_adapters.main(["--size", "tiny", "--repeats", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "CPU s" not in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| one LoRA",
        "| one LoKr",
        "| three LoRAs",
        "| three LoKr",
        "| mixed: two LoRAs and a LoKr",
    ]
