"""ACE Music Studio: the page, its event wiring and its validators.

Importing this module builds the UI description only: no torch, diffusers or transformers, no
model. A music request reads as one straight line: ``modes.prepare_<mode>`` validates and prepares
→ ``zerogpu.run_music`` runs the pipeline on the GPU → ``modes.finish`` writes the files → page.
Everything that exists only for Spaces and ZeroGPU lives in ``zerogpu``.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import models
import zerogpu


def _bootstrap() -> None:
    """Environment the rest of the studio relies on; runs before torch can be imported."""
    models.enable_mps_fallback()
    zerogpu.bootstrap()


_bootstrap()

import gradio as gr  # noqa: E402

import backend  # noqa: E402
import examples as ex  # noqa: E402
import lyrics as lyricist  # noqa: E402
import modes  # noqa: E402
import planner  # noqa: E402
import tooltips as tips  # noqa: E402
import waveform  # noqa: E402


def _lenient(component: Any) -> Any:
    """Let out-of-range or unknown API values through to the studio's own checks.

    Sliders and radios would otherwise answer "Value 900 is greater than maximum value 600.0", and
    numbers a bare "400 Bad Request" for "fast" or -1 below a minimum, or round 1.5 to 2 without a
    word; ``modes`` says what the value means and what to do instead.
    """
    component.preprocess = lambda payload: payload
    return component


def write_lyrics(
    theme: str = "",
    genre: str = "",
    mood: str = "",
    vocal_language: str = "en",
    structure: str = "verse-chorus",
    temperature: float = 0.8,
    seed: float = -1,
    custom_sections: str = "",
    length: str = "medium",
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
):
    """Stream lyrics into the box, then replace them with the cleaned version and a caption."""
    try:
        req = lyricist.make_request(theme, genre, mood, vocal_language, structure, temperature, seed,
                                    custom_sections, length)  # fmt: skip
    except lyricist.LyricsError as exc:
        raise gr.Error(str(exc)) from None
    # Drawn here, so a retry after a GPU abort writes the same song.
    req.seed = lyricist.draw_seed(req.seed)
    if not lyricist.is_loaded():
        progress(0, desc="Loading the lyrics model… the first time takes about a minute longer")
    text = ""
    with _run("lyrics", request) as run_id:
        # Whatever was streamed stays in the box on an error: Gradio keeps the last yielded value.
        for text in zerogpu.stream_lyrics(vars(req), modes.LANGUAGES[req.vocal_language], progress, run_id):
            yield text, ""
    cleaned, caption = lyricist.clean(text, req.sections())
    if not cleaned:
        raise gr.Error("The writer returned no usable lyrics. Try again with another seed or more creativity.")
    yield cleaned, caption or lyricist.fallback_caption(req)


def use_in_generate(text: str, caption: str, vocal_language: str = "en") -> tuple[Any, ...]:
    """Lyrics, caption and their language into Generate, and switch to it."""
    if not str(text or "").strip():
        raise gr.Error("There are no lyrics to use yet — write some first.")
    return (
        gr.update(value=text, interactive=True),
        caption,
        False,
        modes.language_code(vocal_language) or "en",
        gr.Tabs(selected="generate"),
    )


# Queued requests whose visitor pressed Stop before they started (Gradio event ids).
_stopped_events: set[str] = set()


def _owner(request: gr.Request | None, tab: str) -> str:
    """Whose run it is: one visitor's page (the session) on one tab."""
    return f"{getattr(request, 'session_hash', None) or 'anonymous'}:{tab}"


@contextlib.contextmanager
def _run(tab: str, request: gr.Request | None):
    """A run of ``tab`` for this visitor, registered so that Stop on that tab (and only there) ends it."""
    from gradio.context import LocalContext

    event_id = LocalContext.event_id.get(None)
    if event_id is not None and event_id in _stopped_events:
        _stopped_events.discard(event_id)
        raise gr.Error("Stopped before it started. Nothing was saved.", title="Stopped")
    run_id = backend.start_run(_owner(request, tab))
    try:
        yield run_id
    finally:
        backend.finish_run(run_id)


def _stop_queued(blocks: gr.Blocks, session_hash: str | None, api_name: str) -> int:
    """Mark this visitor's requests to ``api_name`` that still wait in ``blocks``' queue as stopped."""
    queue = getattr(blocks, "_queue", None)
    marked = 0
    for waiting in list(getattr(queue, "event_queue_per_concurrency_id", {}).values()):
        for event in list(waiting.queue):
            if event.session_hash == session_hash and event.fn.api_name == api_name:
                _stopped_events.add(event._id)
                marked += 1
    return marked


def _stopper(blocks: gr.Blocks, tab: str) -> Callable[..., None]:
    """The Stop button of ``tab``: ends this visitor's run there, or its request still in the queue
    (the tab's event has the tab's name as its ``api_name``)."""

    def stop(request: gr.Request = None) -> None:
        if not backend.request_stop(_owner(request, tab)):
            _stop_queued(blocks, getattr(request, "session_hash", None), tab)

    stop.__name__ = f"stop_{tab}"
    return stop


def show_takes(n: float) -> list[Any]:
    """As many take slots as takes asked for; "Take to send" only when there is a choice."""
    try:
        count = max(1, min(modes.MAX_TAKES, int(float(n or 1))))
    except (TypeError, ValueError):
        count = 1
    return [*(gr.update(visible=i < count) for i in range(modes.MAX_TAKES)), gr.update(visible=count > 1)]


def _seeds_text(record: dict[str, Any]) -> str:
    parts = [f"take {t['take']}: **{t['seed']}**" for t in record["takes"]]
    timings = record["timings"]
    took = timings.get("pipeline_s", 0) + timings.get("model_load_s", 0) + timings.get("planner_s", 0)
    text = f"Seeds — {', '.join(parts)} · made in {took:.1f} s on {device_label(record['model']['device'])}"
    plans = [(t["take"], t["planner"]) for t in record["takes"] if t.get("planner")]
    if len(plans) == 1:
        return f"{text}\n\n{plan_text(plans[0][1])}"
    return "\n\n".join([text, *(f"Take {take}: {plan_text(plan)}" for take, plan in plans)])


def _quoted(text: str, limit: int = 160) -> str:
    """A model's text shown inside Markdown: one line, at most ``limit`` characters, no markup."""
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
    return re.sub(r"([\\`*_{}\[\]<>()#+\-.!|~])", r"\\\1", text)


def plan_text(plan: dict[str, Any]) -> str:
    """The planner's part of a result, in a line: what it chose, or why it was skipped."""
    if "skipped" in plan:
        return tips.PLAN_SKIPPED.format(reason=_quoted(plan["skipped"], 240))
    f = plan.get("fields", {})
    summary = " · ".join(
        part
        for part in (
            f"{f['bpm']} BPM" if f.get("bpm") else "",
            str(f.get("keyscale") or ""),
            f"{f['timesignature']} beats a bar" if f.get("timesignature") else "",
            f"“{_quoted(f['caption'])}”" if f.get("caption") else "",
        )
        if part
    )
    return tips.PLANNED.format(seconds=plan.get("seconds", 0), summary=summary or "your settings", codes=plan["codes"])


def settings_from_record(record: Any, take: Any = 1) -> tuple[Any, ...]:
    """Generate's fields from a take's record (a result's metadata or a take's ``.json``), seed
    included, so the take can be made again or varied; then switch to Generate.

    Files (a LoRA, a timbre reference, a source song) are not brought back: they are named in a
    note, to upload again.
    """
    if not isinstance(record, dict) or not isinstance(record.get("params"), dict):
        raise gr.Error("This is not a take's record. Use the .json file saved beside a take.")
    params = record["params"]
    takes = [t for t in record.get("takes") or [] if isinstance(t, dict) and "seed" in t]
    try:
        index = max(1, min(len(takes), int(float(take or 1)))) - 1 if takes else 0
    except (TypeError, ValueError):
        index = 0
    if "take" in record and "seed" in record:  # one take's own .json: its seed
        seed = record["seed"]
    else:
        seed = takes[index]["seed"] if takes else params.get("seed", -1)
    lyrics = params.get("lyrics") or ""
    language = params.get("vocal_language") or "en"
    variant = models.active_variant()
    files = [f"{label} {params[key]}" for key, label in
             (("lora", "LoRA"), ("reference_audio", "timbre reference"), ("src_audio", "source song"))
             if params.get(key)]  # fmt: skip
    if files:
        gr.Info(f"Settings brought back. Upload again what a take's record cannot carry: {', '.join(files)}.")
    return (
        params.get("prompt", ""),
        gr.update(value=lyrics, interactive=True) if lyrics else toggle_instrumental(True),
        not lyrics,
        params.get("audio_duration") or 30,
        params.get("bpm") or 0,
        params.get("key_scale") or modes.AUTO,
        params.get("time_signature") or modes.AUTO,
        language if language in modes.LANGUAGES else "en",
        seed,
        params.get("inference_steps") or variant.steps,
        params.get("guidance_scale") or variant.guidance,
        params.get("shift") or variant.shift,
        1,
        params.get("audio_format") or "wav",
        bool(params.get("think")) and planner.enabled(),
        gr.Tabs(selected="generate"),
    )


def settings_from_file(path: Any) -> tuple[Any, ...]:
    """``settings_from_record`` for an uploaded take ``.json``."""
    import json

    if not path:
        raise gr.Error("Upload the .json file saved beside a take.")
    try:
        with open(str(path), encoding="utf-8") as f:
            record = json.loads(f.read(200_000))
    except (OSError, ValueError, UnicodeDecodeError):
        raise gr.Error("This file is not a take's record: it is not readable JSON.") from None
    return settings_from_record(record, 1)


def toggle_instrumental(on: bool) -> Any:
    if on:
        return gr.update(value=modes.INSTRUMENTAL_TAG, interactive=False)
    return gr.update(value="", interactive=True)


def model_label() -> str:
    """The model as the page names it: the variant, or the folder ``ACE_STUDIO_MODEL`` points at."""
    source = os.environ.get("ACE_STUDIO_MODEL", "").strip()
    if source and os.path.isdir(os.path.expanduser(source)):
        return tips.MODEL_FROM_FOLDER.format(folder=os.path.basename(os.path.normpath(source)))
    return f"**{models.active_variant().label}**"


def _header() -> str:
    return f"# ACE Music Studio\nMake songs from words with {model_label()}. {tips.TAGLINE}"


def device_label(device: str | None = None) -> str:
    """What the music runs on, in the words a visitor knows."""
    if zerogpu.on_zero_gpu():
        return "ZeroGPU"
    device = device or models.pick_device()
    return {"cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU (MPS)", "cpu": "CPU"}.get(device, device)


def studio_status() -> tuple[str, Any]:
    """The header's status line, and whether its timer should keep polling (until start-up is over)."""
    state = backend.load_state()
    warmup = zerogpu.warmup_state()
    if state["state"] == "ready":
        text = tips.STATUS_READY.format(
            label=model_label(), device=device_label(state["device"]), seconds=state["load_seconds"]
        )
        if warmup["running"]:
            text += tips.STATUS_WARMING.format(elapsed=warmup["elapsed"])
    elif state["state"] == "loading":
        text = tips.STATUS_LOADING.format(
            label=model_label(), device=device_label(), elapsed=state["elapsed"], usual=backend.COLD_START_SECONDS
        )
    else:
        label = model_label()
        text = tips.STATUS_COLD.format(
            label=label[:1].upper() + label[1:], device=device_label(), usual=backend.COLD_START_SECONDS
        )
    for kind, error in warmup["errors"].items():
        text += tips.STATUS_WARM_FAILED.format(what=f"{kind} model", error=error)
    return text, gr.Timer(active=state["state"] != "ready" or warmup["running"])


def _takes_column(prefix: str, n: int = modes.MAX_TAKES) -> list[gr.Audio]:
    return [
        gr.Audio(
            label=f"Take {i + 1}" if n > 1 else "Result",
            type="filepath",
            interactive=False,
            visible=i == 0,
            buttons=["download"],
            elem_id=f"{prefix}-take-{i + 1}",
        )
        for i in range(n)
    ]


def _lenient_slider(*args: Any, **kwargs: Any) -> gr.Slider:
    return _lenient(gr.Slider(*args, **kwargs))


def _lenient_radio(*args: Any, **kwargs: Any) -> gr.Radio:
    return _lenient(gr.Radio(*args, **kwargs))


def _own_parameters(fn: Callable) -> list[inspect.Parameter]:
    """A ``modes`` preparer's parameters: the endpoint's keyword arguments."""
    return list(inspect.signature(fn).parameters.values())


def make(
    mode: str, progress: Any = None, run_id: str | None = None, **settings: Any
) -> tuple[list[str], dict[str, Any]]:
    """One music request, start to end: prepare on the CPU, run on the GPU, write the files."""
    job = modes.PREPARE[mode](**settings)
    paths, record = modes.finish(job, zerogpu.run_music(job, progress, run_id))
    skipped = [t["planner"]["skipped"] for t in record["takes"] if "skipped" in t.get("planner", {})]
    if skipped:
        gr.Warning(tips.PLAN_SKIPPED.format(reason=skipped[0]))
    return paths, record


def _endpoint(mode: str, takes: int = 1) -> Callable:
    """The Gradio event function of a music mode.

    It carries the ``modes`` preparer's parameter names and defaults, which Gradio turns into the
    endpoint's keyword arguments, plus the request and progress Gradio injects (found through real
    annotations: a ``__signature__`` alone does not make Gradio pass them). It returns ``takes``
    audio slots (plain paths, ``None`` when unused), the seed line and the record.
    """
    own = _own_parameters(modes.PREPARE[mode])
    extra = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request),
        inspect.Parameter(
            "progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress(), annotation=gr.Progress
        ),
    ]
    signature = inspect.Signature(own + extra)

    def handler(*args: Any, **kwargs: Any):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        request, progress = values.pop("request"), values.pop("progress")
        with _run(mode, request) as run_id:
            paths, record = make(mode, progress, run_id, **values)
        slots = [paths[i] if i < len(paths) else None for i in range(takes)]
        return (*slots, _seeds_text(record), record)

    handler.__signature__ = signature  # type: ignore[attr-defined]
    handler.__annotations__ = {"request": gr.Request, "progress": gr.Progress}
    handler.__name__ = mode
    handler.__doc__ = modes.PREPARE[mode].__doc__
    return handler


generate = _endpoint("generate", takes=modes.MAX_TAKES)
cover = _endpoint("cover")
extend = _endpoint("extend")
edit = _endpoint("edit")


def queue_size() -> int:
    """Requests a visitor may wait behind (``ACE_STUDIO_QUEUE_SIZE``, default 32)."""
    return int(os.environ.get("ACE_STUDIO_QUEUE_SIZE", "32"))


class _Admission:
    """Places in the queue promised by validators in the last few seconds.

    Validators run concurrently and a request joins Gradio's queue only after its validator
    returns, so counting the queue alone let a burst of 30 simultaneous joins through a cap of 2.
    A place counts from the moment it is promised until ``WINDOW_S`` later, by when the request
    is in the queue (and counted there; for those seconds it counts twice, erring on the busy side).
    """

    WINDOW_S = 5.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._promised: collections.deque[float] = collections.deque()

    def admit(self, queued: int, cap: int) -> int | None:
        """Promise a place and return None, or return how many wait when there is none."""
        now = time.monotonic()
        with self._lock:
            while self._promised and now - self._promised[0] > self.WINDOW_S:
                self._promised.popleft()
            waiting = queued + len(self._promised)
            if waiting >= cap:
                return waiting
            self._promised.append(now)
            return None


_admission = _Admission()


def _validator(check: Callable, names: list[str], waiting: Callable[[], int], anchor: str) -> Callable:
    """A Gradio ``validator=``: runs the handler's checks before the request takes a queue slot and
    marks the field at fault; a full queue answers with a busy message instead.

    ``check`` takes the endpoint's inputs (``names``, the components ``inputs``) and raises an
    error with a ``param`` attribute (or a plain ``gr.Error``, shown on ``anchor``, an always visible
    field). Only the field at fault is marked: for one in a closed accordion the page opens it and
    notes the message on its label (``theme.JS``). ``waiting`` counts the requests queued in the
    page's Blocks. The handler repeats the checks when it runs, so nothing depends on this alone.
    """

    def verdict(param: str | None = None, message: str = "") -> list[dict[str, Any]]:
        if param is not None and param not in names:
            param = anchor
        return [gr.validate(name != param, message if name == param else "") for name in names]

    def validate(*args: Any) -> list[dict[str, Any]]:
        queued = waiting()
        if queued >= queue_size():  # cheap, before an upload is decoded
            return verdict(anchor, tips.BUSY.format(waiting=queued))
        try:
            modes.check_text_lengths(dict(zip(names, args, strict=True)))
            check(*args)
        except modes.InputError as exc:
            return verdict(exc.param, exc.message)
        except lyricist.LyricsError as exc:
            return verdict(exc.param, str(exc))
        except gr.Error as exc:
            return verdict(anchor, exc.message)
        full = _admission.admit(waiting(), queue_size())
        if full is not None:
            return verdict(anchor, tips.BUSY.format(waiting=full))
        return verdict()

    validate.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    return validate


def describe_source(path: str | None) -> str:
    """A line under an upload: its length, or why it cannot be used."""
    if not path:
        return ""
    import soundfile as sf

    try:
        info = sf.info(path)
    except Exception:
        return "⚠️ This file cannot be read as audio. Try WAV, FLAC, OGG or MP3."
    minutes, secs = divmod(info.duration, 60)
    return f"Source: {int(minutes)}:{secs:04.1f} long · {info.samplerate} Hz · {info.channels} channel(s)"


def analyze_source(path: str | None) -> tuple[Any, ...]:
    """The line under an upload with its tempo, key, beats per bar and loudness, and those values
    for the tab's BPM, key and time-signature fields (CPU only: no GPU time)."""
    import analysis
    import audio

    text = describe_source(path)
    if not path or text.startswith("⚠️"):
        return text, gr.update(), gr.update(), gr.update()
    try:
        found = analysis.analyze(path)
    except audio.AudioError as exc:
        return f"{text}\n\n⚠️ {exc}", gr.update(), gr.update(), gr.update()
    except Exception:  # an analysis that fails must not cost the upload
        return f"{text} · (tempo and key could not be measured)", gr.update(), gr.update(), gr.update()
    return (
        f"{text} · {analysis.describe(found).split(' · ', 1)[1]}",
        int(round(found.bpm)),
        found.key,
        str(found.beats_per_bar),
    )


def scale_tempo(bpm: Any, factor: float) -> Any:
    """Half or double the BPM field: beat trackers often find twice or half the felt tempo."""
    try:
        value = float(bpm)
    except (TypeError, ValueError):
        return gr.update()
    if value <= 0:
        return gr.update()
    return int(round(min(modes.BPM_RANGE[1], max(modes.BPM_RANGE[0], value * factor))))


def send_take(take: float, *paths: str | None) -> tuple[Any, ...]:
    """The chosen take of a result, for another tab's source."""
    index = max(1, min(len(paths), int(take or 1))) - 1
    if not paths[index]:
        raise gr.Error(f"There is no take {index + 1} yet — make one first.")
    return paths[index]


SEND_TARGETS = (("Cover", "cover"), ("Extend", "extend"), ("Edit", "edit"))


def _sampling_controls(variant: models.Variant, prefix: str):
    with gr.Row():
        seed = _lenient(gr.Number(label="Seed", value=-1, precision=0, info=tips.SEED, elem_id=f"{prefix}-seed"))
        steps = _lenient_slider(
            *modes.STEPS_RANGE, value=variant.steps, step=1, label="Steps", info=tips.STEPS, elem_id=f"{prefix}-steps"
        )
    with gr.Row():
        guidance = _lenient_slider(
            *modes.GUIDANCE_RANGE, value=variant.guidance, step=0.5, label="Guidance", info=tips.GUIDANCE
        )
        fmt = _lenient_radio(modes.FORMATS, value="wav", label="Output format", info=tips.FORMAT)
    return seed, steps, guidance, fmt


def _scroll_js(elem_id: str) -> str:
    """Client-side only: bring ``elem_id`` into view unless it already is."""
    return (
        f"() => {{ const el = document.getElementById({elem_id!r}); if (!el) return; const r = el.getBoundingClientRect();"
        " if (r.top < 0 || r.bottom > window.innerHeight) el.scrollIntoView({block: 'center'}); }"
    )


def _language_dropdown(prefix: str) -> gr.Dropdown:
    languages = [(f"{name} ({code})", code) for code, name in modes.LANGUAGES.items()]
    return gr.Dropdown(
        languages, value="en", label="Vocal language", info=tips.LANGUAGE, allow_custom_value=True,
        elem_id=f"{prefix}-language",
    )  # fmt: skip


def _reference_input(prefix: str) -> gr.Audio:
    """An optional voice or instrument whose timbre the take borrows (the pipeline's ``reference_audio``)."""
    reference = gr.Audio(
        label="Timbre reference (optional)", type="filepath", sources=["upload"], elem_id=f"{prefix}-reference",
        elem_classes=["compact-drop"],
    )  # fmt: skip
    gr.Markdown(tips.REFERENCE, elem_classes=["hint"])
    return reference


def _lora_controls(prefix: str) -> tuple[gr.File, gr.Slider]:
    """A visitor's own LoRA for this request only."""
    with gr.Row():
        # No ``file_types``: Gradio would refuse another suffix with a bare "400 Bad Request"; the
        # studio's own check says what a LoRA file must be.
        lora = gr.File(
            label="LoRA (optional)", type="filepath", height=120,
            elem_id=f"{prefix}-lora", elem_classes=["compact-drop"],
        )  # fmt: skip
        scale = _lenient_slider(
            *modes.LORA_SCALE_RANGE, value=1.0, step=0.05, label="LoRA strength", info=tips.LORA_SCALE
        )
    gr.Markdown(tips.LORA, elem_classes=["hint"])
    return lora, scale


def _result_column(prefix: str, n: int = 1):
    takes = _takes_column(prefix, n)
    seeds = gr.Markdown(tips.RESULT_EMPTY, elem_id=f"{prefix}-seeds", elem_classes=["result-note"])
    with gr.Row():
        # Shown once Generate is set to more than one take (``show_takes``).
        pick = gr.Number(value=1, precision=0, label="Take to send", visible=False, minimum=1, maximum=n)
        sends = {
            tab: gr.Button(f"Send to {label}", size="sm", elem_id=f"{prefix}-send-{tab}") for label, tab in SEND_TARGETS
        }
        sends["settings"] = gr.Button("Use these settings", size="sm", elem_id=f"{prefix}-use-settings")
    with gr.Accordion("Details: every setting, the model and the timings", open=False):
        meta = gr.JSON(label="Metadata", open=False)
    return takes, seeds, pick, sends, meta


def _action_buttons(label: str, prefix: str) -> tuple[gr.Button, gr.Button]:
    """The tab's main action and its Stop, side by side."""
    with gr.Row(equal_height=True):
        action = gr.Button(
            label, variant="primary", size="lg", scale=4, elem_id=f"{prefix}-button", elem_classes=["main-action"]
        )
        stop_button = gr.Button(
            "Stop", variant="stop", size="lg", scale=1, min_width=90, elem_id=f"{prefix}-stop",
            elem_classes=["stop-action"],
        )  # fmt: skip
    return action, stop_button


def _source_input(prefix: str, label: str = "Song") -> tuple[gr.Audio, gr.Markdown]:
    """The song upload and the line under it (filled by ``_musical_controls``' analysis)."""
    src = gr.Audio(
        label=label, type="filepath", sources=["upload"], elem_id=f"{prefix}-src", elem_classes=["compact-drop"]
    )
    info = gr.Markdown("", elem_id=f"{prefix}-src-info")
    return src, info


def _waveform(prefix: str) -> gr.HTML:
    """The song's waveform (``waveform.py``): a region to drag in Edit, the seam in Extend."""
    return gr.HTML("", html_template=waveform.TEMPLATE, js_on_load=waveform.JS, elem_id=f"{prefix}-wave",
                   padding=False)  # fmt: skip


def _musical_fields(prefix: str, bpm_info: str) -> tuple[Any, Any, Any]:
    """BPM, key and time signature fields, "auto" by default."""
    with gr.Row():
        bpm = _lenient(gr.Number(label="BPM (0 = auto)", value=0, info=bpm_info, precision=0,
                                 elem_id=f"{prefix}-bpm"))  # fmt: skip
        key = gr.Dropdown([modes.AUTO, *modes.KEYS], value=modes.AUTO, label="Key", info=tips.KEY,
                          allow_custom_value=True, elem_id=f"{prefix}-key")  # fmt: skip
        meter = gr.Dropdown([modes.AUTO, *modes.TIME_SIGNATURES], value=modes.AUTO, label="Time signature",
                            info=tips.TIME_SIGNATURE, allow_custom_value=True, elem_id=f"{prefix}-meter")  # fmt: skip
    return bpm, key, meter


def _musical_controls(prefix: str, src: gr.Audio, info: gr.Markdown) -> tuple[Any, Any, Any]:
    """An audio tab's BPM, key and time signature, prefilled from the upload's analysis."""
    bpm, key, meter = _musical_fields(prefix, tips.BPM_DETECTED)
    with gr.Row():
        half = gr.Button("½ tempo", size="sm", elem_id=f"{prefix}-half-tempo")
        double = gr.Button("2× tempo", size="sm", elem_id=f"{prefix}-double-tempo")
    half.click(lambda b: scale_tempo(b, 0.5), bpm, bpm, api_visibility="private", queue=False)
    double.click(lambda b: scale_tempo(b, 2.0), bpm, bpm, api_visibility="private", queue=False)
    # On the queue, two at a time: a burst of uploads must not fill the CPU the page itself needs.
    src.change(analyze_source, src, [info, bpm, key, meter], api_name=f"{prefix}_analyze",
               concurrency_id="analysis", concurrency_limit=2, show_progress="minimal")  # fmt: skip
    return bpm, key, meter


def _demo_examples(tab: str, rows: list[tuple], inputs: list[Any]) -> gr.Examples:
    """An audio tab's examples: the synthesized demo song (its first input) with each row's settings."""
    song = ex.demo_song()
    return gr.Examples(
        [[song, *row] for row in rows], inputs, label="Try the demo song", api_name=f"load_example_{tab}"
    )


def build_ui() -> gr.Blocks:
    variant = models.active_variant()
    languages = [(f"{name} ({code})", code) for code, name in modes.LANGUAGES.items()]
    results: dict[str, tuple] = {}
    sources: dict[str, gr.Audio] = {}
    # Gradio keeps its own copy of every result and upload; without a bound that copy grew by every
    # take (164 MB after 51) and still served results the studio had deleted.
    age = int(modes.output_max_age_hours() * 3600)
    with gr.Blocks(title="ACE Music Studio", delete_cache=(min(600, max(age, 1)), age)) as demo:
        gr.Markdown(_header(), elem_id="studio-header")
        status = gr.Markdown(tips.STATUS_CHECKING, elem_id="studio-status")
        status_timer = gr.Timer(3.0)
        with gr.Tabs(elem_id="studio-tabs") as tabs:
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column(scale=3):
                        prompt = gr.Textbox("", label="Style caption", info=tips.CAPTION, lines=2, elem_id="gen-prompt")
                        lyrics = gr.Textbox("", label="Lyrics", info=tips.LYRICS, lines=10, elem_id="gen-lyrics")
                        with gr.Row():
                            instrumental = gr.Checkbox(label="Instrumental", info=tips.INSTRUMENTAL, value=False)
                            think = gr.Checkbox(
                                label="Think", value=planner.enabled(), interactive=planner.enabled(),
                                info=tips.THINK if planner.enabled() else tips.THINK_OFF, elem_id="gen-think",
                            )  # fmt: skip
                        duration = _lenient_slider(
                            modes.MIN_SECONDS, modes.MAX_SECONDS, value=30, step=1,
                            label="Duration (seconds)", info=tips.DURATION, elem_id="gen-duration",
                        )  # fmt: skip
                        with gr.Accordion("Advanced settings", open=False, elem_id="gen-advanced"):
                            bpm, key, time_sig = _musical_fields("gen", tips.BPM)
                            language = _language_dropdown("gen")
                            seed, steps, guidance, fmt = _sampling_controls(variant, "gen")
                            with gr.Row():
                                shift = _lenient_slider(
                                    *modes.SHIFT_RANGE, value=variant.shift, step=0.5, label="Shift", info=tips.SHIFT
                                )
                                takes = _lenient_slider(
                                    1,
                                    modes.MAX_TAKES,
                                    value=1,
                                    step=1,
                                    label="Takes",
                                    info=tips.TAKES,
                                    elem_id="gen-takes",
                                )
                            gen_ref = _reference_input("gen")
                            gen_record = gr.File(
                                label="Bring back a take's settings (its .json)", type="filepath", height=100,
                                elem_id="gen-record", elem_classes=["compact-drop"],
                            )  # fmt: skip
                            gen_lora = _lora_controls("gen")
                        gen_btn, gen_stop = _action_buttons("Generate", "gen")
                    with gr.Column(scale=2):
                        results["generate"] = _result_column("gen", modes.MAX_TAKES)
                # Below the form and the results, so on a phone the results follow the button.
                gr.Examples(
                    [list(e) for e in ex.GENERATE], [prompt, lyrics, duration, language],
                    label="Try one of these", example_labels=ex.GENERATE_LABELS,
                    api_name="load_example_generate",
                )  # fmt: skip

            with gr.Tab("Cover", id="cover"):
                with gr.Row():
                    with gr.Column(scale=3):
                        sources["cover"], cover_info = _source_input("cover")
                        cover_prompt = gr.Textbox("", label="New style", info=tips.COVER_CAPTION, lines=2)
                        cover_strength = _lenient_slider(
                            0.0, 1.0, value=0.6, step=0.05, label="Cover strength", info=tips.COVER_STRENGTH
                        )
                        with gr.Accordion("Advanced settings", open=False, elem_id="cover-advanced"):
                            cover_lyrics = gr.Textbox(
                                "", label="New lyrics (optional)", info=tips.COVER_LYRICS, lines=6
                            )
                            cover_language = _language_dropdown("cover")
                            cover_music = _musical_controls("cover", sources["cover"], cover_info)
                            cover_ref = _reference_input("cover")
                            cover_sampling = _sampling_controls(variant, "cover")
                            cover_lora = _lora_controls("cover")
                        cover_btn, cover_stop = _action_buttons("Make cover", "cover")
                    with gr.Column(scale=2):
                        results["cover"] = _result_column("cover")
                _demo_examples("cover", ex.COVER, [sources["cover"], cover_prompt, cover_strength])

            with gr.Tab("Extend", id="extend"):
                with gr.Row():
                    with gr.Column(scale=3):
                        sources["extend"], extend_info = _source_input("extend")
                        extend_wave = _waveform("extend")
                        extend_seconds = _lenient_slider(
                            *modes.EXTEND_RANGE, value=30, step=1, label="Seconds to add", info=tips.EXTEND_SECONDS,
                            elem_id="extend-seconds",
                        )  # fmt: skip
                        extend_prompt = gr.Textbox("", label="Style of the continuation", info=tips.EXTEND_CAPTION)
                        with gr.Accordion("Advanced settings", open=False, elem_id="extend-advanced"):
                            extend_lyrics = gr.Textbox("", label="Lyrics for the new part", info=tips.LYRICS, lines=6)
                            extend_language = _language_dropdown("extend")
                            extend_music = _musical_controls("extend", sources["extend"], extend_info)
                            extend_sampling = _sampling_controls(variant, "extend")
                            extend_lora = _lora_controls("extend")
                        extend_btn, extend_stop = _action_buttons("Extend", "extend")
                    with gr.Column(scale=2):
                        results["extend"] = _result_column("extend")
                _demo_examples("extend", ex.EXTEND, [sources["extend"], extend_prompt, extend_seconds])

            with gr.Tab("Edit", id="edit"):
                with gr.Row():
                    with gr.Column(scale=3):
                        sources["edit"], edit_info = _source_input("edit")
                        edit_wave = _waveform("edit")
                        with gr.Row():
                            edit_start = _lenient(
                                gr.Number(
                                    value=0, label="Region start (s)", info=tips.REGION, minimum=0, elem_id="edit-start"
                                )
                            )
                            edit_end = _lenient(
                                gr.Number(value=10, label="Region end (s)", minimum=0, elem_id="edit-end")
                            )
                        edit_prompt = gr.Textbox("", label="Style for the region", info=tips.CAPTION)
                        edit_lyrics = gr.Textbox("", label="New words for the region", info=tips.EDIT_LYRICS, lines=4)
                        with gr.Accordion("Advanced settings", open=False, elem_id="edit-advanced"):
                            edit_language = _language_dropdown("edit")
                            edit_music = _musical_controls("edit", sources["edit"], edit_info)
                            edit_sampling = _sampling_controls(variant, "edit")
                            edit_lora = _lora_controls("edit")
                        edit_btn, edit_stop = _action_buttons("Regenerate region", "edit")
                    with gr.Column(scale=2):
                        results["edit"] = _result_column("edit")
                _demo_examples("edit", ex.EDIT, [sources["edit"], edit_start, edit_end, edit_prompt, edit_lyrics])

            with gr.Tab("Lyrics", id="lyrics"):
                with gr.Row():
                    with gr.Column(scale=3):
                        ly_theme = gr.Textbox("", label="What is the song about?", info=tips.LYRICS_THEME, lines=2,
                                              elem_id="ly-theme")  # fmt: skip
                        with gr.Row():
                            ly_genre = gr.Textbox("", label="Genre / style", info=tips.LYRICS_GENRE)
                            ly_mood = gr.Textbox("", label="Mood", info=tips.LYRICS_MOOD)
                        ly_language = gr.Dropdown(
                            languages, value="en", label="Language", info=tips.LYRICS_LANGUAGE, allow_custom_value=True
                        )
                        with gr.Accordion("Advanced settings", open=False, elem_id="ly-advanced"):
                            ly_structure = gr.Dropdown(
                                list(lyricist.STRUCTURES), value="verse-chorus", label="Structure",
                                info=tips.LYRICS_STRUCTURE, allow_custom_value=True,
                            )  # fmt: skip
                            ly_custom = gr.Textbox("", label="Custom sections", info=tips.LYRICS_CUSTOM)
                            with gr.Row():
                                ly_length = _lenient_radio(
                                    list(lyricist.LENGTHS), value="medium", label="Length", info=tips.LYRICS_LENGTH
                                )
                                ly_temp = _lenient_slider(
                                    0.0, 1.5, value=0.8, step=0.05, label="Creativity", info=tips.LYRICS_TEMPERATURE
                                )
                                ly_seed = _lenient(gr.Number(value=-1, precision=0, label="Seed", info=tips.SEED))
                        ly_btn, ly_stop = _action_buttons("Write lyrics", "ly")
                    with gr.Column(scale=3):
                        ly_text = gr.Textbox("", label="Lyrics", lines=18, elem_id="ly-text")
                        ly_caption = gr.Textbox("", label="Suggested style caption", elem_id="ly-caption")
                        ly_use = gr.Button("Use in Generate", elem_id="ly-use")
                gr.Examples(
                    [list(e) for e in ex.LYRICS], [ly_theme, ly_genre, ly_mood, ly_language],
                    label="Try one of these", api_name="load_example_lyrics",
                )  # fmt: skip

        def waiting() -> int:
            return len(demo._queue)

        for trigger in (demo.load, status_timer.tick):
            trigger(studio_status, None, [status, status_timer], queue=False, api_visibility="private",
                    show_progress="hidden")  # fmt: skip

        ly_inputs = [ly_theme, ly_genre, ly_mood, ly_language, ly_structure, ly_temp, ly_seed, ly_custom, ly_length]
        ly_btn.click(None, None, None, js=_scroll_js("ly-text"), api_visibility="private")
        ly_btn.click(
            write_lyrics,
            ly_inputs,
            [ly_text, ly_caption],
            api_name="lyrics",
            concurrency_id="gpu",
            show_progress_on=[ly_text],
            validator=_validator(
                lyricist.make_request,
                list(inspect.signature(lyricist.make_request).parameters),
                waiting,
                "theme",
            ),  # fmt: skip
        )
        ly_stop.click(_stopper(demo, "lyrics"), None, None, api_name="stop_lyrics", queue=False)
        # Undocumented rather than private: API clients (and the tests) may use it too.
        ly_use.click(
            use_in_generate, [ly_text, ly_caption, ly_language], [lyrics, prompt, instrumental, language, tabs],
            api_name="use_in_generate",
            api_visibility="undocumented",
        )  # fmt: skip
        instrumental.input(
            toggle_instrumental, instrumental, lyrics, api_name="toggle_instrumental", api_visibility="private"
        )
        gen_takes, gen_pick = results["generate"][0], results["generate"][2]
        takes.change(show_takes, takes, [*gen_takes, gen_pick], api_name="show_takes", api_visibility="private")
        events = {
            "generate": (
                gen_btn, gen_stop,
                [prompt, lyrics, duration, bpm, key, time_sig, language, seed, steps, guidance, shift, takes, fmt,
                 gen_ref, *gen_lora, think],
            ),
            "cover": (
                cover_btn, cover_stop,
                [sources["cover"], cover_prompt, cover_lyrics, cover_language, *cover_music, cover_strength, cover_ref,
                 *cover_sampling, *cover_lora],
            ),
            "extend": (
                extend_btn, extend_stop,
                [sources["extend"], extend_prompt, extend_lyrics, extend_language, *extend_music, extend_seconds,
                 *extend_sampling,
                 *extend_lora],
            ),
            "edit": (
                edit_btn, edit_stop,
                [sources["edit"], edit_prompt, edit_lyrics, edit_language, *edit_music, edit_start, edit_end, *edit_sampling,
                 *edit_lora],
            ),
        }  # fmt: skip
        # Waveforms: drawn from server peaks; a drag in Edit sets the numbers, typed numbers move it.
        quiet = {"queue": False, "api_visibility": "private"}
        sources["edit"].change(
            lambda path, a, b: waveform.state(path, 0, a, b, select=True), [sources["edit"], edit_start, edit_end],
            edit_wave, **quiet,
        )  # fmt: skip
        edit_wave.input(waveform.region, edit_wave, [edit_start, edit_end], **quiet)
        for box in (edit_start, edit_end):
            box.input(waveform.with_region, [edit_wave, edit_start, edit_end], edit_wave, **quiet)
        sources["extend"].change(waveform.state, [sources["extend"], extend_seconds], extend_wave, **quiet)
        extend_seconds.change(waveform.with_extra, [extend_wave, extend_seconds], extend_wave, **quiet)
        handlers = {"generate": generate, "cover": cover, "extend": extend, "edit": edit}
        for name, (button, stop_button, inputs) in events.items():
            audios, seeds_md, _pick, _sends, meta = results[name]
            prepare = modes.PREPARE[name]
            # Where the eye goes after the press: the first take slot, brought into view (below the
            # form on a phone), is the one place that shows the progress.
            button.click(None, None, None, js=_scroll_js(audios[0].elem_id), api_visibility="private")
            button.click(
                handlers[name],
                inputs=inputs,
                outputs=[*audios, seeds_md, meta],
                api_name=name,
                concurrency_id="gpu",
                show_progress_on=[audios[0]],
                validator=_validator(prepare, [p.name for p in _own_parameters(prepare)], waiting, "prompt"),
            )
            # No ``cancels=``: cancelling the event would hide the run's own "Stopped at step N of M"
            # and free the queue slot while the GPU still works; the run's flag ends it within a step.
            stop_api = "stop" if name == "generate" else f"stop_{name}"
            stop_button.click(_stopper(demo, name), None, None, api_name=stop_api, queue=False)
        settings_fields = [prompt, lyrics, instrumental, duration, bpm, key, time_sig, language, seed, steps, guidance,
                           shift, takes, fmt, think, tabs]  # fmt: skip
        gen_record.upload(settings_from_file, gen_record, settings_fields, api_name="settings_from_file")
        for name, (_audios, _seeds, pick, sends, meta) in results.items():
            sends.pop("settings").click(
                settings_from_record, [meta, pick], settings_fields, api_name=f"settings_from_{name}"
            )
        for name, (audios, _seeds, pick, sends, _meta) in results.items():
            for tab, button in sends.items():
                button.click(
                    send_take, [pick, *audios], sources[tab], api_name=f"send_{name}_to_{tab}", api_visibility="private"
                ).then(lambda tab=tab: gr.Tabs(selected=tab), None, tabs, api_visibility="private")
    return demo


demo = build_ui()


def configure_queue(blocks: gr.Blocks) -> gr.Blocks:
    """GPU events run ``ACE_STUDIO_CONCURRENCY`` at a time (default one).

    The studio's validators turn requests away with a "busy, try again in a minute" once
    ``queue_size()`` are waiting; Gradio's own cap, twice that, only backs it up (its message is
    fixed and says nothing useful).
    """
    return blocks.queue(
        default_concurrency_limit=int(os.environ.get("ACE_STUDIO_CONCURRENCY", "1")),
        max_size=2 * queue_size(),
    )


def launch_options() -> dict[str, Any]:
    """What ``launch()`` needs besides the address: look, the one served folder, the upload cap."""
    import theme

    # Takes are served from the output folder as written: otherwise Gradio hashes and copies every
    # result into its cache before the page can fetch it. Files there never change once written
    # (they are renamed into place complete), which is what static paths require.
    gr.set_static_paths([str(modes.output_dir())])
    return {
        "theme": theme.studio_theme(),
        "css": theme.CSS,
        "js": theme.JS,
        "allowed_paths": [str(modes.output_dir())],
        "max_file_size": os.environ.get("ACE_STUDIO_MAX_UPLOAD", "200mb"),
    }


def main() -> None:
    configure_queue(demo)
    zerogpu.start_warmup()
    removed = modes.clean_outputs()
    if removed:
        print(f"Removed {removed} output files older than {modes.output_max_age_hours():g} h")
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **launch_options(),
    )


if __name__ == "__main__":
    main()
