"""A finished take: fades, loudness and a true-peak ceiling, on the CPU after the render.

The model renders every take peak-normalised to -1 dBFS, so its loudness depends on the music
(a dense rock take and a sparse piano take come out 10 LU apart). A finished take is brought to a
target integrated loudness (ITU-R BS.1770 as pyloudnorm measures it; -14 LUFS by default, where
streaming services play music) under a true-peak ceiling (-1 dBTP, measured on the signal
oversampled 4x, as BS.1770's annex does, by the filter scipy's ``resample_poly`` designs: it passes
everything up to the old Nyquist, so it finds the peaks a gentler filter (soxr's, 0.14 dB lower on a
limited take) misses; run as one matrix product, ``_polyphase``), with optional fades first.

Raising a take's loudness can push its peaks over the ceiling. A plain gain cannot then meet both
numbers, so a look-ahead peak limiter takes the few peaks down: per sample, the gain that keeps the
oversampled peak under the ceiling; the smallest of those over the next ``LOOKAHEAD_S`` and the last
``HOLD_S``; averaged over the look-ahead, so the gain has reached its value when the peak arrives and
never steps (no clicks). Loudness is measured again after limiting and the gain corrected, a few
rounds at most. pedalboard's Limiter (JUCE) was considered: it limits sample peaks, not true peaks,
compresses everything above -10 dBFS 4:1 in its first stage, and adds a make-up gain to 0 dBFS.

Edit and Extend keep their promise instead: outside the new part the result is the source, sample
for sample, so there is no loudness target; the new material is already matched to the source
(``audio.gain_match``) and only its peaks are held under the ceiling, before it is spliced in at the
source's own rate (``untouched``).

A loop (``Finish.cycle``, ``loops``) plays round and round: it has no fades, and its loudness and limiter
read it padded with itself (``cycled``), so the gain at its end already sees the peaks at its start.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

import audio
import messages

CEILING_DBTP = -1.0
DEFAULT_LUFS = -14.0
# Below this a take is silence or near it: raising it to -14 LUFS would make hiss music-loud
# noise, so it is left as rendered and its record says so.
QUIET_LUFS = -50.0
# The most a take is raised before limiting: a very quiet take reaches what it can without its
# noise floor becoming the song. What the limiter then takes back may be made up by at most
# ``MAKEUP_DB`` more: past that the take would be limited into a different sound.
MAX_BOOST_DB = 20.0
MAKEUP_DB = 6.0
TOLERANCE_LU = 0.2
# 4x oversamplers disagree on a hard-limited take's true peak by up to 0.15 dB (scipy's Kaiser
# filters against soxr's, measured on tests/test_finish.py's songs): the limiter aims this far
# under the ceiling, so any of them reads the take at or under it.
TP_MARGIN_DB = 0.2
ROUNDS = 4
LOOKAHEAD_S = 0.005
HOLD_S = 0.05
OVERSAMPLE = 4
# Oversampled in blocks, with context either side, so a 10-minute take never sits four times over
# in memory.
_BLOCK = audio.SAMPLE_RATE * 10
_CONTEXT = 64
# Samples taken together in ``_between_samples``' product: 16 measured fastest.
_GROUP = 16
# A loop is finished on itself padded with this much of itself each side (``cycled``): far more than the
# limiter's look-ahead and hold and the oversampler's context, and enough for loudness's 400 ms blocks.
CYCLE_PAD_S = 2.0


@dataclass(frozen=True)
class Finish:
    """What the visitor asked of the finish: a loudness target (None: the raw render's loudness)
    and fades, in seconds."""

    lufs: float | None = DEFAULT_LUFS
    fade_in: float = 0.0
    fade_out: float = 0.0
    ceiling: float = CEILING_DBTP
    # A loop: played round and round, so its loudness and limiter see it as a cycle (``finish``).
    cycle: bool = False


def loudness(x: np.ndarray) -> float:
    """Integrated loudness of ``[2, samples]`` in LUFS (-inf for silence or a take under 0.4 s)."""
    import pyloudnorm

    if x.shape[-1] < int(0.4 * audio.SAMPLE_RATE):
        return -math.inf
    return float(pyloudnorm.Meter(audio.SAMPLE_RATE).integrated_loudness(np.ascontiguousarray(x.T, dtype=np.float64)))


def peak_envelope(x: np.ndarray) -> np.ndarray:
    """Per sample, the largest magnitude of any channel oversampled ``OVERSAMPLE`` times between it and
    the next sample (the true peak there), as float32."""
    n = x.shape[-1]
    centre = _polyphase()[0]
    # Element-wise maxima of strided views: numpy's reduction along a short axis loops per row
    # (11 s of a 17 s finish for 30 s of audio). Phase 0 is the samples themselves, times its one tap.
    out = functools.reduce(np.maximum, (np.abs(channel) for channel in x)).astype(np.float32, copy=False)
    out *= np.float32(centre)
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        lo, hi = max(0, start - _CONTEXT), min(n, stop + _CONTEXT)
        between = _between_samples(np.asarray(x[:, lo:hi], dtype=np.float32))
        np.maximum(out[start:stop], between[start - lo : stop - lo], out=out[start:stop])
    return out


@functools.cache
def _polyphase() -> tuple[float, np.ndarray, int]:
    """scipy's ``resample_poly(x, OVERSAMPLE, 1)`` as one matrix product: its filter (``firwin``, Kaiser β 5,
    cut at the old Nyquist, as resample_poly designs it) split into the phases between samples, laid out for
    ``_between_samples``. Returns phase 0's one tap (the samples themselves: its other taps fall on the
    filter's zeros), the matrix and how many groups of zeros go before the signal.

    Output phase ``p`` of sample ``n`` is ``sum(h[half + t] * x[n + (p - t) / OVERSAMPLE])`` over the
    ``t = p (mod OVERSAMPLE)``. scipy's ``upfirdn`` sums that one sample at a time (46 ms of CPU for 10 s
    of stereo); ``_GROUP`` samples at once, with what reaches them either side, times this matrix takes 8 ms
    (one thread), the same to float32's last bits (tests/test_finish.py), and the finish measures every take
    two or three times. In numpy, not torch: the finish runs in the studio's own process, from which ZeroGPU
    forks a worker for every GPU call, and a worker forked after torch's OpenMP threads ran hangs on its own."""
    from scipy.signal import firwin

    half, between = 10 * OVERSAMPLE, OVERSAMPLE - 1
    h = firwin(2 * half + 1, 1.0 / OVERSAMPLE, window=("kaiser", 5.0)) * OVERSAMPLE
    taps = [
        (p, (p - t) // OVERSAMPLE, h[half + t])
        for p in range(1, OVERSAMPLE)
        for t in range(-half, half + 1)
        if (t - p) % OVERSAMPLE == 0
    ]
    before = -(-max(abs(d) for _, d, _ in taps) // _GROUP)  # the groups it reaches either side
    width = 2 * before + 1
    # Rows: the window's samples, group by group; columns: each phase's ``_GROUP`` samples together.
    matrix = np.zeros((width * _GROUP, between * _GROUP), np.float32)
    for pos in range(_GROUP):
        for p, d, c in taps:
            matrix[before * _GROUP + pos + d, (p - 1) * _GROUP + pos] = c
    return float(h[half]), matrix, before


def _between_samples(x: np.ndarray) -> np.ndarray:
    """Per sample of ``[channels, samples]`` float32 audio, the largest magnitude of any channel at the
    points oversampling puts between it and the next (zeros beyond its ends, as scipy's resample_poly
    reads it): each ``_GROUP`` samples with the groups either side (a window) times ``_polyphase``'s matrix."""
    _, matrix, before = _polyphase()
    channels, n = x.shape
    groups, width = -(-n // _GROUP), matrix.shape[0] // _GROUP  # the window's groups
    padded = np.zeros((channels, (groups + width - 1) * _GROUP), np.float32)
    padded[:, before * _GROUP : before * _GROUP + n] = x
    best = np.zeros((groups, _GROUP), np.float32)
    for channel in padded:
        windows = np.lib.stride_tricks.sliding_window_view(channel.reshape(-1, _GROUP), width, axis=0)
        phases = np.abs(windows.transpose(0, 2, 1).reshape(groups, width * _GROUP) @ matrix)
        for k in range(OVERSAMPLE - 1):  # element-wise maxima of slices, not a reduction along a short axis
            np.maximum(best, phases[:, k * _GROUP : (k + 1) * _GROUP], out=best)
    return best.reshape(-1)[:n]


def true_peak_db(x: np.ndarray) -> float:
    return _peak_db(peak_envelope(x))


def _peak_db(envelope: np.ndarray) -> float:
    peak = float(envelope.max(initial=0.0))
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def limit(
    x: np.ndarray, ceiling_db: float, region: tuple[int, int] | None = None, envelope: np.ndarray | None = None
) -> tuple[np.ndarray, float, np.ndarray | None]:
    """``x`` with its true peaks under ``ceiling_db`` (only inside ``region``, samples, where given);
    returns it, the deepest gain reduction in dB (0.0: nothing needed) and, for a whole take, its
    ``peak_envelope``. ``envelope`` is ``x``'s where the caller has it: oversampling is most of a
    round's cost, and a plain gain scales the envelope without measuring it again."""
    from scipy.ndimage import minimum_filter1d

    ceiling = 10 ** ((ceiling_db - TP_MARGIN_DB) / 20)
    if envelope is None:
        envelope = peak_envelope(x)
    need = np.minimum(1.0, ceiling / np.maximum(envelope, 1e-12)).astype(np.float32)
    if region is not None:
        outside = np.ones_like(need, dtype=bool)
        outside[region[0] : region[1]] = False
        need[outside] = 1.0
    if float(need.min()) >= 1.0:
        return x, 0.0, envelope if region is None else None
    ahead, hold = int(LOOKAHEAD_S * audio.SAMPLE_RATE), int(HOLD_S * audio.SAMPLE_RATE)
    size = ahead + hold + 1
    # The smallest need over [i - hold, i + ahead]: a centred window over the need padded with ones.
    padded = np.concatenate([np.ones(hold, np.float32), need, np.ones(ahead, np.float32)])
    gain = minimum_filter1d(padded, size)[size // 2 : size // 2 + len(need)]
    # Averaged over the last ``ahead + 1`` samples: every one of them already sees the peak, so the
    # gain there is at most the peak's need, and it glides there instead of stepping.
    # By slices of the running sum, not index arrays (four 8-byte copies of a 10-minute take's length).
    sums = np.concatenate([[0.0], np.cumsum(gain, dtype=np.float64)])
    k = min(len(gain), ahead + 1)
    smooth = np.empty(len(gain), dtype=np.float32)
    smooth[:k] = sums[1 : k + 1] / np.arange(1, k + 1)
    smooth[k:] = (sums[k + 1 :] - sums[1 : len(gain) - k + 1]) / (ahead + 1)
    if region is not None:
        smooth[outside] = 1.0
    y = (x * smooth).astype(np.float32)
    # The gain's own glide can leave an inter-sample peak a hair over: trim the new part by it.
    after = peak_envelope(y if region is None else y[:, region[0] : region[1]])
    over = float(after.max(initial=0.0)) / ceiling
    if over > 1.0:
        if region is None:
            y = y / over
            after /= over  # its own array: scaled in place, not copied
        else:
            y[:, region[0] : region[1]] /= over
    cut = round(-20 * math.log10(max(float(smooth.min()) / max(over, 1.0), 1e-12)), 2)
    return y, cut, after if region is None else None


def fade(
    x: np.ndarray, fade_in: float, fade_out: float, rate: int = audio.SAMPLE_RATE
) -> tuple[np.ndarray, float, float]:
    """Raised-cosine fades (no click at either end, no audible corner); fades longer than the take
    together are shortened in proportion. Returns the take and the fades used, in seconds."""
    n = x.shape[-1]
    a, b = int(round(fade_in * rate)), int(round(fade_out * rate))
    if a + b > n:
        scale = n / (a + b)
        a, b = int(a * scale), int(b * scale)
    if a == 0 and b == 0:
        return x, 0.0, 0.0
    y = np.array(x, dtype=np.float32, copy=True)
    if a:
        y[:, :a] *= (0.5 - 0.5 * np.cos(np.pi * np.arange(a) / a)).astype(np.float32)
    if b:
        y[:, n - b :] *= (0.5 + 0.5 * np.cos(np.pi * (np.arange(b) + 1) / b)).astype(np.float32)
    return y, round(a / rate, 3), round(b / rate, 3)


def normalise(x: np.ndarray, target: float, ceiling_db: float = CEILING_DBTP) -> tuple[np.ndarray, dict[str, Any]]:
    """``x`` at ``target`` LUFS with true peaks under ``ceiling_db``; and what was done, for the record
    (with the take's true peak)."""
    before = loudness(x)
    if not math.isfinite(before) or before < QUIET_LUFS:
        return x, {
            "target_lufs": target,
            "before_lufs": _db(before),
            "after_lufs": _db(before),
            "gain_db": 0.0,
            "note": messages.FINISH_QUIET.format(lufs=QUIET_LUFS),
        }
    gain = min(target - before, MAX_BOOST_DB)
    y = (x * 10 ** (gain / 20)).astype(np.float32)
    # The take's own envelope, measured once: the gained take's is it scaled (the first round's limit),
    # and a take given back its limiting goes back to it (a third oversampling of the take, before).
    as_made = peak_envelope(x)
    envelope = as_made * np.float32(10 ** (gain / 20))
    now, reduced, total = before + gain, 0.0, gain
    last, applied = before, gain  # the loudness before this round's gain, and that gain
    given_back = False
    for round_ in range(ROUNDS):
        y, cut, envelope = limit(y, ceiling_db, envelope=envelope)
        reduced = max(reduced, cut)
        if cut == 0.0:
            break
        now = loudness(y)
        step = min(target - now, gain + MAKEUP_DB - total)
        if abs(target - now) <= TOLERANCE_LU or round_ == ROUNDS - 1 or step <= 0:
            break
        # What of this round's gain the limiter left: a take whose peaks are as dense as its body
        # (little crest) gives back nearly all of it, and more gain would only be limited harder
        # for no loudness (the tiny test models' takes: 9 dB more in three rounds for +0.01 LU).
        if applied > TOLERANCE_LU and (now - last) / applied * (target - now) < TOLERANCE_LU:
            given_back = True
            break
        y = (y * 10 ** (step / 20)).astype(np.float32)
        envelope *= np.float32(10 ** (step / 20))  # the last round's own array (a 10-minute take's is 115 MB)
        total += step
        last, applied = now, step
    if given_back:
        # Limiting that bought almost no loudness is not kept: the take as loud as it goes with none.
        unlimited = min(gain, ceiling_db - TP_MARGIN_DB - _peak_db(as_made))
        if now - (before + unlimited) < TOLERANCE_LU:
            y = (x * 10 ** (unlimited / 20)).astype(np.float32)
            envelope = as_made * np.float32(10 ** (unlimited / 20))
            now, total, reduced = before + unlimited, unlimited, 0.0
    info = {
        "target_lufs": target,
        "before_lufs": _db(before),
        "after_lufs": _db(now),
        "gain_db": round(total, 2),
        "limited_db": reduced,
        "true_peak_dbtp": _db(_peak_db(envelope)),
    }
    if target - before > MAX_BOOST_DB:
        info["note"] = messages.FINISH_MOST_BOOST.format(db=MAX_BOOST_DB)
    elif abs(now - target) > 0.5 and given_back:
        unlimited = messages.FINISH_UNLIMITED if reduced == 0 else ""
        info["note"] = messages.FINISH_DENSE.format(lufs=now, unlimited=unlimited)
    elif abs(now - target) > 0.5:
        info["note"] = messages.FINISH_TOO_DENSE.format(lufs=now, db=MAKEUP_DB)
    return y, info


def finish(x: np.ndarray, how: Finish, region: tuple[int, int] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """A take finished as ``how`` asks: fades, then loudness (a whole new take) or the ceiling over
    its new part (``region``, Edit and Extend); a loop as a cycle (``cycled``). Returns the take and its
    record entry."""
    if how.cycle:
        return cycled(x, dataclasses.replace(how, cycle=False))
    y, fade_in, fade_out = fade(x, how.fade_in, how.fade_out)
    info: dict[str, Any] = {"fade_in": fade_in, "fade_out": fade_out, "ceiling_dbtp": how.ceiling}
    if region is not None:
        y, cut, _ = limit(y, how.ceiling, region)
        info.update(loudness=messages.FINISH_MATCHED, limited_db=cut)
    elif how.lufs is None:
        info.update(loudness=messages.FINISH_OFF, lufs=_db(loudness(y)))
        info.pop("ceiling_dbtp")
    else:
        y, measured = normalise(y, how.lufs, how.ceiling)
        info.update(measured)
    if "true_peak_dbtp" not in info:
        info["true_peak_dbtp"] = _db(true_peak_db(y))
    return y, info


def cycled(x: np.ndarray, how: Finish) -> tuple[np.ndarray, dict[str, Any]]:
    """A loop finished as the cycle it is: measured and limited on itself padded with its own end before
    its start and its start after its end (up to ``CYCLE_PAD_S`` each side), so the limiter's gain
    runs on across the wrap as it does inside, and the loop kept from the middle; no fades."""
    n = x.shape[-1]
    pad = min(n, int(CYCLE_PAD_S * audio.SAMPLE_RATE))
    padded = np.concatenate([x[:, n - pad :], x, x[:, :pad]], axis=-1)
    y, info = finish(padded, dataclasses.replace(how, fade_in=0.0, fade_out=0.0))
    info["cycle"] = messages.FINISH_CYCLE.format(seconds=pad / audio.SAMPLE_RATE)
    return np.ascontiguousarray(y[:, pad : pad + n]), info


def _db(value: float) -> float | None:
    return round(value, 2) if math.isfinite(value) else None
