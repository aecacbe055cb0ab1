"""How fast the studio is, phase by phase. Run by hand from the repository's root; prints Markdown tables.

    python tools/bench.py                  # tiny random models on the CPU, or the XL architecture on CUDA
    python tools/bench.py --size xl --lengths 10,60,240,600 --attention flash --compile --no-vae-tiling
    python tools/bench.py --markdown docs/performance.md   # also append the tables there
    python tools/bench.py --load-memory /tmp/xl-fp32       # peak host memory of building bf16 XL from FP32 shards
    python tools/bench.py --steps --lyrics                 # every model's step eager against captured (graphs)
    python tools/bench.py --think --threads 1              # Think's planning of a 60 s song: rows while thinking, s
    python tools/bench.py --duration-table outputs/pace.json  # the durations a studio learned, as a table (any machine)
    python tools/bench.py --duration-learn 4               # what 4 identical 240 s Think songs declare, as they are learned
    python tools/bench.py --latents --threads 1            # a take's own latents against the VAE encode an edit made
    python tools/bench.py --join --busy 0,2                # the first and warm queue joins after `python app.py` starts
    python tools/bench.py --bars                           # the bar grid on click tracks: furthest bar line, CPU s a minute
    python tools/bench.py --in-time                        # loops warped onto their grid on the stand-in band; the stretchers
    python tools/bench.py --real-music --only sing-by-product  # the map on real recordings against madmom and essentia
    python tools/bench.py --machine                        # this machine's speed on fixed work: the suite's yardstick
    python tools/bench.py --metres                         # every tempo (30-300) and metre on the band: map, lock, loop

Phases per (variant, takes, song length): text and lyric encoding, DiT seconds per step, its TFLOP/s
(FLOPs counted on a meta copy of the DiT) and model FLOPs utilisation on a GPU, VAE decode, writing
the WAV, peak host and GPU memory, what the studio would declare to ZeroGPU for that request
against the pipeline seconds measured, and the lyric alignment after it (one DiT forward over the
takes, then the DTW on the CPU; ``--work-only`` counts its FLOPs at XL's shapes). Once per run:
``import app``, the cold pipeline build (random weights saved to disk, then loaded by the studio's
loader) and the studio overhead: one ``/generate`` through ``gradio_client`` against a direct
model run (``sampler``) doing the same work on the same pipeline. Weights are random: speed does not
depend on their values.

This file is the command line; the measurements live beside it: ``bench_run`` (the speed table),
``bench_flops`` (the DiT's work), ``bench_tables`` (the one-off tables), ``bench_memory`` (memory and
what fits), ``bench_steps`` (eager against captured steps), ``bench_duration`` (the learned durations),
``bench_join`` (how soon a join answers after start), ``bench_bars`` (the bar grid's accuracy and cost),
``bench_in_time`` (loops put in time on the stand-in band, and the stretch libraries compared),
``bench_real_music`` (the map on real recordings, held to the field's trackers).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import bench_bars
import bench_duration
import bench_flops
import bench_in_time
import bench_join
import bench_memory
import bench_real_music
import bench_run
import bench_steps
import bench_tables
import studio_root


def steps_table(args: argparse.Namespace) -> str:
    """``--steps``: every model's step eager and captured, side by side (``bench_steps``)."""
    import models

    device = models.pick_device()
    size = args.size or ("xl" if device == "cuda" else "tiny")
    lengths = [float(s) for s in args.lengths.split(",")]
    found = bench_steps.rows(size, device, lengths, args.lyrics, steps=args.step_count, codes=args.codes)
    where = "" if device == "cuda" else " (no CUDA: 'captured' is the same static-buffer path, nothing captured)"
    return f"{bench_run.environment(device)}, {size} shapes{where}\n\n{bench_steps.table(found)}"


def _speed_options(parser: argparse.ArgumentParser) -> None:
    """The speed table's options (no flag below: the table is what runs)."""
    parser.add_argument("--size", choices=["tiny", "xl"], help="default: xl on CUDA, tiny elsewhere")
    parser.add_argument("--lengths", default="10,60,240,600", help="seconds of audio, comma-separated")
    parser.add_argument("--variants", default="turbo,sft")
    parser.add_argument("--takes", default="1", help="takes per request, comma-separated (e.g. 1,4)")
    parser.add_argument("--attention", help="diffusers attention backend, e.g. native, flash, _native_cudnn")
    parser.add_argument("--compile", action="store_true", help="compile each DiT layer (regional torch.compile)")
    parser.add_argument(
        "--no-vae-tiling",
        dest="vae_tiling",
        action="store_false",
        help="decode the VAE in one piece (the studio tiles it)",
    )
    parser.add_argument("--overhead", default="sft:60", help="variant:seconds for the studio-overhead check; '' skips")
    parser.add_argument("--overhead-runs", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, if not known by name")
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (1 on a machine others share)")


def _memory_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-only", action="store_true", help="only count the XL DiT FLOPs per step (any machine)")
    parser.add_argument(
        "--load-memory",
        type=Path,
        metavar="DIR",
        help="write random FP32 XL shards in upstream's layout to DIR (kept for reruns), then measure "
        "the peak host memory of building the bf16 pipeline from them",
    )
    parser.add_argument(
        "--base-load", type=Path, help="seconds and peak host memory of building the XL base's DiT (Edit's parts)"
    )
    parser.add_argument("--load-layers", type=int, help="DiT layers of that checkpoint (default: XL's 32)")
    parser.add_argument("--load-dtype", default="bfloat16", help="the dtype it is built in (float16: a Mac's)")
    parser.add_argument(
        "--memory-table",
        action="store_true",
        help="parameter counts, bf16 sizes and the offload mode per card size (any machine)",
    )


def _one_off_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--decode",
        action="store_true",
        help="what decoding hostile uploads costs (memory, seconds), as uploads.load does it",
    )
    parser.add_argument("--encode", action="store_true", help="bytes and CPU seconds a minute of each take format")
    parser.add_argument(
        "--machine", action="store_true", help="this machine's CPU s on fixed work (the suite's yardstick)"
    )
    parser.add_argument("--json-depth", action="store_true", help="the gate's depth check's CPU a byte (asgi_gate)")
    parser.add_argument("--latents", action="store_true", help="a take's own latents against a VAE encode (tiny, CPU)")
    parser.add_argument(
        "--planner",
        action="store_true",
        help="Think's planner alone: ms per code, sampling against the model, 4 takes against 1",
    )
    parser.add_argument(
        "--think",
        action="store_true",
        help="Think's planning of a 60 s song (tiny planner): rows while thinking, thinking and whole planning s",
    )
    parser.add_argument("--runs", type=int, default=5, help="with --think or --join: runs (medians are printed)")
    parser.add_argument(
        "--steps",
        action="store_true",
        help="eager against captured steps (graphs): planner, Think, lyrics (with --lyrics), DiT",
    )
    parser.add_argument("--lyrics", action="store_true", help="with --steps: the lyrics writer too (7B shape on CUDA)")
    parser.add_argument("--step-count", type=int, default=8, help="with --steps: DiT steps a call")
    parser.add_argument("--codes", type=int, default=300, help="with --steps: blueprint codes (300: a 60 s song)")
    parser.add_argument(
        "--duration-table", type=Path, help="print the durations a studio learned (its pace.json) as a table"
    )
    parser.add_argument(
        "--duration-learn", type=int, help="declarations of N identical 240 s Think songs (tiny models)"
    )
    parser.add_argument("--bars", action="store_true", help="the bar grid on click tracks (song_map): accuracy, CPU")
    parser.add_argument("--in-time", action="store_true", help="loops warped onto their grid (loops, warp) on the band")
    parser.add_argument(
        "--real-music", action="store_true", help="the map on real recordings (Debian's soundtracks) against references"
    )
    parser.add_argument("--only", action="append", help="with --real-music: this excerpt id alone (repeatable)")
    parser.add_argument(
        "--metres", action="store_true", help="every tempo and metre offered on the band: bar lines, tempo, lock, loop"
    )
    parser.add_argument("--join", action="store_true", help="the first and warm joins after `python app.py` starts")
    parser.add_argument("--busy", default="0,2", help="with --join: busy processes beside it, comma-separated")
    parser.add_argument("--warmup", action="store_true", help="with --join: the start-up build running meanwhile")
    parser.add_argument("--root", type=Path, action="append", help="with --join: another checkout too (repeatable)")


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _speed_options(made)
    _memory_options(made)
    _one_off_options(made)
    return made


def one_off(args: argparse.Namespace) -> Callable[[], str] | None:
    """The table a flag asks for instead of the speed table, or None."""
    flags: list[tuple[object, Callable[[], str]]] = [
        (args.work_only, lambda: bench_flops.work_table([float(s) for s in args.lengths.split(",")])),
        (args.load_memory, lambda: bench_memory.load_memory(args.load_memory, args.load_layers, dtype=args.load_dtype)),
        (args.base_load, lambda: bench_memory.base_load(args.base_load) + "\n" + bench_memory.parts_fit()),
        (args.memory_table, bench_memory.memory_table),
        (args.decode, bench_tables.decode_table),
        (args.planner, bench_tables.planner_table),
        (args.think, lambda: bench_tables.think_table(runs=args.runs)),
        (args.steps, lambda: steps_table(args)),
        (args.encode, bench_tables.encode_table),
        (args.json_depth, bench_tables.json_depth_table),
        (args.machine, bench_tables.machine_table),
        (args.latents, bench_tables.latents_table),
        (args.bars, lambda: bench_bars.table() + "\n\n" + bench_bars.long_song_cost()),
        (args.in_time, lambda: bench_in_time.table() + "\n\n" + bench_in_time.libraries()),
        (args.real_music, lambda: bench_real_music.run(args.only)),
        (args.metres, bench_in_time.metres_table),
        (args.duration_table, lambda: bench_duration.table(args.duration_table)),
        (args.duration_learn, lambda: bench_duration.learned_songs(args.duration_learn)),
        (
            args.join,
            lambda: bench_join.table(_roots(args), [int(n) for n in args.busy.split(",")], args.warmup, args.runs),
        ),
    ]
    return next((table for asked, table in flags if asked), None)


def _roots(args: argparse.Namespace) -> list[Path]:
    return [*(args.root or []), studio_root.ROOT]


def speed_table(args: argparse.Namespace) -> str:
    """Every (variant, takes, length) through the pipeline, phase by phase, then the studio's overhead."""
    import_app, import_gradio = bench_run.import_app_seconds()
    import models

    device = models.pick_device()
    size = args.size or ("xl" if device == "cuda" else "tiny")
    work = Path(tempfile.mkdtemp(prefix="ace-bench-"))
    pipe, cold = bench_run.cold_build(size, device, work / "pipeline")
    bench_run.apply_speedups(pipe, args.attention, args.compile, args.vae_tiling)
    peak = bench_flops.peak_tflops(device, args.peak_tflops)
    rows = []
    cases = [
        (v, float(s), int(t))
        for v in args.variants.split(",")
        for t in args.takes.split(",")
        for s in args.lengths.split(",")
    ]
    for variant, seconds, takes in cases:
        if args.compile:
            bench_run.run_case(pipe, device, variant, seconds, None, work, takes)  # compile outside the measurement
        rows.append(bench_run.run_case(pipe, device, variant, seconds, peak, work, takes))
        print(bench_run.progress_line(rows[-1]), flush=True)
    info = {
        "size": size,
        "device": device,
        "environment": bench_run.environment(device),
        "attention": args.attention,
        "compile": args.compile,
        "vae_tiling": args.vae_tiling,
        "import_app_s": import_app,
        "import_gradio_s": import_gradio,
        "cold_build_s": cold,
    }
    if args.overhead:
        variant, seconds = args.overhead.split(":")
        del pipe
        info["overhead"] = bench_run.studio_overhead(
            work / "pipeline", device, variant, float(seconds), work / "out", args.overhead_runs
        )
        info["overhead_case"] = f"{variant}, {float(seconds):g} s"
        info["overhead_runs"] = args.overhead_runs
    return bench_run.tables(info, rows)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    studio_root.reach()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    table = one_off(args)
    if table is not None:
        print(table())
        return
    text = speed_table(args)
    print()
    print(text)
    if args.markdown:
        with args.markdown.open("a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
