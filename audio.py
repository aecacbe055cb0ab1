"""Audio in and out: any upload to float32 48 kHz stereo, files in WAV/FLAC/MP3, seams and gain.

Arrays are ``[channels, samples]`` float32 throughout, the layout the pipeline uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 48000
MAX_SECONDS = 600.0
FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_24"), "mp3": ("MP3", "MPEG_LAYER_III")}
# Peak below which a file is treated as silent (about -80 dBFS).
SILENCE_PEAK = 1e-4


class AudioError(ValueError):
    """An upload or a requested length the studio cannot work with; the message is for the musician."""


def load(path: str | Path | None, what: str = "song", max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Read an upload as float32 ``[2, samples]`` at 48 kHz.

    Mono is duplicated to both sides; more than two channels are mixed down to stereo.
    """
    import soundfile as sf

    if path is None or str(path).strip() == "":
        raise AudioError(f"Please upload a {what} first.")
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"The {what} file could not be found; please upload it again.")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for unreadable input
        raise AudioError(
            f"The {what} ({path.name}) is not an audio file the studio can read, or it is damaged. "
            "Try WAV, FLAC, OGG or MP3."
        ) from exc
    if data.shape[0] == 0:
        raise AudioError(f"The {what} ({path.name}) is empty.")
    seconds = data.shape[0] / rate
    if seconds > max_seconds:
        raise AudioError(
            f"The {what} is {seconds / 60:.1f} minutes long; the studio takes up to {max_seconds / 60:.0f} minutes. "
            "Trim it and upload again."
        )
    if not np.isfinite(data).all():
        raise AudioError(f"The {what} ({path.name}) contains damaged samples.")
    if float(np.abs(data).max()) < SILENCE_PEAK:
        raise AudioError(f"The {what} ({path.name}) is silent.")
    return to_stereo_48k(data.T, rate)


def to_stereo_48k(audio: np.ndarray, rate: int) -> np.ndarray:
    """``[channels, samples]`` at any rate to float32 stereo at 48 kHz (soxr for resampling)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    elif audio.shape[0] > 2:
        audio = _downmix(audio)
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
