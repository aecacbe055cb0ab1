"""What the music model's text encoder reads of a visitor's words, and how much.

The pipeline tokenises each text and cuts it, silently, at its own limit: the lyrics (and the morph's
words for the song as it is) at ``MAX_LYRIC_TOKENS`` with their language header, a caption (and the
morph's style) at ``MAX_TEXT_TOKENS`` inside its template with the task's instruction and the song's
metadata (diffusers' ``max_text_length`` and ``max_lyric_length``, upstream's handler's 256 and 2,048).
Counted here as the pipeline counts them and refused in words on their field (``check``): at the door
once the model is built (``preparing``), and again in the run (``backend``). Words the visitor did not
write (Think's caption, *Write it*'s caption and lyrics) are never refused: they are made to fit
(``fit``), cut at the last phrase that fits, or the visitor's own caption kept where a cut would leave
too little of the planner's.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import audio
import error_messages
import lrc
import plan_format

if TYPE_CHECKING:
    from music_request import Call

MAX_LYRIC_TOKENS = lrc.MAX_TOKENS
MAX_TEXT_TOKENS = 256
LYRICS = ("lyrics", "morph_lyrics")
# The metadata at its longest, for a caption checked before its request's own is known.
_LONGEST = {
    "bpm": plan_format.BPM_RANGE[1],
    "keyscale": "C# minor",
    "timesignature": "4",
    "audio_duration": audio.MAX_SECONDS,
}


class TooLong(ValueError):
    """A text the model would cut short; ``param`` names its field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def lyric_tokens(tokenizer: Any, lyrics: str, language: str) -> int:
    """Tokens of ``lyrics`` as the pipeline encodes them: the same string, header and end marker."""
    text = f"{lrc.HEADER.format(language=language)}{lyrics}{lrc.END}"
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def caption_budget(pipe: Any, call: Call | None = None) -> int:
    """Tokens a caption may take: ``MAX_TEXT_TOKENS`` less its template's (the instruction and the
    metadata: ``call``'s, its task's instruction or a cover's, whichever is longer, since a blueprint
    makes a text-to-music call a cover; without ``call``, the longest the music modes write)."""
    if call is None:
        tasks, metas = [(task, None, None) for task in ("text2music", "cover", "repaint")], _LONGEST
    else:
        own = (call.task_type, call.track_name, call.complete_track_classes)
        tasks, metas = [own, ("cover", None, None)], {k: getattr(call, k) for k in _LONGEST}
    template = max(
        len(
            pipe.tokenizer(
                pipe._format_prompt(
                    prompt="",
                    instruction=pipe._get_task_instruction(*task),
                    bpm=metas["bpm"],
                    keyscale=metas["keyscale"],
                    timesignature=metas["timesignature"],
                    audio_duration=metas["audio_duration"] or 60.0,
                )[0]
            ).input_ids
        )
        for task in tasks
    )
    return MAX_TEXT_TOKENS - template


def check(pipe: Any, texts: dict[str, Any], language: str, call: Call | None = None) -> None:
    """Refuse (``TooLong``, in words, naming the field) the first of ``texts`` (field → text: lyrics
    and captions, the morph's included) the text encoder would cut short."""
    for field, value in texts.items():
        text = value[0] if isinstance(value, list) and value else value
        if not isinstance(text, str) or not text:
            continue
        if field in LYRICS:
            n, most = lyric_tokens(pipe.tokenizer, text, language), MAX_LYRIC_TOKENS
        else:
            n, most = len(pipe.tokenizer(text, add_special_tokens=False).input_ids), caption_budget(pipe, call)
        if n > most:
            raise TooLong(error_messages.TOO_MANY_TOKENS[field].format(n=n, most=most), field)


# Where a phrase ends: a sentence's or clause's stop, a comma, a dash between words, a line's end.
_PHRASE_END = re.compile(r"[.!?;:,\u3002\uff01\uff1f\uff1b\uff0c\u3001](?=\s|$)|\s[-\u2013\u2014]\s|\n")
_LINE_END = re.compile(r"\n")
# A cut that keeps less than this share of what the model may read gives way to the visitor's own caption.
FAIR_SHARE = 0.5


def tokens(pipe: Any, field: str, text: str, language: str = "en") -> int:
    """Tokens of ``text`` as the pipeline counts those of ``field`` (lyrics with their header)."""
    if field in LYRICS:
        return lyric_tokens(pipe.tokenizer, text, language)
    return len(pipe.tokenizer(text, add_special_tokens=False).input_ids)


def limit(pipe: Any, field: str, call: Call | None = None) -> int:
    """Tokens the model reads of ``field``: the lyrics' limit, or a caption's budget (``caption_budget``)."""
    return MAX_LYRIC_TOKENS if field in LYRICS else caption_budget(pipe, call)


def fit(
    pipe: Any, field: str, text: str, call: Call | None = None, own: str = "", language: str = "en"
) -> tuple[str, dict[str, Any] | None]:
    """Words a model wrote (the planner's caption, *Write it*'s words) within what the text encoder reads
    of ``field``: as written where they fit (``None``: nothing to say); else cut at the last phrase end that
    fits (a word's end where no phrase ends early enough), unless that keeps less than ``FAIR_SHARE`` of
    the budget and the visitor wrote their own (``own``, which fits: the door checked it), which is then
    kept. The second value says what was done, for the take's record."""
    written, most = tokens(pipe, field, text, language), limit(pipe, field, call)
    if written <= most:
        return text, None
    said = {"written_tokens": written, "most": most}
    count = lambda words: tokens(pipe, field, words, language)  # noqa: E731
    ends = _LINE_END if field in LYRICS else _PHRASE_END  # lyrics are cut at a line's end
    cut, at = _longest_fitting(text, [m.start() for m in ends.finditer(text)], count, most), "phrase"
    if not cut or count(cut) < FAIR_SHARE * most:
        if own.strip() and count(own.strip()) <= most:
            return own.strip(), {**said, "kept": "yours"}
        cut, at = _longest_fitting(text, [m.start() for m in re.finditer(r"\s", text)], count, most), "word"
    if not cut:  # one unbroken run of characters: as many of them as fit
        cut, at = _longest_fitting(text, list(range(1, len(text))), count, most), "character"
    return cut, {**said, "kept": at, "read_tokens": count(cut)}


def _longest_fitting(text: str, ends: list[int], count: Any, most: int) -> str:
    """The longest ``text[:end]`` (its trailing commas and spaces trimmed) for ``end`` in ``ends`` that
    ``count`` finds within ``most``: a binary search, since a longer prefix never has fewer tokens."""
    lo, hi, best = 0, len(ends) - 1, ""
    while lo <= hi:
        mid = (lo + hi) // 2
        head = text[: ends[mid] + (text[ends[mid]] in ".!?\u3002\uff01\uff1f")].rstrip(" ,;:-\u2013\u2014\n\t")
        if head and count(head) <= most:
            best, lo = head, mid + 1
        else:
            hi = mid - 1
    return best
