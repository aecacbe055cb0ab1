"""*Morph this take* under Generate's result (``take_morph`` prepares it): the page's part.

A folded row beside *Variations of this take*: the new caption and lyrics, filled with the chosen take's
own words whenever the result or *Take to send* changes (what a morph changes from), its steps (the
take's, likewise), the seed of the noise each step adds, and the button. The click is GPU work, admitted
and queued as a song is; its take fills the same result column, so *Send to*, *Use these settings*, the
stems, Variations and the morph itself work on it, and the tab's Stop stops it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gradio as gr

import admission
import handlers
import parameters
import player
import results
import take_morph
import tooltips as tips
import widgets


class Row(NamedTuple):
    prompt: gr.Textbox
    lyrics: gr.Textbox
    seed: gr.Number
    button: gr.Button
    reserves: gr.Markdown
    steps: gr.Number  # the take's own, filled with its words (empty: the take's own too)
    # The API's own (``/morph``): never shown, never set by the page, so the take's own apply.
    guidance: gr.Number
    language: gr.Textbox


def build(prefix: str) -> Row:
    """The folded *Morph this take* row (hidden until a take exists, like the rest of the result's actions)."""
    named = {name: p.label for name, p in parameters.PARAMS.items()}  # as Generate's fields name them
    with gr.Accordion("Morph this take", open=False, elem_id=f"{prefix}-morph", elem_classes=["result-morph"]):
        gr.Markdown(tips.MORPH_TAKE, elem_classes=["hint"])
        # No first value: the API's default is None, the take's own words (``take_morph.prepare``).
        prompt = gr.Textbox(
            None, label="New style caption", info=tips.MORPH_TAKE_STYLE, lines=2, elem_id=f"{prefix}-morph-prompt"
        )
        lyrics = gr.Textbox(
            None, label="New lyrics", info=tips.MORPH_TAKE_LYRICS, lines=6, elem_id=f"{prefix}-morph-lyrics"
        )
        with gr.Row():
            steps = widgets.lenient_number(
                None,
                precision=0,
                label=named["inference_steps"],
                info=tips.MORPH_TAKE_STEPS,
                elem_id=f"{prefix}-morph-steps",
            )
            seed = widgets.lenient_number(
                -1, precision=0, label=named["seed"], info=tips.MORPH_TAKE_SEED, elem_id=f"{prefix}-morph-seed"
            )
        button = gr.Button("Morph this take", size="sm", elem_id=f"{prefix}-morph-button")
        reserves = widgets.reserves_line(f"{prefix}-morph")
        # Labelled: /gradio_api/info names a parameter by its field's label (it said "parameter_161").
        guidance = widgets.lenient_number(None, label=named["guidance_scale"], visible=False)
        language = gr.Textbox(None, label=named["vocal_language"], visible=False)
    return Row(prompt, lyrics, seed, button, reserves, steps, guidance, language)


# The endpoint's inputs, in ``take_morph.prepare``'s order.
NAMES = ["take", "record", "prompt", "lyrics", "seed", "inference_steps", "guidance_scale", "vocal_language"]
NAMES += ["reference_audio"]


def wire(demo: gr.Blocks, row: Row, result: widgets.Result, fields: dict[str, Any]) -> dict[str, Any]:
    """The row's caption, lyrics and steps follow the chosen take; the click (``/morph``: the take, its record, the
    new words, the seed, Generate's timbre reference for a take made with one) shows one take slot, then
    fills it and its player. Returns its run's event by its api name (Generate's Stop stops it too)."""
    words = [row.prompt, row.lyrics]
    for changed in (result.meta.change, result.pick.change):
        changed(
            take_morph.fields_of_take,
            [result.pick, result.meta],
            [*words, row.steps],
            queue=False,
            api_visibility="private",
        )
    one = f"() => ({results.SHOW_TAKES_JS})(1)"
    row.button.click(None, None, [*result.boxes, result.pick], js=one, api_visibility="private")
    inputs = [result.pick, result.meta, *words, row.seed, row.steps, row.guidance, row.language]
    inputs += [fields["reference_audio"]]
    run = row.button.click(
        handlers.morph,
        inputs=inputs,
        outputs=[*result.takes, result.seeds, result.meta],
        api_name="morph",
        concurrency_id="gpu",
        show_progress_on=[result.players[0]],
        validator=admission.validator(handlers.admission_check("morph"), NAMES, "prompt"),
    )
    run.success(None, [result.meta, *result.takes], result.players, js=player.FROM_RESULT_JS, api_visibility="private")
    widgets.wire_reserves(
        demo, "morph", row.reserves, dict(zip(NAMES, inputs, strict=True)), handlers.reserves("morph")
    )
    return {"morph": run}
