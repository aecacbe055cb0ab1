"""The untouched part is the upload's own: Edit and Extend of a real mastered song (44.1 kHz, 16-bit, peaks at
full scale), through ``gradio_client`` against the served studio, keep every sample outside the new part as
uploaded, at the song's own rate (``untouched``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import modes

# A real recording (tests/data/LICENSE.md: its track, author, package and licence).
REAL = Path(__file__).parent / "data" / "real_master.ogg"
RATE = 44100


def real_master(folder: Path) -> tuple[Path, np.ndarray]:
    """The excerpt as a mastered upload: 44.1 kHz (soxr), its loudest sample at full scale, 16-bit WAV;
    returns the file and its samples (int16, ``[frames, 2]``)."""
    import soxr

    x, rate = sf.read(REAL, dtype="float64", always_2d=True)
    y = soxr.resample(x, rate, RATE, quality="VHQ")
    pcm = np.round(y / np.abs(y).max() * 32767).astype(np.int16)
    path = folder / "master.wav"
    sf.write(path, pcm, RATE, subtype="PCM_16")
    assert np.abs(pcm.astype(np.int32)).max() == 32767
    return path, pcm


@pytest.fixture(scope="module")
def client(studio_server):
    from gradio_client import Client

    return Client(studio_server[0], verbose=False)


def _full_scale(x: np.ndarray) -> int:
    return int((np.abs(x.astype(np.int32)) >= 32767).sum())


def test_an_edit_of_a_real_master_keeps_its_own_samples_outside_the_region(client, tmp_path):
    from gradio_client import handle_file

    path, song = real_master(tmp_path)
    made = client.predict(
        src_audio=handle_file(str(path)),
        prompt="a new break",
        repainting_start=4.0,
        repainting_end=7.5,
        inference_steps=1,
        seed=4,
        api_name="/edit",
    )
    take, rate = sf.read(made[0], dtype="int16", always_2d=True)
    record = made[-1]
    assert rate == RATE and take.shape == song.shape
    a, b = int(4.0 * RATE), int(7.5 * RATE)
    np.testing.assert_array_equal(take[:a], song[:a])
    np.testing.assert_array_equal(take[b:], song[b:])
    # The new part is there, and under the kept part's full-scale peaks nothing of it clips.
    assert not np.array_equal(take[a + RATE : b - RATE], song[a + RATE : b - RATE])
    assert _full_scale(take[a:b]) == 0 and _full_scale(song) > 0
    assert record["sample_rate"] == RATE and record["encoding"] == {"format": "wav", "bits": 16}
    assert record["untouched"] == "outside the new part, the song's own samples at its own 44.1 kHz, bit for bit"
    assert record["takes"][0]["seconds"] == pytest.approx(song.shape[0] / RATE, abs=0.001)


def test_an_extend_of_a_real_master_keeps_its_own_samples_before_the_seam(client, tmp_path):
    from gradio_client import handle_file

    path, song = real_master(tmp_path)
    made = client.predict(
        src_audio=handle_file(str(path)),
        prompt="and on",
        extend_seconds=5,
        inference_steps=1,
        seed=4,
        api_name="/extend",
    )
    take, rate = sf.read(made[0], dtype="int16", always_2d=True)
    n, fade = song.shape[0], int(modes.SEAM_SECONDS * RATE)
    assert rate == RATE and take.shape == (n + 5 * RATE, 2)
    np.testing.assert_array_equal(take[: n - fade], song[: n - fade])
    assert np.abs(take[n + fade :].astype(np.int32)).max() > 300 and _full_scale(take[n - fade :]) == 0
    assert made[-1]["takes"][0]["seconds"] == pytest.approx(n / RATE + 5, abs=0.001)


def test_an_mp3_take_says_its_kept_part_is_exact_only_in_wav_or_flac(client, tmp_path):
    from gradio_client import handle_file

    path, _ = real_master(tmp_path)
    record = client.predict(
        src_audio=handle_file(str(path)),
        prompt="and on",
        extend_seconds=5,
        audio_format="mp3",
        inference_steps=1,
        seed=4,
        api_name="/extend",
    )[-1]
    assert record["sample_rate"] == 48000 and "exact only in WAV or FLAC" in record["untouched"]
