"""Every field a visitor fills in, checked, with the validation error that says what is wrong and where;
and the vocal languages the model sings (``LANGUAGES``, ``check_language``, ``sung_language``).

``InputError`` is a ``gr.Error`` that names the endpoint parameter at fault, so the page marks that
field; ``about(param)`` tags any visitor error raised inside with its parameter. The ranges and
choices here are the studio's: the page's fields, the API and the preparers all read them from here.
The error messages themselves are ``error_messages``'.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import unicodedata
from collections.abc import Iterator
from typing import Any

import gradio as gr

import audio
import error_messages
import lora
import mastering
import models
import plan_format
import sampler
import tooltips as tips

STEPS_RANGE = (1, 200)
GUIDANCE_RANGE = (1.0, 20.0)
SHIFT_RANGE = (1.0, 5.0)
MAX_TAKES = 4
MAX_CAPTION_CHARS = plan_format.MAX_CAPTION_CHARS
MAX_LYRICS_CHARS = 4096
# A song from one line (*Write it*): the Idea box, the admission check and the docs all take this one number.
MAX_IDEA_CHARS = 500
# A take named by its record's name or by its URL (``/generate``'s ``reference_take``): a Space's URL
# of a take is ~110 characters.
MAX_TAKE_NAME_CHARS = 300
EXTEND_RANGE = (5.0, 240.0)
MIN_REGION_SECONDS = 1.0
AUTO = "auto"
# Upstream's vocal language when the model is left to tell (its UI's default).
UNKNOWN = "unknown"
INSTRUMENTAL_TAG = "[Instrumental]"

_NOTES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
KEYS = [f"{n} {m}" for m in ("major", "minor") for n in _NOTES]
TIME_SIGNATURES = list(plan_format.TIME_SIGNATURES)  # the metres the model takes (beats a bar)
# The time signature field's choices as the page shows them (2/4 … 6/8) and the value each sends (the beats
# a bar the model is told, as ever: "2" … "6"); the API takes either spelling (``check_time_signature``).
TIME_SIGNATURE_CHOICES = [AUTO, *((tips.METRE_NAMES[beats], beats) for beats in TIME_SIGNATURES)]
FORMATS = ["wav", "flac", "mp3"]
# A finished take's loudness (``mastering``): a target in LUFS, or off (the render as it came).
LUFS_RANGE = (-30.0, -6.0)
LOUDNESS_OFF = "off"
# A new take's loudness as the page and the API first say it (the finish's target, as the field writes it).
LOUDNESS_DEFAULT = f"{mastering.DEFAULT_LUFS:g}"
LOUDNESS_CHOICES = [
    ("-14 LUFS · streaming", LOUDNESS_DEFAULT),
    ("-16 LUFS · podcasts, Apple Music", "-16"),
    ("-9 LUFS · loud", "-9"),
    ("-23 LUFS · broadcast", "-23"),
    ("Off · as rendered", LOUDNESS_OFF),
]
FADE_RANGE = (0.0, 10.0)
# A share from none to all: Cover's strength and start, Edit's repaint strength.
SHARE_RANGE = (0.0, 1.0)
# The largest seed (a seed is a whole number from 0 to this, or -1 for random).
MAX_SEED = 2**32 - 1


# The longest text each endpoint parameter takes, checked before a request joins the queue; a
# parameter not named here takes at most SHORT_TEXT characters (keys, languages, formats, numbers
# sent as text). Without a limit a 1 MB field became a million-token prompt on the only GPU.
TEXT_LIMITS = {
    "prompt": MAX_CAPTION_CHARS,
    "lyrics": MAX_LYRICS_CHARS,
    "theme": 1000,
    "genre": 200,
    "mood": 200,
    "plan": 2048,
    "idea": MAX_IDEA_CHARS,
    "custom_sections": 500,
    # Cover's morph: the song's own style and lyrics, a caption and lyrics like any other.
    "morph_prompt": MAX_CAPTION_CHARS,
    "morph_lyrics": MAX_LYRICS_CHARS,
    "reference_take": MAX_TAKE_NAME_CHARS,
}
SHORT_TEXT = 64
# Each adapter slot's file parameter (``parameters.ADAPTER_SLOTS`` names each slot's fields after it).
ADAPTER_FILES = ("lora", "lora_2", "lora_3")
# File parameters arrive as server paths, not text a visitor typed.
FILE_PARAMS = {"src_audio", "reference_audio", *ADAPTER_FILES}


def check_text_lengths(values: dict[str, Any]) -> None:
    """Refuse any text parameter longer than its limit, naming the parameter."""
    for name, value in values.items():
        if name in FILE_PARAMS or not isinstance(value, str):
            continue
        limit = TEXT_LIMITS.get(name, SHORT_TEXT)
        if len(value) > limit:
            raise InputError(error_messages.TEXT_TOO_LONG.format(limit=limit, n=len(value)), name)


def shown(value: Any, limit: int = 40) -> str:
    """``value`` quoted for a message, cut short: a message never echoes a huge input back."""
    text = repr(value) if isinstance(value, str) else repr(str(value))
    return text if len(text) <= limit else text[: limit - 2] + "…'"


class InputError(gr.Error):
    """A ``gr.Error`` that knows which endpoint parameter is at fault, so the page can mark that field."""

    def __init__(self, message: str, param: str, title: str = "Error") -> None:
        super().__init__(message, title=title)
        self.param = param

    def __reduce__(self) -> tuple[Any, ...]:
        # ZeroGPU pickles a worker's exception back to the page; the default reduce would call
        # ``InputError(message)`` and lose the parameter (or fail on the missing argument).
        return (type(self), (self.message, self.param, self.title))


@contextlib.contextmanager
def about(param: str) -> Iterator[None]:
    """Tag any visitor error raised inside with the parameter it concerns."""
    try:
        yield
    except InputError:
        raise
    except gr.Error as exc:
        raise InputError(exc.message, param, exc.title) from None
    except (audio.AudioError, lora.BadLora) as exc:
        raise InputError(str(exc), param) from None


def as_number(value: Any, name: str) -> float:
    if isinstance(value, bool):  # a switch sent for a number
        raise gr.Error(error_messages.NOT_A_NUMBER.format(name=name))
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise gr.Error(error_messages.NOT_A_NUMBER.format(name=name)) from None
    except OverflowError:  # an integer of hundreds of digits
        raise gr.Error(error_messages.NUMBER_TOO_LARGE.format(name=name)) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise gr.Error(error_messages.NOT_A_NUMBER.format(name=name))
    return number


def in_range(value: Any, name: str, lo: float, hi: float, unit: str = "") -> float:
    number = as_number(value, name)
    if not lo <= number <= hi:
        raise gr.Error(error_messages.OUT_OF_RANGE.format(name=name, lo=lo, hi=hi, unit=unit, number=number))
    return number


def one_of(value: Any, name: str, choices: tuple[Any, ...]) -> Any:
    """``value`` if it is one of ``choices``' values (each a value, or a (label, value) pair); else a validation
    error naming them."""
    values = [choice[-1] if isinstance(choice, tuple) else choice for choice in choices]
    if value not in values:
        raise gr.Error(
            error_messages.NOT_ONE_OF.format(name=name, choices=", ".join(map(str, values)), given=shown(value))
        )
    return value


def reads_as(value: Any, number: float) -> bool:
    """Whether ``value`` is ``number`` however a client sends it (8, 8.0 or "8"): a field's special value (-1,
    0) is a number, compared as one, never by its text. A switch (True, False) is no number."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        value = value.strip().replace("\u2212", "-")
    return _number_or_none(value) == number


# The length that leaves it to Think (upstream's API's -1; the form's *Length: auto*).
THINK_CHOOSES_LENGTH = -1


def check_length(value: Any, auto: Any, thinking: bool) -> float | None:
    """The song's length in seconds, or None when Think is to choose it (``auto``, or -1 as
    upstream's API says it)."""
    if check_switch(auto, "Length: auto") or reads_as(value, THINK_CHOOSES_LENGTH):
        if not thinking:
            raise gr.Error(error_messages.AUTO_LENGTH_NEEDS_THINK)
        return None
    return check_duration(value)


def check_plan(value: Any) -> tuple[dict[str, Any], tuple[int, int] | None] | None:
    """A plan brought back from a take, or None when there is none (Think plans anew). It is taken
    as a take's record holds it (``planner``: its ``fields`` with the take's place in its batch,
    ``take`` of ``of``), or as the Plan field shows it (those fields at the top), each as a dict or
    as its JSON text: the API takes back what it returns."""
    import json

    if isinstance(value, dict):
        data = value
    else:
        text = str(value or "").strip()
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    if not isinstance(data, dict):
        raise gr.Error(error_messages.PLAN_UNREADABLE)
    if "skipped" in data and "fields" not in data:
        raise gr.Error(error_messages.PLAN_SKIPPED)
    if isinstance(data.get("fields"), dict):  # a record's ``planner`` entry as it is
        data = {**data["fields"], "take": data.get("take"), "of": data.get("of")}
    fields = {k: data[k] for k in plan_format.FIELDS if k in data}
    try:  # what upstream fixes must be there; whatever else is there must be valid too
        fields = plan_format.check_plan(fields, tuple(dict.fromkeys([*plan_format.FIXABLE, *fields])))
    except plan_format.PlanUnusable as exc:
        raise gr.Error(error_messages.PLAN_UNUSABLE.format(why=exc)) from None
    if len(fields.get("caption", "")) > MAX_CAPTION_CHARS:
        raise gr.Error(error_messages.PLAN_CAPTION_TOO_LONG.format(most=MAX_CAPTION_CHARS))
    take, of = data.get("take"), data.get("of")
    valid = all(isinstance(n, int) and not isinstance(n, bool) for n in (take, of)) and 1 <= take <= of <= MAX_TAKES
    return fields, ((take - 1, of) if valid else None)


def check_duration(value: Any) -> float:
    return in_range(value, "Duration", audio.MIN_SECONDS, audio.MAX_SECONDS, " s")


def check_bpm(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", AUTO)):
        return None
    bpm = as_number(value, "BPM")
    if bpm == 0:
        return None
    low, high = plan_format.BPM_RANGE
    if not low <= bpm <= high:
        raise gr.Error(error_messages.BPM_OUT_OF_RANGE.format(low=low, high=high, bpm=bpm))
    return int(round(bpm))


_KEY_RE = re.compile(r"^\s*([A-Ga-g])\s*([#♯b♭]?)\s*(major|minor|maj|min|m)?\s*$", re.IGNORECASE)


def check_key(value: Any) -> str | None:
    """``None`` for auto, else the key as ``"F# minor"``; accepts ♯/♭ and maj/min/m spellings."""
    text = str(value or "").strip()
    if text.lower() in ("", AUTO):
        return None
    match = _KEY_RE.match(text)
    if not match or (match.group(3) is None):
        raise gr.Error(error_messages.KEY_UNKNOWN.format(given=shown(text)))
    note, accidental, mode = match.groups()
    accidental = {"♯": "#", "♭": "b"}.get(accidental, accidental)
    mode = "major" if mode.lower() in ("major", "maj") else "minor"
    return f"{note.upper()}{accidental} {mode}"


def check_time_signature(value: Any) -> str | None:
    text = str(value or "").strip().lower()
    if text in ("", AUTO):
        return None
    text = {name: beats for beats, name in tips.METRE_NAMES.items()}.get(text, text)
    if text.endswith(".0"):
        text = text[:-2]
    if text not in TIME_SIGNATURES:
        metres = ", ".join(tips.METRE_NAMES[beats] for beats in TIME_SIGNATURES)
        raise gr.Error(error_messages.METRE_UNKNOWN.format(given=shown(value), metres=metres))
    return text


# A song's tempo, key and metre, each with its check (the key's and metre's named here as well as in their
# declarations, ``parameters``, which hold the same functions as rules; ``parameters`` imports this module, so
# this module cannot read them there): a request refuses one (``preparing.musical``), a record read back reads it
# as None.
MUSICAL = {"bpm": check_bpm, "key_scale": check_key, "time_signature": check_time_signature}


def check_musical(name: str, value: Any) -> Any:
    """One of a song's BPM, key and metre (``MUSICAL``, by its parameter's name) checked; a validation error
    marks its field."""
    with about(name):
        return MUSICAL[name](value)


def check_text(prompt: Any, lyrics: Any, mode: str = "generate") -> tuple[str, str]:
    """The caption and lyrics, stripped; refused when both are empty (in ``mode``'s field names) or
    either is too long."""
    prompt = str(prompt or "").strip()
    lyrics = str(lyrics or "").strip()
    if not prompt and not lyrics:
        raise gr.Error(error_messages.EMPTY_TEXT[mode])
    if len(prompt) > MAX_CAPTION_CHARS:
        raise gr.Error(error_messages.CAPTION_TOO_LONG.format(n=len(prompt), most=MAX_CAPTION_CHARS))
    if len(lyrics) > MAX_LYRICS_CHARS:
        raise gr.Error(error_messages.LYRICS_TOO_LONG.format(n=len(lyrics), most=MAX_LYRICS_CHARS))
    return prompt, lyrics


# Line breaks a model may write instead of "\n"; every other control character (C0, DEL, C1: a
# model's stray escape or NUL), and the bidirectional overrides that can reorder what a line shows,
# are removed. Tabs become spaces. Zero-width joiners stay: some scripts and emoji need them.
_LINE_BREAKS = str.maketrans(
    {"\r": "\n", "\v": "\n", "\f": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n", "\t": " "}
)
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """``text`` without control characters: line breaks as ``\n``, tabs as spaces."""
    text = text.replace("\r\n", "\n").translate(_LINE_BREAKS)
    return "".join(ch for ch in text if ch == "\n" or (unicodedata.category(ch) != "Cc" and ch not in _BIDI))


def check_steps(value: Any, name: str, variant: models.Variant) -> int:
    """A number of steps (``name``: as the declaration names them): whole, in range, and no more than
    ``variant`` runs."""
    n = in_range(value, name, *STEPS_RANGE)
    if n != int(n):
        raise gr.Error(error_messages.STEPS_NOT_WHOLE.format(n=n))
    if variant.turbo and n > sampler.TURBO_MAX_STEPS:
        # Distilled for a few steps: upstream runs at most 20 and would cut a longer run short.
        raise gr.Error(error_messages.TURBO_STEPS.format(model=variant.label, most=sampler.TURBO_MAX_STEPS, n=n))
    return int(n)


def check_takes(value: Any) -> int:
    n = in_range(value if value is not None else 1, "Takes", 1, MAX_TAKES)
    if n != int(n):
        raise gr.Error(error_messages.TAKES_NOT_WHOLE.format(most=MAX_TAKES))
    return int(n)


def check_format(value: Any) -> str:
    fmt = str(value or "wav").strip().lower().lstrip(".")
    if fmt not in FORMATS:
        raise gr.Error(error_messages.OUTPUT_FORMAT.format(given=shown(value)))
    return fmt


def check_loudness(value: Any) -> float | None:
    """A loudness target in LUFS (a number, "-14", "-14 LUFS"), or None for off ("off", None)."""
    text = "" if value is None else str(value).strip().lower()
    if text in ("", LOUDNESS_OFF, "none", "raw"):
        return None
    text = text.removesuffix("lufs").strip().replace("\u2212", "-")
    try:
        number = as_number(text if not isinstance(value, int | float) else value, "Loudness")
    except gr.Error:  # "loud": say what the field takes, off included
        raise gr.Error(
            error_messages.LOUDNESS_NOT_NUMBER.format(low=LUFS_RANGE[0], high=LUFS_RANGE[1], given=shown(value))
        ) from None
    if not LUFS_RANGE[0] <= number <= LUFS_RANGE[1]:
        raise gr.Error(
            error_messages.LOUDNESS_OUT_OF_RANGE.format(low=LUFS_RANGE[0], high=LUFS_RANGE[1], number=number)
        )
    return number


# A new take's true-peak ceiling in dBTP: -1 is the usual delivery (``mastering.CEILING_DBTP``), -2 what a
# streaming service asks of a master louder than its own target; a ceiling above -0.1 leaves a codec no headroom.
CEILING_RANGE = (-3.0, -0.1)


# Generate's *Loop*: a loop's length in bars (``loops``); 0 is a song.
LOOP_BARS = (2, 4, 8, 16, 32)


def check_loop_bars(value: Any) -> int | None:
    """``loop_bars`` as a number of bars (``LOOP_BARS``), or None for no loop (0, empty, "off")."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "off")) or reads_as(value, 0):
        return None
    bars = None if isinstance(value, bool) else _number_or_none(value)
    if bars not in LOOP_BARS:
        choices = f"{', '.join(map(str, LOOP_BARS[:-1]))} or {LOOP_BARS[-1]}"
        raise InputError(error_messages.LOOP_BARS_CHOICE.format(choices=choices, given=shown(value)), "loop_bars")
    return int(bars)


def _number_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


LORA_SCALE_RANGE = (0.0, 2.0)


def check_seed(seed: Any, name: str) -> int:
    """A seed as a whole number from 0 to 4294967295, or -1 (or empty) for random (``name``: as the declaration
    names it; every seed of the studio is checked by it, ``parameters.check_seed``)."""
    base = -1 if seed is None or seed == "" else as_number(seed, name)
    if base != int(base) or base < -1 or base > MAX_SEED:
        raise gr.Error(error_messages.SEED_OUT_OF_RANGE.format(most=MAX_SEED))
    return int(base)


def seeds_for(base: int, takes: int) -> list[int]:
    """One seed per take from a checked seed (``check_seed``): ``base``, ``base + 1`` …; -1 draws a random
    starting seed."""
    start = secrets.randbelow(2**31) if base == -1 else base
    return [(start + i) % (MAX_SEED + 1) for i in range(takes)]


def check_switch(value: Any, name: str = "Think") -> bool:
    """An on/off value: true or false, 1 or 0 (as a number or as text); anything else is refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    raise gr.Error(error_messages.NOT_A_SWITCH.format(name=name, given=shown(value)))


# The vocal languages the model sings (upstream's list), by ISO code.
LANGUAGES = {
    "en": "English",
    "zh": "Chinese (Mandarin)",
    "yue": "Cantonese",
    "ja": "Japanese",
    "ko": "Korean",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
    "ru": "Russian",
    "ar": "Arabic",
    "az": "Azerbaijani",
    "bg": "Bulgarian",
    "bn": "Bengali",
    "ca": "Catalan",
    "cs": "Czech",
    "da": "Danish",
    "el": "Greek",
    "fa": "Persian",
    "fi": "Finnish",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "ht": "Haitian Creole",
    "hu": "Hungarian",
    "id": "Indonesian",
    "is": "Icelandic",
    "la": "Latin",
    "lt": "Lithuanian",
    "ms": "Malay",
    "ne": "Nepali",
    "nl": "Dutch",
    "no": "Norwegian",
    "pa": "Punjabi",
    "pl": "Polish",
    "ro": "Romanian",
    "sa": "Sanskrit",
    "sk": "Slovak",
    "sr": "Serbian",
    "sv": "Swedish",
    "sw": "Swahili",
    "ta": "Tamil",
    "te": "Telugu",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "vi": "Vietnamese",
}


def language_code(value: Any) -> str | None:
    """The ISO code for a language given as code or English name ("ja", "Japanese"), or None."""
    text = str(value or "").strip().lower()
    if text in LANGUAGES or text == UNKNOWN:
        return text
    return next((code for code, name in LANGUAGES.items() if name.lower() == text), None)


def check_language(value: Any) -> str:
    """A vocal language given as code or English name, as its code (or ``UNKNOWN``); raises ``gr.Error``."""
    code = language_code(value)
    if code is not None:
        return code
    raise gr.Error(error_messages.LANGUAGE_UNKNOWN.format(given=shown(value), count=len(LANGUAGES)))


def sung_language(language: str, lyrics: str) -> str:
    """The language the model is told: upstream's ``"unknown"`` when nothing is sung."""
    sung = lyrics.strip()
    return UNKNOWN if not sung or sung.lower() == INSTRUMENTAL_TAG.lower() else language
