"""A take's record read back, safely: bounded in size and depth, every value checked as the form's
own fields check it, so "Use these settings" never copies a value into the form that the form would
refuse, and no record can cost more than a glance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

import checks
import models
import planner
import presets
import serving

MAX_BYTES = 200_000
MAX_DEPTH = 32
# What *Use these settings* fills on Generate, in the order its endpoints return it, by
# ``modes.prepare_generate``'s own names: every field but the files (a record names them, it cannot
# carry them), and the page's *Instrumental* switch (tests/test_layout.py holds it to the signature).
FIELDS = ("prompt", "lyrics", "instrumental", "audio_duration", "bpm", "key_scale", "time_signature", "vocal_language",
          "seed", "inference_steps", "guidance_scale", "shift", "batch_size", "audio_format", "think", "auto_length",
          "rewrite_caption", "plan", "loudness", "fade_in", "fade_out", "lora_preset", "lora_scale")  # fmt: skip


def read(path: Any) -> dict[str, Any]:
    """A record file a visitor uploaded, as a dict; ``gr.Error`` in words for anything else."""
    if not path:
        raise gr.Error("Upload the .json file saved beside a take.")
    try:
        with open(str(path), "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError:
        raise gr.Error("The record file could not be read; upload it again.") from None
    if len(data) > MAX_BYTES:
        raise gr.Error(f"This file is larger than a take's record ({MAX_BYTES // 1000} KB at most).")
    if serving.json_depth(data) > MAX_DEPTH:
        raise gr.Error("This file is not a take's record: it nests its data far deeper than a record does.")
    try:
        record = json.loads(data.decode("utf-8-sig"))  # a BOM, as some editors save it, is fine
    except (ValueError, UnicodeDecodeError):
        raise gr.Error("This file is not a take's record: it is not readable JSON.") from None
    return record


def settings(record: Any, take: Any = 1) -> dict[str, Any]:
    """Generate's form values from a record (a result's metadata or a take's ``.json``) by the
    preparer's names (``FIELDS``), seed included, and the ``files`` the record names but cannot
    carry; every value checked as the form checks it. ``gr.Error`` names the value at fault."""
    checked(record)
    params, variant = record["params"], models.active_variant()
    if not isinstance(record.get("takes") or [], list):
        raise gr.Error(
            f"This record's takes ({checks.shown(record['takes'])}) cannot be used: a record lists its takes."
        )
    made = [t for t in record.get("takes") or [] if isinstance(t, dict) and "seed" in t]
    index = take_index(take, len(made)) if made else 0
    seed = record["seed"] if "take" in record and "seed" in record else made[index]["seed"] if made else -1
    prompt, lyrics = _text(params, "prompt"), _text(params, "lyrics")
    entry = record if "take" in record and "seed" in record else made[index] if made else {}
    plan = _plan(entry.get("planner"))
    length = params.get("audio_duration", 30)
    if length == -1:  # Think chose it: bring back what it chose, with the plan that holds it
        length = json.loads(plan)["duration"] if plan else planner.FALLBACK_SECONDS
    duration = _checked("audio_duration", length, checks.check_duration)
    asked = (params.get("inference_steps"), params.get("guidance_scale"), params.get("shift"))
    steps, guidance, shift = _checked("inference_steps", None, lambda _: checks.check_sampling(*asked, variant))
    language = _checked("vocal_language", params.get("vocal_language") or checks.UNKNOWN, checks.check_language)
    return {
        "prompt": prompt,
        "lyrics": lyrics,
        "instrumental": not lyrics,
        "audio_duration": duration,
        "bpm": _checked("bpm", params.get("bpm"), checks.check_bpm) or 0,
        "key_scale": _checked("key_scale", params.get("key_scale"), checks.check_key) or checks.AUTO,
        "time_signature": _checked("time_signature", params.get("time_signature"), checks.check_time_signature)
        or checks.AUTO,
        "vocal_language": language,
        "seed": _checked("seed", seed, checks.check_seed),
        "inference_steps": steps,
        "guidance_scale": guidance,
        "shift": shift,
        "batch_size": 1,  # the take, made again alone
        "audio_format": _checked("audio_format", params.get("audio_format"), checks.check_format),
        "think": _checked("think", params.get("think", False), checks.check_switch) and planner.enabled(),
        "auto_length": False,  # the length comes back as it was chosen, with the plan that holds it
        "rewrite_caption": _checked("rewrite_caption", params.get("rewrite_caption", True), checks.check_switch),
        "plan": plan if planner.enabled() else "",
        # A record from before finishing existed was made as rendered.
        "loudness": _loudness(params.get("loudness", checks.LOUDNESS_OFF)),
        "fade_in": _checked("fade_in", params.get("fade_in", 0), lambda v: checks.check_fade(v, "Fade in")),
        "fade_out": _checked("fade_out", params.get("fade_out", 0), lambda v: checks.check_fade(v, "Fade out")),
        **_lora(params, variant),
        "variation": entry.get("variation") if isinstance(entry.get("variation"), dict) else None,
    }


def checked(record: Any) -> dict[str, Any]:
    """``record`` if it has a take's record's shape (its settings, nested no deeper than a record);
    ``gr.Error`` in words otherwise."""
    if not isinstance(record, dict) or not isinstance(record.get("params"), dict):
        raise gr.Error("This is not a take's record. Use the .json file saved beside a take.")
    if _nesting(record) > MAX_DEPTH:
        raise gr.Error("This is not a take's record: it nests its data far deeper than a record does.")
    return record


def _loudness(value: Any) -> str:
    """The Loudness field's value (its choices are text) for a record's target."""
    lufs = _checked("loudness", value, checks.check_loudness)
    return checks.LOUDNESS_OFF if lufs is None else f"{lufs:g}"


def _lora(params: dict[str, Any], variant: models.Variant) -> dict[str, Any]:
    """The record's LoRA preset (when this studio offers it) and strength, and the files it names."""
    files = {key: params[key] for key in ("lora", "reference_audio", "src_audio") if params.get(key)}
    name, repo = params.get("lora_preset"), params.get("lora_repo")
    preset = ""
    if name or repo:
        files.pop("lora", None)  # a preset's file is the preset, not an upload
        here = {p.name: p for p in presets.offered(variant.name)}
        found = here.get(name) if isinstance(name, str) else None
        if found is not None and (not repo or found.repo == repo):
            preset = found.name
        else:  # made with a preset this studio does not hold: named, like a file, for the visitor to bring
            files["lora_preset"] = repo if isinstance(repo, str) and repo else name
    strength = params.get("lora_scale", 1.0) if params.get("lora") else 1.0
    scale = _checked("lora_scale", strength, lambda v: checks.in_range(v, "LoRA strength", *checks.LORA_SCALE_RANGE))
    return {"files": files, "lora_preset": preset, "lora_scale": scale}


def _plan(entry: Any) -> str:
    """The plan a take's record holds, as the Plan field takes it (JSON, with the take's place in
    its batch), checked as the field checks it; "" where the take had none."""
    if not isinstance(entry, dict) or not isinstance(entry.get("fields"), dict):
        return ""
    text = json.dumps({**entry["fields"], "take": entry.get("take"), "of": entry.get("of")}, ensure_ascii=False)
    _checked("planner", text, checks.check_plan)
    return text


def _nesting(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts, without recursion (stops past ``MAX_DEPTH``)."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_DEPTH:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def take_index(take: Any, count: int) -> int:
    """The 0-based index of take number ``take`` (1 … ``count``); ``gr.Error`` in words otherwise."""
    if take is None or take == "":
        return 0
    if isinstance(take, bool):  # True is 1 to Python, not a take number to a musician
        raise gr.Error(f"Take to send must be a whole number from 1 to {count} (you asked for {take}).")
    try:
        number = float(take)
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if not (number == number and number.is_integer() and 1 <= number <= count):
        raise gr.Error(f"Take to send must be a whole number from 1 to {count} (you asked for {checks.shown(take)}).")
    return int(number) - 1


def files_note(files: dict[str, Any]) -> str:
    """The files a record names but cannot carry, quoted short and escaped for a toast."""
    import html

    labels = {"lora": "LoRA", "lora_preset": "LoRA preset (not installed here)", "reference_audio": "timbre reference",
              "src_audio": "source song"}  # fmt: skip
    # A preset is named by its Hub repo (organisation included), a file by its name alone.
    shown = {key: str(value) if key == "lora_preset" else Path(str(value)).name for key, value in files.items()}
    names = [f"{labels[key]} {html.escape(checks.shown(value))}" for key, value in shown.items()]
    return f"Settings brought back. Upload again what a take's record cannot carry: {', '.join(names)}."


def _text(params: dict[str, Any], name: str) -> str:
    value = params.get(name) or ""
    if not isinstance(value, str):
        raise gr.Error(f"This record's {name} is not text ({checks.shown(value)}).")
    checks.check_text_lengths({name: value})
    return value


def _checked(name: str, value: Any, check: Any) -> Any:
    try:
        return check(value)
    except gr.Error as exc:
        raise gr.Error(f"This record's {name} ({checks.shown(value)}) cannot be used: {exc.message}") from None
