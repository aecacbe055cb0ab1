"""The beat a song is played on, as a musician counts it: its tempo (a fit over its beats, to 0.1 BPM), every
beat on its attack, how sure the reading is, and the other reading where the music allows two (a half-time
feel: "≈ 90 BPM, felt as 180"). On the CPU, from the song's audio alone: no model, no weights.

The tempo: the onset envelope's autocorrelation read through a comb (a pulse repeats at one, two, three and
four of its periods, so a reading at ⅔ or ¾ of the tempo, the lag grid's common errors, scores half or less)
on a fine grid of tempi, weighed by how often music is played near each (``CENTRE_BPM``, ``SPREAD_OCTAVES``).
The beats: librosa's
dynamic-programming tracker at that tempo (held loosely where the beats drift) over the full band's envelope
and the low band's (kicks and bass notes mark the beat; an off-beat hi-hat does not), then the half-beat check
(a groove whose off-beat hi-hats drew the tracker is still counted on its kicks), then each beat moved onto the
attack nearest it in a fine energy envelope (``FINE_SECONDS``), and the tempo fitted through them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import beat_line

RATE = 22050  # the analyses' rate: enough for beats, a quarter of the work of 48 kHz
HOP = 256  # the envelope's frames: 11.6 ms
N_FFT = 2048
# The envelope's spectrum is read this much at a time (its memory bounded, whatever the song's length).
BLOCK_SECONDS = 30.0
# The tempi a reading may take (the studio offers 30–300 BPM) and how often music is counted near each: a
# log-normal weight around ``CENTRE_BPM``, ``SPREAD_OCTAVES`` wide.
SLOWEST, FASTEST = 30.0, 300.0
CENTRE_BPM, SPREAD_OCTAVES = 120.0, 1.0
# The music is said both ways (``_felt_as``) where the pulse twice as fast sounds nearly as strongly as the
# beat (its autocorrelation at half the period ``FELT_FILLED`` of that at the period) and is still counted
# (``FASTEST_COUNTED`` BPM and under), or where the beat is far weaker than every other beat (a half-time feel).
FELT_FILLED = 0.9
FASTEST_COUNTED = 200.0
HALF_TIME = 0.5
# The low band (kicks, bass notes) beside the full band in the envelope the beats are tracked on.
LOW_HZ = 200.0
LOW_WEIGHT = 0.5
# The half-beat check (``_off_the_beat``): the beats move half a period where the low band there is this much
# stronger, whatever the full band says. Kicks under off-beat hi-hats (which have no low band) read 2.4–5.3 at
# 90–140 BPM; a bass on the off-beats shares the low band with the kick: 0.9–1.6 on the real set.
HALF_BEAT_MARGIN = 2.0
# How firmly the tracker holds the song's tempo as it goes (librosa's own: 100): a song is played on one grid,
# so it is held firmly (a loose tracker jumps to the off-beats where an intro has no kick), to the tempo read
# over ``LOCAL_SECONDS`` around each moment, within ``LOCAL_REACH`` of the whole's (a drift, a tempo change).
TIGHTNESS = 1600
# Where the beats so tracked drift (``beat_line.drifting``: their length changes by more than 8 % over the song),
# the tempo read over ``LOCAL_SECONDS`` around a moment may run ahead of the music (drascula-track26, 86 -> 105
# BPM: 99.4 over 22-26 s, its envelope repeating at 0.6 s there, and 104.5 from 26.5 s, where madmom's beats are
# 0.64 s apart until 27 s); held firmly to it, the tracker put one beat too many there (the tempo 99.1 for 96.0).
# So they are tracked again as loosely as librosa holds them by default: the beats follow the attacks as played.
DRIFT_TIGHTNESS = 100
LOCAL_SECONDS, LOCAL_REACH, LOCAL_SMOOTH = 8.0, 1.3, 5
LOCAL_BETTER = 1.2
# The fine envelope: energy in 5 ms frames every 1 ms, an attack where the next frames are louder than the
# last; a beat moves to the strongest attack within ``SEARCH_SECONDS`` (at most a sixth of a beat).
FINE_SECONDS = 0.001
ENERGY_SECONDS = 0.005
SEARCH_SECONDS = 0.06
# The tracker's common lag is read within this (at most a quarter of a beat: short of the eighth between beats).
LAG_SECONDS, LAG_SHARE = 0.1, 0.24
# A downbeat's accents: its loudness, the low band rising (the kick, a bass note), the harmony and the spectrum's
# shape changing (a snare's backbeat may be as loud as a downbeat in the full band): ``downbeat``, ``metre``.
ACCENT_LOW_HZ = 150.0
LOW_SECONDS = 0.08
# The accents ``accents`` returns, in order. The harmony decides the downbeat where its change leads on one beat
# of the bar by ``HARMONY_CLEAR`` standard deviations over any other and the low band leads there too (the band in
# 6/8: 1.5-2.4; the real set, where the two agree: 0.13-0.78, so there every accent weighs in by its lead).
ACCENTS = ("loudness", "low band", "harmony", "spectrum")
HARMONY_CLEAR = 1.0
# The chroma a harmony change is read from: averaged over a beat, so a coarse hop is enough (93 ms).
CHROMA_HOP = 2048
# Three beats a bar where the accents repeat every three beats this much more clearly than every four.
THREE_OVER_FOUR = 1.25
# How regular the onsets must be for a beat to be believed: the envelope's autocorrelation at the beat's
# period. Clicks and songs with a beat read 0.6–0.9; a held tone, silence or noise under 0.1.
CONFIDENCE = 0.25
# A BPM typed vouches for a beat the comb did not pick out of ~140 readings: beats played at it (within
# ``OCTAVE_REACH``) are believed at less, on them or every other one. Typed their references' tempo:
# drifting drascula-track26 0.138, hr3-rlyeh at 150 0.69 (0.12 at the beat alone); noise and a held tone
# typed 60-140 read 0.0, a high-passed random walk 0.08-0.09.
TOLD_CONFIDENCE = 0.12
# A tempo told vouches for such a beat only where the beats are played at it (the fit over them within
# ``TOLD_PCT`` % of it) and heard as beats: their attacks (the envelope's most within a beat's search reach,
# ``on_the_beat``) ``ON_BEAT`` times as strong on the beats as at the seven other eighths of a beat. Told their
# references' tempo, drascula-track26 reads 1.43 at +0.3 %, drascula-track13 1.43 at -0.7 %, the band drifting
# 75 -> 115 BPM under noise 1.71 at +1.8 %; noise under a random envelope told 60-180 BPM (100 tries, 20 and 30 s)
# whose beat the told confidence believed read at most 1.28, 3.2-10.5 % off the tempo told, and at most 1.42
# where it was not believed; a steady beat reads 1.7-64 (five excerpts of the real set, the band at 60 BPM).
TOLD_PCT = 3.0
ON_BEAT = 1.35
# A steady tone's envelope ripples by hundredths of a dB as regularly as a beat: an envelope whose spread is
# under this (dB) holds nothing that rises like a beat (the stand-in band at 30 BPM: 2-3 dB; a tone 0.02).
LEAST_ONSET_DB = 0.1


@dataclass(frozen=True)
class Beats:
    """A song's beats (seconds, ascending, on their attacks), its tempo as played (``bpm``, a least-squares
    line through them), how sure the reading is (``confidence``, 0–1: the autocorrelation at the beat) and
    the other reading where the music allows two (``felt_as``: the tempo an octave away, else None); ``told``:
    the tempo told vouches for them (played at it, within ``TOLD_PCT``, and heard on their attacks: ``ON_BEAT``),
    so they are believed at ``TOLD_CONFIDENCE``."""

    times: np.ndarray
    bpm: float
    confidence: float
    felt_as: float | None = None
    told: bool = False

    @property
    def heard(self) -> bool:
        return self.confidence >= (TOLD_CONFIDENCE if self.told else CONFIDENCE) and len(self.times) >= 4


def _mel_power(mono: np.ndarray, hop: int = HOP) -> np.ndarray:
    """The mel power spectrogram of ``mono`` (``N_FFT``, ``HOP``, 64 bands), its frames as librosa's centred ones,
    read ``BLOCK_SECONDS`` at a time: a 10-minute song's whole spectrum would hold 424 MB at once."""
    import librosa

    frames = 1 + len(mono) // hop
    padded = np.pad(mono, (N_FFT // 2, N_FFT // 2))
    block = int(BLOCK_SECONDS * RATE / hop)
    bank = librosa.filters.mel(sr=RATE, n_fft=N_FFT, n_mels=64)
    parts = []
    for first in range(0, frames, block):
        last = min(frames, first + block)
        piece = padded[first * hop : (last - 1) * hop + N_FFT]
        spectrum = np.abs(librosa.stft(piece, n_fft=N_FFT, hop_length=hop, center=False)) ** 2
        parts.append(bank @ spectrum)
    return np.concatenate(parts, axis=1) if parts else np.zeros((64, 0), dtype=np.float32)


def envelopes(mono: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The full band's and the low band's spectral flux (mel bands, log power, rises only), ``HOP`` frames of
    ``mono`` at ``RATE``."""
    import librosa

    power = _mel_power(mono)
    level = librosa.power_to_db(power, ref=float(power.max()) if power.size else 1.0)
    flux = np.maximum(0.0, np.diff(level, axis=1, prepend=level[:, :1]))
    low = librosa.mel_frequencies(n_mels=64, fmax=RATE / 2) < LOW_HZ
    return flux.mean(axis=0), flux[low].mean(axis=0)


def autocorrelation(envelope: np.ndarray) -> np.ndarray:
    """The envelope's autocorrelation (its mean taken off), 1 at lag 0."""
    wave = envelope - envelope.mean()
    spectrum = np.fft.rfft(wave, 2 * len(wave))
    found = np.fft.irfft(spectrum * np.conj(spectrum))[: len(wave)]
    return found / found[0] if found[0] > 1e-12 else found * 0.0


def _at(ac: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """The autocorrelation at fractional ``lags`` (frames), the best within a frame either side."""
    index = np.arange(len(ac))
    return np.maximum.reduce([np.interp(lags + d, index, ac, right=0.0) for d in (-1.0, -0.5, 0.0, 0.5, 1.0)])


def comb(ac: np.ndarray, bpms: np.ndarray) -> np.ndarray:
    """How strongly a pulse at each of ``bpms`` repeats: the autocorrelation at one to four of its periods."""
    period = 60.0 / bpms * RATE / HOP
    return sum(_at(ac, k * period) for k in (1, 2, 3, 4)) / 4.0


def _grid() -> np.ndarray:
    return np.exp(np.linspace(np.log(SLOWEST), np.log(FASTEST), 1200))


# A tempo read at a multiple of the one told (a take at half or double the BPM asked, upstream's #1325; a
# tracker's octave on a drum groove) is moved by the one of these factors that brings it within
# ``OCTAVE_REACH`` of the tempo told, and read again there; as read where none does (a take played far off).
OCTAVES = (1 / 3, 1 / 2, 2 / 3, 1.0, 3 / 2, 2.0, 3.0)
OCTAVE_REACH = 0.12
# Where a tempo is read again near another (an octave moved), within this share of it.
NEAR = 0.04


def octave(found: float, known: float | None) -> float:
    """``found`` moved by the factor of ``OCTAVES`` that brings it within ``OCTAVE_REACH`` of ``known``; as it
    is where nothing is known or no factor brings it that near."""
    if not known or not found > 0:
        return found
    factor = min(OCTAVES, key=lambda f: abs(np.log(found * f / known)))
    return found * factor if abs(np.log(found * factor / known)) <= np.log(1 + OCTAVE_REACH) else found


def tempo(ac: np.ndarray, known: float | None = None) -> tuple[float, float | None]:
    """The tempo the envelope's ``ac`` repeats at and the other octave's where the music allows both (else
    None); ``known``: the BPM told, toward which the reading's octave is moved (``octave``)."""
    bpms = _grid()
    scores = comb(ac, bpms)
    weight = np.exp(-0.5 * (np.log2(bpms / CENTRE_BPM) / SPREAD_OCTAVES) ** 2)
    best = _duple(ac, bpms, scores, float(bpms[np.argmax(scores * weight)]))
    moved = octave(best, known)
    if moved != best:
        near = np.abs(np.log(bpms / moved)) <= np.log(1 + NEAR)
        return float(bpms[near][np.argmax(scores[near])]), None
    return best, None if known else _felt_as(ac, best)


def _duple(ac: np.ndarray, bpms: np.ndarray, scores: np.ndarray, best: float) -> float:
    """``best``, or the reading half as fast again where ``best`` is the comb's ⅔ error: a pulse whose beat
    holds two of the tatum (a third of ``best``'s beat), read at three by the weight toward ``CENTRE_BPM``.
    Taken where the comb itself scores the faster reading higher and the envelope repeats at whole pairs of
    that tatum (2, 4, 8, 10) more than at its threes alone (3, 9): the beat grouped in twos, not threes."""
    near = np.abs(np.log(bpms / (best * 1.5))) <= np.log(1 + NEAR)
    if not near.any():
        return best
    faster = float(bpms[near][np.argmax(scores[near])])
    if scores[near].max() <= comb(ac, np.array([best]))[0]:
        return best
    tatum = 60.0 / best * RATE / HOP / 3
    twos, threes = _at(ac, tatum * np.array([2, 4, 8, 10])).mean(), _at(ac, tatum * np.array([3, 9])).mean()
    return faster if twos > threes else best


def _filled(ac: np.ndarray, bpm: float) -> float:
    """How strongly the pulse twice as fast as ``bpm`` sounds against ``bpm``'s own: its autocorrelation at
    half the period over that at the period."""
    period = 60.0 / bpm * RATE / HOP
    half, whole = _at(ac, np.array([period / 2, period]))
    return float(half / whole) if whole > 1e-9 else 0.0


def _felt_as(ac: np.ndarray, bpm: float) -> float | None:
    """The tempo an octave from ``bpm`` the music is felt in as well, else None: twice as fast where that
    pulse is nearly filled (``FELT_FILLED``), half as fast where every other beat is
    far stronger than the rest (a half-time feel)."""
    if bpm * 2 <= FASTEST_COUNTED * 1.01 and _filled(ac, bpm) >= FELT_FILLED:
        return bpm * 2
    if bpm / 2 >= SLOWEST and _filled(ac, bpm / 2) < HALF_TIME:
        return bpm / 2
    return None


def _salience(envelope: np.ndarray, times: np.ndarray) -> float:
    """The envelope's mean peak at ``times``: its most within two frames of each (a beat's attack may fall a
    frame from where the tracker's frames put it)."""
    frames = np.round(times * RATE / HOP).astype(int)
    near = np.clip(frames[:, None] + np.arange(-2, 3)[None, :], 0, len(envelope) - 1)
    return float(envelope[near].max(axis=1).mean()) if frames.size else 0.0


def _off_the_beat(full: np.ndarray, low: np.ndarray, times: np.ndarray, period: float) -> bool:
    """Whether ``times`` fall between the beats: the low band (kicks) and the full band both stronger half a
    period later, or the low band alone ``HALF_BEAT_MARGIN`` times as strong (kicks under off-beat hi-hats,
    which fill the full band's high bands and drew the tracker). The low band alone a little stronger is a bass
    played on the off-beats, the full band's attacks still on the beat; the harmony is not read (drums alone
    have none, and a song's chords may change an eighth before the beat)."""
    later = times + period / 2
    full_ratio, low_ratio = (_salience(e, later) / max(_salience(e, times), 1e-9) for e in (full, low))
    return (low_ratio > 1.0 and full_ratio > 1.0) or low_ratio > HALF_BEAT_MARGIN


def fine_onsets(mono: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per ``FINE_SECONDS``: its time, how much the energy of the next ``ENERGY_SECONDS`` rises over the last's
    (log ratio, floored at the song's quiet) and that energy: the attack a beat is moved onto."""
    hop, width = max(1, int(FINE_SECONDS * rate)), max(1, int(ENERGY_SECONDS * rate))
    # The first difference: a high pass, so a bass note's swell rises less than a drum's attack.
    power = np.concatenate([[0.0], np.diff(mono.astype(np.float64)) ** 2])
    total = np.concatenate([[0.0], np.cumsum(power)])
    # From the first sample, silence before the song: a song that starts on its downbeat has its attack at 0.
    starts = np.arange(0, len(mono) - width, hop)
    if not starts.size:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    ahead = total[starts + width] - total[starts]
    behind = total[starts] - total[np.maximum(starts - width, 0)]
    floor = max(float(np.percentile(ahead, 10)), 1e-12) + 1e-4 * float(ahead.max())
    return starts / rate, np.log((ahead + floor) / (behind + floor)), ahead


def refined(
    times: np.ndarray, frames: np.ndarray, rise: np.ndarray, period: float, reach: float | None = None
) -> np.ndarray:
    """Each of ``times`` (seconds) moved onto the strongest attack near it (``fine_onsets``' ``frames``), within
    ``reach`` (``SEARCH_SECONDS``, at most a sixth of a beat)."""
    reach = min(SEARCH_SECONDS, period / 6) if reach is None else reach
    lo = np.searchsorted(frames, times - reach)
    hi = np.searchsorted(frames, times + reach)
    return np.array(
        [frames[a + int(np.argmax(rise[a:b]))] if b > a else t for t, a, b in zip(times, lo, hi, strict=True)]
    )


def _lag(times: np.ndarray, frames: np.ndarray, rise: np.ndarray, period: float) -> float:
    """How far the attacks lie from the tracker's beats, as most beats have it (the median of each beat's
    nearest attack within ``LAG_SHARE`` of a beat, at most ``LAG_SECONDS``): the tracker's frames lag the
    attacks, past a sixth of a beat at 300 BPM (34 ms), where a beat's own search would find the hat."""
    if len(times) < 4:
        return 0.0
    reach = min(LAG_SECONDS, period * LAG_SHARE)
    return float(np.median(refined(times, frames, rise, period, reach) - times))


def fitted_bpm(times: np.ndarray) -> float:
    """60 over the slope of a least-squares line through beat time against beat index, to 0.1 BPM."""
    return round(60.0 / float(np.polyfit(np.arange(len(times)), times, 1)[0]), 1)


def _local_tempo(envelope: np.ndarray, bpm: float) -> tuple[np.ndarray, float]:
    """The tempo at each of the envelope's frames: the comb's best within ``LOCAL_REACH`` of ``bpm`` over
    ``LOCAL_SECONDS`` around it (every second, a median over ``LOCAL_SMOOTH`` of them): a song's drift and its
    tempo changes, at the octave of the whole; and how regular the beat is there (the median over the windows
    of the autocorrelation at each one's beat: a drifting song's beat, which the whole's smears)."""
    from scipy.ndimage import median_filter

    fps = RATE / HOP
    width, step = int(LOCAL_SECONDS * fps), int(fps)
    if len(envelope) <= width + step:
        return np.full(len(envelope), bpm), 0.0
    bpms = np.exp(np.linspace(np.log(bpm / LOCAL_REACH), np.log(bpm * LOCAL_REACH), 240))
    starts = np.arange(0, len(envelope) - width + 1, step)
    found, regular = [], []
    for a in starts:
        ac = autocorrelation(envelope[a : a + width])
        scores = comb(ac, bpms)
        best = bpms[np.argmax(scores)]
        # The whole's tempo unless this window clearly plays another (a change, not a window's ring-out).
        best = best if scores.max() > LOCAL_BETTER * comb(ac, np.array([bpm]))[0] else bpm
        found.append(best)
        regular.append(_at(ac, np.array([60.0 / best * RATE / HOP]))[0])
    tempi = median_filter(np.array(found), size=LOCAL_SMOOTH, mode="nearest")
    return np.interp(np.arange(len(envelope)), starts + width / 2, tempi), float(np.median(regular))


def _held(envelope: np.ndarray, bpm: float, tempi: np.ndarray, tightness: float = TIGHTNESS) -> np.ndarray:
    """The beats (seconds) librosa's dynamic-programming tracker finds, held firmly (``tightness``) to the
    song's tempo as it goes (``tempi``, ``_local_tempo``). The tracker counts a beat in whole frames, so the
    envelope is read again on frames a whole number of which make a beat at ``bpm`` (300 BPM is 17.2 of the
    envelope's own: held to 17, its beats would slip a frame every five)."""
    import librosa

    step = 60.0 / bpm / max(1, round(60.0 / bpm * RATE / HOP))
    at = np.arange(0.0, len(envelope) * HOP / RATE, step)
    frame_times = np.arange(len(envelope)) * HOP / RATE
    hop = step * RATE
    _, frames = librosa.beat.beat_track(
        onset_envelope=np.interp(at, frame_times, envelope),
        sr=RATE,
        hop_length=hop,
        bpm=np.interp(at, frame_times, tempi),
        tightness=tightness,
    )
    return frames * step


def track(mono: np.ndarray, known: float | None = None) -> Beats:
    """The beats of ``mono`` (at ``RATE``); ``known``: the BPM told or asked, where there is one."""
    full, low = envelopes(mono)
    envelope = full / (full.std() + 1e-9) + LOW_WEIGHT * low / (low.std() + 1e-9)
    ac = autocorrelation(envelope)
    bpm, felt_as = tempo(ac, known)
    tempi, regular = _local_tempo(envelope, bpm)
    confidence = max(float(_at(ac, np.array([60.0 / bpm * RATE / HOP]))[0]), regular)
    flat = float(full.std()) < LEAST_ONSET_DB  # a held tone's envelope ripples as regularly as a beat, by less
    times = _held(envelope, bpm, tempi)
    if times.size < 4:
        return Beats(times, bpm, 0.0)
    times = beat_line.steady_ends(times)
    if beat_line.drifting(times):  # followed as played, where the tempo read around each moment cannot keep up
        times = beat_line.steady_ends(_held(envelope, bpm, tempi, DRIFT_TIGHTNESS))
    period = 60.0 / bpm
    if _off_the_beat(full, low, times, period):
        times = times + period / 2
    onsets, rise, _ = fine_onsets(mono, RATE)
    if onsets.size:
        times = times[times < len(mono) / RATE]
        # Again on their attacks: an end beat the tracker put a few percent early is further off once its
        # search finds only the noise between attacks (30 BPM: 8 % of a beat, then 12 %).
        times = beat_line.smoothed(
            beat_line.steady_ends(refined(times + _lag(times, onsets, rise, period), onsets, rise, period))
        )
    if times.size < 4:  # tracked again loosely, too few kept a line (brown noise: one beat): no beat heard
        return Beats(times, bpm, 0.0)
    played = fitted_bpm(times)
    told = bool(known) and abs(np.log(played / known)) <= np.log(1 + OCTAVE_REACH)  # played as typed
    if told:
        confidence = max(confidence, float(_at(ac, np.array([1, 2]) * 60.0 / played * RATE / HOP).max()))
        told = abs(played / known - 1.0) * 100.0 <= TOLD_PCT and on_the_beat(envelope, times, period) >= ON_BEAT
    return Beats(times, played, 0.0 if flat else confidence, felt_as, told)


def on_the_beat(envelope: np.ndarray, times: np.ndarray, period: float) -> float:
    """How much more strongly the attacks land on the beats (``times``, seconds, ``period`` apart) than between
    them: the envelope's (``HOP`` frames) most within a beat's search reach of each beat (as far as a beat is moved
    onto its attack, so both are read alike), over the same at the seven other eighths of a beat, averaged over
    the beats; 1 where the beats are no more than any other moment."""
    reach = max(1, int(round(min(SEARCH_SECONDS, period / 6) * RATE / HOP)))

    def strongest(at: np.ndarray) -> float:
        frames = np.round(at * RATE / HOP).astype(int)
        near = np.clip(frames[:, None] + np.arange(-reach, reach + 1)[None, :], 0, len(envelope) - 1)
        return float(envelope[near].max(axis=1).mean()) if frames.size else 0.0

    between = np.mean([strongest(times + k * period / 8) for k in range(1, 8)])
    return strongest(times) / between if between > 1e-9 else 0.0


def accents(mono: np.ndarray, times: np.ndarray) -> list[np.ndarray]:
    """What marks each beat (``times``, on their attacks) of ``mono`` (at ``RATE``): its loudness, the low band
    rising, the harmony changing and the spectrum's shape changing, one array each."""
    onsets, _, energy = fine_onsets(mono, RATE)
    if not onsets.size:
        return [np.zeros(len(times))]
    # The loudest attack within ``SEARCH_SECONDS`` of each beat (a beat's place is its neighbours' line).
    lo = np.clip(np.searchsorted(onsets, times - SEARCH_SECONDS), 0, len(onsets) - 1)
    hi = np.clip(np.searchsorted(onsets, times + SEARCH_SECONDS), 1, len(onsets))
    loud = np.log(np.array([energy[a:b].max() if b > a else energy[a] for a, b in zip(lo, hi, strict=True)]) + 1e-12)
    return [loud, _low_rise(mono, RATE, times), _harmony_change(_chroma(mono), times), _spectral_change(mono, times)]


def metre(found: list[np.ndarray]) -> int:
    """3 or 4: which grouping of beats the accents (``accents``) repeat in more clearly (4 when it cannot tell)."""
    if min(len(a) for a in found) < 12:
        return 4

    def periodicity(n: int) -> float:
        total = 0.0
        for accent in found:
            z = _standard(accent)
            folded = z[: len(z) // n * n].reshape(-1, n).mean(axis=0)
            total += float(folded.std())
        return total

    return 3 if periodicity(3) > THREE_OVER_FOUR * periodicity(4) else 4


def _low_rise(mono: np.ndarray, rate: int, times: np.ndarray) -> np.ndarray:
    """At each beat (seconds): how much the low band (under ``ACCENT_LOW_HZ``: the kick, the bass) rises over
    ``LOW_SECONDS`` after it against as long before it (log ratio): a bass note changing with the bar, a
    kick on its first beat."""
    from scipy.signal import butter, sosfilt

    low = sosfilt(butter(2, ACCENT_LOW_HZ, fs=rate, output="sos"), mono.astype(np.float64)) ** 2
    total = np.concatenate([[0.0], np.cumsum(low)])
    at = np.clip((times * rate).astype(int), 0, len(mono))
    width = int(LOW_SECONDS * rate)
    ahead = total[np.minimum(at + width, len(mono))] - total[at]
    behind = total[at] - total[np.maximum(at - width, 0)]
    floor = 1e-6 * float(ahead.max()) + 1e-12
    return np.log((ahead + floor) / (behind + floor)) + 0.5 * np.log(ahead + floor)


def _chroma(mono: np.ndarray) -> np.ndarray:
    """The pitch classes of ``mono`` (at ``RATE``), every ``CHROMA_HOP``: what ``_harmony_change`` reads."""
    import librosa

    return librosa.feature.chroma_stft(y=mono, sr=RATE, hop_length=CHROMA_HOP, n_fft=4096)


def _harmony_change(chroma: np.ndarray, times: np.ndarray) -> np.ndarray:
    """At each beat (seconds): how far the pitch classes sounding over the beat after it lie from those over
    the beat before it (1 - cosine, ``chroma``: ``_chroma``'s): chords and bass notes change with the bar."""
    at = np.round(np.asarray(times) * RATE / CHROMA_HOP).astype(int)
    edges = np.concatenate([[0], at, [chroma.shape[1]]])
    spans = [chroma[:, a:b].mean(axis=1) if b > a else np.zeros(12) for a, b in zip(edges, edges[1:], strict=False)]
    unit = [v / (np.linalg.norm(v) + 1e-9) for v in spans]
    return np.array([1.0 - float(np.dot(unit[i], unit[i + 1])) for i in range(len(times))])


def _spectral_change(mono: np.ndarray, times: np.ndarray) -> np.ndarray:
    """At each beat (seconds): how far the spectrum (log mel) over the beat after it lies from that over the
    beat before it (mean absolute dB): what sounds changes with the bar (Davies & Plumbley's spectral
    difference between beat-long frames), where a bar's harmony holds or its chroma cannot say it."""
    import librosa

    level = librosa.power_to_db(_mel_power(mono, CHROMA_HOP))
    at = np.round(np.asarray(times) * RATE / CHROMA_HOP).astype(int)
    edges = np.concatenate([[0], at, [level.shape[1]]])
    quiet = np.full(level.shape[0], float(level.min()) if level.size else 0.0)
    spans = [level[:, a:b].mean(axis=1) if b > a else quiet for a, b in zip(edges, edges[1:], strict=False)]
    # Each beat's spectrum as its shape (its mean level taken off): a louder beat alone is the loudness's accent.
    shapes = [v - v.mean() for v in spans]
    return np.array([float(np.abs(shapes[i + 1] - shapes[i]).mean()) for i in range(len(times))])


def _standard(values: np.ndarray) -> np.ndarray:
    spread = float(values.std())
    return (values - values.mean()) / spread if spread > 1e-9 else values * 0.0


def downbeat(accents: list[np.ndarray], per_bar: int) -> int:
    """The phase (0 to ``per_bar`` - 1) of the beats whose accents are the strongest on average, each kind
    of accent (standardised) weighed by how clearly one phase leads it: the loudness of a click track,
    the harmony of a groove whose snare is as loud as its kick. Where the chord and the bass note change
    together, clearly on one beat of the bar (``HARMONY_CLEAR``), that beat starts the bar."""
    score, leads = np.zeros(per_bar), []
    for accent in accents:
        z = _standard(accent)
        means = np.array([z[p::per_bar].mean() if z[p::per_bar].size else 0.0 for p in range(per_bar)])
        ranked = np.sort(means)[::-1]
        score += (ranked[0] - ranked[1]) * means
        leads.append((int(np.argmax(means)), float(ranked[0] - ranked[1])))
    # The bar's harmony changes on its first beat (harmonic rhythm); the high-passed loudness is a snare's where
    # the snare falls once a bar (6/8's on 4, 2.5 deviations ahead), which outweighed the chord and bass at 140+.
    if len(leads) == len(ACCENTS) and leads[1][0] == leads[2][0] and leads[2][1] >= HARMONY_CLEAR:
        return leads[2][0]
    return int(np.argmax(score))
