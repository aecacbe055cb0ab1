"""Audio in and out: any upload to float32 48 kHz stereo, files in WAV/FLAC/MP3, seams and gain.

Arrays are ``[channels, samples]`` float32 throughout, the layout the pipeline uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import audio_length
import error_messages

# The song the model makes and the studio reads: 48 kHz stereo, 10 s to 10 minutes (upstream's
# duration range), its blueprint five codes a second. Every other module reads these from here.
SAMPLE_RATE = 48000
MIN_SECONDS = 10.0
MAX_SECONDS = 600.0
CODES_PER_SECOND = 5
FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_24"), "mp3": ("MP3", "MPEG_LAYER_III")}
# MP3 is written at a constant bitrate (exact durations and seeking in every player): a take at the
# highest MPEG-1 rate, the page's preview of a WAV/FLAC take at a common listening rate.
MP3_KBPS = 320
PREVIEW_KBPS = 128
# LAME's own default algorithm quality (0 best … 9 fastest) for the preview.
PREVIEW_QUALITY = 3
# The preview is encoded this many samples at a time: a ten-minute take never sits whole as 16-bit.
_PREVIEW_CHUNK = SAMPLE_RATE * 10
STUDIO = "ACE Music Studio"
# Peak below which a file is treated as silent (about -80 dBFS).
SILENCE_PEAK = 1e-4


class AudioError(ValueError):
    """An upload or a requested length the studio cannot work with; the message is for the musician."""


# What a file input (``widgets.any_file``) hands on for a file the studio will not look at: a URL (never
# fetched) and a path that is no upload of this visitor (a server file, another's take: never opened). No
# file has either name; every reader of a file input says why with ``unseen``.
URL_GIVEN = ":a-web-address:"
NOT_UPLOADED = ":not-an-uploaded-file:"


def unseen(path: Any, what: str = "song") -> str | None:
    """Why a file input's ``path`` names no file the studio reads (``what``: the song, the timbre reference,
    the LoRA file …): a URL, a path that is no upload; None for any other value."""
    if str(path) == URL_GIVEN:
        return error_messages.FILE_URL.format(what=what)
    if str(path) == NOT_UPLOADED:
        return error_messages.FILE_NOT_UPLOADED.format(what=what)
    return None


# Beyond these a file is not a song the studio can use (and would only cost memory or CPU to decode).
MAX_CHANNELS = 16
MIN_RATE = 8_000
MAX_RATE = 384_000
# Samples (frames × channels) a file may hold: ten minutes of 192 kHz stereo. Decoding and
# resampling cost CPU in proportion; ten minutes of 8 channels at 384 kHz would be 8 times that.
MAX_INPUT_SAMPLES = int(MAX_SECONDS * 192_000 * 2)
# Decoding reads about this much of the source at a time (and never more than BLOCK_SAMPLES
# samples), so a file that decodes to far more than its size suggests never lands in memory whole.
BLOCK_SECONDS = 2.0
BLOCK_SAMPLES = 1_000_000


@dataclass(frozen=True)
class Header:
    """What an upload's header says, checked before a sample is decoded; its length read from the audio
    where the header cannot say it (``audio_length``: unknown, an estimate, a size never written)."""

    name: str
    rate: int
    channels: int
    frames: int  # the header's count (a cut-off file decodes fewer), else the count read
    source: audio_length.Source = audio_length.HEADER  # how the decode reads it
    subtype: str = ""  # how its samples are stored (soundfile's name: PCM_16, FLOAT, VORBIS ...)

    @property
    def samples(self) -> int:
        """How many 48 kHz samples the decode gives (a cut-off file gives fewer): ``at_studio_rate``."""
        return at_studio_rate(self.frames, self.rate)

    @property
    def decoded_bytes(self) -> int:
        """Bytes of the float32 48 kHz stereo result the header promises."""
        return 2 * 4 * (math.ceil(self.frames * SAMPLE_RATE / self.rate) + 1024)


def at_studio_rate(frames: int, rate: int) -> int:
    """The samples ``frames`` at ``rate`` resample to at 48 kHz, as soxr counts them (half up)."""
    return (2 * frames * SAMPLE_RATE + rate) // (2 * rate)


def probe(path: str | Path | None, what: str = "song", max_seconds: float = MAX_SECONDS) -> Header:
    """An upload's header: length, channels, rate and size checked without decoding any audio."""
    import soundfile as sf

    if path is None or str(path).strip() == "":
        raise AudioError(error_messages.UPLOAD_FIRST.format(what=what))
    if (why := unseen(path, what)) is not None:
        raise AudioError(why)
    path = Path(path)
    if not path.is_file():
        raise AudioError(error_messages.UPLOAD_NOT_FOUND.format(what=what))
    _check_pages(path, what)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for unreadable input
        raise _unreadable(path, what) from exc
    rate, channels, frames = int(info.samplerate), int(info.channels), max(0, int(info.frames))
    if not 0 < channels <= MAX_CHANNELS:
        raise AudioError(
            error_messages.UPLOAD_CHANNELS.format(what=what, name=path.name, channels=channels, most=MAX_CHANNELS)
        )
    if rate <= 0:
        raise _unreadable(path, what)
    source = _source(path, info, what)
    if source.kind != "header":  # a length the header cannot say, read from the audio
        _check_rate(path, what, rate)
        frames = _read_length(path, source, info, what, max_seconds)
    if frames / rate > max_seconds:
        raise AudioError(_too_long(what, max_seconds, frames / rate))
    _check_rate(path, what, rate)
    if frames * channels > MAX_INPUT_SAMPLES:
        raise AudioError(_too_much(path, what, "", frames / rate, channels, rate))
    return Header(path.name, rate, channels, frames, source, str(info.subtype))


def _check_rate(path: Path, what: str, rate: int) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            error_messages.UPLOAD_RATE.format(
                what=what, name=path.name, rate=rate, low=MIN_RATE // 1000, high=MAX_RATE // 1000
            )
        )


def _source(path: Path, info: Any, what: str) -> audio_length.Source:
    """How the file is read, and whether its header's length holds (``audio_length.source``)."""
    try:
        return audio_length.source(path, info)
    except Exception as exc:
        raise _unreadable(path, what) from exc


def _check_pages(path: Path, what: str) -> None:
    """An Ogg file's pages walked before libsndfile opens it (``audio_length.pages``): one stream, and audio to
    within ``OGG_TAIL`` of its end, else ``AudioError`` (its message), at a cost of its pages' checksums."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"OggS":
                return
        walked, size = audio_length.pages(path), path.stat().st_size
    except OSError as exc:
        raise _unreadable(path, what) from exc
    if walked.chained:
        raise AudioError(error_messages.UPLOAD_CHAINED.format(what=what, name=path.name))
    if walked.most:
        raise AudioError(error_messages.UPLOAD_PAGES.format(what=what, name=path.name, minutes=MAX_SECONDS / 60))
    if walked.pages == 0:
        raise _unreadable(path, what)
    if size - walked.end > audio_length.OGG_TAIL:
        mb, rest = walked.end / 2**20, (size - walked.end) / 2**20
        raise AudioError(error_messages.UPLOAD_TAIL.format(what=what, name=path.name, mb=mb, rest=rest))


def _read_length(path: Path, source: audio_length.Source, info: Any, what: str, max_seconds: float) -> int:
    """The frames read from the audio (once a file), up to just past ``max_seconds`` or
    ``MAX_INPUT_SAMPLES``: a file beyond either is refused as soon as the count passes it, so counting
    costs no more than the largest decode the studio takes."""
    rate, channels = int(info.samplerate), int(info.channels)
    limit = min(int(max_seconds * rate), MAX_INPUT_SAMPLES // channels) + 1
    try:
        found = audio_length.length(path, source, limit, _block(rate, channels))
    except Exception as exc:
        raise _unreadable(path, what) from exc
    if found.whole:
        return found.frames
    if found.frames / rate > max_seconds:
        raise AudioError(error_messages.UPLOAD_LONGER.format(what=what, most=max_seconds / 60))
    raise AudioError(_too_much(path, what, "more than ", found.frames / rate, channels, rate))


def _block(rate: int, channels: int) -> int:
    """Frames read at a time: about ``BLOCK_SECONDS``, never more than ``BLOCK_SAMPLES`` samples."""
    return max(1, min(int(BLOCK_SECONDS * rate), BLOCK_SAMPLES // channels))


def load(path: str | Path | None, what: str = "song", max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Read an upload as float32 ``[2, samples]`` at 48 kHz (``probe``, then ``decode``)."""
    return decode(Path(str(path)), probe(path, what, max_seconds), what, max_seconds)


def decode(
    path: Path, header: Header, what: str = "song", max_seconds: float = MAX_SECONDS, native_rate: bool = False
) -> np.ndarray:
    """Decode a probed upload, mixed to stereo and resampled to 48 kHz block by block into one
    buffer sized from the header, so memory stays within the 48 kHz stereo result (at most ~230 MB
    for 10 minutes) plus a few blocks, whatever the file claims; ``native_rate``: at the file's own rate,
    its samples as decoded (an Edit's or Extend's untouched part, ``untouched``).

    Mono is duplicated to both sides; more than two channels are mixed down to stereo. A file that
    ends before its header says (a cut-off MP3) gives the audio it has.
    """
    try:
        return _decode(path, header, what, max_seconds, native_rate)
    except AudioError:
        raise
    except Exception as exc:
        raise _unreadable(path, what) from exc


def _unreadable(path: Path, what: str) -> AudioError:
    return AudioError(error_messages.UPLOAD_UNREADABLE.format(what=what, name=path.name))


def _too_long(what: str, max_seconds: float, seconds: float) -> str:
    return error_messages.UPLOAD_TOO_LONG.format(what=what, minutes=seconds / 60, most=max_seconds / 60)


def _too_much(path: Path, what: str, more: str, seconds: float, channels: int, rate: int) -> str:
    return error_messages.UPLOAD_TOO_MUCH.format(
        what=what, name=path.name, more=more, minutes=seconds / 60, channels=channels, khz=rate // 1000
    )


def _decode(path: Path, header: Header, what: str, max_seconds: float, native_rate: bool = False) -> np.ndarray:
    import soxr

    rate = header.rate
    resampled = rate != SAMPLE_RATE and not native_rate
    stream = soxr.ResampleStream(rate, SAMPLE_RATE, 2, dtype="float32", quality="VHQ") if resampled else None
    out = np.empty((2, header.frames + 1024 if native_rate else header.decoded_bytes // 8), dtype=np.float32)
    filled, frames, peak = 0, 0, 0.0
    limit = int(max_seconds * rate) + 1
    block = _block(rate, header.channels)

    def put(piece: np.ndarray) -> None:
        nonlocal out, filled
        if filled + piece.shape[1] > out.shape[1]:  # the header under-stated the length
            out = np.concatenate([out[:, :filled], np.empty((2, max(piece.shape[1], filled // 4)), np.float32)], 1)
        out[:, filled : filled + piece.shape[1]] = piece
        filled += piece.shape[1]

    with audio_length.opened(path, header.source) as f:
        while True:
            # ``read`` returns what is really there (``blocks`` repeats stale data past the end of
            # a cut-off MP3 whose header promises more).
            chunk = f.read(block, dtype="float32", always_2d=True)
            if not len(chunk):
                break
            frames += chunk.shape[0]
            if frames > limit:
                raise AudioError(_too_long(what, max_seconds, frames / rate))
            if not np.isfinite(chunk).all():
                raise AudioError(error_messages.UPLOAD_DAMAGED.format(what=what, name=path.name))
            peak = max(peak, float(np.abs(chunk).max(initial=0.0)))
            stereo = _stereo(chunk.T)
            put(stereo if stream is None else stream.resample_chunk(stereo.T, last=False).T)
    if frames == 0:
        raise AudioError(error_messages.UPLOAD_EMPTY.format(what=what, name=path.name))
    if peak < SILENCE_PEAK:
        raise AudioError(error_messages.UPLOAD_SILENT.format(what=what, name=path.name))
    if stream is not None:
        put(stream.resample_chunk(np.zeros((0, 2), dtype=np.float32), last=True).T)
    return _compact(out, filled)


def _compact(out: np.ndarray, filled: int) -> np.ndarray:
    """The first ``filled`` samples of ``[2, n]`` as a contiguous array, in the same buffer where
    that wastes little (the second row moves up behind the first), else in a fresh one (a cut-off
    MP3 whose header promised far more)."""
    if filled < 0.75 * out.shape[1]:
        return np.ascontiguousarray(out[:, :filled])
    flat = out.reshape(-1)
    flat[filled : 2 * filled] = out[1, :filled]  # overlapping: numpy copies through a buffer
    return flat[: 2 * filled].reshape(2, filled)


def _stereo(audio: np.ndarray) -> np.ndarray:
    if audio.shape[0] == 1:
        return np.repeat(audio, 2, axis=0)
    if audio.shape[0] > 2:
        return _downmix(audio)
    return audio


def to_stereo_48k(audio: np.ndarray, rate: int) -> np.ndarray:
    """``[channels, samples]`` at any rate to float32 stereo at 48 kHz (soxr for resampling)."""
    audio = _stereo(np.asarray(audio, dtype=np.float32))
    if rate != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio.T, rate, SAMPLE_RATE, quality="VHQ").T
    return np.ascontiguousarray(audio, dtype=np.float32)


def _downmix(audio: np.ndarray) -> np.ndarray:
    # Even channels to the left, odd to the right (L, R, C, LFE, Ls, Rs ...), centre-ish ones
    # land on both through the averaging of each side.
    left = audio[0::2].mean(axis=0)
    right = audio[1::2].mean(axis=0)
    return np.stack([left, right])


def save(
    audio: np.ndarray,
    path: str | Path,
    fmt: str = "wav",
    tags: dict[str, str] | None = None,
    rate: int = SAMPLE_RATE,
    subtype: str | None = None,
) -> Path:
    """Write ``[channels, samples]`` float audio at ``rate``; the suffix follows ``fmt``, its samples
    ``FORMATS``' unless ``subtype`` says (an Edit's or Extend's own: ``untouched``; FLOAT keeps what passes
    full scale). MP3 at a constant ``MP3_KBPS``. ``tags`` (``title``, ``artist``, ``comment``) go into the
    file's own metadata: ID3v2 for MP3 (libsndfile writes only ID3v1, 30 Latin-1 characters a field),
    RIFF INFO for WAV, Vorbis comments for FLAC."""
    import soundfile as sf

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise AudioError(error_messages.OUTPUT_FORMAT.format(given=repr(fmt)))
    container, subtype = FORMATS[fmt][0], subtype or FORMATS[fmt][1]
    path = Path(path).with_suffix("." + fmt)
    clipped = np.asarray(audio, dtype=np.float32)
    clipped = clipped if subtype == "FLOAT" else np.clip(clipped, -1.0, 1.0)
    # libsndfile maps a compression level linearly onto MPEG-1's 320…32 kbps for a constant bitrate.
    mp3 = {"compression_level": (320 - MP3_KBPS) / (320 - 32), "bitrate_mode": "CONSTANT"} if fmt == "mp3" else {}
    with sf.SoundFile(str(path), "w", rate, clipped.shape[0], subtype, format=container, **mp3) as f:
        if fmt != "mp3":
            for name, value in (tags or {}).items():
                setattr(f, name, value)
        f.write(clipped.T)
    if fmt == "mp3" and tags:
        tag_mp3(path, tags)
    return path


def save_preview(audio: np.ndarray, path: str | Path, tags: dict[str, str] | None = None) -> Path:
    """The page's MP3 preview of ``[channels, samples]`` audio: ``PREVIEW_KBPS`` constant bitrate,
    tagged as ``save`` tags. Encoded by LAME through lameenc, at 1.1–1.3 CPU s a minute of audio against
    3.4 s for libsndfile's MP3 writer on the test machine: every WAV or FLAC take gets one before its
    visitor hears it. lameenc writes no LAME header (libsndfile's, which a take's own MP3 keeps, lets
    decoders drop the encoder's delay), so a preview plays 1,105 samples (23 ms) late and decodes
    1,152–2,303 samples longer than the take (under two MPEG frames): what a player shows, not what
    is downloaded."""
    import lameenc

    path = Path(path)
    pcm = np.asarray(audio, dtype=np.float32)
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(PREVIEW_KBPS)
    encoder.set_in_sample_rate(SAMPLE_RATE)
    encoder.set_channels(pcm.shape[0])
    encoder.set_quality(PREVIEW_QUALITY)
    with open(path, "wb") as out:
        for start in range(0, pcm.shape[-1], _PREVIEW_CHUNK):
            chunk = np.clip(pcm[:, start : start + _PREVIEW_CHUNK], -1.0, 1.0).T
            out.write(encoder.encode(np.round(chunk * 32767).astype("<i2").tobytes()))
        out.write(encoder.flush())
    if tags:
        tag_mp3(path, tags, encoder="LAME via lameenc")
    return path


def tag_mp3(path: Path, tags: dict[str, str], encoder: str = "LAME via libsndfile") -> None:
    """ID3v2.3 (what most players read, text in UTF-16) with title, artist, comment and encoder."""
    from mutagen.id3 import COMM, ID3, TIT2, TPE1, TSSE

    id3 = ID3()
    if tags.get("title"):
        id3.add(TIT2(encoding=1, text=tags["title"]))
    if tags.get("artist"):
        id3.add(TPE1(encoding=1, text=tags["artist"]))
    if tags.get("comment"):
        id3.add(COMM(encoding=1, lang="eng", desc="", text=tags["comment"]))
    id3.add(TSSE(encoding=1, text=f"{STUDIO} ({encoder})"))
    id3.save(str(path), v2_version=3)


def peaks(song: np.ndarray, buckets: int) -> list[float]:
    """Loudest sample of each of ``buckets`` equal stretches of ``[channels, samples]`` audio, 0–1
    (of the loudest), read a stretch at a time: a ten-minute take never gets a whole-length copy."""
    edges = np.linspace(0, song.shape[-1], buckets + 1).astype(int)
    values = np.array(
        [float(np.abs(song[..., a:b]).max(initial=0.0)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    )
    top = float(values.max(initial=0.0)) or 1.0
    return [round(float(v) / top, 3) for v in values]


def clock(seconds: float) -> str:
    """A length as a player shows it: ``3:45``."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}"


def finite_seconds(value: Any) -> float:
    """A time a page's or a record's JSON gives (seconds) as a finite number; 0.0 where it is none."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if np.isfinite(number) else 0.0


def seconds(audio: np.ndarray) -> float:
    return audio.shape[-1] / SAMPLE_RATE


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def fit(audio: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``[channels, samples]`` to exactly ``n`` samples."""
    if audio.shape[-1] >= n:
        return audio[..., :n]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, n - audio.shape[-1])]
    return np.pad(audio, pad)


def gain_match(generated: np.ndarray, generated_ref: np.ndarray, original_ref: np.ndarray) -> np.ndarray:
    """Scale ``generated`` so its rendition of the kept audio is as loud (RMS) as the original.

    The pipeline normalises every output to -1 dBFS peak; without this a quiet source would jump
    in level where the new material starts. ``generated_ref`` and ``original_ref`` are the same
    stretch of time in the generated clip and in the source.
    """
    g, r = rms(generated_ref), rms(original_ref)
    if g < 1e-9 or r < 1e-9:
        return generated
    return (generated * (r / g)).astype(np.float32)


def equal_power_fade(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fade-out and fade-in curves of ``n`` samples whose powers sum to one."""
    t = (np.arange(n, dtype=np.float64) + 0.5) / max(n, 1)
    return np.cos(t * np.pi / 2).astype(np.float32), np.sin(t * np.pi / 2).astype(np.float32)


def splice(original: np.ndarray, new: np.ndarray, start: int, end: int, fade: int) -> np.ndarray:
    """``original`` outside ``[start, end)``, ``new`` inside, with equal-power crossfades inside.

    The crossfades lie within the region, so every sample outside it is the original sample.
    ``new`` covers at least ``[0, end)``; ``original`` may end before ``end`` (an extension), in
    which case only the head seam is faded.
    """
    n_orig = original.shape[-1]
    out = np.zeros((original.shape[0], max(n_orig, end)), dtype=np.float32)
    out[:, :n_orig] = original
    out[:, start:end] = new[:, start:end]
    tail = end < n_orig
    width = end - start
    head_fade = min(fade, n_orig - start, width // 2 if tail else width) if start > 0 else 0
    if head_fade > 0:
        fo, fi = equal_power_fade(head_fade)
        seg = slice(start, start + head_fade)
        out[:, seg] = original[:, seg] * fo + new[:, seg] * fi
    tail_fade = min(fade, width // 2) if tail else 0
    if tail_fade > 0:
        fo, fi = equal_power_fade(tail_fade)
        seg = slice(end - tail_fade, end)
        out[:, seg] = new[:, seg] * fo + original[:, seg] * fi
    return out


# ---------------------------------------------------------------- the pipeline's latent frames

# Samples per latent frame (VAE hop): sources are padded to whole frames before encoding.
HOP = 1920
LATENT_RATE = SAMPLE_RATE // HOP  # latent frames per second: 25


def good_frames(frames: int) -> int:
    """The first latent frame count from ``frames`` up that the pipeline computes back exactly.

    diffusers converts a frame count into seconds and back (``ceil(seconds × 25)``); for about 6 % of
    counts (7, 14, 28, …, 411, 415, …) float rounding adds a frame, which then no longer matches
    the source's latents and the call fails. Padding a frame or two more avoids them.
    """
    while math.ceil((frames / LATENT_RATE) * LATENT_RATE) != frames:
        frames += 1
    return frames


def blueprint_codes(seconds: float) -> int:
    """How many planner codes (five a second, five latent frames each) cover ``seconds``: the
    first count from there whose frames the pipeline computes back exactly (``good_frames``)."""
    codes, per_code = math.ceil(round(seconds * CODES_PER_SECOND, 6)), LATENT_RATE // CODES_PER_SECOND
    while good_frames(per_code * codes) != per_code * codes:
        codes += 1
    return codes
