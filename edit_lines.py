"""Edit by lyric lines, on the CPU: a source song's sung lines with their times and ``[Section]``s, where
the studio knows them (a take it made with synced lyrics, bound to the file's bytes), the region a
choice of lines or a section spans, and the whole song's lyrics with those lines' new lyrics.

A choice covers its lines from the first chosen to the last. The region starts a breath
(``BREATH_SECONDS``) before the first line's first word and ends a breath before the next line's first
word (the song's end after its last line; never more than ``MAX_LINE_SECONDS`` after the last chosen
line starts, so an instrumental break after it stays out); each edge then moves to the nearest quiet
frame (``QUIET_DB`` under the loudest sample within ``CONTEXT_SECONDS``) within ``SNAP_SECONDS``, never past a neighbouring line's
start. Silence, not a beat: the line times are the alignment's, and a beat grid would move an edge onto
a sung onset as readily as off it, where a quiet frame is where nobody sings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import audio
import error_messages
import lrc
import preparing
import records
import take_latents
from checks import MIN_REGION_SECONDS, InputError

BREATH_SECONDS = 0.25
SNAP_SECONDS = 0.5
MAX_LINE_SECONDS = 10.0
QUIET_DB = -40.0
CONTEXT_SECONDS = 5.0
FRAME_SECONDS = 0.02
# The most line numbers a choice may name: a sung line is at least a word and its line break, so the
# lyrics the model reads (``lrc.MAX_TOKENS``) hold no more lines. Checked before any is read: 100,000
# numbers cost an instant event 0.1 s of a shared CPU each, for a choice of at most two (first, last).
MAX_CHOSEN = lrc.MAX_TOKENS // 2
# "[Chorus 2]": a line that is only a section marker (``lrc``'s own test), its name inside.
_TAG = re.compile(r"^\s*\[([^\]]*)\]\s*$")


@dataclass(frozen=True)
class Line:
    """A sung line: its number (from 1), text, section (name and number, 0 before any), start, and
    where the next one starts (the song's end after the last); ``row``: its line in the lyrics text."""

    number: int
    text: str
    section: str
    section_number: int
    start: float
    until: float
    row: int


@dataclass(frozen=True)
class SungLines:
    """A song's lyrics as the studio knows them: its whole lyrics, its sung lines with their times, its sections'
    names, and its length in seconds."""

    lyrics: str
    lines: tuple[Line, ...]
    sections: tuple[str, ...]
    seconds: float


def parse(lyrics: str, times: list[float], seconds: float) -> SungLines | None:
    """``lyrics`` with each sung line's start (``times``, in ``lrc.sung_lines`` order), or None where
    the two disagree (a record that is not the lyrics it was sung from)."""
    if len(times) != len(lrc.sung_lines(lyrics)) or not times:
        return None
    found, sections, section = [], [], ""
    for row, text in enumerate(lyrics.splitlines()):
        tag = _TAG.match(text)
        if tag:
            section = tag.group(1).strip()
            sections.append(section)
        elif text.strip():
            found.append((text.strip(), section, len(sections), row))
    starts = [min(max(0.0, float(t)), seconds) for t in times]
    ends = [*starts[1:], seconds]
    lines = [
        Line(i + 1, *f[:3], s, max(s, e), f[3]) for i, (f, s, e) in enumerate(zip(found, starts, ends, strict=True))
    ]
    return SungLines(lyrics, tuple(lines), tuple(sections), seconds)


def known(src_audio: Any) -> SungLines | None:
    """The sung lines of a source song the studio made and still keeps, with its synced lyrics, byte for byte
    as written (a region Edit's: the whole song's, ``song_lyrics``); else None."""
    record = preparing.take_record(src_audio)
    how_made = records.Record.of(record)
    if how_made.this_take is None or how_made.this_take.lyric_lines is None:
        return None
    lyrics = how_made.song_lyrics
    if not isinstance(lyrics, str) or not take_latents.belongs(Path(str(src_audio)), how_made.this_take):
        return None
    try:
        times = [float(line["time"]) for line in how_made.this_take.lyric_lines or []]
        header = audio.probe(str(src_audio))
        seconds = header.frames / header.rate
    except (TypeError, KeyError, ValueError, audio.AudioError):
        return None
    return parse(lyrics, times, seconds)


@dataclass(frozen=True)
class Around:
    """A region Edit, given the region's lyrics alone, of a song whose synced lines the studio knows: the
    whole song's lyrics with those lyrics in place of the lines that start in the region (``lyrics``), and
    the lines outside it, timed as the song's record has them (``before``, ``after``)."""

    lyrics: str
    before: tuple[dict[str, Any], ...]
    after: tuple[dict[str, Any], ...]

    def lines(self, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A take's synced lines: the song's before the region, the region's (``new``), the song's after."""
        return [*self.before, *new, *self.after]


def around(src_audio: Any, start: float, end: float, new_lyrics: str) -> Around | None:
    """The song's lyrics around the region ``start``–``end`` where ``new_lyrics`` are the region's alone
    (``Around``); None where the studio does not know the song's (``known``), or where ``new_lyrics``
    already are the whole song's (they sing its lines outside the region, in order: upstream's way,
    and what a variation of an Edit by lyric lines sends)."""
    sung = known(src_audio)
    if sung is None:
        return None
    before = [line for line in sung.lines if line.start < start]
    inside = [line for line in sung.lines if start <= line.start < end]
    after = [line for line in sung.lines if line.start >= end]
    given = iter(lrc.sung_lines(new_lyrics))
    if all(any(text == line.text for text in given) for line in [*before, *after]):  # in order: one pass
        return None
    rows = sung.lyrics.splitlines()
    if inside:
        rows[inside[0].row : inside[-1].row + 1] = new_lyrics.splitlines()
    else:  # in the section of the line before it
        at = before[-1].row + 1 if before else 0
        rows[at:at] = new_lyrics.splitlines()
    timed = lambda lines: tuple({"time": line.start, "text": line.text} for line in lines)  # noqa: E731
    return Around("\n".join(rows), timed(before), timed(after))


def _numbers(value: Any) -> list[int]:
    """Line numbers as the API or the page sends them: a list, or text such as "3, 4" or "3-5"; at most
    ``MAX_CHOSEN`` of them (each text item at most "1024-1024, "), refused (``InputError``) before any is read."""
    listed = isinstance(value, list | tuple)
    given = value if listed else "" if value is None else str(value).strip()  # 0 is a line number (refused)
    if len(given) > (MAX_CHOSEN if listed else MAX_CHOSEN * len("1024-1024, ")):
        raise InputError(error_messages.LINES_TOO_MANY.format(most=MAX_CHOSEN), "lines")
    items = given if listed else re.split(r"[,\s]+", given)
    numbers = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        bounds = re.fullmatch(r"(\d{1,6})\s*[-–]\s*(\d{1,6})", text)
        if bounds:  # a choice covers its first to its last line: the range's ends are all it adds
            numbers += [int(bounds[1]), int(bounds[2])]
        elif re.fullmatch(r"\d{1,6}(\.0+)?", text):
            numbers.append(int(float(text)))
        else:
            raise InputError(error_messages.LINES_NOT_NUMBERS.format(given=text[:40]), "lines")
    return numbers


def section_lines(sung: SungLines, section: Any) -> list[int]:
    """The line numbers of ``section``: its number (from 1) or its name (any case, brackets optional)."""
    text = str(section).strip().strip("[]").strip()
    names = ", ".join(f"{i} {name}" for i, name in enumerate(sung.sections, 1)) or "none"
    if re.fullmatch(r"\d{1,6}(\.0+)?", text):  # a number as any client sends it: 2, 2.0 or "2"
        index = int(float(text))
        if not 1 <= index <= len(sung.sections):
            raise InputError(error_messages.NO_SUCH_SECTION.format(given=text, names=names), "section")
    else:
        # Folded once, and only where it could be a name (folding at most triples a letter): a page of
        # text compared with each of a song's sections cost its length times theirs.
        fits = len(text) <= 3 * max(map(len, sung.sections), default=0)
        wanted = text.casefold() if fits else None
        matches = [i for i, name in enumerate(sung.sections, 1) if name.casefold() == wanted]
        if not matches:
            raise InputError(error_messages.NO_SUCH_SECTION.format(given=text[:40], names=names), "section")
        if len(matches) > 1:
            raise InputError(error_messages.SECTION_TWICE.format(given=text[:40], numbers=matches), "section")
        index = matches[0]
    found = [line.number for line in sung.lines if line.section_number == index]
    if not found:
        raise InputError(error_messages.SECTION_UNSUNG.format(given=text[:40]), "section")
    return found


def choose(sung: SungLines | None, lines: Any, section: Any) -> tuple[int, int] | None:
    """The first and last line a choice covers, or None where nothing is chosen; ``InputError`` where
    the song's lyric times are not known or a line or section does not exist."""
    numbers = _numbers(lines)
    named = section is not None and str(section).strip() != ""
    if not numbers and not named:
        return None
    if sung is None:
        raise InputError(error_messages.LYRIC_TIMES_UNKNOWN, "section" if named and not numbers else "lines")
    missing = [n for n in numbers if not 1 <= n <= len(sung.lines)]
    if missing:
        raise InputError(error_messages.NO_SUCH_LINE.format(count=len(sung.lines), given=missing[0]), "lines")
    if named:
        numbers += section_lines(sung, section)
    return min(numbers), max(numbers)


def given(lines: Any, section: Any) -> bool:
    """Whether a choice of lines or a section was sent at all (an empty list or text is none)."""
    return any(str(x).strip() for x in (lines if isinstance(lines, list | tuple) else [lines]) if x is not None) or (
        section is not None and str(section).strip() != ""
    )


@dataclass(frozen=True)
class Chosen:
    """Lines ``first``–``last`` of a song's ``sung_lines`` chosen, and the whole song's ``lyrics`` with their
    new lyrics; ``field``: where a refusal of its region is shown."""

    sung_lines: SungLines
    first: int
    last: int
    lyrics: str
    field: str

    def span(self, song: np.ndarray | None) -> tuple[float, float]:
        """Its region in ``song`` (``span``), refused where shorter than Edit's shortest."""
        start, end = span(self.sung_lines, self.first, self.last, song)
        check_span(self.first, self.last, start, end, self.field)
        return start, end


def resolve(src_audio: Any, lines: Any, section: Any, new_lyrics: Any) -> Chosen | None:
    """What ``/edit``'s ``lines`` and ``section`` choose in ``src_audio`` (None: nothing), with
    ``new_lyrics`` put in their place; ``InputError`` on the field at fault."""
    if not given(lines, section):
        return None
    preparing.need_source(src_audio)
    sung = known(src_audio)
    found = choose(sung, lines, section)
    if found is None or sung is None:
        return None
    field = "lines" if given(lines, None) else "section"
    return Chosen(sung, *found, with_new_lyrics(sung, *found, new_lyrics), field)


def _quiet_near(song: np.ndarray | None, target: float, lo: float, hi: float) -> float:
    """The quiet frame nearest ``target`` within ``SNAP_SECONDS`` and ``[lo, hi]``; ``target`` if none."""
    if song is None or hi <= lo:
        return target
    rate, frame = audio.SAMPLE_RATE, int(FRAME_SECONDS * audio.SAMPLE_RATE)
    a = max(0, int((max(lo, target - SNAP_SECONDS)) * rate))
    b = min(song.shape[-1], int((min(hi, target + SNAP_SECONDS)) * rate))
    # The loudness an edge is quiet against: the song's loudest within ``CONTEXT_SECONDS`` (not the whole
    # song's: a 10-minute song's every sample read for a click took 0.7 s of a shared CPU).
    near = song[:, max(0, a - int(CONTEXT_SECONDS * rate)) : b + int(CONTEXT_SECONDS * rate)]
    peak = float(np.abs(near).max()) if near.size else 0.0
    if b - a < frame or peak <= 0.0:
        return target
    n = (b - a) // frame
    frames = song[:, a : a + n * frame].reshape(song.shape[0], n, frame)
    loud = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=(0, 2)))
    quiet = np.flatnonzero(loud <= peak * 10 ** (QUIET_DB / 20))
    if not quiet.size:
        return target
    centres = (a + (quiet + 0.5) * frame) / rate
    return float(centres[np.argmin(np.abs(centres - target))])


def span(sung: SungLines, first: int, last: int, song: np.ndarray | None = None) -> tuple[float, float]:
    """The region lines ``first``–``last`` span: a breath before the first's start to a breath before the
    next line's, each edge snapped to the nearest quiet frame of ``song`` (none given: not snapped)."""
    head, tail = sung.lines[first - 1], sung.lines[last - 1]
    before = sung.lines[first - 2].start if first > 1 else 0.0
    start = max(before, head.start - BREATH_SECONDS)
    end = tail.until - BREATH_SECONDS if last < len(sung.lines) else tail.until
    end = max(tail.start, min(end, tail.start + MAX_LINE_SECONDS))
    start = _quiet_near(song, start, before, head.start)
    end = _quiet_near(song, end, tail.start, tail.until)
    return round(start, 2), round(min(end, sung.seconds), 2)


def which(first: int, last: int) -> str:
    """A choice as text: "Line 3", "Lines 3–5"."""
    return (error_messages.LINE_CHOSEN if first == last else error_messages.LINES_CHOSEN).format(first=first, last=last)


def check_span(first: int, last: int, start: float, end: float, field: str) -> None:
    """Refuse a choice whose region is shorter than Edit's shortest (``checks.MIN_REGION_SECONDS``)."""
    if end - start < MIN_REGION_SECONDS:
        raise InputError(
            error_messages.LINES_TOO_SHORT.format(
                which=which(first, last), seconds=end - start, start=start, end=end, least=MIN_REGION_SECONDS
            ),
            field,
        )


def block(sung: SungLines, first: int, last: int) -> str:
    """The lyrics' text from line ``first`` to line ``last`` (the markers and blanks between included)."""
    rows = sung.lyrics.splitlines()
    return "\n".join(rows[sung.lines[first - 1].row : sung.lines[last - 1].row + 1])


def with_new_lyrics(sung: SungLines, first: int, last: int, new: Any) -> str:
    """The whole song's lyrics with lines ``first``–``last`` replaced by ``new`` (empty: kept as sung)."""
    new = str(new or "").strip()
    if not new:
        return sung.lyrics
    rows = sung.lyrics.splitlines()
    rows[sung.lines[first - 1].row : sung.lines[last - 1].row + 1] = new.splitlines()
    return "\n".join(rows)


def label(line: Line) -> str:
    """A line as the page lists it: its number, start and text."""
    minutes, seconds = divmod(line.start, 60)
    return f"{line.number} · {int(minutes)}:{seconds:04.1f} · {lrc.plain_line(line.text)[:80]}"
