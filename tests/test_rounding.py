"""bf16 as upstream ACE-Step's XL code rounds it (docs/fidelity.md, "The music model"; ``xl_model``, ``dcw``).

On a GPU the model runs in bf16, and there the same arithmetic rounded in another order is another
song. Each fact is written here from its definition in upstream's code (Qwen3's rotary embedding as
its model builds and casts it, vector-quantize-pytorch's ``ResidualFSQ`` under the model's dtype,
pytorch-wavelets' analysis bank) and checked on the tiny models loaded as the studio loads them;
spies sit at the attention kernel's call and on modules' outputs, never inside model code.
"""

from __future__ import annotations

import math

import pytest
import torch

import dcw
import models

BF16 = torch.bfloat16


@pytest.fixture(scope="module")
def half(tiny_upstream):
    """The tiny XL-shaped checkpoint loaded in bf16, as a GPU runs it."""
    return models.load_pipeline(str(tiny_upstream[0]), models.VARIANTS["xl-sft"], dtype=BF16)


def upstream_rotation(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Qwen3's RoPE as upstream's bf16 model computes it on ``x`` (``[batch, positions, heads, dim]``):
    the inverse frequencies made in float32 and rounded by the model's cast (they are a buffer), the
    angles in float32 from them, cos and sin rounded to the model's dtype, then ``x·cos +
    rotate_half(x)·sin`` with each product and the sum rounded to it."""
    dim, positions = x.shape[-1], x.shape[1]
    inverse = (1.0 / theta ** (torch.arange(0, dim, 2).float() / dim)).to(x.dtype).float()
    angles = torch.arange(positions).float()[:, None] * inverse[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    cos, sin = angles.cos().to(x.dtype)[:, None, :], angles.sin().to(x.dtype)[:, None, :]
    turned = torch.cat([-x[..., dim // 2 :], x[..., : dim // 2]], dim=-1)
    return x * cos + turned * sin


def _attentions(pipe):
    """One self-attention of each part that has them, with what runs it."""
    frames = 750  # 30 s: positions far enough for the frequencies' rounding to show
    g = torch.Generator().manual_seed(0)
    acoustic = pipe.transformer.config.audio_acoustic_hidden_dim
    width = pipe.condition_encoder.config.hidden_size
    text = pipe.condition_encoder.config.text_hidden_dim

    def randn(*shape):
        return torch.randn(*shape, generator=g).to(BF16)

    def dit():
        pipe.transformer(
            hidden_states=randn(2, frames, acoustic),
            timestep=torch.full((2,), 0.75, dtype=BF16),
            timestep_r=torch.full((2,), 0.75, dtype=BF16),
            encoder_hidden_states=randn(2, 20, width),
            context_latents=randn(2, frames, 2 * acoustic),
        )

    encoder = pipe.condition_encoder
    return {
        "DiT": (pipe.transformer.layers[0].self_attn, pipe.transformer.rope_theta, dit),
        "lyric encoder": (
            encoder.lyric_encoder.layers[0].self_attn,
            encoder.lyric_encoder.rope_theta,
            lambda: encoder.lyric_encoder(randn(1, 300, text), torch.ones(1, 300, dtype=torch.long)),
        ),
        "timbre encoder": (
            encoder.timbre_encoder.layers[0].self_attn,
            encoder.timbre_encoder.rope_theta,
            lambda: encoder.timbre_encoder(randn(1, frames, acoustic), torch.zeros(1, dtype=torch.long)),
        ),
        "audio tokenizer": (
            pipe.audio_tokenizer.attention_pooler.layers[0].self_attn,
            pipe.audio_tokenizer.attention_pooler.rope_theta,
            lambda: pipe.audio_tokenizer.tokenize(randn(1, frames, acoustic)),
        ),
        "detokenizer": (
            pipe.audio_token_detokenizer.layers[0].self_attn,
            pipe.audio_token_detokenizer.rope_theta,
            lambda: pipe.audio_token_detokenizer(randn(1, 20, width)),
        ),
    }


@pytest.mark.parametrize("part", ["DiT", "lyric encoder", "timbre encoder", "audio tokenizer", "detokenizer"])
def test_every_self_attention_rotates_as_upstreams_bf16_rope(half, part, monkeypatch):
    attn, theta, run = _attentions(half)[part]
    seen: dict[str, torch.Tensor] = {}
    real = torch.nn.functional.scaled_dot_product_attention

    def kernel(query, key, value, *args, **kwargs):
        if seen.pop("inside", False):
            seen["query"], seen["key"] = query.transpose(1, 2), key.transpose(1, 2)
        return real(query, key, value, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", kernel)
    handles = [
        attn.register_forward_pre_hook(lambda *_: seen.__setitem__("inside", True)),
        # Before any other hook: the normed query and key as the norms make them, not yet rotated.
        attn.norm_q.register_forward_hook(lambda _m, _a, out: seen.setdefault("q", out.clone()), prepend=True),
        attn.norm_k.register_forward_hook(lambda _m, _a, out: seen.setdefault("k", out.clone()), prepend=True),
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    # The kernel is handed upstream's rotation of the normed query and key, and nothing else.
    assert seen["query"].dtype == BF16
    assert torch.equal(seen["query"], upstream_rotation(seen["q"], theta))
    assert torch.equal(seen["key"], upstream_rotation(seen["k"], theta))


def test_in_float32_the_rotation_and_quantizer_are_diffusers_own_to_the_last_bit(tiny_upstream):
    """fp32 is upstream's already (held against its code): the corrections change no bit there."""
    variant = models.VARIANTS["xl-sft"]
    studio = models.load_pipeline(str(tiny_upstream[0]), variant)
    plain = models.load_upstream(tiny_upstream[0], variant)  # diffusers' classes as they are
    g = torch.Generator().manual_seed(1)
    acoustic = plain.transformer.config.audio_acoustic_hidden_dim
    inputs = {
        "hidden_states": torch.randn(2, 750, acoustic, generator=g),
        "timestep": torch.full((2,), 0.5),
        "timestep_r": torch.full((2,), 0.5),
        "encoder_hidden_states": torch.randn(2, 20, plain.condition_encoder.config.hidden_size, generator=g),
        "context_latents": torch.randn(2, 750, 2 * acoustic, generator=g),
    }
    latents = torch.randn(1, 750, acoustic, generator=g)
    codes = torch.randint(0, 64000, (1, 150, 1), generator=g)
    with torch.no_grad():
        assert torch.equal(studio.transformer(**inputs).sample, plain.transformer(**inputs).sample)
        ours, theirs = studio.audio_tokenizer.tokenize(latents), plain.audio_tokenizer.tokenize(latents)
        assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
        ours = studio.audio_tokenizer.quantizer.get_output_from_indices(codes)
        assert torch.equal(ours, plain.audio_tokenizer.quantizer.get_output_from_indices(codes))


def _fsq_reference(fsq, hidden: torch.Tensor, clamp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """vector-quantize-pytorch's ``ResidualFSQ`` (one quantizer, hard-clamped symmetric levels) as
    upstream's tokenizer runs it: in float32, with the soft clamp ``clamp``."""
    levels = torch.tensor([8, 8, 8, 5, 5, 5])
    basis = torch.cumprod(torch.tensor([1, 8, 8, 8, 5, 5]), dim=0)
    x = torch.nn.functional.linear(hidden.float(), fsq.project_in.weight.float(), fsq.project_in.bias.float())
    x = (x / clamp).tanh() * clamp
    digits = torch.floor((levels - 1) * (x.clamp(-1, 1) + 1) / 2 + 0.5)
    codes = digits * (2.0 / (levels - 1)) - 1.0
    out = torch.nn.functional.linear(codes, fsq.project_out.weight.float(), fsq.project_out.bias.float())
    return out.to(hidden.dtype), (digits * basis).sum(dim=-1).long()


def test_the_tokenizer_soft_clamps_with_upstreams_bf16_constant(half):
    fsq = half.audio_tokenizer.quantizer
    assert [tuple(fsq._levels.tolist()), fsq.scales.tolist()] == [(8, 8, 8, 5, 5, 5), [[1.0] * 6]]
    # Upstream's clamp 1 + 1/(L − 1) is a buffer made under the model's dtype: 1.140625 for 8 levels.
    levels = torch.tensor([8.0, 8, 8, 5, 5, 5])
    rounded = (1 + 1 / (levels.to(BF16) - 1)).float()
    assert rounded.tolist() == [1.140625] * 3 + [1.25] * 3
    hidden = torch.randn(1, 4000, fsq.project_in.in_features, generator=torch.Generator().manual_seed(2)).to(BF16)
    want, want_codes = _fsq_reference(fsq, hidden, rounded)
    _, exact_codes = _fsq_reference(fsq, hidden, 1 + 1 / (levels - 1))
    assert (want_codes != exact_codes).any()  # the rounding moves some codes: the check can tell them apart
    with torch.no_grad():
        got, got_codes = fsq(hidden)
    assert torch.equal(got_codes[..., 0], want_codes) and torch.equal(got, want)


def test_thinks_codes_become_latents_through_upstreams_bf16_codebook(half):
    fsq = half.audio_tokenizer.quantizer
    codes = torch.arange(64000).reshape(1, -1, 1)  # every code once
    # Upstream's codebook is computed under the model's dtype: k·(2/(L − 1)) − 1, each step rounded to
    # bf16; its handler then projects the codes out in bf16 (vector-quantize-pytorch's get_output_from_indices).
    levels = torch.tensor([8, 8, 8, 5, 5, 5])
    basis = torch.cumprod(torch.tensor([1, 8, 8, 8, 5, 5]), dim=0)
    digits = (codes[..., 0, None] // basis) % levels
    book = digits.to(BF16) * (2.0 / (levels.to(BF16) - 1)) - 1.0
    want = torch.nn.functional.linear(book, fsq.project_out.weight, fsq.project_out.bias)
    exact = (digits * (2.0 / (levels - 1)) - 1.0).to(BF16)
    assert not torch.equal(book, exact)  # rounding each step is not rounding the float32 codebook
    with torch.no_grad():
        assert torch.equal(fsq.get_output_from_indices(codes), want)


def test_dcws_haar_analysis_is_the_wavelet_librarys_convolution():
    """pytorch-wavelets' analysis bank (upstream's DCW): per channel a stride-2 convolution with the
    reversed Haar filters, low (c, c) and high (c, −c), c = 1/√2 in float32, on ``[B, C, 1, T]`` in
    float32 (an odd T padded with a zero); a convolution may fuse its two products into one rounding,
    so the bands are its, not ``a·c ± b·c``."""
    c = 1 / math.sqrt(2)
    taps = torch.tensor([[c, c], [c, -c]], dtype=torch.float32).repeat(64, 1)[:, None, None, :]
    for frames in (250, 251):
        for dtype in (torch.float32, BF16):  # the latents as the loop holds them
            x = (torch.randn(2, 64, frames, generator=torch.Generator().manual_seed(frames)) * 3).to(dtype)
            padded = torch.nn.functional.pad(x.float(), (0, frames % 2))
            bands = torch.nn.functional.conv2d(padded[:, :, None, :], taps, stride=(1, 2), groups=64)
            low, high = dcw.haar(x)
            assert torch.equal(low, bands[:, 0::2, 0]) and torch.equal(high, bands[:, 1::2, 0])


def test_the_text_encoder_rounds_its_rope_as_upstreams_float32_load_and_cast(half, tiny_upstream):
    """Upstream's handler loads Qwen3-Embedding in float32 and casts it to bf16, which rounds its
    rotary frequencies (a buffer); the studio loads it in bf16, and its caption states must not move."""
    from transformers import AutoModel

    folder = tiny_upstream[0].parent / "Qwen3-Embedding-0.6B"
    upstreams = AutoModel.from_pretrained(folder).to(BF16)
    ids = torch.randint(0, len(half.tokenizer), (1, 300), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours, theirs = half.text_encoder(input_ids=ids), upstreams(input_ids=ids)
    assert torch.equal(ours.last_hidden_state, theirs.last_hidden_state)
