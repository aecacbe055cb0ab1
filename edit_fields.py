"""Edit's fields on the page: its first choice, *What to change*, and what it shows: a region (with
upstream's ways of repainting in the advanced settings), or a part added, taken out, or the song
completed (``part_tasks`` prepares them), each with only its own fields; and the lyric lines picker
(*Choose by the words*: its lines and sections; ``edit_lines`` reads them on the CPU)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import gradio as gr

import audio
import base_model
import edit_lines
import models
import parameters
import part_tasks
import preparing
import tooltips as tips
import uploads
import waveform
import widgets
from checks import InputError

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
    # Lenient: an API value the choices lack reaches the studio's validation error (``part_tasks``), on its field.
    change = widgets.lenient_radio(part_tasks.CHOICES, label="What to change", info=tips.CHANGE, elem_id="edit-change")
    note = gr.Markdown(
        base_model.note(), visible=base_model.trouble() is not None, elem_id="edit-parts-note", elem_classes=["hint"]
    )
    tracks = [(part_tasks.LABELS[t], t) for t in part_tasks.SHOWN]
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


def repaint_mode() -> gr.Dropdown:
    """Upstream's ``repaint_mode``, its default first (its strength beside it: ``form_fields.placed``)."""
    # Lenient as the parts' fields are: Gradio's own check answered an API value the choices lack
    # with a bare 400 ("Value: Balanced is not in the list of choices"), not on its field.
    return widgets.lenient(
        gr.Dropdown(list(preparing.REPAINT_MODES), label="Repaint mode", info=tips.REPAINT_MODE, elem_id="edit-repaint")
    )


# Edit's declared parameters whose default is the model's (``parameters.Param.model_default``), by the preparer's names.
MODEL_DEFAULT_FIELDS = tuple(p.name for p in parameters.declared("edit") if p.model_default)


class Shown(NamedTuple):
    """The Edit tab's fields a choice shows, hides or sets (``showing``), after the parts' own."""

    region: Any  # the region's start and end (a row)
    hint: gr.Markdown
    prompt: gr.Textbox
    lyrics: gr.Textbox
    way: gr.Dropdown
    strength: gr.Slider
    # The declared parameters with a model default (``MODEL_DEFAULT_FIELDS``: steps, guidance, DCW), each set to
    # the default of the model that makes the change (the base's for a part: DCW off).
    inference_steps: gr.Slider
    guidance_scale: gr.Slider
    dcw: gr.Checkbox
    button: gr.Button
    music: gr.Column  # BPM, key, metre and the tempo buttons: auto for a part added or taken out
    lora_box: gr.Column  # a LoRA is refused with a part (made for the SFT model)
    lora: gr.File
    preset: gr.Dropdown
    region_examples: gr.Dataset
    part_examples: gr.Dataset
    lines_column: gr.Column  # the lyric lines picker (``Picker``): a region's alone
    lines: gr.CheckboxGroup  # emptied for a part (it would be refused)
    bars: gr.Textbox  # a region's alone, emptied for a part as the lines are


# Shown's fields that are a parameter Edit's changes do not all use (``parameters.USED_BY``), by the parameter's name.
SHOWN_PARAMS = {
    "way": "repaint_mode",
    "strength": "repaint_strength",
    "prompt": "prompt",
    "lyrics": "lyrics",
    "lora": "lora",
    "preset": "lora_preset",
}
# The adapters' files (``parameters.ADAPTER_SLOTS``): set back to no file (an upload's field takes no empty text).
_FILES = tuple(file for file, _, _ in parameters.ADAPTER_SLOTS)


def reset(change: str, sings: bool = True) -> dict[str, Any]:
    """The fields ``change`` does not use (``parameters.USED_BY``, the parts' own aside: ``_part_field``; the lyrics
    too where the part made sings nothing: ``sings`` False, ``part_tasks.check_unsung``), each with its first value
    on the page (the preparer's default; an empty box for None, no file for an adapter's), as the page sets it back:
    the page sends every field, and a request with one the change does not use is refused."""
    unused = parameters.USED_BY["edit"]
    return {
        name: None
        if name in _FILES
        else ""
        if parameters.PARAMS[name].default is None
        else parameters.PARAMS[name].default
        for name, used in unused.items()
        if (change not in used or (name == "lyrics" and not sings)) and name not in part_tasks.USED_BY
    }


def showing(
    variant: models.Variant, resets: tuple[str, ...] = (), files: tuple[str, ...] = ()
) -> Callable[..., tuple[Any, ...]]:
    """What the page shows for a choice and part: the note, the part, the parts to add, then ``Shown``'s
    fields in its order; the declared parameters with a model default (``MODEL_DEFAULT_FIELDS``: steps, guidance,
    DCW) are the defaults of the model that makes the change (the base for a part: guided and without DCW,
    though a turbo studio's defaults are neither). A part hides what it does not use: the region, its examples and its highlight
    (``waveform.FOR_CHOICE_JS``), repainting, tempo, key and metre where upstream sets them to auto (added or
    taken out), and every adapter slot, emptied (it would be refused); a field the change does not use is set back to its
    default (``reset``): those of ``Shown`` in their updates, then one update for each of ``resets`` (names), last.
    ``files``: the adapters' files (names) whose values the page sends after the choice, part and parts: an empty one
    is left as it is (a file set, even to none, fires its check's event, which joins the uploads' queue)."""
    base = models.VARIANTS[models.BASE_VARIANT]

    def show(change: str, part: str, adding: Any = None, *held: Any) -> tuple[Any, ...]:
        region = change == "region"
        sung = part_tasks.sung(change, part, adding)
        style = STYLE_LABELS.get(change)
        lyrics_label = change if sung else "region"
        makes = variant if region else base
        fields = {
            "prompt": gr.update(visible=style is not None, label=style or STYLE_LABELS["region"]),
            "lyrics": gr.update(
                visible=region or sung,
                label=LYRICS_LABELS.get(lyrics_label, LYRICS_LABELS["region"]),
                info=tips.PART_LYRICS if sung else tips.EDIT_LYRICS,
            ),
            **{
                name: gr.update(value=getattr(makes, parameters.PARAMS[name].model_default))
                for name in MODEL_DEFAULT_FIELDS
            },
            "button": gr.update(value=BUTTONS.get(change, BUTTONS["region"])),
            "music": gr.update(visible=change in ("region", "complete")),
            "lora": gr.update(),  # emptied with every adapter slot's fields for a part (``reset``)
            "preset": gr.update(),
            "part_examples": gr.update(visible=not region),
            "lines": gr.update() if region else gr.update(value=[]),
            "bars": gr.update(visible=True) if region else gr.update(visible=False, value=""),
        }
        back = reset(change, region or sung)
        for name, value in zip(files, held, strict=False):
            if not value:
                back.pop(name, None)
        for field, name in SHOWN_PARAMS.items():  # shown as above (else a region's alone), emptied where unused
            fields[field] = {
                **fields.get(field, gr.update(visible=region)),
                **({"value": back[name]} if name in back else {}),
            }
        return (
            # Said again at each choice: the base found missing, or failed to build, since the page was made.
            gr.update(value=base_model.note(), visible=base_model.trouble() is not None or not region),
            # A part's field the change does not use is set back to its default, as the request would refuse it.
            *(_part_field(name, change) for name in part_tasks.USED_BY),
            # The rest a region's alone (the region, its hint, repainting, the LoRA, its examples, the lines).
            *(fields.get(name) or gr.update(visible=region) for name in Shown._fields),
            *(gr.update(value=back[name]) if name in back else gr.update() for name in resets),
        )

    return show


def _part_field(name: str, change: str) -> Any:
    """A part's field (``part_tasks.USED_BY``) shown where ``change`` uses it, else hidden at its default."""
    if change in part_tasks.USED_BY[name]:
        return gr.update(visible=True)
    default = parameters.PARAMS[name].default
    return gr.update(visible=False, value=default if isinstance(default, str) else list(default))


def wire(
    choice: Choice,
    variant: models.Variant,
    shown: Shown,
    wave: Any,
    start: Any,
    end: Any,
    lines: Any,
    fields: Any = None,
) -> None:
    """Each choice (and each part: a sung one takes lyrics) shows its own fields, in the page's own
    queue-less events (``shown``: the components ``showing`` updates after the parts' own); the
    waveform and the region's numbers follow each other, and the choice, in the page alone; ``lines``:
    the ``Picker`` and the song it reads (``wire_lines``); ``fields``: the tab's fields by the preparer's names, each
    a change does not use set back to its default as the change is chosen (``reset``)."""
    wire_lines(*lines, wave, start, end, shown.lyrics)
    # The tab's other fields a change may not use (``reset``), by the preparer's names (``fields``: the tab's).
    some_unused = {name for change in part_tasks.CHANGES for name in reset(change)} - set(SHOWN_PARAMS.values())
    resets = {name: field for name, field in (fields or {}).items() if name in some_unused}
    outputs = [choice.note, choice.part, choice.add_parts, *shown, *resets.values()]
    triggers = [choice.change, choice.part, choice.add_parts]
    files = tuple(name for name in _FILES if name in (fields or {}))  # each emptied only where it holds a file
    inputs = [*triggers, *((fields or {})[name] for name in files)]
    for trigger in triggers:
        trigger.change(showing(variant, tuple(resets), files), inputs, outputs, queue=False, api_visibility="private")
    # A drag on the waveform sets the numbers; typed numbers move the selection; a part (the whole
    # song) has none to show or drag.
    wave.input(None, [wave, start, end], [start, end], js=waveform.REGION_JS, api_visibility="private")
    for box in (start, end):
        box.input(None, [wave, start, end], wave, js=waveform.WITH_REGION_JS, api_visibility="private")
    for trigger in (choice.change, wave):
        trigger.change(None, [wave, choice.change], wave, js=waveform.FOR_CHOICE_JS, api_visibility="private")
    wire_bars(shown.bars, wave, start, end, shown.lines)


# A region of one's own (a drag, a section block, typed seconds): the typed bars emptied, in the page.
EMPTY_JS = "() => ({__type__: 'update', value: ''})"


def wire_bars(bars: gr.Textbox, wave: Any, start: Any, end: Any, lines: gr.CheckboxGroup) -> None:
    """Typed bars set the region's numbers and highlight from the waveform's map, in the page, as a section
    block chosen does (``waveform.WITH_BARS_JS``), and untick the lines; a region set another way empties
    them (the request would refuse bars beside a region that is not theirs). On every change of the box:
    Gradio's ``input`` of a text box is a key pressed, so bars pasted (or a key that types nothing,
    Backspace) left the region as it was."""
    bars.change(None, [wave, bars, start, end], [wave, start, end], js=waveform.WITH_BARS_JS, api_visibility="private")
    bars.change(None, None, lines, js=UNTICK_JS, api_visibility="private")
    for typed in (wave, start, end):
        typed.input(None, None, bars, js=EMPTY_JS, api_visibility="private")


def wire_bars_added(bars: gr.Textbox, wave: Any, seconds: Any, music: tuple[Any, Any, Any]) -> None:
    """Extend's bars to add set the seconds to add and the seam, in the page, as the request will count them
    (``waveform.WITH_BARS_ADDED_JS``): at each change of the box, and again as the song's map, tempo or metre
    (``music``: BPM, key, metre) arrive; seconds set by hand empty the bars, as a region of one's own does Edit's."""
    bpm, _, meter = music
    for trigger in (bars, wave, bpm, meter):
        trigger.change(
            None,
            [wave, bars, seconds, bpm, meter],
            [seconds, wave],
            js=waveform.WITH_BARS_ADDED_JS,
            api_visibility="private",
        )
    seconds.input(None, None, bars, js=EMPTY_JS, api_visibility="private")


def where_fields() -> tuple[gr.Radio, gr.Textbox]:
    """Extend's *Where* (at the end, before the start, from a point: the page's alone) and the ``where`` field the
    request sends, shown only for a point (at the end needs no field): "end" or "start" as *Where* says, or the point
    typed or set on the waveform. Lenient: a number from the API reaches ``extend_where``'s validation error."""
    choices = [("At the end", "end"), ("Before the start", "start"), ("From a point", "point")]
    place = gr.Radio(choices, value="end", label="Where", info=tips.EXTEND_PLACE, elem_id="extend-place")
    where = gr.Textbox(
        "end",
        label="From the point",
        info=tips.EXTEND_POINT,
        placeholder=tips.EXTEND_POINT_PLACEHOLDER,
        visible=False,
        elem_id="extend-where",
    )
    return place, widgets.lenient(where)


def wire_where(place: gr.Radio, where: gr.Textbox, wave: Any) -> None:
    """*Where* sets the field (``waveform.PLACE_JS``), the field set from elsewhere sets *Where*
    (``WHERE_PLACE_JS``), a click after *Extend from here* fills the field (``POINT_JS``), and the field or a new
    song puts the point on the waveform with the bar lines (``WITH_WHERE_JS``): in the page alone."""
    place.change(None, [place, where, wave], where, js=waveform.PLACE_JS, api_visibility="private")
    where.change(None, [where, place], [place, where], js=waveform.WHERE_PLACE_JS, api_visibility="private")
    wave.input(None, [wave], where, js=waveform.POINT_JS, api_visibility="private")
    for trigger in (where.change, wave.change):
        trigger(None, [wave, where], wave, js=waveform.WITH_WHERE_JS, api_visibility="private")


def after_run(choice: Choice, run: Any) -> None:
    """After each click of Edit, however it ended: the note says what is now known of the base (a
    request that could not build it leaves why, not how parts are made). Gradio 6's page runs ``.then``
    listeners only after an event that ended without an error, and ``.failure`` ones after one that
    raised: both are needed for "however it ended"."""

    def said(change: str) -> dict[str, Any]:
        return gr.update(value=base_model.note(), visible=base_model.trouble() is not None or change != "region")

    for after in (run.then, run.failure):
        after(said, choice.change, choice.note, queue=False, api_visibility="private")


# A drag or a typed number: the lines unticked, in the page (an update: a bare [] reads as no outputs).
UNTICK_JS = "() => ({__type__: 'update', value: []})"


class Picker(NamedTuple):
    """The lyric lines picker (``edit_lines``): shown for a song whose lyric times the studio knows."""

    column: gr.Column
    box: gr.Accordion
    section: gr.Dropdown
    lines: gr.CheckboxGroup
    note: gr.Markdown

    @property
    def fields(self) -> dict[str, Any]:
        """Its fields by ``/edit``'s parameter names."""
        return {"lines": self.lines, "section": self.section}


def bars_box(tab: str) -> gr.Textbox:
    """Edit's bars to change, or Extend's whole bars to add (``edit_bars``); empty: by seconds. Lenient: a
    list or a number from the API reaches ``edit_bars``' validation error."""
    label, info = ("Bars", tips.EDIT_BARS) if tab == "edit" else ("Bars to add", tips.EXTEND_BARS)
    return widgets.lenient(
        gr.Textbox("", label=label, info=info, placeholder="9-16" if tab == "edit" else "8", elem_id=f"{tab}-bars")
    )


def bar_one_box(tab: str) -> gr.Textbox:
    """Where bar 1 starts, in seconds (``first_downbeat``): filled by *Bar 1 here* and a click on the waveform, or
    typed; empty: the bars as the studio hears them. A text box: a number box sends 0 for empty, and 0 is a song
    whose bar 1 is its first sample. Lenient: a number from the API reaches ``edit_bars.bar_one_at``'s validation error."""
    box = gr.Textbox(
        "", label="Bar 1 at (s)", info=tips.BAR_ONE, placeholder=tips.BAR_ONE_PLACEHOLDER, elem_id=f"{tab}-bar-one"
    )
    return widgets.lenient(box)


def wire_bar_one(first: Any, wave: Any, music: tuple[Any, Any, Any], edit: tuple[Any, Any, Any] | None = None) -> None:
    """The musician's bar 1 counts the waveform's bars from it, in the page (``waveform.BAR_ONE_JS``, as the request
    counts them): a click after *Bar 1 here* (the widget's ``submit``: a drag's ``input`` would empty Edit's bars)
    fills the field, and the field, the BPM or metre changed count again; Edit's typed bars (``edit``: the bars,
    the region's start and end) then set the region from them."""
    bpm, _, meter = music
    inputs, outputs = [wave, first, bpm, meter, *(edit or ())], [wave, first, *(edit or ())[1:]]
    for trigger in (wave.submit, wave.change, first.change, bpm.change, meter.change):
        trigger(None, inputs, outputs, js=waveform.BAR_ONE_JS, api_visibility="private")


def lines_picker() -> Picker:
    """The song's sung lines to tick, and its sections (each ticks its lines), folded and hidden until a
    song whose lyric times are known arrives. Lenient: an API value reaches ``edit_lines``' validation error."""
    with gr.Column() as column:
        with gr.Accordion("Choose by the words", open=False, visible=False, elem_id="edit-words") as box:
            section = widgets.lenient(
                gr.Dropdown(
                    [],
                    value=None,
                    label="A whole section",
                    info=tips.EDIT_SECTION,
                    allow_custom_value=True,
                    elem_id="edit-section",
                )
            )
            lines = widgets.lenient(
                gr.CheckboxGroup([], value=[], label="Lines", info=tips.EDIT_LINES, elem_id="edit-lines")
            )
            note = gr.Markdown("", elem_id="edit-words-note", elem_classes=["hint"])
    return Picker(column, box, section, lines, note)


def lines_of(src_audio: Any) -> tuple[Any, Any, Any, Any]:
    """The picker for a song: its lines (each with its section where one starts) and sections, or hidden."""
    sung = edit_lines.known(src_audio) if src_audio else None
    if sung is None:
        return gr.update(visible=False), gr.update(choices=[], value=None), gr.update(choices=[], value=[]), ""
    shown, seen = [], 0
    for line in sung.lines:
        head = f"[{line.section}] " if line.section_number != seen and line.section else ""
        seen = line.section_number
        shown.append((head + edit_lines.label(line), line.number))
    sections = [(f"{i} · {name}", str(i)) for i, name in enumerate(sung.sections, 1)]
    return gr.update(visible=True), gr.update(choices=sections, value=None), gr.update(choices=shown, value=[]), ""


def section_ticked(src_audio: Any, section: Any) -> tuple[Any, Any]:
    """A section chosen: its lines ticked (the region follows them), the section's field emptied again."""
    if section is None or str(section).strip() == "":
        return gr.skip(), gr.skip()
    try:
        first, last = edit_lines.choose(edit_lines.known(src_audio), None, section) or (0, -1)
    except InputError as exc:
        return gr.skip(), gr.update(value=None, info=str(exc))
    return list(range(first, last + 1)), gr.update(value=None, info=tips.EDIT_SECTION)


def region_of(src_audio: Any, lines: Any) -> tuple[Any, ...]:
    """Lines ticked: the region they span as the numbers, and their lyrics to rewrite (or, refused, why,
    with the region left as it was); the page then sets the numbers on the waveform (``wire_lines``)."""
    if not lines:
        return gr.skip(), gr.skip(), gr.skip(), ""
    try:
        chosen = edit_lines.resolve(src_audio, lines, None, "")
        start, end = chosen.span(uploads.load(src_audio)) if chosen is not None else (None, None)
    except (InputError, audio.AudioError) as exc:
        return gr.skip(), gr.skip(), gr.skip(), f"⚠️ {exc}"
    if chosen is None:
        return gr.skip(), gr.skip(), gr.skip(), ""
    lyrics = edit_lines.block(chosen.sung_lines, chosen.first, chosen.last)
    note = tips.EDIT_LINES_NOTE.format(which=edit_lines.which(chosen.first, chosen.last), start=start, end=end)
    return start, end, lyrics, note


def wire_lines(picker: Picker, source: Any, wave: Any, start: Any, end: Any, lyrics: Any) -> None:
    """The picker filled as a song arrives; a section ticks its lines; ticked lines set the region, the
    waveform's selection and the lyrics; a drag or a typed number (a region of one's own) unticks them.
    The selection is set in the page on the waveform as it is then, not sent back whole: a state sent
    from the server was the one at the tick, and the song's map read meanwhile would have gone with it."""
    outputs = [picker.box, picker.section, picker.lines, picker.note]
    source.change(lines_of, source, outputs, queue=False, api_visibility="private")
    picker.section.change(
        section_ticked, [source, picker.section], [picker.lines, picker.section], queue=False, api_visibility="private"
    )
    picker.lines.change(
        region_of,
        [source, picker.lines],
        [start, end, lyrics, picker.note],
        queue=False,
        api_visibility="private",
    ).then(None, [wave, start, end], wave, js=waveform.WITH_REGION_JS, api_visibility="private")
    for typed in (wave, start, end):
        typed.input(None, None, picker.lines, js=UNTICK_JS, api_visibility="private")
