"""An Edit's or Extend's take at its source's own rate: outside the new part, the upload's own samples.

The model reads and makes 48 kHz stereo (``audio``): an upload at any other rate is resampled for it, and a
take written at 48 kHz would keep the upload only as resampled (a mastered 44.1 kHz song's inter-sample
overs then clip in a 16-bit file). So an Edit's or Extend's take is written at the upload's own sample rate,
in stereo (a mono upload in both channels; more channels mixed down as ``audio`` reads them), and outside
its new part it is the upload's samples as decoded, bit for bit (``finish``): the new part, made at 48 kHz
and gain-matched there (``modes``), is resampled to the upload's rate (soxr, as uploads are read), held
under the ceiling by the limiter (the new part alone: no gain, loudness target or limiter touches the kept
part) and crossfaded in at the seams, inside the new part. Where that crossfade of a full-scale song and
the new part would exceed full scale, the fade is turned down there by a smooth dip (``_held_in``), never
the kept part. The fades a visitor asks for still fade the whole take.

The file holds the kept samples exactly where its format can (``subtype``): WAV at the upload's own bit
depth (16- or 24-bit PCM) or 32-bit float (a float, 32-bit or compressed upload: its samples as decoded,
overs above full scale kept), FLAC at 16 or 24 bits (a float or compressed upload rounded to 24 bits, not
exact); MP3 encodes the whole take again, at 48 kHz as every MP3 take. The map, the player's waveform and
preview and the take's latents read the finished take resampled back to 48 kHz (``finish``'s first): what
the model made and what a later Edit of the take reads (``uploads``, ``take_latents``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import audio
import mastering
import messages
import uploads

# What the new part is limited over beyond its own samples: the limiter's hold and look-ahead, and more,
# so its gain is steady where the part begins (what lies beyond is the kept part's, and not used).
MARGIN_S = 0.1
# Sample formats WAV and FLAC hold exactly (soundfile's names), and the bytes a sample of each takes.
_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "FLOAT": 4}


@dataclass(frozen=True)
class Kept:
    """An Edit's or Extend's source as its take keeps it: the upload (``path``), its own ``rate`` and sample
    format (``stored``), where the new part lies (seconds: ``start`` to ``end``; None: the take's end, an
    Extend adding ``added`` seconds), the seam's crossfade (``seam``, seconds) and ``matched``, the 48 kHz
    take gain-matched to the source (``modes``)."""

    path: str
    rate: int
    stored: str
    start: float
    end: float | None
    matched: Callable[[np.ndarray], np.ndarray]
    added: float = 0.0
    seam: float = 0.05
    # An Extend before the song or from a point in it: where its song and new part lie (``extend_where.Layout``,
    # in seconds: laid out at the source's own rate); None: at the end (``start`` the seam, ``added`` after it).
    layout: Any = None

    def subtype(self, fmt: str) -> str | None:
        """The take's file's sample format (soundfile's) for ``fmt``: the one that holds the upload's samples
        exactly where one does; None for MP3 (its own)."""
        narrow = self.stored in ("PCM_S8", "PCM_U8", "PCM_16")
        if fmt == "wav":
            return "PCM_16" if narrow else self.stored if self.stored == "PCM_24" else "FLOAT"
        if fmt == "flac":
            return "PCM_16" if narrow else "PCM_24"
        return None

    def exact(self, fmt: str) -> bool:
        """Whether a ``fmt`` file holds the upload's samples exactly (a float upload's FLAC does not)."""
        kind, pcm = self.subtype(fmt), self.stored in _BYTES and self.stored != "FLOAT"
        return kind is not None and (kind == "FLOAT" or (pcm and _BYTES[kind] >= _BYTES[self.stored]))

    def bytes_per_second(self, fmt: str) -> int:
        """What a second of the take's ``fmt`` file takes (0: MP3, at its own bit rate)."""
        kind = self.subtype(fmt)
        return 0 if kind is None else self.rate * 2 * _BYTES[kind]

    def said(self, fmt: str) -> str:
        """The record's message: where the take's samples come from."""
        rate = f"{self.rate / 1000:g} kHz"
        if fmt == "mp3":
            return messages.KEPT_MP3.format(rate=rate)
        exact = self.exact(fmt)
        how = (
            messages.KEPT_EXACT
            if exact
            else messages.KEPT_ROUNDED.format(subtype=self.subtype(fmt), stored=self.stored)
        )
        return messages.KEPT_SAMPLES.format(rate=rate, how=how)


def of(
    path: Any,
    start: float,
    end: float | None,
    matched: Callable,
    added: float = 0.0,
    seam: float = 0.05,
    layout: Any = None,
) -> Kept:
    """The ``Kept`` of an Edit (``start`` to ``end``) or Extend (``end`` None, ``added`` seconds; ``layout``: before
    the song or from a point, ``extend_where.Layout``) of ``path``."""
    header = audio.probe(path)
    return Kept(str(path), header.rate, header.subtype, start, end, matched, added, seam, layout)


def finish(kept: Kept, made: np.ndarray, how: mastering.Finish) -> tuple[np.ndarray, dict[str, Any], np.ndarray]:
    """A take as the model ``made`` it (48 kHz) finished at its source's own rate: (it resampled to 48 kHz
    for the map, the player and the latents, its record entry, the take at its source's rate)."""
    import soxr

    source = uploads.own_samples(kept.path)
    rate, n = kept.rate, source.shape[-1]
    total = n + int(round(kept.added * rate))
    fade = int(kept.seam * rate)
    a = max(0, n - fade) if kept.end is None else int(round(kept.start * rate))
    b = total if kept.end is None else min(n, int(round(kept.end * rate)))
    if kept.layout is not None:  # the song laid out as the take lays it: after an intro, or up to a point
        source, a, b = kept.layout.laid(source, rate, fade)
        total = max(b, source.shape[-1])
    new = np.asarray(kept.matched(made), dtype=np.float32)
    if rate != audio.SAMPLE_RATE:
        new = np.ascontiguousarray(soxr.resample(new.T, audio.SAMPLE_RATE, rate, quality="VHQ").T)
    new, cut = _limited(audio.fit(new, total), a, b, how.ceiling, rate)
    take = _held_in(audio.splice(source, new, a, b, fade), source, a, b, fade)
    take, fade_in, fade_out = mastering.fade(take, how.fade_in, how.fade_out, rate)
    info = {
        "fade_in": fade_in,
        "fade_out": fade_out,
        "ceiling_dbtp": how.ceiling,
        "loudness": messages.FINISH_MATCHED,
        "limited_db": cut,
        "true_peak_dbtp": round(mastering.true_peak_db(take), 2),
    }
    studio = take
    if rate != audio.SAMPLE_RATE:
        studio = np.ascontiguousarray(soxr.resample(take.T, rate, audio.SAMPLE_RATE, quality="VHQ").T)
    return studio.astype(np.float32, copy=False), info, take


def _limited(new: np.ndarray, a: int, b: int, ceiling: float, rate: int) -> tuple[np.ndarray, float]:
    """The new part ``[a, b)`` of ``new`` with its true peaks under ``ceiling`` dBTP (``mastering.limit`` over
    it and ``MARGIN_S`` either side, which the splice drops); the deepest cut in dB."""
    margin = int(MARGIN_S * rate)
    lo, hi = max(0, a - margin), min(new.shape[-1], b + margin)
    part, cut, _ = mastering.limit(np.ascontiguousarray(new[:, lo:hi]), ceiling)
    out = np.array(new, dtype=np.float32, copy=True)
    out[:, lo:hi] = part
    return out, cut


def _held_in(take: np.ndarray, source: np.ndarray, a: int, b: int, fade: int) -> np.ndarray:
    """``take`` with each seam's crossfade (the first and last ``fade`` samples of ``[a, b)``, as ``audio.splice``
    lays them) no louder than full scale, or than the kept part's own peak there where it exceeds it (a float
    upload's overs): where the blend would exceed it, that crossfade is turned down by a smooth dip, 1 at both
    its ends and deepest where it must be; the kept part, and the new part past the crossfade, untouched."""
    n = source.shape[-1]
    zones = [(a, min(a + fade, b, n))] if a > 0 else []
    if b < n:
        zones.append((max(a, b - fade), b))
    for lo, hi in zones:
        if hi <= lo:
            continue
        most = max(1.0, float(np.abs(source[:, lo:hi]).max(initial=0.0)))
        level = np.abs(take[:, lo:hi]).max(axis=0)
        if float(level.max(initial=0.0)) <= most:
            continue
        window = np.sin(np.pi * (np.arange(hi - lo) + 0.5) / (hi - lo))
        need = np.minimum(1.0, most / np.maximum(level, 1e-12))
        depth = min(1.0, float(((1.0 - need) / window).max()))
        take[:, lo:hi] *= (1.0 - depth * window).astype(np.float32)
    return take


@dataclass(frozen=True)
class Written:
    """What ``takes`` writes of an Edit's or Extend's takes: the record's message (``said``), and the takes at
    the source's rate in the sample format that keeps it (``takes``: None where the 48 kHz takes are written)."""

    said: dict[str, Any]
    takes: list[np.ndarray] | None = None
    rate: int = audio.SAMPLE_RATE
    subtype: str | None = None


def written(kept: Kept, takes: list[np.ndarray], fmt: str) -> Written:
    """What ``takes`` writes of an Edit's or Extend's takes (``run_result.Finished.at_source_rate``): at the
    source's rate, in the sample format that keeps it (WAV, FLAC), with the record's message; MP3 writes the
    48 kHz takes."""
    if fmt == "mp3":
        return Written(kept.said(fmt))
    return Written(kept.said(fmt), takes, kept.rate, kept.subtype(fmt))
