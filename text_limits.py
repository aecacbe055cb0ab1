"""What the music model's text encoder reads of a visitor's words, and how much.

The pipeline tokenises each text and cuts it, silently, at its own limit: the lyrics (and the morph's
words for the song as it is) at ``MAX_LYRIC_TOKENS`` with their language header, a caption (and the
morph's style) at ``MAX_TEXT_TOKENS`` inside its template with the task's instruction and the song's
metadata (diffusers' ``max_text_length`` and ``max_lyric_length``, upstream's handler's 256 and 2,048).
Counted here as the pipeline counts them and refused in words on their field (``check``): at the door
once the model is built (``preparing``), and again in the run (``backend``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import audio
import lrc
import plan_format
import tooltips as tips

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
            raise TooLong(tips.TOO_MANY_TOKENS[field].format(n=n, most=most), field)
