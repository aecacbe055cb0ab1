"""The beat as played (``beats``), on grooves built here: which half of the beat is the beat."""

from __future__ import annotations

import numpy as np
import pytest

import beats


def kicks_and_hats(bpm: float, hats: float, seconds: float = 24.0) -> np.ndarray:
    """A kick on every beat and a hi-hat (no low band) on every off-beat, ``hats`` times the kick's level, at
    ``beats.RATE``: the beat is the kicks', however loud the hats."""
    rate, rng = beats.RATE, np.random.default_rng(0)
    song, period = np.zeros(int(seconds * rate)), 60.0 / bpm
    t = np.arange(int(0.25 * rate)) / rate
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
    hat = np.diff(rng.standard_normal(int(0.05 * rate)), prepend=0.0) * np.exp(-t[: int(0.05 * rate)] * 80)
    for k in range(int(seconds / period)):
        for at, sound in ((k * period, kick), ((k + 0.5) * period, hats * hat)):
            a = int(at * rate)
            song[a : a + len(sound)] += sound[: len(song) - a]
    return (0.8 * song / np.abs(song).max()).astype(np.float32)


@pytest.mark.parametrize("hats", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("bpm", [90, 120, 140])
def test_a_groove_is_counted_on_its_kicks_whether_its_off_beat_hats_are_soft_or_loud(bpm, hats):
    """Soft hats at 120 BPM: the half-beat check read the harmony of drums alone (noise) and moved the beats onto
    the hats; loud hats draw the tracker, and the low band (the kicks) moves them back."""
    found = beats.track(kicks_and_hats(bpm, hats))
    phase = (found.times / (60.0 / bpm)) % 1.0
    assert found.bpm == pytest.approx(bpm, abs=0.2)
    assert np.all(np.minimum(phase, 1.0 - phase) < 0.05)  # within 5 % of a beat of a kick
