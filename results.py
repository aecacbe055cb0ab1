"""What a result shows (seeds, the plan, the timings) and what it hands on (a take to another tab, its
settings back to Generate: "Use these settings", read and checked by ``records``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gradio as gr

import audio
import checks
import error_messages
import messages
import output_folder
import plan_format
import records
import status
import stems
import take_owners
import tooltips as tips
import uploads

# As many take slots as takes asked for, "Take to send" only when there is a choice; in the page (a
# server event taking the number would wipe the message a refused click just put on it).
SHOW_TAKES_JS = f"""(n) => {{
  const x = Math.round(Number(n)), count = Number.isFinite(x) ? Math.max(1, Math.min({checks.MAX_TAKES}, x)) : 1;
  const shown = (on) => ({{__type__: "update", visible: on}});
  return [...Array.from({{length: {checks.MAX_TAKES}}}, (_, i) => shown(i < count)), shown(count > 1)];
}}"""


def seeds_text(record: dict[str, Any]) -> str:
    """The line under a result, in plain text (the page shows it as text, API clients get it as is):
    each take's seed, how long it took where; a loop's bars, tempo and metre, each take's tempo as played;
    what the planner chose."""
    how_made = records.Record.of(record)
    parts = [f"take {t.number}: {t.seed}{_varied(t.variation)}" for t in how_made.takes]
    if (asked := how_made.seed_redrawn) is not None:  # ``preparing.from_take_latents``
        parts[0] += messages.SEED_REDRAWN.format(asked=asked)
    timings = how_made.timings
    # Every part of the run a visitor waited for: the model's load, Think's plan, the song and a loop's seam
    # (its second render, ``loop_takes.close``).
    took = sum(timings.get(k, 0) for k in ("model_load_s", "planner_s", "pipeline_s", "seam_s"))
    text = messages.SEEDS.format(
        seeds=", ".join(parts), seconds=took, device=status.device_label(how_made.model.get("device"))
    )
    plans = [t.planner for t in how_made.takes if t.planner]
    lines = [text, adapters_text(record), time_text(record, plans[0] if plans else None)]
    if plans:  # one plan for the request (every take its own blueprint of the same length): shown once
        line = plan_text(plans[0])
        chose = how_made.chose_length and plans[0].get("fields", {}).get("duration")
        if chose and how_made.loop is None:  # a loop's length is its bars: the loop's line says it
            chosen = plans[0]["fields"]["duration"]
            line += messages.THINK_CHOSE.format(clock=audio.clock(chosen), seconds=chosen)
        lines.append(line)
    return "\n".join(line for line in lines if line)


def adapters_text(record: dict[str, Any]) -> str:
    """The adapters a take was made with, each by its file (a preset by its repo), kind and strength, and how
    many layers one changes where it changes only some of those it names; "" for none."""
    said = []
    for adapter in records.adapters_of(record):
        kind = messages.ADAPTER_KINDS.get(adapter["kind"], str(adapter["kind"]))
        line = messages.ADAPTER_USED.format(name=_quoted(adapter["name"], 80), kind=kind, scale=adapter["scale"])
        if adapter["layers"]:
            line += messages.ADAPTER_PARTIAL.format(changed=adapter["layers"][0], named=adapter["layers"][1])
        said.append(line)
    return messages.ADAPTERS_USED.format(adapters=" · ".join(said)) if said else ""


def metre(beats: Any) -> str:
    """A time signature as musicians write it (3/4, 6/8) from the beats a bar the model is told; "" for none."""
    if beats in (None, "", checks.AUTO):
        return ""
    return tips.METRE_NAMES.get(str(beats), f"{beats} beats a bar")


def time_text(record: dict[str, Any], plan: dict[str, Any] | None = None) -> str:
    """A result's time as text: a loop's bars, tempo, metre and length (else its metre: ``_metre_text``),
    then each take's tempo as played (``song_map.Tempo.said``); "" where the record knows none."""
    how_made = records.Record.of(record)
    loop = how_made.loop
    if loop is not None:
        seconds = loop.samples / audio.SAMPLE_RATE
        head = messages.LOOP_SAID.format(bars=loop.bars, bpm=loop.bpm, metre=metre(loop.beats_per_bar), seconds=seconds)
        head += messages.LOOP_BY_THINK if loop.chosen_by == "think" else ""
    else:
        head = _metre_text(
            how_made, metre(how_made.time_signature), metre((plan or {}).get("fields", {}).get("timesignature"))
        )
    heard = [
        f"take {t.number}: {t.tempo['said']}" for t in how_made.takes if isinstance((t.tempo or {}).get("said"), str)
    ]
    return " · ".join(part for part in (head, *heard) if part)


def _metre_text(how_made: records.Record, asked: str, planned: str) -> str:
    """The metre asked (else planned) given as the takes' metre only where every take's bars were heard
    (``song_map``: none where no steady beat was); "" where none was asked or planned."""
    named = asked or planned
    if not named:
        return ""
    if how_made.takes and all(t.bars for t in how_made.takes):
        return messages.TAKE_METRE.format(metre=named)
    return (messages.METRE_ASKED if asked else messages.METRE_PLANNED).format(metre=named)


def _varied(variation: records.VariationEntry | None) -> str:
    """A variation's part of its seed: the take it came from, by how much, its new noise's seed."""
    if variation is None:
        return ""
    return messages.SEED_VARIED.format(take=variation.take, amount=variation.amount, seed=variation.seed)


def _quoted(text: Any, limit: int = 160) -> str:
    """A model's text in the seed line: readable characters only, one line, at most ``limit``."""
    text = plan_format.readable_text(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plan_text(plan: dict[str, Any]) -> str:
    """The planner's part of a result, in a line: what it chose, or why it was skipped."""
    if "skipped" in plan:
        return messages.PLAN_SKIPPED.format(reason=_quoted(plan["skipped"], 240))
    f = plan.get("fields", {})
    caption = _quoted(plan.get("caption_read", f.get("caption")) or "")  # as the model read it
    summary = " · ".join(
        part
        for part in (
            f"{f['bpm']} BPM" if f.get("bpm") else "",
            str(f.get("keyscale") or ""),
            metre(f.get("timesignature")),
            f"“{caption}”" if caption else "",
        )
        if part
    )
    line = messages.PLANNED.format(seconds=plan.get("seconds", 0), summary=summary or "your settings")
    fitted = plan.get("caption_fit")
    if isinstance(fitted, dict) and fitted.get("kept") in ("phrase", "word", "character", "yours"):
        message = messages.CAPTION_YOURS if fitted["kept"] == "yours" else messages.CAPTION_FIT
        line += message.format(n=fitted.get("written_tokens"), most=fitted.get("most"), kept=fitted["kept"])
    return line


def settings_from_record(record: Any, take: Any = 1) -> tuple[Any, ...]:
    """Generate's fields (``records.FIELDS``, in that order) from a take's record (a result's metadata
    or a take's ``.json``), seed included, so the take can be made again or varied; then Generate.

    Every value is checked as the form checks it (``results``); one the form would refuse is named
    in an error and nothing is changed. A LoRA preset comes back where this studio offers it; files
    (a LoRA, a timbre reference, a source song) are not brought back: they are named in a note, to
    upload again.
    """
    values = records.settings(record, take)
    if values["files"]:
        gr.Info(records.files_brought_back(values["files"]))
    if values["variation"]:  # Generate has no field for a variation's noise: say what comes back instead
        gr.Info(messages.SETTINGS_OF_A_VARIATION.format(**_variation_fields(values["variation"])))
    if values["lyrics"]:
        values["lyrics"] = gr.update(value=values["lyrics"], interactive=True)
    else:
        values["lyrics"] = toggle_instrumental(True)
    return (*(values[name] for name in records.FIELDS), gr.Tabs(selected="generate"))


def _variation_fields(variation: records.VariationEntry) -> dict[str, str]:
    """A variation's take, amount and seed as ``messages.SETTINGS_OF_A_VARIATION`` shows them (one its record
    does not give as a number: quoted, escaped)."""
    shown = {"take": variation.take, "amount": variation.amount, "seed": variation.seed}
    return {
        key: records.quoted_safely(variation.given.get(key)) if value is None else f"{value:g}"
        for key, value in shown.items()
    }


def settings_from_file(path: Any) -> tuple[Any, ...]:
    """``settings_from_record`` for an uploaded take ``.json``: a path outside the upload folder (a file
    named by its place on the server) is never opened."""
    if (why := audio.unseen(path, error_messages.RECORD_AS_FILE)) is not None:  # a URL, a path that is no upload
        raise gr.Error(why)
    if path and not uploads.in_upload_folder(path):
        raise gr.Error(error_messages.RECORD_NOT_UPLOADED)
    return settings_from_record(records.read(path), 1)


def toggle_instrumental(on: bool) -> Any:
    if on:
        return gr.update(value=checks.INSTRUMENTAL_TAG, interactive=False)
    return gr.update(value="", interactive=True)


def take_validator(position: int) -> Callable[..., list[dict[str, Any]]]:
    """The validator of an event that takes "Take to send" (input ``position``) and a result's
    record: a number outside the takes made gets its message on the field, and nothing runs."""

    def check(*values: Any) -> list[dict[str, Any]]:
        verdicts = [gr.validate(True, "") for _ in values]
        record = values[1 - position]
        made = records.Record.of(record).takes
        if made:  # no take yet: the event itself says so
            try:
                records.take_index(values[position], len(made))
            except gr.Error as exc:
                verdicts[position] = gr.validate(False, exc.message)
        return verdicts

    return check


def send_to(target: str) -> Callable[[Any, Any], Any]:
    """What "Send to ``target``" fills: the chosen take as the song; for Extend and Edit also the
    take's style (a continuation, or a region, in the style it was made in); for Edit a region to
    start from, the take's middle third (the whole take would regenerate all of it). Cover's style
    stays the visitor's: a cover is a new style."""

    def send(take: Any, record: Any, request: gr.Request = None) -> Any:
        path = send_take(take, record, request)
        if target == "cover":
            return path
        chosen = records.chosen(record, take, error_messages.NO_TAKE_YET)
        style = take_style(record, chosen)
        if target == "extend":
            return path, style
        return (path, style, *middle_region(chosen.seconds))

    send.__name__ = f"send_to_{target}"
    return send


def take_style(record: dict[str, Any], entry: records.Take | dict[str, Any]) -> str:
    """The style a take was made in: its caption, else the planner's (a take made from lyrics
    alone); "" where it has neither, or one the Style field would refuse."""
    for style in records.Record.of(record).captions(entry):
        if style.strip() and len(style.strip()) <= checks.MAX_CAPTION_CHARS:
            return style.strip()
    return ""


def middle_region(seconds: Any) -> tuple[float, float]:
    """Edit's region for a take ``seconds`` long: its middle third, to 0.1 s, at least
    ``checks.MIN_REGION_SECONDS`` (the whole take where it is shorter than three times that)."""
    try:
        length = float(seconds)
    except (TypeError, ValueError):
        length = 0.0
    if not 0 < length < float("inf"):
        return 0.0, 10.0  # the field's default; the upload's checks say what is wrong
    if length < 3 * checks.MIN_REGION_SECONDS:
        return 0.0, math.floor(length * 10) / 10
    return round(length / 3, 1), round(2 * length / 3, 1)


def send_take(take: Any, record: Any, request: gr.Request = None) -> str:
    """The chosen take of a result (``record``, the result's metadata), as a file for another tab's
    source: a take this visitor's page made and the studio still keeps, placed in the uploads
    (within their quota) as if the visitor had uploaded it."""
    chosen = records.chosen(record, take, error_messages.NO_TAKE_YET)
    path = output_folder.studio_file(chosen.audio)
    # Another visitor's take gets the same message as one that is gone: nothing tells which it was.
    if path is None or not take_owners.made_by(request, chosen.audio):
        raise gr.Error(error_messages.TAKE_GONE.format(n=chosen.number))
    placed = uploads.link_in(path)  # one place per take, however often it is sent
    if placed is None:
        raise gr.Error(messages.UPLOADS_FULL)
    return placed


def stem_source(take: Any, record: Any, request: Any = None) -> Any:
    """The take of a result (``record``, its metadata; ``take`` counted from 1) that *Split into stems*
    splits: a take this visitor's page made (as *Send to*: the stems are written beside the take, and
    another visitor's would be overwritten) and the studio still keeps, on a studio that has the
    separation model."""
    chosen = records.chosen(record, take, error_messages.STEMS_NO_TAKE)
    path = output_folder.studio_take_audio(chosen.audio)
    # Another visitor's take gets the same message as one that is gone: nothing tells which it was.
    if path is None or not take_owners.made_by(request, chosen.audio):
        raise gr.Error(error_messages.STEMS_GONE.format(n=chosen.number))
    if (why := stems.missing_reason()) is not None:
        raise gr.Error(error_messages.STEMS_MISSING.format(error=why), title="Stems not available")
    return path
