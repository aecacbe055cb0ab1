"""A music tab's fields, in the groups the tabs lay out: sampling, the sung language, Think and its
switches, a plan brought back, a timbre reference, LoRA, the finish (loudness, fades), and an audio
tab's song upload with its *Describe*, BPM, key and metre (``song_settings``: Cover's, Extend's and
Edit's folded settings).

Each helper returns the components it made, wiring only what lives inside it (the ½ and 2× tempo
buttons, a LoRA's check on arrival); the bricks beneath (lenient fields, file inputs) are ``widgets``'.
An uploaded song is read here too (``READERS``): one event per upload reads it once (``uploads.load``),
shows its length and waveform first, then its tempo, key, beats per bar and loudness, filling the
tab's BPM, key and time signature, in its own small queue (``concurrency_id="uploads"``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import gradio as gr

import admission
import analysis
import audio
import checks
import describe
import edit_bars
import error_messages
import handlers
import lora_presets
import messages
import models
import parameters
import plan_format
import planner
import tooltips as tips
import uploads
import waveform
import widgets


def sampling_controls(mode: str, prefix: str, variant: models.Variant, **after: Callable[[], Any]) -> dict[str, Any]:
    """The sampling ``mode`` takes (seed, steps, guidance; Generate's shift) and the output format, each made from
    its declaration (``declared``), then the fields ``after`` builds (Generate's takes), two a row, by the
    preparer's names."""
    builders: dict[str, Callable[[], Any]] = {
        p.name: functools.partial(field, p, prefix, variant) for p in _of(mode, "sampling")
    }
    pending, made = list({**builders, **after}.items()), {}
    for two in (pending[i : i + 2] for i in range(0, len(pending), 2)):
        with gr.Row():
            made |= {name: build() for name, build in two}
    return made


def caption(prefix: str, label: str) -> gr.Textbox:
    """A style caption (Generate's, Edit's region's): what it describes, an example in the empty box."""
    return gr.Textbox(
        "", label=label, info=tips.CAPTION, placeholder=tips.CAPTION_EXAMPLE, max_lines=6, elem_id=f"{prefix}-prompt"
    )


def think_controls() -> tuple[gr.Checkbox, gr.Checkbox]:
    """Generate's Think switch and, beside it, upstream's *Length: auto* (the planner chooses it)."""
    ready = planner.enabled()
    with gr.Row():
        think = gr.Checkbox(
            label="Think",
            value=ready,
            interactive=ready,
            info=tips.THINK if ready else tips.THINK_OFF,
            elem_id="gen-think",
        )
        auto = gr.Checkbox(label="Length: auto", interactive=ready, info=tips.THINK_LENGTH, elem_id="gen-auto-length")
    return think, auto


def rewrite_caption_switch() -> gr.Checkbox:
    """Upstream's ``use_cot_caption``, on as upstream: off keeps the visitor's caption for the music
    model while the plan still sets BPM, key and metre. Folded away: few change it."""
    return gr.Checkbox(
        label="Let Think rewrite the caption",
        interactive=planner.enabled(),
        info=tips.THINK_CAPTION,
        elem_id="gen-think-caption",
    )


def plan_box() -> gr.Textbox:
    """A plan brought back from a take ("Use these settings"): with it, Think skips its thinking and
    the take comes out again from its seed; empty, Think plans anew."""
    box = gr.Textbox("", label="Plan (from a take)", info=tips.PLAN, lines=2, max_lines=6, elem_id="gen-plan")
    # The API takes back what it returns: a take's ``planner`` dict arrives as JSON text (a text box
    # would make it Python's repr), so the field's length limit and ``checks.check_plan`` read it.
    box.preprocess = lambda payload: (
        json.dumps(payload, ensure_ascii=False)
        if isinstance(payload, dict)
        else None
        if payload is None
        else str(payload)
    )
    box.api_info = lambda: {"anyOf": [{"type": "string"}, {"type": "object"}]}
    return box


def reference_input(prefix: str) -> gr.Audio:
    """An optional voice or instrument whose timbre the take borrows (the pipeline's ``reference_audio``)."""
    reference = widgets.any_file(
        gr.Audio(
            label="Timbre reference (optional)",
            type="filepath",
            sources=["upload"],
            elem_id=f"{prefix}-reference",
            elem_classes=["compact-drop"],
        )
    )
    gr.Markdown(tips.REFERENCE, elem_classes=["hint"])
    return reference


def lora_controls(prefix: str, variant: str | None = None, slot: int = 1) -> tuple[gr.File, gr.Slider, gr.Dropdown]:
    """A visitor's own adapter (a LoRA or a LoKr file), or a preset from the Hub, for this request only: the
    fields of adapter ``slot`` (``parameters.ADAPTER_SLOTS``; the first's ids are ``#<prefix>-lora`` …, another's
    ``#<prefix>-lora-<slot>`` …)."""
    offered = lora_presets.offered(variant or models.active_variant().name)
    file, strength, _ = parameters.ADAPTER_SLOTS[slot - 1]
    tag = "lora" if slot == 1 else f"lora-{slot}"
    # Hidden where none is installed for this model; unknown names still reach the studio's check.
    preset = gr.Dropdown(
        [(tips.LORA_PRESET_NONE, ""), *[(p.label, p.name) for p in offered]],
        value="",
        label="LoRA preset" if slot == 1 else tips.ADAPTER_PRESET.format(n=slot),
        info=tips.LORA_PRESET,
        allow_custom_value=True,
        visible=bool(offered),
        elem_id=f"{prefix}-{tag}-preset",
    )
    with gr.Row():
        # No ``file_types``: Gradio would refuse another suffix with a bare "400 Bad Request"; the
        # studio's own check says what a LoRA file must be.
        lora = widgets.any_file(
            gr.File(
                label="LoRA (optional)" if slot == 1 else tips.ADAPTER_FILE.format(n=slot),
                type="filepath",
                height=120,
                elem_id=f"{prefix}-{tag}",
                elem_classes=["compact-drop"],
            ),
            example="style.safetensors",
        )
        scale = placed(strength, prefix)
    note = gr.Markdown(tips.LORA, elem_classes=["hint"], elem_id=f"{prefix}-{tag}-note")
    # Checked on arrival, as every upload is: a file that is no LoRA is named now, not at the click.
    lora.change(
        handlers.describe_lora,
        lora,
        note,
        api_name=f"{prefix}_{file}_check",
        api_visibility="private",
        concurrency_id=admission.UPLOADS,
        concurrency_limit=uploads.decodes_at_once(),
        show_progress="minimal",
    )
    return lora, scale, preset


class AdapterRows(NamedTuple):
    """The adapters after the first (``parameters.MORE_ADAPTERS``): their fields by the preparers' names, their
    rows (hidden until asked for, one at a time), *Add another adapter*, and how many rows show (the first's too)."""

    fields: dict[str, Any]
    rows: tuple[gr.Column, ...]
    more: gr.Button
    shown: gr.State

    @property
    def outputs(self) -> list[Any]:
        """What ``rows_shown`` fills, in its order."""
        return [self.shown, *self.rows, self.more]


def adapter_rows(prefix: str, variant: str | None = None) -> AdapterRows:
    """Rows for adapters 2 and 3 under the first, each shown by *Add another adapter* (``rows_shown``)."""
    fields, rows = {}, []
    for slot in range(2, len(parameters.ADAPTER_SLOTS) + 1):
        with gr.Column(visible=False, elem_id=f"{prefix}-adapter-{slot}") as row:
            # (file, strength, preset), as the slot names them
            fields |= dict(zip(parameters.ADAPTER_SLOTS[slot - 1], lora_controls(prefix, variant, slot), strict=True))
        rows.append(row)
    more = gr.Button(tips.ADD_ADAPTER, size="sm", elem_id=f"{prefix}-add-adapter")
    shown = gr.State(1)
    made = AdapterRows(fields, tuple(rows), more, shown)
    more.click(lambda count: rows_shown(count, count + 1), shown, made.outputs, queue=False, api_visibility="private")
    return made


def rows_shown(count: Any, wanted: int) -> tuple[Any, ...]:
    """The adapter rows shown: ``wanted`` of them (never fewer than ``count``, those already shown, nor more than
    there are slots), then whether another may be added; ``AdapterRows.outputs``' order."""
    most = len(parameters.ADAPTER_SLOTS)
    rows = max(1, min(most, max(int(count or 1), wanted)))
    return (rows, *(gr.update(visible=slot <= rows) for slot in range(2, most + 1)), gr.update(visible=rows < most))


def declared(mode: str, prefix: str, variant: models.Variant, group: str = "") -> dict[str, Any]:
    """The declared parameters ``mode`` takes (``parameters.DECLARED``) in ``group`` ("finish": the fades, beside
    the loudness; "sampling": ``sampling_controls``'), each a field made from its declaration (``field``)."""
    return {p.name: field(p, prefix, variant) for p in _of(mode, group)}


def _of(mode: str, group: str) -> list[parameters.Param]:
    return [p for p in parameters.DECLARED if mode in p.modes and p.group == group]


def placed(name: str, prefix: str, variant: models.Variant | None = None, info: str | None = None) -> Any:
    """The field of a declared parameter its tab places among its own (group "placed": the song's key, metre and
    language, Cover's strengths, the guidance interval, the LoRA's strength, Edit's repaint strength), made from its declaration (``field``)."""
    made = field(parameters.PARAMS[name], prefix, variant)
    if info is not None:  # a shorter help where the tab has less room for it (Generate's tempo row)
        made.info = info
    return made


def field(p: parameters.Param, prefix: str, variant: models.Variant | None) -> Any:
    """A declared parameter's field: a slider over its span (a number box where ``field`` says so, a switch
    where it has no span), or its choices in a dropdown that takes any text for its check to read ("A min";
    a radio where ``field`` says so), its label and help, its id ``#<prefix>-<page or name>``; its first value is the
    preparer's default (``widgets.start_at_defaults``), or ``variant``'s own where the model decides it (DCW:
    on for turbo only; steps, guidance and shift)."""
    label = p.shown or (f"{p.label} ({p.unit.strip()})" if p.unit else p.label)
    words = {"label": label, "info": p.help, "elem_id": f"{prefix}-{(p.page or p.name).replace('_', '-')}"}
    if p.model_default:
        words["value"] = getattr(variant, p.model_default)
    if p.field == "number":
        return widgets.lenient_number(precision=0, **words)
    if p.choices:
        choices = list(p.choices)
        return (
            widgets.lenient_radio(choices, **words)
            if p.field == "radio"
            else gr.Dropdown(choices, **words, allow_custom_value=True)
        )
    return widgets.lenient_slider(*p.span, step=p.step, **words) if p.span else gr.Checkbox(**words)


def finish_controls(mode: str, prefix: str, variant: models.Variant, loudness: bool = True) -> dict[str, Any]:
    """A take's loudness (a new take's; Edit and Extend keep the source's) and its fades, by the preparer's names."""
    with gr.Row():
        level = (
            {
                "loudness": widgets.lenient(
                    gr.Dropdown(
                        checks.LOUDNESS_CHOICES,
                        label="Loudness",
                        info=tips.LOUDNESS,
                        allow_custom_value=True,
                        elem_id=f"{prefix}-loudness",
                    )
                )
            }
            if loudness
            else {}
        )
        return level | declared(mode, prefix, variant, "finish")


def song_input(prefix: str, wave: bool = False) -> tuple[gr.Audio, gr.Markdown, gr.HTML | None]:
    """The song upload, the line under it (filled by ``musical_controls``' analysis) and, where the
    tab works on a stretch of the song, its waveform (``waveform.py``): a region to drag in Edit,
    the seam in Extend."""
    src = widgets.any_file(
        gr.Audio(
            label="Song", type="filepath", sources=["upload"], elem_id=f"{prefix}-src", elem_classes=["compact-drop"]
        )
    )
    info = gr.Markdown("", label="The song as heard", show_label=False, elem_id=f"{prefix}-src-info")
    if not wave:
        return src, info, None
    wave = gr.HTML(
        "",
        label="Waveform",
        html_template=waveform.TEMPLATE,
        js_on_load=waveform.JS,
        elem_id=f"{prefix}-wave",
        elem_classes=["song-wave"],
        padding=False,
    )
    return src, info, wave


def describe_button(prefix: str) -> tuple[gr.Button, gr.Markdown, gr.Markdown]:
    """*Describe* under the song, the note beneath it that says what the planner wrote, and (on a
    ZeroGPU Space) what a click reserves."""
    button = gr.Button("Describe", size="sm", interactive=describe.available(), elem_id=f"{prefix}-describe")
    note = gr.Markdown(
        tips.DESCRIBE if describe.available() else error_messages.DESCRIBE_OFF,
        label="What Describe wrote",
        show_label=False,
        elem_classes=["hint"],
        elem_id=f"{prefix}-describe-note",
    )
    return button, note, widgets.reserves_line(f"{prefix}-describe")


def musical_fields(prefix: str, bpm_info: str) -> tuple[Any, Any, Any]:
    """BPM, key and time signature fields, "auto" by default."""
    with gr.Row():
        return bpm_field(prefix, bpm_info), placed("key_scale", prefix), placed("time_signature", prefix)


def bpm_field(prefix: str, info: str) -> Any:
    return widgets.lenient_number(label="BPM (0 = auto)", info=info, precision=0, elem_id=f"{prefix}-bpm")


def loop_bars(prefix: str) -> Any:
    """Generate's *Loop*: off, or a loop of 2 to 32 bars (``loops``)."""
    choices = [("Off", 0), *((f"{bars} bars", bars) for bars in checks.LOOP_BARS)]
    field = widgets.lenient(
        gr.Dropdown(choices, label="Loop", info=tips.TEMPO_ROW["loop_bars"], elem_id=f"{prefix}-loop")
    )
    # Gradio calls a dropdown's choices text whatever they are: the API and an agent are told whole numbers.
    field.api_info = lambda: {"type": "integer", "enum": [value for _, value in choices]}
    return field


def musical_controls(prefix: str) -> tuple[Any, Any, Any]:
    """An audio tab's BPM, key and time signature, prefilled from the upload's analysis (``form_fields``)."""
    bpm, key, meter = musical_fields(prefix, tips.BPM_DETECTED)
    with gr.Row():
        half = gr.Button("½ tempo", size="sm", elem_id=f"{prefix}-half-tempo")
        double = gr.Button("2× tempo", size="sm", elem_id=f"{prefix}-double-tempo")
    half.click(lambda b: scale_tempo(b, 0.5), bpm, bpm, api_visibility="private", queue=False)
    double.click(lambda b: scale_tempo(b, 2.0), bpm, bpm, api_visibility="private", queue=False)
    return bpm, key, meter


class SongSettings(NamedTuple):
    """An audio tab's folded settings."""

    language: gr.Dropdown
    music: tuple[Any, Any, Any]  # BPM, key, time signature
    reference: gr.Audio | None
    lora: tuple[gr.File, gr.Slider]
    lora_preset: gr.Dropdown
    boxes: tuple[gr.Column, gr.Column]  # the musical fields (tempo buttons too) and the LoRA's, each as one
    # The declared parameters' fields (``declared``: the finish's and the sampling's too, the output format
    # beside them), by the preparer's names.
    declared: dict[str, Any]
    adapters: AdapterRows  # the second and third adapter's rows, in the LoRA's box


def song_settings(mode: str, variant: models.Variant, reference: bool = False) -> SongSettings:
    """Cover's, Extend's and Edit's advanced settings (BPM, key and metre filled in from the upload); each
    field's page id is ``#<mode>-…``, the tab's id being its mode's name."""
    prefix = mode
    language = placed("vocal_language", prefix)
    with gr.Column(elem_id=f"{prefix}-music") as music_box:
        music = musical_controls(prefix)
    timbre = reference_input(prefix) if reference else None
    sampling = sampling_controls(mode, prefix, variant)
    with gr.Column(elem_id=f"{prefix}-lora-box") as lora_box:
        lora, preset = _lora_split(lora_controls(prefix, variant.name))
        adapters = adapter_rows(prefix, variant.name)
    # Cover makes a whole new take; Extend and Edit keep the source, whose loudness rules.
    finish = finish_controls(mode, prefix, variant, loudness=reference)
    boxes = (music_box, lora_box)
    return SongSettings(
        language, music, timbre, lora, preset, boxes, sampling | finish | declared(mode, prefix, variant), adapters
    )


def cover_start_slider() -> gr.Slider:
    """Cover's ``cover_noise_strength``: 0 (upstream's API default) starts from noise."""
    return placed("cover_noise_strength", "cover")


def morph_controls(unused: dict[str, Any]) -> tuple[gr.Checkbox, gr.Textbox, gr.Textbox]:
    """Cover's *Morph* (upstream's flow-edit overlay, off as upstream has it) and the song as it is
    now, shown while it is on; ``unused``: the fields the morph does not use (by the preparer's names:
    the cover's strength, its start, DCW), locked while it is on, their help saying why, the strength and
    the start at their defaults (a morph refuses others)."""
    switch = gr.Checkbox(label="Morph the song (flow edit)", info=tips.MORPH, elem_id="cover-morph")
    with gr.Group(visible=False, elem_id="cover-morph-source") as source:
        style = gr.Textbox("", label="The song's own style", info=tips.MORPH_STYLE, elem_id="cover-morph-prompt")
        words_box = gr.Textbox(
            "", label="The song's own words (optional)", info=tips.MORPH_LYRICS, lines=3, elem_id="cover-morph-lyrics"
        )
    own = {name: field.info for name, field in unused.items()}
    # On, those a morph refuses (``parameters.USED_BY``: the strength, the start, DCW) are set back to their default
    # too: DCW to the model's own, its field's first value (``parameters.given`` reads it as none asked).
    back = {
        n: unused[n].value if parameters.PARAMS[n].model_default else parameters.PARAMS[n].default
        for n, used in parameters.USED_BY["cover"].items()
        if "morph" not in used
    }

    def show(on: Any) -> tuple[Any, ...]:
        locked = [
            gr.update(
                interactive=not on,
                info=tips.MORPH_UNUSED[n] if on else own[n],
                **({"value": back[n]} if on and n in back else {}),
            )
            for n in unused
        ]
        # Off, the song's own words are emptied as they are hidden: a cover without Morph refuses them
        # (``parameters.USED_BY``), and the page sends every field.
        words = [gr.update() if on else gr.update(value="") for _ in (style, words_box)]
        return (gr.update(visible=bool(on)), *locked, *words)

    outputs = [source, *unused.values(), style, words_box]
    switch.change(show, switch, outputs, queue=False, api_visibility="private")
    for name, default in back.items():  # one set while Morph is on (a demo's example) goes back to it, in the page
        field = unused[name]
        field.change(
            None, [switch, field], field, js=HELD_JS.format(default=json.dumps(default)), api_visibility="private"
        )
    return switch, style, words_box


# A field a morph refuses, held at its default while Morph is on (``morph_controls``).
HELD_JS = "(on, value) => (on ? {default} : value)"


def _lora_split(controls: tuple[gr.File, gr.Slider, gr.Dropdown]) -> tuple[tuple[gr.File, gr.Slider], gr.Dropdown]:
    # The preset is the preparers' last parameter; the file and strength sit where they always did.
    return controls[:2], controls[2]


# ---------------------------------------------------------------- an uploaded song's reading: the line under it, its waveform, tempo and key


UNCHANGED = gr.update()


def describe_source(path: str | None) -> str:
    """A line under an upload: its length, or why it cannot be used (read from its header)."""
    if not path:
        return ""
    try:
        header = audio.probe(path)
    except audio.AudioError as exc:
        return f"⚠️ {exc}"
    minutes, secs = divmod(header.frames / header.rate, 60)
    return messages.SOURCE_SAID.format(minutes=int(minutes), seconds=secs, rate=header.rate, channels=header.channels)


def read_song(path: str | None, wave: dict[str, Any] | None = None, first: Any = None) -> Iterator[tuple[Any, ...]]:
    """``(line, bpm, key, time signature, waveform)`` as they become known: the length and the
    waveform first, then the analysis. ``wave`` holds the waveform's extras (Extend's seconds to
    add, Edit's region) or is None where the tab has no waveform; ``first``: where the musician set bar 1, refused
    as Edit and Extend refuse it (``edit_bars.bar_one_at``: ``InputError`` on ``first_downbeat``) once the song is
    shown with its map as heard."""
    song = yield from _reading(path, wave, first)
    if song is not None:
        edit_bars.bar_one_at(first, song)


def _reading(path: str | None, wave: dict[str, Any] | None, first: Any) -> Iterator[tuple[Any, ...]]:
    """``read_song``'s answers; returns the song decoded (None where it was refused)."""
    text = describe_source(path)
    if not path:
        yield text, UNCHANGED, UNCHANGED, UNCHANGED, "" if wave is not None else UNCHANGED
        return None
    if text.startswith("⚠️"):  # refused from its header: the waveform's place says why too
        why = waveform.refused(text.removeprefix("⚠️ "))
        yield text, UNCHANGED, UNCHANGED, UNCHANGED, why if wave is not None else UNCHANGED
        return None
    try:
        song = uploads.load(path)
    except audio.AudioError as exc:
        why = waveform.refused(str(exc))
        yield f"{text}\n\n⚠️ {exc}", UNCHANGED, UNCHANGED, UNCHANGED, why if wave is not None else UNCHANGED
        return None
    drawn = waveform.draw(song, **wave) if wave is not None else UNCHANGED
    yield text, UNCHANGED, UNCHANGED, UNCHANGED, drawn
    drawn = waveform.keeping(drawn) if wave is not None else UNCHANGED  # what the visitor set meanwhile stays
    try:
        found = analysis.analyze(path)
    except uploads.Busy as exc:
        yield f"{text}\n\n⚠️ {exc}", UNCHANGED, UNCHANGED, UNCHANGED, drawn
        return song
    except Exception:  # an analysis that fails must not cost the upload
        yield messages.NOT_MEASURED.format(line=text), UNCHANGED, UNCHANGED, UNCHANGED, drawn
        return song
    # No steady beat: BPM and metre go (back) to auto, and the line says why.
    line = f"{text} · {analysis.describe(found).split(' · ', 1)[1]}"
    musical = (0 if found.bpm is None else int(round(found.bpm)), found.key)
    musical += (checks.AUTO if found.beats_per_bar is None else str(found.beats_per_bar),)
    yield line, *musical, drawn
    # Then its bars (counted for Edit and Extend by the bar) and, on a waveform, its sections over them (a
    # sung take's from its words, where no beat is heard too: each one a region to choose); the tempo, key
    # and metre said again: an API caller reads the last answer.
    heard = edit_bars.heard(path, song, musical[0] or None)  # read at the BPM the form now shows
    counted, at = edit_bars.for_reading(heard, song, first, musical[0] or None)
    said = _mapped_line(text, found, counted, at, wave is not None)
    if counted is not None and (said or counted.sections):
        # Drawn with the bars as heard where they are counted from bar 1, and the beats per bar as heard.
        mapped = dataclasses.replace(counted, beats_per_bar=heard.beats_per_bar)
        as_heard = heard.bars if at is not None else None
        marked = drawn if wave is None else waveform.keeping(waveform.draw(song, **wave, mapped=mapped, heard=as_heard))
        yield said or line, *musical, marked
    return song


def _mapped_line(text: str, found: analysis.Analysis, counted: Any, at: float | None, on_wave: bool) -> str:
    """The upload's line with its map (``edit_bars.map_line``, where no beat is heard too on a waveform, where Bar 1
    can be set): one tempo, the one its bars follow, in place of the analysis's; "" where the map says nothing."""
    said = edit_bars.map_line(counted, at) if counted is not None and (counted.bars or on_wave) else ""
    return f"{text} · {analysis.describe(found, tempo=False).split(' · ', 1)[1]} · {said}" if said else ""


def read_bar_one(src_audio: str | None, first_downbeat: Any = None, bpm: Any = None) -> Any:
    """The upload's line once the musician sets Bar 1 (a click on the waveform, or typed) or empties it: its map
    counted from there, as ``read_song``'s last answer says it, at the BPM the form shows (a Bar 1 that is no time
    in the song: the map as heard; the request says why on the field). Unchanged where the song is not read."""
    if not src_audio:
        return UNCHANGED
    try:
        song, found = uploads.load(src_audio), analysis.analyze(src_audio)
        tempo = bpm or (None if found.bpm is None else int(round(found.bpm)))  # 0: auto, the reading's
        counted, at = edit_bars.for_reading(edit_bars.heard(src_audio, song, tempo), song, first_downbeat, tempo)
    except Exception:  # unreadable or busy: the reading's own line says why
        return UNCHANGED
    return _mapped_line(describe_source(src_audio), found, counted, at, True) or UNCHANGED


def read_cover_song(src_audio: str | None) -> Iterator[tuple[Any, ...]]:
    """Cover's upload: its line, tempo, key and metre."""
    for line, bpm, key, meter, _ in read_song(src_audio):
        yield line, bpm, key, meter


def read_extend_song(
    src_audio: str | None, extend_seconds: Any = 30, first_downbeat: float | str | None = None
) -> Iterator[tuple[Any, ...]]:
    """Extend's upload: as Cover's, with the waveform marking the seam (its bars from ``first_downbeat``, where set)."""
    yield from read_song(src_audio, {"extra": extend_seconds}, first_downbeat)


def read_edit_song(
    src_audio: str | None,
    repainting_start: Any = 0,
    repainting_end: Any = 10,
    change: Any = "region",
    first_downbeat: float | str | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Edit's upload: as Cover's, with the waveform showing the region to drag (none for a part). The tempo, key and
    metre read fill their fields only where ``change`` uses them (``parameters.USED_BY``): a part's page has set
    them back to their defaults, and a reading that lands after the change was chosen (a demo row sets both at
    once) must not fill a field the click would then be refused for."""
    region = {"start": repainting_start, "end": repainting_end, "select": change == "region"}
    used = parameters.USED_BY["edit"]
    key = change or "region"
    kept = [key in used[name] for name in ("bpm", "key_scale", "time_signature")]
    for line, *music, wave in read_song(src_audio, region, first_downbeat):
        yield line, *(value if use else UNCHANGED for value, use in zip(music, kept, strict=True)), wave


READERS = {"cover": read_cover_song, "extend": read_extend_song, "edit": read_edit_song}


def scale_tempo(bpm: Any, factor: float) -> Any:
    """Half or double the BPM field: beat trackers often find twice or half the felt tempo."""
    try:
        value = float(bpm)
    except (TypeError, ValueError, OverflowError):
        return gr.update()
    if not 0 < value < float("inf"):
        return gr.update()
    return int(round(min(plan_format.BPM_RANGE[1], max(plan_format.BPM_RANGE[0], value * factor))))
