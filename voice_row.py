"""*Use this voice*, the page's part: under each result and in *My takes*, a sung take handed to
Generate's timbre reference (placed in the uploads as a link, as *Send to* places a take), and
Generate in view; *Use these settings* of a take made with a take's voice brings that voice back too.

Which take a button may lend is decided as *Send to* decides it: a result's take only where this
visitor's page made it (``take_owners.made_by``), a *My takes* entry only where its id is the studio's
(``my_takes.own``). A voice a take's record names is lent back only from the take's own record on disk
(written when the studio checked that voice was the visitor's), or where this page made that take too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

import error_messages
import event_errors
import messages
import my_takes
import output_folder
import records
import results
import take_owners
import uploads
import voice


def _lent(path: Path) -> str:
    """The take at ``path`` checked for a voice and placed in the uploads (a link: no copy)."""
    voice.check_sung(voice.Voice(path.relative_to(output_folder.output_dir()).as_posix(), path, voice.record_of(path)))
    placed = uploads.link_in(path)  # one place per take, however often it is lent
    if placed is None:
        raise gr.Error(messages.UPLOADS_FULL)
    gr.Info(messages.VOICE_USED)
    return placed


def use_voice(take: Any, record: Any, request: gr.Request = None) -> tuple[str, Any]:
    """*Use this voice* under a result: the chosen take (``take``, from 1) of ``record`` as Generate's
    timbre reference, and Generate selected; refused as *Send to* refuses, and for an instrumental."""
    chosen = records.chosen(record, take, error_messages.NO_TAKE_YET)
    path = output_folder.studio_take_audio(chosen.audio)
    if path is None or not take_owners.made_by(request, chosen.audio):
        raise gr.Error(error_messages.TAKE_GONE.format(n=chosen.number))
    return _lent(path), gr.Tabs(selected="generate")


def offered(record: Any, take: Any = 1) -> Any:
    """*Use this voice* under a result shown only where the chosen take (``take``, from 1) of ``record`` sings
    (``voice.sings``): offered on an instrumental it could only be refused."""
    try:
        chosen = records.chosen(record, take, error_messages.NO_TAKE_YET)
    except (gr.Error, TypeError, ValueError):
        return gr.update(visible=False)
    return gr.update(visible=voice.sings(record, chosen))


def use_my_take_voice(entry: Any) -> tuple[str, Any]:
    """*Use this voice* in *My takes*: the entry's take (one this studio made and keeps) as Generate's
    timbre reference, and Generate selected."""
    if not isinstance(entry, dict):
        raise gr.Error(error_messages.MY_TAKE_NONE)
    _, path = my_takes.own(entry)
    return _lent(path), gr.Tabs(selected="generate")


def kept_voice(record: Any, take: Any = 1, request: gr.Request = None) -> Any:
    """After *Use these settings* of a result: the voice its take was made with back in Generate's
    timbre reference (nothing changed where it was made with none); where that take is gone, or not
    this visitor's, a warning in words."""
    if not records.Record.of(record).takes:
        return gr.skip()
    chosen = records.chosen(record, take, "")
    own = output_folder.studio_take_audio(chosen.audio)
    if own is not None and take_owners.made_by(request, chosen.audio):
        return _voice_back(voice.record_of(own), vouched=True, request=request)
    return _voice_back(record, vouched=False, request=request)


def my_take_kept_voice(entry: Any) -> Any:
    """``kept_voice`` after *Use these settings* in *My takes*, from the take's own record on disk
    (the entry's own copy of the settings is the browser's, and may be forged)."""
    try:
        _, path = my_takes.own(entry)
    except gr.Error:
        return gr.skip()  # a take cleaned: its settings came back from the browser, its voice cannot
    return _voice_back(voice.record_of(path), vouched=True)


def _voice_back(record: Any, vouched: bool, request: Any = None) -> Any:
    """The voice ``record``'s settings name, placed in the uploads; ``vouched``: the record is the
    studio's own (on disk), else the voice must be a take this page made."""
    lent = records.Record.of(record).voice
    name = lent.get("take")
    if not isinstance(name, str):
        return gr.skip()
    path = output_folder.studio_take_audio(name)
    if path is None or not (vouched or take_owners.made_by(request, name)):
        gr.Warning(error_messages.VOICE_KEPT_GONE.format(name=records.quoted_safely(Path(name).name)))
        return gr.skip()
    placed = uploads.link_in(path)
    if placed is None:
        raise gr.Error(messages.UPLOADS_FULL)
    return placed


def wire(music: list[Any], panel: my_takes.Panel, used: dict[str, Any], my_used: Any, tabs: gr.Tabs) -> None:
    """*Use this voice* under each tab's result (``/voice_of_<tab>``) and in *My takes*
    (``/my_take_voice``); the voice brought back after each *Use these settings* (``used``: those of
    the results by tab, ``my_used``: My takes')."""
    quiet, reference = event_errors.expected_errors, music[0].fields["reference_audio"]
    for tab in music:
        result = tab.form.result
        result.voice.click(
            quiet(use_voice),
            [result.pick, result.meta],
            [reference, tabs],
            api_name=f"voice_of_{tab.name}",
            api_visibility="private",
            validator=results.take_validator(0),
        )
        used[tab.name].success(
            quiet(kept_voice), [result.meta, result.pick], reference, api_visibility="private", show_progress="hidden"
        )
        for shown in (result.meta.change, result.pick.change):  # a result's record, or the take chosen of it
            shown(offered, [result.meta, result.pick], result.voice, queue=False, api_visibility="private")
    panel.view.use_voice(
        quiet(use_my_take_voice), panel.state, [reference, tabs], js=my_takes.PICK_JS, api_name="my_take_voice"
    ).success(None, None, None, js=my_takes.SCROLL_JS, api_visibility="private")
    my_used.success(quiet(my_take_kept_voice), panel.state, reference, js=my_takes.PICK_JS, api_visibility="private")
