"""What a result shows (seeds, the plan, the timings) and what it hands on: a take to another tab,
its settings back to Generate ("Use these settings").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

import checks
import plan_format
import records
import status
import stems
import takes
import tooltips as tips

# As many take slots as takes asked for, "Take to send" only when there is a choice; in the page (a
# server event taking the number would wipe the message a refused press just put on it).
SHOW_TAKES_JS = f"""(n) => {{
  const x = Math.round(Number(n)), count = Number.isFinite(x) ? Math.max(1, Math.min({checks.MAX_TAKES}, x)) : 1;
  const shown = (on) => ({{__type__: "update", visible: on}});
  return [...Array.from({{length: {checks.MAX_TAKES}}}, (_, i) => shown(i < count)), shown(count > 1)];
}}"""


def seeds_text(record: dict[str, Any]) -> str:
    """The line under a result, in plain text (the page shows it as text, API clients get it as is):
    each take's seed, how long it took where, and what the planner chose."""
    parts = [f"take {t['take']}: {t['seed']}" for t in record["takes"]]
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
    return f"{text}\n{line}"


def _quoted(text: Any, limit: int = 160) -> str:
    """A model's text in the seed line: readable characters only, one line, at most ``limit``."""
    text = plan_format.readable_text(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plan_text(plan: dict[str, Any]) -> str:
    """The planner's part of a result, in a line: what it chose, or why it was skipped."""
    if "skipped" in plan:
        return tips.PLAN_SKIPPED.format(reason=_quoted(plan["skipped"], 240))
    f = plan.get("fields", {})
    caption = _quoted(f.get("caption") or "")
    summary = " · ".join(
        part
        for part in (
            f"{f['bpm']} BPM" if f.get("bpm") else "",
            str(f.get("keyscale") or ""),
            f"{f['timesignature']} beats a bar" if f.get("timesignature") else "",
            f"“{caption}”" if caption else "",
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


def take_validator(position: int) -> Callable[..., list[dict[str, Any]]]:
    """The validator of an event that takes "Take to send" (input ``position``) and a result's
    record: a number outside the takes made gets its words on the field, and nothing runs."""

    def check(*values: Any) -> list[dict[str, Any]]:
        verdicts = [gr.validate(True, "") for _ in values]
        record = values[1 - position]
        made = record.get("takes") if isinstance(record, dict) else None
        if isinstance(made, list) and made:  # no take yet: the event itself says so
            try:
                records.take_index(values[position], len(made))
            except gr.Error as exc:
                verdicts[position] = gr.validate(False, exc.message)
        return verdicts

    return check


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


def stem_source(take: Any, record: Any) -> Any:
    """The take of a result (``record``, its metadata; ``take`` counted from 1) that *Split into stems*
    splits: a take the studio wrote and still keeps, on a studio that has the separation model."""
    made = record.get("takes") if isinstance(record, dict) else None
    if not isinstance(made, list) or not made:
        raise gr.Error(tips.STEMS_NO_TAKE)
    index = records.take_index(take, len(made))
    entry = made[index] if isinstance(made[index], dict) else {}
    path = takes.own_take_audio(entry.get("audio"))
    if path is None:
        raise gr.Error(tips.STEMS_GONE.format(n=index + 1))
    if (why := stems.missing_reason()) is not None:
        raise gr.Error(tips.STEMS_MISSING.format(error=why), title="Stems not available")
    return path
