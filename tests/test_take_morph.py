"""The morph of a take (*Morph this take*, ``/morph``, ``take_morph``), upstream's flow
edit on text2music (PRs #1156, #1169): a Generate take moved toward a new caption and lyrics from its own
latents, on a silence context, without its blueprint and without Think, unguided on turbo, without DCW;
its record saying what ran; refused with a message where it cannot run. Spies sit at the model-call boundary:
the DiT's forward (its inputs), the text encoding, the VAE's encode, the planner, DCW's correction.
"""

from __future__ import annotations

import dataclasses
import json

import gradio as gr
import numpy as np
import pytest
import soundfile as sf
import torch
from gradio_client import Client

import audio
import backend
import dcw
import duration_estimate
import handlers
import job_record
import messages
import output_folder
import planner
import records
import sampler
import take_morph
import uploads
import variations
from conftest import copy_in, made_once
from test_upstream import dit_inputs

FROM_TAKE_LATENTS = "the take's own latents"
SONG = {"prompt": "glass and strings", "lyrics": "[Verse]\nla la la", "audio_duration": 10, "think": False}


class Boundary:
    """What the model is handed while a morph runs: each DiT call's inputs, each text encoding's
    arguments, and the count of VAE encodes, planner calls and DCW corrections (each must stay 0)."""

    def __init__(self, pipe, monkeypatch):
        self.pipe, self.texts, self.encodes, self.plans, self.corrections = pipe, [], [], [], []
        encode, texts, correct = pipe.vae.encode, pipe.encode_prompt, dcw.Dcw.correct
        monkeypatch.setattr(pipe.vae, "encode", lambda x, *a, **k: self.encodes.append(x.shape) or encode(x, *a, **k))
        monkeypatch.setattr(pipe, "encode_prompt", lambda **k: self.texts.append(k) or texts(**k))
        monkeypatch.setattr(planner, "plan_request", lambda *a, **k: self.plans.append(a) or pytest.fail("planned"))
        monkeypatch.setattr(dcw.Dcw, "correct", lambda s, *a: self.corrections.append(a) or correct(s, *a))

    def __enter__(self):
        self.dit, self.handle = dit_inputs(self.pipe)
        return self

    def __exit__(self, *_):
        self.handle.remove()


def _take(out, record, n=1):
    entry = record["takes"][n - 1]
    return out / entry["audio"], np.load(out / entry["latents"]["file"], allow_pickle=False)


def test_a_takes_morph_runs_on_silence_without_its_blueprint_or_think_from_its_own_latents(
    studio_env, with_planner, monkeypatch
):
    """The take was made with Think (a blueprint, Think's caption and fields); its morph asks the DiT, at
    every step, about the take's own latents noised to that step (no VAE encode of the take) under the
    caption the take was made with, then under the new one, both on the silence latent as the context and
    neither on its blueprint; the planner is not asked; the record says what ran."""
    _, record = handlers.make("generate", **{**SONG, "think": True}, inference_steps=3, seed=5)
    plan = record["takes"][0]["planner"]
    assert plan.get("codes") and "skipped" not in plan  # the take had a blueprint
    path, own = _take(studio_env, record)
    pipe = backend.get_backend().pipe
    with Boundary(pipe, monkeypatch) as seen:
        _, made = handlers.run_job(take_morph.prepare(1, record, "dark techno", SONG["lyrics"], seed=9))
    assert seen.encodes == [] and seen.plans == [] and seen.corrections == []
    frames, width = own.shape
    silence = pipe.condition_encoder.silence_latent[0, :frames]
    steps = seen.dit[:6]  # three steps, two asks each (then the lyric alignment's one forward)
    for call in steps:  # [conditioned, null] rows, each on silence and an all-ones chunk mask
        assert call["context_latents"].shape == (2, frames, 2 * width)
        assert all(torch.equal(row[:, :width], silence) for row in call["context_latents"])
        assert bool((call["context_latents"][..., width:] == 1).all())
    generator = torch.Generator("cpu").manual_seed(9)
    first, second = (torch.randn((1, frames, width), generator=generator)[0] for _ in range(2))
    t = sampler.shifted_times(3, 3.0, torch.float32, "cpu").tolist()
    assert torch.equal(steps[0]["hidden_states"][0], first)  # t = 1: the noise itself
    song_at_t1 = (1.0 - t[1]) * torch.from_numpy(own) + t[1] * second
    assert np.allclose(steps[2]["hidden_states"][0].numpy(), song_at_t1.numpy(), atol=1e-6)  # the take's own
    # The target (the new caption) then the source (the take as Think described it), alike but for the text.
    target, source = seen.texts
    heard = plan["fields"].get("caption") or SONG["prompt"]
    assert (target["prompt"], source["prompt"]) == (["dark techno"], [heard])
    same = ("lyrics", "bpm", "keyscale", "timesignature", "audio_duration", "instruction", "vocal_language")
    assert all(target[k] == source[k] for k in same)
    assert source["bpm"] == plan["fields"]["bpm"] and source["audio_duration"] == pytest.approx(10.0)
    assert source["instruction"] == pipe._get_task_instruction("text2music")
    assert not torch.equal(steps[0]["encoder_hidden_states"], steps[1]["encoder_hidden_states"])
    params = made["params"]
    assert made["mode"] == "morph" and params["morph"] == {
        "of": {"take": 1, "audio": record["takes"][0]["audio"], "seed": 5},
        "prompt": heard,
        "lyrics": SONG["lyrics"],
    }
    assert (params["prompt"], params["lyrics"], params["think"]) == ("dark techno", SONG["lyrics"], False)
    # What did not run is not recorded (as a Cover morph's record): no DCW, no cover strength or start.
    assert not {"dcw", "audio_cover_strength", "cover_noise_strength"} & params.keys()
    assert (params["inference_steps"], params["guidance_scale"], params["seed"]) == (3, 7.0, 9)
    assert params["source_latents"].startswith(FROM_TAKE_LATENTS) and "planner" not in made["takes"][0]
    assert (studio_env / made["takes"][0]["latents"]["file"]).is_file()  # kept, to be morphed again
    assert sf.info(studio_env / made["takes"][0]["audio"]).frames == sf.info(path).frames


def test_a_morph_of_a_morph_starts_from_the_morphs_own_latents(made, monkeypatch):
    record = made  # the file's take (one step: the morphs' steps are not what is tested here)
    _, first = handlers.run_job(take_morph.prepare(1, record, "dark techno", "", seed=1))
    pipe = backend.get_backend().pipe
    with Boundary(pipe, monkeypatch) as seen:
        _, again = handlers.run_job(take_morph.prepare(1, first, "dark techno, choir", "", seed=2))
    assert seen.encodes == [] and again["params"]["source_latents"].startswith(FROM_TAKE_LATENTS)
    assert (
        again["params"]["morph"]["prompt"] == "dark techno" and again["params"]["morph"]["lyrics"] == "[Instrumental]"
    )
    assert seen.texts[1]["lyrics"] == ["[Instrumental]"]  # the first morph made it instrumental
    assert again["params"]["morph"]["of"]["audio"] == first["takes"][0]["audio"]


def test_a_take_whose_latents_are_gone_is_read_by_the_vae_and_says_so(studio_env, made, monkeypatch):
    record = made  # this test's own copy of the file's take: its latents are removed from the copy
    (studio_env / record["takes"][0]["latents"]["file"]).unlink()
    pipe = backend.get_backend().pipe
    with Boundary(pipe, monkeypatch) as seen:
        _, made = handlers.run_job(take_morph.prepare(1, record, "dark techno", SONG["lyrics"], seed=1))
    assert (
        len(seen.encodes) == 1 and made["params"]["source_latents"] == "encoded by the VAE: its take's latents are gone"
    )
    context, width = seen.dit[0]["context_latents"][0], pipe.transformer.config.audio_acoustic_hidden_dim
    assert torch.equal(context[:, :width], pipe.condition_encoder.silence_latent[0, : len(context)])


@pytest.fixture(scope="module")
def turbo_dir(tiny_turbo_dir):
    return tiny_turbo_dir


def test_a_turbo_models_morph_is_unguided_without_dcw_and_says_guidance_one(studio_env, turbo_dir, monkeypatch):
    """Upstream forces a turbo model's morph to guidance 1.0 (distilled for it) and runs it without DCW,
    which the turbo model's own songs use by default (its PR #1273)."""
    monkeypatch.setenv("ACE_STUDIO_MODEL", str(turbo_dir))
    monkeypatch.setenv("ACE_STUDIO_VARIANT", "xl-turbo")
    backend.reset_backend()
    _, record = handlers.make("generate", **SONG, inference_steps=2, seed=4)
    pipe = backend.get_backend().pipe
    with Boundary(pipe, monkeypatch) as seen:
        handlers.make("generate", **SONG, inference_steps=2, seed=4)
    assert seen.corrections  # a turbo song is corrected (the spy sees DCW)
    with Boundary(pipe, monkeypatch) as seen:
        _, made = handlers.run_job(
            take_morph.prepare(1, record, "dark techno", SONG["lyrics"], guidance_scale=7.0, seed=1)
        )
    assert seen.corrections == [] and "dcw" not in made["params"]
    assert made["params"]["guidance_scale"] == 1.0 and all(call["hidden_states"].shape[0] == 1 for call in seen.dit)
    assert len([c for c in seen.dit if c["hidden_states"].shape[1] == 250]) >= 4  # two asks a step, unguided


# ---------------------------------------------------------------- refusals


RECORD = {"mode": "generate", "params": {"prompt": "pop", "audio_duration": 10, "think": False},
          "takes": [{"take": 1, "seed": 5, "audio": "2026-11-24/generate-101010-abcdef-take1-seed5.wav"}]}  # fmt: skip


class Visitor:
    session_hash = "another-page"


@pytest.fixture(scope="module")
def _made_once(tiny_pipeline_dir, tiny_base_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("morph") / "outputs"
    make = lambda: handlers.make("generate", **SONG, inference_steps=1, seed=4)[1]  # noqa: E731
    return folder, made_once(folder, tiny_pipeline_dir, tiny_base_dir, make)


@pytest.fixture
def made(studio_env, _made_once):
    """A Generate take of ``SONG`` (one step, seed 4), made once for the file (16 tests ask for it) and copied
    into this test's output folder, so what a test changes on disk is its own; a fresh copy of its record."""
    folder, record = _made_once
    copy_in(folder, studio_env)
    return json.loads(json.dumps(record))


@pytest.mark.parametrize(
    ("change", "message", "field"),
    [
        ({"record": None}, "There is no take yet", "record"),
        ({"record": {"takes": [{"audio": "x"}]}}, "This is not a take's record", "record"),
        ({"take": 3}, "This result has one take: send take 1", "take"),
        ({"record": RECORD}, "Take 1 is no longer kept by the studio", "record"),
        ({"request": Visitor()}, "Take 1 is no longer kept by the studio", "record"),
        ({"prompt": SONG["prompt"]}, "The caption and lyrics are the take's own", "prompt"),
        ({"prompt": "", "lyrics": ""}, "Write the New style caption or the New lyrics", "prompt"),
        ({"inference_steps": 0}, "Steps must be between", "inference_steps"),
        ({"guidance_scale": "lots"}, "Guidance", "guidance_scale"),
        ({"seed": 2.5}, "Seed must be a whole number", "seed"),
        ({"vocal_language": "klingon"}, "language", "vocal_language"),
    ],
)
def test_bad_input_is_refused_with_a_message_on_its_field(made, change, message, field):
    asked = {"take": 1, "record": made, "prompt": "dark techno", "lyrics": SONG["lyrics"], **change}
    with pytest.raises(gr.Error, match=message) as refused:
        take_morph.prepare(**asked)
    assert getattr(refused.value, "param", field) == field


def test_only_a_generate_take_and_what_it_needs_again_are_morphed(studio_env, tmp_path):
    from test_audio_modes import tone

    song = tone(tmp_path / "song.wav", seconds=8)
    _, cover = handlers.make("cover", src_audio=str(song), prompt="jazz", inference_steps=1)
    with pytest.raises(gr.Error, match="Only a take made in Generate \\(or a morph of one\\)"):
        take_morph.prepare(1, cover, "dark techno")
    _, with_reference = handlers.make("generate", **SONG, inference_steps=1, reference_audio=str(song))
    with pytest.raises(gr.Error, match="timbre reference 'song.wav'") as refused:
        take_morph.prepare(1, with_reference, "dark techno")
    assert refused.value.param == "reference_audio"
    job = take_morph.prepare(1, with_reference, "dark techno", reference_audio=str(song))
    assert (
        job.request.render.pipeline.reference_audio is not None and job_record.of(job)["reference_audio"] == "song.wav"
    )
    own = json.loads((studio_env / with_reference["takes"][0]["metadata"]).read_text())
    own["params"]["lora"] = "mine.safetensors"
    (studio_env / with_reference["takes"][0]["metadata"]).write_text(json.dumps(own))
    with pytest.raises(gr.Error, match="LoRA 'mine.safetensors'.*A morph of this take needs it"):
        take_morph.prepare(1, with_reference, "dark techno", reference_audio=str(song))


def test_text_the_text_encoder_would_cut_short_is_refused_at_admission(studio_env, made):
    """The new lyrics on their field; the take's caption (never typed in the row) on the record."""
    backend.get_backend()  # the admission check counts tokens once the model is built (``preparing.check_tokens``)
    with pytest.raises(gr.Error, match="The lyrics are .* tokens long; the model reads at most 2048") as refused:
        take_morph.prepare(1, made, "dark techno", "字" * 4000)
    assert refused.value.param == "lyrics"
    metadata = studio_env / made["takes"][0]["metadata"]
    own = json.loads(metadata.read_text())
    own["params"]["prompt"] = "字" * 500
    metadata.write_text(json.dumps(own))
    with pytest.raises(gr.Error, match="The song's own style is .* tokens long") as refused:
        take_morph.prepare(1, made, "dark techno", SONG["lyrics"])
    assert refused.value.param == "record"


def test_the_morph_is_declared_with_every_step_it_runs_twice(made, monkeypatch):
    """Its shape is a morph's (two passes a step, its own bucket), and on turbo it counts every step
    asked: the morph's schedule is its own, not capped as a turbo song's (``music_shape.steps_run``)."""
    request = take_morph.prepare(1, made, "dark techno", SONG["lyrics"], inference_steps=30).request
    monkeypatch.setenv("ACE_STUDIO_VARIANT", "xl-turbo")
    shape = duration_estimate.MusicShape.of(request)
    # The same request were it a turbo song's, not a morph's: its steps capped.
    song = duration_estimate.MusicShape.of(
        dataclasses.replace(request, render=request.render.with_pipeline(morph=False))
    )
    assert (shape.morph, shape.steps, song.morph, song.steps) == (True, 30, False, sampler.TURBO_MAX_STEPS)
    dit = {p.phase: p for p in duration_estimate.music_phases(shape, loads=False)}["dit"]
    assert (dit.shape["mode"], dit.count) == ("morph", 29)


def test_a_morph_over_the_budget_says_what_would_fit(made, monkeypatch):
    check, shape = (
        handlers.admission_check("morph"),
        duration_estimate.MusicShape.of(take_morph.prepare(1, made, "dark techno", SONG["lyrics"]).request),
    )
    one, two = (duration_estimate.music_seconds(shape.with_steps(n)) for n in (1, 2))
    monkeypatch.setenv("ACE_STUDIO_MAX_REQUEST_GPU_S", f"{(one + two) / 2}")  # one step fits, not two
    with pytest.raises(gr.Error, match="morph is more than one request may make here.*Up to 1 steps") as refused:
        check(1, made, "dark techno", SONG["lyrics"], -1, 2, None, None, None)
    assert refused.value.param == "inference_steps"
    monkeypatch.setenv("ACE_STUDIO_MAX_REQUEST_GPU_S", f"{one / 2}")
    with pytest.raises(gr.Error, match="Morph a shorter take") as refused:
        check(1, made, "dark techno", SONG["lyrics"], -1, 1, None, None, None)
    assert refused.value.param == "prompt"


def test_a_morph_has_no_noise_of_its_own_to_vary(made):
    _, morphed = handlers.run_job(take_morph.prepare(1, made, "dark techno", SONG["lyrics"]))
    with pytest.raises(gr.Error, match="A morph starts from its song, not from noise"):
        variations.prepare(1, morphed, 0.3, 1)


def test_the_row_starts_with_the_text_the_model_read_and_the_declaration_counts_two_asks(made):
    """Think's caption and fields are what the model read where Think rewrote them (``heard``); the row
    starts from them; the cost line declares as the run does, two asks a step, as Cover's morph does."""
    planned = {"planner": {"fields": {"caption": "glassy ambient", "bpm": 90, "keyscale": "A minor"}}}
    params = {"prompt": "glass", "lyrics": "", "think": True, "rewrite_caption": True, "bpm": 120}
    said = take_morph.heard(records.Record.of({"params": params}), planned)
    assert (said["prompt"], said["lyrics"], said["bpm"], said["keyscale"]) == (
        "glassy ambient",
        "[Instrumental]",
        120,
        "A minor",
    )
    as_written = records.Record.of({"params": {**params, "rewrite_caption": False}})
    assert take_morph.heard(as_written, planned)["prompt"] == "glass"
    assert take_morph.fields_of_take(1, made) == (SONG["prompt"], SONG["lyrics"], 1)
    assert take_morph.fields_of_take(1, {"stopped": "Stopped"}) == (gr.skip(),) * 3
    job = take_morph.prepare(1, made, "dark techno", SONG["lyrics"])
    fields = {"take": 1, "record": made, "prompt": "dark techno", "lyrics": SONG["lyrics"]}
    shape = duration_estimate.MusicShape.of(job.request)
    line = handlers.reserves("morph")(fields)
    assert line.startswith(messages.RESERVES.format(time=audio.clock(duration_estimate.music_duration(shape)))), line
    assert duration_estimate.music_seconds(shape) > duration_estimate.music_seconds(
        dataclasses.replace(shape, morph=False)
    )
    assert handlers.reserves("morph")({**fields, "record": None}) == messages.RESERVES_NOT_YET
    # The row as it starts, the take's caption and lyrics: a request would be refused, and the line says it waits.
    same = {**fields, "prompt": SONG["prompt"]}
    assert handlers.reserves("morph")(same) == messages.RESERVES_LATER


def test_a_morph_takes_files_are_the_studios_own(made):
    _, morphed = handlers.run_job(take_morph.prepare(1, made, "dark techno", SONG["lyrics"]))
    entry = morphed["takes"][0]
    assert entry["audio"].split("/")[1].startswith("morph-")
    assert (
        output_folder.studio_take_audio(entry["audio"]) is not None
        and output_folder.studio_file(entry["metadata"]) is not None
    )


# ---------------------------------------------------------------- through the API


def test_the_morph_through_the_api(studio_server):
    """``/morph`` as a script calls it: a take of its own made again toward new lyrics, one take back;
    another page's take, lyrics unchanged and a bad step count refused with a message; the studio serves on."""
    client = Client(studio_server[0], verbose=False)
    *_, record = client.predict(**SONG, inference_steps=2, seed=12, api_name="/generate")
    *slots, line, made = client.predict(
        take=1, record=record, prompt="dark techno", lyrics=SONG["lyrics"], seed=3, api_name="/morph"
    )
    assert slots[0] and not any(slots[1:]) and line.startswith("Seeds — take 1: 3")
    assert made["mode"] == "morph" and made["params"]["morph"]["of"]["seed"] == 12
    assert made["params"]["source_latents"].startswith(FROM_TAKE_LATENTS)
    assert sf.info(slots[0]).frames == 10 * audio.SAMPLE_RATE
    *_, again = client.predict(take=1, record=made, prompt="dark techno, choir", lyrics="", api_name="/morph")
    assert again["params"]["morph"]["prompt"] == "dark techno"
    with pytest.raises(Exception, match="are the take's own"):
        client.predict(take=1, record=made, prompt="dark techno", lyrics=SONG["lyrics"], api_name="/morph")
    with pytest.raises(Exception, match="Steps must be between"):
        client.predict(take=1, record=made, prompt="x", inference_steps=1000, api_name="/morph")
    with pytest.raises(Exception, match="Take 1 is no longer kept by the studio"):
        Client(studio_server[0], verbose=False).predict(take=1, record=made, prompt="x", api_name="/morph")
    assert client.predict(take=1, record=again, prompt="bossa nova", lyrics="", api_name="/morph")[0]


def test_a_morph_or_a_cover_morph_that_leaves_the_lyrics_out_keeps_the_takes_lyrics(studio_server, tmp_path):
    """``/morph`` with only a new caption sings the take's lyrics (its record, its .lrc, its synced
    lines), with only new lyrics keeps the take's caption; an explicit "" is still an
    instrumental. A Cover morph without ``morph_lyrics`` of a sung take reads that take's lyrics as the
    song's own; of an upload (the same sound, not the studio's take) it says none."""
    from gradio_client import handle_file

    url, out = studio_server
    client = Client(url, verbose=False)
    *_, record = client.predict(**SONG, inference_steps=2, seed=14, api_name="/generate")
    *_, made = client.predict(take=1, record=record, prompt="dark techno", seed=3, api_name="/morph")
    assert made["params"]["lyrics"] == SONG["lyrics"] and made["params"]["prompt"] == "dark techno"
    take = made["takes"][0]
    assert [line["text"] for line in take["lyric_lines"]] == ["la la la"]
    assert "la la la" in (out / take["lrc"]).read_text()
    *_, relyriced = client.predict(take=1, record=record, lyrics="[Verse]\nlo lo lo", seed=3, api_name="/morph")
    assert relyriced["params"]["prompt"] == SONG["prompt"] and relyriced["params"]["lyrics"] == "[Verse]\nlo lo lo"
    *_, bare = client.predict(take=1, record=record, prompt="dark techno", lyrics="", seed=3, api_name="/morph")
    assert bare["params"]["lyrics"] == "" and "lrc" not in bare["takes"][0]
    song = out / record["takes"][0]["audio"]
    upload = tmp_path / song.name  # the take's own name and sound, not the studio's file
    audio.save(uploads.load(str(song)), upload, "wav")
    cover = {"prompt": "dark techno", "morph": True, "morph_prompt": SONG["prompt"], "inference_steps": 1}
    for path, lyrics in ((song, SONG["lyrics"]), (upload, "[Instrumental]")):
        covered = client.predict(src_audio=handle_file(str(path)), api_name="/cover", **cover)[-1]
        assert covered["params"]["morph_lyrics"] == lyrics, path
