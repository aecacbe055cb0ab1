"""The Lyrics tab: the song idea in, the writer's lyrics streamed out, then handed to Generate.

Its form asks what ``lyrics.make_request`` takes (the idea up front; structure, length, creativity and
seed folded away); *Write lyrics* is the queued ``/lyrics`` with its Stop, *Use in Generate* the
public ``/use_in_generate``. ``tabs.lyrics_tab`` places it among the five tabs.
"""

from __future__ import annotations

import inspect
from typing import Any

import gradio as gr

import admission
import checks
import examples
import handlers
import lyrics
import tooltips as tips
import widgets


def build(demo: gr.Blocks, generate: dict[str, Any], tabs: gr.Tabs) -> None:
    """The tab and its events; ``generate`` is Generate's form by the preparer's names (what *Use in
    Generate* fills)."""
    with gr.Tab("Lyrics", id="lyrics"):
        with gr.Row():
            with gr.Column(scale=3):
                asked = _asked()
                button, stop = widgets.action_buttons("Write lyrics", "ly")
                reserves = widgets.reserves_line("ly")
            with gr.Column(scale=3):
                text = gr.Textbox("", label="Lyrics", lines=18, elem_id="ly-text")
                caption = gr.Textbox("", label="Suggested style caption", elem_id="ly-caption")
                used = gr.Number(
                    None,
                    precision=0,
                    label="Seed used",
                    info=tips.LYRICS_SEED_USED,
                    interactive=False,
                    elem_id="ly-seed-used",
                )
                use = gr.Button("Use in Generate", elem_id="ly-use")
        widgets.example_rows(
            [list(e) for e in examples.LYRICS],
            [asked["theme"], asked["genre"], asked["mood"], asked["vocal_language"]],
            label="Try one of these",
            api_name="load_example_lyrics",
        )
    _wire_writing(demo, asked, button, stop, reserves, [text, caption, used])
    g = generate
    # Public, as README documents it: in view_api() and callable by keyword (text, caption, vocal_language).
    use.click(
        handlers.use_in_generate,
        [text, caption, asked["vocal_language"]],
        [g["lyrics"], g["prompt"], g["instrumental"], g["vocal_language"], tabs],
        api_name="use_in_generate",
        queue=False,
    ).then(None, None, g["lyrics"], js=widgets.EDITABLE_JS, api_visibility="private")


def _asked() -> dict[str, Any]:
    """What the writer is asked, by ``lyrics.make_request``'s names: the idea and its language up
    front, the song's form, length, creativity and seed folded away."""
    languages = [(f"{name} ({code})", code) for code, name in checks.LANGUAGES.items()]
    theme = gr.Textbox("", label="What is the song about?", info=tips.LYRICS_THEME, lines=2, elem_id="ly-theme")
    with gr.Row():
        genre = gr.Textbox("", label="Genre / style", info=tips.LYRICS_GENRE, elem_id="ly-genre")
        mood = gr.Textbox("", label="Mood", info=tips.LYRICS_MOOD, elem_id="ly-mood")
    language = gr.Dropdown(
        languages,
        value="en",
        label="Language",
        info=tips.LYRICS_LANGUAGE,
        allow_custom_value=True,
        elem_id="ly-language",
    )
    with gr.Accordion("Advanced settings", open=False, elem_id="ly-advanced"):
        structure = gr.Dropdown(
            list(lyrics.STRUCTURES),
            value="verse-chorus",
            label="Structure",
            info=tips.LYRICS_STRUCTURE,
            allow_custom_value=True,
            elem_id="ly-structure",
        )
        custom = gr.Textbox("", label="Custom sections", info=tips.LYRICS_CUSTOM, elem_id="ly-custom")
        with gr.Row():
            length = widgets.lenient_radio(
                list(lyrics.LENGTHS),
                value="medium",
                label="Length",
                info=tips.LYRICS_LENGTH,
                elem_id="ly-length",
            )
            temperature = widgets.lenient_slider(
                0.0,
                1.5,
                value=0.8,
                step=0.05,
                label="Creativity",
                info=tips.LYRICS_TEMPERATURE,
                elem_id="ly-temperature",
            )
            seed = widgets.lenient(gr.Number(value=-1, precision=0, label="Seed", info=tips.SEED, elem_id="ly-seed"))
    return {
        "theme": theme,
        "genre": genre,
        "mood": mood,
        "vocal_language": language,
        "structure": structure,
        "temperature": temperature,
        "seed": seed,
        "custom_sections": custom,
        "length": length,
    }


def _wire_writing(
    demo: gr.Blocks, asked: dict[str, Any], button: gr.Button, stop: gr.Button, reserves: Any, written: list[Any]
) -> None:
    """*Write lyrics*: the lyrics box brought into view, the request checked at the door, the writer in
    the GPU queue (``written``: the lyrics, the caption, the seed used); Stop; what a press reserves."""
    button.click(None, None, None, js=widgets.scroll_js("ly-text"), api_visibility="private")
    names = list(inspect.signature(lyrics.make_request).parameters)
    button.click(
        handlers.write_lyrics,
        [asked[name] for name in names],
        written,
        api_name="lyrics",
        concurrency_id="gpu",
        show_progress_on=[written[0]],
        validator=admission.validator(lyrics.make_request, names, "theme"),
    )
    stop.click(handlers.stopper(demo, "lyrics"), None, None, api_name="stop_lyrics", queue=False)
    widgets.wire_reserves(demo, "lyrics", reserves, {"structure": asked["structure"], "length": asked["length"]})
