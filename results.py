"""What a result shows (seeds, the plan, the timings) and what it hands on: a take to another tab,
its settings back to Generate ("Use these settings").
"""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

import checks
import records
import status
import takes
import tooltips as tips


def show_takes(n: float) -> list[Any]:
    """As many take slots as takes asked for; "Take to send" only when there is a choice."""
    try:
        count = max(1, min(checks.MAX_TAKES, int(float(n or 1))))
    except (TypeError, ValueError, OverflowError):
        count = 1
    return [*(gr.update(visible=i < count) for i in range(checks.MAX_TAKES)), gr.update(visible=count > 1)]


def seeds_text(record: dict[str, Any]) -> str:
    parts = [f"take {t['take']}: **{t['seed']}**" for t in record["takes"]]
    timings = record["timings"]
    took = timings.get("pipeline_s", 0) + timings.get("model_load_s", 0) + timings.get("planner_s", 0)
    text = f"Seeds — {', '.join(parts)} · made in {took:.1f} s on {status.device_label(record['model']['device'])}"
    plans = [t["planner"] for t in record["takes"] if t.get("planner")]
    if not plans:
        return text
    # One plan for the request (every take its own blueprint of the same length): said once.
    line = plan_text(plans[0])
    if record.get("params", {}).get("audio_duration") == -1 and plans[0].get("fields", {}).get("duration"):
        line += f" Think chose a length of {plans[0]['fields']['duration']} s."
    return f"{text}\n\n{line}"


def _quoted(text: str, limit: int = 160) -> str:
    """A model's text shown inside Markdown: one line, at most ``limit`` characters, no markup."""
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
    return re.sub(r"([\\`*_{}\[\]<>()#+\-.!|~])", r"\\\1", text)


def plan_text(plan: dict[str, Any]) -> str:
    """The planner's part of a result, in a line: what it chose, or why it was skipped."""
    if "skipped" in plan:
        return tips.PLAN_SKIPPED.format(reason=_quoted(plan["skipped"], 240))
    f = plan.get("fields", {})
    summary = " · ".join(
        part
        for part in (
            f"{f['bpm']} BPM" if f.get("bpm") else "",
            str(f.get("keyscale") or ""),
            f"{f['timesignature']} beats a bar" if f.get("timesignature") else "",
            f"“{_quoted(f['caption'])}”" if f.get("caption") else "",
        )
        if part
    )
    return tips.PLANNED.format(seconds=plan.get("seconds", 0), summary=summary or "your settings", codes=plan["codes"])


def settings_from_record(record: Any, take: Any = 1) -> tuple[Any, ...]:
    """Generate's fields from a take's record (a result's metadata or a take's ``.json``), seed
    included, so the take can be made again or varied; then switch to Generate.

    Every value is checked as the form checks it (``records``); one the form would refuse is named
    in an error and nothing is changed. Files (a LoRA, a timbre reference, a source song) are not
    brought back: they are named in a note, to upload again.
    """
    values = records.settings(record, take)
    if values["files"]:
        gr.Info(records.files_note(values["files"]))
    lyrics = values["lyrics"]
    return (
        values["prompt"],
        gr.update(value=lyrics, interactive=True) if lyrics else toggle_instrumental(True),
        not lyrics,
        values["duration"],
        values["bpm"],
        values["key"],
        values["time_signature"],
        values["language"],
        values["seed"],
        values["steps"],
        values["guidance"],
        values["shift"],
        1,
        values["format"],
        values["think"],
        False,  # the length comes back as it was chosen, with the plan that holds it
        values["rewrite_caption"],
        values["plan"],
        gr.Tabs(selected="generate"),
    )


def settings_from_file(path: Any) -> tuple[Any, ...]:
    """``settings_from_record`` for an uploaded take ``.json``."""
    return settings_from_record(records.read(path), 1)


def toggle_instrumental(on: bool) -> Any:
    if on:
        return gr.update(value=checks.INSTRUMENTAL_TAG, interactive=False)
    return gr.update(value="", interactive=True)


def send_take(take: Any, record: Any) -> str:
    """The chosen take of a result (``record``, the result's metadata), as a file for another tab's
    source; only a take the studio wrote and still keeps."""
    made = record.get("takes") if isinstance(record, dict) else None
    if not isinstance(made, list) or not made:
        raise gr.Error("There is no take yet — make one first.")
    index = records.take_index(take, len(made))
    entry = made[index] if isinstance(made[index], dict) else {}
    path = takes.own_take(entry.get("audio"))
    if path is None:
        raise gr.Error(f"Take {index + 1} is no longer kept by the studio; make it again.")
    return str(path)
