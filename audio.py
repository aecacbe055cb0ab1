"""Audio in and out: any upload to float32 48 kHz stereo, files in WAV/FLAC/MP3, seams and gain.

Arrays are ``[channels, samples]`` float32 throughout, the layout the pipeline uses.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

SAMPLE_RATE = 48000
MAX_SECONDS = 600.0
FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_24"), "mp3": ("MP3", "MPEG_LAYER_III")}
# Peak below which a file is treated as silent (about -80 dBFS).
SILENCE_PEAK = 1e-4


class AudioError(ValueError):
    """An upload or a requested length the studio cannot work with; the message is for the musician."""


# Beyond these a file is not a song the studio can use (and would only cost memory to decode).
MAX_CHANNELS = 16
MAX_RATE = 384_000
# Decoding reads about this much of the source at a time, so a file that decodes to far more than
# its size suggests never lands in memory whole.
BLOCK_SECONDS = 2.0


def load(path: str | Path | None, what: str = "song", max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Read an upload as float32 ``[2, samples]`` at 48 kHz.

    Length, channels and rate are checked from the header before any audio is decoded; then the
    file is decoded, mixed to stereo and resampled block by block, so memory stays within about
    twice the 48 kHz stereo result (the pieces and their final join; at most ~460 MB for 10
    minutes) plus one block, whatever the file claims.
    Mono is duplicated to both sides; more than two channels are mixed down to stereo.
    """
    import soundfile as sf

    if path is None or str(path).strip() == "":
        raise AudioError(f"Please upload a {what} first.")
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"The {what} file could not be found; please upload it again.")
    unreadable = AudioError(
        f"The {what} ({path.name}) is not an audio file the studio can read, or it is damaged. "
        "Try WAV, FLAC, OGG or MP3."
    )
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for unreadable input
        raise unreadable from exc
    rate, channels = int(info.samplerate), int(info.channels)
    if not 0 < channels <= MAX_CHANNELS:
        raise AudioError(
            f"The {what} ({path.name}) has {channels} channels; the studio takes up to {MAX_CHANNELS} "
            "(mono, stereo or surround)."
        )
    if not 0 < rate <= MAX_RATE:
        raise AudioError(f"The {what} ({path.name}) has a sample rate of {rate} Hz, which the studio cannot use.")
    too_long = AudioError(
        f"The {what} is {{minutes:.1f}} minutes long; the studio takes up to {max_seconds / 60:.0f} minutes. "
        "Trim it and upload again."
    )
    if info.frames > 0 and info.frames / rate > max_seconds:
        raise AudioError(str(too_long).format(minutes=info.frames / rate / 60))
    try:
        return _decode(path, rate, max_seconds, what, too_long)
    except AudioError:
        raise
    except Exception as exc:
        raise unreadable from exc


def _decode(path: Path, rate: int, max_seconds: float, what: str, too_long: AudioError) -> np.ndarray:
    import soundfile as sf
    import soxr

    stream = soxr.ResampleStream(rate, SAMPLE_RATE, 2, dtype="float32", quality="VHQ") if rate != SAMPLE_RATE else None
    pieces: list[np.ndarray] = []
    frames, peak = 0, 0.0
    limit = int(max_seconds * rate) + 1
    with sf.SoundFile(str(path)) as f:
        for block in f.blocks(blocksize=max(1024, int(BLOCK_SECONDS * rate)), dtype="float32", always_2d=True):
            frames += block.shape[0]
            if frames > limit:  # the header under-stated the length
                raise AudioError(str(too_long).format(minutes=frames / rate / 60))
            if not np.isfinite(block).all():
                raise AudioError(f"The {what} ({path.name}) contains damaged samples.")
            peak = max(peak, float(np.abs(block).max(initial=0.0)))
            stereo = _stereo(block.T)
            pieces.append(stereo if stream is None else stream.resample_chunk(stereo.T, last=False).T)
    if frames == 0:
        raise AudioError(f"The {what} ({path.name}) is empty.")
    if peak < SILENCE_PEAK:
        raise AudioError(f"The {what} ({path.name}) is silent.")
    if stream is not None:
        pieces.append(stream.resample_chunk(np.zeros((0, 2), dtype=np.float32), last=True).T)
    return np.ascontiguousarray(np.concatenate(pieces, axis=1), dtype=np.float32)


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


def save(audio: np.ndarray, path: str | Path, fmt: str = "wav") -> Path:
    """Write ``[channels, samples]`` float audio at 48 kHz; the suffix follows ``fmt``."""
    import soundfile as sf

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise AudioError(f"Unknown output format {fmt!r}; choose WAV, FLAC or MP3.")
    container, subtype = FORMATS[fmt]
    path = Path(path).with_suffix("." + fmt)
    clipped = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    sf.write(str(path), clipped.T, SAMPLE_RATE, format=container, subtype=subtype)
    return path


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
LATENT_RATE = 25  # latent frames per second (48 kHz / HOP)


def good_frames(frames: int) -> int:
    """The first latent frame count from ``frames`` up that the pipeline computes back exactly.

    diffusers turns a frame count into seconds and back (``ceil(seconds × 25)``); for about 6 % of
    counts (7, 14, 28, …, 411, 415, …) float rounding adds a frame, which then no longer matches
    the source's latents and the call fails. Padding a frame or two more avoids them.
    """
    while math.ceil((frames / LATENT_RATE) * LATENT_RATE) != frames:
        frames += 1
    return frames


def blueprint_codes(seconds: float) -> int:
    """How many planner codes (five a second, five latent frames each) cover ``seconds``: the
    first count from there whose frames the pipeline computes back exactly (``good_frames``)."""
    codes = math.ceil(round(seconds * 5, 6))
    while good_frames(5 * codes) != 5 * codes:
        codes += 1
    return codes
