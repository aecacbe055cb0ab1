"""Tests of ``music_request``, ``gpu`` and admission in ``budget`` and ``handlers``: what crosses to the GPU
is a frozen, picklable ``music_request.MusicRequest`` that nothing rewrites in place, every GPU call takes
one path (``gpu.call``: wait, stop check, first progress line, call, retry) with errors that survive a
worker, and the cost estimate made at admission is what the run reads."""

from __future__ import annotations

import ast
import dataclasses
import pickle

import gradio as gr
import pytest

import budget
import generation
import gpu
import job_record
import modes
import records
import runs
from conftest import ROOT
from music_request import Call, MusicRequest, Render
from test_audio_modes import tone


def _jobs(song: str) -> dict[str, modes.Job]:
    common = {"prompt": "dusty soul", "lyrics": "[Verse]\nhold on", "inference_steps": 2, "seed": 3}
    return {
        "generate": modes.prepare_generate(**common, audio_duration=10, think=True, auto_length=True),
        "cover": modes.prepare_cover(src_audio=song, **common),
        "extend": modes.prepare_extend(src_audio=song, extend_seconds=10, **common),
        "edit": modes.prepare_edit(src_audio=song, repainting_start=1, repainting_end=3, **common),
    }


@pytest.fixture
def song(tmp_path) -> str:
    return str(tone(tmp_path / "song.wav", seconds=6.0))


def test_every_mode_sends_a_frozen_request_that_pickles_whole(studio_env, with_planner, song):
    for mode, job in _jobs(song).items():
        request = job.request
        assert isinstance(request, MusicRequest) and request.mode == mode
        back = pickle.loads(pickle.dumps(request))
        assert back.notes == request.notes and back.render.seeds == request.render.seeds
        assert back.plan == request.plan and vars(back.render.pipeline).keys() == vars(request.render.pipeline).keys()
        with pytest.raises(dataclasses.FrozenInstanceError):
            request.notes = None  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            request.render.seeds = (1,)  # type: ignore[misc]
    assert _jobs(song)["generate"].request.plan.seconds is None  # Think chooses: the plan says so


def test_running_a_request_rewrites_nothing_of_it(studio_env, with_planner):
    """The planner's choices come back as a ``Plan`` the render takes; the request run is as sent."""
    job = budget.admit(
        modes.prepare_generate(prompt="dusty soul", inference_steps=2, seed=4, think=True, auto_length=True), 300
    )
    sent = pickle.dumps(job.request)
    made = generation.run_music(job.request)
    assert pickle.dumps(job.request) == sent
    assert made.planners[0]["fields"]["duration"] > 0 and job.request.render.pipeline.audio_codes is None
    assert made.audio.shape[-1] <= int(job_record.of(job)["longest"] * 48000) + 1


def test_a_run_costing_more_than_its_admission_estimate_is_admitted_again(studio_env, monkeypatch):
    """The admission check estimates a request's cost once, on its files' headers; the run takes that
    estimate (``Admission``), asking ``budget`` nothing. A song whose header understated its length decodes
    longer in the run (``audio.decode`` grows its buffer): that run is admitted again and refused with a
    message, not made past the budget the admission check checked."""
    from types import SimpleNamespace

    import handlers

    join = SimpleNamespace(request=SimpleNamespace(state=SimpleNamespace()))
    asked = {"prompt": "x", "audio_duration": 10, "inference_steps": 1, "think": False}
    short = modes.prepare_generate(**asked)
    admitted = budget.admit(short, request=join)  # the admission check: within the budget, the same request
    assert admitted.request is short.request and admitted.admission == getattr(join.request.state, budget.ADMISSION)
    assert (
        admitted.admission.disk_bytes == budget.bytes_written(admitted.admission.shape)
        and admitted.admission.longest is None
    )
    with monkeypatch.context() as asks:  # the run as admission saw it: taken as it is, the budget not asked
        asks.setattr(budget, "as_admitted", None)
        asks.setattr(budget, "admit", None)
        run = handlers.as_admitted(modes.prepare_generate(**asked), join)
    assert run.admission is admitted.admission
    long = modes.prepare_generate(prompt="x", audio_duration=600, batch_size=4, inference_steps=50, think=False)
    with pytest.raises(Exception, match="more than one request may make here"):
        handlers.as_admitted(long, join)  # the run's full preparation costs more than admission's did


def test_admission_bounds_a_new_request_and_says_what_fits(studio_env, with_planner):
    job = modes.prepare_generate(prompt="x", audio_duration=600, batch_size=2, inference_steps=50, think=False)
    with pytest.raises(Exception, match="more than one request may make here"):
        budget.admit(job, 60)
    assert budget.admit(job, 10_000).request is job.request  # within the limit given, the very same request
    auto = modes.prepare_generate(prompt="x", batch_size=4, inference_steps=1, think=True, auto_length=True)
    bounded = budget.admit(auto, 700)
    assert bounded is not auto and job_record.of(bounded)["longest"] < job_record.of(auto)["longest"] == 600
    assert bounded.request.plan.longest == job_record.of(bounded)["longest"] and auto.request.plan.longest == 600


def test_a_render_from_one_flat_mapping_keeps_seeds_lora_and_noise_apart():
    sampling = {"num_inference_steps": 8, "guidance_scale": 1.0, "shift": 3.0}
    render = Render.flat({"prompt": "x", **sampling, "seeds": [1, 2], "noise": [[[5, 0.5]], []]})
    assert render.pipeline == Call(prompt="x", **sampling) and render.seeds == (1, 2) and render.takes == 2
    assert render.noise == (((5, 0.5),), ()) and render.with_pipeline(prompt="y").pipeline.prompt == "y"
    assert render.pipeline.prompt == "x"


def test_a_model_call_names_each_argument_once_and_refuses_any_other():
    """The call is typed: an argument nobody reads, or a call without its sampling settings (the
    sampler once fell back to 8 steps of its own), is refused where it is made, not run."""
    sampling = {"num_inference_steps": 50, "guidance_scale": 7.0, "shift": 3.0}
    with pytest.raises(TypeError):
        Call(prompt="x", **sampling, num_steps=8)
    with pytest.raises(TypeError):
        Call(prompt="x")  # no sampling settings: no reader may guess them
    with pytest.raises(TypeError):
        Render({"prompt": "x", **sampling}, (1,))  # a dict is no call
    with pytest.raises(TypeError):
        Render(Call(prompt="x", **sampling), (1,)).with_pipeline(track="vocals")
    call = Call(prompt="x", **sampling)
    assert (call.task_type, call.audio_cover_strength, call.repaint_mode, call.morph) == (
        "text2music",
        1.0,
        "balanced",
        False,
    )


def test_the_gpu_call_waits_checks_the_stop_says_the_first_progress_line_then_calls(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_CANCEL_DIR", str(tmp_path))
    seen, lines = [], []

    def entry(x, progress, run_id, multiplier):
        seen.append((x, run_id, multiplier))
        return {"timings": {}, "x": x}

    def progress(value, desc=None, **_):
        lines.append(desc)

    run_id = runs.start_run("me:generate")
    try:
        made = gpu.call(entry, 7, needs=("music",), progress=progress, run_id=run_id, starting=lambda: "Go")
        assert made == {"timings": {}, "x": 7} and seen == [(7, run_id, 1.0)] and lines == ["Go"]
        # What the caller waited already (Think's planner) counts in the take's record.
        waited = gpu.call(entry, 7, needs=("music",), run_id=run_id, waited=0.75)
        assert waited["timings"] == {"model_wait_s": 0.75}
        runs.request_stop("me:generate")
        with pytest.raises(gr.Error, match="Wait, no") as stop:
            gpu.call(entry, 8, needs=("music",), progress=progress, run_id=run_id, stop_message="Wait, no")
        assert stop.value.title == runs.STOPPED and len(seen) == 2  # stopped before the call
    finally:
        runs.finish_run(run_id)


def test_the_gpu_call_learns_a_typed_results_measured_figures_and_adds_the_wait_to_its_timings(monkeypatch):
    """A music call returns a ``run_result.Rendered`` (not a dict): ``gpu.call`` keeps its measurement for the
    duration estimate (``duration_estimate.learn``, once) and hands the result on without it, the wait before
    the call in its timings."""
    import pickle

    import duration_estimate
    import run_result

    learned = []
    monkeypatch.setattr(duration_estimate, "learn", lambda report: learned.append(report) or 0)
    made = run_result.Rendered(audio=None, latents=None, model={}, timings={"pipeline_s": 1.0}, measured="a report")

    def entry(progress, run_id, multiplier):
        return pickle.loads(pickle.dumps(made))  # as a ZeroGPU worker sends it back

    back = gpu.call(entry, needs=(), waited=0.75)
    assert learned == ["a report"] and back.measured is None
    assert back.timings == {"pipeline_s": 1.0, "model_wait_s": 0.75} and made.timings == {"pipeline_s": 1.0}
    assert gpu.call(entry, needs=()).timings == {"pipeline_s": 1.0}  # no wait: none said


def test_errors_leave_a_worker_as_messages_that_pickle():
    def failed(exc):
        return gr.Error(f"broke ({type(exc).__name__})", title="Generation failed")

    known = ((KeyError, lambda exc: gr.Error("a known one")),)
    cases = [
        (runs.Cancelled("Stopped at step 2."), "Stopped at step 2. Nothing was saved."),
        (KeyError("x"), "a known one"),
        (ZeroDivisionError(), "broke (ZeroDivisionError)"),
    ]
    for raised, message in cases:
        with pytest.raises(gr.Error) as caught, gpu.worker_errors(failed, known):
            raise raised
        back = pickle.loads(pickle.dumps(caught.value))
        assert back.message == message
    with pytest.raises(gr.Error, match="Stems stopped") as caught, gpu.worker_errors(failed, (), "Stems stopped"):
        raise runs.Cancelled("x")
    assert caught.value.title == runs.STOPPED


def test_each_feature_keeps_its_gpu_entry_and_only_app_starts_the_studio():
    """Five ``@gpu.entry`` functions, each in the module of the work it runs; ``startup`` (the Space's
    Hub-cache mirror and the models' warm-up) imported by ``app`` alone."""
    entries, importers = set(), set()
    for path in sorted(ROOT.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                for d in node.decorator_list:
                    if isinstance(d, ast.Call) and ast.unparse(d.func) == "gpu.entry":
                        entries.add(f"{path.stem}.{node.name}")
            if isinstance(node, ast.Import) and any(a.name == "startup" for a in node.names):
                importers.add(path.stem)
    assert entries == {
        "generation.music_gpu",
        "stems.stems_gpu",
        "describe.describe_gpu",
        "songwriter.songwriter_gpu",
        "lyrics.lyrics_gpu",
    }
    assert importers == {"app"}


def test_a_take_number_is_a_whole_number_in_range_and_never_a_switch():

    record = {"takes": [{"seed": 1, "audio": "a.wav"}, {"seed": 2, "audio": "b.wav"}]}
    assert records.take_entry(record, 2, "none") == ({"seed": 2, "audio": "b.wav"}, 1)
    assert records.take_index("", 2) == 0 and records.take_index(2.0, 2) == 1
    for wrong in (True, 3, 0, 1.5, "x"):
        with pytest.raises(gr.Error, match="whole number from 1 to 2"):
            records.take_index(wrong, 2)
    with pytest.raises(gr.Error, match="no take yet"):
        records.take_entry({"takes": []}, 1, "There is no take yet.")


def test_on_zerogpu_a_planner_that_cannot_load_leaves_the_song_at_its_admitted_length(
    studio_env, with_planner, monkeypatch
):
    """Think choosing the length, the planner not buildable: the length is bounded first, then the
    song goes without the plan at that length (admitting it again after the plan is dropped would refuse it)."""
    import handlers

    sent = []

    class Sent(Exception):
        pass

    def no_planner(kind, progress=None, run_id=None):
        if kind == "planner":
            raise gr.Error("The planner could not be loaded: gone", title="Model not available")
        return 0.0

    def call(entry, request, **options):
        sent.append(request)
        raise Sent

    monkeypatch.setattr(gpu, "on_zero_gpu", lambda: True)
    monkeypatch.setattr(gpu, "wait_for_models", no_planner)
    monkeypatch.setattr(gpu, "call", call)
    asked = {"prompt": "x", "batch_size": 4, "inference_steps": 8, "think": True, "auto_length": True}
    with pytest.raises(Sent):
        handlers.make("generate", **asked)  # admitted (as by the admission check), then run
    (request,) = sent
    assert request.plan is None and "the planner could not be loaded" in request.plan_skipped
    assert request.plan_skipped and request.seconds < 600
    assert request.render.pipeline.audio_duration <= request.seconds + 0.1


RECORDS = ROOT / "tests" / "records"


def test_records_written_before_the_typed_call_read_back_and_remake_their_takes(studio_env, tmp_path):
    """Records the studio wrote before the model call was typed (main at 401856c, on the tiny models:
    a Generate of two takes, a Cover of its first) read back as they did: *Use these settings*, a
    variation of each take, and a remade take records the same settings and runs the same call."""
    import json

    import variations

    made = json.loads((RECORDS / "generate-401856c.json").read_text())
    values = records.settings(made, 2)
    assert (values["prompt"], values["inference_steps"], values["guidance_scale"]) == ("old dusty soul", 3, 5.0)
    assert (values["seed"], values["audio_format"], values["loudness"], values["fade_in"]) == (78, "flac", "-16", 0.5)
    again = variations.prepare(2, made, 0.0, 1)
    assert {**job_record.of(again), "seed": 77, "batch_size": 2} == {
        **made["params"],
        "variation": job_record.of(again)["variation"],
    }
    call = again.request.render.pipeline
    assert (call.num_inference_steps, call.guidance_scale, call.shift, call.prompt) == (3, 5.0, 3.0, "old dusty soul")
    covered = json.loads((RECORDS / "cover-401856c.json").read_text())
    song = tone(tmp_path / covered["params"]["src_audio"], seconds=10.0)
    remade = variations.prepare(1, covered, 0.0, 1, src_audio=str(song))
    kept = {k: v for k, v in covered["params"].items() if k not in ("source_latents",)}
    assert {k: job_record.of(remade)[k] for k in kept} == kept
    call = remade.request.render.pipeline
    assert (call.task_type, call.audio_cover_strength, call.num_inference_steps, call.guidance_scale) == (
        "cover",
        0.4,
        2,
        7.0,
    )


def test_the_preparers_shared_settings_go_by_name():
    """``preparing.common`` and Edit's ``part_tasks.prepare`` take the settings as one ``parameters.Asked``, read by
    name: no caller hands them seventeen values in an order (a part once passed ``None, 1.0, None, None``)."""
    import inspect

    import parameters
    import part_tasks
    import preparing

    assert list(inspect.signature(preparing.common).parameters) == ["asked", "need_text", "variant"]
    assert list(inspect.signature(part_tasks.prepare).parameters) == ["task", "asked"]
    asked = parameters.Asked("extend", {"prompt": "dub", "seed": 7})
    shared = {name: getattr(asked, name) for name in (*parameters.SONG, *parameters.SAMPLING)}
    assert shared["prompt"] == "dub" and shared["seed"] == 7 and shared["lora_scale"] == 1.0
    for mode in ("cover", "extend", "edit"):
        assert set(parameters.SONG) | set(parameters.SAMPLING) <= set(parameters.names(mode))


def test_each_mode_records_what_it_recorded_before_the_record_was_read_off_the_call(studio_env, with_planner, tmp_path):
    """The record's settings are read off the typed request once (``job_record.of``, from the finished job), no preparer
    writing them a second time: for every mode and kind of call, what a record says is what main at
    3e361fe wrote, each preparer stating each setting twice (``tests/records/params-3e361fe.json``)."""
    import json

    import variations

    song = str(tone(tmp_path / "song.wav", seconds=10.0))
    common = {"prompt": "dusty soul", "lyrics": "[Verse]\nhold on", "inference_steps": 2, "seed": 3}
    bare = {name: value for name, value in common.items() if name not in ("prompt", "lyrics")}
    made = json.loads((RECORDS / "generate-401856c.json").read_text())
    region = {"repainting_start": 1, "repainting_end": 3.5, "repaint_mode": "aggressive", "repaint_strength": 0.3}
    generate = {**common, "audio_duration": 10, "batch_size": 2, "audio_format": "flac", "loudness": -16}
    cases = {
        "generate": lambda: modes.prepare_generate(
            **generate, fade_in=0.5, think=False, bpm=90, key_scale="C major"
        ),  # (a LoRA strength without a LoRA is refused: tests/test_adapters.py)
        "generate-instrumental": lambda: modes.prepare_generate(
            prompt="x", audio_duration=12, think=False, dcw=True, seed=5
        ),
        "generate-think": lambda: modes.prepare_generate(**common, think=True, auto_length=True),
        "generate-think-long": lambda: modes.prepare_generate(
            **common, audio_duration=20, think=True, rewrite_caption=False
        ),
        "cover": lambda: modes.prepare_cover(
            src_audio=song, **common, audio_cover_strength=0.4, cover_noise_strength=0.2, reference_audio=song
        ),
        "cover-morph": lambda: modes.prepare_cover(src_audio=song, **common, morph=True, morph_prompt="old song"),
        "extend": lambda: modes.prepare_extend(src_audio=song, **common, extend_seconds=7.3, fade_out=1),
        "edit": lambda: modes.prepare_edit(src_audio=song, **common, **region),
        "edit-add": lambda: modes.prepare_edit(src_audio=song, **common, change="add", part="vocals"),
        # A part taken out is told only its name, and a song completed with nothing sung no lyrics (upstream's
        # page): sent, they are refused (tests/test_unused_arguments.py).
        "edit-extract": lambda: modes.prepare_edit(src_audio=song, **bare, change="extract", part="drums"),
        "edit-complete": lambda: modes.prepare_edit(
            src_audio=song, **bare, prompt=common["prompt"], change="complete", add_parts=["bass", "fx"]
        ),
        "variation": lambda: variations.prepare(2, made, 0.3, 2, seed=11),
    }
    said = {name: json.loads(json.dumps(job_record.of(make()))) for name, make in cases.items()}
    assert said == json.loads((RECORDS / "params-3e361fe.json").read_text())


def test_a_song_made_without_its_plan_records_think_as_it_was_asked(studio_env, with_planner):
    """Where the run makes the song without Think's plan (a planner that cannot be built, Think making way on
    ZeroGPU: ``MusicRequest.without_plan``), its record says what was asked, as when it was prepared: Rewrite
    caption off stays off for *Use these settings*, the length left to Think, the longest it could choose."""
    job = modes.prepare_generate(prompt="x", think=True, auto_length=True, rewrite_caption=False, seed=3)
    skipped = dataclasses.replace(job, request=job.request.without_plan("the planner could not be loaded"))
    assert skipped.request.plan is None and skipped.request.notes.plan_asked == job.request.plan
    asked, made = job_record.of(job), job_record.of(skipped)
    assert made == asked and (made["rewrite_caption"], made["audio_duration"], made["think"]) == (False, -1, True)
    assert made["longest"] == job.request.plan.longest
    again = skipped.request.without_plan("and again")  # what was asked stays the first ask
    assert again.notes.plan_asked == job.request.plan


def test_a_record_is_read_off_the_request_so_a_setting_is_stated_once(studio_env, with_planner, song):
    """Every mode's record says what its call runs (``job_record.of``, read once off the job): a setting changed
    in the call is changed in the record."""

    for mode, job in _jobs(song).items():
        request, call = job.request, job.request.render.pipeline
        said = job_record.of(job)
        assert (said["inference_steps"], said["guidance_scale"], said["seed"]) == (
            call.num_inference_steps,
            call.guidance_scale,
            request.render.seeds[0],
        ), mode
        changed = dataclasses.replace(request, render=request.render.with_pipeline(guidance_scale=3.5, shift=2.0))
        again = job_record.of(dataclasses.replace(job, request=changed))
        assert (again["guidance_scale"], again["shift"]) == (3.5, 2.0), mode


def test_a_record_carries_each_takes_bars_and_sections_and_its_loop_through(studio_env):
    """The map of a take's bars and sections, and a loop's, ride in a record as written (optional fields
    the typed record passes through): read back, varied and brought back to Generate as before."""
    import json

    import variations

    made = json.loads((RECORDS / "generate-401856c.json").read_text())
    bars, sections = [0.0, 2.0, 4.0], [{"name": "Verse", "start": 0.0, "end": 6.0}]
    made["takes"][1] |= {"bars": bars, "sections": sections}
    made["loop"] = {"bars": 4, "beats_per_bar": 4, "bpm": 120, "samples": 384000}
    take = records.take_of(records.check(made), 2)
    assert (take.number, take.seed, take.bars, take.sections) == (2, 78, bars, sections)
    assert records.take_of(made, 1).bars is None and records.loop_of(made) == made["loop"]
    own = {**made, **made["takes"][1], "take": 2}  # a take's own .json: the take it holds
    assert records.take_of(own, 1).bars == bars and records.settings(own)["seed"] == 78
    assert job_record.of(variations.prepare(2, made, 0.0, 1))["variation"]["of"]["seed"] == 78


def test_a_record_reads_back_as_its_types_an_old_one_as_written():
    """``Record``, ``Take`` and ``Told`` are typed: a value of another type, or one the form would refuse,
    reads as none (a hostile record still reads, a reader never meets a string where a number is meant),
    while a record written before the types reads as written, its takes, timings and model included."""
    import json

    import records

    hostile = {
        "mode": 5,
        "params": {
            "bpm": "fast",
            "key_scale": ["C"],
            "time_signature": 4,
            "inference_steps": "8",
            "seed_redrawn": True,
        },
        "takes": [None, {"seed": "9", "audio": 3, "bars": [0, "x"], "seconds": float("inf"), "latents": []}],
        "timings": {"pipeline_s": 1.5, "write_s": "slow"},
        "model": ["x"],
    }
    said = records.Record.of(hostile)
    assert (said.mode, said.bpm, said.key_scale, said.time_signature, said.steps, said.seed_redrawn) == (
        *(None, None, None, "4"),
        *(None, None),
    )
    first, second = said.takes
    assert first.entry == {} and (second.seed, second.audio, second.bars, second.seconds, second.latents) == (None,) * 5
    assert said.timings == {"pipeline_s": 1.5} and said.model == {} and said.this_take is None
    told = said.told({"planner": {"fields": {"bpm": 500, "keyscale": "C major", "timesignature": "3"}}})
    assert (told.bpm, told.key_scale, told.time_signature) == (None, "C major", "4")  # the record's metre first
    made = json.loads((RECORDS / "generate-401856c.json").read_text())
    old = records.Record.of(made)
    asked = ("bpm", "key_scale", "time_signature", "inference_steps")
    assert (old.bpm, old.key_scale, old.time_signature, old.steps) == tuple(made["params"][k] for k in asked)
    assert [(t.number, t.seed, t.audio, t.seconds) for t in old.takes] == [
        (t["take"], t["seed"], t["audio"], t["seconds"]) for t in made["takes"]
    ]
    assert (old.timings, old.model, old.mode, old.created) == (
        made["timings"],
        made["model"],
        "generate",
        made["created"],
    )
