"""The map on real recordings of the bench set (``tools/real_music.json``) where Debian's package is installed
(the audio is never committed): held to what the field's trackers hear, and the bench's own measures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench_real_music

EXCERPTS = {e["id"]: e for e in json.loads(bench_real_music.SET.read_text())["excerpts"]}


def installed(name: str) -> dict:
    excerpt = EXCERPTS[name]
    if not Path(excerpt["path"]).is_file():
        pytest.skip(f"Debian's {excerpt['package']} is not installed")
    return excerpt


def test_an_off_beat_bass_does_not_move_the_bar_lines_off_the_beats_the_references_hear():
    """``asc-machine-wars`` (120 BPM, its bass on the off-beats): madmom, essentia and BeatNet hear one beat; the
    half-beat check read the low band and the harmony and moved every bar line half a beat off it (0.00)."""
    excerpt = installed("asc-machine-wars")
    lines, _, bpm = bench_real_music.studio_map(
        bench_real_music.excerpt_audio(excerpt), bench_real_music.RATE, None, None
    )
    references = excerpt["references"]
    assert bpm == pytest.approx(120.0, abs=0.2)
    assert bench_real_music.on_beat(lines, references["madmom"]["beats"]) >= 0.95
    assert bench_real_music.on_beat(lines, references["essentia"]["beats"]) >= 0.95


def test_bar_lines_are_also_measured_where_the_references_hear_the_same_beats():
    """Two references at one tempo may hear its beats half a beat apart (``sing-a-new-journey``: essentia's beats
    0.00 on madmom's): the summary says the mean over all and over those whose beats agree, naming the rest."""
    assert not bench_real_music.beats_agree(EXCERPTS["sing-a-new-journey"])
    assert bench_real_music.beats_agree(EXCERPTS["asc-machine-wars"])
    rows = [
        {"id": name, "on_beat": on, "on_downbeat": on, "error_pct": 0.0, "octave": None, "steadiness_ms": 1.0}
        | {"cpu_s_per_minute": 1.0}
        for name, on in (("sing-a-new-journey", 0.0), ("asc-machine-wars", 1.0))
    ]
    line = bench_real_music.summary(rows, EXCERPTS)
    assert (
        "bar lines on a heard beat 0.50 (mean), 1.00 on the 1 whose references hear the same beats (not sing-a-new-journey)"
        in line
    )
    assert "downbeat agreement 0.50 (mean), 1.00 on the 1" in line


def _typed(name: str, bpm: float | None) -> tuple[list[float], dict]:
    excerpt = installed(name)
    lines, _, _ = bench_real_music.studio_map(bench_real_music.excerpt_audio(excerpt), bench_real_music.RATE, None, bpm)
    return lines, excerpt["references"]["madmom"]["beats"]


def test_a_typed_bpm_is_believed_where_the_beat_drifts_or_repeats_every_other_beat():
    """A BPM the musician types vouches for a beat (``beats.TOLD_CONFIDENCE``). ``drascula-track26`` drifts 86 ->
    105 BPM and its onsets repeat at 0.14, under the 0.25 a beat read alone needs: not told it has no bars, and
    typed 96 (the references' tempo) it had none either — the studio asked for the BPM and then ignored it.
    ``hr3-rlyeh`` typed 150 (madmom's reading, essentia's 75) had none: its beats alternate (0.12 at 150's beat,
    0.69 at every other)."""
    assert _typed("drascula-track26", None)[0] == []
    lines, heard = _typed("drascula-track26", 96)
    assert lines and bench_real_music.on_beat(lines, heard) >= 0.5, lines


def test_a_drifting_records_beats_are_read_against_the_curve_its_drift_bends_them_into():
    """``drascula-track26`` typed 96 (it drifts 86 -> 105 BPM): its beats, smoothed on the line through nine,
    were taken off it by the ramp alone and put on lines through far neighbours: 0.62 of its bar lines on
    madmom's beats, 0.31 on its downbeats. Read against the curve (``beat_line``): 0.75 and 0.44."""
    excerpt = installed("drascula-track26")
    lines, _ = _typed("drascula-track26", 96)
    madmom = excerpt["references"]["madmom"]
    assert bench_real_music.on_beat(lines, madmom["beats"]) >= 0.7, lines
    assert bench_real_music.on_beat(lines, madmom["downbeats"]) >= 0.4, lines
    lines, heard = _typed("hr3-rlyeh", 150)
    assert lines and bench_real_music.on_beat(lines, heard) >= 0.95, lines


def test_a_drifting_records_typed_tempo_is_the_fit_over_its_beats_as_played():
    """``drascula-track26`` typed 96 (madmom and essentia: 96.0 as a line fit): it read 99.1 (+3.2 %), one beat too
    many between 22 and 27 s, where the tempo read around each moment (99.4, then 104.5) ran ahead of the music
    (madmom's beats at 93-95) and the tracker was held firmly to it; its bar lines 0.44 on madmom's downbeats.
    Tracked again loosely where the beats drift (``beats.DRIFT_TIGHTNESS``): 96.3, downbeats 0.87."""
    excerpt = installed("drascula-track26")
    lines, _, bpm = bench_real_music.studio_map(
        bench_real_music.excerpt_audio(excerpt), bench_real_music.RATE, None, 96.0
    )
    assert bpm == pytest.approx(excerpt["reference_bpm"], rel=0.02)
    assert bench_real_music.on_beat(lines, excerpt["references"]["madmom"]["downbeats"]) >= 0.8, lines
