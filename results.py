"""What a result shows (seeds, the plan, the timings) and what it hands on (a take to another tab, its
settings back to Generate: "Use these settings"), and a take's record read back, safely: bounded in
size and depth, every value checked as the form's own fields check it, so "Use these settings" never
copies a value into the form that the form would refuse, and no record can cost more than a glance.
"""

from __future__ import annotations

import collections
import html
import json
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

import asgi_gate
import audio
import checks
import lora_presets
import models
import output_folder
import plan_format
import planner
import status
import stems
import studio_words
import tooltips as tips
import uploads

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
    parts = [f"take {t['take']}: {t['seed']}{_varied(t.get('variation'))}" for t in record["takes"]]
    if isinstance(asked := record.get("params", {}).get("seed_redrawn"), int):  # ``preparing.from_own_latents``
        parts[0] += tips.SEED_REDRAWN.format(asked=asked)
    timings = record["timings"]
    took = timings.get("pipeline_s", 0) + timings.get("model_load_s", 0) + timings.get("planner_s", 0)
    text = f"Seeds — {', '.join(parts)} · made in {took:.1f} s on {status.device_label(record['model']['device'])}"
    plans = [t["planner"] for t in record["takes"] if t.get("planner")]
    if not plans:
        return text
    # One plan for the request (every take its own blueprint of the same length): said once.
    line = plan_text(plans[0])
    if record.get("params", {}).get("audio_duration") == -1 and plans[0].get("fields", {}).get("duration"):
        chosen = plans[0]["fields"]["duration"]
        line += f" Think chose a length of {audio.clock(chosen)} ({chosen} s)."
    return f"{text}\n{line}"


def _varied(variation: Any) -> str:
    """A variation's part of its seed: the take it came from, by how much, its new noise's seed."""
    if not isinstance(variation, dict):
        return ""
    return f" (take {variation['of']['take']} varied {variation['amount']:g}, new noise {variation['seed']})"


def _quoted(text: Any, limit: int = 160) -> str:
    """A model's text in the seed line: readable characters only, one line, at most ``limit``."""
    text = plan_format.readable_text(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plan_text(plan: dict[str, Any]) -> str:
    """The planner's part of a result, in a line: what it chose, or why it was skipped."""
    if "skipped" in plan:
        return tips.PLAN_SKIPPED.format(reason=_quoted(plan["skipped"], 240))
    f = plan.get("fields", {})
    caption = _quoted(plan.get("caption_read", f.get("caption")) or "")  # as the model read it
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
    line = tips.PLANNED.format(seconds=plan.get("seconds", 0), summary=summary or "your settings")
    fitted = plan.get("caption_fit")
    if isinstance(fitted, dict) and fitted.get("kept") in ("phrase", "word", "character", "yours"):
        words = tips.CAPTION_YOURS if fitted["kept"] == "yours" else tips.CAPTION_FIT
        line += words.format(n=fitted.get("written_tokens"), most=fitted.get("most"), kept=fitted["kept"])
    return line


def settings_from_record(record: Any, take: Any = 1) -> tuple[Any, ...]:
    """Generate's fields (``FIELDS``, in that order) from a take's record (a result's metadata
    or a take's ``.json``), seed included, so the take can be made again or varied; then Generate.

    Every value is checked as the form checks it (``results``); one the form would refuse is named
    in an error and nothing is changed. A LoRA preset comes back where this studio offers it; files
    (a LoRA, a timbre reference, a source song) are not brought back: they are named in a note, to
    upload again.
    """
    values = record_settings(record, take)
    if values["files"]:
        gr.Info(files_note(values["files"]))
    if values["variation"]:  # Generate has no field for a variation's noise: say what comes back instead
        gr.Info(tips.SETTINGS_OF_A_VARIATION.format(**_variation_words(values["variation"])))
    if values["lyrics"]:
        values["lyrics"] = gr.update(value=values["lyrics"], interactive=True)
    else:
        values["lyrics"] = toggle_instrumental(True)
    return (*(values[name] for name in FIELDS), gr.Tabs(selected="generate"))


def _variation_words(variation: dict[str, Any]) -> dict[str, str]:
    of = variation.get("of") if isinstance(variation.get("of"), dict) else {}
    said = {"take": of.get("take"), "amount": variation.get("amount"), "seed": variation.get("seed")}
    number = lambda v: isinstance(v, int | float) and not isinstance(v, bool)  # noqa: E731
    return {key: f"{value:g}" if number(value) else said_safely(value) for key, value in said.items()}


def settings_from_file(path: Any) -> tuple[Any, ...]:
    """``settings_from_record`` for an uploaded take ``.json``."""
    return settings_from_record(read_record(path), 1)


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
                take_index(values[position], len(made))
            except gr.Error as exc:
                verdicts[position] = gr.validate(False, exc.message)
        return verdicts

    return check


# The takes each visitor's page (its Gradio session) made, newest last: "Send to" hands on these and
# no other, whatever a record sent with the request names. In memory, bounded: a page reloaded or
# long gone makes its takes again.
_made: collections.OrderedDict[str, collections.deque[str]] = collections.OrderedDict()
_made_lock = threading.Lock()
SESSIONS_KEPT, TAKES_KEPT = 4096, 64


def remember_takes(request: Any, record: dict[str, Any]) -> None:
    """Note the takes of ``record`` as made by ``request``'s session."""
    session = getattr(request, "session_hash", None)
    if not session:
        return
    with _made_lock:
        made = _made.setdefault(session, collections.deque(maxlen=TAKES_KEPT))
        made.extend(str(t.get("audio")) for t in record.get("takes", ()) if isinstance(t, dict))
        _made.move_to_end(session)
        while len(_made) > SESSIONS_KEPT:
            _made.popitem(last=False)


def made_by(request: Any, relative: Any) -> bool:
    """Whether ``request``'s page (its Gradio session) made the take ``relative`` names."""
    session = getattr(request, "session_hash", None)
    if request is None:  # called in the studio's own process, not by a visitor
        return True
    with _made_lock:
        return bool(session) and str(relative) in _made.get(session, ())


def send_to(target: str) -> Callable[[Any, Any], Any]:
    """What "Send to ``target``" fills: the chosen take as the song; for Extend and Edit also the
    take's style (a continuation, or a region, in the style it was made in); for Edit a region to
    start from, the take's middle third (the whole take would regenerate all of it). Cover's style
    stays the visitor's: a cover is a new style."""

    def send(take: Any, record: Any, request: gr.Request = None) -> Any:
        path = send_take(take, record, request)
        if target == "cover":
            return path
        entry = record["takes"][take_index(take, len(record["takes"]))]
        entry = entry if isinstance(entry, dict) else {}
        style = take_style(record, entry)
        if target == "extend":
            return path, style
        return (path, style, *middle_region(entry.get("seconds")))

    send.__name__ = f"send_to_{target}"
    return send


def take_style(record: dict[str, Any], entry: Any) -> str:
    """The style a take was made in: its caption, else the planner's (a take made from lyrics
    alone); "" where it has neither, or one the Style field would refuse."""
    params = record.get("params") if isinstance(record.get("params"), dict) else {}
    plan = entry.get("planner") if isinstance(entry, dict) and isinstance(entry.get("planner"), dict) else {}
    fields = plan.get("fields") if isinstance(plan.get("fields"), dict) else {}
    for style in (params.get("prompt"), fields.get("caption")):
        if isinstance(style, str) and style.strip() and len(style.strip()) <= checks.MAX_CAPTION_CHARS:
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
        return 0.0, 10.0  # the field's own default; the upload's checks say what is wrong
    if length < 3 * checks.MIN_REGION_SECONDS:
        return 0.0, math.floor(length * 10) / 10
    return round(length / 3, 1), round(2 * length / 3, 1)


def take_entry(record: Any, take: Any, no_take: str) -> tuple[dict[str, Any], int]:
    """Take number ``take`` (from 1) of a result's ``record``: its entry (empty where the record's entry
    is not one) and its index; ``no_take`` is what a record with no takes is told."""
    made = record.get("takes") if isinstance(record, dict) else None
    if not isinstance(made, list) or not made:
        raise gr.Error(no_take)
    index = take_index(take, len(made))
    return (made[index] if isinstance(made[index], dict) else {}), index


def send_take(take: Any, record: Any, request: gr.Request = None) -> str:
    """The chosen take of a result (``record``, the result's metadata), as a file for another tab's
    source: a take this visitor's page made and the studio still keeps, placed in the uploads
    (within their quota) as if the visitor had uploaded it."""
    entry, index = take_entry(record, take, "There is no take yet — make one first.")
    path = output_folder.own_take(entry.get("audio"))
    # Another visitor's take gets the same words as one that is gone: nothing tells which it was.
    if path is None or not made_by(request, entry.get("audio")):
        raise gr.Error(f"Take {index + 1} is no longer kept by the studio; make it again.")
    placed = uploads.link_in(path)  # one place per take, however often it is sent
    if placed is None:
        raise gr.Error(studio_words.UPLOADS_FULL)
    return placed


def stem_source(take: Any, record: Any, request: Any = None) -> Any:
    """The take of a result (``record``, its metadata; ``take`` counted from 1) that *Split into stems*
    splits: a take this visitor's page made (as *Send to*: the stems are written beside the take, and
    another visitor's would be overwritten) and the studio still keeps, on a studio that has the
    separation model."""
    entry, index = take_entry(record, take, tips.STEMS_NO_TAKE)
    path = output_folder.own_take_audio(entry.get("audio"))
    # Another visitor's take gets the same words as one that is gone: nothing tells which it was.
    if path is None or not made_by(request, entry.get("audio")):
        raise gr.Error(tips.STEMS_GONE.format(n=index + 1))
    if (why := stems.missing_reason()) is not None:
        raise gr.Error(tips.STEMS_MISSING.format(error=why), title="Stems not available")
    return path


# ---------------------------------------------------------------- a take's record read back

MAX_BYTES = 200_000
MAX_DEPTH = 32
# What *Use these settings* fills on Generate, in the order its endpoints return it, by
# ``modes.prepare_generate``'s own names: every field but the files (a record names them, it cannot
# carry them), and the page's *Instrumental* switch (tests/test_layout.py holds it to the signature).
FIELDS = ("prompt", "lyrics", "instrumental", "audio_duration", "bpm", "key_scale", "time_signature", "vocal_language",
          "seed", "inference_steps", "guidance_scale", "shift", "batch_size", "audio_format", "think", "auto_length",
          "rewrite_caption", "plan", "loop_bars", "dcw", "loudness", "fade_in", "fade_out", "lora_preset",
          "lora_scale")  # fmt: skip


def read_record(path: Any) -> dict[str, Any]:
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
    if asgi_gate.json_depth(data) > MAX_DEPTH:
        raise gr.Error("This file is not a take's record: it nests its data far deeper than a record does.")
    try:
        record = json.loads(data.decode("utf-8-sig"))  # a BOM, as some editors save it, is fine
    except (ValueError, UnicodeDecodeError):
        raise gr.Error("This file is not a take's record: it is not readable JSON.") from None
    return record


def record_settings(record: Any, take: Any = 1) -> dict[str, Any]:
    """Generate's form values from a record (a result's metadata or a take's ``.json``) by the
    preparer's names (``FIELDS``), seed included, and the ``files`` the record names but cannot
    carry; every value checked as the form checks it. ``gr.Error`` names the value at fault."""
    check_record(record)
    params, variant = record["params"], models.active_variant()
    if not isinstance(record.get("takes") or [], list):
        raise gr.Error(
            f"This record's takes ({said_safely(record['takes'])}) cannot be used: a record lists its takes."
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
        # A record from before the correction says nothing: such a take came from diffusers' own run, which
        # the studio no longer makes, so today's default applies (the model's: ``models.Variant.dcw``). A
        # record that says true or false was made so, and is made so again.
        "dcw": _checked(
            "dcw", variant.dcw if params.get("dcw") is None else params["dcw"], lambda v: checks.check_switch(v, "DCW")
        ),
        "variation": entry.get("variation") if isinstance(entry.get("variation"), dict) else None,
        "loop_bars": _checked("loop_bars", params.get("loop_bars"), checks.check_loop_bars) or 0,  # a loop stays one
    }


def check_record(record: Any) -> dict[str, Any]:
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
    if isinstance(params.get("reference"), dict):  # a take's voice comes back from that take (``voice_row``)
        files.pop("reference_audio", None)
    name, repo = params.get("lora_preset"), params.get("lora_repo")
    preset = ""
    if name or repo:
        files.pop("lora", None)  # a preset's file is the preset, not an upload
        here = {p.name: p for p in lora_presets.offered(variant.name)}
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
    # A result of one take has nothing to choose: "a whole number from 1 to 1" said so in a riddle.
    words = tips.TAKE_ONLY_ONE if count == 1 else tips.TAKE_NUMBER
    if isinstance(take, bool):  # True is 1 to Python, not a take number to a musician
        raise gr.Error(words.format(count=count, given=take))
    try:
        number = float(take)
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if not (number == number and number.is_integer() and 1 <= number <= count):
        raise gr.Error(words.format(count=count, given=checks.shown(take)))
    return int(number) - 1


def files_note(files: dict[str, Any]) -> str:
    """The files a record names but cannot carry, quoted short and escaped for a toast."""
    labels = {"lora": "LoRA", "lora_preset": "LoRA preset (not installed here)", "reference_audio": "timbre reference",
              "src_audio": "source song"}  # fmt: skip
    # A preset is named by its Hub repo (organisation included), a file by its name alone.
    shown = {key: str(value) if key == "lora_preset" else Path(str(value)).name for key, value in files.items()}
    names = [f"{labels[key]} {said_safely(value)}" for key, value in shown.items()]
    return f"Settings brought back. Upload again what a take's record cannot carry: {', '.join(names)}."


def _text(params: dict[str, Any], name: str) -> str:
    value = params.get(name) or ""
    if not isinstance(value, str):
        raise gr.Error(f"This record's {name} is not text ({said_safely(value)}).")
    return _checked(name, value, lambda text: checks.check_text_lengths({name: text}) or text)


def _checked(name: str, value: Any, check: Any) -> Any:
    try:
        return check(value)
    except gr.Error as exc:
        words = html.escape(str(exc.message), quote=False)  # it may quote the value too
        raise gr.Error(f"This record's {name} ({said_safely(value)}) cannot be used: {words}") from None


def said_safely(value: Any) -> str:
    """A value a record brings, quoted short (``checks.shown``) and escaped: Gradio renders a toast as
    HTML, so a shared record's ``<img src=…>`` would otherwise be a tracking pixel in the visitor's page."""
    return html.escape(checks.shown(value), quote=False)
