"""The model's run as upstream ACE-Step's XL code makes it (docs/fidelity.md, "The music model").

Each fact on the tiny random models, through the studio's own loader (``models``, ``xl_model``), its
loop (``sampler``) and its correction (``dcw``): the timbre token, the config fields refused, the
reference windows, DCW, the chunk mask, the repaint's source put back and its edges, cover's switch
with one guidance momentum, cover's start from the song, the schedule. Spies sit on the model call
boundary (a forward hook on the DiT or the text encoder), never inside model code.
"""

from __future__ import annotations

import json
import math
import random
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

import checks
import dcw
import job_record
import models
import modes
import preparing
import random_models
import sampler
import xl_model
from music_request import Call
from test_audio_modes import tone
from test_upstream import dit_inputs

SR = 48000


@pytest.fixture(scope="module")
def pipe(tiny_pipeline_dir):
    loaded = models.load_pipeline(str(tiny_pipeline_dir), models.VARIANTS["xl-sft"])
    loaded.set_progress_bar_config(disable=True)
    return loaded


def _song(seconds: float = 12.0, seed: int = 0) -> torch.Tensor:
    wave = np.random.default_rng(seed).standard_normal((2, int(seconds * SR))) * 0.2
    return torch.from_numpy(wave.astype(np.float32))


def _call(**over):
    call = {
        "prompt": ["warm pop"] * 2,
        "lyrics": ["[Verse]\nla la la"] * 2,
        "vocal_language": ["en"] * 2,
        "num_inference_steps": 8,
        "guidance_scale": 7.0,
        "shift": 3.0,
        "task_type": "text2music",
        "audio_duration": 10.0,
    }
    return Call(**{**call, **over})


def _generators():
    return [torch.Generator("cpu").manual_seed(s) for s in (5, 6)]


def _prepared(pipe, call):
    """The run's inputs and starting noise, drawn as ``sampler.run`` draws them."""
    torch.manual_seed(0)
    inputs = sampler.prepare(pipe, call, "cpu", torch.float32)
    noise = pipe.prepare_latents(
        batch_size=2, audio_duration=inputs.length / 25, dtype=torch.float32, device="cpu", generator=_generators()
    )
    return inputs, noise


# ---------------------------------------------------------------- the timbre token


def test_the_timbre_encoder_reads_its_special_token_in_front_of_the_frames(pipe):
    encoder = pipe.condition_encoder.timbre_encoder
    frames = torch.randn(2, 30, pipe.transformer.config.audio_acoustic_hidden_dim)
    seen = {}

    def given(_module, args, kwargs):
        seen.setdefault("in", kwargs.get("hidden_states", args[0] if args else None))

    def normed(_module, _args, out):
        seen.setdefault("out", out)

    first = encoder.layers[0].register_forward_pre_hook(given, with_kwargs=True)
    last = encoder.norm.register_forward_hook(normed)
    try:
        with torch.no_grad():
            pooled, mask = encoder(frames, torch.arange(2))
    finally:
        first.remove()
        last.remove()
    embedded = torch.nn.functional.linear(frames, encoder.embed_tokens.weight, encoder.embed_tokens.bias)
    assert seen["in"].shape[1] == 31  # the token, then the 30 frames
    assert torch.equal(seen["in"][:, 0], encoder.special_token[0].expand(2, -1))
    assert torch.equal(seen["in"][:, 1:], embedded)
    assert torch.equal(pooled[:, 0], seen["out"][:, 0]) and mask.tolist() == [[1], [1]]


def test_every_layout_gets_the_token_and_diffusers_own_class_reads_a_frame_instead(tiny_pipeline_dir, tiny_upstream):
    upstream = models.load_pipeline(str(tiny_upstream[0]), models.VARIANTS["xl-sft"])
    diffusers = models.load_pipeline(str(tiny_pipeline_dir), models.VARIANTS["xl-sft"])
    assert upstream.condition_encoder.timbre_encoder.reads_special_token
    assert diffusers.condition_encoder.timbre_encoder.reads_special_token
    xl_model.read_special_token(diffusers)  # once per encoder: a second call adds nothing
    frames = torch.randn(1, 20, diffusers.transformer.config.audio_acoustic_hidden_dim)
    untouched = random_models.build_pipeline("tiny").condition_encoder.timbre_encoder  # diffusers' class
    untouched.load_state_dict(diffusers.condition_encoder.timbre_encoder.state_dict())
    with torch.no_grad():
        read, _ = diffusers.condition_encoder.timbre_encoder(frames, torch.arange(1))
        twice, _ = diffusers.condition_encoder.timbre_encoder(frames, torch.arange(1))
        plain, _ = untouched(frames, torch.arange(1))
    assert torch.equal(read, twice) and not torch.allclose(read, plain)


# ---------------------------------------------------------------- the config, honoured or refused


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hidden_act": "gelu"}, "hidden_act"),
        ({"rope_scaling": {"rope_type": "linear", "factor": 2.0}}, "rope_scaling"),
        ({"layer_types": ["chunked_attention", "full_attention"]}, "layer_types"),
        ({"is_lego_sft": True}, "is_lego_sft"),
        ({"num_lyric_encoder_hidden_layers": 3}, "num_lyric_encoder_hidden_layers"),
    ],
)
def test_a_config_field_the_classes_cannot_honour_is_refused_by_name(tiny_upstream, tmp_path, change, field):
    folder = tmp_path / "checkpoints"
    shutil.copytree(tiny_upstream[0].parent, folder)
    config = folder / tiny_upstream[0].name / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), **change}))
    with pytest.raises(models.ModelLoadError, match=f"config.json field {field}"):
        models.load_pipeline(str(config.parent), models.VARIANTS["xl-sft"])


def _with_config(tiny_upstream, folder, **change):
    shutil.copytree(tiny_upstream[0].parent, folder)
    config = folder / tiny_upstream[0].name / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), **change}))
    return models.load_pipeline(str(config.parent), models.VARIANTS["xl-sft"])


def _windows(layers):
    return [layer.self_attn.sliding_window is not None for layer in layers]


def test_the_layer_pattern_reaches_the_lyric_and_timbre_encoders(tiny_upstream, tmp_path):
    swapped = ["full_attention", "sliding_attention"]
    pipe = _with_config(tiny_upstream, tmp_path / "swapped", layer_types=swapped)
    timbre, lyric = pipe.condition_encoder.timbre_encoder, pipe.condition_encoder.lyric_encoder
    assert timbre._layer_types == swapped and lyric._layer_types[:2] == swapped
    assert _windows(timbre.layers) == _windows(lyric.layers) == [False, True]
    assert pipe.transformer.layer_types == swapped
    # No windows at all, as upstream's config class makes use_sliding_window false.
    plain = _with_config(tiny_upstream, tmp_path / "plain", use_sliding_window=False)
    encoder = plain.condition_encoder
    assert _windows(encoder.timbre_encoder.layers) == _windows(encoder.lyric_encoder.layers) == [False, False]
    assert plain.transformer.layer_types == ["full_attention"] * 2
    frames = torch.randn(1, 300, plain.transformer.config.audio_acoustic_hidden_dim)
    with torch.no_grad():  # 300 frames: past the 128-frame window, so the windows would tell
        default = models.load_pipeline(str(tiny_upstream[0]), models.VARIANTS["xl-sft"])
        ours, _ = encoder.timbre_encoder(frames, torch.arange(1))
        windowed, _ = default.condition_encoder.timbre_encoder(frames, torch.arange(1))
    assert not torch.allclose(ours, windowed)


# ---------------------------------------------------------------- a timbre reference


def _indexed(path, seconds: float, peak: float = 0.9):
    """A song whose samples say their own index (value = index / length × peak), as float WAV."""
    n = int(seconds * SR)
    ramp = np.arange(n, dtype=np.float64) / n * peak
    sf.write(path, np.stack([ramp, ramp], axis=1).astype(np.float32), SR, subtype="FLOAT")
    return n


def test_a_timbre_reference_is_three_ten_second_windows_one_from_each_third_chosen_by_the_seed(tmp_path):
    n = _indexed(tmp_path / "voice.wav", 45)
    windows = preparing.reference(str(tmp_path / "voice.wav"), seed=7)
    window, third = 10 * SR, n // 3
    assert windows.shape == (2, 3 * window)
    starts = [round(float(windows[0, k * window]) / 0.9 * n) for k in range(3)]
    draw = random.Random(7)  # upstream: Python's randint, bounds included, in this order
    assert starts == [
        draw.randint(0, third - window),
        third + draw.randint(0, third - window),
        2 * third + draw.randint(0, n - 2 * third - window),
    ]
    for k, start in enumerate(starts):  # each window is one stretch of the song
        stretch = windows[0, k * window : (k + 1) * window].astype(np.float64) / 0.9 * n
        assert np.abs(stretch - np.arange(start, start + window)).max() < 0.5
    assert np.array_equal(preparing.reference(str(tmp_path / "voice.wav"), seed=7), windows)
    assert not np.array_equal(preparing.reference(str(tmp_path / "voice.wav"), seed=8), windows)


def test_a_short_reference_is_repeated_and_every_reference_clamped(tmp_path):
    sf.write(
        tmp_path / "hot.wav",
        np.full((12 * SR, 2), 2.5, np.float32) * np.sign(np.sin(np.arange(12 * SR)))[:, None],
        SR,
        subtype="FLOAT",
    )
    windows = preparing.reference(str(tmp_path / "hot.wav"), seed=1)
    assert windows.shape == (2, 30 * SR) and float(np.abs(windows).max()) == 1.0
    source = preparing.model_input(np.full((2, 1000), -3.0, np.float32))
    assert float(source.min()) == -1.0 and source.shape[1] % 1920 == 0


def test_a_silent_reference_is_refused_on_its_field(studio_env, tmp_path):
    sf.write(tmp_path / "quiet.wav", np.zeros((5 * SR, 2), np.float32), SR)
    with pytest.raises(checks.InputError, match="silent") as refused:
        preparing.reference(str(tmp_path / "quiet.wav"), seed=1)
    assert refused.value.param == "reference_audio"


# ---------------------------------------------------------------- DCW


def test_dcw_moves_each_haar_band_away_from_the_prediction():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]).reshape(1, 5, 1)
    low, high = dcw.haar(x.transpose(1, 2))
    c = 1 / math.sqrt(2)
    np.testing.assert_allclose(low.flatten(), [3 * c, 7 * c, 5 * c], rtol=1e-6)  # an odd length: one zero padded
    np.testing.assert_allclose(high.flatten(), [-c, -c, 5 * c], rtol=1e-6)
    # Low band × 1.5, high band × 1.25 away from a zero prediction, then back.
    out = dcw.correct(x, torch.zeros_like(x), 0.5, 0.25)
    np.testing.assert_allclose(out.flatten(), [1.625, 2.875, 4.625, 5.875, 6.875], rtol=1e-6)
    y = torch.randn(2, 251, 3)
    np.testing.assert_allclose(dcw.inverse_haar(*dcw.haar(y.transpose(1, 2)), 251).transpose(1, 2), y, atol=1e-6)
    assert dcw.Dcw(on=False).correct(x, y[:1, :5, :1], 0.7) is x


def test_the_sampler_corrects_after_each_step_with_upstreams_strengths(pipe, half, monkeypatch):
    asked = []
    real = dcw.correct
    monkeypatch.setattr(dcw, "correct", lambda x, y, low, high: asked.append((low, high)) or real(x, y, low, high))
    sampler.run(pipe, _call(dcw=True), _generators())
    times = sampler.schedule(pipe, 8, 3.0, torch.float32, "cpu").values[:-1]
    assert asked == [(t * 0.05, (1 - t) * 0.02) for t in times]
    asked.clear()
    sampler.run(pipe, _call(dcw=False), _generators())
    assert asked == []
    # A call that says nothing gets the model's own default, as upstream's resolver (PR #1273): off on
    # the SFT checkpoint, on for every step of a turbo one.
    sampler.run(pipe, _call(), _generators())
    assert asked == []
    sampler.run(half[True], _call(), _generators())
    assert len(asked) == 8


@pytest.mark.parametrize(("variant", "default"), [("xl-sft", False), ("xl-base", False), ("xl-turbo", True)])
def test_dcw_is_on_by_default_for_turbo_only_and_a_choice_always_wins(
    studio_env, tmp_path, monkeypatch, variant, default
):
    """Upstream's main decides DCW by the model (PR #1273: an explicit value wins, else ``is_turbo``;
    PR #1282: an omitted one is None): XL SFT made noise with it on. Every mode's request and record
    say what runs, true or false; a part on the XL base gets the base's default whatever the studio's."""
    monkeypatch.setenv("ACE_STUDIO_VARIANT", variant)
    sf.write(tmp_path / "song.wav", _song(8).numpy().T, SR)
    song = str(tmp_path / "song.wav")
    jobs = {
        "generate": lambda **kw: modes.prepare_generate(prompt="pop", audio_duration=10, think=False, **kw),
        "cover": lambda **kw: modes.prepare_cover(src_audio=song, prompt="jazz", **kw),
        "extend": lambda **kw: modes.prepare_extend(src_audio=song, extend_seconds=5, **kw),
        "edit": lambda **kw: modes.prepare_edit(
            src_audio=song, prompt="calm", repainting_start=1, repainting_end=3, **kw
        ),
    }
    for mode, prepare in jobs.items():
        for asked, runs in ((None, default), (True, True), (False, False)):
            job = prepare() if asked is None else prepare(dcw=asked)
            assert job_record.of(job)["dcw"] is runs and job.request.render.pipeline.dcw is runs, (mode, asked)
        assert job_record.of(prepare(dcw=None))["dcw"] is default
    part = modes.prepare_edit(src_audio=song, change="extract", part="drums")
    assert job_record.of(part)["dcw"] is False and part.request.render.pipeline.dcw is False
    assert job_record.of(modes.prepare_edit(src_audio=song, change="extract", part="drums", dcw=True))["dcw"] is True


# ---------------------------------------------------------------- repaint


def upstreams_explicit_mask(start, end, song_seconds, frames, channels, dtype=torch.float32):
    """Upstream's chunk mask in its explicit mode, as its handler builds it for a repaint (the facts, in the
    studio's words): an end of -1 (or none) is the song's end, its length in seconds; each time becomes a latent
    frame as ``int(seconds × 48 000 // 1920)`` (floored, not rounded); the first frame kept within the song, the
    last at least one frame after it and at most the song's frames; a boolean mask True from the first frame up
    to the last (excluded), cast to the model's dtype (1 in the region, 0 outside) and repeated over the acoustic
    channels, beside the source's latents in the context."""
    end = song_seconds if end is None or end < 0 else end
    first = max(0, min(int(start * 48000 // 1920), frames - 1))
    last = max(first + 1, min(int(end * 48000 // 1920), frames))
    mask = torch.zeros(frames, dtype=torch.bool)
    mask[first:last] = True
    return mask.to(dtype).unsqueeze(-1).repeat(1, channels)


def _mask_of(pipe, inputs):
    """The chunk mask a prepared run hands the DiT: the context's channels after the source's."""
    return inputs.context[..., pipe.transformer.config.audio_acoustic_hidden_dim :]


# A repaint's interval (start, end in seconds) on a 12 s song: on frame boundaries, between them (where upstream's
# floor and a rounding part), from 0, a sub-frame region, one past the song's end, and one to the song's end (-1).
INTERVALS = [(3, 6), (2.37, 7.91), (3.03, 5.5), (0, 4), (0.01, 0.02), (9.5, 30), (4.21, -1)]


@pytest.mark.parametrize(("start", "end"), INTERVALS)
def test_a_repaints_chunk_mask_is_upstreams_explicit_mask_of_its_interval(pipe, start, end):
    """A repaint's chunk mask is upstream's explicit one (what its page's Repaint passes), frame for frame."""
    song = _song()
    inputs, _ = _prepared(pipe, _call(task_type="repaint", src_audio=song, repainting_start=start, repainting_end=end))
    channels = pipe.transformer.config.audio_acoustic_hidden_dim
    expected = upstreams_explicit_mask(start, end, song.shape[-1] / SR, inputs.length, channels)
    mask = _mask_of(pipe, inputs)
    assert mask.dtype == inputs.context.dtype and all(torch.equal(row, expected) for row in mask)
    assert torch.equal(mask[0, :, 0].bool(), inputs.region[0])  # the region the loop puts the source back around


def test_a_repaint_gives_the_model_its_region_as_the_chunk_mask_and_silence_in_it(pipe, monkeypatch):
    """Every DiT call of a repaint (both guidance rows) reads the region's mask and silence in the region; the mask
    reaches the model (the new part differs from one made with upstream's all-ones mask), and outside the region
    and its edges the final latents are still the source's."""
    call = _call(task_type="repaint", src_audio=_song(), repainting_start=3, repainting_end=6)
    seen, handle = dit_inputs(pipe)
    try:
        torch.manual_seed(0)  # the source's VAE sample, the same in each run
        explicit = sampler.run(pipe, call, _generators())
    finally:
        handle.remove()
    channels = pipe.transformer.config.audio_acoustic_hidden_dim
    expected = upstreams_explicit_mask(3, 6, 12.0, 300, channels)
    assert len(seen) == 8 and all(len(s["context_latents"]) == 4 for s in seen)
    assert all(torch.equal(row[:, channels:], expected) for s in seen for row in s["context_latents"])
    context = seen[0]["context_latents"]
    silence = pipe.condition_encoder.silence_latent[0, 75:150]
    assert all(torch.equal(row[75:150, :channels], silence) for row in context)
    assert not torch.equal(context[0, :75, :channels], pipe.condition_encoder.silence_latent[0, :75])
    ones = sampler.chunk_mask
    monkeypatch.setattr(sampler, "chunk_mask", lambda region, *shape: ones(None, *shape))
    torch.manual_seed(0)
    all_ones = sampler.run(pipe, call, _generators())
    inside = explicit[:, 75:150] - all_ones[:, 75:150]
    assert float(inside.norm() / all_ones[:, 75:150].norm()) > 0.01
    raw = _prepared(pipe, call)[0].raw
    assert torch.equal(explicit[:, :63], raw[:, :63]) and torch.equal(explicit[:, 162:], raw[:, 162:])


def test_only_edits_regions_and_extends_send_the_explicit_mask_every_other_task_all_ones(studio_env, tmp_path):
    """Each mode's request (``modes.PREPARE``) and each of Edit's changes (``base_model.CHANGES``) at the model's
    call: Edit's region (typed or by the bar) and Extend (by seconds or by the bar) send upstream's explicit mask of
    the interval they repaint, as upstream's page does for its Repaint; Generate, Cover and the parts send all ones
    (upstream's "auto", as its page sends for every other task)."""
    import backend
    import base_model

    song = str(tone(tmp_path / "song.wav", seconds=8.03))
    bar = {"bpm": 120, "first_downbeat": 0.5}
    asks = [
        ("generate", {"prompt": "pop", "audio_duration": 10, "think": False}, False),
        ("cover", {"src_audio": song, "prompt": "jazz"}, False),
        ("extend", {"src_audio": song, "extend_seconds": 5}, True),
        ("extend", {"src_audio": song, "bars": "4", **bar}, True),
        ("edit", {"src_audio": song, "prompt": "calm", "repainting_start": 2.37, "repainting_end": 5.5}, True),
        ("edit", {"src_audio": song, "prompt": "calm", "bars": "2-3", **bar}, True),
    ]
    for change in base_model.CHANGES:
        asks.append(("edit", {"src_audio": song, "change": change, "part": "drums", "add_parts": ["drums"]}, False))
        if change == "complete":
            del asks[-1][1]["part"]
        else:
            del asks[-1][1]["add_parts"]
    assert {mode for mode, _, _ in asks} == set(modes.PREPARE)
    studio = backend.get_backend()
    for mode, asked, explicit in asks:
        call = modes.PREPARE[mode](**asked).request.render.pipeline
        pipe = studio.pipe_for(call.task_type)
        inputs = sampler.prepare(pipe, backend._as_pipeline_inputs(call, 1), "cpu", torch.float32)
        mask, channels = _mask_of(pipe, inputs), pipe.transformer.config.audio_acoustic_hidden_dim
        if explicit:
            start, end, seconds = call.repainting_start, call.repainting_end, call.src_audio.shape[-1] / SR
            expected = upstreams_explicit_mask(start, end, seconds, inputs.length, channels)
            assert torch.equal(mask[0], expected) and 0 < float(mask.mean()) < 1, (mode, asked)
        else:
            assert torch.equal(mask, torch.ones_like(mask)), (mode, asked)


def test_a_repaint_puts_the_noised_source_back_for_half_the_steps_and_blends_twelve_frames(pipe):
    call = _call(task_type="repaint", src_audio=_song(), repainting_start=3, repainting_end=6)
    inputs, noise = _prepared(pipe, call)
    plan = sampler.schedule(pipe, 8, 3.0, torch.float32, "cpu")
    times = plan.times
    kept = []
    final = sampler._denoise(pipe, call, inputs, noise, plan, lambda *a: kept.append(a[3]["latents"].clone()))
    outside = ~inputs.region
    for i, latents in enumerate(kept):
        source = times[i + 1] * noise + (1.0 - times[i + 1]) * inputs.raw
        assert torch.equal(latents[outside], source[outside]) == (i < 4)  # round(0.5 × 8) steps
    assert torch.equal(final[:, :63], inputs.raw[:, :63]) and torch.equal(final[:, 162:], inputs.raw[:, 162:])
    assert torch.equal(final[:, 75:150], kept[-1][:, 75:150])
    ramp = (final[:, 63:75] - inputs.raw[:, 63:75]) / (kept[-1][:, 63:75] - inputs.raw[:, 63:75])
    torch.testing.assert_close(ramp[0, :, 0], torch.arange(1, 13) / 13)


def test_the_edge_blend_ramps_linearly_from_the_source_into_the_new_part():
    region = torch.zeros(1, 20, dtype=torch.bool)
    region[0, 5:10] = True
    blended = sampler._blend_edges(torch.ones(1, 20, 1), torch.zeros(1, 20, 1), region, 3)
    assert blended.flatten().tolist() == [0, 0, 0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25] + [0] * 7
    assert sampler.repainting() == sampler.Repaint(0.5, 12)  # upstream's default: balanced, strength 0.5
    assert sampler.repainting("conservative") == sampler.Repaint(1.0, 25)
    assert sampler.repainting("aggressive") == sampler.Repaint(0.0, 0)


# ---------------------------------------------------------------- cover


def test_a_cover_switches_to_upstreams_text_only_condition_keeping_one_momentum(pipe, monkeypatch):
    import diffusers.guiders.adaptive_projected_guidance as apg

    buffers = []
    real = apg.normalized_guidance
    monkeypatch.setattr(apg, "normalized_guidance", lambda **kw: buffers.append(kw["momentum_buffer"]) or real(**kw))
    seen, handle = dit_inputs(pipe)
    try:
        sampler.run(
            pipe,
            _call(task_type="cover", src_audio=_song(), audio_cover_strength=0.5, num_inference_steps=6),
            _generators(),
        )
    finally:
        handle.remove()
    assert len(buffers) == 6 and len({id(b) for b in buffers}) == 1
    states = [s["encoder_hidden_states"] for s in seen]
    assert all(torch.equal(states[i], states[0]) for i in range(3)) and not torch.equal(states[3], states[0])
    assert all(torch.equal(states[i], states[3]) for i in range(3, 6))
    channels = pipe.transformer.config.audio_acoustic_hidden_dim
    silence = pipe.condition_encoder.silence_latent[0, :300]
    assert all(torch.equal(row[:, :channels], silence) for row in seen[3]["context_latents"])


def test_the_text_only_caption_is_padded_to_the_cover_captions_length(pipe):
    call = _call(task_type="cover", src_audio=_song(), audio_cover_strength=0.5)
    asked = []

    def keep(_module, _args, kwargs):
        asked.append(kwargs["input_ids"].clone())

    handle = pipe.text_encoder.register_forward_pre_hook(keep, with_kwargs=True)
    try:
        sampler.prepare(pipe, call, "cpu", torch.float32)
    finally:
        handle.remove()
    cover, plain = asked
    alone = pipe.tokenizer(pipe._format_prompt("warm pop", "", "en", 10.0, pipe._get_task_instruction("text2music"))[0])
    length = min(len(alone.input_ids), cover.shape[1])
    assert plain.shape == cover.shape and plain[0, :length].tolist() == alone.input_ids[:length]
    assert plain[0, length:].tolist() == [pipe.tokenizer.pad_token_id] * (cover.shape[1] - length)


@pytest.mark.parametrize("variant", ["xl-sft", "xl-base"])
def test_the_covers_start_says_upstreams_silence_report_and_refuses_nothing(studio_env, tmp_path, monkeypatch, variant):
    """Upstream's users hear near-silence with ``cover_noise_strength > 0`` on XL SFT and base (ACE-Step
    #1329, open): *Start from the song* says so where it is set, and the studio refuses nothing there."""
    import form_fields

    monkeypatch.setenv("ACE_STUDIO_VARIANT", variant)
    assert "#1329" in form_fields.cover_start_slider().info and "near-silence" in form_fields.cover_start_slider().info
    sf.write(tmp_path / "song.wav", _song(8).numpy().T, SR)
    for start in (0.2, 0.6, 1.0):
        job = modes.prepare_cover(src_audio=str(tmp_path / "song.wav"), prompt="jazz", cover_noise_strength=start)
        assert job_record.of(job)["cover_noise_strength"] == start == job.request.render.pipeline.cover_noise_strength


def test_a_cover_can_start_from_the_song_noised_to_the_nearest_step(pipe):
    call = _call(task_type="cover", src_audio=_song(), cover_noise_strength=0.4)
    inputs, noise = _prepared(pipe, call)
    times = sampler.schedule(pipe, 8, 3.0, torch.float32, "cpu").values
    nearest = min(times[:-1], key=lambda t: abs(t - 0.6))
    seen, handle = dit_inputs(pipe)
    steps = []
    try:
        torch.manual_seed(0)
        sampler.run(pipe, call, _generators(), lambda _p, step, _t, _k: steps.append(step))
    finally:
        handle.remove()
    first = times.index(nearest)
    assert len(seen) == 8 - first and steps == list(range(first, 8))  # progress still counts to 8
    start = nearest * noise + (1 - nearest) * inputs.raw
    assert torch.equal(seen[0]["hidden_states"][:2], start)


# ---------------------------------------------------------------- the schedule


def test_the_schedule_is_upstreams_per_variant():
    sft = type("Pipe", (), {"is_turbo": False})()
    turbo = type("Pipe", (), {"is_turbo": True})()
    plan = sampler.schedule(sft, 4, 3.0, torch.float32, "cpu")
    t = torch.linspace(1.0, 0.0, 5, dtype=torch.float32)
    assert all(torch.is_tensor(a) and a.dtype == torch.float32 for a in plan.times)
    assert torch.equal(torch.stack(plan.times), 3.0 * t / (1 + 2.0 * t))  # computed in the model's dtype
    assert plan.values == torch.stack(plan.times).tolist() and plan.picks == plan.values[:-1]
    fast = sampler.schedule(turbo, 8, 3.0, torch.bfloat16, "cpu")
    raw = [3 * x / (1 + 2 * x) for x in (1 - i / 8 for i in range(8))]
    assert all(isinstance(a, float) for a in fast.times) and fast.times[-1] == 0.0 and len(fast.times) == 9
    assert fast.times[:-1] == torch.tensor(raw, dtype=torch.bfloat16).tolist()  # a Python list cast once
    assert fast.picks == raw  # a cover's start picks from the list before the cast, as upstream's turbo
    assert (
        len(sampler.schedule(turbo, 30, 3.0, torch.float32, "cpu").times) == 21 and sampler.steps_run(turbo, 30) == 20
    )


def test_turbo_refuses_more_steps_than_it_was_distilled_for():
    import parameters  # the steps' check is their declaration's

    steps = parameters.PARAMS["inference_steps"]
    with pytest.raises(checks.gr.Error, match="at most 20 steps"):
        steps.check(21, models.VARIANTS["xl-turbo"])
    assert steps.check(20, models.VARIANTS["xl-turbo"]) == 20


# ---------------------------------------------------------------- bf16, turbo, a short song


@pytest.fixture(scope="module")
def half(tiny_pipeline_dir, tiny_turbo_dir):
    """The tiny SFT and turbo pipelines in bf16, as a GPU runs them (the CPU computes bf16 too)."""
    folders = {False: tiny_pipeline_dir, True: tiny_turbo_dir}
    return {
        turbo: models.load_pipeline(str(f), models.VARIANTS["xl-sft"], dtype=torch.bfloat16)
        for turbo, f in folders.items()
    }


@pytest.mark.parametrize("turbo", [False, True])
def test_every_mode_runs_and_decodes_in_bf16(half, turbo):
    pipe = half[turbo]
    song = _song(6)
    # Every call 6 s long: the length is not the point, and the calls then share their shapes, whose bf16
    # kernels the CPU prepares once for the first call (each new length prepares its own: most of the cost).
    calls = [
        _call(audio_duration=6.0),
        _call(task_type="repaint", src_audio=song, repainting_start=1, repainting_end=3),
        _call(
            task_type="repaint", src_audio=torch.nn.functional.pad(song[:, : 4 * SR], (0, 2 * SR)), repainting_start=4
        ),
        _call(task_type="cover", src_audio=song, audio_cover_strength=0.5, cover_noise_strength=0.3),
    ]
    for call in calls:
        audio = sampler.decode(pipe, sampler.run(pipe, call, _generators()))
        assert audio.dtype == np.float32 and np.isfinite(audio).all(), call.task_type


def test_turbos_cover_start_mixes_with_its_time_before_the_cast(half):
    pipe = half[True]
    call = _call(task_type="cover", src_audio=_song(6), cover_noise_strength=0.4)
    torch.manual_seed(0)
    inputs = sampler.prepare(pipe, call, "cpu", torch.bfloat16)
    noise = torch.randn(inputs.raw.shape, dtype=torch.bfloat16)
    plan = sampler.schedule(pipe, 8, 3.0, torch.bfloat16, "cpu")
    start, skipped, rest = sampler._start(call, inputs, noise, plan)
    nearest = min(plan.picks, key=lambda t: abs(t - 0.6))
    assert nearest != plan.values[plan.picks.index(nearest)]  # the cast moved it: which one is used shows
    assert torch.equal(start, nearest * noise + (1 - nearest) * inputs.raw)
    assert rest.times == plan.times[skipped:] and skipped == plan.picks.index(nearest)


def test_a_song_under_five_seconds_runs_padded_to_128_frames_of_silence_as_upstreams(pipe):
    call = _call(task_type="repaint", src_audio=_song(3), repainting_start=1, repainting_end=2)
    torch.manual_seed(0)
    inputs = sampler.prepare(pipe, call, "cpu", torch.float32)
    assert inputs.length == sampler.MIN_FRAMES and inputs.raw.shape[1] == 128
    silence = pipe.condition_encoder.silence_latent[0, : 128 - 75]
    assert all(torch.equal(row[75:], silence) for row in inputs.raw)  # from the silence latent's start
    assert sampler.decode(pipe, sampler.run(pipe, call, _generators())).shape[-1] == 128 * 1920


def test_the_guidance_interval_guides_within_it_and_runs_the_songs_rows_alone_outside(pipe, monkeypatch):
    """Upstream's ``cfg_interval_start``/``_end`` (``modeling_acestep_v15_base.py`` ``generate_audio``):
    guidance where the step's t (1 at noise) lies within them, the momentum untouched elsewhere. Upstream
    runs both rows there and keeps the song's; the loop runs the song's rows alone, the same values
    (each checked against the doubled call) for half the work."""
    import diffusers.guiders.adaptive_projected_guidance as apg

    guided = []
    real = apg.normalized_guidance
    monkeypatch.setattr(apg, "normalized_guidance", lambda **kw: guided.append(1) or real(**kw))
    null = pipe.condition_encoder.null_condition_emb

    def same_as_doubled(_module, args, kwargs, out):
        if kwargs["hidden_states"].shape[0] == 4:
            return out
        states = kwargs["encoder_hidden_states"]
        doubled = {k: torch.cat([v, v]) if torch.is_tensor(v) else v for k, v in kwargs.items()}
        doubled["encoder_hidden_states"] = torch.cat([states, null.to(states.dtype).expand_as(states)])
        with torch.no_grad():
            both = _module.forward(**doubled)[0]  # the module's own forward: no hook runs again
        torch.testing.assert_close(out[0], both[:2], rtol=1e-5, atol=1e-5)
        return out

    seen, handle = dit_inputs(pipe)
    hooked = pipe.transformer.register_forward_hook(same_as_doubled, with_kwargs=True)
    try:
        sampler.run(pipe, _call(num_inference_steps=8, cfg_interval_start=0.5, cfg_interval_end=0.95), _generators())
    finally:
        handle.remove()
        hooked.remove()
    # t = 1, .955, .9, .833, .75, .643, .5, .3: guided within [0.5, 0.95] as upstream reads it (diffusers'
    # AceStepPipeline reads the interval on 1 - t instead, which would guide the last two steps).
    within = [False, False, True, True, True, True, True, False]
    assert [s["hidden_states"].shape[0] == 4 for s in seen] == within and len(guided) == sum(within)


def _upstream_clamp(vt, xt, threshold):
    """Upstream's velocity norm clamp as its XL loop writes it (PR #978, #987), for the test to hold the loop to."""
    vt_norm = torch.norm(vt, dim=(1, 2), keepdim=True)
    xt_norm = torch.norm(xt, dim=(1, 2), keepdim=True) + 1e-10
    return vt * torch.clamp(threshold * xt_norm / (vt_norm + 1e-10), max=1.0)


@pytest.mark.parametrize("threshold", [0.0, 0.3])
def test_the_velocity_clamp_holds_each_step_to_upstreams_norm_bound(pipe, threshold):
    """``velocity_norm_threshold`` (upstream's, off at 0): each Euler step moves by the DiT's velocity scaled to at
    most ``threshold`` times the latents' norm, take by take, as upstream's loop does after guidance; unguided and
    without DCW here, so each step is the DiT's own output and nothing else."""
    steps, outputs = [], []
    seen, handle = dit_inputs(pipe)
    kept = pipe.transformer.register_forward_hook(lambda _m, _a, out: outputs.append(out[0].clone()))
    call = _call(num_inference_steps=4, guidance_scale=1.0, dcw=False, velocity_norm_threshold=threshold)
    try:
        final = sampler.run(pipe, call, _generators())
    finally:
        handle.remove()
        kept.remove()
    times = sampler.schedule(pipe, 4, 3.0, torch.float32, "cpu").values
    states = [s["hidden_states"] for s in seen] + [final]
    for i, vt in enumerate(outputs):
        moved = _upstream_clamp(vt, states[i], threshold) if threshold else vt
        steps.append(float(moved.norm() / vt.norm()))
        torch.testing.assert_close(states[i + 1], states[i] - moved * (times[i] - times[i + 1]), rtol=1e-5, atol=1e-5)
    assert (min(steps) < 0.99) == (threshold > 0), steps  # the bound bit where it was asked, nowhere else
