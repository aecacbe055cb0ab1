"""Files read as they are: a length the header calls unknown, estimates or never wrote
is read from the audio, and the studio settles on what was read, or refuses in true words.

Each file is built here from one the studio reads well, patched as the real ones came: a FLAC whose
STREAMINFO says "length unknown" (a stream encoder's), an MP3 without its Xing frame (its length then
an estimate from the first frame's bitrate), a WAV whose sizes a recorder never wrote.
"""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import audio
import audio_length
import headers
import uploads

SR = 48000
SECONDS = 40
MP3_FRAME = 1152  # samples an MPEG-1 Layer III frame decodes to


def _song(seconds: float = SECONDS, rate: int = SR) -> np.ndarray:
    """``[samples, 2]``: a loud noisy second (a heavy first MP3 frame, as a drum intro gives) then a soft tone."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.05 * np.sin(2 * np.pi * 220 * t)
    x[:rate] = 0.3 * np.random.default_rng(0).standard_normal(rate)
    return np.stack([x, 0.9 * x], axis=1).astype(np.float32)


def _unknown_flac(path: Path, seconds: float = SECONDS, rate: int = SR, total: int = 0) -> Path:
    """A FLAC whose STREAMINFO total_samples (its low 36 bits at bytes 18-25) says ``total``."""
    sf.write(str(path), _song(seconds, rate), rate, format="FLAC", subtype="PCM_16")
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    field = int.from_bytes(data[18:26], "big")
    assert field & (2**36 - 1) == int(seconds * rate)
    data[18:26] = ((field & ~(2**36 - 1)) | total).to_bytes(8, "big")
    path.write_bytes(data)
    assert int.from_bytes(path.read_bytes()[18:26], "big") & (2**36 - 1) == total
    return path


def _untagged_mp3(path: Path, seconds: float = SECONDS, vbri: bool = False) -> Path:
    """An MP3 whose Xing frame (its frame count, with LAME's) is gone, or turned into a VBRI frame."""
    sf.write(str(path), _song(seconds), SR, format="MP3")
    data = bytearray(path.read_bytes())
    header = int.from_bytes(data[:4], "big")
    assert header >> 21 == 0x7FF and data[36:40] == b"Xing"  # MPEG-1 stereo: the tag 32 bytes in
    kbps = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)[header >> 12 & 15]
    size = 144_000 * kbps // SR + (header >> 9 & 1)
    if vbri:  # Fraunhofer's tag where LAME's was: version, delay, quality, bytes, frames, an empty table
        frames = int.from_bytes(data[44:48], "big")
        data[36:size] = bytes(size - 36)
        data[36:62] = b"VBRI" + struct.pack(">HHHIIHHHH", 1, 0x2400, 75, len(data), frames, 0, 1, 2, 0)
    else:
        del data[:size]
    path.write_bytes(data)
    return path


def _unfinished_wav(path: Path, seconds: float = SECONDS, stated: float = 0.0) -> Path:
    """A WAV whose RIFF and data sizes say ``stated`` seconds (0: a recorder stopped before writing them)."""
    sf.write(str(path), _song(seconds), SR, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    assert data[36:40] == b"data"
    size = int(stated * SR) * 4
    data[4:8] = (36 + size if size else 0).to_bytes(4, "little")
    data[40:44] = size.to_bytes(4, "little")
    path.write_bytes(data)
    return path


def _chained_ogg(path: Path) -> Path:
    """Two Opus streams one after another: the second a copy of the first under its own serial number."""
    sf.write(str(path), _song(3), SR, format="OGG", subtype="OPUS")
    first = path.read_bytes()
    second, at = bytearray(first), 0
    while at < len(second):
        assert second[at : at + 4] == b"OggS"
        end = at + 27 + second[at + 26] + sum(second[at + 27 : at + 27 + second[at + 26]])
        second[at + 14 : at + 18] = (7).to_bytes(4, "little")
        second[at + 22 : at + 26] = bytes(4)
        second[at + 22 : at + 26] = _ogg_crc(bytes(second[at:end])).to_bytes(4, "little")
        at = end
    path.write_bytes(first + bytes(second))
    return path


def _ogg_crc(page: bytes) -> int:
    """Ogg's page checksum (CRC-32, polynomial 0x04C11DB7, not reflected): libogg drops a page without it."""
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = (r << 1) ^ 0x04C11DB7 if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


@pytest.fixture
def reads():
    """The lengths read from the audio since the test began, by how (``audio_length.stats``)."""
    before = audio_length.stats.copy()
    return lambda: dict(audio_length.stats - before)


# ---------------------------------------------------------------- the three files, read to their end


@pytest.mark.parametrize("total", [0, 2**36 - 1], ids=["unknown", "implausible"])
def test_a_flac_whose_header_cannot_say_its_length_is_read_to_its_end(tmp_path, reads, total):
    path = _unknown_flac(tmp_path / "stream.flac", total=total)
    assert sf.info(str(path)).frames > 10**9  # libsndfile's count: billions of minutes, or the patched one
    header = audio.probe(path)
    assert (header.frames, header.source.kind) == (SECONDS * SR, "read")
    song = audio.load(path)
    assert song.shape == (2, SECONDS * SR)
    sf.write(str(tmp_path / "whole.flac"), _song(), SR, format="FLAC", subtype="PCM_16")
    assert np.array_equal(song, audio.load(tmp_path / "whole.flac"))
    assert reads() == {"read": 1}  # once: the decode and later probes use the count kept


@pytest.mark.parametrize("vbri", [False, True], ids=["no-tag", "vbri"])
def test_an_mp3_without_a_frame_count_is_read_to_its_end_not_cut_to_an_estimate(tmp_path, reads, vbri):
    path = _untagged_mp3(tmp_path / "song.mp3", vbri=vbri)
    assert sf.info(str(path)).frames < 30 * SR  # libsndfile's estimate, where its reading stops: the cut
    header = audio.probe(path)
    # What the file really decodes to: every frame, the encoder's delay and padding too (only the LAME
    # tag, gone with the Xing frame, lets a decoder drop them), and a VBRI frame decodes as one more.
    assert header.source.kind == "stream"
    assert 0 <= header.frames - SECONDS * SR < (3 if vbri else 2) * MP3_FRAME
    song = audio.load(path)
    assert song.shape == (2, header.frames)
    assert np.abs(song[:, -SR:]).max() > 0.02  # the song's last second is there, not silence
    assert reads() == {"stream": 1}


@pytest.mark.parametrize("stated", [0.0, 10.0], ids=["sizes-zero", "sizes-short"])
def test_a_wav_whose_sizes_were_never_written_is_read_to_its_end(tmp_path, reads, stated):
    path = _unfinished_wav(tmp_path / "take.wav", stated=stated)
    assert sf.info(str(path)).frames == int(stated * SR)  # libsndfile: "empty", or cut at 10 s
    header = audio.probe(path)
    assert (header.frames, header.source.kind) == (SECONDS * SR, "raw")
    sf.write(str(tmp_path / "whole.wav"), _song(), SR, subtype="PCM_16")
    assert np.array_equal(audio.load(path), audio.load(tmp_path / "whole.wav"))
    assert reads() == {"raw": 1}


def test_the_admission_check_uses_the_length_read(tmp_path):
    files = [
        _unknown_flac(tmp_path / "stream.flac"),
        _untagged_mp3(tmp_path / "song.mp3"),
        _unfinished_wav(tmp_path / "take.wav"),
    ]
    for path in files:
        with headers.only():
            at_door = uploads.load(str(path))
        assert SECONDS * SR <= at_door.shape[1] < SECONDS * SR + 2 * MP3_FRAME, path.name
        assert at_door.shape[1] == audio.probe(path).samples == uploads.load(str(path)).shape[1]


# ---------------------------------------------------------------- past the limit by its content


def test_a_file_longer_than_the_limit_by_its_content_is_refused_with_a_true_message(tmp_path):
    wav = _unfinished_wav(tmp_path / "take.wav")
    with pytest.raises(audio.AudioError, match=r"The song is 0\.7 minutes long; the studio takes up to 0\.5 minutes"):
        audio.probe(wav, max_seconds=30)
    for path in (_unknown_flac(tmp_path / "stream.flac"), _untagged_mp3(tmp_path / "song.mp3")):
        with pytest.raises(audio.AudioError, match=r"The song is longer than 0\.5 minutes, the most the studio takes"):
            audio.load(path, max_seconds=30)


def test_reading_stops_as_the_count_passes_the_limit(tmp_path):
    # Ten minutes of "unknown" length at 8 kHz mono, read against a limit of 30 s.
    path = _unknown_flac(tmp_path / "long.flac", seconds=600, rate=8000)
    found = audio_length.source(path, sf.info(str(path)))
    tracemalloc.start()
    length = audio_length.length(path, found, 30 * 8000 + 1, 16_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert not length.whole and 30 * 8000 < length.frames <= 32 * 8000
    assert peak < 2**20  # one block's buffer, not the file


def test_counting_stops_where_the_studio_would_stop_decoding(tmp_path, monkeypatch):
    # A length read costs no more than the largest decode the studio takes: here 5 s of 8 channels.
    monkeypatch.setattr(audio, "MAX_INPUT_SAMPLES", 5 * SR * 8)
    path = tmp_path / "surround.flac"
    sf.write(str(path), np.tile(_song(12), 4), SR, format="FLAC")
    data = bytearray(path.read_bytes())
    data[18:26] = (int.from_bytes(data[18:26], "big") & ~(2**36 - 1)).to_bytes(8, "big")  # length unknown
    path.write_bytes(data)
    with pytest.raises(audio.AudioError, match=r"holds too much audio to read: more than 0\.1 minutes of 8 channels"):
        audio.probe(path)


def test_a_ten_minute_admission_refusal_names_the_limit(tmp_path):
    path = _unknown_flac(tmp_path / "long.flac", seconds=601, rate=8000)
    with pytest.raises(audio.AudioError, match="longer than 10 minutes, the most the studio takes"):
        audio.probe(path)


# ---------------------------------------------------------------- what stays as it was


def test_files_whose_headers_hold_are_read_from_their_headers(tmp_path, reads):
    song = _song(12)
    sf.write(str(tmp_path / "plain.wav"), song, SR, subtype="PCM_24")
    with sf.SoundFile(str(tmp_path / "tagged.wav"), "w", SR, 2, "PCM_16") as f:
        f.title = "a LIST chunk after the samples"
        f.write(song)
    sf.write(str(tmp_path / "plain.flac"), song, SR, format="FLAC")
    sf.write(str(tmp_path / "plain.ogg"), song, SR, format="OGG", subtype="OPUS")
    audio.save(song.T, tmp_path / "take.mp3", "mp3", tags={"title": "ID3v2 before the Xing frame"})
    for name in ("plain.wav", "tagged.wav", "plain.flac", "plain.ogg", "take.mp3"):
        header = audio.probe(tmp_path / name)
        assert header.source == audio_length.HEADER, name
        assert header.frames == sf.info(str(tmp_path / name)).frames
    assert reads() == {}


def test_damaged_files_keep_their_error_messages(tmp_path):
    rng = np.random.default_rng(1)
    flac = bytearray(_unknown_flac(tmp_path / "damaged.flac").read_bytes())
    flac[300:] = rng.integers(0, 256, len(flac) - 300, dtype=np.uint8).tobytes()
    (tmp_path / "damaged.flac").write_bytes(flac)
    mp3 = bytearray(_untagged_mp3(tmp_path / "damaged.mp3").read_bytes())
    mp3[400:] = rng.integers(0, 256, len(mp3) - 400, dtype=np.uint8).tobytes()
    (tmp_path / "damaged.mp3").write_bytes(mp3)
    (tmp_path / "cut.wav").write_bytes(_unfinished_wav(tmp_path / "cut.wav").read_bytes()[:20])
    for name in ("damaged.flac", "damaged.mp3", "cut.wav"):
        with pytest.raises(audio.AudioError, match=rf"The song \({name}\) is not an audio file the studio can read"):
            audio.load(tmp_path / name)
    sf.write(str(tmp_path / "empty.wav"), np.zeros((0, 2), np.float32), SR)
    with pytest.raises(audio.AudioError, match=r"\(empty.wav\) is empty"):
        audio.load(tmp_path / "empty.wav")


def test_a_chained_ogg_is_refused_rather_than_cut_to_its_first_stream(tmp_path):
    path = _chained_ogg(tmp_path / "chained.ogg")
    with pytest.raises(audio.AudioError, match="several Ogg streams joined one after another"):
        audio.probe(path)


# ---------------------------------------------------------------- tags, claims and tails


def _id3(kb: int) -> bytes:
    """An ID3v2.3 tag holding one APIC frame (a front cover) of ``kb`` KB, as taggers write it."""
    body = b"\x00image/jpeg\x00\x03\x00" + b"\xff\xd8\xff\xe0" + bytes(kb * 1024)
    frame = b"APIC" + len(body).to_bytes(4, "big") + b"\x00\x00" + body
    size = len(frame)
    return b"ID3\x03\x00\x00" + bytes((size >> s) & 0x7F for s in (21, 14, 7, 0)) + frame


@pytest.mark.parametrize("kb", [20, 60, 300])
def test_an_mp3_with_a_cover_image_is_read_at_admission_and_served(tmp_path, reads, kb):
    """A CBR MP3 without a Xing frame and a cover of 60 KB or more was refused as damaged."""
    path = tmp_path / f"cover-{kb}.mp3"
    path.write_bytes(_id3(kb) + _untagged_mp3(tmp_path / "plain.mp3").read_bytes())
    header = audio.probe(path)
    assert header.source.kind == "stream" and abs(header.frames / SR - SECONDS) < 0.1
    with headers.only():
        assert abs(uploads.load(path).shape[1] / SR - SECONDS) < 0.1
    assert abs(uploads.load(path).shape[1] / SR - SECONDS) < 0.1
    assert reads() == {"stream": 1}


def _claiming_mp3(path: Path, claimed: float, stated_bytes: int | None = None) -> Path:
    """A 10 s MP3 whose Xing frame claims ``claimed`` seconds (and, given, ``stated_bytes`` bytes)."""
    sf.write(str(path), _song(10), SR, format="MP3")
    data = bytearray(path.read_bytes())
    assert data[36:40] == b"Xing" and data[43] & 3 == 3  # frame and byte counts stated
    data[44:48] = int(claimed * SR / MP3_FRAME).to_bytes(4, "big")
    if stated_bytes is not None:
        data[48:52] = stated_bytes.to_bytes(4, "big")
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("bytes_too", [False, True], ids=["frames", "frames-and-bytes"])
def test_a_frame_count_its_file_cannot_hold_is_counted_not_believed(tmp_path, reads, bytes_too):
    """A Xing frame claiming 600 s in a file of 10 s: the line and the admission check said 10 minutes."""
    path = tmp_path / "claims.mp3"
    _claiming_mp3(path, 600, 2**30 if bytes_too else None)
    header = audio.probe(path)
    # Read from the file to its end (a pipe fails at a last frame cut in two: a file cut short).
    assert header.source.kind == "read" and abs(header.frames / SR - 10) < 0.1
    with headers.only():
        assert abs(uploads.load(path).shape[1] / SR - 10) < 0.1
    assert reads() == {"read": 1}
    honest = _claiming_mp3(tmp_path / "honest.mp3", 10)
    assert audio.probe(honest).source.kind == "header"  # a count the file can hold is read from it


def _ogg_with_tail(path: Path, tail: bytes, seconds: float = 5) -> Path:
    sf.write(str(path), _song(seconds), SR, format="OGG", subtype="VORBIS")
    path.write_bytes(path.read_bytes() + tail)
    return path


def test_an_ogg_whose_audio_stops_long_before_its_end_is_refused_for_its_pages_alone(tmp_path, monkeypatch):
    """5 s of Vorbis then 60 MB of ``OggS\\0\\0``: libsndfile's info alone cost 31 CPU s and
    a reading 98.6. Its pages are walked first; libsndfile never opens it."""
    path = _ogg_with_tail(tmp_path / "tail.ogg", b"OggS\x00\x00" * (4 * 2**20 // 6))
    opened = []
    monkeypatch.setattr(sf, "info", lambda *a, **k: opened.append(a))
    walked = []
    real = audio_length.pages
    monkeypatch.setattr(audio_length, "pages", lambda p: walked.append(real(p)) or walked[-1])
    with pytest.raises(audio.AudioError, match=r"\(tail.ogg\) stops being audio 0.0\d MB in: the other 4.0 MB"):
        audio.probe(path)
    assert opened == [] and len(walked) == 1 and walked[0].pages < 16
    assert walked[0].end == path.stat().st_size - 4 * 2**20 // 6 * 6
    with pytest.raises(audio.AudioError, match="stops being audio"):
        uploads.load(path)


def test_an_ogg_with_a_short_tag_after_its_audio_is_read(tmp_path):
    """A tagger's ID3v1 tag (128 bytes) after the last page: within ``OGG_TAIL``, read as before."""
    path = _ogg_with_tail(tmp_path / "tagged.ogg", b"TAG" + bytes(125), seconds=12)
    header = audio.probe(path)
    assert header.frames == 12 * SR and audio_length.pages(path).end == path.stat().st_size - 128
