"""Cover, Extend and Edit through the real tiny pipeline: kept audio is bit-for-bit the source."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf

import audio
import backend
import form_fields
import handlers
import modes
import results
import uploads
from checks import InputError

SR = 48000


def tone(
    path: Path,
    seconds: float = 12.0,
    rate: int = SR,
    channels: int = 2,
    freq: float = 440.0,
    amp: float = 0.5,
    fmt: str | None = None,
    subtype: str | None = None,
) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    x = amp * np.sin(2 * np.pi * freq * t) * (1 + 0.2 * np.sin(2 * np.pi * 0.5 * t)) / 1.2
    data = np.stack([x * (0.9 + 0.1 * c) for c in range(channels)], axis=1).astype(np.float32)
    sf.write(str(path), data, rate, format=fmt, subtype=subtype)
    return path


def peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


KW = {"inference_steps": 2, "seed": 5}


# ---------------------------------------------------------------- audio in


def test_44k_mono_tone_comes_out_48k_stereo_same_pitch(tmp_path):
    path = tone(tmp_path / "mono.wav", seconds=3, rate=44100, channels=1, freq=1000.0)
    x = audio.load(path)
    assert x.shape == (2, 3 * SR) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], x[1])
    assert abs(peak_hz(x[0], SR) - 1000.0) < 1.0


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype"), [("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"), ("mp3", "MP3", None)]
)
def test_compressed_uploads_are_read(tmp_path, suffix, fmt, subtype):
    path = tone(tmp_path / f"song.{suffix}", seconds=2, rate=22050, freq=500.0, fmt=fmt, subtype=subtype)
    x = audio.load(path)
    assert x.shape[0] == 2 and abs(x.shape[1] - 2 * SR) < 0.05 * SR
    assert abs(peak_hz(x[0], SR) - 500.0) < 2.0


def test_surround_is_mixed_down_to_stereo(tmp_path):
    data = np.zeros((SR, 6), dtype=np.float32)
    data[:, 0] = 0.5  # front left only
    data[:, 1] = -0.25  # front right only
    sf.write(str(tmp_path / "51.wav"), data, SR)
    x = audio.load(tmp_path / "51.wav")
    assert x.shape == (2, SR)
    assert np.allclose(x[0], 0.5 / 3) and np.allclose(x[1], -0.25 / 3)


def _bad_files(tmp_path):
    (tmp_path / "notes.txt").write_text("this is not audio")
    sf.write(str(tmp_path / "empty.wav"), np.zeros((0, 2), dtype=np.float32), SR)
    sf.write(str(tmp_path / "silent.wav"), np.zeros((SR, 2), dtype=np.float32), SR)
    tone(tmp_path / "long.wav", seconds=601, rate=1000, channels=1, freq=50)
    corrupt = tone(tmp_path / "corrupt.wav", seconds=1).read_bytes()
    (tmp_path / "corrupt.wav").write_bytes(corrupt[:20])
    return {
        None: "upload a song first",
        "missing.wav": "could not be found",
        "notes.txt": "not an audio file",
        "empty.wav": "is empty",
        "silent.wav": "is silent",
        "long.wav": "up to 10 minutes",
        "corrupt.wav": "not an audio file",
    }


def test_bad_uploads_get_clear_messages(tmp_path):
    for name, message in _bad_files(tmp_path).items():
        with pytest.raises(audio.AudioError, match=message):
            audio.load(None if name is None else tmp_path / name)


# ---------------------------------------------------------------- the three modes


def test_extend_keeps_every_original_sample_before_the_seam(studio_env, tmp_path):
    src = tone(tmp_path / "src.wav", seconds=11.3)
    original = audio.load(src)
    paths, record = handlers.make("extend", src_audio=str(src), prompt="keep grooving", extend_seconds=6, **KW)
    out, rate = sf.read(paths[0], always_2d=True, dtype="float32")
    out = out.T
    n = original.shape[1]
    assert rate == SR and out.shape == (2, n + 6 * SR)
    fade = int(modes.SEAM_SECONDS * SR)
    # 16-bit WAV output: compare against the source quantised the same way.
    q = np.round(np.clip(original, -1, 1) * 32767) / 32767
    np.testing.assert_allclose(out[:, : n - fade], q[:, : n - fade], atol=1 / 32767)
    assert np.abs(out[:, n + fade :]).max() > 0.01
    assert record["params"]["extend_seconds"] == 6 and record["params"]["source_seconds"] == pytest.approx(11.3)


def _capture(saved: dict):
    """``audio.save`` that keeps the float take it is given (and leaves an empty file to rename)."""

    def save(x, path, fmt="wav", *_, **__):
        saved.setdefault("x", x)
        out = Path(path).with_suffix("." + fmt)
        out.write_bytes(b"")
        return out

    return save


def test_extend_is_exact_in_float_before_file_writing(studio_env, tmp_path, monkeypatch):
    saved = {}
    monkeypatch.setattr(audio, "save", _capture(saved))
    src = tone(tmp_path / "src.wav", seconds=10.5)
    original = audio.load(src)
    handlers.make("extend", src_audio=str(src), prompt="more", extend_seconds=5, **KW)
    n = original.shape[1]
    fade = int(modes.SEAM_SECONDS * SR)
    np.testing.assert_array_equal(saved["x"][:, : n - fade], original[:, : n - fade])


def test_edit_keeps_everything_outside_the_region_bit_for_bit(studio_env, tmp_path, monkeypatch):
    saved = {}
    monkeypatch.setattr(audio, "save", _capture(saved))
    src = tone(tmp_path / "src.wav", seconds=12.0, amp=0.2)
    original = audio.load(src)
    handlers.make(
        "edit",
        src_audio=str(src),
        prompt="guitar solo",
        lyrics="[Bridge]\nla la",
        repainting_start=3.5,
        repainting_end=7.25,
        **KW,
    )
    out = saved["x"]
    a, b = int(3.5 * SR), int(7.25 * SR)
    assert out.shape == original.shape
    np.testing.assert_array_equal(out[:, :a], original[:, :a])
    np.testing.assert_array_equal(out[:, b:], original[:, b:])
    assert not np.allclose(out[:, a + SR : b - SR], original[:, a + SR : b - SR], atol=1e-3)


def test_cover_has_the_source_length_and_takes_a_timbre_reference(studio_env, tmp_path):
    src = tone(tmp_path / "src.wav", seconds=10.7, rate=44100)
    ref = tone(tmp_path / "ref.wav", seconds=4, freq=220)
    paths, record = handlers.make(
        "cover", src_audio=str(src), prompt="jazz trio", audio_cover_strength=0.5, reference_audio=str(ref), **KW
    )
    info = sf.info(paths[0])
    assert info.frames == audio.load(src).shape[1] and info.samplerate == SR and info.channels == 2
    assert abs(info.frames - 10.7 * SR) <= 1
    assert record["params"]["audio_cover_strength"] == 0.5 and record["params"]["reference_audio"] == "ref.wav"
    meta = json.loads(Path(paths[0]).with_suffix(".json").read_text())
    assert meta["mode"] == "cover" and meta["seed"] == 5


def test_same_seed_same_result_for_audio_modes(studio_env, tmp_path):
    src = tone(tmp_path / "src.wav", seconds=10)
    a, _ = handlers.make("edit", src_audio=str(src), prompt="x", repainting_start=2, repainting_end=5, **KW)
    b, _ = handlers.make("edit", src_audio=str(src), prompt="x", repainting_start=2, repainting_end=5, **KW)
    np.testing.assert_array_equal(sf.read(a[0])[0], sf.read(b[0])[0])
    c, _ = handlers.make("cover", src_audio=str(src), prompt="x", **KW)
    d, _ = handlers.make("cover", src_audio=str(src), prompt="x", **KW)
    np.testing.assert_array_equal(sf.read(c[0])[0], sf.read(d[0])[0])


def test_chain_generate_extend_edit_cover(studio_env):
    first, _ = handlers.make("generate", prompt="synthwave", audio_duration=10, **KW)
    sung = "[Verse]\nneon rain\nsilver train\n[Bridge]\nall night"
    longer, extended = handlers.make(
        "extend", src_audio=first[0], prompt="synthwave outro", lyrics=sung, extend_seconds=5, **KW
    )
    assert sf.info(longer[0]).frames == 15 * SR
    edited, region = handlers.make(
        "edit", src_audio=longer[0], prompt="drum break", lyrics=sung, repainting_start=4, repainting_end=8, **KW
    )
    assert sf.info(edited[0]).frames == 15 * SR
    # Extend and Edit: the whole song's lines (not only the new part's), inside the whole take.
    for rec in (extended, region):
        times = [line["time"] for line in rec["takes"][0]["lyric_lines"]]
        assert len(times) == 3 and times == sorted(times) and times[0] >= 0 and times[-1] < 15
    covered, record = handlers.make("cover", src_audio=edited[0], prompt="string quartet", **KW)
    assert sf.info(covered[0]).frames == 15 * SR
    assert record["params"]["src_audio"] == Path(edited[0]).name


BAD = [
    (modes.prepare_extend, {"extend_seconds": 3}, "Seconds to add must be between 5 s and 240 s"),
    (modes.prepare_extend, {"extend_seconds": 241}, "Seconds to add must be between 5 s and 240 s"),
    (modes.prepare_edit, {"repainting_start": 5, "repainting_end": 4}, "must start before it ends"),
    (modes.prepare_edit, {"repainting_start": 2, "repainting_end": 2.5}, "at least 1 s long"),
    (modes.prepare_edit, {"repainting_start": -1, "repainting_end": 4}, "starts 1 s before the song does: only 0–4 s"),
    (
        modes.prepare_edit,
        {"repainting_start": 5, "repainting_end": 30},
        "ends 18.0 s after the song does .the song is 12.0 s",
    ),
    (modes.prepare_cover, {"audio_cover_strength": 1.5}, "Cover strength must be between 0 and 1"),
    (modes.prepare_cover, {"prompt": "", "lyrics": ""}, "both are empty"),
    (modes.prepare_cover, {"audio_format": "aiff"}, "Unknown output format"),
]


@pytest.mark.parametrize(("fn", "kwargs", "message"), BAD, ids=[m for *_, m in BAD])
def test_bad_settings_are_refused_before_the_gpu(fn, kwargs, message, studio_env, tmp_path):
    src = tone(tmp_path / "src.wav", seconds=12)
    args = {"src_audio": str(src), "prompt": "pop", **kwargs}

    with pytest.raises(gr.Error, match=message):
        fn(**args)
    assert not backend.is_warm()  # refused before the model was needed


# One fault in each step a request is checked in, and the field each is refused on, in the one order every mode
# refuses in (``preparing.render``): the caption and lyrics, a declared field of the model call, the BPM, the
# format, the LoRA's strength, the seed. Each request mends the fault refused before it.
FAULTS = (
    ("prompt", "x" * 600, "pop"),
    ("guidance_scale", 30, 7.0),
    ("bpm", "fast", 120),
    ("audio_format", "aiff", "wav"),
    ("lora_scale", 99, 1.0),
    ("seed", -5, 1),
)


@pytest.mark.parametrize("mode", ["generate", "cover", "extend", "edit"])
def test_two_faults_in_one_request_are_refused_in_one_order_in_every_mode(mode, studio_env, tmp_path):
    asked = {name: bad for name, bad, _ in FAULTS}
    if mode == "generate":
        asked["think"] = False
    else:
        asked["src_audio"] = str(tone(tmp_path / "src.wav", seconds=12))
    refused = []
    for name, _, good in FAULTS:
        with pytest.raises(InputError) as told:
            modes.PREPARE[mode](**asked)
        refused.append(told.value.param)
        asked[name] = good
    assert refused == [name for name, *_ in FAULTS]
    assert not backend.is_warm()


# Edit's own field (``repaint_mode``) in its place in that order: after the song and its words, before the
# declared fields of the model call; with a region or a part (a part does not use it, but it is never passed over).
EDIT_FAULTS = (
    ("src_audio", None, "song"),
    ("lyrics", "la " * 2000, "la"),
    ("repaint_mode", "wild", "balanced"),
    ("guidance_scale", 30, 7.0),
)


@pytest.mark.parametrize("change", ["region", "add"])
def test_edits_fault_is_refused_after_the_song_and_lyrics_before_the_declared_fields(change, studio_env, tmp_path):
    src = str(tone(tmp_path / "src.wav", seconds=12))
    asked = {"prompt": "pop", "change": change, **{name: bad for name, bad, _ in EDIT_FAULTS}}
    refused = []
    for name, _, good in EDIT_FAULTS:
        with pytest.raises(InputError) as told:
            modes.prepare_edit(**asked)
        refused.append(told.value.param)
        asked[name] = src if name == "src_audio" else good
    assert refused == [name for name, *_ in EDIT_FAULTS]
    assert not backend.is_warm()


@pytest.mark.parametrize("fn", [modes.prepare_cover, modes.prepare_extend, modes.prepare_edit])
def test_every_bad_upload_is_a_clear_error_in_every_mode(fn, studio_env, tmp_path):
    for name, message in _bad_files(tmp_path).items():
        with pytest.raises(gr.Error, match=message):
            fn(src_audio=None if name is None else str(tmp_path / name), prompt="pop")


def test_extension_that_would_pass_ten_minutes(studio_env, tmp_path):
    src = tone(tmp_path / "long.wav", seconds=590, rate=8000, channels=1, freq=200)
    with pytest.raises(gr.Error, match="longer than 10 minutes. Add at most 10 s"):
        modes.prepare_extend(src_audio=str(src), prompt="more", extend_seconds=20)


def test_splice_and_gain_match_helpers():
    rng = np.random.default_rng(0)
    original = rng.standard_normal((2, 1000)).astype(np.float32) * 0.1
    new = rng.standard_normal((2, 1500)).astype(np.float32)
    out = audio.splice(original, new, 300, 600, 50)
    np.testing.assert_array_equal(out[:, :300], original[:, :300])
    np.testing.assert_array_equal(out[:, 600:1000], original[:, 600:1000])
    np.testing.assert_array_equal(out[:, 350:550], new[:, 350:550])
    fo, fi = audio.equal_power_fade(64)
    np.testing.assert_allclose(fo**2 + fi**2, 1.0, atol=1e-6)
    ext = audio.splice(original, new, 950, 1500, 50)
    assert ext.shape == (2, 1500)
    np.testing.assert_array_equal(ext[:, :950], original[:, :950])
    matched = audio.gain_match(new, new[:, :1000], original)
    assert audio.rms(matched[:, :1000]) == pytest.approx(audio.rms(original), rel=1e-5)


def test_send_to_picks_the_take_and_refuses_an_empty_one(studio_env, tmp_path):
    day = studio_env / "2026-11-22"
    day.mkdir(parents=True)
    names = [f"generate-101010-abcdef-take{i}-seed{i}.wav" for i in (1, 2)]
    for name in names:
        (day / name).write_bytes(b"RIFF")
    record = {"takes": [{"take": i + 1, "audio": f"2026-11-22/{n}"} for i, n in enumerate(names)]}
    # A copy in Gradio's upload folder, as if the visitor had uploaded it (within the upload quota).
    sent = Path(results.send_take(2, record))
    assert sent.name == names[1] and sent.read_bytes() == b"RIFF" and uploads.in_upload_folder(sent)
    with pytest.raises(gr.Error, match="Take to send must be a whole number from 1 to 2"):
        results.send_take(3, record)
    with pytest.raises(gr.Error, match="no take yet"):
        results.send_take(1, None)
    # Only a take the studio wrote and still keeps: never a path a record (or a stranger) names.
    for audio_path in ("2026-11-22/../../etc/passwd", "/etc/passwd", "2026-11-22/notes.txt"):
        with pytest.raises(gr.Error, match="no longer kept"):
            results.send_take(1, {"takes": [{"take": 1, "audio": audio_path}]})
    assert "0:12.0 long" in form_fields.describe_source(str(tone(tmp_path / "s.wav", seconds=12)))
