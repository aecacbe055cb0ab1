"""What an Extend's new part sings, and an ending: the lyrics the model reads for an Extend.

Upstream's page repaints with the whole song's lyrics in its Lyrics field: *Send to Repaint* fills the field with
the song's own (``acestep/ui/gradio/events/results/audio_transfer.py``, ``send_audio_to_repaint``), the new part's
lines written in among them, and the DiT reads every line (``conditioning_text.py``: one lyric text per item, the
repaint's mask beside it). Lines the kept part sings are placed there by the model, so the new lines fall where the
music is new; given the new part's lines alone, the model has the kept part's singing and no words for it, and
may spend the new lines there, where the kept samples replace them (a continuation that ignores its lyrics,
acestep.cpp #101). So where the studio knows the song's lyrics and when each line is sung (a take it made, its
record bound to the file's bytes: ``edit_lines.known``), the model reads the whole song's lyrics: the lines kept,
then the new part's (at the end and from a point; a point drops the lines sung after it, which the new part
replaces), or the new part's and then the song's (before the start). Elsewhere (an upload) it reads the new part's
as given, as upstream's page does when its field holds only those.

An ending is upstream's own structure tag: ``[Outro]`` ("Ending, conclusion" in upstream's lyrics guide,
``docs/en/Tutorial.md``), the new part's last section. ``ending`` adds it where the new part's lyrics have none;
the new part then closes the song (an intro before the start cannot).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np

import checks
import edit_bars
import edit_lines
import error_messages
import lrc
import preparing
import song_map
from checks import EXTEND_RANGE, InputError, about
from music_request import Job

OUTRO = "[Outro]"
# A section marker that opens an outro: "[Outro]", "[outro - fade out]", "[Outro 2]".
_OUTRO = re.compile(r"^\s*\[\s*outro\b[^\]]*\]\s*$", re.IGNORECASE | re.MULTILINE)


def closes(lyrics: str) -> bool:
    """Whether ``lyrics`` hold an outro section (``[Outro]``, ``[Outro - fade out]``): the part they are sung in
    ends the song."""
    return bool(_OUTRO.search(lyrics or ""))


def check_ending(value: Any, intro: bool) -> bool:
    """``ending``: an on/off switch (``checks.check_switch``); off where it is not given. ``InputError`` on
    ``ending`` for an ``intro`` (the new part before the start cannot end the song)."""
    with about("ending"):
        ending = checks.check_switch(False if value is None else value, "Ending")
    if ending and intro:
        raise InputError(error_messages.EXTEND_ENDING_BEFORE_START, "ending")
    return ending


def ending_bars(src_audio: Any, song: np.ndarray, seconds: float, call: Any, first: float | None) -> int | None:
    """The whole bars nearest ``seconds`` for an ending asked in seconds, so its last bar line is the song's end
    (``edit_bars.extension`` then lays them): the song's bar length (``edit_bars.lines``: its last bars; else the BPM
    and metre typed, ``call``'s), the count kept within Extend's range; None where neither says a bar (the seconds
    stand). ``song``: decoded, 48 kHz; ``first``: bar 1 where the musician set it."""
    found = edit_bars.lines(src_audio, song, call.bpm, first, call.timesignature)
    if len(found) >= 2:
        last = found[-9:]
        bar = float(np.median(np.diff(last)))
    elif song_map.positive(call.bpm) and song_map.beats_per_bar_of(call.timesignature):
        bar = 60.0 * song_map.beats_per_bar_of(call.timesignature) / song_map.positive(call.bpm)
    else:
        return None
    low, high = EXTEND_RANGE  # the last bar's tail adds up to a bar (``extension``) and takes up to 3 % of one
    return max(math.ceil(low / bar + 0.03), min(round(seconds / bar), math.floor(high / bar) - 1))


def new_part(lyrics: str, ending: bool) -> str:
    """The new part's lyrics as the model reads them: ``lyrics``, closed by an ``[Outro]`` section where an
    ending is asked and they have none; empty: ``[Instrumental]`` (no ending) or ``[Outro]`` alone."""
    lyrics = (lyrics or "").strip()
    if not ending or closes(lyrics):
        return lyrics or checks.INSTRUMENTAL_TAG
    return f"{lyrics}\n\n{OUTRO}" if lyrics else OUTRO


def sung(job: Job, src_audio: Any, lyrics: Any, ending: bool) -> Job:
    """``job`` (an Extend's, its repaint interval set) with the lyrics its model reads: the whole song's with the new
    part's in place where the studio knows the song's (see the module's docstring), else the new part's alone;
    ``ending`` (checked: ``check_ending``): the new part closes with ``[Outro]`` (``new_part``). ``InputError`` on
    ``lyrics`` where the whole song's are more than the text encoder reads (``preparing.check_lyric_tokens``)."""
    call = job.request.render.pipeline
    start = float(call.repainting_start or 0.0)
    end = float(call.repainting_end) if call.repainting_end is not None and call.repainting_end >= 0 else None
    intro = start <= 0.0 and end is not None and end < job.request.seconds
    given = str(lyrics or "").strip()
    words = _whole(edit_lines.known(src_audio), given, ending, start, intro) or new_part(given, ending)
    if words == call.lyrics:
        return job
    preparing.check_lyric_tokens(words, call.vocal_language)
    request = dataclasses.replace(job.request, render=job.request.render.with_pipeline(lyrics=words))
    return dataclasses.replace(job, request=request)


def _whole(song: edit_lines.SungLines | None, given: str, ending: bool, start: float, intro: bool) -> str | None:
    """The whole song's lyrics with the new part's (``given``) in place, or None where the studio does not know
    the song's. Lines kept: every line where the new part goes before the start, else those sung before ``start``
    (seconds: the end, or the point). ``given`` that already sing those lines in order are the whole song's (a
    record's, sent again by *Use these settings* or a variation): they stay as sent."""
    if song is None:
        return None
    kept = list(song.lines) if intro else [line for line in song.lines if line.start < start]
    if kept and _in_order([line.text for line in kept], lrc.sung_lines(given)):
        tail = given.splitlines()[_row_after(given, len(kept)) :] if not intro else []
        return given if not ending or closes("\n".join(tail)) else f"{given}\n\n{OUTRO}"
    rows, new = song.lyrics.splitlines(), new_part(given, ending)
    if intro:
        return f"{new}\n\n{song.lyrics.strip()}"
    # From a point the song's rows stop at its last line kept (a section marker after it opens a replaced part);
    # at the end every row is kept.
    cut = len(rows) if len(kept) == len(song.lines) else (kept[-1].row + 1 if kept else 0)
    before = "\n".join(rows[:cut]).strip()
    return f"{before}\n\n{new}" if before else new


def _in_order(lines: list[str], given: list[str]) -> bool:
    """Whether every one of ``lines`` is sung in ``given``, in order (one pass)."""
    sung = iter(given)
    return all(any(text == line for text in sung) for line in lines)


def _row_after(lyrics: str, count: int) -> int:
    """The row of ``lyrics`` after its ``count``-th sung line (0 for none)."""
    seen = 0
    for row, text in enumerate(lyrics.splitlines()):
        if lrc.sung_lines(text):
            seen += 1
            if seen == count:
                return row + 1
    return 0
