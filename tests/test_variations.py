"""Variations of a take (``variations``, ``retake``, *Variations* under every result,
``/variations``): upstream's retake mix of the take's noise, the take's plan and blueprint kept,
amount 0 the take again, a variation made again from its record, bad input refused with a message."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf

import handlers
import job_record
import records
import retake
import sampler
import variations
from conftest import copy_in, made_once
from music_request import Call
from test_upstream import SamplerSpy

KW = {"prompt": "warm synth-pop", "audio_duration": 10, "inference_steps": 2, "think": False}


def _audio(paths):
    return [sf.read(p)[0] for p in paths]


# ---------------------------------------------------------------- the mix (GPU side, any device)


def test_the_mix_is_upstreams_cos_sin_of_the_amount():
    import torch

    base = torch.randn((1, 4000, 64), generator=torch.Generator().manual_seed(1))
    assert torch.equal(retake.mix(base, [(7, 0.0)]), base)  # amount 0: the take's own noise, nothing drawn
    fresh = retake.mix(base, [(7, 1.0)])  # amount 1: all the new seed's noise
    assert torch.allclose(fresh, torch.randn((1, 4000, 64), generator=torch.Generator().manual_seed(7)), atol=1e-6)
    for amount in (0.2, 0.5, 0.8):
        mixed = retake.mix(base, [(7, amount)])
        correlation = float((mixed * base).mean() / (mixed.std() * base.std()))
        assert correlation == pytest.approx(math.cos(amount * math.pi / 2), abs=0.02)
        assert float(mixed.std()) == pytest.approx(1.0, abs=0.02)  # unit variance at any amount
    twice = retake.mix(retake.mix(base, [(7, 0.3)]), [(8, 0.4)])
    assert torch.equal(retake.mix(base, [(7, 0.3), (8, 0.4)]), twice)  # a chain is its steps in order


def test_the_mix_reaches_only_the_first_noise_and_leaves_the_pipeline_as_it_was():
    import torch

    class Pipe:
        def prepare_latents(self, batch_size, audio_duration, dtype, device, generator=None, latents=None):
            if latents is not None:
                return latents
            return torch.stack([torch.randn((8, 4), generator=g) for g in generator])

    pipe = Pipe()
    gens = lambda: [torch.Generator().manual_seed(s) for s in (5, 5)]  # noqa: E731
    plain = pipe.prepare_latents(2, 1.0, torch.float32, "cpu", gens())
    with retake.mixing(pipe, [[], [(9, 0.5)]]):
        mixed = pipe.prepare_latents(
            batch_size=2, audio_duration=1.0, dtype=torch.float32, device="cpu", generator=gens()
        )
        given = torch.zeros((2, 8, 4))
        assert pipe.prepare_latents(2, 1.0, torch.float32, "cpu", gens(), latents=given) is given
    assert torch.equal(mixed[0], plain[0]) and not torch.equal(mixed[1], plain[1])
    assert "prepare_latents" not in vars(pipe)  # the class's own method again


# ---------------------------------------------------------------- in this process


@pytest.fixture(scope="module")
def _two_once(tiny_pipeline_dir, tiny_base_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("variations") / "outputs"
    make = lambda: handlers.make("generate", seed=5, batch_size=2, **KW)  # noqa: E731
    return folder, made_once(folder, tiny_pipeline_dir, tiny_base_dir, make)


@pytest.fixture
def two(studio_env, _two_once):
    """``handlers.make("generate", seed=5, batch_size=2, **KW)``'s (paths, record), made once for the file and
    copied into this test's output folder (the paths are the copies); the tests only read it and vary it."""
    folder, (paths, record) = _two_once
    copy_in(folder, studio_env)
    return [str(studio_env / Path(p).relative_to(folder)) for p in paths], json.loads(json.dumps(record))


def test_amount_zero_makes_the_take_again_and_a_seed_makes_a_variation_again(two):
    paths, record = two
    take2 = _audio(paths)[1]
    again, made = handlers.run_job(variations.prepare(2, record, 0, 1))
    # The same noise, plan and seed: the take within the DiT's batched numerics (one 16-bit step).
    assert np.abs(_audio(again)[0] - take2).max() <= 2**-14
    assert made["takes"][0]["variation"] == {
        "of": {"take": 2, "seed": 6, "audio": record["takes"][1]["audio"]},
        "amount": 0.0,
        "seed": made["params"]["variation"]["seeds"][0],
    }
    varied, made = handlers.run_job(variations.prepare(2, record, 0.4, 2, seed=90))
    first, second = _audio(varied)
    assert np.abs(first - take2).max() > 1e-3 and np.abs(second - first).max() > 1e-3
    assert [t["seed"] for t in made["takes"]] == [6, 6] and made["params"]["batch_size"] == 2
    assert [t["variation"]["seed"] for t in made["takes"]] == [90, 91]
    assert [t["noise"] for t in made["takes"]] == [[[90, 0.4]], [[91, 0.4]]]
    assert "take 2 varied 0.4, new noise 91" in handlers.results.seeds_text(made)
    # Its record makes it again exactly: the same request and seed, or the variation's own record at amount 0.
    same, _ = handlers.run_job(variations.prepare(2, record, 0.4, 1, seed=90))
    assert np.abs(_audio(same)[0] - first).max() <= 2**-14
    again, deeper = handlers.run_job(variations.prepare(2, made, 0, 1))
    assert np.abs(_audio(again)[0] - second).max() <= 2**-14 and deeper["takes"][0]["noise"] == [[91, 0.4]]
    _, deeper = handlers.run_job(variations.prepare(1, made, 0.2, 1, seed=3))
    assert deeper["takes"][0]["noise"] == [[90, 0.4], [3, 0.2]]  # a variation of a variation


def test_a_thought_take_keeps_its_plan_blueprint_and_chosen_length(studio_env, with_planner, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_MAX_REQUEST_AUDIO_S", "60")  # Think chooses at most 30 s for two takes

    thought = {**KW, "think": True, "auto_length": True, "seed": 40, "batch_size": 2}
    spy = SamplerSpy()
    monkeypatch.setattr(sampler, "run", spy)
    _, record = handlers.make("generate", **thought)
    taken = spy.calls[-1].audio_codes
    _, made = handlers.run_job(variations.prepare(2, record, 0.5, 2))
    chosen = record["takes"][1]["planner"]["fields"]["duration"]
    assert spy.calls[-1].audio_codes == [taken[1]] * 2  # take 2's blueprint, written once, for both
    assert all(t["planner"]["fields"] == record["takes"][1]["planner"]["fields"] for t in made["takes"])
    assert all((t["planner"]["take"], t["planner"]["of"]) == (2, 2) for t in made["takes"])
    assert record["params"]["audio_duration"] == -1 and made["params"]["audio_duration"] == chosen
    assert all(t["seconds"] == pytest.approx(chosen, abs=0.05) for t in made["takes"])


RECORD = {"mode": "generate", "params": {"prompt": "pop", "audio_duration": 10, "think": False},
          "takes": [{"take": 1, "seed": 5, "audio": "2026-11-24/generate-take1-seed5.wav"}]}  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"record": None}, "There is no take yet"),
        ({"record": {**RECORD, "mode": "remix"}}, "mode \\('remix'\\) is not one of the studio's"),
        ({"record": {**RECORD, "mode": "cover", "params": {"src_audio": "song.wav"}}}, "need the song it was made"),
        (
            {"record": {**RECORD, "mode": "cover", "params": {"src_audio": "song.wav"}}, "src_audio": "/x/other.wav"},
            "made from the song 'song.wav', not 'other.wav'",
        ),
        ({"record": {**RECORD, "params": {**RECORD["params"], "lora": "/up/mine.safetensors"}}}, "LoRA file"),
        ({"take": 3}, "This result has one take: send take 1"),
        ({"amount": 1.5}, "Amount must be between 0"),
        ({"amount": "lots"}, "Amount"),
        ({"count": 5}, "How many must be between 1 and 4"),
        ({"count": 1.5}, "How many must be a whole number"),
        ({"seed": 2.5}, "Seed must be a whole number"),
        ({"record": {**RECORD, "takes": [{**RECORD["takes"][0], "noise": [[1, 2]]}]}}, "not a \\[seed, amount\\]"),
        ({"record": {**RECORD, "takes": [{**RECORD["takes"][0], "noise": [[1, 0.1]] * 17}]}}, "at most 16"),
        (
            {"record": {**RECORD, "params": {**RECORD["params"], "reference_audio": "me.wav"}}},
            "need the timbre reference it was made from \\('me.wav'\\)",
        ),
    ],
)
def test_bad_input_is_refused_with_a_message(studio_env, kwargs, message):
    with pytest.raises(gr.Error, match=message):
        variations.prepare(**{"record": RECORD, **kwargs})


# ---------------------------------------------------------------- through the API


def test_variations_through_the_api(studio_server):
    from gradio_client import Client

    client = Client(studio_server[0], verbose=False)
    *slots, _, record = client.predict(**KW, seed=12, api_name="/generate")
    *made, line, varied = client.predict(take=1, record=record, amount=0.5, count=2, seed=4, api_name="/variations")
    assert made[0] and made[1] and made[2] is None and made[3] is None
    assert "take 1 varied 0.5, new noise 4" in line and len(varied["takes"]) == 2
    assert varied["takes"][1]["variation"]["of"]["seed"] == 12 and varied["takes"][1]["noise"] == [[5, 0.5]]
    *same, _, again = client.predict(take=1, record=record, amount=0, count=1, api_name="/variations")
    assert np.abs(sf.read(same[0])[0] - sf.read(slots[0])[0]).max() <= 2**-14  # amount 0 is the take
    with pytest.raises(Exception, match="Amount must be between 0 and 1"):
        client.predict(take=1, record=record, amount=2, count=1, api_name="/variations")
    # The studio goes on serving after a refusal.
    assert client.predict(take=1, record=again, amount=0.1, count=1, api_name="/variations")[0]


def test_variations_of_an_extension_keep_the_song_through_the_api(studio_server):
    from gradio_client import Client, handle_file

    import examples

    client = Client(studio_server[0], verbose=False)
    song = examples.demo_song()
    take, _, record = client.predict(
        src_audio=handle_file(song),
        prompt="keep grooving",
        extend_seconds=6,
        inference_steps=2,
        seed=5,
        api_name="/extend",
    )
    with pytest.raises(Exception, match="need the song it was made from"):
        client.predict(take=1, record=record, amount=0.5, count=2, api_name="/variations")
    *made, _, varied = client.predict(
        take=1, record=record, amount=0.5, count=2, seed=3, src_audio=handle_file(song), api_name="/variations"
    )
    assert varied["mode"] == "extend" and [t["variation"]["seed"] for t in varied["takes"]] == [3, 4]
    source, first, second = sf.read(song)[0], sf.read(made[0])[0], sf.read(made[1])[0]
    kept = len(source) - 2400  # the original part, up to the seam's crossfade, is the song itself
    assert (
        np.abs(first[:kept] - source[:kept]).max() <= 2**-14 and np.abs(second[:kept] - source[:kept]).max() <= 2**-14
    )
    assert np.abs(first[len(source) :] - second[len(source) :]).max() > 1e-3  # the new part varies


def test_the_quota_line_declares_the_takes_it_will_make(studio_env):
    import audio
    import duration_estimate
    import messages

    two = variations.prepare(1, RECORD, 0.3, 2)
    declared = duration_estimate.music_duration(duration_estimate.MusicShape.of(two.request))
    line = handlers.reserves("variations")({"take": 1, "record": RECORD, "count": 2})
    assert line.startswith(messages.RESERVES.format(time=audio.clock(declared))), line
    assert duration_estimate.MusicShape.of(two.request).takes == 2 and two.mode == "generate"
    assert handlers.reserves("variations")({"take": 1, "record": None, "count": 2}) == messages.RESERVES_NOT_YET


def test_a_takes_own_json_varies_the_take_it_holds_and_keeps_its_noise(studio_env, two):
    _, record = two
    _, made = handlers.run_job(variations.prepare(2, record, 0.4, 2, seed=60))
    own = json.loads((studio_env / made["takes"][1]["metadata"]).read_text())  # the second variation's .json
    assert own["noise"] == [[61, 0.4]] and own["variation"]["seed"] == 61
    job = variations.prepare(1, own, 0, 1)  # ``take`` is the one the file holds, whatever is asked
    assert job.request.render.noise == (((61, 0.4),),) and job.seeds == [6]
    assert job_record.of(job)["variation"]["of"] == {"take": 2, "seed": 6, "audio": own["audio"]}


def test_use_these_settings_of_a_variation_says_what_comes_back(two, monkeypatch):
    import results

    _, record = two  # its take 1: seed 5, as a one-take request of the same makes
    _, made = handlers.run_job(variations.prepare(1, record, 0.4, 1, seed=60))
    said = []
    monkeypatch.setattr(results.gr, "Info", lambda message, **_: said.append(message))
    values = results.settings_from_record(made, 1)
    assert values[8] == 5 and "variation (of take 1, amount 0.4, new noise seed 60)" in said[0]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**RECORD, "mode": ["generate"]}, "is not one of the studio"),
        ({**RECORD, "takes": [{**RECORD["takes"][0], "seed": -1}]}, "it has no seed"),
    ],
)
def test_odd_records_are_refused_with_a_message(studio_env, record, message):
    with pytest.raises(gr.Error, match=message):
        variations.prepare(1, record, 0.3, 1)


def test_a_long_file_name_in_a_record_is_not_copied_on(studio_env):
    record = {**RECORD, "takes": [{**RECORD["takes"][0], "audio": "x" * 100_000}]}
    assert job_record.of(variations.prepare(1, record, 0.3, 1))["variation"]["of"]["audio"] is None


def test_a_record_that_says_dcw_is_made_again_as_it_says(studio_env, tmp_path):
    """Until upstream's PR #1273 DCW ran for every model, so a take's record may say true on the XL SFT
    model, whose default is off: its variations and its settings brought back keep it on (and off where it
    says false); a record that says nothing gets the model's default."""
    from test_audio_modes import tone

    song = tone(tmp_path / "song.wav", seconds=8)
    for said in (True, False):
        record = {**RECORD, "params": {**RECORD["params"], "dcw": said}}
        job = variations.prepare(1, record, 0.3, 1)
        assert job_record.of(job)["dcw"] is said and job.request.render.pipeline.dcw is said
        assert records.settings(record)["dcw"] is said
        edit = {"prompt": "calm", "repainting_start": 1, "repainting_end": 3, "dcw": said, "src_audio": "song.wav"}
        job = variations.prepare(1, {**RECORD, "mode": "edit", "params": edit}, 0.3, 1, src_audio=str(song))
        assert job_record.of(job)["dcw"] is said and job.request.render.pipeline.dcw is said
    assert job_record.of(variations.prepare(1, RECORD, 0.3, 1))["dcw"] is False
    assert records.settings(RECORD)["dcw"] is False


# ---------------------------------------------------------------- upstream 1.5's retake, every task


@pytest.fixture(scope="module")
def pipe(tiny_pipeline_dir):
    import models

    loaded = models.load_pipeline(str(tiny_pipeline_dir), models.VARIANTS["xl-sft"])
    loaded.set_progress_bar_config(disable=True)
    return loaded


def _retake_cases():
    import torch

    song = torch.from_numpy((np.random.default_rng(3).standard_normal((2, 12 * 48000)) * 0.2).astype(np.float32))
    extended = torch.nn.functional.pad(song, (0, 8 * 48000))
    return {
        "text2music": {"audio_duration": 10.0},
        "cover": {"task_type": "cover", "src_audio": song, "audio_cover_strength": 0.5, "audio_duration": 12.0},
        "cover from the song": {
            "task_type": "cover",
            "src_audio": song,
            "audio_cover_strength": 0.5,
            "cover_noise_strength": 0.4,
            "audio_duration": 12.0,
        },
        "edit": {
            "task_type": "repaint",
            "src_audio": song,
            "repainting_start": 3,
            "repainting_end": 6,
            "audio_duration": 12.0,
        },
        "extend": {
            "task_type": "repaint",
            "src_audio": extended,
            "repainting_start": 12,
            "repainting_end": -1,
            "audio_duration": 12.0,
        },
    }


@pytest.mark.parametrize("case", list(_retake_cases()))
def test_the_variation_noise_is_upstreams_retake_for_every_task(pipe, case):
    """Upstream 1.5's retake (PR #1155, ``generate_audio``): the starting noise is ``cos(v·π/2)·noise(seed) +
    sin(v·π/2)·noise(retake_seed)``, mixed whole, for every task, before a cover's re-noise from the song
    and before a repaint puts the noised song back outside its region. Written out here from upstream's
    lines and held at the DiT's inputs against the studio's ``retake.mixing`` around its own run."""
    import torch

    from test_upstream import dit_inputs

    call = {
        "prompt": ["pop"],
        "lyrics": ["[Instrumental]"],
        "vocal_language": ["en"],
        "num_inference_steps": 4,
        "guidance_scale": 7.0,
        "shift": 3.0,
        "task_type": "text2music",
        "dcw": False,
        **_retake_cases()[case],
    }
    call = Call(**call)
    seen, handle = dit_inputs(pipe)
    try:
        torch.manual_seed(0)  # the VAE's posterior draw of the song, as ``Backend.run`` seeds it
        with retake.mixing(pipe, [[(9, 0.3)]]):
            sampler.run(pipe, call, [torch.Generator("cpu").manual_seed(5)])
    finally:
        handle.remove()
    torch.manual_seed(0)
    inputs = sampler.prepare(pipe, call, "cpu", torch.float32)
    shape = (1, inputs.length, pipe.transformer.config.audio_acoustic_hidden_dim)
    noise = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(5))  # the take's (``prepare_noise``)
    retake_noise = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(9))
    v_rad = 0.3 * (math.pi / 2.0)
    noise = math.cos(v_rad) * noise + math.sin(v_rad) * retake_noise  # upstream's line, word for word
    t = sampler.schedule(pipe, 4, 3.0, torch.float32, "cpu").times
    first = seen[0]["hidden_states"][:1]  # the conditioned row (guidance doubles the batch)
    if call.cover_noise_strength:  # upstream's renoise of the song, with the mixed noise
        nearest = min((float(x) for x in t[:-1]), key=lambda x: abs(x - 0.6))
        assert torch.allclose(first, nearest * noise + (1 - nearest) * inputs.raw, atol=1e-6)
    else:
        assert torch.equal(first, noise)
    if inputs.region is not None:  # the song put back outside the region, noised with the mixed noise
        outside = ~inputs.region[0]
        put_back = t[1] * noise + (1.0 - t[1]) * inputs.raw
        assert torch.allclose(seen[1]["hidden_states"][0][outside], put_back[0][outside], atol=1e-6)
