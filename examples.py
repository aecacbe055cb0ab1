"""Examples for every tab, and the demo song the audio tabs start from.

The demo song is synthesized here (chords, bass and drums from sine waves and noise), so the
studio ships no third-party audio. It is written once per machine to a temporary folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

import audio

# (caption, lyrics, seconds, vocal language)
GENERATE = [
    (
        "upbeat synth-pop, bright analog synths, punchy drums, catchy female vocals, 118 bpm",
        "[Verse]\nCity lights are calling out my name\nEvery window flickers like a flame\n\n"
        "[Chorus]\nWe run, we run into the neon night\nHold on, hold on, everything's alright",
        60,
        "en",
    ),
    (
        "reggaeton, dembow rhythm, warm bass, sensual male vocals, summer party",
        "[Verso]\nLa luna brilla sobre el mar\nY tu mirada me invita a bailar\n\n"
        "[Coro]\nMuévete lento, muévete así\nQue esta noche es para ti",
        60,
        "es",
    ),
    (
        "Japanese city pop, 80s, funky bass, Rhodes piano, saxophone, airy female vocals",
        "[Verse]\n夜の街に 光が揺れる\nあなたの声が 風に溶ける\n\n[Chorus]\nプラスティック・ラブ 止まらない\n踊り続けて 朝まで",
        60,
        "ja",
    ),
    (
        "chanson française, accordion, upright bass, brushed drums, intimate male vocals",
        "[Couplet]\nSous les toits de Paris il pleut\nJe t'attends au café bleu\n\n"
        "[Refrain]\nReviens-moi, reviens ce soir\nAvant que s'éteigne l'espoir",
        45,
        "fr",
    ),
    ("lo-fi hip hop, mellow Rhodes, vinyl crackle, lazy swing drums, rainy afternoon", "[Instrumental]", 90, "en"),
    (
        "epic orchestral cinematic, soaring strings, taiko drums, brass swells, choir",
        "[Instrumental]",
        120,
        "en",
    ),
    (
        "K-pop ballad, piano and strings, emotional male vocals, slow build",
        "[Verse]\n너의 이름을 불러도\n대답 없는 밤이야\n\n[Chorus]\n기억해 줘 우리의 봄\n다시 올 거라 믿어",
        60,
        "ko",
    ),
]

GENERATE_LABELS = [
    "Synth-pop · English",
    "Reggaeton · Spanish",
    "City pop · Japanese",
    "Chanson · French",
    "Lo-fi · instrumental",
    "Cinematic · instrumental",
    "Ballad · Korean",
]

# (caption, strength)
COVER = [
    ("acoustic folk, fingerpicked guitar, soft harmonica, warm and intimate", 0.7),
    ("heavy metal, distorted guitars, double kick drums, aggressive", 0.5),
    ("bossa nova, nylon guitar, brushed snare, gentle", 0.8),
]

# (caption, seconds to add)
EXTEND = [
    ("same groove, builds to a big final chorus", 30),
    ("slow fade-out outro with ambient pads", 20),
    ("breakdown with just drums and bass, then the full band returns", 45),
]

# (start, end, caption, lyrics for the region)
EDIT = [
    (4, 8, "drum fill, brighter", "[Instrumental]"),
    (2, 10, "dreamy breakdown, reverb-soaked guitar", "[Bridge]\nHold this moment in the air"),
]

# Edit's parts: (what to change, which part, its style)
EDIT_PARTS = [
    ("add", "drums", "punchy live drums, tight hi-hats"),
    ("add", "bass", "warm round electric bass"),
    ("extract", "vocals", ""),
]

# (theme, genre, mood, language)
LYRICS = [
    ("leaving my hometown at dawn, a train and a last look back", "indie folk", "bittersweet", "en"),
    ("dancing alone in the kitchen at 2 am", "synth-pop", "euphoric", "en"),
    ("una carta a mi abuela que ya no está", "balada latina", "nostálgico", "es"),
    ("東京の雨の夜、傘をさして待つ", "city pop", "melancholic", "ja"),
    ("Freunde, die nach Jahren wieder zusammen Musik machen", "deutschrock", "hopeful", "de"),
]

DEMO_SECONDS = 12.0


def _note(freq: float, t: np.ndarray, decay: float) -> np.ndarray:
    return np.sin(2 * np.pi * freq * t) * np.exp(-t * decay)


def demo_song_audio(seconds: float = DEMO_SECONDS, rate: int = audio.SAMPLE_RATE) -> np.ndarray:
    """A four-chord loop at 100 BPM (C–G–Am–F) with bass and drums: float32 ``[2, samples]``."""
    rng = np.random.default_rng(7)
    n = int(seconds * rate)
    left = np.zeros(n, dtype=np.float64)
    right = np.zeros(n, dtype=np.float64)
    beat = 60.0 / 100.0
    chords = [(261.63, 329.63, 392.00), (196.00, 246.94, 293.66), (220.00, 261.63, 329.63), (174.61, 220.00, 261.63)]
    bar = 4 * beat
    for i in range(int(np.ceil(seconds / bar))):
        start = int(i * bar * rate)
        span = min(n - start, int(bar * rate))
        if span <= 0:
            break
        t = np.arange(span) / rate
        root = chords[i % 4][0]
        pad = sum(_note(f, t, 0.6) for f in chords[i % 4]) * 0.12 * np.minimum(1.0, t / 0.05)
        bass = sum(_note(root / 2, t - k * beat, 3.0) * (t >= k * beat) for k in range(4)) * 0.25
        left[start : start + span] += pad * 0.8 + bass
        right[start : start + span] += pad + bass * 0.9
    for k in range(int(seconds / beat * 2)):
        at = int(k * beat / 2 * rate)
        if at >= n:
            break
        hat = rng.standard_normal(min(2400, n - at)) * np.exp(-np.arange(min(2400, n - at)) / 300) * 0.05
        right[at : at + hat.size] += hat
        left[at : at + hat.size] += hat * 0.6
        if k % 2 == 0:
            m = min(12000, n - at)
            t = np.arange(m) / rate
            kick = np.sin(2 * np.pi * (50 + 90 * np.exp(-t * 30)) * t) * np.exp(-t * 12) * 0.5
            left[at : at + m] += kick
            right[at : at + m] += kick
    stereo = np.stack([left, right])
    return (stereo / np.abs(stereo).max() * 10 ** (-3 / 20)).astype(np.float32)


def demo_song() -> str:
    """Path of the synthesized demo song (a 12 s WAV), written on first use."""
    import soundfile as sf

    path = Path(tempfile.gettempdir()) / "ace-studio-examples" / "demo-song.wav"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name of this writer's own: two studios started at once on a fresh machine (pytest-xdist's
        # workers importing the app) each write it, and one name moved by the first is gone for the second.
        fd, tmp = tempfile.mkstemp(prefix=".demo-song-", suffix=".wav", dir=path.parent)
        os.close(fd)
        try:
            sf.write(tmp, demo_song_audio().T, audio.SAMPLE_RATE, subtype="PCM_16")
            os.chmod(tmp, 0o644)  # read by every user of the machine, as a file written by name is (mkstemp's is 0600)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return str(path)
