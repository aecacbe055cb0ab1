"""A take's map, as a musician counts it: its bar lines, read from its own audio, and its sections, read
from its synced lyrics and their ``[Section]`` tags. All of it on the CPU, bounded like every analysis.

Bars: ``beats`` finds the beats on their attacks and the tempo as played (a fit over them, its octave moved
toward a BPM known); the metre is the record's (``time_signature``) or the beats' accents' (``beats.metre``),
and the downbeat is the phase of the beats whose accents are the strongest (``beats.downbeat``). A song with
no steady beat has no bars. Sections: each ``[Section]``'s first sung line starts it, moved onto the nearest
bar line within ``SECTION_SNAP`` of a bar; an untagged instrumental start is an intro.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

import analysis
import audio
import beat_network
import beats
import messages

# A section's start moves onto a bar line nearer than this share of a bar (a line sung a beat before
# its bar, a pickup, stays the bar's).
SECTION_SNAP = 0.5
# A bar where nothing says its tempo or metre (no grid, no BPM, no time signature, no plan): 120 BPM in 4/4.
ASSUMED_BPM, ASSUMED_BEATS = 120, 4
# An untagged instrumental start longer than this is a section of its own.
INTRO_SECONDS = 2.0
INTRO = "Intro"
KEPT_PART = "Original"  # an Extend's song as it was, before the new part
UNTAGGED = "Song"  # sung lines before any tag, in a song whose lyrics name sections after them
# How long a take's map waits for one of the analyses' places (``analysis.place``) before the take is
# kept without one (its record then has no ``bars``: read from its audio when an Edit asks, ``edit_bars``).
TAKE_WAIT_S = 30.0
_TAG = re.compile(r"^\s*\[([^\]]*)\]\s*$")


@dataclass(frozen=True)
class Section:
    """One section of a song, as its lyrics' ``[Section]`` tag names it (a record keeps it as
    ``{"name", "start", "end"}``).

    name: the tag's text ("Verse 1"), or ``INTRO``, ``UNTAGGED``, ``KEPT_PART``.
    start: where it starts, seconds from the song's start.
    end: where it ends (the next section's start, or the song's end), seconds from the song's start.
    """

    name: str
    start: float
    end: float

    def as_record(self) -> dict[str, Any]:
        """Its entry in a take's record: ``{"name", "start", "end"}``."""
        return {"name": self.name, "start": self.start, "end": self.end}

    @classmethod
    def of_record(cls, entry: Any) -> Section | None:
        """A record's section entry read (a name that is not text: its text; a time that is no finite
        number: 0.0); None where it is not a dict."""
        if not isinstance(entry, dict):
            return None
        start, end = audio.finite_seconds(entry.get("start")), audio.finite_seconds(entry.get("end"))
        return cls(str(entry.get("name") or ""), start, end)


def sections_of_record(entries: Any) -> list[Section]:
    """A record's ``sections`` read (``Section.of_record``), what is not a section left out."""
    found = (Section.of_record(entry) for entry in entries) if isinstance(entries, list) else ()
    return [section for section in found if section is not None]


@dataclass(frozen=True)
class Map:
    """A song's map: its bars, sections and tempo as the studio read them (``of_audio``, ``of_take``,
    ``looped``; a record keeps ``as_record``'s form of it).

    bars: each bar's start (its downbeat), seconds from the song's start, ascending; the song's end closes
        the last; empty where no steady beat was heard.
    sections: its sections (``Section``), ascending, not overlapping; empty where its lyrics name none.
    beats_per_bar: the metre's beats in a bar (2-12), or None where not known.
    bpm: its tempo as played, beats per minute (``tempo.bpm``), or None where no beat was heard.
    seconds: the song's length, seconds.
    tempo: its tempo as played and how steady it is (``Tempo``: BPM, its bars' wander in %), or None.
    """

    bars: list[float] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    beats_per_bar: int | None = None
    bpm: float | None = None
    seconds: float = 0.0
    tempo: Tempo | None = None

    def as_record(self) -> dict[str, Any]:
        """What a take's record entry keeps: ``bars``, ``sections`` and, where a beat was heard, ``tempo``."""
        found = {"bars": list(self.bars), "sections": [s.as_record() for s in self.sections]}
        return found if self.tempo is None else {**found, "tempo": self.tempo.as_record()}

    def region(self, first: int, last: int) -> tuple[float, float]:
        """Bars ``first``–``last`` (from 1) in seconds: the start of ``first`` to the start of the bar
        after ``last`` (the song's end after the last bar)."""
        end = self.bars[last] if last < len(self.bars) else self.seconds
        return self.bars[first - 1], end


def beats_per_bar_of(time_signature: Any) -> int | None:
    """The beats in a bar a record's ``time_signature`` names ("4", "3/4"), or None (auto, unknown)."""
    text = str(time_signature or "").strip().split("/")[0]
    return int(text) if text.isdigit() and 2 <= int(text) <= 12 else None


def _lines(times: np.ndarray, phase: int, per_bar: int, seconds: float) -> list[float]:
    """The bar lines: every ``per_bar``-th beat (``times``) from ``phase``, whole bars added before the first
    while they fall in the song (an intro the tracker left out) and after the last while a bar fits in it."""
    downs = times[phase::per_bar]
    if not downs.size:
        return []
    beat = float(np.median(np.diff(times)))
    return _around(downs, beat, float(np.median(np.diff(downs))) if downs.size > 1 else beat * per_bar, seconds)


def _around(downs: np.ndarray, beat: float, bar: float, seconds: float) -> list[float]:
    """The bar lines ``downs``, with the whole bars of ``bar`` seconds before and after them that fit the song."""
    # A line a hair before 0 is the song's first downbeat (1.999 s after it in a 2.000 s bar), not a pickup.
    reach = min(beats.SEARCH_SECONDS, beat / 6)
    before = [downs[0] - k * bar for k in range(int((downs[0] + reach) // bar), 0, -1)]
    lines = [*before, *downs.tolist()]
    while lines[-1] + bar < seconds - 0.25 * bar:
        lines.append(lines[-1] + bar)
    return [round(max(0.0, float(t)), 3) for t in lines if t < seconds - 0.25 * bar]


# A take is "in time" within this share of the tempo asked, and "steady" where no bar is longer or shorter
# than its take's median bar by more than ``STEADY_PCT`` (a ±1.5 % drift over a song is steady, a jump is not).
IN_TIME_PCT = 1.0
STEADY_PCT = 2.0


@dataclass(frozen=True)
class Tempo:
    """A take's tempo as played, and how sure the reading is (how steady its bars are); a record keeps
    ``as_record``'s form of it.

    bpm: beats per minute, measured over its beats (the slope of a least-squares line through them).
    wander_pct: how far its bars stray from their median bar at most, % (``steady`` within ``STEADY_PCT``).
    asked: the tempo asked (BPM), or None where none was.
    felt_as: the other reading where the music allows two (a half-time feel, BPM), or None.
    """

    bpm: float
    wander_pct: float
    asked: float | None = None
    felt_as: float | None = None

    @property
    def off_pct(self) -> float | None:
        """How far it is off the tempo asked, % (negative: slow), to a tenth; None where none was asked."""
        return None if not self.asked else round((self.bpm / self.asked - 1.0) * 100.0, 1)

    @property
    def steady(self) -> bool:
        """Whether no bar strays more than ``STEADY_PCT`` from the median bar."""
        return self.wander_pct <= STEADY_PCT

    def said(self) -> str:
        """One line for beside the take: "In time: 119.8 BPM, steady", "Played at 117.6 BPM, 2 % slow"."""
        steady = messages.TEMPO_STEADY if self.steady else messages.TEMPO_WANDERS.format(pct=self.wander_pct)
        off = self.off_pct
        if off is None and self.felt_as:
            return messages.TEMPO_FELT.format(bpm=self.bpm, felt=round(self.felt_as), steady=steady)
        if off is None:
            return messages.TEMPO_HEARD.format(bpm=self.bpm, steady=steady)
        if abs(off) <= IN_TIME_PCT:
            return messages.TEMPO_IN_TIME.format(bpm=self.bpm, steady=steady)
        way = messages.TEMPO_SLOW if off < 0 else messages.TEMPO_FAST
        return messages.TEMPO_OFF.format(bpm=self.bpm, pct=f"{abs(off):g}", way=way, steady=steady)

    def as_record(self) -> dict[str, Any]:
        """A take's ``tempo`` entry: the numbers and the line said beside it."""
        entry: dict[str, Any] = {"bpm": self.bpm, "wander_pct": self.wander_pct, "steady": self.steady}
        if self.asked:
            entry |= {"asked": self.asked, "off_pct": self.off_pct}
        if self.felt_as:
            entry |= {"felt_as": round(self.felt_as, 1)}
        return entry | {"said": self.said()}


# A tempo told (``told``: the tracker's reading within ``beats.OCTAVE_REACH`` of it) vouches for a beat the
# tracker believes at less than ``beats.CONFIDENCE`` only where its bars keep one length within this (%): a
# drifting record told its tempo (drascula-track26 at 96) reads 0.14, its bars wandering 9.9 %, the band drifting
# 75 -> 115 BPM under noise told 96 0.23 and 12.1 %; noise under a random envelope told a tempo 0.12-0.22, its
# bars wandering 1.5-22.5 % (those over this are left unsaid), and a reading whose bars wander 23.5 % is not
# "in time" because it was told the tempo it found.
TOLD_WANDER_PCT = 14.0


def measured(
    times: np.ndarray,
    lines: list[float],
    asked: float | None = None,
    felt_as: float | None = None,
    *,
    confidence: float,
    told: bool,
) -> Tempo | None:
    """The tempo of beats on their attacks (``times``, seconds) and how steady its bars (``lines``) are; None
    with too few, or where no beat is heard: the tracker's ``confidence`` under ``beats.CONFIDENCE``, unless it
    was ``told`` the tempo and its bars wander no more than ``TOLD_WANDER_PCT``."""
    if len(times) < 4:
        return None
    lengths = np.diff(lines) if len(lines) > 2 else np.zeros(0)
    middle = float(np.median(lengths)) if lengths.size else 0.0
    wander = float(np.abs(lengths - middle).max() / middle * 100.0) if middle > 0 else 0.0
    if confidence < beats.CONFIDENCE and not (told and wander <= TOLD_WANDER_PCT):
        return None
    return Tempo(beats.fitted_bpm(np.asarray(times)), round(wander, 1), float(asked) if asked else None, felt_as)


def grid_of(
    stereo: np.ndarray, sr: int = audio.SAMPLE_RATE, beats_per_bar: int | None = None, bpm: float | None = None
) -> tuple[list[float], int | None, Tempo | None]:
    """The bar lines of a song (``stereo``: channels × samples at ``sr``), its beats per bar and its tempo as
    played (``Tempo``); no bar lines where it has no steady beat. ``beats_per_bar`` and ``bpm``: the record's
    or the visitor's, where known (the reading's octave is moved toward ``bpm``: ``beats.octave``)."""
    import soxr

    mono = np.asarray(stereo, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim > 1 else mono
    mono = soxr.resample(mono, sr, beats.RATE) if sr != beats.RATE else mono
    seconds = len(mono) / beats.RATE
    found = beats.track(mono, bpm)
    if not found.heard:
        return [], None, None
    times = found.times
    accents = beats.accents(mono, times)
    per_bar = beats_per_bar or beats.metre(accents)
    lines = _lines(times, beats.downbeat(accents, per_bar), per_bar, seconds)
    kept = {round(max(0.0, float(t)), 3) for t in times}
    onsets, rise, _ = beats.fine_onsets(mono, beats.RATE)
    if lines:  # the bars added before and after the tracked beats, onto their attacks
        added = beats.refined(np.array(lines), onsets, rise, 60.0 / found.bpm)
        lines = [t if t in kept else round(float(a), 3) for t, a in zip(lines, added, strict=True)]
    tempo = measured(times, lines, bpm, found.felt_as, confidence=found.confidence, told=found.told)
    return (lines, per_bar, tempo) if tempo is not None else ([], None, None)  # no beat heard: no bars


def heard_grid(
    heard: beat_network.Heard, seconds: float, beats_per_bar: int | None = None, bpm: float | None = None
) -> tuple[list[float], int | None, Tempo | None] | None:
    """``grid_of`` from the learned tracker's beats and downbeats (``beat_network``): its downbeats the bar lines
    (whole bars added before and after them), its metre and tempo (``Heard.read``); None where it heard too few,
    or where a tempo typed (``bpm``) is not its own reading (the studio's own tracker then reads the song at it)."""
    found = heard.read()
    if found is None or (bpm and abs(np.log(found[0] / bpm)) > np.log(1 + beats.OCTAVE_REACH)):
        return None
    times, per_bar = np.asarray(heard.beats, dtype=float), beats_per_bar or found[1]
    downs = _filled(times, np.searchsorted(times, heard.downbeats), per_bar)
    lines = _around(downs, float(np.median(np.diff(times))), float(np.median(np.diff(downs))), seconds)
    # The network heard its beats and downbeats (``Heard.read``): believed as a beat the tracker is sure of.
    return lines, per_bar, measured(times, lines, bpm, confidence=1.0, told=False)


def _filled(times: np.ndarray, downs: np.ndarray, per_bar: int) -> np.ndarray:
    """The downbeats (``downs``: indices into the beats ``times``) with the ones a network did not hear put back:
    every ``per_bar``-th beat after a downbeat, in a gap of one and a half bars or more."""
    found = [int(downs[0])]
    for nxt in downs[1:]:
        while nxt - found[-1] >= 1.5 * per_bar:
            found.append(found[-1] + per_bar)
        found.append(int(nxt))
    return times[found]


def bars_of(
    stereo: np.ndarray, sr: int = audio.SAMPLE_RATE, beats_per_bar: int | None = None, bpm: float | None = None
) -> tuple[list[float], int | None, float | None]:
    """``grid_of``'s bar lines, beats per bar and measured tempo (BPM)."""
    lines, per_bar, tempo = grid_of(stereo, sr, beats_per_bar, bpm)
    return lines, per_bar, None if tempo is None else tempo.bpm


def _named(lyrics: str) -> list[tuple[str, int]]:
    """Each section of ``lyrics`` in order: its name and how many sung lines it holds; sung lines before
    the first tag are a section of their own (``UNTAGGED``)."""
    found: list[tuple[str, int]] = []
    for text in lyrics.splitlines():
        tag = _TAG.match(text)
        if tag:
            found.append((tag.group(1).strip() or UNTAGGED, 0))
        elif text.strip():
            if not found:
                found.append((UNTAGGED, 0))
            found[-1] = (found[-1][0], found[-1][1] + 1)
    return found


def _snap(t: float, bars: list[float]) -> float:
    """``t`` on the nearest bar line within ``SECTION_SNAP`` of its bar, else as it is."""
    if len(bars) < 2:
        return t
    i = int(np.argmin([abs(b - t) for b in bars]))
    length = bars[min(i + 1, len(bars) - 1)] - bars[max(i - 1, 0)]
    length /= 2 if 0 < i < len(bars) - 1 else 1
    return bars[i] if abs(bars[i] - t) <= SECTION_SNAP * length else t


def sections_of(lyrics: Any, times: list[float], seconds: float, bars: list[float] | None = None) -> list[Section]:
    """A song's sections from its ``lyrics`` (``[Section]`` tags) and each sung line's start (``times``,
    in ``lrc.sung_lines`` order): each starts at its first line (on the bar line nearest, ``_snap``) and
    ends where the next starts (the song's end after the last); a tag with no sung line starts where the
    line before it would end (a line's median length after it). None where the two disagree."""
    named = _named(str(lyrics or ""))
    if not times or sum(n for _, n in named) != len(times):
        return []
    times = [min(max(0.0, float(t)), seconds) for t in times]
    gaps = np.diff([*times, seconds])
    typical = float(np.median(gaps)) if gaps.size else 0.0
    starts, line = [], 0
    for _, count in named:
        if count:
            starts.append(times[line])
        else:  # sung nowhere: after the line before it, or the song's start
            starts.append(min(seconds, times[line - 1] + typical) if line else 0.0)
        line += count
    starts = list(np.maximum.accumulate([_snap(t, bars or []) for t in starts]))
    ends = [*starts[1:], seconds]
    kept = [
        (name, round(float(a), 3), round(float(b), 3))
        for (name, _), a, b in zip(named, starts, ends, strict=True)
        if b - a >= 0.5
    ]
    # One left out (too short): its time is the section's before it.
    found = [Section(name, a, kept[i + 1][1] if i + 1 < len(kept) else b) for i, (name, a, b) in enumerate(kept)]
    if found and found[0].start >= INTRO_SECONDS:
        found.insert(0, Section(INTRO, 0.0, found[0].start))
    return found


def of_audio(
    stereo: np.ndarray,
    sr: int = audio.SAMPLE_RATE,
    beats_per_bar: int | None = None,
    bpm: float | None = None,
    lyrics: Any = None,
    times: list[float] | None = None,
    heard: beat_network.Heard | None = None,
) -> Map:
    """A song's map: its bar lines and tempo from its audio (``grid_of``; the learned tracker's where it ``heard``
    the song: ``heard_grid``), its sections from its ``lyrics`` and their sung lines' starts (``times``; none: no
    sections)."""
    seconds = np.asarray(stereo).shape[-1] / sr
    learned = None if heard is None else heard_grid(heard, seconds, beats_per_bar, bpm)
    bars, per_bar, tempo = learned or grid_of(stereo, sr, beats_per_bar, bpm)
    sections = sections_of(lyrics, times, seconds, bars) if times else []
    return Map(bars, sections, per_bar, None if tempo is None else tempo.bpm, round(seconds, 3), tempo)


class Looping(Protocol):
    """A loop as its map reads it: its bars of ``beats_per_bar`` beats, one cycle ``samples`` long, at ``bpm``
    (``music_request.Loop`` as made; ``records.LoopEntry`` as a record or a run's finish says it)."""

    @property
    def bars(self) -> int: ...

    @property
    def beats_per_bar(self) -> int: ...

    @property
    def samples(self) -> int: ...

    @property
    def bpm(self) -> float | None: ...


def looped(loop: Looping, heard: Map | None) -> Map:
    """A loop's map: its bar lines are its grid by construction (its bars over its samples: in time once
    ``loops`` has warped it onto them), its tempo and sections as ``heard`` read them, where its audio was
    read."""
    bar = loop.samples / loop.bars / audio.SAMPLE_RATE
    grid = [round(i * bar, 3) for i in range(loop.bars)]
    seconds = round(loop.samples / audio.SAMPLE_RATE, 3)
    heard = heard or Map(seconds=seconds)
    return dataclasses.replace(heard, bars=grid, beats_per_bar=loop.beats_per_bar, seconds=seconds)


def asked(bpm: Any, time_signature: Any, planner: dict[str, Any] | None) -> tuple[float | None, int | None]:
    """The BPM and beats per bar a take was asked for: the visitor's, else its plan's (Think's)."""
    fields = (planner or {}).get("fields") or {}
    tempo = positive(bpm) or positive(fields.get("bpm"))
    return tempo, beats_per_bar_of(time_signature) or beats_per_bar_of(fields.get("timesignature"))


def positive(value: Any) -> float | None:
    """A positive, finite number (a record's tempo), or None."""
    try:
        found = float(value)
    except (TypeError, ValueError):
        return None
    return found if 0 < found < float("inf") else None


def of_take(
    take: np.ndarray,
    entry: Any,
    how_made: Any,
    loop: Looping | None = None,
    grid: list[float] | None = None,
) -> Map | None:
    """A finished take's map, for its record's ``entry`` (``Map.as_record``): ``entry`` is a ``records.Take`` (its
    synced lines, Think's plan), ``how_made`` a ``records.Record`` (the metre and tempo asked, the whole song's
    lyrics); a loop's bars are its grid (``looped``), a take locked to the grid its ``grid``. None (a loop: its
    grid alone) where the analyses are all busy for ``TAKE_WAIT_S`` or the measurement fails: a take is never
    lost for its map."""
    bpm, per_bar = asked(how_made.bpm, how_made.time_signature, entry.planner)
    if loop is not None:
        per_bar, bpm = loop.beats_per_bar, positive(loop.bpm)
    lines = entry.lyric_lines or []
    times = [float(line["time"]) for line in lines if isinstance(line, dict) and "time" in line]
    lyrics = how_made.song_lyrics
    try:
        with analysis.place(TAKE_WAIT_S):
            heard: Map | None = of_audio(take, audio.SAMPLE_RATE, per_bar, bpm, lyrics, times)
    except Exception as exc:  # busy, or audio the tracker cannot read: the take is kept without its map
        print(f"A take's map was not measured ({type(exc).__name__}: {exc})", flush=True)
        heard = None
    if loop is not None:
        return looped(loop, heard)
    if heard is None:
        return None
    found = heard if grid is None else dataclasses.replace(heard, bars=grid)
    kept = positive(how_made.source_seconds) if how_made.extended else None
    if kept is not None and how_made.where == "start":  # an intro: the new part first, the song kept after it
        lead = positive(how_made.settings.get("extend_seconds")) or 0.0
        return dataclasses.replace(found, sections=_before_kept(found.sections, lead, kept))
    return found if kept is None else dataclasses.replace(found, sections=_after_kept(found.sections, kept))


def _after_kept(sections: list[Section], kept: float) -> list[Section]:
    """An Extend's sections: the song it went on from (``KEPT_PART``, whose lyrics its record does not hold),
    then the new part's own, from where it starts."""
    after = [Section(s.name, max(s.start, kept), s.end) for s in sections if s.end > kept and s.name != INTRO]
    return [Section(KEPT_PART, 0.0, round(kept, 3)), *after]


def _before_kept(sections: list[Section], lead: float, kept: float) -> list[Section]:
    """An Extend's sections before the song (an intro ``lead`` seconds long): the new part's own up to where the
    song starts, then the song (``KEPT_PART``, ``kept`` seconds)."""
    before = [Section(s.name, s.start, min(s.end, lead)) for s in sections if s.start < lead]
    return [*before, Section(KEPT_PART, round(lead, 3), round(lead + kept, 3))]
