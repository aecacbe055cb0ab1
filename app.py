"""ACE Music Studio: the Gradio app, its event wiring and the ``@spaces.GPU`` entry points.

Importing this module builds the UI description only: no torch, diffusers or transformers, no
model. The pipeline is built on the first request (``backend.get_backend()``).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import models


def mirror_hub_cache(src: Path, dst: Path) -> int:
    """Mirror a read-only Hub cache into a writable one without copying weights.

    Blobs are hard-linked (a symlink where the link would cross file systems), snapshot entries
    stay relative symlinks so they resolve inside the mirror, and ``refs/`` files are copied (the
    Hub client rewrites them). Returns how many entries were created; a second run creates none.
    """
    import errno
    import shutil

    created = 0
    for repo in sorted(p for p in src.iterdir() if p.is_dir()) if src.is_dir() else []:
        for path in sorted(repo.rglob("*")):
            rel = path.relative_to(src)
            target = dst / rel
            if path.is_symlink():
                if not target.is_symlink():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.symlink_to(os.readlink(path))
                    created += 1
            elif path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif rel.parts[1] == "refs":
                if not target.exists() or target.read_bytes() != path.read_bytes():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
                    created += 1
            elif not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, target)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                        raise
                    target.symlink_to(path)
                created += 1
    return created


def _bootstrap() -> None:
    """Environment the rest of the studio relies on; runs before torch can be imported.

    On a Space the build-time cache (``preload_from_hub``) belongs to another user and is read
    only, so it is mirrored into a writable cache the Hub client may update.
    """
    models.enable_mps_fallback()
    if not os.environ.get("SPACE_ID"):
        return
    home = Path.home()
    rw = home / "hf-cache-rw"
    mirror_hub_cache(home / ".cache" / "huggingface" / "hub", rw / "hub")
    os.environ["HF_HOME"] = str(rw)
    os.environ["HF_HUB_CACHE"] = str(rw / "hub")


_bootstrap()

import gradio as gr  # noqa: E402

import backend  # noqa: E402
import examples as ex  # noqa: E402
import lyrics as lyricist  # noqa: E402
import modes  # noqa: E402
import tooltips as tips  # noqa: E402


def _lenient(component: Any) -> Any:
    """Let out-of-range or unknown API values through to the studio's own checks.

    Sliders and radios would otherwise answer "Value 900 is greater than maximum value 600.0";
    ``modes`` says what the value means and what to do instead.
    """
    component.preprocess = lambda payload: payload
    return component


def _spaces_gpu(duration: Callable[..., int]) -> Callable[[Callable], Callable]:
    """``spaces.GPU(duration=...)`` where the ``spaces`` package exists, else the identity."""
    try:
        import spaces
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def _gpu_duration(mode: str, params: dict[str, Any], progress: Any = None, multiplier: float = 1.0) -> int:
    return backend.estimate_duration(mode, params, multiplier)


@_spaces_gpu(duration=_gpu_duration)
def gpu_run(mode: str, params: dict[str, Any], progress: Any = None, multiplier: float = 1.0) -> dict[str, Any]:
    """The one GPU entry of the music modes; returns numpy audio and plain values."""
    return modes.run_on_backend(mode, params, progress)


def _lyrics_duration(params: dict[str, Any], multiplier: float = 1.0) -> int:
    return lyricist.estimate_duration(params, multiplier)


@_spaces_gpu(duration=_lyrics_duration)
def lyrics_gpu(params: dict[str, Any], multiplier: float = 1.0):
    """The GPU entry of the lyrics writer; yields the text written so far."""
    yield from lyricist.stream_lyrics(lyricist.Request(**params["request"]), params["language_name"])


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
    progress: gr.Progress = gr.Progress(),
):
    """Stream lyrics into the box, then replace them with the cleaned version and a caption."""
    try:
        req = lyricist.make_request(theme, genre, mood, vocal_language, structure, temperature, seed,
                                    custom_sections, length)  # fmt: skip
    except lyricist.LyricsError as exc:
        raise gr.Error(str(exc)) from None
    if not lyricist.is_loaded():
        progress(0, desc="Loading the lyrics model… the first time takes a minute or two")
    params = {
        "request": vars(req),
        "language_name": modes.LANGUAGES[req.vocal_language],
        "structure": req.structure,
        "length": req.length,
    }
    text = ""
    try:
        for text in lyrics_gpu(params):
            yield text, ""
    except models.ModelLoadError as exc:
        raise gr.Error(f"The lyrics model could not be loaded: {exc}", title="Model not available") from None
    except Exception as exc:
        # Whatever was streamed stays in the box: Gradio keeps the last yielded value on error.
        raise gr.Error(
            f"The writer stopped partway ({type(exc).__name__}). What it wrote so far is kept; try again."
        ) from None
    cleaned, caption = lyricist.clean(text, req.sections())
    if not cleaned:
        raise gr.Error("The writer returned no usable lyrics. Try again with another seed or more creativity.")
    yield cleaned, caption or lyricist.fallback_caption(req)


def use_in_generate(text: str, caption: str) -> tuple[Any, ...]:
    """Lyrics and caption into Generate, and switch to it."""
    if not str(text or "").strip():
        raise gr.Error("There are no lyrics to use yet — write some first.")
    return (
        gr.update(value=text, interactive=True),
        caption,
        False,
        gr.Tabs(selected="generate"),
    )


def _is_gpu_abort(exc: BaseException) -> bool:
    # ZeroGPU ends a call that outlives its declared duration with this message.
    return "GPU task aborted" in str(exc)


def _runner(mode: str, params: dict[str, Any], progress: Any) -> dict[str, Any]:
    """Run on the GPU; once more with twice the declared time if ZeroGPU cut the first try short."""
    try:
        return gpu_run(mode, params, progress)
    except Exception as exc:
        if not _is_gpu_abort(exc):
            raise
    gr.Info("Retrying with a longer GPU budget…")
    try:
        return gpu_run(mode, params, progress, multiplier=2.0)
    except Exception as exc:
        if not _is_gpu_abort(exc):
            raise
        raise gr.Error(
            "The GPU time ran out twice for this request. Try a shorter song or fewer steps or takes.",
            title="Out of GPU time",
        ) from None


def _token(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def show_takes(n: float) -> list[Any]:
    return [gr.update(visible=i < int(n or 1)) for i in range(modes.MAX_TAKES)]


def _seeds_text(record: dict[str, Any]) -> str:
    parts = [f"take {t['take']}: **{t['seed']}**" for t in record["takes"]]
    took = record["timings"].get("pipeline_s", 0) + record["timings"].get("model_load_s", 0)
    return f"Seeds — {', '.join(parts)} · made in {took:.1f} s on {device_label(record['model']['device'])}"


def stop(request: gr.Request = None) -> None:
    backend.request_cancel(_token(request))


def toggle_instrumental(on: bool) -> Any:
    if on:
        return gr.update(value=modes.INSTRUMENTAL_TAG, interactive=False)
    return gr.update(value="", interactive=True)


def _header() -> str:
    variant = models.active_variant()
    return f"# ACE Music Studio\nMake songs from words with **{variant.label}**. {tips.TAGLINE}"


def _on_zero_gpu() -> bool:
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "true", "yes")


def device_label(device: str | None = None) -> str:
    """What the music runs on, in the words a visitor knows."""
    if _on_zero_gpu():
        return "ZeroGPU"
    device = device or models.pick_device()
    return {"cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU (MPS)", "cpu": "CPU"}.get(device, device)


def studio_status() -> tuple[str, Any]:
    """The header's status line, and whether its timer should keep polling (until the model is ready)."""
    variant = models.active_variant()
    state = backend.load_state()
    if state["state"] == "ready":
        text = tips.STATUS_READY.format(
            label=variant.label, device=device_label(state["device"]), seconds=state["load_seconds"]
        )
    elif state["state"] == "loading":
        text = tips.STATUS_LOADING.format(
            label=variant.label, device=device_label(), elapsed=state["elapsed"], usual=backend.COLD_START_SECONDS
        )
    else:
        text = tips.STATUS_COLD.format(label=variant.label, device=device_label(), usual=backend.COLD_START_SECONDS)
    return text, gr.Timer(active=state["state"] != "ready")


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
    """A ``modes`` handler's endpoint parameters (the keyword-only plumbing left out)."""
    return [p for p in inspect.signature(fn).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]


def _endpoint(fn: Callable, takes: int = 1) -> Callable:
    """``fn`` (a ``modes`` handler) as a Gradio event function.

    The event function carries ``fn``'s own parameter names and defaults, which Gradio turns into
    the endpoint's keyword arguments, plus the request and progress Gradio injects. It returns
    ``takes`` audio slots (plain paths, ``None`` when unused), the seed line and the record.
    """
    own = _own_parameters(fn)
    extra = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request),
        inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()),
    ]
    signature = inspect.Signature(own + extra)

    def handler(*args: Any, **kwargs: Any):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        request, progress = values.pop("request"), values.pop("progress")
        paths, record = fn(**values, runner=_runner, progress=progress, cancel_token=_token(request))
        slots = [paths[i] if i < len(paths) else None for i in range(takes)]
        return (*slots, _seeds_text(record), record)

    handler.__signature__ = signature  # type: ignore[attr-defined]
    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler


generate = _endpoint(modes.generate, takes=modes.MAX_TAKES)
cover = _endpoint(modes.cover)
extend = _endpoint(modes.extend)
edit = _endpoint(modes.edit)


def queue_size() -> int:
    """Requests a visitor may wait behind (``ACE_STUDIO_QUEUE_SIZE``, default 32)."""
    return int(os.environ.get("ACE_STUDIO_QUEUE_SIZE", "32"))


class _Admitted(Exception):
    """Raised in place of the GPU run: every check before it passed."""


def _admit(mode: str, params: dict[str, Any], progress: Any) -> dict[str, Any]:
    raise _Admitted


def _folded(component: Any) -> bool:
    """True when ``component`` sits inside a (closed by default) accordion."""
    parent = getattr(component, "parent", None)
    while parent is not None:
        if isinstance(parent, gr.Accordion):
            return True
        parent = getattr(parent, "parent", None)
    return False


def _validator(
    check: Callable, names: list[str], inputs: list[Any], waiting: Callable[[], int], anchor: str
) -> Callable:
    """A Gradio ``validator=``: runs the handler's checks before the request takes a queue slot and
    marks the field at fault; a full queue answers with a busy message instead.

    ``check`` takes the endpoint's inputs (``names``, the components ``inputs``) and raises an
    error with a ``param`` attribute (or a plain ``gr.Error``, shown on ``anchor``, an always visible
    field). A field inside a closed accordion would show its message out of sight, so the message is
    repeated on ``anchor``. ``waiting`` counts the requests queued in the page's Blocks. The handler
    repeats the checks when it runs, so nothing depends on this alone.
    """
    folded = {name for name, component in zip(names, inputs, strict=True) if _folded(component)}

    def verdict(param: str | None = None, message: str = "") -> list[dict[str, Any]]:
        if param is not None and param not in names:
            param = anchor
        notes = {param: message} if param is not None else {}
        if param in folded:
            notes[anchor] = f"In Advanced settings: {message}"
        return [gr.validate(name not in notes, notes.get(name, "")) for name in names]

    def validate(*args: Any) -> list[dict[str, Any]]:
        queued = waiting()
        if queued >= queue_size():
            return verdict(anchor, tips.BUSY.format(waiting=queued))
        try:
            check(*args)
        except modes.InputError as exc:
            return verdict(exc.param, exc.message)
        except lyricist.LyricsError as exc:
            return verdict(exc.param, str(exc))
        except gr.Error as exc:
            return verdict(anchor, exc.message)
        return verdict()

    validate.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    return validate


def _dry_run(fn: Callable) -> Callable:
    """``fn``'s every check, stopping where the GPU work would start."""

    def check(*args: Any) -> None:
        with contextlib.suppress(_Admitted):
            fn(*args, runner=_admit)

    return check


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


def send_take(take: float, *paths: str | None) -> tuple[Any, ...]:
    """The chosen take of a result, for another tab's source."""
    index = max(1, min(len(paths), int(take or 1))) - 1
    if not paths[index]:
        raise gr.Error(f"There is no take {index + 1} yet — make one first.")
    return paths[index]


SEND_TARGETS = (("Cover", "cover"), ("Extend", "extend"), ("Edit", "edit"))


def _sampling_controls(variant: models.Variant, prefix: str):
    with gr.Row():
        seed = gr.Number(label="Seed", value=-1, precision=0, info=tips.SEED, elem_id=f"{prefix}-seed")
        steps = _lenient_slider(*modes.STEPS_RANGE, value=variant.steps, step=1, label="Steps", info=tips.STEPS)
    with gr.Row():
        guidance = _lenient_slider(
            *modes.GUIDANCE_RANGE, value=variant.guidance, step=0.5, label="Guidance", info=tips.GUIDANCE
        )
        fmt = _lenient_radio(modes.FORMATS, value="wav", label="Output format", info=tips.FORMAT)
    return seed, steps, guidance, fmt


def _lora_controls(prefix: str) -> tuple[gr.File, gr.Slider]:
    """A visitor's own LoRA for this request only."""
    with gr.Row():
        lora = gr.File(
            label="LoRA (optional)", file_types=[".safetensors"], type="filepath", height=120,
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
        pick = gr.Number(value=1, precision=0, label="Take to send", visible=n > 1, minimum=1, maximum=n)
        sends = {
            tab: gr.Button(f"Send to {label}", size="sm", elem_id=f"{prefix}-send-{tab}") for label, tab in SEND_TARGETS
        }
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


def _source_input(prefix: str, label: str = "Song"):
    src = gr.Audio(
        label=label, type="filepath", sources=["upload"], elem_id=f"{prefix}-src", elem_classes=["compact-drop"]
    )
    info = gr.Markdown("", elem_id=f"{prefix}-src-info")
    src.change(describe_source, src, info, api_name=f"{prefix}_describe", api_visibility="private", queue=False)
    return src


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
    with gr.Blocks(title="ACE Music Studio") as demo:
        gr.Markdown(_header(), elem_id="studio-header")
        status = gr.Markdown(tips.STATUS_CHECKING, elem_id="studio-status")
        status_timer = gr.Timer(3.0)
        with gr.Tabs(elem_id="studio-tabs") as tabs:
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column(scale=3):
                        prompt = gr.Textbox("", label="Style caption", info=tips.CAPTION, lines=2, elem_id="gen-prompt")
                        lyrics = gr.Textbox("", label="Lyrics", info=tips.LYRICS, lines=10, elem_id="gen-lyrics")
                        instrumental = gr.Checkbox(label="Instrumental", info=tips.INSTRUMENTAL, value=False)
                        duration = _lenient_slider(
                            modes.MIN_SECONDS, modes.MAX_SECONDS, value=30, step=1,
                            label="Duration (seconds)", info=tips.DURATION, elem_id="gen-duration",
                        )  # fmt: skip
                        with gr.Accordion("Advanced settings", open=False, elem_id="gen-advanced"):
                            with gr.Row():
                                bpm = gr.Number(
                                    label="BPM (0 = auto)", value=0, info=tips.BPM, precision=0, elem_id="gen-bpm"
                                )
                                key = gr.Dropdown(
                                    [modes.AUTO, *modes.KEYS], value=modes.AUTO, label="Key",
                                    info=tips.KEY, allow_custom_value=True,
                                )  # fmt: skip
                                time_sig = gr.Dropdown(
                                    [modes.AUTO, *modes.TIME_SIGNATURES], value=modes.AUTO,
                                    label="Time signature", info=tips.TIME_SIGNATURE, allow_custom_value=True,
                                )  # fmt: skip
                            language = gr.Dropdown(
                                languages, value="en", label="Vocal language", info=tips.LANGUAGE,
                                allow_custom_value=True,
                            )  # fmt: skip
                            seed, steps, guidance, fmt = _sampling_controls(variant, "gen")
                            with gr.Row():
                                shift = _lenient_slider(
                                    *modes.SHIFT_RANGE, value=variant.shift, step=0.5, label="Shift", info=tips.SHIFT
                                )
                                takes = _lenient_slider(
                                    1, modes.MAX_TAKES, value=1, step=1, label="Takes", info=tips.TAKES
                                )
                            gen_lora = _lora_controls("gen")
                        gen_btn, gen_stop = _action_buttons("Generate", "gen")
                        gr.Examples(
                            [list(e) for e in ex.GENERATE], [prompt, lyrics, duration, language],
                            label="Try one of these", example_labels=ex.GENERATE_LABELS,
                            api_name="load_example_generate",
                        )  # fmt: skip
                    with gr.Column(scale=2):
                        results["generate"] = _result_column("gen", modes.MAX_TAKES)

            with gr.Tab("Cover", id="cover"):
                with gr.Row():
                    with gr.Column(scale=3):
                        sources["cover"] = _source_input("cover")
                        cover_prompt = gr.Textbox("", label="New style", info=tips.COVER_CAPTION, lines=2)
                        cover_strength = _lenient_slider(
                            0.0, 1.0, value=0.6, step=0.05, label="Cover strength", info=tips.COVER_STRENGTH
                        )
                        with gr.Accordion("Advanced settings", open=False, elem_id="cover-advanced"):
                            cover_lyrics = gr.Textbox(
                                "", label="New lyrics (optional)", info=tips.COVER_LYRICS, lines=6
                            )
                            cover_ref = gr.Audio(
                                label="Timbre reference (optional)", type="filepath", sources=["upload"]
                            )
                            gr.Markdown(tips.COVER_REFERENCE)
                            cover_sampling = _sampling_controls(variant, "cover")
                            cover_lora = _lora_controls("cover")
                        cover_btn, cover_stop = _action_buttons("Make cover", "cover")
                        _demo_examples("cover", ex.COVER, [sources["cover"], cover_prompt, cover_strength])
                    with gr.Column(scale=2):
                        results["cover"] = _result_column("cover")

            with gr.Tab("Extend", id="extend"):
                with gr.Row():
                    with gr.Column(scale=3):
                        sources["extend"] = _source_input("extend")
                        extend_seconds = _lenient_slider(
                            *modes.EXTEND_RANGE, value=30, step=1, label="Seconds to add", info=tips.EXTEND_SECONDS,
                            elem_id="extend-seconds",
                        )  # fmt: skip
                        extend_prompt = gr.Textbox("", label="Style of the continuation", info=tips.EXTEND_CAPTION)
                        with gr.Accordion("Advanced settings", open=False, elem_id="extend-advanced"):
                            extend_lyrics = gr.Textbox("", label="Lyrics for the new part", info=tips.LYRICS, lines=6)
                            extend_sampling = _sampling_controls(variant, "extend")
                            extend_lora = _lora_controls("extend")
                        extend_btn, extend_stop = _action_buttons("Extend", "extend")
                        _demo_examples("extend", ex.EXTEND, [sources["extend"], extend_prompt, extend_seconds])
                    with gr.Column(scale=2):
                        results["extend"] = _result_column("extend")

            with gr.Tab("Edit", id="edit"):
                with gr.Row():
                    with gr.Column(scale=3):
                        sources["edit"] = _source_input("edit")
                        with gr.Row():
                            edit_start = gr.Number(value=0, label="Region start (s)", info=tips.REGION, minimum=0)
                            edit_end = gr.Number(value=10, label="Region end (s)", minimum=0)
                        edit_prompt = gr.Textbox("", label="Style for the region", info=tips.CAPTION)
                        edit_lyrics = gr.Textbox("", label="New words for the region", info=tips.EDIT_LYRICS, lines=4)
                        with gr.Accordion("Advanced settings", open=False, elem_id="edit-advanced"):
                            edit_sampling = _sampling_controls(variant, "edit")
                            edit_lora = _lora_controls("edit")
                        edit_btn, edit_stop = _action_buttons("Regenerate region", "edit")
                        _demo_examples(
                            "edit", ex.EDIT, [sources["edit"], edit_start, edit_end, edit_prompt, edit_lyrics]
                        )
                    with gr.Column(scale=2):
                        results["edit"] = _result_column("edit")

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
                                ly_seed = gr.Number(value=-1, precision=0, label="Seed", info=tips.SEED)
                        ly_btn = gr.Button(
                            "Write lyrics", variant="primary", size="lg", elem_id="ly-button",
                            elem_classes=["main-action"],
                        )  # fmt: skip
                        gr.Examples(
                            [list(e) for e in ex.LYRICS], [ly_theme, ly_genre, ly_mood, ly_language],
                            label="Try one of these", api_name="load_example_lyrics",
                        )  # fmt: skip
                    with gr.Column(scale=3):
                        ly_text = gr.Textbox("", label="Lyrics", lines=18, elem_id="ly-text")
                        ly_caption = gr.Textbox("", label="Suggested style caption", elem_id="ly-caption")
                        ly_use = gr.Button("Use in Generate", elem_id="ly-use")

        def waiting() -> int:
            return len(demo._queue)

        for trigger in (demo.load, status_timer.tick):
            trigger(studio_status, None, [status, status_timer], queue=False, api_visibility="private",
                    show_progress="hidden")  # fmt: skip

        ly_inputs = [ly_theme, ly_genre, ly_mood, ly_language, ly_structure, ly_temp, ly_seed, ly_custom, ly_length]
        ly_btn.click(
            write_lyrics,
            ly_inputs,
            [ly_text, ly_caption],
            api_name="lyrics",
            concurrency_id="gpu",
            validator=_validator(
                lyricist.make_request,
                list(inspect.signature(lyricist.make_request).parameters),
                ly_inputs,
                waiting,
                "theme",
            ),  # fmt: skip
        )
        ly_use.click(
            use_in_generate, [ly_text, ly_caption], [lyrics, prompt, instrumental, tabs], api_name="use_in_generate",
            api_visibility="private",
        )  # fmt: skip
        instrumental.input(
            toggle_instrumental, instrumental, lyrics, api_name="toggle_instrumental", api_visibility="private"
        )
        gen_takes = results["generate"][0]
        takes.change(show_takes, takes, gen_takes, api_name="show_takes", api_visibility="private")
        events = {
            "generate": (
                gen_btn, gen_stop, generate, modes.generate,
                [prompt, lyrics, duration, bpm, key, time_sig, language, seed, steps, guidance, shift, takes, fmt,
                 *gen_lora],
            ),
            "cover": (
                cover_btn, cover_stop, cover, modes.cover,
                [sources["cover"], cover_prompt, cover_lyrics, cover_strength, cover_ref, *cover_sampling,
                 *cover_lora],
            ),
            "extend": (
                extend_btn, extend_stop, extend, modes.extend,
                [sources["extend"], extend_prompt, extend_lyrics, extend_seconds, *extend_sampling, *extend_lora],
            ),
            "edit": (
                edit_btn, edit_stop, edit, modes.edit,
                [sources["edit"], edit_prompt, edit_lyrics, edit_start, edit_end, *edit_sampling, *edit_lora],
            ),
        }  # fmt: skip
        for name, (button, stop_button, fn, handler, inputs) in events.items():
            audios, seeds_md, _pick, _sends, meta = results[name]
            event = button.click(
                fn,
                inputs=inputs,
                outputs=[*audios, seeds_md, meta],
                api_name=name,
                concurrency_id="gpu",
                validator=_validator(
                    _dry_run(handler), [p.name for p in _own_parameters(handler)], inputs, waiting, "prompt"
                ),
            )
            stop_button.click(
                stop,
                None,
                None,
                cancels=[event],
                api_name=f"stop_{name}" if name != "generate" else "stop",
                queue=False,
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


def start_warmup() -> threading.Thread | None:
    """Build the pipeline in the background so the first visitor's GPU window is not spent loading.

    On by default on a Space (``ACE_STUDIO_WARMUP=0`` turns it off), off elsewhere (``=1`` turns it
    on). On ZeroGPU the build happens on the CPU; the move to the GPU happens inside the call.
    """
    default = "1" if os.environ.get("SPACE_ID") else "0"
    if os.environ.get("ACE_STUDIO_WARMUP", default) != "1":
        return None

    def warm() -> None:
        try:
            backend.get_backend()
        except Exception as exc:  # the first request will report it to the visitor
            print(f"Warm-up failed, the model will load on first use: {exc}")

    thread = threading.Thread(target=warm, name="ace-studio-warmup", daemon=True)
    thread.start()
    return thread


def launch_options() -> dict[str, Any]:
    """What ``launch()`` needs besides the address: look, the one served folder, the upload cap."""
    import theme

    return {
        "theme": theme.studio_theme(),
        "css": theme.CSS,
        "allowed_paths": [str(modes.output_dir())],
        "max_file_size": os.environ.get("ACE_STUDIO_MAX_UPLOAD", "200mb"),
    }


def main() -> None:
    configure_queue(demo)
    start_warmup()
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
