"""The vocal languages ACE-Step 1.5 sings (``LANGUAGES``: ISO codes as the model was trained on them, and
their names), a language given as code or name checked (``check_language``), and the one the model is told
(``sung_language``: upstream's "unknown" where nothing is sung)."""

from __future__ import annotations

from typing import Any

import gradio as gr

import refusals
from checks import INSTRUMENTAL_TAG, UNKNOWN, shown

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
    code = language_code(value)
    if code is not None:
        return code
    raise gr.Error(refusals.LANGUAGE_UNKNOWN.format(given=shown(value), count=len(LANGUAGES)))


def sung_language(language: str, lyrics: str) -> str:
    """The language the model is told: upstream's ``"unknown"`` when nothing is sung."""
    words = lyrics.strip()
    return UNKNOWN if not words or words.lower() == INSTRUMENTAL_TAG.lower() else language
