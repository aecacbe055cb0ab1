"""The Generate tab: caption and lyrics, the Generate button and the examples on the first screen, *Write it*,
Think and the length beneath them, everything else folded away (``build``), and the switches that run
in the page alone. The other music tabs are ``tabs``'; their shared wiring (``tabs.wire_music``) takes
this one as it takes them."""

from __future__ import annotations

import functools
import inspect
import json
from typing import Any

import gradio as gr

import audio
import checks
import error_messages
import examples
import form_fields
import idea_row
import loops
import modes
import morph_row
import results
import tabs
import tooltips as tips
import variation_row
import widgets

# Generate's fields that are the page's, not the API's: the Instrumental switch and the record upload.
PAGE_ONLY = ("instrumental", "record")


def build(variant: Any) -> tabs.MusicTab:
    """Caption and lyrics, then Generate and the examples, all on the first screen; a song from one
    line, the length and Think beneath them, everything else folded away."""
    with gr.Tab("Generate", id="generate"):
        with widgets.music_form("Generate", "gen", checks.MAX_TAKES) as form:
            fields = _generate_text() | _generate_tempo()
            form.place_buttons()
            tried = gr.Column(elem_id="gen-examples")  # filled below, once the fields it fills exist
            idea = idea_row.build()
            length, asked = _generate_length()
            fields |= length
            with gr.Accordion("Advanced settings", open=False, elem_id="gen-advanced"):
                fields |= _generate_advanced(variant)
        with form.column:
            variation, morph = variation_row.build("gen"), morph_row.build("gen")
        with tried:  # Instrumental ticked where an example's lyrics are "[Instrumental]", as the box does
            widgets.example_rows(
                [[*e, e[1] == checks.INSTRUMENTAL_TAG] for e in examples.GENERATE],
                [fields[k] for k in ("prompt", "lyrics", "audio_duration", "vocal_language", "instrumental")],
                label="Try one of these",
                example_labels=examples.GENERATE_LABELS,
                api_name="load_example_generate",
            )
    _wire_generate_switches(fields, form.result, asked)
    # In the preparer's order, then the page's own: the order the reserves line reads them in.
    order = [*inspect.signature(modes.PREPARE["generate"]).parameters, *PAGE_ONLY]
    adapters = fields.pop("adapter_rows")
    fields = dict(sorted(fields.items(), key=lambda item: order.index(item[0])))
    return tabs.MusicTab("generate", fields, form, idea=idea, variation=variation, morph=morph, adapters=adapters)


def _generate_text() -> dict[str, Any]:
    """Generate's caption and lyrics, by the preparer's names."""
    prompt = form_fields.caption("gen", "Style caption")
    lyrics = gr.Textbox("", label="Lyrics", info=tips.LYRICS, lines=4, max_lines=30, elem_id="gen-lyrics")
    return {"prompt": prompt, "lyrics": lyrics}


def _generate_tempo() -> dict[str, Any]:
    """BPM, time signature, *Loop*, Instrumental (the page's) and *Lock to the grid* in one row (on a phone three,
    then two), unfolded under the caption and lyrics, where a producer looks first. Their help is short
    (``tooltips.TEMPO_ROW``), whole on a desk, so the Generate button stays on the first screen."""
    with gr.Row(elem_id="gen-tempo"):
        bpm = form_fields.bpm_field("gen", tips.TEMPO_ROW["bpm"])
        metre = form_fields.placed("time_signature", "gen", info=tips.TEMPO_ROW["time_signature"])
        loop = form_fields.loop_bars("gen")
        instrumental = gr.Checkbox(
            label="Instrumental", info=tips.TEMPO_ROW["instrumental"], value=False, elem_id="gen-instrumental"
        )
        lock = form_fields.placed("lock_to_grid", "gen", info=tips.TEMPO_ROW["lock_to_grid"])
    return {"bpm": bpm, "time_signature": metre, "loop_bars": loop, "instrumental": instrumental, "lock_to_grid": lock}


def _generate_length() -> tuple[dict[str, Any], gr.Textbox]:
    """Generate's Think, Length: auto, and the duration (its help line says a loop's length), unfolded under the
    Generate button; and the page's own hidden copy of what sets the length (``_duration_follows``)."""
    think, auto_length = form_fields.think_controls()
    duration = widgets.lenient_slider(
        audio.MIN_SECONDS,
        audio.MAX_SECONDS,
        step=1,
        label="Duration (seconds)",
        info=tips.DURATION,
        elem_id="gen-duration",
    )
    asked = gr.Textbox("", visible=False, elem_id="gen-length-asked")
    return {"audio_duration": duration, "think": think, "auto_length": auto_length}, asked


def _generate_advanced(variant: Any) -> dict[str, Any]:
    """Generate's folded fields by the preparer's names (and the page's record upload)."""
    with gr.Row():  # side by side: the key and the language a song is sung in, BPM and metre unfolded above
        key, language = form_fields.placed("key_scale", "gen"), form_fields.placed("vocal_language", "gen")
    # Takes beside the output format, under the sampling (``sampling_controls``).
    takes = functools.partial(
        widgets.lenient_slider, 1, checks.MAX_TAKES, step=1, label="Takes", info=tips.TAKES, elem_id="gen-takes"
    )
    sampling = form_fields.sampling_controls("generate", "gen", variant, batch_size=takes)
    with gr.Row():  # upstream's guidance interval, its two ends side by side
        interval = {name: form_fields.placed(name, "gen") for name in ("cfg_interval_start", "cfg_interval_end")}
    reference = form_fields.reference_input("gen")
    record = widgets.any_file(
        gr.File(
            label="Bring back a take's settings (its .json)",
            type="filepath",
            height=100,
            elem_id="gen-record",
            elem_classes=["compact-drop"],
        ),
        example="take.json",
    )
    lora, scale, preset = form_fields.lora_controls("gen", variant.name)
    adapters = form_fields.adapter_rows("gen", variant.name)
    rewrite = form_fields.rewrite_caption_switch()
    plan = form_fields.plan_box()
    finish = form_fields.finish_controls("generate", "gen", variant)
    declared = form_fields.declared("generate", "gen", variant)  # the Ceiling, the velocity clamp, DCW …
    return {
        "key_scale": key,
        "vocal_language": language,
        **sampling,
        "reference_audio": reference,
        "reference_take": gr.Textbox("", visible=False, label="Take whose voice to use"),  # the API's (``voice``)
        "lora": lora,
        "lora_scale": scale,
        "rewrite_caption": rewrite,
        "plan": plan,
        **finish,
        **declared,
        "lora_preset": preset,
        **adapters.fields,
        **interval,
        "record": record,
        "adapter_rows": adapters,  # taken out for the tab (``MusicTab.adapters``)
    }


def _wire_generate_switches(fields: dict[str, Any], result: widgets.Result, asked: gr.Textbox) -> None:
    """Generate's instant events, which the page calls directly (``queue=False``) and so take no place
    in the queue, or which run in the page alone."""
    instrumental, lyrics = fields["instrumental"], fields["lyrics"]
    instrumental.input(
        results.toggle_instrumental,
        instrumental,
        lyrics,
        api_name="toggle_instrumental",
        api_visibility="private",
        queue=False,
    )
    # However it was ticked (an example too): the lyrics box is locked while Instrumental is on.
    instrumental.change(None, instrumental, lyrics, js=widgets.LOCKED_WHILE_JS, api_visibility="private")
    # A plan is what Think follows: Think turned off by the visitor takes the plan a take brought back with it,
    # or the next click would be refused for a plan the visitor no longer sees a use for (the API still is).
    think, plan = fields["think"], fields["plan"]
    think.input(None, [think, plan], plan, js=PLAN_WITH_THINK_JS, api_visibility="private")
    # The caption switch is Think's alone (``parameters.USED_BY``): Think off, however, sets it back on, its default.
    rewrite = fields["rewrite_caption"]
    think.change(None, [think, rewrite], rewrite, js=REWRITE_WITH_THINK_JS, api_visibility="private")
    _duration_follows(fields, asked)
    # In the page only (see waveform.REGION_JS for why no server event may take a typed number).
    takes = fields["batch_size"]
    takes.change(None, takes, [*result.boxes, result.pick], js=results.SHOW_TAKES_JS, api_visibility="private")


# The plan while Think is on; none once the visitor turns Think off (``_wire_generate_switches``).
PLAN_WITH_THINK_JS = "(think, plan) => (think ? plan : '')"
# The caption switch as set while Think is on; on (its default) once Think is off.
REWRITE_WITH_THINK_JS = "(think, rewrite) => (think ? rewrite : true)"
# What sets Generate's length, copied in the page into one hidden box (``_duration_follows``).
ASKED_JS = "(...asked) => JSON.stringify(asked)"
LENGTH_FIELDS = ("auto_length", "loop_bars", "bpm", "time_signature", "think")


def _duration_follows(fields: dict[str, Any], asked: gr.Textbox) -> None:
    """Duration, not used with Length: auto or while Loop is on, says so by standing still; under Loop its
    line says how long the loop is (``loop_length``). Read on the server from the page's copy of the fields
    (``asked``), never from them: Gradio clears a refused request's messages on the inputs of any server event
    that answers after it, so the BPM typed just before a click would lose its validation error."""
    given = [fields[name] for name in LENGTH_FIELDS]
    for switch in given:
        switch.change(None, given, asked, js=ASKED_JS, api_visibility="private").then(
            _duration_update, asked, fields["audio_duration"], queue=False, api_visibility="private"
        )


def _duration_update(asked: Any) -> Any:
    """Duration for the page's copy of ``LENGTH_FIELDS`` (JSON): still under Length: auto or Loop, and its line."""
    try:
        auto, bars, bpm, meter, think = json.loads(asked)
    except (TypeError, ValueError):
        return gr.update()
    looped = bars not in (None, 0, "0", "", "Off")
    line = (
        (error_messages.LOOP_AUTO_LENGTH if auto else loop_length(bars, bpm, meter, think)) if looped else tips.DURATION
    )
    return gr.update(interactive=not (auto or looped), info=line)


def loop_length(bars: Any, bpm: Any, meter: Any, think: Any) -> str:
    """Duration's help line while Loop is on: the loop's length as the click will make it (``loops.check``, reached
    through ``modes``, whose loop it is), or why it is not known yet (Think's tempo, a BPM to set, too long)."""
    try:
        loop = loops.check(
            checks.check_loop_bars(bars),
            checks.check_bpm(bpm),
            checks.check_time_signature(meter),
            checks.check_switch(think),
        )
    except checks.InputError as exc:
        return exc.message
    except gr.Error:
        return tips.LOOP_DURATION
    if loop is None or loop.chosen_by_think:
        return tips.LOOP_DURATION
    metre, seconds = tips.METRE_NAMES[str(loop.beats_per_bar)], loop.samples / audio.SAMPLE_RATE  # one cycle
    return tips.LOOP_LENGTH.format(bars=loop.bars, metre=metre, bpm=loop.bpm, seconds=seconds)
