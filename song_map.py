"""A take's map, as a musician counts it: its bar lines, read from its own audio, and its sections, read
from its synced words and their ``[Section]`` tags. All of it on the CPU, bounded like every analysis.

Bars: librosa's beat tracker (``analysis``'s onset envelope and tempo check) finds the beats, each moved
onto the attack nearest it in a fine energy envelope (``FINE_SECONDS`` frames: the tracker's own frames
are 23 ms, too coarse to be within 30 ms of a bar line); the metre is the record's (``time_signature``)
or the tracker's (``analysis.metre``), and the downbeat is the phase of the beats whose accents are the
strongest. A song with no steady beat has no bars. Sections: each ``[Section]``'s first sung line starts
it, moved onto the nearest bar line within ``SECTION_SNAP`` of a bar; an untagged instrumental start is
an intro.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import analysis
import audio
import result_words

# The fine envelope: energy in 5 ms frames every 1 ms, an attack where the next frames are louder than
# the last; a beat moves to the strongest attack within ``SEARCH_SECONDS`` (at most a sixth of a beat).
FINE_SECONDS = 0.001
ENERGY_SECONDS = 0.005
SEARCH_SECONDS = 0.06
# The tracker's common lag is read within this (at most a quarter of a beat: short of the eighth between beats).
LAG_SECONDS, LAG_SHARE = 0.1, 0.24
# A downbeat's accents: its loudness, the low band rising (the kick, a bass note) and the harmony changing
# (a snare's backbeat may be as loud as a downbeat in the full band): ``_downbeat`` weighs them.
LOW_HZ = 150.0
LOW_SECONDS = 0.08
# A section's start moves onto a bar line nearer than this share of a bar (a line sung a beat before
# its bar, a pickup, stays the bar's).
SECTION_SNAP = 0.5
# A bar where nothing says its tempo or metre (no grid, no BPM, no time signature, no plan): 120 BPM in 4/4.
ASSUMED_BPM, ASSUMED_BEATS = 120, 4
# An untagged instrumental start longer than this is a section of its own.
INTRO_SECONDS = 2.0
INTRO = "Intro"
KEPT_PART = "Original"  # an Extend's song as it was, before the new part
UNTAGGED = "Song"  # sung lines before any tag, in a song whose words name sections after them
# How long a take's map waits for one of the analyses' places (``analysis.place``) before the take is
# kept without one (its record then has no ``bars``: read from its audio when an Edit asks, ``edit_bars``).
TAKE_WAIT_S = 30.0
_TAG = re.compile(r"^\s*\[([^\]]*)\]\s*$")


@dataclass(frozen=True)
class Map:
    """A take's bar lines (each bar's start, seconds from the take's start, ascending; the song's end
    closes the last) and sections (``{"name", "start", "end"}``, ascending, not overlapping)."""

    bars: list[float] = field(default_factory=list)
    sections: list[dict[str, Any]] = field(default_factory=list)
    beats_per_bar: int | None = None
    bpm: float | None = None
    seconds: float = 0.0
    tempo: Tempo | None = None

    def as_record(self) -> dict[str, Any]:
        """What a take's record entry keeps: ``bars``, ``sections`` and, where a beat was heard, ``tempo``."""
        found = {"bars": list(self.bars), "sections": [dict(s) for s in self.sections]}
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


def _fine_onsets(mono: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per ``FINE_SECONDS``: its time, the energy of the next ``ENERGY_SECONDS`` and how much it rises
    over the last's (log ratio, floored at the song's quiet): the attack a beat is moved onto."""
    hop, width = max(1, int(FINE_SECONDS * rate)), max(1, int(ENERGY_SECONDS * rate))
    # The first difference: a high pass, so a bass note's swell rises less than a drum's attack.
    power = np.concatenate([[0.0], np.diff(mono.astype(np.float64)) ** 2])
    total = np.concatenate([[0.0], np.cumsum(power)])
    # From the first sample, silence before the song: a song that starts on its downbeat has its attack at 0.
    starts = np.arange(0, len(mono) - width, hop)
    if not starts.size:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    ahead = total[starts + width] - total[starts]
    behind = total[starts] - total[np.maximum(starts - width, 0)]
    floor = max(float(np.percentile(ahead, 10)), 1e-12) + 1e-4 * float(ahead.max())
    return starts / rate, np.log((ahead + floor) / (behind + floor)), ahead


def _refined(beats: np.ndarray, frames: np.ndarray, rise: np.ndarray, period: float) -> np.ndarray:
    """Each beat (seconds) moved onto the strongest attack near it (``_fine_onsets``' ``frames``): first all of
    them by their common lag (``_lag``), then each onto its own attack."""
    return _nearest(beats + _lag(beats, frames, rise, period), frames, rise, min(SEARCH_SECONDS, period / 6))


def _lag(beats: np.ndarray, frames: np.ndarray, rise: np.ndarray, period: float) -> float:
    """How far the attacks lie from the tracker's beats, as most beats have it (the median of each beat's
    nearest attack within ``LAG_SHARE`` of a beat). Its beats lag its onset envelope and slide along its lag
    grid's tempo (294 BPM read as 287): at 300 BPM 15-41 ms late, past a sixth of a beat (34 ms), where a
    beat's search found the hat or the snare's tail instead and its bars "wandered" 7 %."""
    if len(beats) < 4:
        return 0.0
    return float(np.median(_nearest(beats, frames, rise, min(LAG_SECONDS, period * LAG_SHARE)) - beats))


def _nearest(beats: np.ndarray, frames: np.ndarray, rise: np.ndarray, reach: float) -> np.ndarray:
    lo = np.searchsorted(frames, beats - reach)
    hi = np.searchsorted(frames, beats + reach)
    return np.array(
        [frames[a + int(np.argmax(rise[a:b]))] if b > a else t for t, a, b in zip(beats, lo, hi, strict=True)]
    )


def _low_rise(mono: np.ndarray, rate: int, times: np.ndarray) -> np.ndarray:
    """At each beat (seconds): how much the low band (under ``LOW_HZ``: the kick, the bass) rises over
    ``LOW_SECONDS`` after it against as long before it (log ratio): a bass note changing with the bar, a
    kick on its first beat."""
    from scipy.signal import butter, sosfilt

    low = sosfilt(butter(2, LOW_HZ, fs=rate, output="sos"), mono.astype(np.float64)) ** 2
    total = np.concatenate([[0.0], np.cumsum(low)])
    at = np.clip((times * rate).astype(int), 0, len(mono))
    width = int(LOW_SECONDS * rate)
    ahead = total[np.minimum(at + width, len(mono))] - total[at]
    behind = total[at] - total[np.maximum(at - width, 0)]
    floor = 1e-6 * float(ahead.max()) + 1e-12
    return np.log((ahead + floor) / (behind + floor)) + 0.5 * np.log(ahead + floor)


def _harmony_change(mono: np.ndarray, rate: int, beats: np.ndarray) -> np.ndarray:
    """At each beat (the tracker's frames): how far the pitch classes sounding over the beat after it lie
    from those over the beat before it (1 - cosine): chords and bass notes change with the bar."""
    import librosa

    # Averaged over a beat, so a coarse hop (four of the tracker's frames) is enough, at a quarter of the work.
    chroma = librosa.feature.chroma_stft(y=mono, sr=rate, hop_length=4 * analysis.HOP, n_fft=4096)
    edges = np.concatenate([[0], np.asarray(beats) // 4, [chroma.shape[1]]]).astype(int)
    spans = [chroma[:, a:b].mean(axis=1) if b > a else np.zeros(12) for a, b in zip(edges, edges[1:], strict=False)]
    unit = [v / (np.linalg.norm(v) + 1e-9) for v in spans]
    return np.array([1.0 - float(np.dot(unit[i], unit[i + 1])) for i in range(len(beats))])


def _standard(values: np.ndarray) -> np.ndarray:
    spread = float(values.std())
    return (values - values.mean()) / spread if spread > 1e-9 else values * 0.0


def _downbeat(accents: list[np.ndarray], per_bar: int) -> int:
    """The phase (0 to ``per_bar`` - 1) of the beats whose accents are the strongest on average, each kind
    of accent (standardised) weighed by how clearly one phase leads it: the loudness of a click track,
    the harmony of a groove whose snare is as loud as its kick."""
    score, leading = np.zeros(per_bar), []
    for accent in accents:
        z = _standard(accent)
        means = np.array([z[p::per_bar].mean() if z[p::per_bar].size else 0.0 for p in range(per_bar)])
        ranked = np.sort(means)[::-1]
        score += (ranked[0] - ranked[1]) * means
        leading.append(int(np.argmax(means)))
    # Where the bar's own accents (the low band, the harmony) lead on one phase, it is the downbeat: a groove's
    # loudness (its high-passed attack) can lead on its backbeat, 6/8's snare on 4, half a bar late.
    if len(leading) == 3 and leading[1] == leading[2]:
        return leading[1]
    return int(np.argmax(score))


def _lines(beats: np.ndarray, phase: int, per_bar: int, seconds: float) -> list[float]:
    """The bar lines: every ``per_bar``-th beat from ``phase``, whole bars added before the first while
    they fall in the song (an intro the tracker left out) and after the last while a bar fits in it."""
    downs = beats[phase::per_bar]
    if not downs.size:
        return []
    beat = float(np.median(np.diff(beats)))
    bar = float(np.median(np.diff(downs))) if downs.size > 1 else beat * per_bar
    # A line a hair before 0 is the song's first downbeat (1.999 s after it in a 2.000 s bar), not a pickup.
    reach = min(SEARCH_SECONDS, beat / 6)
    before = [downs[0] - k * bar for k in range(int((downs[0] + reach) // bar), 0, -1)]
    lines = [*before, *downs.tolist()]
    while lines[-1] + bar < seconds - 0.25 * bar:
        lines.append(lines[-1] + bar)
    return [round(max(0.0, float(t)), 3) for t in lines if t < seconds - 0.25 * bar]


# A tracker's tempo read at a multiple of the true one (on drum grooves, fast clicks): where a tempo is known (the
# BPM asked, typed or planned) the reading is moved by the one of these factors that brings it within
# ``OCTAVE_REACH`` of it, and the beats are tracked again at that tempo (upstream's users report takes at half or double the BPM asked, #1325).
OCTAVES = (1 / 3, 1 / 2, 1.0, 2.0, 3.0)
OCTAVE_REACH = 0.12
# A take is "in time" within this share of the tempo asked, and "steady" where no bar is longer or shorter
# than its take's median bar by more than ``STEADY_PCT`` (a ±1.5 % drift over a song is steady, a jump is not).
IN_TIME_PCT = 1.0
STEADY_PCT = 2.0


@dataclass(frozen=True)
class Tempo:
    """A take's tempo as played: ``bpm`` measured over its beats (a least-squares line through them), the
    tempo asked where one was (``asked``), and how far its bars wander from their median (``wander_pct``)."""

    bpm: float
    wander_pct: float
    asked: float | None = None

    @property
    def off_pct(self) -> float | None:
        return None if not self.asked else round((self.bpm / self.asked - 1.0) * 100.0, 1)

    @property
    def steady(self) -> bool:
        return self.wander_pct <= STEADY_PCT

    def said(self) -> str:
        """One line for beside the take: "In time: 119.8 BPM, steady", "Played at 117.6 BPM, 2 % slow"."""
        steady = result_words.TEMPO_STEADY if self.steady else result_words.TEMPO_WANDERS.format(pct=self.wander_pct)
        off = self.off_pct
        if off is None:
            return result_words.TEMPO_HEARD.format(bpm=self.bpm, steady=steady)
        if abs(off) <= IN_TIME_PCT:
            return result_words.TEMPO_IN_TIME.format(bpm=self.bpm, steady=steady)
        way = result_words.TEMPO_SLOW if off < 0 else result_words.TEMPO_FAST
        return result_words.TEMPO_OFF.format(bpm=self.bpm, pct=f"{abs(off):g}", way=way, steady=steady)

    def as_record(self) -> dict[str, Any]:
        """A take's ``tempo`` entry: the numbers and the line said beside it."""
        entry: dict[str, Any] = {"bpm": self.bpm, "wander_pct": self.wander_pct, "steady": self.steady}
        if self.asked:
            entry |= {"asked": self.asked, "off_pct": self.off_pct}
        return entry | {"said": self.said()}


def octave(found: float, known: float | None) -> float:
    """The tracker's tempo ``found`` moved by the factor of ``OCTAVES`` that brings it within ``OCTAVE_REACH`` of
    ``known``; as it is where nothing is known, or no factor brings it that near (a take played far off the
    tempo asked is read at its own)."""
    if not known or not found > 0:
        return found
    factor = min(OCTAVES, key=lambda f: abs(np.log(found * f / known)))
    return found * factor if abs(np.log(found * factor / known)) <= np.log(1 + OCTAVE_REACH) else found


def measured(beats: np.ndarray, lines: list[float], asked: float | None = None) -> Tempo | None:
    """The tempo of refined ``beats`` (seconds) and how steady its bars (``lines``) are; None with too few."""
    if len(beats) < 4:
        return None
    index = np.arange(len(beats))
    period = float(np.polyfit(index, beats, 1)[0])
    lengths = np.diff(lines) if len(lines) > 2 else np.zeros(0)
    middle = float(np.median(lengths)) if lengths.size else 0.0
    wander = float(np.abs(lengths - middle).max() / middle * 100.0) if middle > 0 else 0.0
    return Tempo(round(60.0 / period, 1), round(wander, 1), float(asked) if asked else None)


def _tracked(mono: np.ndarray, rate: int, bpm: float | None) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """The onset envelope, the tracked beats (frames), their tempo (its octave resolved toward ``bpm``) and
    whether the beat is steady enough to be believed."""
    import librosa

    onset = librosa.onset.onset_strength(y=mono, sr=rate, hop_length=analysis.HOP)
    hint = {"start_bpm": float(bpm)} if bpm and bpm > 0 else {}
    tempo, beats = librosa.beat.beat_track(onset_envelope=onset, sr=rate, hop_length=analysis.HOP, **hint)
    found = float(np.atleast_1d(tempo)[0])
    steady = len(beats) >= 4 and analysis.beat_confidence(onset, found) >= analysis.BEAT_CONFIDENCE
    resolved = octave(found, bpm)
    if steady and resolved != found:
        tempo, beats = librosa.beat.beat_track(onset_envelope=onset, sr=rate, hop_length=analysis.HOP, bpm=resolved)
        steady = len(beats) >= 4
    return onset, beats, resolved, steady


def grid_of(
    stereo: np.ndarray, sr: int = audio.SAMPLE_RATE, beats_per_bar: int | None = None, bpm: float | None = None
) -> tuple[list[float], int | None, Tempo | None]:
    """The bar lines of a song (``stereo``: channels × samples at ``sr``), its beats per bar and its tempo as
    played (``Tempo``); no bar lines where it has no steady beat. ``beats_per_bar`` and ``bpm``: the record's
    or the visitor's, where known (the tracker's reading is resolved toward ``bpm``: ``octave``)."""
    import librosa
    import soxr

    mono = np.asarray(stereo, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim > 1 else mono
    rate = analysis.RATE
    mono = soxr.resample(mono, sr, rate) if sr != rate else mono
    seconds = len(mono) / rate
    onset, beats, found, steady = _tracked(mono, rate, bpm)
    if not steady:
        return [], None, None
    per_bar = beats_per_bar or analysis.metre(onset, beats)
    times = librosa.frames_to_time(beats, sr=rate, hop_length=analysis.HOP)
    frames, rise, energy = _fine_onsets(mono, rate)
    if frames.size:
        times = _refined(times, frames, rise, 60.0 / found)
        loud = np.log(energy[np.clip(np.searchsorted(frames, times), 0, len(frames) - 1)] + 1e-12)
        accents = [loud, _low_rise(mono, rate, times), _harmony_change(mono, rate, beats)]
    else:
        accents = [onset[np.clip(beats, 0, len(onset) - 1)]]
    lines = _lines(times, _downbeat(accents, per_bar), per_bar, seconds)
    if frames.size and lines:  # the bars added before and after the tracked beats, onto their attacks
        lines = [
            round(float(t), 3) for t in _nearest(np.array(lines), frames, rise, min(SEARCH_SECONDS, 60.0 / found / 6))
        ]
    return lines, per_bar, measured(np.asarray(times), lines, bpm)


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


def sections_of(lyrics: Any, times: list[float], seconds: float, bars: list[float] | None = None) -> list[dict]:
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
    found = [
        {"name": name, "start": round(float(a), 3), "end": round(float(b), 3)}
        for (name, _), a, b in zip(named, starts, ends, strict=True)
        if b - a >= 0.5
    ]
    for a, b in zip(found, found[1:], strict=False):  # one left out (too short): its time is the last's
        a["end"] = b["start"]
    if found and found[0]["start"] >= INTRO_SECONDS:
        found.insert(0, {"name": INTRO, "start": 0.0, "end": found[0]["start"]})
    return found


def of_audio(
    stereo: np.ndarray,
    sr: int = audio.SAMPLE_RATE,
    beats_per_bar: int | None = None,
    bpm: float | None = None,
    lyrics: Any = None,
    times: list[float] | None = None,
) -> Map:
    """A song's map: its bar lines and tempo from its audio (``grid_of``), its sections from its ``lyrics``
    and their sung lines' starts (``times``; none: no sections)."""
    seconds = np.asarray(stereo).shape[-1] / sr
    bars, per_bar, tempo = grid_of(stereo, sr, beats_per_bar, bpm)
    sections = sections_of(lyrics, times, seconds, bars) if times else []
    return Map(bars, sections, per_bar, None if tempo is None else tempo.bpm, round(seconds, 3), tempo)


def looped(loop: dict[str, Any], heard: Map | None) -> Map:
    """A loop's map (``loop``: its record's entry, ``loops.record``): its bar lines are its grid by
    construction (its bars over its samples: in time once ``loops`` has warped it onto them), its tempo and
    sections as ``heard`` read them, where its audio was read."""
    bar = int(loop["samples"]) / int(loop["bars"]) / audio.SAMPLE_RATE
    grid = [round(i * bar, 3) for i in range(int(loop["bars"]))]
    seconds = round(int(loop["samples"]) / audio.SAMPLE_RATE, 3)
    heard = heard or Map(seconds=seconds)
    return dataclasses.replace(heard, bars=grid, beats_per_bar=int(loop["beats_per_bar"]), seconds=seconds)


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
    entry: dict[str, Any],
    said: Any,
    loop: dict[str, Any] | None = None,
    grid: list[float] | None = None,
) -> dict[str, Any]:
    """A finished take's ``bars``, ``sections`` and ``tempo`` for its record ``entry`` (its synced lines,
    Think's plan) and its record (``said``, a ``records.Record``: the metre and tempo asked, the whole song's words); a loop's
    bars are its grid (``looped``), a take locked to the grid its ``grid``. Empty (a loop: its grid alone)
    where the analyses are all busy for ``TAKE_WAIT_S`` or the measurement fails: a take is never lost for
    its map."""
    bpm, per_bar = asked(said.bpm, said.time_signature, entry.get("planner"))
    if loop is not None:
        per_bar, bpm = int(loop["beats_per_bar"]), positive(loop["bpm"])
    lines = entry.get("lyric_lines") or []
    times = [float(line["time"]) for line in lines if isinstance(line, dict) and "time" in line]
    lyrics = said.words
    try:
        with analysis.place(TAKE_WAIT_S):
            heard: Map | None = of_audio(take, audio.SAMPLE_RATE, per_bar, bpm, lyrics, times)
    except Exception as exc:  # busy, or audio the tracker cannot read: the take is kept without its map
        print(f"A take's map was not measured ({type(exc).__name__}: {exc})", flush=True)
        heard = None
    if loop is not None:
        return looped(loop, heard).as_record()
    if heard is None:
        return {}
    found = heard.as_record() if grid is None else dataclasses.replace(heard, bars=grid).as_record()
    kept = positive(said.source_seconds) if said.extended else None
    return found if kept is None else {**found, "sections": _after_kept(found["sections"], kept)}


def _after_kept(sections: list[dict[str, Any]], kept: float) -> list[dict[str, Any]]:
    """An Extend's sections: the song it went on from (``KEPT_PART``, whose words its record does not hold),
    then the new part's own, from where it starts."""
    after = [{**s, "start": max(s["start"], kept)} for s in sections if s["end"] > kept and s["name"] != INTRO]
    return [{"name": KEPT_PART, "start": 0.0, "end": round(kept, 3)}, *after]
