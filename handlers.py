"""The event functions of the music endpoints (``/generate``, ``/cover``, ``/extend``, ``/edit``,
``/variations``, ``/morph``), of *Split into stems* and of *Describe*, and the admission check each music
request passes before it joins the GPU queue (Stop's event function is in ``runs``).

A music request goes through these steps. The admission check (``admission_check``, run by
``admission.validator`` inside the HTTP join) prepares it with ``modes.prepare_<mode>`` (files read by
their headers only: ``prepare_for_admission``) and makes its cost estimate once (``budget.admit``: its
length, GPU seconds and disk bytes). The run (``run_job``) prepares it in full, takes the estimate made at
admission (``as_admitted``), looks again only at Think's plan (``generation.planned_if_possible``; on
ZeroGPU ``budget.makes_way``), reserves the disk space for its takes (``takes.reserving_disk``), runs
``generation.music_gpu`` through the GPU call (``gpu.call``) and writes the takes (``modes.finish``).
Each endpoint function carries its preparer's parameters as its keyword arguments.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import gradio as gr

import asgi_gate
import audio
import base_model
import budget
import checks
import describe
import duration_estimate
import error_messages
import event_errors
import generation
import gpu
import headers
import messages
import modes
import output_folder
import parameters
import preparing
import quota
import records
import results
import runs
import stems
import take_morph
import take_owners
import takes
import tooltips as tips
import uploads
import variations
import voice
from music_shape import MusicShape


def describe_lora(lora: str | None = None) -> str:
    """The text under a LoRA upload: what the file is, or why it cannot be used (``preparing.check_lora``:
    its header, and whether it fits the model once the model is loaded)."""
    if not lora:
        return tips.LORA
    try:
        adapter = preparing.check_lora(lora, 1.0)
    except gr.Error as exc:
        return f"⚠️ {exc.message}"
    return tips.LORA_READ.format(name=checks.shown(adapter["name"], 80).strip("'"))


def preparer_parameters(fn: Callable) -> list[inspect.Parameter]:
    """A ``modes`` preparer's parameters: the endpoint's keyword arguments."""
    return list(inspect.signature(fn).parameters.values())


def make(
    mode: str, progress: Any = None, run_id: str | None = None, **settings: Any
) -> tuple[list[str], dict[str, Any]]:
    """One music request made in this process, start to end, with no admission check before it (tests,
    the bench): prepared on the CPU, then admitted (``budget.admit``), run and written by ``run_job``."""
    return run_job(modes.PREPARE[mode](**settings), progress, run_id)


def run_job(job: modes.Job, progress: Any = None, run_id: str | None = None) -> tuple[list[str], dict[str, Any]]:
    """A prepared request run on the GPU and written, with the cost estimate made at admission (made here
    where no admission check made one: ``make``, a test's): only what may have changed since admission is
    looked at again, Think's plan. Returns the takes' paths and the record."""
    job = job if job.admission is not None else budget.admit(job)
    # On ZeroGPU Think waits for the planner here, outside the call; a planner that cannot be built
    # leaves the song to be made without its plan (what its takes write unchanged), and where it is
    # built Think makes way where only the song fits one call (``budget.makes_way``).
    request, waited = generation.planned_if_possible(job.request, progress, run_id)
    if request is not job.request:
        job = dataclasses.replace(job, request=request)
    elif request.plan is not None and gpu.on_zero_gpu():
        job = budget.makes_way(job)
    with takes.reserving_disk(job.admission.disk_bytes, refused=lambda: budget.no_disk_space(job)):
        made = gpu.call(
            generation.music_gpu,
            job.request,
            # A part waits for the XL base's DiT too, built at start-up on ZeroGPU (``startup``).
            needs=("music", "base") if job.request.render.pipeline.task_type in base_model.TASKS else ("music",),
            progress=progress,
            run_id=run_id,
            starting=generation.starting_message,
            # ZeroGPU's refusal as a message, with what of this request fits what is left (``quota``).
            refused=lambda exc: quota.refusal(exc, quota.music_ways(MusicShape.of(job.request))),
            waited=waited,
        )
        # Stop clicked after the last step (while the audio is decoded, the takes finished or written)
        # still stops, and nothing is kept: the finish of a 240 s take can take about 50 s.
        try:
            paths, record = modes.finish(job, made, stop=lambda: runs.is_stopped(run_id))
        except runs.Cancelled:
            raise runs.stopped(messages.STOPPED_AFTER_LAST_STEP) from None
    if runs.is_stopped(run_id):  # clicked as the last file was written: too late, and the visitor is told
        gr.Info(messages.ALREADY_SAVED, title="Already finished")
    skipped = [t.planner["skipped"] for t in records.Record.of(record).takes if "skipped" in (t.planner or {})]
    if skipped:
        gr.Warning(messages.PLAN_SKIPPED.format(reason=skipped[0]))
    return paths, record


# The music endpoints' file parameters, each as a musician names its file (``audio.unseen``).
FILE_PARAMETERS = {"src_audio": "song", "reference_audio": "timbre reference"} | {
    file: error_messages.ADAPTER_FILE for file, _, _ in parameters.ADAPTER_SLOTS
}


def check_files_seen(values: dict[str, Any]) -> None:
    """A file parameter given a URL or a path that is no upload is refused for that reason, on its field,
    before anything reads it (a take's record would otherwise compare the marker's name with its file's)."""
    for name, what in FILE_PARAMETERS.items():
        if (why := audio.unseen(values.get(name), what)) is not None:
            raise checks.InputError(why, name)


def check_voice_owner(mode: str, values: dict[str, Any], request: Any) -> None:
    """A take named as a voice (``/generate``'s ``reference_take``, or the one a varied take's record
    names) must be one this visitor's page made, as *Send to* holds (``take_owners.made_by``); another's
    gets the message a take that is gone gets (``checks.InputError`` on its field)."""
    record = values.get("record") if isinstance(values.get("record"), dict) else {}
    if mode == "generate":
        name, param = values.get("reference_take"), "reference_take"
    elif mode == "variations":
        how_made = records.Record.of(record)
        name, param = variations.voice_of(how_made, {"reference_audio": values.get("reference_audio")}), "record"
    else:
        return
    if name not in (None, "") and not take_owners.made_by(request, voice.relative_name(name)):
        raise checks.InputError(voice.gone(name), param)


def prepare_for_admission(mode: str, values: dict[str, Any], request: Any = None) -> modes.Job:
    """A ``mode`` request as the admission check prepares it from its inputs ``values``: the voice it names
    checked to be its visitor's (``check_voice_owner``), then its preparer, files read by their headers only
    (``headers.only``: an upload a stand-in of its length, no decode, hash or scan)."""
    prepare = preparer(mode)
    check_files_seen(values)
    check_voice_owner(mode, values, request)
    with headers.only():
        return prepare(**values, request=request) if _asks(prepare) else prepare(**values)


def as_admitted(job: modes.Job, request: Any) -> modes.Job:
    """In the run: ``job``, prepared in full, with the cost estimate made at admission (what
    ``admission_check`` left on the join's ``request``) while it costs what that estimate saw
    (``Admission.holds``); else, where it costs more (a song longer than its header said, measured
    figures learnt meanwhile) or no admission check ran, ``budget.as_admitted``."""
    admitted = getattr(getattr(getattr(request, "request", None), "state", None), budget.ADMISSION, None)
    job = job if admitted is None else job.with_admission(admitted)
    shape = MusicShape.of(job.request)
    return (
        job
        if admitted is not None and admitted.holds(shape, duration_estimate.music_seconds(shape))
        else budget.as_admitted(job)
    )


def admission_check(mode: str) -> Callable[..., None]:
    """The admission check of a ``mode`` request, the checks it passes before it queues
    (``admission.validator``, inside the HTTP join): prepared from headers (``prepare_for_admission``),
    then admitted once (``budget.admit``: its length and what it may cost here). The cost estimate goes
    with the join to its run on its ``request``, where the run takes it (``as_admitted``)."""
    names = _names(preparer(mode))

    def check(*args: Any, request: gr.Request = None) -> None:
        budget.admit(prepare_for_admission(mode, dict(zip(names, args, strict=False)), request), request=request)

    return check


def reserves(mode: str) -> Callable[[dict[str, Any], Any], str]:
    """The text under ``mode``'s button on a Space (``quota.music_line``): the request its inputs make,
    prepared as the admission check prepares it (``prepare_for_admission``), Think's length bounded as
    admission bounds it, then its shape. A form the admission check would refuse says how much once it
    can be sent."""

    def reserves_text(values: dict[str, Any], request: Any = None) -> str:
        # A form with no caption or lyrics yet is priced as it will be with a caption: a caption's length
        # costs nothing.
        if "prompt" in values and not any(str(values.get(k) or "").strip() for k in ("prompt", "lyrics")):
            values = {**values, "prompt": "-"}
        try:
            job = budget.bounded(prepare_for_admission(mode, values, request), budget.max_gpu_seconds())
        except gr.Error as exc:
            waits = getattr(exc, "param", None) in ("src_audio", "take", "record")
            return messages.RESERVES_NOT_YET if waits else messages.RESERVES_LATER
        return quota.music_line(MusicShape.of(job.request), fits_day=mode in modes.PREPARE)

    return reserves_text


def _names(prepare: Callable[..., modes.Job]) -> list[str]:
    return [p.name for p in preparer_parameters(prepare) if p.name != "request"]


def _asks(prepare: Callable[..., modes.Job]) -> bool:
    """Whether a preparer takes the join's ``request`` (whose take it is: ``take_morph``)."""
    return "request" in inspect.signature(prepare).parameters


def _endpoint(mode: str, slots: int = 1, tab: str | None = None) -> Callable:
    """The Gradio event function of a music mode.

    It carries the ``modes`` preparer's parameter names and defaults, which Gradio turns into the
    endpoint's keyword arguments, plus the request and progress Gradio injects (found through real
    annotations: a ``__signature__`` alone does not make Gradio pass them). It returns ``slots``
    audio slots (their public URLs, or plain paths where no page asked; ``None`` when unused), the seed
    line and the record. A stopped run returns normally, with no take, the stop's message as the seed
    line and the record ``{"stopped": message}``: Gradio would show any raised error as a red "Error",
    on the take slot too.
    """
    prepare, tab = preparer(mode), tab or mode
    # A preparer that asks for the join's request is given it as the event's ``request``.
    accepted = [p for p in preparer_parameters(prepare) if p.name != "request"]
    asks = _asks(prepare)
    extra = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request),
        inspect.Parameter(
            "progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress(), annotation=gr.Progress
        ),
    ]
    signature = inspect.Signature(accepted + extra)

    def handler(*args: Any, **kwargs: Any):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        request, progress = values.pop("request"), values.pop("progress")
        files = [values.get(name) for name in FILE_PARAMETERS if isinstance(values.get(name), str)]
        try:
            # The uploads it reads stay out of the quota's reach until it ends, however it ends.
            check_files_seen(values)
            check_voice_owner(mode, values, request)
            with uploads.using(files), runs.tab_run(tab, request) as run_id:
                job = prepare(**values, request=request) if asks else prepare(**values)
                paths, record = run_job(as_admitted(job, request), progress, run_id)
        except gr.Error as exc:
            if not runs.is_stop(exc):
                raise
            runs.said_stopped(mode, exc.message)
            if mode in ("variations", "morph"):  # the take stays in view, its record too, to try again
                return (*_in_view(values["record"], request, slots), exc.message, gr.skip())
            return (*[None] * slots, exc.message, {"stopped": exc.message})
        take_owners.remember_takes(request, record)  # "Send to" hands on only the takes this visitor made
        urls = [asgi_gate.take_url(path, request) or path for path in paths]
        shown = [urls[i] if i < len(urls) else None for i in range(slots)]
        return (*shown, results.seeds_text(record), record)

    handler.__signature__ = signature  # type: ignore[attr-defined]
    handler.__annotations__ = {"request": gr.Request, "progress": gr.Progress}
    handler.__name__ = mode
    handler.__doc__ = prepare.__doc__
    return event_errors.expected_errors(handler)


def _in_view(record: Any, request: Any, slots: int) -> list[Any]:
    """The takes of the result a stopped variation or morph was asked from, sent again as they stand: a
    ``gr.skip()`` would leave Gradio a copy of each slot in the session, without the patch that hands a
    take's URL to the page (``widgets.take_slot``), and the next take there could not be shown."""
    urls = []
    # An entry that is not one is left out (its slot empty), as the takes after it move up.
    for entry in [t for t in records.Record.of(record).takes[:slots] if t.entry]:
        path = output_folder.studio_take_audio(entry.audio)
        shown = path is not None and take_owners.made_by(request, entry.audio)
        urls.append((asgi_gate.take_url(path, request) or str(path)) if shown else None)
    return urls + [None] * (slots - len(urls))


# What a music endpoint leaves to the model that runs it when a client names none (the preparers' ``None``,
# the declared parameters with a model default, ``parameters.Param.model_default``): 50 steps on XL SFT, 8 on
# turbo, and the XL base's 32 for Edit's parts. Gradio would give each parameter its field's first value as
# the API's default (the Edit tab's 50, shown for a region), and a client that named no steps would send
# that: a part would run 50 steps where README and the page say 32. The step correction too: a turbo
# studio's page shows it on, and a part requested without it runs the base's default (off).
MODEL_DEFAULTS = tuple(p.name for p in parameters.DECLARED if p.model_default)


def model_defaults(get_api_info: Callable[..., Any]) -> Callable[..., Any]:
    """``Blocks.get_api_info`` (what ``/info`` and so every client reads) with the music endpoints'
    ``MODEL_DEFAULTS`` defaulting to ``None``, as the preparers default them: the model's defaults for what
    runs."""

    def api_info(*args: Any, **kwargs: Any) -> Any:
        info = get_api_info(*args, **kwargs)
        for mode in modes.PREPARE:
            for parameter in info.get("named_endpoints", {}).get(f"/{mode}", {}).get("parameters", []):
                if parameter["parameter_name"] in MODEL_DEFAULTS:
                    parameter.update(parameter_has_default=True, parameter_default=None)
        return info

    return api_info


# Every music endpoint's preparer, by its mode: the tabs' (``modes.PREPARE``) and the two endpoints that are no
# tab's, variations of a take (a job of the take's mode, run as its tab's) and a Generate take's morph.
PREPARERS: dict[str, Callable[..., modes.Job]] = {
    **modes.PREPARE,
    "variations": variations.prepare,
    "morph": take_morph.prepare,
}


def preparer(mode: str) -> Callable[..., modes.Job]:
    """What the music endpoint ``mode`` prepares (``PREPARERS``)."""
    return PREPARERS[mode]


generate = _endpoint("generate", slots=checks.MAX_TAKES)


cover = _endpoint("cover")


extend = _endpoint("extend")


edit = _endpoint("edit")


# A Generate take morphed (``/morph``): run as Generate's, so its Stop stops it.
morph = _endpoint("morph", slots=checks.MAX_TAKES, tab="generate")


# Variations of a take, one event a tab: run as that tab's, so its Stop stops them.
VARIATIONS = {tab: _endpoint("variations", slots=checks.MAX_TAKES, tab=tab) for tab in modes.PREPARE}


ENDPOINTS: dict[str, Callable] = {"generate": generate, "cover": cover, "extend": extend, "edit": edit}


# The longest take that is split: Generate makes up to 10 minutes, Extend adds 4 to a song.
STEMS_MAX_SECONDS = 900.0


def check_stems(take: Any = 1, record: Any = None, request: gr.Request = None) -> Any:
    """What *Split into stems* checks at admission (and again when it runs): a take this visitor made
    and the studio keeps, a model to split it with, a length it splits; returns the take's header."""
    path = results.stem_source(take, record, request)
    try:
        return path, audio.probe(path, "take", STEMS_MAX_SECONDS)
    except audio.AudioError as exc:
        raise gr.Error(str(exc)) from None


def _splitting() -> str:
    return messages.SPLITTING if stems.is_loaded() else messages.LOADING_STEMS


def stems_endpoint(tab: str) -> Callable:
    """The event function of *Split into stems* beneath ``tab``'s takes (its runs are the tab's: its
    Stop ends them). Returns the four stems' public URLs, vocals, drums, bass and other."""

    def split(take: float = 1, record: dict | None = None, request: gr.Request = None, progress=gr.Progress()):
        """Split take number ``take`` (from 1) of a result (``record``: the metadata a music endpoint
        returns) into vocals, drums, bass and other, saved beside the take; returns the four files."""
        path, header = check_stems(take, record, request)
        try:
            with runs.tab_run(tab, request) as run_id:
                try:
                    mix = audio.decode(path, header, "take", STEMS_MAX_SECONDS)
                except audio.AudioError as exc:
                    raise gr.Error(str(exc)) from None
                made = gpu.call(
                    stems.stems_gpu,
                    mix,
                    needs=("stems",),
                    progress=progress,
                    run_id=run_id,
                    starting=_splitting,
                    refused=quota.refusal,
                )
                if runs.is_stopped(run_id):  # clicked after the last segment: still nothing is saved
                    raise runs.stopped(messages.STEMS_STOPPED)
                info = {"model": {**stems.identity(), "device": made.device}, "timings": made.timings}
                info["sum"] = "other = take - vocals - drums - bass"
                paths, _ = takes.write_stems(path, stems.residual(mix, made.stems), info)
        except gr.Error as exc:
            if not runs.is_stop(exc):
                raise
            runs.said_stopped(f"stems ({tab})", exc.message)
            return (None,) * len(stems.STEMS)
        return tuple(asgi_gate.take_url(p, request) or p for p in paths)

    split.__annotations__ = {"request": gr.Request, "progress": gr.Progress}
    split.__name__ = f"stems_{tab}"
    return event_errors.expected_errors(split)


def describe_endpoint(tab: str) -> Callable:
    """The event function of *Describe* on ``tab`` (its runs are the tab's: its Stop ends them)."""

    def listen(
        src_audio: str | None = None,
        prompt: str = "",
        lyrics: str = "",
        vocal_language: str = checks.UNKNOWN,
        bpm: float | None = 0,
        key_scale: str = checks.AUTO,
        time_signature: str = checks.AUTO,
        request: gr.Request = None,
        progress=gr.Progress(),
    ):
        """Let ACE-Step's planner listen to ``src_audio`` and fill the fields left empty (caption as
        ``prompt``, lyrics, vocal language ("unknown" = empty), BPM (0 = empty), key, time signature
        ("auto" = empty)); the song's measured BPM, key and metre win over the planner's. Returns the
        six fields and a note (Markdown) that says what was written and what was kept."""
        values = (prompt, lyrics, vocal_language, bpm, key_scale, time_signature)
        form = dict(zip(describe.FORM, values, strict=True))
        song = describe.check(src_audio)  # the admission check's checks again
        try:
            with uploads.using([src_audio]), runs.tab_run(tab, request) as run_id:
                measured = describe.measure(src_audio)
                heard = gpu.call(
                    describe.describe_gpu,
                    song,
                    needs=("music", "planner"),
                    progress=progress,
                    run_id=run_id,
                    stop_message=messages.DESCRIBE_STOPPED,
                    refused=quota.refusal,
                )
        except gr.Error as exc:
            if not runs.is_stop(exc):
                raise
            runs.said_stopped(f"describe ({tab})", exc.message)
            return (*form.values(), exc.message)
        values, note = describe.fill(heard, form, measured)
        return (*values, note)

    listen.__annotations__ = {"request": gr.Request, "progress": gr.Progress}
    listen.__name__ = f"describe_{tab}"
    return event_errors.expected_errors(listen)
