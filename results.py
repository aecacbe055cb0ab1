"""What a result shows (seeds, the plan, the timings) and what it hands on: a take to another tab,
its settings back to Generate ("Use these settings").
"""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

import checks
import models
import planner
import status
import tooltips as tips


def show_takes(n: float) -> list[Any]:
    """As many take slots as takes asked for; "Take to send" only when there is a choice."""
    try:
        count = max(1, min(checks.MAX_TAKES, int(float(n or 1))))
    except (TypeError, ValueError):
        count = 1
    return [*(gr.update(visible=i < count) for i in range(checks.MAX_TAKES)), gr.update(visible=count > 1)]


def seeds_text(record: dict[str, Any]) -> str:
    parts = [f"take {t['take']}: **{t['seed']}**" for t in record["takes"]]
    timings = record["timings"]
    took = timings.get("pipeline_s", 0) + timings.get("model_load_s", 0) + timings.get("planner_s", 0)
    text = f"Seeds — {', '.join(parts)} · made in {took:.1f} s on {status.device_label(record['model']['device'])}"
    plans = [(t["take"], t["planner"]) for t in record["takes"] if t.get("planner")]
    if len(plans) == 1:
        return f"{text}\n\n{plan_text(plans[0][1])}"
    return "\n\n".join([text, *(f"Take {take}: {plan_text(plan)}" for take, plan in plans)])


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

    Files (a LoRA, a timbre reference, a source song) are not brought back: they are named in a
    note, to upload again.
    """
    if not isinstance(record, dict) or not isinstance(record.get("params"), dict):
        raise gr.Error("This is not a take's record. Use the .json file saved beside a take.")
    params = record["params"]
    takes = [t for t in record.get("takes") or [] if isinstance(t, dict) and "seed" in t]
    try:
        index = max(1, min(len(takes), int(float(take or 1)))) - 1 if takes else 0
    except (TypeError, ValueError):
        index = 0
    if "take" in record and "seed" in record:  # one take's own .json: its seed
        seed = record["seed"]
    else:
        seed = takes[index]["seed"] if takes else params.get("seed", -1)
    lyrics = params.get("lyrics") or ""
    language = params.get("vocal_language") or "en"
    variant = models.active_variant()
    files = [f"{label} {params[key]}" for key, label in
             (("lora", "LoRA"), ("reference_audio", "timbre reference"), ("src_audio", "source song"))
             if params.get(key)]  # fmt: skip
    if files:
        gr.Info(f"Settings brought back. Upload again what a take's record cannot carry: {', '.join(files)}.")
    return (
        params.get("prompt", ""),
        gr.update(value=lyrics, interactive=True) if lyrics else toggle_instrumental(True),
        not lyrics,
        params.get("audio_duration") or 30,
        params.get("bpm") or 0,
        params.get("key_scale") or checks.AUTO,
        params.get("time_signature") or checks.AUTO,
        language if language in checks.LANGUAGES else "en",
        seed,
        params.get("inference_steps") or variant.steps,
        params.get("guidance_scale") or variant.guidance,
        params.get("shift") or variant.shift,
        1,
        params.get("audio_format") or "wav",
        bool(params.get("think")) and planner.enabled(),
        gr.Tabs(selected="generate"),
    )


def settings_from_file(path: Any) -> tuple[Any, ...]:
    """``settings_from_record`` for an uploaded take ``.json``."""
    import json

    if not path:
        raise gr.Error("Upload the .json file saved beside a take.")
    try:
        with open(str(path), encoding="utf-8") as f:
            record = json.loads(f.read(200_000))
    except (OSError, ValueError, UnicodeDecodeError):
        raise gr.Error("This file is not a take's record: it is not readable JSON.") from None
    return settings_from_record(record, 1)


def toggle_instrumental(on: bool) -> Any:
    if on:
        return gr.update(value=checks.INSTRUMENTAL_TAG, interactive=False)
    return gr.update(value="", interactive=True)


def send_take(take: float, *paths: str | None) -> tuple[Any, ...]:
    """The chosen take of a result, for another tab's source."""
    index = max(1, min(len(paths), int(take or 1))) - 1
    if not paths[index]:
        raise gr.Error(f"There is no take {index + 1} yet — make one first.")
    return paths[index]
