"""The bench's one-off tables, each printed by its own flag: what decoding hostile uploads costs
(``--decode``), each take format's bytes and CPU (``--encode``), a take's own latents against the
VAE encode an edit made (``--latents``), Think's planner alone (``--planner``) and a 60 s song's
planning (``--think``), and this machine's speed on fixed work (``--machine``), to compare a suite's time across days.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_run


def decode_table() -> str:
    """Peak traced memory, wall and CPU seconds of decoding uploads that expand a lot, one at a time
    in a fresh budget; refusals are timed too (they must cost nothing)."""
    import time
    import tracemalloc

    import numpy as np
    import soundfile as sf

    import audio

    work = Path(tempfile.mkdtemp(prefix="ace-decode-"))

    def tone(name: str, seconds: float, rate: int, channels: int, fmt: str) -> Path:
        path = work / name
        with sf.SoundFile(str(path), "w", rate, channels, format=fmt) as f:
            for start in range(0, int(seconds * rate), rate):
                t = np.arange(start, min(start + rate, int(seconds * rate))) / rate
                f.write(np.repeat((0.1 * np.sin(2 * np.pi * 110 * t))[:, None], channels, 1).astype(np.float32))
        return path

    files = [
        ("10 min, 8 kHz mono FLAC", tone("long.flac", 600, 8000, 1, "FLAC")),
        ("3 min, 44.1 kHz stereo WAV", tone("song.wav", 180, 44100, 2, "WAV")),
        ("60 s, 8 channels at 384 kHz FLAC", tone("surround.flac", 60, 384_000, 8, "FLAC")),
        ("1 Hz WAV of 500 s (1 kB)", tone("one-hz.wav", 500, 1, 2, "WAV")),
    ]
    rows = ["| upload | file | decoded | peak traced | peak / decoded | wall | CPU |", "|---|---|---|---|---|---|---|"]
    for label, path in files:
        tracemalloc.start()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            song = audio.load(path)
            decoded = f"{song.nbytes / 2**20:.0f} MB"
            ratio = f"{tracemalloc.get_traced_memory()[1] / song.nbytes:.2f}"
        except audio.AudioError as exc:
            decoded, ratio = f"refused: {str(exc)[:60]}…", "–"
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append(
            f"| {label} | {path.stat().st_size / 2**20:.2f} MB | {decoded} | {peak / 2**20:.0f} MB | {ratio} | "
            f"{time.perf_counter() - wall:.2f} s | {time.process_time() - cpu:.2f} s |"
        )
    return "\n".join(rows)


def json_depth_table() -> str:
    """The gate's depth check (``asgi_gate.json_depth``) on escaped quotes and plain text, 16 KB to 2 MB: one
    core's least CPU seconds of five, and per byte (tests/test_gate.py counts its work; the regex it replaced
    took 3 minutes for 128 KB of escaped quotes)."""
    import asgi_gate

    rows = ["| body | escaped quotes ns/B | plain text ns/B |", "|---|---|---|"]
    for name, size in (("16 KB", 2**14), ("128 KB", 2**17), ("2 MB", 2**21)):
        hostile, plain = b'"' + b'\\"' * ((size - 1) // 2), b'"' + b"a" * (size - 2) + b'"'
        per_byte = []
        for data in (hostile, plain):
            times = []
            for _ in range(5):
                started = time.thread_time()
                asgi_gate.json_depth(data)
                times.append(time.thread_time() - started)
            per_byte.append(min(times) / len(data) * 1e9)
        rows.append(f"| {name} | {per_byte[0]:.1f} | {per_byte[1]:.1f} |")
    return "\n".join(rows)


def machine_table(runs: int = 5) -> str:
    """This machine's speed on three fixed pieces of work, one core's least CPU seconds of ``runs``: the yardstick
    for the suite's time on another day (the same tree ran in 818.1 s on one day and in 1,498.4 s on
    2026-11-27, quiet both times). Python's own loop (the studio's glue), a numpy FFT (the map's spectra), a torch
    1-D convolution on one thread (the tiny models' layers)."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    signal, wave = np.random.default_rng(0).standard_normal(2**20), torch.randn(1, 64, 48000)
    conv = torch.nn.Conv1d(64, 64, 7, padding=3)

    def python_loop() -> None:
        total = 0
        for i in range(5_000_000):
            total += i

    def fft() -> None:
        for _ in range(20):
            np.fft.rfft(signal)

    def convolution() -> None:
        with torch.no_grad():
            for _ in range(5):
                conv(wave)

    rows = [f"| work | CPU s (least of {runs}) |", "|---|---|"]
    for name, work in (
        ("5 M Python additions", python_loop),
        ("20 FFTs of 2^20", fft),
        ("5 convs 64x64x7, 1 s", convolution),
    ):
        times = []
        for _ in range(runs):
            started = time.thread_time()
            work()
            times.append(time.thread_time() - started)
        rows.append(f"| {name} | {min(times):.3f} |")
    return "\n".join(rows)


def encode_table(seconds: float = 60.0) -> str:
    """What a take costs to write, per minute of audio: bytes on disk and one core's CPU seconds, for
    each output format and the page's MP3 preview (``audio.save``, as ``takes`` calls it)."""
    import time

    import numpy as np

    import audio

    work = Path(tempfile.mkdtemp(prefix="ace-encode-"))
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * audio.SAMPLE_RATE)) / audio.SAMPLE_RATE
    # Chords, a beat and some noise: content a lossless codec cannot shrink to nothing.
    song = sum(0.12 * np.sin(2 * np.pi * f * t) for f in (110, 138.6, 164.8, 220)) * (
        0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)
    )
    song = np.stack([song, np.roll(song, 240)]) + 0.02 * rng.standard_normal((2, t.size))
    tags = {"title": "bench", "artist": audio.STUDIO, "comment": "seed 0"}
    cases = [
        ("WAV 16-bit", "wav"),
        ("FLAC 24-bit", "flac"),
        ("MP3 320 kbps (take, libsndfile)", "mp3"),
        ("MP3 128 kbps (preview, lameenc)", "preview"),
    ]
    rows = ["| file | MB a minute | CPU s a minute | wall s a minute |", "|---|---|---|---|"]
    for i, (label, fmt) in enumerate(cases):
        wall, cpu = time.perf_counter(), time.process_time()
        if fmt == "preview":
            path = audio.save_preview(song.astype(np.float32), work / f"take{i}.mp3", tags)
        else:
            path = audio.save(song.astype(np.float32), work / f"take{i}.{fmt}", fmt, tags)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        per = 60.0 / seconds
        rows.append(f"| {label} | {path.stat().st_size * per / 1e6:.2f} | {cpu * per:.2f} | {wall * per:.2f} |")
    return "\n".join(rows)


def latents_table(lengths: tuple[int, ...] = (30, 120, 240), trips: int = 3, runs: int = 3) -> str:
    """What a take's own latents spare an Edit, Extend or Cover of it (tiny random models on this
    machine's CPU). First, how far the take's latents read back through the VAE are from its own: from the
    take as the studio writes it (finished, 16-bit WAV), and after 1 to ``trips`` plain VAE round trips
    (decode, encode: what each further edit of an edit did outside its region), as relative L2 and the
    largest difference. Then, per length, the VAE encode an edit of a take skips against what reading the
    take's latents costs instead (the SHA-256 of its file, once a file, and the ``.npy``), medians of ``runs``."""
    import numpy as np
    import torch

    work = Path(tempfile.mkdtemp(prefix="ace-latents-"))
    import random_models

    random_models.save_pipeline(work / "pipeline")
    os.environ.update(
        ACE_STUDIO_MODEL=str(work / "pipeline"),
        ACE_STUDIO_VARIANT="xl-sft",
        ACE_STUDIO_OUTPUT_DIR=str(work / "out"),
        ACE_STUDIO_PLANNER_MODEL="none",
    )
    import backend
    import handlers
    import preparing
    import sampler
    import take_latents

    pipe = backend.get_backend().pipe

    def encoded(song: np.ndarray) -> torch.Tensor:
        torch.manual_seed(0)  # the posterior's draw, seeded as a run seeds it
        wave = torch.from_numpy(np.require(preparing.model_input(song), np.float32, ["C_CONTIGUOUS", "WRITEABLE"]))
        return pipe.prepare_src_latents(device="cpu", dtype=torch.float32, src_audio=wave, task_type="repaint")[0][0]

    def far(latents: torch.Tensor, kept: torch.Tensor) -> str:
        diff = latents[: len(kept)] - kept
        return f"{float(diff.norm() / kept.norm()) * 100:.1f} % | {float(diff.abs().max()):.3f}"

    rows = ["| the take's latents read back through the VAE | relative L2 | largest difference |", "|---|---|---|"]
    times = [
        "| song | VAE encode (tiny, CPU) | its latents instead: SHA-256 of the WAV + `.npy` | saved |",
        "|---|---|---|---|",
    ]
    for seconds in lengths:
        settings = {"prompt": "bench", "audio_duration": seconds, "inference_steps": 2, "think": False, "seed": 1}
        paths, _ = handlers.make("generate", **settings)
        take = Path(paths[0])
        kept = torch.from_numpy(np.load(take_latents.file_of(take), allow_pickle=False))
        song = preparing.source(str(take))
        if seconds == lengths[0]:
            rows.append(
                f"| the take as written ({seconds} s, -14 LUFS, 16-bit WAV), encoded | {far(encoded(song), kept)} |"
            )
            latents = kept
            for trip in range(1, trips + 1):
                wave = sampler.decode(pipe, latents[None], normalize=False)[0]
                latents = encoded(wave)
                rows.append(f"| after {trip} VAE round trip{'s' if trip > 1 else ''} | {far(latents, kept)} |")
        vae, check = [], []
        for _ in range(runs):
            started = time.perf_counter()
            encoded(song)
            vae.append(time.perf_counter() - started)
            take_latents._digests.clear()
            started = time.perf_counter()
            found = preparing.source_latents(str(take))
            sampler._take_latents(pipe, torch.from_numpy(found.latents), len(kept), 1, "cpu", torch.float32)
            check.append(time.perf_counter() - started)
        vae_s, check_s = statistics.median(vae), statistics.median(check)
        times.append(f"| {seconds} s | {vae_s:.3f} s | {check_s:.3f} s | {vae_s - check_s:.3f} s |")
    return "\n".join(rows) + "\n\n" + "\n".join(times)


def planner_table(lengths: tuple[int, ...] = (300, 1500, 3000), takes_seconds: int = 60) -> str:
    """The planner on its own (tiny random Qwen3 on this machine's device): ms per blueprint code at
    several code counts, the share of a step spent sampling against the model's forward pass, and a
    4-take request's planning against a 1-take request's (thinking included)."""
    import torch

    import models
    import plan_constraints
    import planner
    import random_models
    from plan_format import format_plan

    model, tokenizer = random_models.build_planner_lm()
    device = models.pick_device()
    model.to(device)
    brain = planner.Planner(model, tokenizer, plan_constraints.Vocabulary.of(tokenizer), "tiny", device)
    plan = format_plan({"bpm": 120, "caption": "pop", "duration": 60, "keyscale": "A minor", "timesignature": "4"})
    rows = [
        "| codes | ms per code | model ms per step | sampling ms per step | sampling share |",
        "|---|---|---|---|---|",
    ]
    with torch.inference_mode():
        brain._blueprints("pop", bench_run.LYRICS, plan, 20, [0], (0, 1), None, lambda: False)  # warm-up
        for count in lengths:
            bench_run.sync(device)
            started = time.perf_counter()
            brain._blueprints("pop", bench_run.LYRICS, plan, count, [0], (0, 1), None, lambda: False)
            bench_run.sync(device)
            per_code = (time.perf_counter() - started) / count
            model_s, sample_s = _planner_step_parts(brain, plan, count)
            rows.append(
                f"| {count} | {per_code * 1e3:.2f} | {model_s * 1e3:.2f} | {sample_s * 1e3:.2f} | "
                f"{100 * sample_s / (model_s + sample_s):.0f} % |"
            )
        seeds = {1: [0], 4: [0, 1, 2, 3]}
        took = {}
        for n, chosen in seeds.items():
            bench_run.sync(device)
            started = time.perf_counter()
            brain.plan("pop", bench_run.LYRICS, takes_seconds, chosen)
            bench_run.sync(device)
            took[n] = time.perf_counter() - started
    rows += [
        "",
        f"| request ({takes_seconds} s, Think) | planning s |",
        "|---|---|",
        f"| 1 take | {took[1]:.2f} |",
        f"| 4 takes | {took[4]:.2f} ({took[4] / took[1]:.2f} ×) |",
    ]
    return "\n".join(rows)


def _planner_step_parts(brain: Any, plan: str, count: int, samples: int = 200) -> tuple[float, float]:
    """Seconds per decode step of the model alone (the same prompts and cache, one code fed back)
    and of sampling alone (guidance, nucleus, temperature and draw over the step's real logits)."""
    import torch

    import plan_constraints
    import planner
    from plan_format import blueprint_negative, blueprint_prompt

    steps = min(count, samples)
    prompts = [
        blueprint_prompt(brain.tokenizer, "pop", bench_run.LYRICS, plan),
        blueprint_negative(brain.tokenizer),
    ]
    code_ids = torch.tensor(brain.vocab.code_ids, device=brain.model.device)
    step = brain.decoder(prompts, count)
    logits = next(step)
    token = code_ids[:1].repeat(2)
    started = time.perf_counter()
    for _ in range(steps):
        logits = step.send(token)
    bench_run.sync(str(brain.model.device.type))
    model_s = (time.perf_counter() - started) / steps
    step.close()
    generators = [torch.Generator().manual_seed(0)]
    only_codes = logits[:, code_ids]
    started = time.perf_counter()
    for _ in range(steps):
        plan_constraints.sample_rows(planner._guide(only_codes[:1], only_codes[1:]), generators)
    bench_run.sync(str(brain.model.device.type))
    return model_s, (time.perf_counter() - started) / steps


def think_table(seconds: int = 60, runs: int = 5) -> str:
    """``--think``: Think's planning of one ``seconds`` song with the tiny random planner on this
    machine's device, ``runs`` times (medians, the range in brackets): the rows the model reads while
    thinking, the tokens the thinking wrote and its seconds, then the whole plan (thinking and the
    blueprint's codes), and what the duration estimate's prior declares for it (a warm planner, its
    H100 figures). Wall seconds, and the process's CPU seconds, which another load on a shared
    machine changes less (with ``--threads 1``)."""
    import dataclasses

    import torch

    import duration_estimate
    import handlers
    import models
    import plan_constraints
    import planner
    import random_models

    model, tokenizer = random_models.build_planner_lm()
    device = models.pick_device()
    model.to(device)
    brain = planner.Planner(model, tokenizer, plan_constraints.Vocabulary.of(tokenizer), "tiny", device)
    rows: list[int] = []
    hook = model.register_forward_pre_hook(lambda _m, _a, kw: rows.append(kw["input_ids"].shape[0]), with_kwargs=True)
    took: dict[str, list[float]] = {"thinking": [], "thinking_cpu": [], "whole": [], "whole_cpu": []}
    tokens = []

    def timed(name: str, run: Callable[[], Any]) -> None:
        bench_run.sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        bench_run.sync(device)
        took[name].append(time.perf_counter() - wall)
        took[f"{name}_cpu"].append(time.process_time() - cpu)

    try:
        with torch.inference_mode():
            brain.plan("pop", bench_run.LYRICS, 10, [0])  # warm-up
            for run in range(runs):
                rows.clear()
                timed(
                    "thinking",
                    lambda seed=run: brain._think(
                        "pop", bench_run.LYRICS, {"duration": seconds}, seed, (), seconds, None, lambda: False
                    ),
                )
                tokens.append(len(rows))  # a forward a token: the prompt's gives the first
                read = rows[0]
                timed("whole", lambda seed=run: brain.plan("pop", bench_run.LYRICS, seconds, [seed]))
    finally:
        hook.remove()

    def cell(name: str) -> str:
        values = took[name]
        return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"

    per_token = statistics.median(t / n for t, n in zip(took["thinking_cpu"], tokens, strict=True))
    song = handlers.preparer("generate")(prompt="bench", audio_duration=seconds, think=False).request
    shape = dataclasses.replace(
        duration_estimate.MusicShape.of(song), think=True
    )  # Think's phases, the planner not asked
    declared = sum(
        p.prior for p in duration_estimate.music_phases(shape, loads=False) if p.phase in ("think", "blueprint")
    )
    return "\n".join(
        [
            f"| Think, {seconds} s song, 1 take ({runs} runs, medians) | value |",
            "|---|---|",
            f"| rows the model reads while thinking | {read} |",
            f"| thinking tokens written | {statistics.median(tokens):.0f} |",
            f"| thinking, s | {cell('thinking')} |",
            f"| thinking, CPU s | {cell('thinking_cpu')} |",
            f"| thinking, CPU ms a token | {1e3 * per_token:.2f} |",
            f"| whole planning (thinking + {5 * seconds} codes), s | {cell('whole')} |",
            f"| whole planning, CPU s | {cell('whole_cpu')} |",
            f"| declared (the `duration_estimate` prior, warm, H100 figures) | {declared:.1f} s |",
        ]
    )
