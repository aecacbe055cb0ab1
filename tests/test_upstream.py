"""What the studio asks the model for is what upstream ACE-Step 1.5 asks for.

Checked at the model-call boundary of the served studio (a spy around the sampler's run, and
forward hooks on the DiT) and through the API: the real length and language reach the text
encoder's prompt (Extend's too: the source's own length, as upstream's), instrumentals are
"unknown", shift defaults to 3.0, cover strength splits the steps as upstream does in one loop, and
the sampler's correction and cover's start are API parameters recorded with the take.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import ValidationError

import audio
import backend
import checks
import generation
import handlers
import mastering
import models
import modes
import sampler
from checks import LANGUAGES
from conftest import studio_settings
from test_audio_modes import tone


class SamplerSpy:
    """The sampler's run, every mode's model call, recording each call's arguments (the boundary)."""

    def __init__(self):
        self.run = sampler.run
        self.calls: list[dict] = []
        self.latents: list[torch.Tensor] = []  # what each call gave back, before the VAE

    def __call__(self, pipe, call, generators, on_step=None):
        self.calls.append(call)
        self.latents.append(self.run(pipe, call, generators, on_step))
        return self.latents[-1]


@pytest.fixture(scope="module")
def served(studio_server):
    url, _ = studio_server
    client = Client(url, verbose=False)
    backend.get_backend()  # built before the spy (the served page runs in this process): no take to make
    patch = pytest.MonkeyPatch()
    spy = SamplerSpy()
    patch.setattr(sampler, "run", spy)
    yield client, spy
    patch.undo()


def dit_inputs(pipe):
    """What each DiT call is handed (a forward pre-hook); remove the handle after."""
    seen: list[dict] = []

    def keep(_module, _args, kwargs):
        seen.append({k: v.clone() for k, v in kwargs.items() if torch.is_tensor(v)})

    return seen, pipe.transformer.register_forward_pre_hook(keep, with_kwargs=True)


def test_audio_modes_tell_the_model_the_real_length_and_the_chosen_language(served, tmp_path):
    client, spy = served
    # A short source, under Generate's 10 s: no length of Generate's could stand in for its own.
    src = handle_file(str(tone(tmp_path / "song.wav", seconds=6.5)))
    common = {"src_audio": src, "inference_steps": 2, "lyrics": "[Verse]\nla lune", "vocal_language": "fr"}
    client.predict(prompt="chanson", audio_cover_strength=1.0, api_name="/cover", **common)
    client.predict(prompt="chanson", extend_seconds=5, api_name="/extend", **common)  # the least added
    client.predict(prompt="chanson", repainting_start=2, repainting_end=5, api_name="/edit", **common)
    cover, extend, edit = spy.calls[-3:]
    assert cover.audio_duration == pytest.approx(6.5) and cover.task_type == "cover"
    assert extend.audio_duration == pytest.approx(6.5)  # the source's own length, as upstream's prompt says
    assert edit.audio_duration == pytest.approx(6.5)
    assert all(call.vocal_language == ["fr"] for call in (cover, extend, edit))
    # Nothing sung: upstream's "unknown", whatever language is picked.
    client.predict(
        src_audio=src, prompt="ambient", vocal_language="fr", extend_seconds=5, inference_steps=1, api_name="/extend"
    )
    assert spy.calls[-1].vocal_language == ["unknown"]
    client.predict(prompt="ambient", vocal_language="ja", audio_duration=10, inference_steps=1, api_name="/generate")
    assert spy.calls[-1].vocal_language == ["unknown"]


def _read(path: str) -> np.ndarray:
    return sf.read(path, dtype="int16")[0]


def test_cover_strength_zero_runs_every_step_on_upstreams_text_only_condition(served, tmp_path):
    client, spy = served
    src = handle_file(str(tone(tmp_path / "song.wav", seconds=6)))
    pipe = backend.get_backend().pipe
    seen, handle = dit_inputs(pipe)
    try:
        client.predict(
            src_audio=src, prompt="jazz trio", audio_cover_strength=0.0, inference_steps=4, api_name="/cover"
        )
    finally:
        handle.remove()
    assert spy.calls[-1].task_type == "cover" and spy.calls[-1].audio_cover_strength == 0.0
    channels = pipe.transformer.config.audio_acoustic_hidden_dim
    silence = pipe.condition_encoder.silence_latent[0, : seen[0]["context_latents"].shape[1]]
    assert len(seen) == 4 and all(torch.equal(row[:, :channels], silence) for s in seen for row in s["context_latents"])


def _model_run(spy: SamplerSpy, pipe, seed: int, **asked) -> tuple[Any, torch.Tensor]:
    """The model's run of a Cover request (``asked``) as the served studio runs it, with ``seed``: its job and
    latents."""
    job = modes.prepare_cover(seed=seed, **asked)
    request = backend._as_pipeline_inputs(job.request.render.pipeline, 1)
    torch.manual_seed(seed)
    return job, spy.run(pipe, request, [torch.Generator("cpu").manual_seed(seed)])


def test_cover_strength_one_is_the_models_cover_run(served, tmp_path):
    client, spy = served
    path = tone(tmp_path / "song.wav", seconds=6)
    settings = {"prompt": "string quartet", "seed": 23, "inference_steps": 4}
    covered = client.predict(src_audio=handle_file(str(path)), audio_cover_strength=1.0, api_name="/cover", **settings)
    assert spy.calls[-1].task_type == "cover"
    # The model's run of the same request with the same seeds, then the studio's finish and file writing.
    pipe = backend.get_backend().pipe
    job, latents = _model_run(spy, pipe, src_audio=str(path), audio_cover_strength=1.0, **settings)
    finished, _ = mastering.finish(job.post(sampler.decode(pipe, latents)[0]), job.finishing, job.region)
    plain = audio.save(finished, tmp_path / "plain", "wav")
    np.testing.assert_array_equal(_read(covered[0]), _read(str(plain)))


def test_a_middle_strength_runs_the_cover_steps_then_the_rest_as_text_to_music(served, tmp_path):
    client, spy = served
    path = tone(tmp_path / "song.wav", seconds=6)
    src = handle_file(str(path))
    pipe = backend.get_backend().pipe
    before = len(spy.calls)
    seen, handle = dit_inputs(pipe)
    try:
        half = client.predict(
            src_audio=src, prompt="reggae", audio_cover_strength=0.5, inference_steps=6, seed=5, api_name="/cover"
        )
    finally:
        handle.remove()
    assert len(spy.calls) == before + 1  # one loop, as upstream's: its guidance momentum runs through
    states = [s["encoder_hidden_states"] for s in seen]
    assert len(states) == 6 and not torch.equal(states[3], states[2])
    assert all(torch.equal(states[i], states[0]) for i in range(3)) and all(
        torch.equal(s, states[3]) for s in states[3:]
    )
    assert Path(half[0]).exists()
    # Neither end's run: the model's run of the same request at 0 and at 1 (its latents: the take's finish is
    # not what differs), on the path shown to be the served one by its run at 0.5 giving the take's own latents.
    asked = {"src_audio": str(path), "prompt": "reggae", "inference_steps": 6}
    assert torch.equal(_model_run(spy, pipe, 5, audio_cover_strength=0.5, **asked)[1], spy.latents[before])
    ends = [_model_run(spy, pipe, 5, audio_cover_strength=s, **asked)[1] for s in (0.0, 1.0)]
    assert all(not torch.equal(spy.latents[before], end) for end in ends)


def test_dcw_and_the_covers_start_are_api_parameters_kept_in_the_record(served, tmp_path):
    """DCW as upstream's main decides it (PR #1273, #1282): left out or null, the model's default (off on
    the studio's XL SFT); a value sent always runs; the record says what ran, never null."""
    client, spy = served
    for sent, runs in ((None, False), (True, True), (False, False)):
        record = client.predict(prompt="pop", audio_duration=10, inference_steps=1, dcw=sent, api_name="/generate")[-1]
        assert record["params"]["dcw"] is runs and spy.calls[-1].dcw is runs, sent
    # Nothing sent: upstream's defaults reach the call and the record. The shift test and the guidance
    # interval's left out were each this same request; one take checks all three.
    record = client.predict(prompt="pop", audio_duration=10, inference_steps=1, api_name="/generate")[-1]
    assert record["params"]["dcw"] is False and spy.calls[-1].dcw is False
    assert {v.shift for v in models.VARIANTS.values()} == {3.0}
    assert record["params"]["shift"] == 3.0 and spy.calls[-1].shift == 3.0
    assert "cfg_interval_start" not in record["params"] and spy.calls[-1].cfg_interval_start == 0.0
    src = handle_file(str(tone(tmp_path / "song.wav", seconds=6)))
    cover = client.predict(src_audio=src, prompt="x", cover_noise_strength=0.2, inference_steps=2, api_name="/cover")
    assert cover[-1]["params"]["cover_noise_strength"] == 0.2 and cover[-1]["params"]["dcw"] is False
    assert spy.calls[-1].cover_noise_strength == 0.2 and spy.calls[-1].dcw is False
    cover = client.predict(src_audio=src, prompt="x", inference_steps=2, dcw=True, api_name="/cover")
    assert cover[-1]["params"]["dcw"] is True and spy.calls[-1].dcw is True
    with pytest.raises(ValidationError, match="cover_noise_strength: Start from the song must be between 0 and 1"):
        client.predict(src_audio=src, prompt="x", cover_noise_strength=1.5, api_name="/cover")
    with pytest.raises(ValidationError, match="dcw: DCW .* is a switch"):
        client.predict(src_audio=src, prompt="x", extend_seconds=5, dcw="maybe", api_name="/extend")


def test_the_guidance_interval_is_an_api_parameter_that_reaches_the_model_and_its_record(served):
    """Upstream's ``cfg_interval_start``/``_end`` by its names and defaults: sent, they reach the model
    call and the record; left out, the whole schedule (the record says nothing of it: checked on the request
    that sends nothing, in the DCW test); an interval that ends before it starts is refused on its field with a
    message."""
    client, spy = served
    sent = {"prompt": "pop", "audio_duration": 10, "inference_steps": 2, "cfg_interval_start": 0.4}
    record = client.predict(**sent, api_name="/generate")[-1]
    assert (spy.calls[-1].cfg_interval_start, spy.calls[-1].cfg_interval_end) == (0.4, 1.0)
    assert (record["params"]["cfg_interval_start"], record["params"]["cfg_interval_end"]) == (0.4, 1.0)
    with pytest.raises(ValidationError, match="cfg_interval_end: Guidance until must be between 0.6 and 1"):
        client.predict(**{**sent, "cfg_interval_start": 0.6, "cfg_interval_end": 0.2}, api_name="/generate")


@pytest.mark.parametrize("mode", ["generate", "cover", "extend", "edit"])
def test_the_velocity_clamp_is_a_parameter_of_every_mode_that_reaches_the_model_and_its_record(served, tmp_path, mode):
    """Upstream's ``velocity_norm_threshold`` (ACE-Step PR #978 for ACE-Step #957, off at 0), declared once
    (``parameters.DECLARED``): sent, it reaches the model call and the record; left out, 0 and the record says
    nothing of it; *Use these settings* brings Generate's back; one the studio cannot make is refused with a message."""
    client, spy = served
    by_mode = {"generate": {"audio_duration": 10}, "extend": {"extend_seconds": 5}, "edit": {"repainting_end": 5}}
    needed = by_mode.get(mode, {})
    if mode != "generate":  # a 6 s source, as this file's others: the clamp is the point, not the length
        needed["src_audio"] = handle_file(str(tone(tmp_path / "song.wav", seconds=6)))
    sent = {"prompt": "pop", "inference_steps": 1, **needed}
    record = client.predict(**sent, velocity_norm_threshold=2.5, api_name=f"/{mode}")[-1]
    assert spy.calls[-1].velocity_norm_threshold == 2.5 and record["params"]["velocity_norm_threshold"] == 2.5
    if mode == "generate":
        import records

        values = dict(zip(records.FIELDS, client.predict(record, 1, api_name="/settings_from_generate"), strict=True))
        assert values["velocity_norm_threshold"] == 2.5
    record = client.predict(**sent, api_name=f"/{mode}")[-1]
    assert spy.calls[-1].velocity_norm_threshold == 0.0 and "velocity_norm_threshold" not in record["params"]
    with pytest.raises(ValidationError, match=r"velocity_norm_threshold: Velocity clamp must be between 0 and 5"):
        client.predict(**sent, velocity_norm_threshold=9, api_name=f"/{mode}")


def test_a_declared_choice_without_a_check_of_its_own_takes_one_of_its_choices():
    """A choice declared with no ``rule`` (a new one: its field, its choices and nothing else) is checked by its
    declaration: one of its choices' values, None or an emptied field its default, anything else refused with a
    message that names its label and its choices (no refusal of its own to write)."""
    import parameters

    way = parameters.Param("way", "calm", "str", "Way", choices=(("Calm, as ever", "calm"), "wild"), modes=("cover",))
    assert [way.check(v) for v in ("calm", "wild", None, "")] == ["calm", "wild", "calm", "calm"]
    with pytest.raises(checks.InputError) as refused:
        way.check("loud")
    assert refused.value.message == "Way must be one of calm, wild (you asked for 'loud')."
    assert refused.value.param == "way"


# The sampling every mode shares, declared since the fades and DCW, with the ids, labels and first values their
# hand-made fields had (``None``: the preparer's default, set as the page is built), and the modes that take each.
SAMPLING_PAGE = {
    "seed": ("seed", "Seed", None),
    "inference_steps": ("steps", "Steps", "steps"),
    "guidance_scale": ("guidance", "Guidance", "guidance"),
    "shift": ("shift", "Shift", "shift"),
}
# The strengths and the guidance interval, each placed by its tab among its own fields (group
# "placed"), with the ids and labels their hand-made fields had, and the modes that take each.
PLACED_PAGE = {
    "audio_cover_strength": ("strength", "Cover strength", ("cover",)),
    "cover_noise_strength": ("start", "Start from the song", ("cover",)),
    "repaint_strength": ("repaint-strength", "Repaint strength", ("edit",)),
    "lora_scale": ("lora-scale", "LoRA strength", ("generate", "cover", "extend", "edit")),
    "cfg_interval_start": ("cfg-from", "Guidance from t", ("generate",)),
    "cfg_interval_end": ("cfg-until", "Guidance until t", ("generate",)),
    # Generate's switch in its tempo's row: the request's (``MusicRequest.lock``), not the call's.
    "lock_to_grid": ("lock", "Lock to the grid", ("generate",)),
}
# Their first values as built, each slider's low end as the hand-made ones' were, the switch off (the preparer's
# default is set as the page is built: ``widgets.start_at_defaults``).
FIRST = dict.fromkeys(PLACED_PAGE, 0.0) | {"lock_to_grid": False}
# The song's facts every mode shares and the output format, declared since, each a choice field: the ids, labels,
# first values and choices their hand-made fields had (the format a radio, the others dropdowns taking any text).
CHOICE_PAGE = {
    "audio_format": ("format", "Output format", None, [(f, f) for f in ("wav", "flac", "mp3")]),
    "key_scale": ("key", "Key", "auto", [("auto", "auto"), *((k, k) for k in checks.KEYS)]),
    "time_signature": (
        "meter",
        "Time signature",
        "auto",
        [("auto", "auto"), *zip(("2/4", "3/4", "4/4", "6/8"), "2346", strict=True)],
    ),
    "vocal_language": ("language", "Vocal language", "unknown", None),
}


@pytest.fixture(scope="module")
def every_mode_declared(tiny_pipeline_dir, tiny_base_dir, tmp_path_factory):
    """Each mode's job prepared once, as ``studio_env`` would (a fresh output folder, the tiny models), with every
    declared check it asked (by name, in order), and each tab's declared fields as the page builds them: what the
    declarations test reads for each parameter (the same requests for every one, so made once for the file). The
    settings and the spy are undone before any test reads them."""
    import gradio as gr

    import backend
    import form_fields
    import parameters

    root = tmp_path_factory.mktemp("declared")
    mp = pytest.MonkeyPatch()
    studio_settings(mp, tiny_pipeline_dir, tiny_base_dir, root)
    checked: list[str] = []
    real = parameters.Param.check
    mp.setattr(parameters.Param, "check", lambda p, v, m=None: (checked.append(p.name), real(p, v, m))[1])
    song = str(tone(root / "song.wav", seconds=8))
    asks = {
        "generate": {"prompt": "pop", "audio_duration": 10, "think": False},
        "cover": {"src_audio": song, "prompt": "jazz"},
        "extend": {"src_audio": song, "extend_seconds": 5},
        "edit": {"src_audio": song, "prompt": "calm", "repainting_start": 1, "repainting_end": 3},
    }
    variant = models.active_variant()
    made = {}
    try:
        for mode, asked in asks.items():
            checked.clear()
            job = modes.PREPARE[mode](**asked)
            prefix = "gen" if mode == "generate" else mode
            with gr.Blocks():
                page = form_fields.finish_controls(mode, prefix, variant) | form_fields.declared(mode, prefix, variant)
                page |= form_fields.sampling_controls(mode, prefix, variant)
                page |= form_fields.declared(mode, prefix, variant, "placed")
            made[mode] = (list(checked), job, prefix, page)
    finally:
        # Undone before the tests read it: the module's served studio keeps its own settings and models.
        mp.undo()
        backend.reset_backend()
    return variant, made


@pytest.mark.parametrize("name", ["fade_in", "fade_out", "dcw", *SAMPLING_PAGE, *PLACED_PAGE, *CHOICE_PAGE])
def test_the_fades_and_dcw_are_each_one_declaration_for_every_mode(every_mode_declared, name):
    """The fades (the finish's), DCW, the sampling (the model call's: seed, steps, guidance, and
    Generate's shift), the strengths (Cover's two, Edit's repaint, the LoRA's) and Generate's guidance interval
    are each one declaration (``parameters.DECLARED``): every mode that takes it checks it there, once (counted;
    a mode without the field runs the model's default, or the call's default unchecked), the page's field on each
    tab that takes it is made from it (its id, label and first value as the hand-made field had them), the record
    holds what the call ran, and the agents' range and help are its own. Each mode is prepared and each tab built once for every
    parameter (``every_mode_declared``)."""
    import job_record
    import mcp_schema
    import parameters

    declared = parameters.PARAMS[name]
    assert declared in parameters.DECLARED
    assert (
        declared.modes == PLACED_PAGE.get(name, (None, None, ("generate",) if name == "shift" else parameters.MUSIC))[2]
    )
    variant, made = every_mode_declared
    for mode, (checked, job, prefix, page) in made.items():
        assert checked.count(name) == (mode in declared.modes or bool(declared.model_default)), (mode, checked)
        call = job.request.render.pipeline
        if declared.call and declared.kept and (declared.held is None or declared.held(mode, call)):
            assert job_record.of(job)[name] == getattr(call, declared.call), mode
        if mode not in declared.modes:
            assert name not in page, mode
            continue
        field = page[name]
        page_id, label, variant_field = SAMPLING_PAGE.get(name, (name.replace("_", "-"), None, None))
        page_id, label = PLACED_PAGE[name][:2] if name in PLACED_PAGE else (page_id, label)
        page_id, label = CHOICE_PAGE[name][:2] if name in CHOICE_PAGE else (page_id, label)
        assert field.elem_id == f"{prefix}-{page_id}" and field.info == declared.help
        shown = {
            "fade_in": ("Fade in (s)", 0.0),
            "fade_out": ("Fade out (s)", 0.0),
            "dcw": ("Step correction (DCW)", variant.dcw),
            # A placed slider's first value as built, as its hand-made one's (the page sets the preparer's default).
            **{placed: (entry[1], FIRST[placed]) for placed, entry in PLACED_PAGE.items()},
            **{chosen: entry[1:3] for chosen, entry in CHOICE_PAGE.items()},
        }
        assert (field.label, field.value) == shown.get(name, (label, variant_field and getattr(variant, variant_field)))
        if name in CHOICE_PAGE:
            languages = [("Unknown: the model tells from the lyrics (unknown)", "unknown")]
            languages += [(f"{language} ({code})", code) for code, language in LANGUAGES.items()]
            assert field.choices == (CHOICE_PAGE[name][3] or languages), name
            assert field.allow_custom_value if name != "audio_format" else field.studio_lenient
    assert mcp_schema.PAGE_HELP[name] == (declared.mcp_help or declared.help)
    assert mcp_schema.ranges().get(name) == ((*declared.span, declared.unit) if declared.span else None)


def test_generate_takes_a_timbre_reference(served, tmp_path):
    client, spy = served
    voice = tone(tmp_path / "voice.wav", seconds=6, freq=330)
    settings = {"prompt": "soul", "audio_duration": 10, "inference_steps": 2, "seed": 8, "api_name": "/generate"}
    plain = client.predict(**settings)
    lent = client.predict(reference_audio=handle_file(str(voice)), **settings)
    # Upstream's reading of a reference: three 10 s windows (a 6 s one repeated first).
    assert tuple(spy.calls[-1].reference_audio.shape) == (2, 30 * 48000)
    assert lent[-1]["params"]["reference_audio"] == "voice.wav"
    assert not np.array_equal(_read(plain[0]), _read(lent[0]))
    assert Path(lent[0]).exists()


def test_the_upload_analysis_prefills_what_cover_extend_and_edit_pass_on(served):
    import examples

    client, spy = served
    demo = handle_file(examples.demo_song())
    line, bpm, key, meter = client.predict(demo, api_name="/cover_analyze")
    assert "0:12.0 long" in line and "C major" in line and "LUFS" in line
    assert abs(bpm - 100) <= 2 and key == "C major" and meter == "4"
    client.predict(
        src_audio=demo,
        prompt="bossa",
        bpm=bpm,
        key_scale=key,
        time_signature=meter,
        audio_cover_strength=1.0,
        inference_steps=1,
        api_name="/cover",
    )
    call = spy.calls[-1]
    assert (call.bpm, call.keyscale, call.timesignature) == (bpm, "C major", "4")
    client.predict(src_audio=demo, prompt="more", bpm=bpm * 2, extend_seconds=5, inference_steps=1, api_name="/extend")
    assert spy.calls[-1].bpm == bpm * 2 and spy.calls[-1].keyscale is None


def test_a_partial_cover_of_a_frame_exact_length(studio_env, tmp_path):

    # 16.6 s is 415 latent frames, but 16.6 × 25 rounds up to 416 in floating point.
    src = tone(tmp_path / "song.wav", seconds=16.6)
    paths, record = handlers.make(
        "cover", src_audio=str(src), prompt="lounge", audio_cover_strength=0.5, inference_steps=2, seed=3
    )
    assert sf.info(paths[0]).frames == int(16.6 * 48000) and record["params"]["audio_cover_strength"] == 0.5


def test_an_unexpected_pipeline_failure_gets_words(studio_env, monkeypatch):
    import gradio as gr

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(generation, "run_music", out_of_memory)
    with pytest.raises(gr.Error, match=r"The model stopped with an error \(RuntimeError\). Nothing was saved"):
        handlers.make("generate", prompt="pop", audio_duration=10, inference_steps=1)


def test_lengths_whose_frame_count_rounds_up_work_in_every_mode(studio_env, tmp_path):
    # 16.44 s is 411 latent frames, which diffusers computes back as 412: from 10 s up the first such count
    # (411, 415 and 419 to 16.8 s; 16.6 s's 415 was a second case of the same and is Cover's case above).
    seconds = 16.44
    take, _ = handlers.make("generate", prompt="lounge", audio_duration=seconds, inference_steps=1, seed=1)
    assert sf.info(take[0]).frames == round(seconds * 48000)
    src = tone(tmp_path / "song.wav", seconds=seconds)
    n = int(round(seconds * 48000))
    for mode, extra in (("edit", {"repainting_start": 2, "repainting_end": 5}), ("extend", {"extend_seconds": 5.0})):
        paths, _ = handlers.make(mode, src_audio=str(src), prompt="x", inference_steps=1, **extra)
        assert sf.info(paths[0]).frames == (n if mode == "edit" else n + 5 * 48000)
    assert audio.good_frames(411) == 412 and audio.good_frames(415) == 416 and audio.good_frames(400) == 400
