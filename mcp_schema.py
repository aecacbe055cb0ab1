"""What an agent is told at the MCP endpoint (``agents``): the instructions, each tool's and parameter's
description (``tool_help``), with its range and default from where each fact lives, the schema an
agent's arguments are held to (``input_schema``), no stricter than the studio's checks, and the
messages for arguments that do not fit it (``argument_problem``).

A parameter's description is the page's help (``tooltips``) where it fits, and this module's ``MCP_*``
where the page's help speaks of the page or carries numbers of its own. The ranges are ``checks``' (and
the two modules that keep a range of their own), written here only as references; a default is what the
API fills in when an agent leaves the parameter out (the page's field, or the model's default:
``parameters.Param.model_default``).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import admission
import asgi_gate
import audio
import checks
import lyrics
import models
import parameters
import plan_format
import tooltips as tips
import variations

# The studio as MCP tools (``agents``): a tool's description says what a musician gets; ``{fields}`` are
# filled from where each fact lives (``agents.facts``: ``checks``' ranges, the model's defaults).
MCP_INSTRUCTIONS = (
    "ACE Music Studio makes songs with ACE-Step 1.5 ({model}). An agent is a visitor like any other: the same checks "
    "and messages, at most {share} requests of yours waiting or being made at once, and on a ZeroGPU Space your own "
    "daily GPU quota. A music tool returns each take's URL, a line of seeds and the take's record (JSON): pass the "
    "record to variations, morph or stems, a take's URL as the song of cover, extend, edit or describe. A take's "
    "record maps it: takes[i].bars, where each bar (one measure of its metre: 4 beats in 4/4) starts, in seconds "
    "(bar 1 first), and takes[i].sections, its [Section]s' names, starts and ends; edit and extend count bars so. "
    "takes[i].tempo says the tempo it was played at against the bpm asked (said: one line of text)."
)
MCP_TOOLS = {
    "generate": "Make a song from a style caption and/or lyrics: {takes} takes of {seconds}, each with its seed. "
    "With think on, ACE-Step's planner first works out tempo, key, structure and the song's blueprint. With "
    "loop_bars, each take is a seamless loop of that many bars at bpm; with lock_to_grid, each take's bars are "
    "warped onto bpm.",
    "lyrics": "Write song lyrics about a theme, one [Section] tag per part, in the language asked; returns the lyrics, "
    "a style caption that suits them, and the seed that writes them again.",
    "write_song": "Write a whole song from one line: ACE-Step's planner writes its caption, lyrics, BPM, key, time "
    "signature and length (returned in that order, then a note); pass them to generate.",
    "cover": "Play a song again in a new style: same length, its melody and structure kept as much as "
    "audio_cover_strength says.",
    "extend": "Continue a song: {extend} of new music after its end; the original part is kept exactly as it is "
    "(at its own sample rate; in WAV, or FLAC for a 16- or 24-bit song; MP3 encodes it again).",
    "edit": "Change part of a song: make a stretch of it again (at least {region}) with a new style or new lyrics, "
    "the rest kept as it was; or, with change, add a part, take one out, or complete the song around it.",
    "morph": "Move a take made here by generate toward a new caption or new lyrics (ACE-Step's flow edit): the "
    "song itself changes, its structure kept; one take.",
    "variations": "New takes of a take made here: its caption, lyrics, length, seed and plan kept, its starting noise "
    "mixed with new noise (amount 0 makes it again, 1 a new song on the same plan).",
    "stems": "Split a take made here into vocals, drums, bass and other, four files that add up to the take.",
    "describe": "Listen to a song and write what it is: caption, lyrics, vocal language, BPM, key and time "
    "signature; fills only what you leave empty and returns the six, then a note.",
}
# A parameter's description where the page's help (below) speaks of the page, or carries numbers of its own.
MCP_FIELDS = {
    "lyrics": "One section tag per part ([Verse], [Chorus], [Bridge], [Outro]), then its lines; empty or "
    "[Instrumental] for music without singing.",
    "plan": "A take's plan as its record holds it (JSON): think follows it instead of planning anew, so the take "
    "comes out again from its seed; empty: think plans anew.",
    "repaint_mode": "How the stretch keeps to the song around it: conservative stays closest to it, aggressive makes "
    "it as new music, balanced (upstream's default) goes between by repaint_strength.",
    "audio_duration": "Length of the song in seconds.",
    **{
        f"lora_{n}": f"Adapter {n}, combined with the others: the URL of a LoRA or LoKr .safetensors file you "
        f"uploaded to this studio (POST /gradio_api/upload), at lora_{n}_scale. A slot takes a LoRA or a LoKr file "
        f"or a preset (lora_{n}_preset), not both; each adapter once."
        for n in (2, 3)
    },
    **{
        f"lora_{n}_preset": f"Adapter {n} as a preset installed here (by name), at lora_{n}_scale; or give its file "
        f"as lora_{n}."
        for n in (2, 3)
    },
    "bpm": "Tempo in beats per minute; 0 lets the model choose.",
    "batch_size": "How many takes in one go, each with its own seed (the next number).",
    "inference_steps": "Denoising steps: more are slower and finer.",
    "extend_seconds": "How much new music to add (at the end, before the start or from the point where says), in "
    "seconds.",
    "where": 'Where the new music goes: "end" (after the song, the default), "start" (an intro before it: the whole '
    'song kept after it, its bar 1 on a bar line), or a point inside the song in seconds (92.5), m:ss ("1:32.5") '
    'or a bar ("bar 9", counted from bar 1 as takes[i].bars counts): the song is kept sample for sample up to it and '
    "what followed is replaced by extend_seconds (or bars) of new music.",
    "ending": "True: the new part closes the song as an outro rather than stopping mid-phrase: its lyrics end in an "
    "[Outro] section (added where they have none; lyrics with one end the song already), and extend_seconds "
    'become the nearest whole bars, so its last bar line is the song\'s end. Not with where "start".',
    "src_audio": "The song: the URL of a take this studio made for you, or of a file you uploaded to it "
    "(POST /gradio_api/upload).",
    "auto_length": "With think on: the planner chooses the length, and audio_duration is not used.",
    "repainting_start": "Start of the stretch to make again, in seconds from the song's start.",
    "repainting_end": "End of the stretch, in seconds from the song's start.",
    "take": "Which take of the record, counted from 1.",
    "record": "The record a music tool returned (its last value), as the JSON text it came in or as an object.",
    "morph": "Morph instead of a new rendition: the song itself moves from what it is (morph_prompt, morph_lyrics) to "
    "the new style, keeping its structure.",
    "idea": "One line about the song.",
    "instrumental": "No lyrics: music without singing.",
    "temperature": "Low is safe and predictable, high surprising (and more mistakes).",
    "reference_take": "A take of yours whose voice to sing with: its URL, as a tool returned it, or its name as its "
    "record gives it (takes[i].audio). Not with reference_audio.",
    "lines": "Edit by lyric lines: the sung lines to make again, of a take this studio made with lyrics, counted from "
    '1: a number (3), a list ([3, 4]) or text ("3, 4", "3-5"). The stretch becomes theirs (a breath each side) and '
    "lyrics gives them new lyrics (empty: kept as sung).",
    "loop_bars": "Make each take a loop of this many bars (2, 4, 8, 16 or 32; 0: a song). A bar is one count of the "
    "time signature's beats (4 in 4/4, 3 in 3/4, 6 in 6/8) at bpm; with think on, a bpm or time signature left "
    "to auto is the planner's, else a loop needs bpm (auto metre: 4). The take is exactly that long, to the "
    "sample, and its end runs on into its start, so any player or DAW repeats it seamlessly. audio_duration is "
    "not used, fades are refused; its record says loop (bars, beats_per_bar, bpm, samples).",
    "first_downbeat": "Where bar 1 starts, in seconds from the song's start (a downbeat), where the studio's map of the "
    "song is wrong or unsure: bars (and the take's record, takes[i].bars) are counted from there, on the beats the "
    "studio heard (the one nearest it becomes bar 1), or, where it heard none or bpm is not their tempo within an "
    "octave, laid at bpm from this time. Nothing before it is counted. Must lie inside the song; empty: the studio's map.",
    "section": "Edit by lyric lines: one [Section] of the take, by its name (Chorus) or its number from 1; its lines are "
    "made again, as with lines.",
}
# Edit and Extend by the bar (``edit_bars``): bars as the take's record counts them (takes[i].bars).
MCP_EDIT_BARS = (
    "Edit by the bar (a bar: one measure of the song's metre, 4 beats in 4/4): the bars to make again, counted from "
    "1 as the take's record lists them (takes[i].bars): a "
    'number (9), text ("9-16") or a list ([9, 16]). The stretch runs from the start of the first to the start of '
    "the bar after the last (the song's end after its last bar). Not with lines, a section or a region in seconds."
)
MCP_EXTEND_BARS = (
    "Whole bars to add at the song's tempo, in place of extend_seconds: the new part ends on a bar line, so the "
    "next bar would start on the beat (a bar: one measure of the song's metre, as its record's takes[i].bars count)."
)
# What comes back where a value is none (``agents``): an unused take slot is left out, a missing file says so.
MCP_NOT_HERE = (
    "{name} takes the URL of a take this studio made for you, or of a file you uploaded to it (POST "
    "/gradio_api/upload); the studio fetches nothing from elsewhere. Upload the file, then pass the URL it gives back. "
    "Where the studio cannot see your address, a take is yours only if you send the same Authorization header "
    "with each call."
)
MCP_MANY_AGENTS = "The studio is serving as many agents as it can at once. Nothing was lost: try again in a minute."
MCP_AGENTS_HERE = (
    "{count} agents {whose} are already calling the studio at once, the most it serves {together}. Nothing was "
    "lost: try again when one of their calls has finished.{more}"
)
# Each kind of share of the agents' table (``agent_table.kind_of``) as a message true of the agent refused: whose
# agents are counted, how many together, and what else it may do.
_SHARES = {
    "address": ("from your address", "from one address", ""),
    "network": ("from your network (its IPv6 /64)", "from one network", ""),
    "credentials": ("with your credentials", "with one set of credentials", ""),
    "nameless": ("without an address the studio can see", "of them together", ""),
    "newcomers": (
        "that the studio cannot tell apart by address and has not served yet",
        "of them together",
        " An agent that sends the same Authorization header with each call counts on its own once one of its calls "
        "has been served.",
    ),
}


def agents_here(kind: str, count: int) -> str:
    """Why an agent is refused where its share of the agents' table, of ``kind``, holds ``count`` busy."""
    whose, together, more = _SHARES[kind]
    return MCP_AGENTS_HERE.format(count=count, whose=whose, together=together, more=more)


MCP_UNKNOWN_TOOL = "The studio has no tool {name}. Its tools: {tools}."
MCP_NO_PARAMETER = "{tool} has no parameter {name}. Its parameters: {names}."
MCP_WRONG_KIND = "{name} takes {kinds}; it was given {given}."
MCP_WRONG_VALUE = "{name} cannot take {given}: its description says what it takes."
MCP_TOO_DEEP = (
    "{name} nests {depth} levels deep; a record or plan a tool returned nests at most {deepest}. Pass it as the tool "
    "returned it."
)
# What the loopback join's HTTP refusals say where the studio's message does not come with them.
MCP_REFUSED = "The studio could not take this call (HTTP {status}). Check the arguments, then try again."
MCP_UNREACHED = "The studio could not pass this call on just now. Nothing was made: try again in a moment."
# How the schema's kinds read to an agent.
KINDS = {
    "number": "a number",
    "integer": "a whole number",
    "string": "text",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}
# How deeply a record or plan passed to a tool may nest: a record a tool returns nests 5 levels (a take's
# variation's source), a plan 3; Gradio's join would nest it deeper still (``asgi_gate.MAX_DEPTH``).
DEEPEST = 16
# What a parameter takes beyond its field's schema, where the studio's checks read more:
# ``edit_lines`` reads lyric line numbers as a number, a list of numbers or of text, or text such as "3, 4".
LOOSER = {
    name: {"type": ["array", "string", "number", "null"], "items": {"type": ["string", "number"]}}
    for name in ("lines", "bars")
} | {
    "first_downbeat": {"type": ["number", "string", "null"]},  # seconds, or the page's text box's text
    "where": {"type": ["string", "number"]},  # "end", "start", or a point: 92.5, "1:32.5", "bar 9"
}

# The page's help for a parameter, where it says what the parameter does without speaking of the page.
PAGE_HELP = {
    "prompt": f"{tips.CAPTION} {tips.CAPTION_EXAMPLE}",
    "lyrics": tips.LYRICS,
    "reference_audio": tips.REFERENCE,
    "lora": tips.LORA,
    "lora_preset": tips.LORA_PRESET,
    "think": tips.THINK,
    "rewrite_caption": tips.THINK_CAPTION,
    "plan": tips.PLAN,
    "loudness": tips.LOUDNESS,
    "morph_prompt": tips.MORPH_STYLE,
    "morph_lyrics": tips.MORPH_LYRICS,
    "change": tips.CHANGE,
    "part": tips.PART,
    "add_parts": tips.ADD_PARTS,
    "repaint_mode": tips.REPAINT_MODE,
    "amount": tips.VARIATION_AMOUNT,
    "count": tips.VARIATION_COUNT,
    "theme": tips.LYRICS_THEME,
    "genre": tips.LYRICS_GENRE,
    "mood": tips.LYRICS_MOOD,
    "structure": tips.LYRICS_STRUCTURE,
    "custom_sections": tips.LYRICS_CUSTOM,
    "length": tips.LYRICS_LENGTH,
    **parameters.mcp_help(),
}
# Where one tool's parameter means something else than elsewhere.
TOOL_HELP = {
    "cover": {"prompt": tips.COVER_CAPTION, "lyrics": tips.COVER_LYRICS},
    "extend": {"prompt": tips.EXTEND_CAPTION, "bars": MCP_EXTEND_BARS},
    "edit": {"lyrics": tips.EDIT_LYRICS, "bars": MCP_EDIT_BARS},
    "lyrics": {"vocal_language": tips.LYRICS_LANGUAGE},
    "variations": {"seed": tips.VARIATION_SEED},
    "morph": {
        "prompt": tips.MORPH_TAKE_STYLE,
        "lyrics": tips.MORPH_TAKE_LYRICS,
        "inference_steps": tips.MORPH_TAKE_STEPS,
        "seed": tips.MORPH_TAKE_SEED,
    },
}


def ranges() -> dict[str, tuple[Any, ...]]:
    """Each numeric parameter's range as the studio checks it: (low, high) or (low, high, unit)."""
    takes = (1, checks.MAX_TAKES)
    return {
        "audio_duration": (audio.MIN_SECONDS, audio.MAX_SECONDS, " s"),
        "bpm": plan_format.BPM_RANGE,
        "batch_size": takes,
        "count": takes,
        "take": takes,
        "loudness": (*checks.LUFS_RANGE, " LUFS"),
        "extend_seconds": (*checks.EXTEND_RANGE, " s"),
        "amount": variations.AMOUNT_RANGE,
        "temperature": lyrics.TEMPERATURE_RANGE,
        **parameters.ranges(),
    }


def span(low: float, high: float, unit: str = "") -> str:
    return f"{_number(low)}–{_number(high)}{unit}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def facts(variant: models.Variant) -> dict[str, Any]:
    """The numbers a tool's description names (``MCP_TOOLS``, ``MCP_INSTRUCTIONS``)."""
    return {
        "model": variant.label,
        "seconds": span(audio.MIN_SECONDS, audio.MAX_SECONDS, " s"),
        "takes": span(1, checks.MAX_TAKES),
        "extend": span(*checks.EXTEND_RANGE, " s"),
        "region": f"{checks.MIN_REGION_SECONDS:g} s",
        "share": admission.per_visitor(),
    }


def instructions(variant: models.Variant) -> str:
    """What an agent reads when it connects: what the studio is, and that its rules are a visitor's."""
    return MCP_INSTRUCTIONS.format(**facts(variant))


def tool_help(tool: str, parameters: list[dict[str, Any]], variant: models.Variant) -> tuple[str, dict[str, str]]:
    """A tool's description and each parameter's (its API info's ``parameters``, with their choices
    where Gradio lists them: ``choices``, and ``many`` where any number of them may be given)."""
    return MCP_TOOLS[tool].format(**facts(variant)), {
        p["parameter_name"]: parameter_help(tool, p, variant) for p in parameters
    }


def parameter_help(tool: str, parameter: dict[str, Any], variant: models.Variant) -> str:
    """One parameter: what it does, its range or choices, its longest text, and its default."""
    name = parameter["parameter_name"]
    parts = [TOOL_HELP.get(tool, {}).get(name) or MCP_FIELDS.get(name) or PAGE_HELP.get(name, "")]
    listed = ", ".join(json.dumps(c, ensure_ascii=False) for c in parameter.get("choices") or ())
    many = "any of" if parameter.get("many") else "one of"
    if name in ranges():
        parts.append(f"Range: {span(*ranges()[name])}" + (f", or {many}: {listed}." if listed else "."))
    elif listed:
        parts.append(f"{many.capitalize()}: {listed}.")
    if name in checks.TEXT_LIMITS:
        parts.append(f"Up to {checks.TEXT_LIMITS[name]} characters.")
    if parameter.get("parameter_has_default"):
        parts.append(f"Default: {_default(name, parameter.get('parameter_default'), variant)}.")
    return " ".join(p for p in parts if p)


def _default(name: str, value: Any, variant: models.Variant) -> str:
    declared = parameters.PARAMS.get(name)
    if value is None and declared is not None and declared.model_default:  # the model decides it (steps, DCW …)
        value = getattr(variant, declared.model_default)
        shown = ("on" if value else "off") if isinstance(value, bool) else f"{value:g}"
        return f"the model's default ({shown} on {variant.label})"
    return "none" if value is None or value == [] else json.dumps(value, ensure_ascii=False)


def input_schema(
    schema: dict[str, Any], parameters: list[dict[str, Any]], descriptions: dict[str, str]
) -> dict[str, Any]:
    """Gradio's input schema as the studio checks it: a value's choices are in its description, not an
    ``enum`` (the studio takes "A min" for a key, "Japanese" for a language, any LUFS in range, and
    the MCP server would refuse those with jsonschema's messages before the studio's checks), a number
    need not be whole where the studio says so itself, none is allowed where none is the default,
    and the default is given even where it is false, zero or empty."""
    defaults = {p["parameter_name"]: p for p in parameters}
    properties = {}
    for name, prop in schema.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k not in ("enum", "title", "required")}
        if isinstance(prop.get("items"), dict):
            prop["items"] = {k: v for k, v in prop["items"].items() if k != "enum"}
        if any_json(prop):  # a record or plan: as an object, or as the text a tool returned
            prop["type"] = ["object", "string"]
        if name in LOOSER:
            prop = {**{k: v for k, v in prop.items() if k != "items"}, **LOOSER[name]}
        if prop.get("type") == "integer":
            prop["type"] = "number"
        given = defaults.get(name, {})
        if given.get("parameter_has_default"):
            prop["default"] = given.get("parameter_default")
            if prop["default"] is None and "type" in prop:
                prop["type"] = [*([prop["type"]] if isinstance(prop["type"], str) else prop["type"]), "null"]
        prop["description"] = descriptions.get(name, "")
        properties[name] = prop
    return {**schema, "properties": properties}


def any_json(schema: dict[str, Any]) -> bool:
    """Whether a parameter takes any JSON (``gr.JSON``'s schema: ``{"type": {}}``)."""
    return not isinstance(schema.get("type"), str) and "anyOf" not in schema


def json_text(arguments: dict[str, Any], parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """An agent's arguments with the JSON text it passes for a parameter that takes any JSON (a
    record, as a tool returned it) read as JSON; text that is not JSON goes on as it is, to be refused
    with the studio's message. ``parameters``: the endpoint's API info. Either nested deeper than
    ``DEEPEST`` is refused with a message (a ValueError) before it is read: counted, not parsed (``asgi_gate.json_depth``)."""
    names = {p["parameter_name"] for p in parameters if any_json(p["type"])}
    read = {}
    for name, value in arguments.items():
        if name in names and isinstance(value, str | dict | list):
            text = value if isinstance(value, str) else json.dumps(value)
            if (depth := asgi_gate.json_depth(text.encode())) > DEEPEST:
                raise ValueError(MCP_TOO_DEEP.format(name=name, depth=depth, deepest=DEEPEST))
        if name in names and isinstance(value, str) and value.strip():
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        read[name] = value
    return read


def unknown_tool(name: Any, tools: list[str]) -> str:
    """What a call of a tool the studio does not have is told."""
    return MCP_UNKNOWN_TOOL.format(name=checks.shown(name), tools=", ".join(tools))


def argument_problem(tool: str, arguments: dict[str, Any], schema: dict[str, Any], validator: Any) -> str | None:
    """What is wrong with ``tool``'s ``arguments`` by its input ``schema`` (``validator``, made from it),
    as a message: a parameter it does not have, or a value of the wrong kind; None if nothing."""
    import jsonschema

    properties = schema.get("properties", {})
    extra = [name for name in arguments if name not in properties]
    if extra:
        return MCP_NO_PARAMETER.format(tool=tool, name=checks.shown(extra[0]), names=", ".join(properties))
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    name = next((p for p in error.absolute_path if isinstance(p, str)), "the arguments")
    given = json.dumps(error.instance, ensure_ascii=False)
    given = given if len(given) <= 40 else given[:38] + "…"
    kinds = _kinds(error.validator_value if error.validator == "type" else None)
    if error.validator in ("anyOf", "oneOf"):
        kinds = [kind for option in error.validator_value for kind in _kinds(option.get("type"))]
    if not kinds:
        return MCP_WRONG_VALUE.format(name=name, given=given)
    said = [KINDS.get(kind, str(kind)) for kind in dict.fromkeys(kinds)]
    kinds_text = ", ".join(said[:-1]) + " or " + said[-1] if len(said) > 1 else said[0]
    return MCP_WRONG_KIND.format(name=name, kinds=kinds_text, given=given)


def _kinds(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or ())


def choices(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The choices Gradio's schema lists for each parameter: one of an ``enum``, or any of its items'."""
    found = {}
    for name, prop in schema.get("properties", {}).items():
        if prop.get("enum"):
            found[name] = {"choices": list(prop["enum"]), "many": False}
        elif (prop.get("items") or {}).get("enum"):
            found[name] = {"choices": list(prop["items"]["enum"]), "many": True}
    return found
