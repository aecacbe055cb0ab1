"""The untouched part is the upload's own: Edit and Extend of a real mastered song (44.1 kHz, 16-bit, peaks at
full scale), through ``gradio_client`` against the served studio, keep every sample outside the new part as
uploaded, at the song's own rate (``untouched``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import audio
import modes
import untouched

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


def _made(client, path, **fields) -> tuple[np.ndarray, int, dict]:
    """A take of the real master through gradio_client, read back as 16-bit samples, with its record."""
    from gradio_client import handle_file

    made = client.predict(src_audio=handle_file(str(path)), inference_steps=1, seed=4, **fields)
    take, rate = sf.read(made[0], dtype="int16", always_2d=True)
    return take, rate, made[-1]


def test_an_edit_of_a_real_master_keeps_its_own_samples_outside_the_region(client, tmp_path):
    path, song = real_master(tmp_path)
    fields = {"prompt": "a new break", "repainting_start": 4.0, "repainting_end": 7.5}
    take, rate, record = _made(client, path, **fields, api_name="/edit")
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
    path, song = real_master(tmp_path)
    take, rate, record = _made(client, path, prompt="and on", extend_seconds=5, api_name="/extend")
    n, fade = song.shape[0], int(modes.SEAM_SECONDS * RATE)
    assert rate == RATE and take.shape == (n + 5 * RATE, 2)
    np.testing.assert_array_equal(take[: n - fade], song[: n - fade])
    assert np.abs(take[n + fade :].astype(np.int32)).max() > 300 and _full_scale(take[n - fade :]) == 0
    assert record["takes"][0]["seconds"] == pytest.approx(n / RATE + 5, abs=0.001)


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


def _kept(stored: str, rate: int = RATE) -> untouched.Kept:
    return untouched.Kept("song.wav", rate, stored, 1.0, 2.0, lambda take: take)


def test_the_take_is_written_in_samples_that_hold_the_song():
    assert [_kept("PCM_16").subtype(f) for f in ("wav", "flac", "mp3")] == ["PCM_16", "PCM_16", None]
    assert [_kept("PCM_24").subtype(f) for f in ("wav", "flac")] == ["PCM_24", "PCM_24"]
    assert [_kept("VORBIS").subtype(f) for f in ("wav", "flac")] == ["FLOAT", "PCM_24"]
    assert [_kept(s).exact("flac") for s in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "MPEG_LAYER_III")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert all(_kept(s).exact("wav") for s in ("PCM_16", "PCM_24", "FLOAT", "VORBIS")) and not _kept("PCM_16").exact(
        "mp3"
    )
    assert (
        _kept("FLOAT", 96000).bytes_per_second("wav") == 96000 * 2 * 4 and _kept("PCM_16").bytes_per_second("mp3") == 0
    )
    assert "rounded to PCM_24 (FLOAT song)" in _kept("FLOAT").said("flac")


def test_a_new_part_louder_than_full_scale_is_held_under_the_ceiling_and_the_seams_never_pass_full_scale():
    import mastering

    rng = np.random.default_rng(1)
    n, a, b, fade = RATE * 2, RATE // 2, RATE + RATE // 2, int(modes.SEAM_SECONDS * RATE)
    song = np.clip(rng.standard_normal((2, n)).astype(np.float32) * 0.5, -1.0, 1.0)
    song[:, a : a + fade] = 1.0  # full scale where the new part fades in, the new part in phase with it
    loud = np.full((2, n), 2.0, np.float32) * np.sign(song + 1e-3)
    new, cut = untouched._limited(loud, a, b, mastering.CEILING_DBTP, RATE)
    assert cut > 6.0 and mastering.true_peak_db(new[:, a:b]) <= mastering.CEILING_DBTP
    spliced = audio.splice(song, new, a, b, fade)
    assert np.abs(spliced[:, a : a + fade]).max() > 1.0  # equal-power: the blend would exceed full scale
    held = untouched._held_in(spliced.copy(), song, a, b, fade)
    assert np.abs(held).max() <= 1.0
    np.testing.assert_array_equal(held[:, :a], song[:, :a])
    np.testing.assert_array_equal(held[:, b:], song[:, b:])
    np.testing.assert_array_equal(held[:, a + fade : b - fade], spliced[:, a + fade : b - fade])
