"""Edit's first choice, *What to change*, and what it shows: a region (today's Edit, with upstream's
ways of repainting in the advanced settings), or a part added, taken out, or the song completed
(``parts``), each with only its own fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import gradio as gr

import base_model
import models
import parts
import preparing
import tooltips as tips
import waveform
import widgets

BUTTONS = {
    "region": "Regenerate region",
    "add": "Add the part",
    "extract": "Take the part out",
    "complete": "Complete the song",
}
STYLE_LABELS = {"region": "Style for the region", "add": "Style of the new part", "complete": "Style of the whole song"}
LYRICS_LABELS = {
    "region": "New words for the region",
    "add": "Words of the part",
    "complete": "Words of the sung parts",
}


class Choice(NamedTuple):
    """Edit's *What to change* and the fields of its parts."""

    change: gr.Radio
    note: gr.Markdown
    part: gr.Dropdown
    add_parts: gr.CheckboxGroup


def build() -> Choice:
    """The choice, the line beside it (how parts are made, or why this studio cannot make them), and
    the parts' own fields, hidden until chosen."""
    # Lenient: an API value the choices lack reaches the studio's own words (``parts``), on its field.
    change = widgets.lenient_radio(parts.CHOICES, label="What to change", info=tips.CHANGE, elem_id="edit-change")
    note = gr.Markdown(
        base_model.note(), visible=base_model.trouble() is not None, elem_id="edit-parts-note", elem_classes=["hint"]
    )
    tracks = [(parts.LABELS[t], t) for t in parts.SHOWN]
    part = widgets.lenient(gr.Dropdown(tracks, label="Which part", info=tips.PART, visible=False, elem_id="edit-part"))
    add_parts = widgets.lenient(
        gr.CheckboxGroup(
            tracks,
            label="Parts to add",
            info=tips.ADD_PARTS,
            visible=False,
            elem_id="edit-add",
        )
    )
    return Choice(change, note, part, add_parts)


def repaint_controls() -> tuple[gr.Dropdown, gr.Slider]:
    """Upstream's ``repaint_mode`` and ``repaint_strength``, its default first."""
    with gr.Row():
        # Lenient as the parts' fields are: Gradio's own check answered an API value the choices lack
        # with a bare 400 ("Value: Balanced is not in the list of choices"), not on its field.
        way = widgets.lenient(
            gr.Dropdown(
                list(preparing.REPAINT_MODES),
                label="Repaint mode",
                info=tips.REPAINT_MODE,
                elem_id="edit-repaint",
            )
        )
        amount = widgets.lenient_slider(
            0.0,
            1.0,
            step=0.05,
            label="Repaint strength",
            info=tips.REPAINT_STRENGTH,
            elem_id="edit-repaint-strength",
        )
    return way, amount


class Shown(NamedTuple):
    """The Edit tab's fields a choice shows, hides or sets (``showing``), after the parts' own."""

    region: Any  # the region's start and end (a row)
    hint: gr.Markdown
    prompt: gr.Textbox
    lyrics: gr.Textbox
    way: gr.Dropdown
    strength: gr.Slider
    steps: gr.Slider
    guidance: gr.Slider
    dcw: gr.Checkbox  # the default of the model that makes the change (the base's for a part: off)
    button: gr.Button
    music: gr.Column  # BPM, key, metre and the tempo buttons: auto for a part added or taken out
    lora_box: gr.Column  # a LoRA is refused with a part (made for the SFT model)
    lora: gr.File
    preset: gr.Dropdown
    region_examples: gr.Dataset
    part_examples: gr.Dataset


def showing(variant: models.Variant) -> Callable[..., tuple[Any, ...]]:
    """What the page shows for a choice and part: the note, the part, the parts to add, then ``Shown``'s
    fields in its order; steps, guidance and DCW are the defaults of the model that makes the change (the
    base for a part: guided and without DCW, though a turbo studio's own is neither). A part hides what it does not use: the region, its
    examples and its highlight (``waveform.FOR_CHOICE_JS``), repainting, tempo, key and metre where
    upstream sets them to auto (added or taken out), and the LoRA, emptied (it would be refused)."""
    base = models.VARIANTS[models.BASE_VARIANT]

    def show(change: str, part: str, adding: Any = None) -> tuple[Any, ...]:
        region = change == "region"
        sung = parts.sung(change, part, adding)
        style = STYLE_LABELS.get(change)
        words = change if sung else "region"
        return (
            # Said again at each choice: the base found missing, or failed to build, since the page was made.
            gr.update(value=base_model.note(), visible=base_model.trouble() is not None or not region),
            gr.update(visible=change in ("add", "extract")),
            gr.update(visible=change == "complete"),
            gr.update(visible=region),
            gr.update(visible=region),
            gr.update(visible=style is not None, label=style or STYLE_LABELS["region"]),
            gr.update(
                visible=region or sung,
                label=LYRICS_LABELS.get(words, LYRICS_LABELS["region"]),
                info=tips.PART_LYRICS if sung else tips.EDIT_LYRICS,
            ),
            gr.update(visible=region),
            gr.update(visible=region),
            gr.update(value=variant.steps if region else base.steps),
            gr.update(value=variant.guidance if region else base.guidance),
            gr.update(value=variant.dcw if region else base.dcw),
            gr.update(value=BUTTONS.get(change, BUTTONS["region"])),
            gr.update(visible=change in ("region", "complete")),
            gr.update(visible=region),
            gr.update() if region else gr.update(value=None),
            gr.update() if region else gr.update(value=""),
            gr.update(visible=region),
            gr.update(visible=not region),
        )

    return show


def wire(choice: Choice, variant: models.Variant, shown: Shown, wave: Any, start: Any, end: Any) -> None:
    """Each choice (and each part: a sung one takes words) shows its own fields, in the page's own
    queue-less events (``shown``: the components ``showing`` updates after the parts' own); the
    waveform and the region's numbers follow each other, and the choice, in the page alone."""
    outputs = [choice.note, choice.part, choice.add_parts, *shown]
    inputs = [choice.change, choice.part, choice.add_parts]
    for trigger in inputs:
        trigger.change(showing(variant), inputs, outputs, queue=False, api_visibility="private")
    # A drag on the waveform sets the numbers; typed numbers move the selection; a part (the whole
    # song) has none to show or drag.
    wave.input(None, [wave, start, end], [start, end], js=waveform.REGION_JS, api_visibility="private")
    for box in (start, end):
        box.input(None, [wave, start, end], wave, js=waveform.WITH_REGION_JS, api_visibility="private")
    for trigger in (choice.change, wave):
        trigger.change(None, [wave, choice.change], wave, js=waveform.FOR_CHOICE_JS, api_visibility="private")


def after_run(choice: Choice, run: Any) -> None:
    """After each press of Edit, however it ended: the note says what is now known of the base (a
    press that could not build it leaves why, not how parts are made). Gradio 6's page runs ``.then``
    listeners only after an event that ended without an error, and ``.failure`` ones after one that
    raised: both are needed for "however it ended"."""

    def said(change: str) -> dict[str, Any]:
        return gr.update(value=base_model.note(), visible=base_model.trouble() is not None or change != "region")

    for after in (run.then, run.failure):
        after(said, choice.change, choice.note, queue=False, api_visibility="private")
