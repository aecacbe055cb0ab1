"""Edit's parts (a part added, a part taken out, the song completed) on the XL base's DiT
beside the SFT pipeline, and Edit's ways of repainting.

What a musician hears cannot be judged on random weights; these check what reaches the model (the
task, upstream's instruction and track names, the song as context), the shapes, the mix, the shared
VAE and text encoder, and the contract every mode keeps (API, page, refusals on their field).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from gradio_client import Client, handle_file

import backend
import base_model
import checks
import devices
import duration_estimate
import edit_fields
import flow_edit
import handlers
import job_record
import models
import modes
import output_folder
import parameters
import part_tasks
import random_models
import records
import results
import sampler
import variations
from conftest import picture
from music_request import Call
from test_audio_modes import tone
from test_browser import SHOTS, TIMEOUT_MS, _open, _tab, site  # noqa: F401 (fixtures)

# Upstream's instructions, word for word (``acestep/constants.py`` TASK_INSTRUCTIONS, track names in
# capitals, complete's joined by " | " in the order given): what the base model was trained to read.
UPSTREAM = {
    "lego": "Generate the BACKING_VOCALS track based on the audio context:",
    "extract": "Extract the DRUMS track from the audio:",
    "complete": "Complete the input track with DRUMS | GUITAR | BASS:",
}
UPSTREAM_TRACKS = "woodwinds brass fx synth strings percussion keyboard guitar bass drums backing_vocals vocals"


class Boundary:
    """The sampler's run and the flow edit's (every mode's model call) and the text encoder's prompt, recorded."""

    def __init__(self, monkeypatch):
        self.calls: list[dict] = []
        self.instructions: list[str] = []
        for module in (sampler, flow_edit):
            monkeypatch.setattr(module, "run", self.spy(module.run, monkeypatch))

    def spy(self, run, monkeypatch):
        def spy(pipe, call, generators, on_step=None):
            self.calls.append(call)
            encode = pipe.encode_prompt

            def seen(*args, **kwargs):
                self.instructions.append(kwargs["instruction"])
                return encode(*args, **kwargs)

            monkeypatch.setattr(pipe, "encode_prompt", seen)
            try:
                return run(pipe, call, generators, on_step)
            finally:
                monkeypatch.delattr(pipe, "encode_prompt")

        return spy


@pytest.fixture(scope="module")
def served(studio_server):
    url, out = studio_server
    return Client(url, verbose=False), out


def test_each_part_reaches_the_base_model_with_upstreams_instruction(served, tmp_path, monkeypatch):
    client, out = served
    boundary = Boundary(monkeypatch)
    song = handle_file(str(tone(tmp_path / "song.wav", seconds=8.0)))
    fast = {"src_audio": song, "inference_steps": 2, "api_name": "/edit"}
    added = client.predict(change="add", part="backing_vocals", lyrics="[Verse]\noh la la", prompt="airy", **fast)
    taken = client.predict(change="extract", part="drums", **fast)
    completed = client.predict(change="complete", add_parts=["drums", "guitar", "bass"], prompt="rock", **fast)
    assert list(part_tasks.TRACKS) == UPSTREAM_TRACKS.split()
    assert boundary.instructions == [UPSTREAM["lego"], UPSTREAM["extract"], UPSTREAM["complete"]]
    lego, extract, complete = boundary.calls
    assert (lego.task_type, lego.track_name, lego.lyrics) == ("lego", "backing_vocals", ["[Verse]\noh la la"])
    assert (extract.task_type, extract.track_name, extract.prompt) == ("extract", "drums", ["drums"])
    assert complete.complete_track_classes == ["drums", "guitar", "bass"]  # as given, as upstream names them
    base = backend.get_backend().base
    for call in boundary.calls:  # the whole song is the context, its real length in the prompt
        assert call.src_audio.shape[-1] >= 8 * 48000 and call.audio_duration == pytest.approx(8.0)
        assert call.repainting_start is None and call.num_inference_steps == 2
    for result, change in ((added, "add"), (taken, "extract"), (completed, "complete")):
        record = result[-1]
        assert record["mode"] == "edit" and record["params"]["change"] == change
        assert record["model"]["folder"] == "tiny-base" and record["takes"][0]["seconds"] == pytest.approx(8.0)
        assert sf.info(result[0]).duration == pytest.approx(8.0, abs=0.01)
    # Only a part added comes with the part alone beside the song with it.
    alone = out / added[-1]["takes"][0]["part"]
    assert alone.is_file() and sf.info(str(alone)).duration == pytest.approx(8.0, abs=0.01)
    assert "part" not in taken[-1]["takes"][0] and "part" not in completed[-1]["takes"][0]
    assert output_folder.studio_take_audio(added[-1]["takes"][0]["part"]) is None  # not a take of its own
    own = out / added[-1]["takes"][0]["metadata"]  # the take's own record names its part too
    assert json.loads(own.read_text())["part"] == added[-1]["takes"][0]["part"]
    assert base is not None and base.transformer is not backend.get_backend().pipe.transformer


def test_a_part_asked_for_without_steps_runs_the_base_models_defaults(served, tmp_path, monkeypatch):
    """``/edit`` with ``change="add"`` and no steps or guidance named: the XL base's 32 steps and its
    guidance, as README and the page say (Gradio offered the Edit tab's 50, a region's, as the default)."""
    client, _ = served
    boundary = Boundary(monkeypatch)
    base = models.VARIANTS[models.BASE_VARIANT]
    song = handle_file(str(tone(tmp_path / "song.wav", seconds=6.0)))
    record = client.predict(src_audio=song, change="add", part="drums", prompt="brushes", api_name="/edit")[-1]
    assert (record["params"]["inference_steps"], record["params"]["guidance_scale"]) == (base.steps, base.guidance)
    assert boundary.calls[-1].num_inference_steps == base.steps == 32
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for mode in modes.PREPARE:  # the model's default, for every music endpoint: None, as the preparers say
        given = [
            p["parameter_default"]
            for p in named[f"/{mode}"]["parameters"]
            if p["parameter_name"] in handlers.MODEL_DEFAULTS
        ]
        assert given and set(given) == {None}, (mode, given)


def test_the_base_shares_the_vae_and_text_encoder_and_an_equal_encoder(studio_env, tiny_pipeline_dir, tmp_path):
    be = backend.get_backend()
    base = be.base_pipe()
    pipe = be.pipe
    assert base.vae is pipe.vae and base.text_encoder is pipe.text_encoder and base.tokenizer is pipe.tokenizer
    assert base.transformer is not pipe.transformer and base.condition_encoder is not pipe.condition_encoder
    assert base.transformer.config.model_version == "base" and base.audio_tokenizer is None
    # A base whose condition encoder equals SFT's, tensor for tensor, is not held twice.
    same = random_models.save_base(tmp_path / "same-encoder", encoder_like=tiny_pipeline_dir)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACE_STUDIO_BASE_MODEL", str(same))
        again = base_model.load(pipe)
    assert again.condition_encoder is pipe.condition_encoder and base_model.base_parts(again, pipe) == [
        again.transformer
    ]


def test_the_base_moves_with_the_music_model_and_is_not_built_twice(studio_env, tiny_base_dir, monkeypatch):
    be = backend.get_backend()
    alone = devices.weights_gib(be.pipe)
    be.base_pipe()
    # One resident for the card's budget: the SFT pipeline and the base's own parts, counted together.
    assert devices.weights_gib(base_model.Both(be.pipe, be.base)) > alone
    assert {name for name in base_model.Both(be.pipe, be.base).components if name.startswith("base_")} == {
        "base_transformer",
        "base_condition_encoder",
    }
    backend.reset_backend()
    monkeypatch.setenv("ACE_STUDIO_VARIANT", "xl-base")
    monkeypatch.setenv("ACE_STUDIO_MODEL", str(tiny_base_dir))
    be = backend.get_backend()
    assert be.base_pipe() is be.pipe  # a studio run on the base itself makes parts on it


def test_a_part_is_mixed_into_the_song_at_the_level_the_model_made_it(studio_env, tmp_path, monkeypatch):
    """The VAE decode is the boundary: a quiet part comes back as the model's own level, and the take
    is the song plus that part, sample for sample; the part alone is at -1 dBFS peak."""
    path = tone(tmp_path / "song.wav", seconds=7.0, amp=0.3)
    song = sf.read(str(path), dtype="float32")[0].T
    quiet = 0.05 * np.sin(2 * np.pi * 110 * np.arange(song.shape[1]) / 48000)
    levels = []

    def decode(pipe, latents, normalize=True):
        levels.append(normalize)
        return np.stack([np.stack([quiet, quiet])] * latents.shape[0]).astype(np.float32)

    monkeypatch.setattr(sampler, "decode", decode)
    paths, record = handlers.make("edit", src_audio=str(path), change="add", part="bass", inference_steps=1)
    take = sf.read(paths[0], dtype="float32")[0].T
    alone = sf.read(str(output_folder.output_dir() / record["takes"][0]["part"]), dtype="float32")[0].T
    assert levels == [False]
    np.testing.assert_allclose(take, song + quiet, atol=2e-4)  # 16-bit WAV
    assert np.max(np.abs(alone)) == pytest.approx(10 ** (-1 / 20), abs=2e-4)
    np.testing.assert_allclose(
        alone / np.max(np.abs(alone)), np.stack([quiet, quiet]) / np.max(np.abs(quiet)), atol=3e-4
    )


def test_a_part_added_varies_and_is_sent_on_as_every_take(studio_env, tmp_path):
    path = str(tone(tmp_path / "song.wav", seconds=7.0))
    _, record = handlers.make("edit", src_audio=path, change="add", part="guitar", prompt="jangly", inference_steps=2)
    varied = variations.prepare(take=1, record=record, amount=0.5, count=1, src_audio=path)
    assert (
        job_record.of(varied)["change"] == "add"
        and job_record.of(varied)["part"] == "guitar"
        and varied.part is not None
    )
    _, again = handlers.run_job(varied)
    assert (
        again["takes"][0]["variation"]["amount"] == 0.5
        and (output_folder.output_dir() / again["takes"][0]["part"]).is_file()
    )
    sent = results.send_to("edit")(1, again)  # the song with its part, as Edit's song
    assert sf.info(sent[0]).duration == pytest.approx(7.0, abs=0.01) and sent[1] == "jangly"


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"change": "remix"}, "change", "What to change must be one of"),
        ({"change": "add", "part": "kazoo"}, "part", "Which part must be one of the parts the model knows"),
        ({"change": "complete", "add_parts": []}, "add_parts", "Choose at least one part to add"),
        ({"change": "complete", "add_parts": ["drums", "ukulele"]}, "add_parts", "must be chosen from the parts"),
        ({"change": "add", "seconds": 3.0}, "src_audio", "parts are made over a song of at least 6 s"),
        ({"change": "add", "prompt": "x" * (checks.MAX_CAPTION_CHARS + 1)}, "prompt", ""),
        ({"change": "extract", "lora_preset": "some-preset"}, "lora_preset", "an adapter is made for the SFT model"),
        ({"change": "add", "lora_2_scale": 0.5}, "lora_2_scale", "Adapter 2 strength (lora_2_scale: 0.5) is not used"),
        ({"repaint_mode": "gentle", "prompt": "pop"}, "repaint_mode", "Repaint mode must be one of conservative"),
        # Sent with a part, which does not use it: refused all the same, never passed over in silence.
        ({"change": "add", "repaint_mode": "gentle"}, "repaint_mode", "Repaint mode must be one of conservative"),
        # With words: a region's empty words are refused first (``preparing.render``'s order).
        ({"repaint_strength": 1.5, "prompt": "pop"}, "repaint_strength", "Repaint strength"),
    ],
)
def test_bad_parts_are_refused_on_their_field(studio_env, tmp_path, settings, field, words):
    settings = dict(settings)
    song = tone(tmp_path / "song.wav", seconds=settings.pop("seconds", 8.0))
    with pytest.raises(checks.InputError) as refused:
        modes.prepare_edit(src_audio=str(song), **settings)
    assert refused.value.param == field and words in refused.value.message


def test_a_song_completed_with_a_sung_part_keeps_its_words(studio_env, tmp_path):
    """Upstream's page keeps the lyrics for *Complete*: a song completed with vocals is given the words
    to sing (they were dropped, and the model was told "[Instrumental]" while asked for vocals); a
    song completed without a sung part takes none (words sent with it are refused, on the lyrics; "[Instrumental]",
    what it is told, is taken), and the page shows the words' field accordingly."""
    song, words = str(tone(tmp_path / "song.wav", seconds=8.0)), "[verse]\nla la la"
    sung = modes.prepare_edit(src_audio=song, lyrics=words, change="complete", add_parts=["drums", "Vocals"])
    assert sung.request.render.pipeline.lyrics == words and job_record.of(sung)["lyrics"] == words
    with pytest.raises(checks.InputError) as refused:
        modes.prepare_edit(src_audio=song, lyrics=words, change="complete", add_parts=["drums", "bass"])
    assert refused.value.param == "lyrics" and "Complete the song with Drums and Bass adds none" in str(refused.value)
    for told in ("", checks.INSTRUMENTAL_TAG):
        plain = modes.prepare_edit(src_audio=song, lyrics=told, change="complete", add_parts=["drums", "bass"])
        assert plain.request.render.pipeline.lyrics == checks.INSTRUMENTAL_TAG and job_record.of(plain)["lyrics"] == ""
    show = edit_fields.showing(models.VARIANTS["xl-sft"])
    assert show("complete", "vocals", ["drums", "backing_vocals"])[6]["visible"] is True
    assert show("complete", "vocals", ["drums", "bass"])[6]["visible"] is False
    assert show("add", "drums", ["vocals"])[6]["visible"] is False and show("add", "vocals", [])[6]["visible"]


def test_a_part_from_a_turbo_studios_page_is_guided_as_the_base_is(studio_env):
    """The page sets a part's steps and guidance to the base's (32, 7), and a region's back to the
    studio's own model's: a turbo studio's guidance 1 left in place ran the base unguided."""
    show = edit_fields.showing(models.VARIANTS["xl-turbo"])
    base = models.VARIANTS[models.BASE_VARIANT]
    for change in ("add", "extract", "complete"):
        assert [u["value"] for u in show(change, "drums", ["drums"])[9:11]] == [base.steps, base.guidance]
    assert [u["value"] for u in show("region", "drums", [])[9:11]] == [8, 1.0]
    # DCW too: on for the turbo's region, off for a part (the base is no turbo: upstream's PR #1273).
    assert show("region", "drums", [])[11]["value"] is True and show("add", "drums", [])[11]["value"] is False
    assert show("add", "drums", [])[12]["value"] == "Add the part"
    # A part empties the LoRA it hides (it would be refused on a field the visitor cannot see); a
    # region leaves it as the visitor set it.
    after = dict(zip(edit_fields.Shown._fields, show("add", "drums", [])[3:], strict=True))
    assert after["lora"]["value"] is None and after["preset"]["value"] == "" and after["lora_box"]["visible"] is False
    back = dict(zip(edit_fields.Shown._fields, show("region", "drums", [])[3:], strict=True))
    assert "value" not in back["lora"] and "value" not in back["preset"] and back["lora_box"]["visible"] is True


def test_without_base_weights_edit_says_so_and_regions_still_work(studio_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_BASE_MODEL", str(tmp_path / "no-such-base"))
    song = str(tone(tmp_path / "song.wav", seconds=8.0))
    with pytest.raises(checks.InputError) as refused:
        modes.prepare_edit(src_audio=song, change="add", part="drums")
    assert refused.value.param == "change" and "need ACE-Step's XL base model" in refused.value.message
    assert "does not exist" in base_model.note()
    assert modes.prepare_edit(src_audio=song, prompt="calm", repainting_start=1, repainting_end=3).mode == "edit"


def test_repaint_ways_reach_the_sampler_and_the_record(served, tmp_path, monkeypatch):
    client, _ = served
    boundary = Boundary(monkeypatch)
    song = handle_file(str(tone(tmp_path / "song.wav", seconds=8.0)))
    region = {"repainting_start": 2, "repainting_end": 5, "repaint_mode": "conservative"}
    record = client.predict(src_audio=song, prompt="calm", inference_steps=2, api_name="/edit", **region)[-1]
    call = boundary.calls[-1]
    assert (call.task_type, call.repaint_mode, call.repaint_strength) == ("repaint", "conservative", 0.5)
    assert record["params"]["repaint_mode"] == "conservative" and record["params"]["change"] == "region"
    assert sampler.repainting(call.repaint_mode, call.repaint_strength) == sampler.Repaint(1.0, 25)
    assert boundary.instructions == ["Repaint the mask area based on the given conditions:"]


def _seconds(mode: str, **values) -> float:
    """The GPU seconds a request of ``mode`` with ``values`` declares, before the clamp: its request as the
    admission check prepares it (``handlers.prepare_for_admission``), its shape's."""
    return duration_estimate.music_seconds(
        duration_estimate.MusicShape.of(handlers.prepare_for_admission(mode, values).request)
    )


def test_a_part_declares_the_base_models_build_until_it_is_built(studio_env, tmp_path):
    song = str(tone(tmp_path / "song.wav", seconds=10.0))
    asked = {"src_audio": song, "prompt": "calm", "inference_steps": 32, "guidance_scale": 7.0}
    region, part = _seconds("edit", **asked, change="region"), _seconds("edit", **asked, change="add")
    assert part - region == pytest.approx(duration_estimate.PRIOR["base_load"] * duration_estimate.SAFETY["music"])
    backend.get_backend().base_pipe()
    built = _seconds("edit", **asked, change="add")
    assert built == pytest.approx(region - duration_estimate.PRIOR["music_load"] * duration_estimate.SAFETY["music"])


# ---------------------------------------------------------------- Cover's morph (upstream's flow edit)


def test_a_part_is_declared_as_the_base_runs_it_beside_a_turbo_model(studio_env, monkeypatch, tmp_path):
    """A part runs on the XL base, guided (two forwards a step), also where the studio's own model is
    turbo (unguided): its GPU time is declared as the base runs it, not halved as turbo's."""
    song = str(tone(tmp_path / "song.wav", seconds=10.0))
    asked = {"src_audio": song, "prompt": "calm", "inference_steps": 32, "guidance_scale": 7.0}
    beside_sft = _seconds("edit", **asked, change="add")
    monkeypatch.setenv("ACE_STUDIO_VARIANT", "xl-turbo")
    assert _seconds("edit", **asked, change="add") == pytest.approx(beside_sft)
    # The region on turbo, at its own steps and unguided.
    assert _seconds("edit", src_audio=song, prompt="calm", change="region") < beside_sft


def test_morph_moves_the_song_by_the_difference_of_its_two_descriptions(warm_backend, monkeypatch):
    """At the DiT's call a velocity that is each branch's condition (its mean): the song's latents end
    moved by minus the difference of the two, whatever the noise (the sum of the steps is -1), each
    step asking the DiT twice, both on the cover's blueprint of the song."""
    pipe, seen, prepared = warm_backend.pipe, [], []

    def dit(hidden_states, timestep, timestep_r, encoder_hidden_states, context_latents, **_):
        seen.append((encoder_hidden_states.clone(), context_latents.clone()))
        return (torch.zeros_like(hidden_states) + encoder_hidden_states.mean(dim=(1, 2))[:, None, None],)

    prepare = flow_edit.sampler.prepare
    monkeypatch.setattr(flow_edit.sampler, "prepare", lambda *a: prepared.append(prepare(*a)) or prepared[-1])
    monkeypatch.setattr(pipe.transformer, "forward", dit)
    song = torch.from_numpy(np.tile(0.3 * np.sin(np.arange(6 * 48000) / 40.0), (2, 1)).astype(np.float32))
    call = {
        "prompt": ["big band swing"],
        "lyrics": ["[Instrumental]"],
        "vocal_language": ["unknown"],
        "audio_duration": 6.0,
        "task_type": "cover",
        "src_audio": song,
        "num_inference_steps": 4,
        "guidance_scale": 1.0,
        "shift": 3.0,
        "morph": True,
        "morph_prompt": "sine drone",
        "morph_lyrics": "[Instrumental]",
    }
    call = Call(**call)
    final = flow_edit.run(pipe, call, [torch.Generator("cpu").manual_seed(3)])
    assert len(seen) == 8  # two a step: the song as it is, then as it should become
    described, wanted = seen[0][0].mean(dim=(1, 2)), seen[1][0].mean(dim=(1, 2))
    assert not torch.allclose(described, wanted) and all(torch.equal(c, seen[0][1]) for _, c in seen)
    expected = prepared[0].raw - (wanted - described)[:, None, None]
    torch.testing.assert_close(final, expected, atol=1e-5, rtol=1e-5)


def test_morph_through_the_api_is_recorded_and_needs_the_songs_own_style(served, tmp_path, monkeypatch):
    client, _ = served
    boundary = Boundary(monkeypatch)
    song = handle_file(str(tone(tmp_path / "song.wav", seconds=10.0)))  # Generate takes 10 s or more
    settings = {"src_audio": song, "prompt": "jazz trio", "inference_steps": 2, "api_name": "/cover"}
    # A song described as a caption is: over 64 characters (longer than a short field's limit).
    described = "a slow sine drone, warm and wide, a soft pad under it and no drums at all"
    record = client.predict(morph=True, morph_prompt=described, **settings)[-1]
    assert record["params"]["morph"] is True and record["params"]["morph_prompt"] == described
    call = boundary.calls[-1]
    assert call.morph and call.task_type == "cover" and call.morph_lyrics == "[Instrumental]"
    # The record says what ran: no Cover strength, no start from the song, no DCW (the morph uses none).
    unused = {"audio_cover_strength", "cover_noise_strength", "dcw"}
    assert unused.isdisjoint(record["params"]) and unused <= set(client.predict(**settings)[-1]["params"])
    # ... and reads back: Use these settings, and variations of the morph (a morph again, recorded so).
    brought = client.predict(record, 1, api_name="/settings_from_cover")
    # Generate's caption, and DCW at the model's default (the morph's record holds none): off on SFT.
    default = models.active_variant().dcw
    assert brought[0] == "jazz trio" and brought[records.FIELDS.index("dcw")] is default is False
    varied = client.predict(1, record, 0.5, 1, 7, song, api_name="/variations")[-1]
    assert varied["params"]["morph"] is True and unused.isdisjoint(varied["params"]), varied["params"]
    assert boundary.calls[-1].morph and records.settings(varied)["dcw"] is default
    too_long = {"morph_prompt": "x" * (checks.MAX_CAPTION_CHARS + 1)}
    with pytest.raises(checks.InputError, match=f"up to {checks.MAX_CAPTION_CHARS} characters"):
        checks.check_text_lengths(too_long)
    checks.check_text_lengths({"morph_lyrics": "la " * 1000})  # the song's words: as long as lyrics may be
    assert client.predict(**settings)[-1]["params"]["morph"] is False  # off by default, as upstream
    with pytest.raises(checks.InputError) as refused:
        modes.prepare_cover(src_audio=str(tmp_path / "song.wav"), prompt="jazz", morph=True)
    assert refused.value.param == "morph_prompt" and "describe the song as it is now" in refused.value.message
    plain = {"src_audio": str(tmp_path / "song.wav"), "prompt": "jazz", "inference_steps": 50, "guidance_scale": 7.0}
    assert _seconds("cover", **plain, morph=True, morph_prompt=described) > _seconds("cover", **plain)


def test_every_text_the_model_reads_is_counted_in_tokens_at_admission(served, tmp_path):
    """Lyrics of "字" × 4,000 (12,011 tokens of the tiny tokenizer; the model reads 2,048) would run with
    the text encoder cutting them silently, as it cuts a caption past its 256 tokens with its template.
    Each is refused on its own field, with a message, before the GPU queue."""
    from gradio_client.exceptions import ValidationError

    client, _ = served
    backend.get_backend()  # the admission check counts with the built model's tokenizer
    song = handle_file(str(tone(tmp_path / "song.wav", seconds=6.0)))
    cover = {"src_audio": song, "prompt": "jazz trio", "inference_steps": 2, "api_name": "/cover"}
    long_caption = "字" * 100  # 100 characters of the 512 a caption may have; 300 tokens here
    asked = {
        "morph_lyrics": {**cover, "morph": True, "morph_prompt": "a drone", "morph_lyrics": "字" * 4000},
        "morph_prompt": {**cover, "morph": True, "morph_prompt": long_caption},
        "prompt": {**cover, "prompt": long_caption},
    }
    for field, values in asked.items():
        with pytest.raises(ValidationError, match=f"{field}: .* (is|are) [0-9]+ tokens long; the model reads at most"):
            client.predict(**values)
    with pytest.raises(ValidationError, match="prompt: The caption is 300 tokens long"):
        client.predict(prompt=long_caption, audio_duration=10, inference_steps=1, think=False, api_name="/generate")
    assert client.predict(**{**cover, "prompt": "字" * 40})[-1]["params"]["prompt"] == "字" * 40  # 120 tokens fit


# ---------------------------------------------------------------- the page


DESK = {"width": 1280, "height": 1000}


@pytest.fixture
def page(browser, site, request):  # noqa: F811
    yield from _open(browser, site, f"part-tasks/{request.node.name}", True, viewport=DESK)


def _made(page) -> None:
    link = page.locator("#edit-take-1 a.download-link").first
    page.wait_for_function("el => Boolean(el.href) && el.href.includes('/takes/')", arg=link.element_handle())


def _press_and_made(page) -> None:
    """Press Edit's button and wait for its take: new seeds said, its file linked, no part alone beside it."""
    seeds = page.locator("#edit-seeds").inner_text()
    page.locator("#edit-button").click()
    page.wait_for_function(
        "s => { const t = document.querySelector('#edit-seeds').innerText; return t !== s && /Seeds/.test(t); }",
        arg=seeds,
        timeout=TIMEOUT_MS,
    )
    _made(page)
    page.locator("#edit-take-1 a.part-link").wait_for(state="detached")  # a part's own download: an added one's


def test_edit_offers_each_part_with_only_its_own_fields_and_extracts_and_completes_from_the_page(page):
    """One page for the part changes: each shows only its own fields, and adding, taking out and completing are
    each clicked and make a take (only an added part has a download of its own)."""
    _tab(page, "Edit")
    page.locator(".tabitem:visible table tbody tr, .tabitem:visible button.gallery-item").first.click()
    page.locator("#edit-src-info").get_by_text("0:12.0 long").wait_for()
    page.locator("#edit-change").get_by_text("Add a part", exact=True).click()
    page.locator("#edit-part").wait_for(state="visible")
    page.locator("#edit-start").wait_for(state="hidden")
    assert page.locator("#edit-button").inner_text().strip() == "Add the part"
    assert page.locator("#edit-add").is_hidden() and page.locator("#edit-parts-note").is_visible()
    page.locator("#edit-lyrics").wait_for(state="visible")  # vocals, the first part, are sung
    page.locator("#edit-part input").first.fill("Drums")
    page.locator("#edit-part input").first.press("Enter")
    page.locator("#edit-lyrics").wait_for(state="hidden")
    page.locator("#edit-button").click()
    _made(page)
    alone = page.locator("#edit-take-1 a.part-link")
    alone.wait_for()
    status = page.evaluate("href => fetch(href).then(r => r.status)", alone.get_attribute("href"))
    assert status == 200 and alone.inner_text() == "Download the part alone"
    for choice, words in (("Take a part out", "Take the part out"), ("Complete the song", "Complete the song")):
        page.locator("#edit-change").get_by_text(choice, exact=True).click()
        page.wait_for_function(
            "w => document.querySelector('#edit-button').innerText.trim() === w", arg=words, timeout=TIMEOUT_MS
        )
        if choice == "Take a part out":
            page.locator("#edit-prompt").wait_for(state="hidden")
            assert page.locator("#edit-part").is_visible()
        else:
            page.locator("#edit-add").wait_for(state="visible")
            assert page.locator("#edit-part").is_hidden() and page.locator("#edit-prompt").is_visible()
        _press_and_made(page)
    page.locator("#edit-change").get_by_text("A region", exact=True).click()
    page.locator("#edit-start").wait_for(state="visible")
    page.locator("#edit-parts-note").wait_for(state="hidden")
    page.locator("#edit-advanced").get_by_text("Advanced settings").click()
    page.locator("#edit-repaint").wait_for(state="visible")


def test_a_part_hides_what_it_does_not_use(page):
    """A part added or taken out hides the region (its numbers, its highlight on the waveform,
    its examples: a part's own take their place), repainting, tempo, key and metre (auto, as upstream's
    page sets them) and the LoRA (refused with a part); completing the song keeps tempo, key and metre;
    the region brings everything back."""
    _tab(page, "Edit")
    page.locator(".tabitem:visible table tbody tr, .tabitem:visible button.gallery-item").first.click()
    page.locator("#edit-src-info").get_by_text("BPM").wait_for()  # read and measured: nothing comes after
    page.locator("#edit-advanced").get_by_text("Advanced settings").click()
    shown = {  # the musical fields, the LoRA's, the waveform's region, a region's example columns
        "Add a part": (False, False, "0", False),
        "Complete the song": (True, False, "0", False),
        "A region": (True, True, "1", True),
    }
    for choice, (music, lora, select, region) in shown.items():
        page.locator("#edit-change").get_by_text(choice, exact=True).click()
        page.locator("#edit-music").wait_for(state="visible" if music else "hidden")
        page.locator("#edit-lora-box").wait_for(state="visible" if lora else "hidden")
        page.locator(f'#edit-wave [data-ready="1"][data-select="{select}"]').wait_for()
        headers = page.locator(".tabitem:visible thead")
        headers.get_by_text("Region start (s)").wait_for(state="visible" if region else "hidden")
        headers.get_by_text("Which part").wait_for(state="hidden" if region else "visible")
        if choice == "Add a part":
            picture(page, SHOTS / "part-tasks" / "add-a-part.png", full_page=True)
            # A part's example sets the choice and the part (and the style), no region.
            page.locator(".tabitem:visible tbody tr").filter(has_text="Bass").click()
            page.wait_for_function("() => document.querySelector('#edit-part input')?.value === 'Bass'")
            assert page.locator("#edit-prompt textarea").input_value() == "warm round electric bass"


def test_a_run_shows_its_progress_under_the_take_label(page):
    """The run's progress sits below the first take's "Take 1" label and its steps and time
    below the bar (Gradio centred them over both)."""
    _tab(page, "Edit")
    page.locator(".tabitem:visible table tbody tr, .tabitem:visible button.gallery-item").first.click()
    page.locator("#edit-src-info").get_by_text("0:12.0 long").wait_for()
    page.locator("#edit-advanced").get_by_text("Advanced settings").click()
    steps = page.locator("#edit-steps input[type=number]").first
    steps.fill("200")
    steps.press("Tab")
    page.locator("#edit-button").click()
    level = page.locator("#edit-take-1 .progress-level")
    level.get_by_text("Step").wait_for()
    box = {
        name: page.locator(f"#edit-take-1 {selector}").first.bounding_box()
        for name, selector in (("label", ".take-label"), ("level", ".progress-level"), ("text", ".progress-text"))
    }
    picture(page.locator("#edit-take-1"), SHOTS / "part-tasks" / "progress.png")
    page.locator("#edit-stop").click()
    label, level_box, text = box["label"], box["level"], box["text"]
    assert level_box["y"] >= label["y"] + label["height"] - 1, box  # below the label
    assert text["y"] >= level_box["y"] + level_box["height"] - 1, box  # the steps and time below the bar
    page.locator("#edit-seeds").get_by_text("Stopped").wait_for()


def test_cover_offers_the_morph_with_the_songs_own_style(page):
    _tab(page, "Cover")
    page.locator("#cover-advanced").get_by_text("Advanced settings").click()
    page.locator("#cover-morph-prompt").wait_for(state="hidden")
    unused = {
        "#cover-strength input[type=range]": "keeps the song's structure itself",
        "#cover-start input[type=range]": "starts from the song itself",
        "#cover-dcw input[type=checkbox]": "runs without the step correction",
    }
    assert not any(page.locator(field).is_disabled() for field in unused)
    page.locator("#cover-morph").get_by_text("Morph the song (flow edit)").click()
    page.locator("#cover-morph-prompt").wait_for(state="visible")
    page.locator("#cover-morph-lyrics").wait_for(state="visible")
    # What the morph does not use is locked, and says why, while it is on.
    for field, why in unused.items():
        page.wait_for_function("s => document.querySelector(s).disabled", arg=field)
        page.locator(f"#{field.split()[0][1:]}").get_by_text(why).wait_for()
    picture(page, SHOTS / "part-tasks" / "morph-on.png", full_page=True)
    page.locator("#cover-morph").get_by_text("Morph the song (flow edit)").click()
    for field in unused:
        page.wait_for_function("s => !document.querySelector(s).disabled", arg=field)


@pytest.fixture
def broken_base(site, tmp_path, monkeypatch):  # noqa: F811
    """The module's studio (served in this process) with ``ACE_STUDIO_BASE_MODEL`` naming a folder that
    looks like a base (its two configs) but holds no weights: read at each request (``base_model.source``),
    nothing about it known yet in this process (as in one just started), and forgotten afterwards."""
    broken = tmp_path / "not-a-base"
    for name in base_model.BASE_PARTS:
        (broken / name).mkdir(parents=True)
        (broken / name / "config.json").write_text("{}")
    monkeypatch.setenv(base_model.ENV, str(broken))
    monkeypatch.setitem(base_model._failed, "why", None)
    backend.reset_backend()  # a pipeline built beside the tiny base would make its parts
    yield site
    backend.reset_backend()


def test_a_base_that_cannot_be_built_is_named_under_what_to_change(browser, broken_base):  # noqa: F811
    """A base folder that looks like one (its two configs) but holds no weights: the note under *What to
    change* says how parts are made until a request fails to build it, then why (docs/features.md), and
    the request's error says the same."""
    for page in _open(browser, broken_base, "part-tasks/base-cannot-be-built", True, viewport=DESK):
        _tab(page, "Edit")
        page.locator(".tabitem:visible table tbody tr, .tabitem:visible button.gallery-item").first.click()
        page.locator("#edit-src-info").get_by_text("0:12.0 long").wait_for()
        note = page.locator("#edit-parts-note")
        assert note.is_hidden()  # nothing known against the base yet
        page.locator("#edit-change").get_by_text("Add a part", exact=True).click()
        note.get_by_text("Parts are made by ACE-Step's XL base model").wait_for()
        page.locator("#edit-button").click()
        toast = page.locator("[data-testid=toast-body].error")
        toast.get_by_text("could not be read as a model").wait_for()
        note.get_by_text("which this studio does not have: it could not be read as a model").wait_for()
        assert "Parts are made by" not in note.inner_text()
        # The result column as it was: no empty "Take 1 0:00 / 0:00" under "Error".
        page.locator("#edit-take-1").wait_for(state="hidden")
        assert page.locator("#edit-seeds").get_by_text("Nothing here yet").is_visible()
        assert not page.locator(".tabitem:visible").get_by_text("Error", exact=True).is_visible()
        picture(page, SHOTS / "part-tasks" / "after-an-error.png")
        # The next click closes the error's toast at once, not left over the next take.
        page.locator("#edit-change").get_by_text("A region", exact=True).click()
        page.locator("#edit-button").click()
        toast.first.wait_for(state="detached", timeout=3000)
        _made(page)
        assert toast.count() == 0
        # The duration estimate's line of a studio that is not on ZeroGPU: nothing declared, no H100, no "(CPU (".
        page.locator("#edit-details").get_by_text("Details").click()
        # Once written (the accordion mounts the line as it opens), and nothing else: a CI run read
        # "0.0s\n\nPace…", the hidden timer of the line's request under way as it opened (theme.CSS).
        page.locator("#edit-estimate").get_by_text("Pace on this machine").wait_for()
        shown = page.locator("#edit-estimate").inner_text()
        assert shown.startswith("Pace on this machine") and not any(w in shown for w in ("declare", "H100", "(CPU ("))


def test_edits_fields_of_a_models_default_are_the_declarations(studio_env):
    """The Edit fields a choice sets to the default of the model that makes the change are the declared
    parameters with a model default (``parameters.Param.model_default``: steps, guidance, DCW), by the
    preparer's names, so one declared with a model default is set so without a hand-written line: a region's
    the studio's model's, a part's the base's."""
    import parameters

    own = [p for p in parameters.declared("edit") if p.model_default]
    assert list(edit_fields.MODEL_DEFAULT_FIELDS) == [p.name for p in own] and set(
        edit_fields.MODEL_DEFAULT_FIELDS
    ) <= set(edit_fields.Shown._fields)
    turbo = models.VARIANTS["xl-turbo"]
    show = edit_fields.showing(turbo)
    for change, makes in (("region", turbo), ("add", models.VARIANTS[models.BASE_VARIANT])):
        said = dict(zip(edit_fields.Shown._fields, show(change, "drums", [])[3:], strict=True))
        assert {p.name: said[p.name]["value"] for p in own} == {p.name: getattr(makes, p.model_default) for p in own}


def test_a_songs_reading_fills_tempo_key_and_metre_only_where_the_change_uses_them(studio_env):
    """A demo row sets the song and *Add a part* at once, and the song's reading lands after the part's page set
    the tempo back to auto: it filled the BPM the part then refused ("BPM (bpm: 100) is not used by Add a part").
    The reading fills tempo, key and metre for a region and a completed song, and leaves them for a part."""
    import examples
    import form_fields

    song = str(examples.demo_song())
    for change in part_tasks.CHANGES:
        *_, (line, bpm, key, metre, wave) = form_fields.read_edit_song(song, change=change)
        uses = [change in parameters.USED_BY["edit"][name] for name in ("bpm", "key_scale", "time_signature")]
        assert [value != form_fields.UNCHANGED for value in (bpm, key, metre)] == uses, (change, bpm, key, metre)
        assert "0:12.0 long" in line and wave != form_fields.UNCHANGED
