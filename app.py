"""ACE Music Studio: the Gradio app, its event wiring and the ``@spaces.GPU`` entry points.

Importing this module builds the UI description only: no torch, diffusers or transformers, no
model. The pipeline is built on the first request (``backend.get_backend()``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import models


def _bootstrap() -> None:
    """Environment the rest of the studio relies on; runs before torch can be imported."""
    models.enable_mps_fallback()


_bootstrap()

import gradio as gr  # noqa: E402

import backend  # noqa: E402
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


def _runner(mode: str, params: dict[str, Any], progress: Any) -> dict[str, Any]:
    return gpu_run(mode, params, progress)


def _token(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def _takes_values(paths: list[str]) -> list[str | None]:
    # Plain paths, not updates: an API caller gets the file itself as each element.
    return [paths[i] if i < len(paths) else None for i in range(modes.MAX_TAKES)]


def show_takes(n: float) -> list[Any]:
    return [gr.update(visible=i < int(n or 1)) for i in range(modes.MAX_TAKES)]


def _seeds_text(record: dict[str, Any]) -> str:
    parts = [f"take {t['take']}: **{t['seed']}**" for t in record["takes"]]
    took = record["timings"].get("pipeline_s", 0) + record["timings"].get("model_load_s", 0)
    return f"Seeds — {', '.join(parts)} · made in {took:.1f} s on {record['model']['device']}"


def generate(
    prompt: str,
    lyrics: str,
    audio_duration: float,
    bpm: float,
    key_scale: str,
    time_signature: str,
    vocal_language: str,
    seed: float,
    inference_steps: float,
    guidance_scale: float,
    shift: float,
    batch_size: float,
    audio_format: str,
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
):
    paths, record = modes.generate(
        prompt=prompt,
        lyrics=lyrics,
        audio_duration=audio_duration,
        bpm=bpm,
        key_scale=key_scale,
        time_signature=time_signature,
        vocal_language=vocal_language,
        seed=seed,
        inference_steps=inference_steps,
        guidance_scale=guidance_scale,
        shift=shift,
        batch_size=batch_size,
        audio_format=audio_format,
        runner=_runner,
        progress=progress,
        cancel_token=_token(request),
    )
    return (*_takes_values(paths), _seeds_text(record), record)


def stop(request: gr.Request = None) -> None:
    backend.request_cancel(_token(request))


def toggle_instrumental(on: bool) -> Any:
    if on:
        return gr.update(value=modes.INSTRUMENTAL_TAG, interactive=False)
    return gr.update(value="", interactive=True)


def _header() -> str:
    variant = models.active_variant()
    where = "ZeroGPU" if os.environ.get("SPACE_ID") else "this machine"
    return (
        "# ACE Music Studio\n"
        f"Make songs from words with **{variant.label}** on {where}. "
        "Describe a style, add lyrics, press Generate."
    )


def _takes_column(prefix: str) -> list[gr.Audio]:
    return [
        gr.Audio(
            label=f"Take {i + 1}",
            type="filepath",
            interactive=False,
            visible=i == 0,
            buttons=["download"],
            elem_id=f"{prefix}-take-{i + 1}",
        )
        for i in range(modes.MAX_TAKES)
    ]


def _lenient_slider(*args: Any, **kwargs: Any) -> gr.Slider:
    return _lenient(gr.Slider(*args, **kwargs))


def _lenient_radio(*args: Any, **kwargs: Any) -> gr.Radio:
    return _lenient(gr.Radio(*args, **kwargs))


def build_ui() -> gr.Blocks:
    variant = models.active_variant()
    languages = [(f"{name} ({code})", code) for code, name in modes.LANGUAGES.items()]
    with gr.Blocks(title="ACE Music Studio") as demo:
        gr.Markdown(_header(), elem_id="studio-header")
        with gr.Tabs(elem_id="studio-tabs"), gr.Tab("Generate", id="generate"), gr.Row():
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
                        bpm = gr.Number(label="BPM (0 = auto)", value=0, info=tips.BPM, precision=0)
                        key = gr.Dropdown(
                            [modes.AUTO, *modes.KEYS], value=modes.AUTO, label="Key",
                            info=tips.KEY, allow_custom_value=True,
                        )  # fmt: skip
                        time_sig = gr.Dropdown(
                            [modes.AUTO, *modes.TIME_SIGNATURES], value=modes.AUTO,
                            label="Time signature", info=tips.TIME_SIGNATURE, allow_custom_value=True,
                        )  # fmt: skip
                    with gr.Row():
                        language = gr.Dropdown(
                            languages, value="en", label="Vocal language", info=tips.LANGUAGE,
                            allow_custom_value=True,
                        )  # fmt: skip
                        seed = gr.Number(label="Seed", value=-1, precision=0, info=tips.SEED)
                    with gr.Row():
                        steps = _lenient_slider(
                            *modes.STEPS_RANGE, value=variant.steps, step=1, label="Steps", info=tips.STEPS
                        )
                        guidance = _lenient_slider(
                            *modes.GUIDANCE_RANGE, value=variant.guidance, step=0.5,
                            label="Guidance", info=tips.GUIDANCE,
                        )  # fmt: skip
                        shift = _lenient_slider(
                            *modes.SHIFT_RANGE, value=variant.shift, step=0.5, label="Shift", info=tips.SHIFT
                        )
                    with gr.Row():
                        takes = _lenient_slider(1, modes.MAX_TAKES, value=1, step=1, label="Takes", info=tips.TAKES)
                        fmt = _lenient_radio(modes.FORMATS, value="wav", label="Output format", info=tips.FORMAT)
                with gr.Row():
                    gen_btn = gr.Button("Generate", variant="primary", elem_id="gen-button")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="gen-stop")
            with gr.Column(scale=2):
                gen_takes = _takes_column("gen")
                gen_seeds = gr.Markdown(tips.RESULT_EMPTY, elem_id="gen-seeds")
                gen_meta = gr.JSON(label="Metadata", open=False)
        instrumental.change(
            toggle_instrumental, instrumental, lyrics, api_name="toggle_instrumental", api_visibility="private"
        )
        takes.change(show_takes, takes, gen_takes, api_name="show_takes", api_visibility="private")
        gen_event = gen_btn.click(
            generate,
            inputs=[prompt, lyrics, duration, bpm, key, time_sig, language, seed, steps, guidance, shift, takes, fmt],
            outputs=[*gen_takes, gen_seeds, gen_meta],
            api_name="generate",
            concurrency_id="gpu",
        )
        stop_btn.click(stop, None, None, cancels=[gen_event], api_name="stop", queue=False)
    return demo


demo = build_ui()


def configure_queue(blocks: gr.Blocks) -> gr.Blocks:
    """GPU events run ``ACE_STUDIO_CONCURRENCY`` at a time (default one)."""
    return blocks.queue(default_concurrency_limit=int(os.environ.get("ACE_STUDIO_CONCURRENCY", "1")))


def main() -> None:
    configure_queue(demo)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        allowed_paths=[str(modes.output_dir())],
    )


if __name__ == "__main__":
    main()
