"""The studio's memory over a long run (``python tools/soak.py``): ``python app.py`` served on tiny random
models, visitors sending a few hundred mixed requests through ``gradio_client`` (songs of 1–4 takes and
10–60 s, some with Think, variations, *Write it*, lyrics, stems, Describe, Cover, Extend, Edit, *Use these
settings*, *Send to*), the server's RSS sampled throughout (every ``--every`` s). Prints the RSS at the
end of the warm-up, its peak and its end, the highest RSS of each tenth of the requests, the server's
CPU seconds a request after the warm-up, and per kind of request how far the RSS rose while one ran:
what a studio left running keeps after its warm-up, and which requests make its peaks
(docs/performance.md, "Memory over a long run"). ``--idle S``: then S seconds of quiet, and the server's CPU
over them (a studio left running costs the machine it shares next to nothing).

The audio is noise, by design; what the run measures is the memory the server keeps between requests.
``--env NAME=VALUE`` starts the studio with more settings (``MALLOC_TRIM_THRESHOLD_=…`` to compare).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import studio_root

MB = 2**20
# What one visitor's next request is, by weight: mostly songs, as the studio is used.
MIX = {
    "generate": 30,
    "think": 8,
    "variations": 8,
    "write_song": 5,
    "lyrics": 6,
    "stems": 6,
    "describe": 4,
    "cover": 6,
    "extend": 5,
    "edit": 5,
    "settings": 8,
    "send": 9,
}


def models(folder: Path) -> dict[str, str]:
    """Tiny random models in ``folder`` (built once, reused by a later run): the studio's settings."""
    import random_models
    import random_stems

    made = {"music": folder / "music", "lyrics": folder / "lyrics", "planner": folder / "planner"}
    if not (folder / "done").exists():
        random_models.save_pipeline(made["music"])
        random_models.save_lyrics_lm(made["lyrics"])
        random_models.save_planner_lm(made["planner"])
        random_stems.save_stems_model(folder / "hub-cache", hub_repo="adefossez/HTDemucs-ft")
        (folder / "done").write_text("")
    return {
        "ACE_STUDIO_MODEL": str(made["music"]),
        "ACE_STUDIO_VARIANT": "xl-sft",
        "ACE_STUDIO_LYRICS_MODEL": str(made["lyrics"]),
        "ACE_STUDIO_PLANNER_MODEL": str(made["planner"]),
        "HF_HUB_CACHE": str(folder / "hub-cache"),
        "HF_HUB_OFFLINE": "1",
    }


def songs(folder: Path, rng: random.Random) -> list[str]:
    """A few uploads: chords of 10–30 s, as a visitor's songs."""
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i, seconds in enumerate((10, 20, 30)):
        t = np.arange(int(seconds * 48000)) / 48000
        chord = sum(np.sin(2 * np.pi * f * t) for f in (220 * rng.uniform(0.9, 1.1), 277.2, 329.6)) * 0.2
        path = folder / f"song-{i}.wav"
        sf.write(str(path), np.stack([chord, chord], axis=1).astype(np.float32), 48000)
        made.append(str(path))
    return made


class Sampler(threading.Thread):
    """The server's RSS (its process and any children, ZeroGPU's workers among them), every ``every`` s."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.samples, self.done = pid, every, [], threading.Event()
        self.mark = 0  # requests finished so far, noted beside each sample
        self.cpu_at: dict[int, float] = {}  # the server's CPU seconds when that many requests had finished

    def cpu(self) -> float:
        """CPU seconds the server (and its live children) have used so far."""
        import psutil

        with contextlib.suppress(psutil.Error):
            main = psutil.Process(self.pid)
            used = sum(main.cpu_times()[:2])
            for child in main.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    used += sum(child.cpu_times()[:2])
            return used
        return 0.0

    def idle(self, seconds: float) -> float:
        """CPU seconds the server uses every 10 s while nobody asks it anything, measured over ``seconds``."""
        before = self.cpu()
        time.sleep(seconds)  # the quiet itself is what is measured
        return round((self.cpu() - before) / seconds * 10, 3)

    def rss(self) -> int:
        import psutil

        with contextlib.suppress(psutil.Error):
            main = psutil.Process(self.pid)
            total = main.memory_info().rss
            for child in main.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            return total
        return 0

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.samples.append((time.monotonic(), self.mark, self.rss()))


class Visitor:
    """One visitor's page, as ``gradio_client`` holds it: their own takes, sent on and split."""

    def __init__(self, url: str, rng: random.Random, uploads: list[str]) -> None:
        from gradio_client import Client

        self.client, self.rng, self.uploads = Client(url, verbose=False), rng, uploads
        self.record: dict[str, Any] | None = None

    def song(self, think: bool) -> dict[str, Any]:
        rng = self.rng
        sung = rng.random() < 0.6
        return {
            "prompt": rng.choice(["bright synth-pop", "slow piano ballad", "funk groove, slap bass", "lo-fi beat"]),
            "lyrics": "[Verse]\nwe run into the night\nneon in our eyes\n[Chorus]\nhold on" if sung else "",
            "audio_duration": rng.choice([10, 20, 30, 45, 60]),
            "batch_size": rng.choice([1, 1, 2, 3, 4]),
            "inference_steps": rng.choice([4, 6, 8]),
            "seed": rng.randrange(1 << 20),
            "think": think,
            "audio_format": rng.choice(["wav", "wav", "flac", "mp3"]),
        }

    def send(self, kind: str) -> None:
        """One request of ``kind``; one that needs a take the visitor has not made yet makes one."""
        from gradio_client import handle_file

        c, rng = self.client, self.rng
        if kind in ("variations", "stems", "settings", "send") and self.record is None:
            kind = "generate"
        if kind in ("generate", "think"):
            *_, self.record = c.predict(**self.song(kind == "think"), api_name="/generate")
        elif kind == "variations":
            made = c.predict(take=1, record=self.record, amount=0.3, count=rng.choice([1, 2]), api_name="/variations")
            self.record = made[-1]
        elif kind == "write_song":
            c.predict(
                idea="a rainy-day bossa nova about the last train", seed=rng.randrange(99), api_name="/write_song"
            )
        elif kind == "lyrics":
            c.predict(theme="city lights", seed=rng.randrange(99), length="short", api_name="/lyrics")
        elif kind == "stems":
            c.predict(take=1, record=self.record, api_name="/stems")
        elif kind == "describe":
            c.predict(src_audio=handle_file(rng.choice(self.uploads)), api_name="/describe")
        elif kind in ("cover", "extend", "edit"):
            more = {
                "extend": {"extend_seconds": rng.choice([5, 15])},
                "edit": {"repainting_start": 2.0, "repainting_end": 6.0},
            }
            song = handle_file(rng.choice(self.uploads))
            asked = {"prompt": "jazz trio", "inference_steps": 4, "seed": rng.randrange(99), **more.get(kind, {})}
            c.predict(src_audio=song, **asked, api_name=f"/{kind}")
        elif kind == "settings":
            c.predict(self.record, 1, api_name="/settings_from_generate")
        else:  # My takes' Send to: the take's entry first, as the page keeps it
            entries = c.predict(self.record, api_name="/keep_takes")
            c.predict(entries[0], api_name=f"/send_my_take_to_{rng.choice(['cover', 'extend', 'edit'])}")


def serve(env: dict[str, str], work: Path) -> tuple[str, subprocess.Popen]:
    """``python app.py`` (the README's command) with ``env`` on a free port; (url, process) once it answers."""
    from gradio_client import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    full = {**os.environ, **env, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    log = open(work / "studio.log", "wb")  # noqa: SIM115 (the studio writes it until it ends)
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=studio_root.ROOT, env=full, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while True:
        try:
            Client(url, verbose=False)
            return url, proc
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((work / "studio.log").read_text()[-3000:]) from None
            time.sleep(0.5)  # a process starting: nothing to wait on but its answer


def soak(args: argparse.Namespace) -> dict[str, Any]:
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = {**models(args.models.resolve()), **dict(e.split("=", 1) for e in args.env)}
    env.update(ACE_STUDIO_OUTPUT_DIR=str(work / "outputs"), ACE_STUDIO_CANCEL_DIR=str(work / "cancel"))
    env.update(GRADIO_TEMP_DIR=str(work / "gradio"), GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1")
    env.update(ACE_STUDIO_PER_VISITOR="4")
    uploads = songs(work / "songs", random.Random(args.seed))
    url, proc = serve(env, work)
    sampler = Sampler(proc.pid, args.every)
    sampler.samples.append((time.monotonic(), 0, sampler.rss()))
    sampler.start()
    kinds = [k for k, w in MIX.items() for _ in range(w)]
    plan = random.Random(args.seed).choices(kinds, k=args.requests)
    counts: dict[str, list[int]] = {k: [0, 0] for k in MIX}
    timed: list[tuple[str, float, float]] = []  # each request's kind, start and end
    lock, started = threading.Lock(), time.monotonic()
    next_one = iter(enumerate(plan))

    def visit(number: int) -> None:
        visitor = Visitor(url, random.Random(args.seed * 100 + number), uploads)
        while True:
            with lock:
                step = next(next_one, None)
            if step is None:
                return
            began = time.monotonic()
            try:
                visitor.send(step[1])
                ok = 0
            except Exception as exc:  # a refusal is an answer too; it is counted and shown
                ok = 1
                print(f"request {step[0]} ({step[1]}): {type(exc).__name__}: {str(exc)[:160]}", flush=True)
            with lock:
                counts[step[1]][ok] += 1
                timed.append((step[1], began, time.monotonic()))
                sampler.mark += 1
                if sampler.mark == args.warmup:
                    sampler.cpu_at[args.warmup] = sampler.cpu()

    served = False
    try:
        visitors = [threading.Thread(target=visit, args=(i,)) for i in range(args.visitors)]
        for v in visitors:
            v.start()
        for v in visitors:
            v.join()
        served = True
    finally:
        sampler.done.set()
        sampler.join()
        sampler.cpu_at[args.requests] = sampler.cpu()
        seconds = time.monotonic() - started
        # The quiet after the last request, sampled by nothing: it counts in no other figure.
        idle = sampler.idle(args.idle) if args.idle and served else None
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        proc.kill()
    found = summary(sampler.samples, args.requests, args.warmup, counts, seconds)
    cpu = sampler.cpu_at
    if args.warmup in cpu and args.requests in cpu:
        found["cpu_s_per_request"] = round((cpu[args.requests] - cpu[args.warmup]) / (args.requests - args.warmup), 2)
    found["rise_by_kind"] = rises(sampler.samples, timed)
    if idle is not None:
        found["idle_cpu_s_per_10_s"] = idle
    return found


def rises(samples: list[tuple[float, int, int]], timed: list[tuple[str, float, float]]) -> dict[str, list[int]]:
    """Per kind of request: how many, and the median and largest rise of the server's RSS while one ran
    (its highest sample less the last one before it began), MB. Two visitors' requests overlap, so a
    rise may be the other's: a run with ``--visitors 1`` tells them apart."""
    import bisect

    times = [t for t, _, _ in samples]
    by_kind: dict[str, list[int]] = {}
    for kind, began, ended in timed:
        first = bisect.bisect_right(times, began)
        during = [rss for _, _, rss in samples[first : bisect.bisect_right(times, ended)]]
        if first and during:
            by_kind.setdefault(kind, []).append((max(during) - samples[first - 1][2]) // MB)
    return {k: [len(v), sorted(v)[len(v) // 2], max(v)] for k, v in sorted(by_kind.items())}


def summary(samples: list[tuple[float, int, int]], requests: int, warmup: int, counts: dict, seconds: float) -> dict:
    """The figures: RSS at the warm-up's end, peak and end, and the highest of each tenth of the run."""
    warm = max((rss for _, done, rss in samples if done <= warmup), default=0)
    after = [rss for _, done, rss in samples if done > warmup] or [warm]
    tenths = []
    for i in range(10):
        low, high = requests * i // 10, requests * (i + 1) // 10
        tenths.append(max((rss for _, done, rss in samples if low <= done < high), default=0) // MB)
    return {
        "requests": requests,
        "failed": sum(bad for _, bad in counts.values()),
        "by_kind": {k: ok for k, (ok, _) in counts.items()},
        "seconds": round(seconds),
        "start_mb": samples[0][2] // MB,
        "warmup_requests": warmup,
        "warm_mb": warm // MB,
        "peak_mb": max(after) // MB,
        "end_mb": samples[-1][2] // MB,
        "tenths_mb": tenths,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--visitors", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=40, help="requests counted as the warm-up")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", type=Path, default=Path("/tmp/ace-soak-models"), help="tiny models (reused)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ace-soak"), help="outputs, uploads, the log")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the studio (repeatable)")
    parser.add_argument("--every", type=float, default=0.25, help="seconds between RSS samples")
    parser.add_argument("--idle", type=float, default=0, help="then seconds of quiet, the server's CPU measured")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    studio_root.reach()
    found = soak(args)
    print(
        f"{found['requests']} requests ({found['failed']} refused or failed) from {args.visitors} visitors in "
        f"{found['seconds']} s; RSS at start {found['start_mb']} MB, after {found['warmup_requests']} requests "
        f"(warm-up) {found['warm_mb']} MB, peak after it {found['peak_mb']} MB, at the end {found['end_mb']} MB"
    )
    print("highest RSS in each tenth of the requests, MB: " + " ".join(map(str, found["tenths_mb"])))
    if "cpu_s_per_request" in found:
        print(f"server CPU after the warm-up: {found['cpu_s_per_request']} s a request")
    if "idle_cpu_s_per_10_s" in found:
        print(f"server CPU while idle after them: {found['idle_cpu_s_per_10_s']} s every 10 s")
    print("RSS rise while each kind ran (requests, median, largest), MB:")
    for kind, (n, median, largest) in found["rise_by_kind"].items():
        print(f"  {kind:11} {n:4} {median:6} {largest:6}")
    if args.json:
        args.json.write_text(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
