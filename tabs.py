"""Cover, Extend and Edit, each declared by one function that reads like the tab itself, its events beside
it, and what every music tab shares (Generate's is ``generate_page``'s, the Lyrics tab's ``lyrics_page``'s;
the fields are ``form_fields``', the bricks ``widgets``').

A music tab's function lays out its form and result column and returns a ``MusicTab`` (its endpoint's
inputs in the preparer's order, its buttons, its result). ``wire_music`` gives every music tab the same
events (scroll to the result, the queued run with its validator, Stop); ``wire_across`` connects the tabs
(Send to, Use these settings)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

import admission
import checks
import describe
import edit_fields
import event_errors
import examples
import form_fields
import handlers
import idea_row
import lyrics_page
import modes
import morph_row
import player
import records
import results
import runs
import tooltips as tips
import uploads
import variation_row
import waveform
import widgets


@dataclass
class MusicTab:
    """One music tab as the wiring needs it."""

    name: str  # the mode, and the endpoint's api_name
    # Its form: a component for each of ``modes.PREPARE[name]``'s parameters, by that name (the API's),
    # and Generate's page-only fields (``generate_page.PAGE_ONLY``).
    fields: dict[str, Any]
    form: widgets.Form  # its main button, Stop and result
    source: gr.Audio | None = None
    # The upload's reading (``form_fields``): its inputs (the song first) and outputs (the line under it,
    # BPM, key, metre and, where there is one, the waveform).
    reading: tuple[list[Any], list[Any]] | None = None
    # What "Send to" this tab fills (``results.send_to``): the song first, then the style, the region.
    receives: list[Any] = field(default_factory=list)
    # *Describe*: its button, its note, what it reserves, and the fields it fills (``describe.FORM``'s order).
    describe: tuple[gr.Button, gr.Markdown, gr.Markdown, list[Any]] | None = None
    # *Write it* (Generate): the idea, its button, its note and what it reserves.
    idea: tuple[gr.Textbox, gr.Button, gr.Markdown, gr.Markdown] | None = None
    variation: variation_row.Row | None = None  # *Variations* beneath the result
    morph: morph_row.Row | None = None  # *Morph this take* beside it (Generate)
    after: Callable[[Any], None] | None = None  # given the click's event: what follows it (Edit's note)
    adapters: form_fields.AdapterRows | None = None  # Generate's rows for adapters 2 and 3 (*Use these settings*)

    def __post_init__(self) -> None:
        widgets.start_at_defaults(self.fields, modes.PREPARE[self.name])

    @property
    def inputs(self) -> dict[str, Any]:
        """The main button's inputs: the form's components by the preparer's parameters, in their order."""
        return {name: self.fields[name] for name in inspect.signature(modes.PREPARE[self.name]).parameters}


def demo_examples(tab: str, rows: list[tuple], inputs: list[Any]) -> gr.Examples:
    """An audio tab's examples: the synthesized demo song (its first input) with each row's settings."""
    song = examples.demo_song()
    return widgets.example_rows(
        [[song, *row] for row in rows], inputs, label="Try the demo song", api_name=f"load_example_{tab}"
    )


def _song_fields(source: Any, prompt: Any, lyrics: Any, more: form_fields.SongSettings, **own: Any) -> dict[str, Any]:
    """An audio tab's form by the preparer's names: the song, its text, its folded settings, and its own
    fields (``own``: Cover's strength, Extend's seconds, Edit's region)."""
    fields = {"src_audio": source, "prompt": prompt, "lyrics": lyrics, "vocal_language": more.language}
    fields.update(zip(("bpm", "key_scale", "time_signature"), more.music, strict=True), lora=more.lora[0])
    fields.update(lora_scale=more.lora[1], lora_preset=more.lora_preset, **more.declared, **more.adapters.fields)
    return {**fields, **({"reference_audio": more.reference} if more.reference is not None else {}), **own}


def cover_tab(variant: Any) -> MusicTab:
    """A song and a new style; lyrics, timbre and sampling folded away."""
    with gr.Tab("Cover", id="cover"):
        with widgets.music_form("Make cover", "cover", checks.MAX_TAKES) as form:
            source, info, _ = form_fields.song_input("cover")
            described = form_fields.describe_button("cover")
            prompt = gr.Textbox("", label="New style", info=tips.COVER_CAPTION, lines=2, elem_id="cover-prompt")
            strength = form_fields.placed("audio_cover_strength", "cover")
            with gr.Accordion("Advanced settings", open=False, elem_id="cover-advanced"):
                lyrics = gr.Textbox(
                    "", label="New lyrics (optional)", info=tips.COVER_LYRICS, lines=6, elem_id="cover-lyrics"
                )
                more = form_fields.song_settings("cover", variant, reference=True)
                start = form_fields.cover_start_slider()
                morph = form_fields.morph_controls(
                    {"audio_cover_strength": strength, "cover_noise_strength": start, "dcw": more.declared["dcw"]}
                )
        with form.column:
            variation = variation_row.build("cover")
        demo_examples("cover", examples.COVER, [source, prompt, strength])
    return MusicTab(
        "cover",
        _song_fields(
            source,
            prompt,
            lyrics,
            more,
            audio_cover_strength=strength,
            cover_noise_strength=start,
            **dict(zip(("morph", "morph_prompt", "morph_lyrics"), morph, strict=True)),
        ),
        form,
        source=source,
        reading=([source], [info, *more.music]),
        receives=[source],
        describe=(*described, [prompt, lyrics, more.language, *more.music]),
        variation=variation,
    )


def extend_tab(variant: Any) -> MusicTab:
    """A song, how much to add and its style; the waveform marks the seam."""
    with gr.Tab("Extend", id="extend"):
        with widgets.music_form("Extend", "extend", checks.MAX_TAKES) as form:
            source, info, wave = form_fields.song_input("extend", wave=True)
            bars = edit_fields.bars_box("extend")  # right under the waveform whose seam it sets, as Edit's bars
            first = edit_fields.bar_one_box("extend")  # and where its bars are counted from
            place, where = edit_fields.where_fields()  # where the new part goes: the point shown on the waveform
            described = form_fields.describe_button("extend")
            seconds = widgets.lenient_slider(
                *checks.EXTEND_RANGE,
                step=1,
                label="Seconds to add",
                info=tips.EXTEND_SECONDS,
                elem_id="extend-seconds",
            )
            ending = gr.Checkbox(False, label="Ending", info=tips.EXTEND_ENDING, elem_id="extend-ending")
            prompt = gr.Textbox(
                "", label="Style of the continuation", info=tips.EXTEND_CAPTION, elem_id="extend-prompt"
            )
            with gr.Accordion("Advanced settings", open=False, elem_id="extend-advanced"):
                lyrics = gr.Textbox(
                    "", label="Lyrics for the new part", info=tips.LYRICS, lines=6, elem_id="extend-lyrics"
                )
                more = form_fields.song_settings("extend", variant)
        with form.column:
            variation = variation_row.build("extend")
        demo_examples("extend", examples.EXTEND, [source, prompt, seconds])
    # The seam moves with the seconds to add; bars to add set both.
    seconds.change(None, [wave, seconds], wave, js=waveform.WITH_EXTRA_JS, api_visibility="private")
    edit_fields.wire_bars_added(bars, wave, seconds, more.music)
    edit_fields.wire_bar_one(first, wave, more.music)
    edit_fields.wire_where(place, where, wave)
    _new_song_new_bar_one(source, first, info, more.music[0])
    reading = ([source, seconds, first], [info, *more.music, wave])
    return MusicTab(
        "extend",
        _song_fields(
            source,
            prompt,
            lyrics,
            more,
            extend_seconds=seconds,
            bars=bars,
            first_downbeat=first,
            where=where,
            ending=ending,
        ),
        form,
        source=source,
        reading=reading,
        receives=[source, prompt],
        describe=(*described, [prompt, lyrics, more.language, *more.music]),
        variation=variation,
    )


def edit_tab(variant: Any) -> MusicTab:
    """A song, the region to regenerate (dragged on the waveform or typed) and its new words."""
    with gr.Tab("Edit", id="edit"):
        with widgets.music_form("Regenerate region", "edit", checks.MAX_TAKES) as form:
            source, info, wave = form_fields.song_input("edit", wave=True)
            bars = edit_fields.bars_box("edit")  # right under the waveform whose region it sets
            first = edit_fields.bar_one_box("edit")  # and where its bars are counted from
            described = form_fields.describe_button("edit")
            choice = edit_fields.build()
            with gr.Row(equal_height=True) as region:
                start = widgets.lenient_number(label="Region start (s)", elem_id="edit-start")
                end = widgets.lenient_number(label="Region end (s)", elem_id="edit-end")
            # Under both boxes: as the start box's own info it pushed that box below the end box.
            hint = gr.Markdown(tips.REGION, elem_classes=["hint"])
            picker = edit_fields.lines_picker()
            prompt = form_fields.caption("edit", "Style for the region")
            lyrics = gr.Textbox(
                "", label="New words for the region", info=tips.EDIT_LYRICS, lines=4, elem_id="edit-lyrics"
            )
            with gr.Accordion("Advanced settings", open=False, elem_id="edit-advanced"):
                with gr.Row():
                    way, strength = edit_fields.repaint_mode(), form_fields.placed("repaint_strength", "edit")
                more = form_fields.song_settings("edit", variant)
        with form.column:
            variation = variation_row.build("edit")
        # A region's examples, and a part's (the region's columns mean nothing to one): each choice its own.
        regions = demo_examples("edit", examples.EDIT, [source, start, end, prompt, lyrics])
        adding = demo_examples("edit_part", examples.EDIT_PARTS, [source, choice.change, choice.part, prompt])
    adding.dataset.visible, adding.dataset.headers = False, ["Song", "What to change", "Which part", "Style"]
    music_box, lora_box = more.boxes
    shown = edit_fields.Shown(
        region,
        hint,
        prompt,
        lyrics,
        way,
        strength,
        **{
            name: more.declared[name] for name in edit_fields.MODEL_DEFAULT_FIELDS
        },  # steps, guidance, DCW: a part's the base's
        button=form.button,
        music=music_box,
        lora_box=lora_box,
        lora=more.lora[0],
        preset=more.lora_preset,
        region_examples=regions.dataset,
        part_examples=adding.dataset,
        lines_column=picker.column,
        lines=picker.lines,
        bars=bars,
    )
    own = {"repainting_start": start, "repainting_end": end, "change": choice.change, "part": choice.part}
    own.update(add_parts=choice.add_parts, repaint_mode=way, repaint_strength=strength, bars=bars, **picker.fields)
    own.update(first_downbeat=first)
    fields = _song_fields(source, prompt, lyrics, more, **own)
    edit_fields.wire(choice, variant, shown, wave, start, end, (picker, source), fields)
    # A part empties every adapter slot (``edit_fields.reset``) and folds the second and third rows away again.
    rows = more.adapters.outputs

    def folded(change: Any) -> tuple[Any, ...]:
        return tuple(gr.update() for _ in rows) if change in ("region", None, "") else form_fields.rows_shown(1, 1)

    choice.change.change(folded, choice.change, rows, queue=False, api_visibility="private")
    edit_fields.wire_bar_one(first, wave, more.music, (bars, start, end))
    _new_song_new_bar_one(source, first, info, more.music[0])
    reading = ([source, start, end, choice.change, first], [info, *more.music, wave])
    return MusicTab(
        "edit",
        fields,
        form,
        source=source,
        reading=reading,
        receives=[source, prompt, start, end],
        describe=(*described, [prompt, lyrics, more.language, *more.music]),
        variation=variation,
        after=lambda run: edit_fields.after_run(choice, run),
    )


def _new_song_new_bar_one(source: gr.Audio, first: Any, info: gr.Markdown, bpm: Any) -> None:
    """A song taken away empties its Bar 1, in the page: the next song's bars are its own until one is set. A Bar 1
    set (a click on the waveform, or typed) or emptied says where the bars are counted from on the song's line."""
    source.clear(None, None, first, js="() => null", api_visibility="private")
    first.change(
        form_fields.read_bar_one,
        [source, first, bpm],
        info,
        api_visibility="private",
        concurrency_id=admission.UPLOADS,
        concurrency_limit=uploads.decodes_at_once(),
        trigger_mode="always_last",
        show_progress="hidden",
    )


def lyrics_tab(demo: gr.Blocks, generate: MusicTab, tabs: gr.Tabs) -> None:
    """The Lyrics tab (``lyrics_page``): the song idea in, lyrics streamed out, then handed to Generate."""
    lyrics_page.build(demo, generate.fields, tabs)


def wire_music(demo: gr.Blocks, tab: MusicTab) -> dict[str, Any]:
    """A music tab's main button: bring the result into view, the admission check, run in the GPU queue; Stop.
    Returns its runs' events by api name (its own, its variations', Generate's morph), for what follows a
    take (``my_takes``)."""
    result = tab.form.result
    takes, first = result.takes, result.players[0]
    prepare = modes.PREPARE[tab.name]
    # Where the eye goes after the click: the first take's player, brought into view (below the form
    # on a phone), is the one place that shows the progress.
    tab.form.button.click(
        None, None, None, js=widgets.scroll_js(first.elem_id, result.seeds.elem_id), api_visibility="private"
    )
    # An audio tab's click makes one take; its other slots hold variations (``variation_row``).
    made = takes if tab.name == "generate" else takes[:1]
    run = tab.form.button.click(
        handlers.ENDPOINTS[tab.name],
        inputs=list(tab.inputs.values()),
        outputs=[*made, result.seeds, result.meta],
        api_name=tab.name,
        concurrency_id="gpu",
        show_progress_on=[first],
        validator=admission.validator(
            handlers.admission_check(tab.name), [p.name for p in handlers.preparer_parameters(prepare)], "prompt"
        ),
    )
    run.success(None, [result.meta, *takes], result.players, js=player.FROM_RESULT_JS, api_visibility="private")
    if tab.after is not None:
        tab.after(run)
    # No ``cancels=``: cancelling the event would hide the run's own "Stopped at step N of M" and
    # free the queue slot while the GPU still works; the run's flag ends it within a step.
    varied, variations = _wire_variations(demo, tab)
    morphed = morph_row.wire(demo, tab.morph, result, tab.fields) if tab.morph else {}
    idea = idea_row.wire(demo, tab.idea, tab.fields) if tab.idea else ()
    stems = wire_stems(demo, tab) + wire_describe(demo, tab) + idea + (varied, *morphed)
    widgets.wire_reserves(demo, tab.name, tab.form.reserves, tab.inputs, handlers.reserves(tab.name))
    stop_api = "stop" if tab.name == "generate" else f"stop_{tab.name}"
    tab.form.stop.click(runs.stopper(demo, tab.name, stems), None, None, api_name=stop_api, queue=False)
    if tab.reading is not None:
        # A Bar 1 the request would refuse is refused in one line, titled and logged as every refusal is.
        read, (inputs, outputs) = event_errors.expected_errors(form_fields.READERS[tab.name]), tab.reading
        # In the uploads' own small queue (and queue limit, ``admission``): a burst of uploads never waits
        # behind, nor counts as, GPU work.
        tab.source.change(
            read,
            inputs,
            outputs,
            api_name=f"{tab.name}_analyze",
            concurrency_id=admission.UPLOADS,
            concurrency_limit=uploads.decodes_at_once(),
            show_progress="minimal",
        )
    return {tab.name: run, varied: variations, **morphed}


def wire_across(music: list[MusicTab], tabs: gr.Tabs) -> dict[str, Any]:
    """What one tab hands another: a take to a source (Send to), a record back to Generate (returned: those events)."""
    g = music[0].fields
    settings = [g[k] for k in records.FIELDS]
    # A visitor's slip (no take yet, a record that cannot be used) is one line in the log, not a traceback.
    quiet = event_errors.expected_errors
    rows = music[0].adapters  # the adapter rows the take used, shown (``records.adapters_used``)
    shown = {"outputs": rows.outputs, "queue": False, "api_visibility": "private"}
    g["record"].upload(
        quiet(results.settings_from_file), g["record"], [*settings, tabs], api_name="settings_from_file"
    ).success(
        lambda path, n: form_fields.rows_shown(n, records.adapters_used(records.read(path))),
        [g["record"], rows.shown],
        **shown,
    )
    used = {}
    for tab in music:
        sends = dict(tab.form.result.sends)
        used[tab.name] = sends.pop("settings").click(
            quiet(results.settings_from_record),
            [tab.form.result.meta, tab.form.result.pick],
            [*settings, tabs],
            api_name=f"settings_from_{tab.name}",
            validator=results.take_validator(1),
        )
        used[tab.name].success(
            lambda meta, n: form_fields.rows_shown(n, records.adapters_used(meta)),
            [tab.form.result.meta, rows.shown],
            **shown,
        )
    receivers = {tab.name: tab.receives for tab in music if tab.receives}
    for tab in music:
        for target, button in tab.form.result.sends.items():
            if target == "settings":
                continue
            button.click(
                quiet(results.send_to(target)),
                [tab.form.result.pick, tab.form.result.meta],
                receivers[target],
                api_name=f"send_{tab.name}_to_{target}",
                api_visibility="private",
                validator=results.take_validator(0),
            ).then(lambda target=target: gr.Tabs(selected=target), None, tabs, api_visibility="private", queue=False)
    return used


def wire_stems(demo: gr.Blocks, tab: MusicTab) -> tuple[str, ...]:
    """*Split into stems* beneath each take: GPU work, admitted and queued as a song is (refusals noted on the
    record); Generate's first take's is the public ``/stems``. Returns the api names, which Stop stops too."""
    names = []
    for i, slot in enumerate(tab.form.result.stems):
        public = tab.name == "generate" and i == 0
        name = "stems" if public else f"stems_{tab.name}_{i + 1}"
        slot.button.click(
            handlers.stems_endpoint(tab.name),
            [slot.take, tab.form.result.meta],
            slot.players,
            api_name=name,
            api_visibility="public" if public else "private",
            concurrency_id="gpu",
            show_progress_on=[tab.form.result.players[i]],  # the take's player: its audio is hidden in the page
            validator=admission.validator(handlers.check_stems, ["take", "record"], "record"),
        ).success(None, None, slot.box, js=widgets.SHOW_JS, api_visibility="private")
        widgets.wire_reserves(demo, "stems", slot.reserves, {"take": slot.take, "record": tab.form.result.meta})
        names.append(name)
    return tuple(names)


def _wire_variations(demo: gr.Blocks, tab: MusicTab) -> tuple[str, Any]:
    result = tab.form.result
    # A click of the tab's button shows as many take slots as it makes again (variations may have shown more).
    one = f"() => ({results.SHOW_TAKES_JS})(1)"
    takes, show = (tab.fields["batch_size"], results.SHOW_TAKES_JS) if tab.name == "generate" else (None, one)
    tab.form.button.click(None, takes, [*result.boxes, result.pick], js=show, api_visibility="private")
    return variation_row.wire(demo, tab.variation, result, tab.name, tab.fields)


def wire_describe(demo: gr.Blocks, tab: MusicTab) -> tuple[str, ...]:
    """*Describe* on an audio tab: GPU work, admitted and queued as a song is (refusals noted on the song);
    Cover's is the public ``/describe``. Returns its api name, which the tab's Stop stops too."""
    if tab.describe is None:
        return ()
    button, note, reserves, fields = tab.describe
    widgets.wire_reserves(demo, "describe", reserves, {"src_audio": tab.source})
    name = "describe" if tab.name == "cover" else f"describe_{tab.name}"
    button.click(
        handlers.describe_endpoint(tab.name),
        [tab.source, *fields],
        [*fields, note],
        api_name=name,
        api_visibility="public" if tab.name == "cover" else "private",
        concurrency_id="gpu",
        show_progress_on=[note],
        validator=admission.validator(describe.check, ["src_audio", *describe.FORM], "src_audio"),
    )
    return (name,)
