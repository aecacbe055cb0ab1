"""Where Extend's new music goes (``where``): after the song ("end"), before it ("start": an intro), or from a
point inside it (seconds, m:ss, or a bar counted from the song's bar 1), the song kept up to that point and what
followed replaced. ``read`` reads what a musician types; ``Layout`` is where the kept song and the new part lie
in the take, which the model call (``modes.prepare_extend``) and the splice at the source's own rate
(``untouched``) both follow.

The model repaints as upstream's repaint outside a song does (``padding_utils.prepare_padding_info``): the kept
song padded with silence where the new part goes (on the right; an intro's on the left, as a negative
``repainting_start`` pads upstream's), the new part's interval repainted, its prompt told the kept song's length
(upstream's ``batch_prep``: the source's length before padding).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

import audio
import checks
import edit_bars
import error_messages
import headers
from checks import EXTEND_RANGE, InputError

END, START, POINT = "end", "start", "point"
# The least of the song a point keeps before it, in seconds. The model continues a song from its latents (25
# frames a second); upstream's repaint keeps at least its first frame, but a point that keeps less than a beat
# leaves the model nothing to continue, so a point keeps what Edit's shortest region spans.
LEAST_KEPT = checks.MIN_REGION_SECONDS
# "1:32.5", "01:32": minutes and seconds; "bar 9", "bar9", "b 9": a bar from bar 1.
_CLOCK = re.compile(r"(\d{1,2}):([0-5]?\d(?:\.\d{1,3})?)")
_BAR = re.compile(r"(?:bar|b)\s*(\d{1,5})")
_SECONDS = re.compile(r"\d{1,4}(?:\.\d{1,3})?")


@dataclass(frozen=True)
class Where:
    """Where asked: ``kind`` (END, START or POINT), a point's ``seconds`` in the song (None for a bar, until the
    song's bars place it: ``at_bar``) or its ``bar`` (counted from bar 1)."""

    kind: str = END
    seconds: float | None = None
    bar: int | None = None

    @property
    def said(self) -> str:
        """As a record keeps it, and as ``read`` reads it back: "end", "start", "92.5", "bar 9"."""
        if self.kind != POINT:
            return self.kind
        return f"bar {self.bar}" if self.bar is not None else f"{self.seconds:g}"


def read(value: Any) -> Where:
    """``where`` as sent: None or "" is the end; "end", "start"; a point in seconds (92.5, "92.5"), in minutes and
    seconds ("1:32.5") or a bar ("bar 9"). ``InputError`` on ``where`` for anything else (a point is checked
    against the song by ``point``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return Where()
    if isinstance(value, bool):
        raise _unreadable(value)
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise _unreadable(value)
        return Where(POINT, round(float(value), 3))
    text = str(value).strip().lower()
    if len(text) > checks.SHORT_TEXT:
        raise _unreadable(value)
    if text in (END, START):
        return Where(text)
    if clock := _CLOCK.fullmatch(text):
        return Where(POINT, round(int(clock[1]) * 60 + float(clock[2]), 3))
    if bar := _BAR.fullmatch(text):
        return Where(POINT, bar=int(bar[1]))
    if _SECONDS.fullmatch(text):
        return Where(POINT, round(float(text), 3))
    raise _unreadable(value)


def _unreadable(value: Any) -> InputError:
    return InputError(error_messages.WHERE_UNREADABLE.format(given=checks.shown(value)), "where")


def at_bar(where: Where, lines: list[float] | None) -> Where:
    """A bar's point placed on the song's bar ``lines`` (seconds, bar 1 first, counted from the musician's bar 1:
    ``edit_bars``); ``InputError`` on ``where`` for a song with no bars heard or a bar it does not have."""
    if where.bar is None:
        return where
    if not lines:
        raise InputError(error_messages.WHERE_NO_BARS.format(bar=where.bar), "where")
    if not 1 <= where.bar <= len(lines):
        raise InputError(error_messages.WHERE_NO_SUCH_BAR.format(bar=where.bar, count=len(lines)), "where")
    return Where(POINT, round(lines[where.bar - 1], 3), where.bar)


def point(where: Where, song_seconds: float) -> float:
    """A point's seconds checked against a song ``song_seconds`` long: inside it, keeping at least
    ``LEAST_KEPT`` before it; ``InputError`` on ``where`` otherwise."""
    at, named = float(where.seconds or 0.0), where.said if where.bar is not None else f"{where.seconds:g} s"
    if at >= song_seconds:
        raise InputError(error_messages.WHERE_OUTSIDE.format(given=named, seconds=song_seconds), "where")
    if at < LEAST_KEPT:
        raise InputError(error_messages.WHERE_TOO_EARLY.format(given=named, least=LEAST_KEPT), "where")
    return at


@dataclass(frozen=True)
class Layout:
    """An Extend's take laid out, in seconds: ``lead`` of new music before the song (an intro), the song (whole;
    from a point, up to ``upto``), then ``added`` of new music after it (at the end, or from the point). The new
    part is ``lead`` or ``added``, never both."""

    lead: float = 0.0
    upto: float | None = None
    added: float = 0.0

    def laid(self, song: np.ndarray, rate: int, fade: int) -> tuple[np.ndarray, int, int]:
        """``song`` (``[channels, samples]`` at ``rate``) as the take lays it, and the new part ``[a, b)`` in it
        (samples): at the end, the song, the new part from its last ``fade`` samples (the seam's crossfade, over
        the model's rendition of them); from a point, the song up to the new part's end, the new part from the
        point (its crossfade over what followed, so the song before it is kept whole); before the start, silence
        then the whole song, the new part the silence (its last ``fade`` samples fading out into the song). At
        the admission check, a stand-in of that length (``headers``: the song is never copied there)."""
        n = song.shape[-1]
        if self.lead:
            lead = int(round(self.lead * rate))
            if headers.reading():
                return headers.stand_in(lead + n, song.shape[0]), 0, lead
            return np.concatenate([np.zeros((song.shape[0], lead), np.float32), song], axis=1), 0, lead
        added = int(round(self.added * rate))
        if self.upto is None:
            return song, max(0, n - fade), n + added
        kept = min(n, int(round(self.upto * rate)))
        return song[:, : kept + added], kept, kept + added

    def rendition(self, n: int, rate: int, fade: int) -> tuple[int, int]:
        """Where the take (samples at ``rate``) holds the model's rendition of the song's first ``b - a`` samples
        (``[a, b)``) that the gain match compares with the song itself (``audio.gain_match``): the kept song
        before the seam's crossfade (at the end), up to the point, or all of it after an intro."""
        if self.lead:
            lead = int(round(self.lead * rate))
            return lead, lead + n
        if self.upto is None:
            return 0, max(0, n - fade)
        return 0, min(n, int(round(self.upto * rate)))


def layout(
    where: Where, src_audio: Any, song: np.ndarray, bars: Any, more: float, call: Any, first: float | None
) -> tuple[Where, Layout]:
    """Where asked (``read``) placed in ``song`` (decoded, 48 kHz; ``src_audio`` its file), and the take's
    ``Layout``: ``more`` seconds of new music (checked: Extend's range), or ``bars`` whole bars at the song's
    tempo (``edit_bars.extension``: after the song or the point, or before it), counted from bar 1
    at ``first`` (seconds, where the musician set it) at ``call``'s BPM and metre. A bar's point is placed on the
    song's bars (``at_bar``; at the admission check, a song not mapped yet is laid out as at its end, the most it
    may cost). ``InputError`` on ``where`` (``point``; a take longer than ``audio.MAX_SECONDS``), ``bars``,
    ``first_downbeat``."""
    seconds, by_bars = song.shape[-1] / audio.SAMPLE_RATE, edit_bars.given(bars)
    ways = (src_audio, bars, song, EXTEND_RANGE, call.bpm, call.timesignature, first)
    if where.kind == START:
        return where, Layout(lead=edit_bars.extension(*ways, before=True) if by_bars else more)
    if where.kind == END:
        return where, Layout(added=edit_bars.extension(*ways) if by_bars else more)
    if where.bar is not None:
        lines = edit_bars.lines(src_audio, song, call.bpm, first, call.timesignature)
        if not lines and headers.reading():  # taken on trust: the run reads its bars, and checks it there
            return where, Layout(added=more)
        where = at_bar(where, lines)
    at = point(where, seconds)
    added = edit_bars.extension(*ways, at=at) if by_bars else more
    if at + added > audio.MAX_SECONDS:
        most_added, most = math.floor(audio.MAX_SECONDS - at), f"{audio.MAX_SECONDS / 60:g} minutes"
        shown = {"kept": at, "more": added, "most": most, "most_added": most_added}
        raise InputError(error_messages.WHERE_TOO_LONG.format(**shown), "where")
    return where, Layout(upto=at, added=added)
