"""The stand-in band (``tools/band.py``) plays what it promises: the tempo it is told, off by its error, drifting
and changing as asked, a beat the studio's tracker hears, and a repaint that keeps what it hears."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import band
import song_map
from bench_bars import furthest
from music_request import Call

SR = band.RATE
Band = band.Band  # where a test's ``band`` is conftest's fixture, not this module


@pytest.mark.parametrize("per_bar", [3, 4])
@pytest.mark.parametrize("bpm", [60, 120, 180])
def test_it_plays_the_tempo_told_off_by_its_error(bpm, per_bar):
    played = band.play(bpm, per_bar, 20.0, band.Band(error=-0.02))
    assert played.played_bpm == pytest.approx(bpm * 0.98, abs=0.05)
    assert np.allclose(np.diff(played.beats), 60 / (bpm * 0.98), atol=1e-3)
    assert np.array_equal(played.bars, played.beats[::per_bar]) and played.audio.shape == (2, 20 * SR)
    assert 0.85 < np.abs(played.audio).max() < 0.9


def test_drift_and_changes_move_the_tempo_as_asked():
    drifting = band.play(120, 4, 30.0, band.Band(drift=0.015))
    bars = np.diff(drifting.bars)
    assert bars[0] / bars[-1] == pytest.approx(1.03, abs=0.01)  # the first bar about 3 % longer than the last
    changed = band.play(120, 4, 20.0, band.Band(changes=((10.0, 1.25),)))
    gaps = np.diff(changed.beats)
    assert gaps[changed.beats[1:] < 9.9] == pytest.approx(0.5, abs=1e-3)
    assert gaps[changed.beats[:-1] > 10.1] == pytest.approx(0.4, abs=1e-3)


@pytest.mark.parametrize(("bpm", "per_bar", "how"), [(90, 4, band.Band()), (120, 3, band.Band(error=0.03))])
def test_the_studios_tracker_hears_its_bars(bpm, per_bar, how):
    played = band.play(bpm, per_bar, 24.0, how)
    lines, found, tempo = song_map.grid_of(played.audio, SR, per_bar, bpm)
    assert found == per_bar and tempo.bpm == pytest.approx(played.played_bpm, abs=0.2)
    assert furthest(lines, played.bars[played.bars < lines[-1] + 0.1]) <= 0.005


def test_half_time_moves_the_drums_not_the_beats():
    even, half = band.play(120, 4, 8.0), band.play(120, 4, 8.0, band.Band(half_time=True))
    assert np.array_equal(even.beats, half.beats)

    def at(song, t):  # the energy just after beat t
        a = int(t * SR)
        return float((song.audio[0, a : a + int(0.05 * SR)] ** 2).sum())

    # Beat 2 (a backbeat): a snare in the groove, hats alone in half time; beat 3: the snare in half time.
    assert at(even, even.beats[1]) > 3 * at(half, half.beats[1]) and at(half, half.beats[2]) > 3 * at(
        half, half.beats[1]
    )


def test_half_time_is_heard_at_half_the_tempo_until_told_it():
    """Half time in 4/4 at 120: alone, the map says both readings (its beats, 120, felt as 60: the backbeat once
    a bar); told 120, the studio's grid is the band's bars. At 90 the beats' hats still carry it: heard at 90."""
    played = band.play(120, 4, 24.0, band.Band(half_time=True))
    alone = song_map.grid_of(played.audio, SR)[2]
    assert alone.bpm == pytest.approx(120.0, abs=0.5) and alone.felt_as == pytest.approx(60.0, abs=0.5)
    assert alone.said() == "Plays at 120 BPM, felt as 60, steady"
    lines, found, tempo = song_map.grid_of(played.audio, SR, 4, 120)
    assert tempo.bpm == pytest.approx(120.0, abs=0.2)
    assert furthest(lines, played.bars[played.bars < lines[-1] + 0.1]) <= 0.005
    slower = band.play(90, 4, 24.0, band.Band(half_time=True))
    assert song_map.grid_of(slower.audio, SR)[2].bpm == pytest.approx(90.0, abs=0.5)


@pytest.mark.parametrize(("per_bar", "accents"), [(2, {0}), (6, {0, 3})])
def test_two_four_and_six_eight_accent_their_bars(per_bar, accents):
    played = band.play(100, per_bar, 12.0)
    assert np.array_equal(played.bars, played.beats[::per_bar])
    low = np.array([_low(played.audio, t) for t in played.beats[: 2 * per_bar]])
    kicked = [i for i in range(2 * per_bar) if i % per_bar in accents]
    assert low[kicked].min() > 3 * np.delete(low, kicked).max()  # the kick on 1 (and on 4 in 6/8) alone


def _low(audio, t):
    """The energy under 150 Hz in the 50 ms after ``t``: the kick's (the bass note rings on under it)."""
    a = int(t * SR)
    spectrum = np.abs(np.fft.rfft(audio[0, a : a + int(0.05 * SR)])) ** 2
    return float(spectrum[: int(150 * 0.05)].sum())


def test_a_seed_is_a_performance():
    once, again, other = (band.play(120, 4, 6.0, band.Band(seed=s)) for s in (7, 7, 8))
    assert np.array_equal(once.audio, again.audio) and not np.array_equal(once.audio, other.audio)
    assert np.array_equal(once.beats, other.beats) and once.audio.dtype == np.float32


def test_a_repaint_keeps_what_it_hears_and_plays_on_where_it_is_silent():
    song = band.play(120, 4, 8.0).audio
    padded = np.concatenate([song, np.zeros((2, 4 * SR), np.float32)], axis=-1)
    sampling = {"prompt": "x", "num_inference_steps": 1, "guidance_scale": 1.0, "shift": 3.0}
    call = Call(**sampling, task_type="repaint", bpm=120, src_audio=padded, repainting_start=8.0, repainting_end=-1)
    out = band.render(call, np.zeros((1, 2, 12 * SR), np.float32), band.Band())[0]
    assert np.array_equal(out[:, : 8 * SR - int(0.01 * SR)], song[:, : 8 * SR - int(0.01 * SR)])
    on = band.play(120, 4, 12.0).audio  # the band's own performance, carried on after the song
    assert np.allclose(out[:, 8 * SR + int(0.01 * SR) :], on[:, 8 * SR + int(0.01 * SR) :], atol=1e-6)
    # Text to music: a new song at the call's tempo, each take its own seed.
    made = band.render(Call(**sampling, bpm=90), np.zeros((2, 2, 4 * SR), np.float32), band.Band())
    assert not np.array_equal(made[0], made[1]) and np.abs(made).max() > 0.5


def test_a_repaint_keeps_the_song_outside_its_region_and_only_parts_are_left_alone():
    song = band.play(120, 4, 6.0).audio
    sampling = {"prompt": "x", "num_inference_steps": 1, "guidance_scale": 1.0, "shift": 3.0}
    # The source shorter than the take: zero-padded, and the silence after the region's end stays silent.
    call = Call(**sampling, task_type="repaint", src_audio=song, repainting_start=6.0, repainting_end=8.0)
    out = band.render(call, np.zeros((1, 2, 10 * SR), np.float32), band.Band())[0]
    assert np.array_equal(out[:, : 6 * SR - int(0.01 * SR)], song[:, : 6 * SR - int(0.01 * SR)])
    assert np.abs(out[:, 6 * SR + int(0.01 * SR) : 8 * SR - int(0.01 * SR)]).max() > 0.3
    assert not out[:, 8 * SR + int(0.01 * SR) :].any()
    made = np.ones((1, 2, 4 * SR), np.float32)
    for task in ("lego", "extract", "complete"):
        assert band.render(Call(**sampling, task_type=task), made, band.Band()) is made


def test_the_real_record_at_its_own_tempo_is_the_record_from_its_first_downbeat_looped():
    """Told its own tempo (100 BPM, no error), the real-record voice is the excerpt from its first downbeat, sample
    for sample (scaled to the band's peak, over its floor), and past its last downbeat it plays on from its first."""
    import band_record

    record = band_record.named("real_groove", SR)
    played = band.play(100, 4, 24.0, band.Band(record="real_groove"))
    assert np.allclose(played.beats, np.arange(40) * 0.6) and np.array_equal(played.bars, played.beats[::4])
    a, b = (int(round(record.beats[i] * SR)) for i in (record.first, record.last))
    span, excerpt = b - a, record.audio[:, a:b]
    scale = float((played.audio[:, :span] * excerpt).sum() / (excerpt * excerpt).sum())  # its peak scaled to the band's
    seam = span - int(band_record.SEAM_S * SR)  # the crossfade into its first downbeat's own lead-in
    assert np.abs(played.audio[:, :seam] - scale * excerpt[:, :seam]).max() < 0.01
    assert np.abs(played.audio[:, span : span + 2 * SR] - scale * record.audio[:, a : a + 2 * SR]).max() < 0.01


@pytest.mark.parametrize(("bpm", "how"), [(120, band.Band(error=-0.03, drift=0.01)), (128, band.Band(error=-0.02))])
def test_the_real_record_is_played_where_the_band_puts_its_beats(bpm, how):
    """Its truth is the band's (the tempo told, off by its error, drifting) and the studio's tracker hears the
    record's own bar lines there, within 5 ms; each seed starts on another bar of it."""
    real = dataclasses.replace(how, record="real_groove")
    played, synthetic = band.play(bpm, 4, 20.0, real), band.play(bpm, 4, 20.0, how)
    assert np.array_equal(played.beats, synthetic.beats) and played.audio.shape == (2, 20 * SR)
    lines, found, tempo = song_map.grid_of(played.audio, SR, 4, bpm)
    assert found == 4 and tempo.bpm == pytest.approx(played.played_bpm, abs=0.2)
    assert furthest(lines, played.bars[played.bars < lines[-1] + 0.1]) <= 0.005
    other = band.play(bpm, 4, 20.0, dataclasses.replace(real, seed=1))
    assert not np.allclose(other.audio, played.audio, atol=0.05)


def _spectrum(stereo: np.ndarray) -> np.ndarray:
    """The long-term spectrum, a third of a semitone a bin over seven octaves (as the key reading's CQT)."""
    import librosa
    import soxr

    import analysis

    mono = soxr.resample(stereo.mean(axis=0), SR, analysis.RATE)
    return np.log1p(100 * np.abs(librosa.cqt(mono, sr=analysis.RATE, n_bins=7 * 36, bins_per_octave=36)).mean(axis=1))


def _semitones_above(a: np.ndarray, b: np.ndarray) -> float:
    """How far ``b``'s spectrum lies above ``a``'s, in semitones (its best fit within an octave either way)."""
    m = 36
    return max(range(-m, m + 1), key=lambda s: np.corrcoef(a[m:-m], b[m + s : b.size - m + s])[0, 1]) / 3


@pytest.mark.parametrize("bpm", [80, 126, 160])
def test_the_real_record_keeps_its_pitch_at_every_tempo(bpm):
    """Told another tempo than its own 100 BPM, the real record plays at it in its own key: its spectrum does not
    move (a turntable's speed would move it 12·log2(bpm/100) semitones: 4 at 126), so the same band reads one
    key at every tempo; the served studio's band (error, drift) as the plain one."""
    own = _spectrum(band.play(100, 4, 20.0, band.Band(record="real_groove")).audio)
    for how in (band.Band(record="real_groove"), band.SERVED):
        assert abs(_semitones_above(own, _spectrum(band.play(bpm, 4, 20.0, how).audio))) < 0.5, how


def test_the_real_record_carries_through_the_harness_and_a_repaint():
    real = band.Band(error=-0.02, record="real_groove")
    assert band.Band.from_json(json.dumps(dataclasses.asdict(real))) == real
    song = band.play(120, 4, 8.0, real).audio
    padded = np.concatenate([song, np.zeros((2, 4 * SR), np.float32)], axis=-1)
    sampling = {"prompt": "x", "num_inference_steps": 1, "guidance_scale": 1.0, "shift": 3.0}
    call = Call(**sampling, task_type="repaint", bpm=120, src_audio=padded, repainting_start=8.0, repainting_end=-1)
    out = band.render(call, np.zeros((1, 2, 12 * SR), np.float32), real)[0]
    edge = int(0.01 * SR)
    assert np.array_equal(out[:, : 8 * SR - edge], song[:, : 8 * SR - edge])
    on = band.play(120, 4, 12.0, real).audio  # the record played on after the song, on its beats
    assert np.allclose(out[:, 8 * SR + edge :], on[:, 8 * SR + edge :], atol=1e-6)
