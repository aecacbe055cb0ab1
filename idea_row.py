"""The *Idea* row on Generate: a song from one line on the page (``songwriter`` does the work).

Under Generate's button and its examples (the caption, lyrics and Generate come first): the
idea, *Write it*, the note that says what the planner wrote and what it kept, and on a ZeroGPU Space
what a click reserves; the page's private event fills Generate's empty fields, and the public
``/write_song`` (on a button no page shows) returns what was written.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

import admission
import checks
import error_messages
import event_errors
import gpu
import messages
import parameters
import quota
import runs
import songwriter
import tooltips as tips
import widgets


def build() -> tuple[gr.Textbox, gr.Button, gr.Markdown, gr.Markdown]:
    """A song from one line: the idea, *Write it*, the note that says what the
    planner wrote, and (on a ZeroGPU Space) what a click reserves."""
    on = songwriter.available()
    idea = gr.Textbox(
        "",
        label="Idea",
        info=tips.IDEA,
        placeholder=songwriter.EXAMPLE,
        lines=1,
        max_lines=3,
        interactive=on,
        max_length=checks.MAX_IDEA_CHARS,
        elem_id="gen-idea",
    )
    with gr.Row(equal_height=True, elem_id="gen-idea-row"):
        button = gr.Button(
            "Write it",
            size="sm",
            scale=0,
            min_width=110,
            interactive=on,
            elem_id="gen-write",
            elem_classes=["clears-notes"],
        )
        note = gr.Markdown(
            tips.WRITE_IT if on else error_messages.WRITE_IT_OFF, elem_classes=["hint"], elem_id="gen-write-note"
        )
    return idea, button, note, widgets.reserves_line("gen-write")


def wire(
    demo: gr.Blocks, row: tuple[gr.Textbox, gr.Button, gr.Markdown, gr.Markdown], f: dict[str, Any]
) -> tuple[str, ...]:
    """*Write it* on Generate (``f``: Generate's fields by the preparer's names): GPU work, admitted and
    queued as a song is (the idea is the field its refusals are noted on), its reserves line beside it;
    the page's event fills the fields left empty, ``/write_song`` returns what was written. Returns
    their api names, which Generate's Stop stops too."""
    idea, button, note, reserves = row
    widgets.wire_reserves(demo, "write_song", reserves, {})
    asked = [idea, f["instrumental"], f["vocal_language"], f["seed"]]
    filled = [f[name] for name in songwriter.FORM]
    names = ["idea", "instrumental", "vocal_language", "seed", *songwriter.FORM[:-1]]
    button.click(
        write_into_generate,
        [*asked, *filled[:-1]],
        [*filled, note],
        api_name="write_into_generate",
        api_visibility="private",
        concurrency_id="gpu",
        show_progress_on=[note],
        validator=admission.validator(lambda *a: songwriter.check(*a[:4]), names, "idea"),
    )
    # The endpoint for gradio_client: the same work, what was written returned as it is, on a button
    # no page shows (so a page's click runs the planner once).
    # Labelled, as /gradio_api/info names each by its label (it said "parameter_607").
    api = [gr.Textbox(label="Idea", visible=False), gr.Checkbox(label="Instrumental", visible=False)]
    api += [
        gr.Textbox(label=parameters.PARAMS["vocal_language"].label, visible=False),
        widgets.lenient_number(label=parameters.PARAMS["seed"].label, visible=False, precision=0),
    ]
    widgets.start_at_defaults(dict(zip(names[:4], api, strict=True)), write_song)
    number, text = (
        (lambda name: gr.Number(label=name, visible=False, precision=0)),
        (lambda name: gr.Textbox(label=name, visible=False)),
    )
    written = [(number if name in ("bpm", "audio_duration") else text)(name) for name in songwriter.FORM]
    gr.Button(visible=False).click(
        write_song,
        api,
        written,
        api_name="write_song",
        concurrency_id="gpu",
        validator=admission.validator(songwriter.check, names[:4], "idea"),
    )
    return ("write_into_generate", "write_song")


# ---------------------------------------------------------------- what a click does


def _written(idea: Any, instrumental: Any, vocal_language: Any, seed: Any, request: Any, progress: Any) -> Any:
    """The planner's song for an idea (``songwriter``), or the stop's words where the visitor stopped
    it (Generate's Stop ends it)."""
    text, switch, language, number = songwriter.check(idea, instrumental, vocal_language, seed)
    try:
        with runs.tab_run("generate", request) as run_id:
            return gpu.call(
                songwriter.songwriter_gpu,
                text,
                switch,
                language,
                number,
                needs=("planner",),
                progress=progress,
                run_id=run_id,
                stop_message=messages.WRITE_IT_STOPPED,
                refused=quota.refusal,
            )
    except gr.Error as exc:
        if not runs.is_stop(exc):
            raise
        runs.said_stopped("write_song", exc.message)
        return exc.message


@event_errors.expected_errors
def write_song(
    idea: str = "",
    instrumental: bool = False,
    vocal_language: str = checks.UNKNOWN,
    seed: float | None = -1,
    request: gr.Request = None,
    progress=gr.Progress(),
) -> tuple[str, str, int, str, str, int, str]:
    """Have ACE-Step's planner write a song from one line: ``idea`` (at most 500 characters),
    ``instrumental`` (no lyrics), ``vocal_language`` ("unknown": the planner picks one), ``seed``
    (-1: random; the same idea and seed write the same song). Returns the caption, lyrics, BPM, key,
    time signature, length in seconds, and a note (Markdown: what was written, its language and seed)."""
    written = _written(idea, instrumental, vocal_language, seed, request, progress)
    if isinstance(written, str):  # stopped
        return "", "", 0, checks.AUTO, checks.AUTO, 0, written
    *fields, _language = songwriter.values(written)
    return (*fields, songwriter.note(written, []))


@event_errors.expected_errors
def write_into_generate(
    idea: str = "",
    instrumental: bool = False,
    vocal_language: str = checks.UNKNOWN,
    seed: float | None = -1,
    prompt: str = "",
    lyrics: str = "",
    bpm: float | None = 0,
    key_scale: str = checks.AUTO,
    time_signature: str = checks.AUTO,
    audio_duration: float = parameters.PARAMS["audio_duration"].default,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    """*Write it* on the page: ``write_song``, its fields written into Generate's where the visitor
    left them empty (``songwriter.FORM``'s order) and the note."""
    form = {
        "prompt": prompt,
        "lyrics": lyrics,
        "bpm": bpm,
        "key_scale": key_scale,
        "time_signature": time_signature,
        "audio_duration": audio_duration,
        "vocal_language": vocal_language,
    }
    written = _written(idea, instrumental, vocal_language, seed, request, progress)
    if isinstance(written, str):
        return (*(form[k] for k in songwriter.FORM), written)
    values, note = songwriter.fill(written, form)
    return (*values, note)
