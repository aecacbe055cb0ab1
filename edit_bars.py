"""Edit and Extend by the bar, on the CPU: a source song's map (``song_map``: its record's where the studio
made it and keeps it, else read from its audio, bounded like every analysis and kept by file), the region
a choice of bars spans, and how many seconds whole bars last at the song's tempo.

Bars are counted from 1, as the map's bar lines are: bar 9 runs from its line to the next (the song's end
after the last). At the admission check (``headers.reading``) a choice of bars is checked against the map
the studio knows already (a take's record, or an upload its reading measured at that tempo: ``form_fields``),
so a refusal comes before the request joins the GPU queue; a song it does not know yet is taken on trust: its bars are read
from its audio when the run reads it, and checked there again.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

import analysis
import audio
import bar_one
import error_messages
import headers
import messages
import preparing
import records
import song_map
import take_latents
import tooltips as tips
import uploads
from checks import MIN_REGION_SECONDS, SHORT_TEXT, InputError

# The most numbers a list of bars may hold (text is held to ``checks.SHORT_TEXT`` characters, as every
# short field): a choice covers its first bar to its last, so two say all of it.
MAX_LISTED = 16
# The maps read from songs' audio, by file (path, size, mtime), as ``analysis`` keeps its measurements.
_read = analysis.ByFile()


def given(value: Any) -> bool:
    """Whether a choice of bars was sent at all (an empty list or text is none; 0 is refused, not none)."""
    if isinstance(value, list | tuple):
        return any(str(x).strip() for x in value if x is not None)
    return value is not None and str(value).strip() != ""


def check_alone(bars: Any, part: bool, lines: bool) -> None:
    """Refuse bars sent with a part to change (the whole song) or with lines or a section, on ``bars``."""
    if given(bars) and (part or lines):
        raise InputError(error_messages.BARS_WITH_PART if part else error_messages.BARS_WITH_LINES, "bars")


def edited_bars(bars: Any) -> tuple[int, int] | None:
    """What an Edit's record says of the bars it was given (its ``edited_bars``: first, last), or None."""
    return numbers(bars) if given(bars) else None


def numbers(value: Any) -> tuple[int, int]:
    """The first and last bar of a choice as the API or the page sends it: a number (9), text ("9-16",
    "9, 10") or a list ([9, 16]); ``InputError`` on ``bars``, naming the whole choice ("the chorus", not
    its first word)."""
    listed = isinstance(value, list | tuple)
    refused = InputError(error_messages.BARS_NOT_NUMBERS.format(given=str(value).strip()[:40]), "bars")
    if len(value if listed else str(value)) > (MAX_LISTED if listed else SHORT_TEXT):
        raise refused
    items = list(value) if listed else re.split(r"[,\s]+", str(value).strip())
    found = []
    for item in items:
        text = str(item).strip()
        bounds = re.fullmatch(r"(\d{1,5})\s*[-–]\s*(\d{1,5})", text)
        if bounds:
            found += [int(bounds[1]), int(bounds[2])]
        elif re.fullmatch(r"\d{1,5}(\.0+)?", text):
            found.append(int(float(text)))
        elif text:
            raise refused
    if not found:
        raise refused
    return min(found), max(found)


def _recorded(src_audio: Any) -> song_map.Map | None:
    """The map the studio kept in the record of a take it made, byte for byte as written."""
    record = preparing.take_record(src_audio)
    how_made = records.Record.of(record)
    if how_made.this_take is None or how_made.this_take.bars is None:  # a take's record, its bars all numbers
        return None
    if not take_latents.belongs(Path(str(src_audio)), how_made.this_take):
        return None
    try:
        header = audio.probe(str(src_audio))
    except (TypeError, ValueError, audio.AudioError):
        return None
    per_bar = song_map.beats_per_bar_of(how_made.time_signature)
    sections = song_map.sections_of_record(how_made.this_take.sections)
    return song_map.Map(how_made.this_take.bars, sections, per_bar, None, round(header.frames / header.rate, 3))


def of_song(src_audio: Any, song: np.ndarray | None = None, bpm: Any = None) -> song_map.Map | None:
    """A source song's map: its record's (a take the studio made), else its bars read from its audio (``song``
    where it is decoded already; kept by file and ``bpm``, the tempo the musician typed, toward which the
    tracker's reading is resolved; ``uploads.Busy`` when the studio is measuring as many songs as it may); None
    at the admission check for a song the studio did not map (its audio is not read there)."""
    found = _recorded(src_audio)
    if found is not None:
        return found
    path, tempo = Path(str(src_audio)), song_map.positive(bpm)
    if headers.reading():  # what the upload's reading measured at this tempo, where it did: nothing is read here
        return _read.kept(path, tempo)

    def read() -> song_map.Map:
        stereo = uploads.load(path) if song is None else song
        with analysis.place():  # the learned tracker's beats where it is present, kept by file alone
            return song_map.of_audio(stereo, audio.SAMPLE_RATE, bpm=tempo, heard=analysis.learned(path, stereo))

    return _read.get(path, read, tempo)


def heard(src_audio: Any, song: np.ndarray, bpm: Any = None) -> song_map.Map | None:
    """An upload's map as its analysis reads it (``of_song``, kept for the Edit or Extend that follows); None
    where the studio is measuring as many songs as it may: an upload is never refused for its map."""
    try:
        return of_song(src_audio, song, bpm)
    except (uploads.Busy, OSError):
        return None


# The musician's bar 1 as the preparers pass it on (``bar_one_at``'s seconds, the time signature typed), or None.
Corrected = tuple[float, Any] | None


def _grid(src_audio: Any, song: np.ndarray | None, bpm: Any = None, from_bar: Corrected = None) -> song_map.Map | None:
    """``of_song``, counted from the musician's bar 1 where one is set (``from_bar``: ``corrected``), ``InputError``
    on ``bars`` where the studio is busy or hears no steady beat."""
    try:
        found = of_song(src_audio, song, bpm)
    except uploads.Busy as exc:
        raise InputError(str(exc), "bars") from None
    if found is not None and from_bar is not None:
        found = corrected(found, *from_bar, bpm)
    if found is not None and not found.bars:
        raise InputError(error_messages.BARS_NO_GRID, "bars")
    return found


def bar_one_at(value: Any, song: np.ndarray) -> float | None:
    """``first_downbeat`` (where bar 1 starts, in seconds) checked against ``song``: None where none is given, else
    a time inside it, to the millisecond; ``InputError`` on ``first_downbeat`` otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    refused = InputError(error_messages.BAR_ONE_NOT_NUMBER.format(given=str(value).strip()[:40]), "first_downbeat")
    try:
        given = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        raise refused from None
    if not math.isfinite(given):
        raise refused
    seconds = song.shape[-1] / audio.SAMPLE_RATE
    if not 0 <= given < seconds:
        raise InputError(error_messages.BAR_ONE_OUTSIDE.format(given=given, seconds=seconds), "first_downbeat")
    return round(given, 3)


def corrected(found: song_map.Map, first: float, time_signature: Any, bpm: Any) -> song_map.Map:
    """``found`` (a song's map) counted from bar 1 at ``first`` (``song_map.rephased``, at the ``bpm`` and metre
    typed); ``InputError`` on ``first_downbeat`` where it has no beat and no BPM is typed to lay bars at."""
    per_bar = song_map.beats_per_bar_of(time_signature)
    lines = bar_one.rephased(found.bars, first, bpm, per_bar, found.seconds, found.beats_per_bar)
    if not lines:
        raise InputError(error_messages.BAR_ONE_NO_TEMPO.format(given=first), "first_downbeat")
    return dataclasses.replace(found, bars=lines, beats_per_bar=per_bar or found.beats_per_bar)


def for_reading(
    found: song_map.Map | None, song: np.ndarray, first: Any, bpm: Any
) -> tuple[song_map.Map | None, float | None]:
    """An upload's map as its reading shows it: counted from bar 1 at ``first`` where that is a time inside the song
    the map can be counted from (``corrected``, at ``bpm``), with that time; else as heard, and None (an upload
    is never refused for its map: the request says why on the field)."""
    try:
        at = None if found is None else bar_one_at(first, song)
        return (found, None) if at is None else (corrected(found, at, None, bpm), at)
    except InputError:
        return found, None


def map_line(found: song_map.Map | None, first: float | None = None) -> str:
    """The upload's map in one line, and how sure it is: "12 bars: ≈ 140.1 BPM in 4/4, steady", "…, its bars
    wander up to 6 %", or that no steady beat was heard (set Bar 1 and the BPM); "" where it was not read. Its
    tempo is the one its bars follow (the line's only one: ``form_fields.read_song``)."""
    if found is None:
        return ""
    if not found.bars:
        return messages.MAP_UNSURE
    per_bar = found.beats_per_bar or song_map.ASSUMED_BEATS
    metre = tips.METRE_NAMES.get(str(per_bar), f"{per_bar} beats per bar")
    # Its bars' wander as ``song_map.measured`` says it; its tempo the fit over its beats where they are its beats (no bar 1 set).
    lengths = np.diff(found.bars)
    middle = float(np.median(lengths)) if lengths.size else 0.0
    wander = round(float(np.abs(lengths - middle).max()) / middle * 100.0, 1) if len(found.bars) > 2 else 0.0
    how = messages.TEMPO_STEADY if wander <= song_map.STEADY_PCT else messages.TEMPO_WANDERS.format(pct=wander)
    fitted = found.tempo is not None and first is None
    bpm = found.tempo.bpm if fitted else round(per_bar * 60.0 / middle, 1) if middle else song_map.ASSUMED_BPM
    felt = found.tempo.felt_as if fitted and found.tempo is not None else None
    shown = {"bars": len(found.bars), "bpm": bpm, "metre": metre, "steady": how}
    line = messages.MAP_FELT.format(**shown, felt=round(felt)) if felt else messages.MAP_HEARD.format(**shown)
    return line + ("" if first is None else messages.MAP_FROM_BAR_ONE.format(first=first))


def which(first: int, last: int) -> str:
    """A choice as text: "Bar 9", "Bars 9–16"."""
    return (error_messages.BAR_CHOSEN if first == last else error_messages.BARS_CHOSEN).format(first=first, last=last)


def region(
    src_audio: Any,
    bars: Any,
    typed: tuple[Any, Any] | None,
    song: np.ndarray | None = None,
    bpm: Any = None,
    from_bar: Corrected = None,
) -> tuple[float, float] | None:
    """The region ``bars`` choose in ``src_audio`` (``song``: its audio, decoded; None: the admission check cannot tell yet;
    counted from ``from_bar`` where the musician set it); ``InputError`` on ``bars``: with a typed region
    (``typed``: the seconds sent where they are not the form's first values) that is not the bars' region, past the
    song's bars, shorter than Edit's shortest, or a song with no grid."""
    first, last = numbers(bars)
    grid = _grid(src_audio, song, bpm, from_bar)
    if grid is None:
        return None
    if not 1 <= first <= last <= len(grid.bars):
        wrong = first if not 1 <= first <= len(grid.bars) else last
        raise InputError(error_messages.NO_SUCH_BAR.format(count=len(grid.bars), given=wrong), "bars")
    start, end = grid.region(first, last)
    if typed is not None and not _same(typed, (start, end)):
        shown = {"which": which(first, last), "start": start, "end": end, "typed": _seconds(typed)}
        raise InputError(error_messages.BARS_WITH_REGION.format(**shown), "bars")
    if end - start < MIN_REGION_SECONDS:
        raise InputError(
            error_messages.BARS_TOO_SHORT.format(
                which=which(first, last), seconds=end - start, least=MIN_REGION_SECONDS
            ),
            "bars",
        )
    return start, end


def _same(typed: tuple[Any, Any], region: tuple[float, float]) -> bool:
    """Whether a typed region is the bars' region (the page's fields may hold it, to the millisecond)."""
    try:
        return all(abs(float(a) - b) <= 0.0015 for a, b in zip(typed, region, strict=True))
    except (TypeError, ValueError):
        return False


def _seconds(typed: tuple[Any, Any]) -> str:
    """A typed region as text: "1–5 s" (a value that is no number, as it was sent)."""
    try:
        return error_messages.TYPED_REGION.format(start=float(typed[0]), end=float(typed[1]))
    except (TypeError, ValueError):
        return error_messages.TYPED_REGION_AS_SENT.format(start=str(typed[0])[:20], end=str(typed[1])[:20])


def count(value: Any) -> int:
    """Extend's whole bars to add: a whole number from 1; ``InputError`` on ``bars`` otherwise."""
    text = str(value).strip()
    if not re.fullmatch(r"\d{1,4}(\.0+)?", text) or int(float(text)) < 1:
        raise InputError(error_messages.EXTEND_BARS_NOT_COUNT.format(given=text[:40]), "bars")
    return int(float(text))


def _bar_seconds(
    grid: song_map.Map | None, bpm: Any, time_signature: Any, at: float | None = None
) -> tuple[float, float | None]:
    """(one bar's length where the song ends, the last bar line before it: None where the grid is not known):
    the grid's last bars where it has them, else the tempo and metre asked, else ``song_map.ASSUMED_BPM`` in
    ``ASSUMED_BEATS``. ``at``: the song as cut at that point (seconds): its bars before it (the first ones where
    fewer than two precede it), and a line before it (bar 1, where the point lies before it)."""
    if grid is not None and len(grid.bars) >= 2:
        before = grid.bars if at is None else [b for b in grid.bars if b <= at + 1e-6]
        last = (before if len(before) >= 2 else grid.bars[:2])[-9:]
        lengths = sorted(b - a for a, b in zip(last, last[1:], strict=False))
        return lengths[len(lengths) // 2], (before or grid.bars)[-1]
    tempo, per_bar = (
        song_map.positive(bpm) or song_map.ASSUMED_BPM,
        song_map.beats_per_bar_of(time_signature) or song_map.ASSUMED_BEATS,
    )
    return per_bar * 60.0 / tempo, None


def extension(
    src_audio: Any,
    bars: Any,
    song: np.ndarray,
    within: tuple[float, float],
    bpm: Any = None,
    time_signature: Any = None,
    first: float | None = None,
    at: float | None = None,
    before: bool = False,
) -> float:
    """The seconds Extend adds for ``bars`` whole bars after ``song`` (decoded; ``at``: cut at that point, seconds):
    that many bars at its tempo after the bar the song ends (or is cut) in, so the new part ends on a bar line and
    the next bar starts on the beat (a song that ends on a bar line: exactly that many bars). ``before``: an intro
    before the song, counted back from its bar 1 (``first``, where the musician set it), the mirror: the song's grid
    carried back through it, so the intro starts on a bar line and the song's bar 1 still falls on one (a song
    whose first bar line, carried back, lies at its start gets exactly that many bars; one that starts with a
    pickup gets them and the rest of the pickup's bar). ``InputError`` on ``bars`` outside ``within`` (Extend's
    range), on ``where`` from a point or before the song with no tempo to count bars at (``tempo_known``); at the
    admission check, a song not mapped yet is brought within it (taken on trust)."""
    n, seconds = count(bars), song.shape[-1] / audio.SAMPLE_RATE if at is None else at
    grid = _grid(src_audio, song, bpm, None if first is None else (first, time_signature))
    if at is not None or before:
        tempo_known(grid, bpm, "before the start" if before else "from a point")
    if before:
        more = _intro(grid, n, bpm, time_signature, first)
        return _within(more, n, grid, within)
    bar, last = _bar_seconds(grid, bpm, time_signature, at)
    if last is None:
        more = round(n * bar, 3)
    else:  # the bar line at or before the song's end, the grid carried on past its last line
        line = last + math.floor((seconds - last) / bar + 1e-3) * bar
        tail = seconds - line  # how far into its last bar the song ends
        more = round(n * bar + (bar - tail if tail > 0.03 * bar else -tail), 3)
    return _within(more, n, grid, within)


def _intro(grid: song_map.Map | None, n: int, bpm: Any, time_signature: Any, first: float | None) -> float:
    """The seconds of ``n`` bars before a song of map ``grid`` up to the first bar line at or after its start (bar
    1 carried back): the bar of its first bars, else the tempo asked (``_bar_seconds``)."""
    if grid is not None and len(grid.bars) >= 2:
        opening = grid.bars[:9]
        lengths = sorted(b - a for a, b in zip(opening, opening[1:], strict=False))
        bar, one = lengths[len(lengths) // 2], grid.bars[0]
    else:
        bar, one = _bar_seconds(grid, bpm, time_signature)[0], first or 0.0
    head = one - math.floor(one / bar + 1e-3) * bar  # the song's start to the first bar line at or after it
    return round(n * bar + (bar - head if head > 0.03 * bar else -head), 3)


def tempo_known(grid: song_map.Map | None, bpm: Any, where: str) -> None:
    """Refuse bars to add ``where`` (a point, before the start) in a song whose bars say no tempo (fewer than two
    heard) where no BPM is typed: ``InputError`` on ``where``. At the admission check a song not mapped yet is
    taken on trust."""
    if (grid is None and headers.reading()) or song_map.positive(bpm) is not None:
        return
    if grid is None or len(grid.bars) < 2:
        raise InputError(error_messages.WHERE_BARS_NO_TEMPO.format(where=where), "where")


def _within(more: float, n: int, grid: song_map.Map | None, within: tuple[float, float]) -> float:
    """``more`` seconds of ``n`` bars within Extend's range ``within``; ``InputError`` on ``bars`` outside it."""
    if grid is None and headers.reading():
        return min(max(more, within[0]), within[1])
    if not within[0] <= more <= within[1]:
        shown = {"bars": n, "seconds": more, "most": f"{audio.MAX_SECONDS / 60:g} minutes"}
        raise InputError(error_messages.EXTEND_BARS_RANGE.format(**shown, low=within[0], high=within[1]), "bars")
    return more


def lines(
    src_audio: Any, song: np.ndarray, bpm: Any = None, first: float | None = None, metre: Any = None
) -> list[float]:
    """The song's bar lines (seconds, bar 1 first, counted from the musician's bar 1 at ``first``), for a point
    given as a bar (``extend_where.at_bar``): empty where the studio hears no bars (its refusal names ``where``);
    at the admission check, a song not mapped yet has none known ([]: taken on trust by the caller)."""
    try:
        found = _grid(src_audio, song, bpm, None if first is None else (first, metre))
    except InputError as exc:
        if exc.message == error_messages.BARS_NO_GRID:  # no steady beat: the point's own refusal says so
            return []
        raise
    return [] if found is None else list(found.bars)
