"""What Think reads and writes, in upstream ACE-Step's own format: the prompts, the plan, its ranges.

The planner's two generations (``planner``) use these prompts: *thinking* writes the plan, one
``name: value`` line per field inside ``<think>``; the *blueprint* prompt carries the plan as YAML in
the assistant message and is followed by audio codes. Everything here is text, checked against
upstream's literal strings (``acestep/llm_inference.py``, ``acestep/constants.py``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

import audio
import error_messages

INSTRUCTION = "Generate audio semantic tokens based on the given conditions:"
# Upstream's instruction for the reverse task (``understand_music``): a song's codes in, its notes out.
UNDERSTAND_INSTRUCTION = "Understand the given musical conditions and describe the audio semantics accordingly:"
# Upstream's instruction for a song from one line (``create_sample_from_query``): an idea in, notes and lyrics out.
INSPIRED_INSTRUCTION = "Expand the user's input into a more detailed and specific musical description:"
CODEBOOK = 64000  # <|audio_code_0|> … <|audio_code_63999|>; the vocabulary holds a few more, never allowed
# What stands for a dropped condition: the user message of upstream's unconditional prompts, and the
# reasoning block the chat template renders for an empty one.
NO_USER_INPUT = "NO USER INPUT"
EMPTY_PLAN = "<think>\n\n</think>"

BPM_RANGE = (30, 300)
DURATION_RANGE = (int(audio.MIN_SECONDS), int(audio.MAX_SECONDS))
# Upstream's cap on a generation no target length bounds (the thinking, Describe's and Write it's
# generation): its fallback of 4,096 new tokens (the planner's config names none), held to the longest
# song's codes and a margin for the notes.
MAX_NEW_TOKENS = min(4096, DURATION_RANGE[1] * audio.CODES_PER_SECOND + 500)
TIME_SIGNATURES = ("2", "3", "4", "6")
KEYSCALES = tuple(f"{n}{a} {m}" for n in "ABCDEFG" for a in ("", "#", "b", "♯", "♭") for m in ("major", "minor"))
LANGUAGES = (
    "ar",
    "az",
    "bg",
    "bn",
    "ca",
    "cs",
    "da",
    "de",
    "el",
    "en",
    "es",
    "fa",
    "fi",
    "fr",
    "he",
    "hi",
    "hr",
    "ht",
    "hu",
    "id",
    "is",
    "it",
    "ja",
    "ko",
    "la",
    "lt",
    "ms",
    "ne",
    "nl",
    "no",
    "pa",
    "pl",
    "pt",
    "ro",
    "ru",
    "sa",
    "sk",
    "sr",
    "sv",
    "sw",
    "ta",
    "te",
    "th",
    "tl",
    "tr",
    "uk",
    "ur",
    "vi",
    "yue",
    "zh",
    "unknown",
)
FIELDS = ("bpm", "caption", "duration", "keyscale", "language", "timesignature")
# What the visitor may fix; upstream writes these into the plan instead of letting the model choose.
FIXABLE = ("bpm", "duration", "keyscale", "timesignature")
# The longest caption the studio keeps (its Style field's): what the planner writes is cut to it where it
# is read, so a take's record (its plan, its caption) always fits the fields that take it back.
MAX_CAPTION_CHARS = 512

_CODE = re.compile(r"<\|audio_code_(\d+)\|>")


# What a model's text may keep: letters, marks, numbers, punctuation, symbols and spaces. Control and
# format characters, unassigned code points and U+FFFD (what a decoder writes for bytes that are no
# text) are dropped: a small or confused planner writes them into its caption, and the caption is
# shown on the page, stored in the take's record and read by the music model.
_UNREADABLE = {"Cc", "Cf", "Cs", "Co", "Cn"}


def readable_text(text: Any) -> str:
    """``text`` with only readable characters, its whitespace runs made single spaces."""
    kept = (
        " " if ch.isspace() else ch
        for ch in str(text or "")
        if ch.isspace() or (ch != "\ufffd" and unicodedata.category(ch) not in _UNREADABLE)
    )
    return " ".join("".join(kept).split())


def cut(text: str, limit: int, at: str) -> str:
    """``text`` within ``limit`` characters, cut at the last ``at`` before it."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    return (head.rsplit(at, 1)[0] if at in head else head).rstrip()


class PlanUnusable(ValueError):
    """The planner wrote no usable plan; the song is made without it and the visitor is told why."""


# ---------------------------------------------------------------- prompts (upstream's format)


def thinking_prompt(tokenizer: Any, caption: str, lyrics: str) -> str:
    """The prompt of the thinking generation. It has no unconditional twin: upstream thinks without
    guidance (its commit a188f4c: guidance there cut captions short with early newlines)."""
    return _chat(tokenizer, _conditions(caption, lyrics))


def blueprint_prompt(tokenizer: Any, caption: str, lyrics: str, plan: str) -> str:
    """The conditional prompt of the blueprint generation: the assistant message is opened and the plan
    written into it, so the codes follow inside the same message, after the blank line the chat template
    puts between a reasoning block and the answer (the layout the planner was trained on).

    The caption is the visitor's, not the planner's rewrite, as upstream does.
    """
    return _chat(tokenizer, _conditions(caption, lyrics)) + plan + "\n\n"


def blueprint_negative(tokenizer: Any) -> str:
    """Its unconditional prompt, as the planner saw a dropped condition in training: ``NO USER INPUT``
    as the whole user message and an empty reasoning block (the chat template's rendering of one).
    Guidance then pushes along the caption and the lyrics as well as the plan."""
    return _chat(tokenizer, NO_USER_INPUT) + EMPTY_PLAN + "\n\n"


def understand_prompt(tokenizer: Any, codes: list[int]) -> str:
    """The prompt of *Describe*: upstream's understanding instruction, and the song's audio codes as
    the whole user message. Upstream runs it without guidance, so it has no unconditional twin."""
    return _chat(tokenizer, codes_text(codes), instruction=UNDERSTAND_INSTRUCTION)


def inspiration_prompt(tokenizer: Any, idea: str, instrumental: bool) -> str:
    """The prompt of *Write it*: upstream's inspiration instruction, and the idea with upstream's
    ``instrumental: true|false`` line as the user message (no guidance, so no unconditional twin)."""
    return _chat(
        tokenizer, f"{idea}\n\ninstrumental: {str(bool(instrumental)).lower()}", instruction=INSPIRED_INSTRUCTION
    )


def _conditions(caption: str, lyrics: str) -> str:
    return f"# Caption\n{caption}\n\n# Lyric\n{lyrics}\n"


def _chat(tokenizer: Any, user: str, instruction: str = INSTRUCTION) -> str:
    """The system and user messages through the planner's own chat template, the assistant message
    opened."""
    messages = [
        {"role": "system", "content": f"# Instruction\n{instruction}\n\n"},
        {"role": "user", "content": user},
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def format_plan(fields: dict[str, Any]) -> str:
    """The plan as the blueprint prompt carries it: YAML, keys sorted, inside ``<think>`` tags."""
    import yaml

    items: dict[str, Any] = {}
    for key in FIELDS:
        value = fields.get(key)
        if value is None:
            continue
        if key == "timesignature" and isinstance(value, str) and value.endswith("/4"):
            value = value.split("/")[0]
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        items[key] = value
    body = yaml.dump(items, allow_unicode=True, sort_keys=True).strip() if items else ""
    return f"<think>\n{body}\n</think>"


# ---------------------------------------------------------------- reading what the model wrote


def parse_plan(text: str) -> dict[str, Any]:
    """The fields of a thinking block, as upstream reads it (a line ``name: value`` per field, an
    indented line continues the one before), without checking them."""
    match = re.search(r"<think>(.*?)</think>", text, re.DOTALL)
    body = match.group(1) if match else text.split("<|audio_code_")[0]
    raw: dict[str, list[str]] = {}
    key = None
    for line in body.strip().split("\n"):
        if line.strip().startswith("<"):
            continue
        if line and line[0] not in " \t" and ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            raw[key] = [value.strip()] if value.strip() else []
        elif key is not None and line.strip():
            raw[key].append(line.strip())
    fields: dict[str, Any] = {}
    for key, parts in raw.items():
        if key not in FIELDS:
            continue
        value = " ".join(parts).strip()
        if key in ("bpm", "duration"):
            fields[key] = int(value) if value.isdigit() else value
        elif key == "caption":  # up to 512 tokens may be written: often more characters than a caption holds
            fields[key] = cut(readable_text(value), MAX_CAPTION_CHARS, " ")
        else:
            fields[key] = value
    return fields


def check_plan(fields: dict[str, Any], expected: tuple[str, ...] = FIELDS) -> dict[str, Any]:
    """``fields`` with every expected field present and in range; ``PlanUnusable`` names the first
    that is not."""
    checks: dict[str, Callable[[Any], bool]] = {
        "bpm": lambda v: isinstance(v, int) and BPM_RANGE[0] <= v <= BPM_RANGE[1],
        "duration": lambda v: isinstance(v, int) and DURATION_RANGE[0] <= v <= DURATION_RANGE[1],
        "keyscale": lambda v: v in KEYSCALES,
        "language": lambda v: v in LANGUAGES,
        "timesignature": lambda v: str(v) in TIME_SIGNATURES,
        "caption": lambda v: isinstance(v, str),  # an empty one leaves the visitor's caption to the DiT
    }
    for key in expected:
        if key not in fields:
            raise PlanUnusable(error_messages.PLAN_FIELD_MISSING.format(key=key))
        if not checks[key](fields[key]):
            raise PlanUnusable(error_messages.PLAN_FIELD_INVALID.format(key=key, value=str(fields[key])[:40]))
    return {k: fields[k] for k in expected}


_LYRIC_HEADER = re.compile(r"^#\s*Lyrics?\s*\n", re.IGNORECASE)


def parse_lyrics(text: str) -> str:
    """The lyrics a *Describe* generation wrote: what follows ``</think>``, without a leading ``# Lyric``
    header or a closing ``<|im_end|>``, as upstream reads them (``_extract_lyrics_from_output``).
    Upstream's header pattern (``Lyri[c|cs]?``) misses "# Lyrics"; this one takes both spellings."""
    _, found, after = text.partition("</think>")
    if not found:
        return ""
    after = _LYRIC_HEADER.sub("", after.strip())
    return re.sub(r"<\|im_end\|>\s*$", "", after).strip()


def parse_codes(text: str) -> list[int]:
    """The audio codes in ``text``, in order; codes outside the codebook are dropped."""
    return [n for n in (int(m) for m in _CODE.findall(text)) if n < CODEBOOK]


def codes_text(codes: list[int]) -> str:
    return "".join(f"<|audio_code_{n}|>" for n in codes)
