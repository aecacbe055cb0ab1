"""tools/bench.py keeps working: its phase timers see every part of a real (tiny) pipeline call, the DiT's
FLOPs are counted whatever attention kernel runs (grouped-query attention included), and every row
says what the studio would declare to ZeroGPU for it."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import bench
import bench_flops
import bench_real_music
import bench_run
import bench_tables
import random_models
from conftest import music_shape


def test_phases_of_one_call_add_up(warm_backend, tmp_path):
    row = bench_run.run_case(warm_backend.pipe, "cpu", "sft", 10, None, tmp_path)
    assert row["steps"] == 50 and row["encode_s"] > 0 and row["dit_s"] > 0 and row["vae_s"] > 0
    assert row["encode_s"] + row["dit_s"] + row["vae_s"] <= row["pipeline_s"]
    assert (tmp_path / "sft-10s.wav").exists() and row["mfu"] is None and row["tflops"] > 0
    # The hooks are gone afterwards: the pipeline is left as it was found.
    assert not warm_backend.pipe.transformer._forward_hooks and not warm_backend.pipe.transformer._forward_pre_hooks
    assert "Phases" not in repr(warm_backend.pipe.vae.decode)


def _counted_on_real_kernels(transformer, kwargs) -> int:
    """A third count, on real tensors through SDPA's math kernel (plain matmuls the counter sees)."""
    real = {k: torch.randn(v.shape) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        transformer.eval()(**real)
    return counter.get_total_flops()


@pytest.mark.parametrize("kv_heads", [2, 4], ids=["grouped-query 4/2", "4/4"])
def test_the_flop_count_agrees_with_the_shapes_and_the_kernels(kv_heads):
    transformer = random_models.build_pipeline("tiny", shapes={"num_key_value_heads": kv_heads}).transformer
    assert transformer.config.num_attention_heads == 4
    # An odd frame count: the DiT pads to whole patches. Batch 2: guidance's two halves.
    inputs = bench_flops.dit_inputs(transformer.config, 2, 251, 37, torch.float32)
    counted = bench_flops.dit_flops(transformer, inputs)
    assert counted == bench_flops.dit_flops_from_shapes(transformer.config, 2, 251, 37)
    assert counted == _counted_on_real_kernels(transformer, inputs[1])


def test_every_row_gets_tflops_and_mfu_from_the_count(warm_backend, tmp_path, monkeypatch):
    """The code path a CUDA row takes (a known peak), on the tiny model, whose DiT has 4 query and
    2 key/value heads as the XL has 32 and 8: the FLOPs are those of the pipeline's real inputs."""
    config = warm_backend.pipe.transformer.config
    assert config.num_attention_heads == 2 * config.num_key_value_heads
    seen = []
    count = bench_flops.dit_flops

    def spy(transformer, inputs):
        seen.append((inputs[1]["hidden_states"].shape, inputs[1]["encoder_hidden_states"].shape[1]))
        return count(transformer, inputs)

    monkeypatch.setattr(bench_flops, "dit_flops", spy)
    row = bench_run.run_case(warm_backend.pipe, "cpu", "sft", 10, 0.5, tmp_path)
    [((batch, frames, _), cond_tokens)] = seen
    assert batch == 2 and frames == 250  # one forward of both guidance halves, 25 frames a second
    per_forward = bench_flops.dit_flops_from_shapes(config, batch, frames, cond_tokens)
    assert row["tflops"] == pytest.approx(per_forward * 50 / row["dit_s"] / 1e12)
    assert row["mfu"] == pytest.approx(row["tflops"] / 0.5)


def test_the_xl_count_is_the_published_one():
    """``--work-only`` counts 1.23 / 6.59 / 29.28 / 90.59 TFLOP per XL forward (batch 1, 600 conditioning
    tokens) at 10 / 60 / 240 / 600 s; the MFU rows use that same count."""
    with torch.device("meta"):
        transformer = random_models.build_pipeline("xl").transformer
    config = transformer.config
    assert (config.num_attention_heads, config.num_key_value_heads) == (32, 8)
    tflop = [bench_flops.dit_flops_from_shapes(config, 1, s * 25, 600) / 1e12 for s in (10, 60, 240, 600)]
    assert [round(t, 2) for t in tflop] == [1.23, 6.59, 29.28, 90.59]
    counted = bench_flops.dit_flops(transformer, bench_flops.dit_inputs(config, 1, 250, 600, torch.bfloat16))
    assert counted / 1e12 == tflop[0]


def test_each_row_says_what_the_studio_would_declare(warm_backend, tmp_path, monkeypatch):
    import backend
    import duration_estimate

    monkeypatch.setenv("ACE_STUDIO_VARIANT", "xl-sft")
    shape = music_shape(audio_duration=10, inference_steps=8, batch_size=2, guidance_scale=1.0)
    monkeypatch.setattr(backend, "_backend", warm_backend)
    warm = duration_estimate.music_seconds(shape), duration_estimate.music_duration(shape)
    # bench measures a pipeline of its own: it declares as for a built one even where the studio's is not.
    monkeypatch.setattr(backend, "_backend", None)
    row = bench_run.run_case(warm_backend.pipe, "cpu", "turbo", 10, None, tmp_path, takes=2)
    assert row["takes"] == 2 and (row["declared_s"], row["declares_s"]) == warm
    assert row["declared_ratio"] == pytest.approx(row["declared_s"] / row["pipeline_s"])
    assert bench_run.declaration("turbo", 10, 4)[0] > row["declared_s"]
    text = bench_run.tables(_info(), [row])
    assert f"| {row['declared_s']:.1f} ({row['declares_s']}) | {row['declared_ratio']:.2f}× |" in text


def _info() -> dict:
    return {
        "size": "xl",
        "device": "cuda",
        "environment": "env",
        "attention": None,
        "compile": False,
        "vae_tiling": False,
        "import_app_s": 3.0,
        "import_gradio_s": 2.5,
        "cold_build_s": 20.0,
        "overhead": {"studio_s": 1.26, "direct_s": 1.2, "overhead": 0.05},
        "overhead_case": "sft, 60 s",
        "overhead_runs": 3,
    }


def test_the_report_has_every_phase():
    row = {
        "variant": "turbo",
        "seconds": 10.0,
        "takes": 1,
        "steps": 8,
        "encode_s": 0.1,
        "dit_s": 0.8,
        "dit_step_s": 0.1,
        "vae_s": 0.2,
        "pipeline_s": 1.2,
        "write_s": 0.01,
        "host_peak_gib": 1.0,
        "gpu_peak_gib": 3.0,
        "mfu": 0.5,
        "tflops": 494.0,
        "declared_s": 19.5,
        "declares_s": 60,
        "declared_ratio": 16.25,
    }
    text = bench_run.tables(_info(), [row])
    assert (
        "| turbo | 1 | 10 | 8 | 0.100 | 0.1000 | 0.800 | 0.200 | 1.200 | 0.010 | 494 | 50% | 19.5 (60) | 16.25× "
        "| 3.00 | 1.00 |" in text
    )
    assert "**+5.0 %**" in text and "`import app`" in text


def test_every_step_is_benched_eager_and_captured(capsys):
    """``python tools/bench.py --steps --lyrics`` on the tiny models: every row ran both ways and wrote the same."""
    bench.main(["--steps", "--lyrics", "--lengths", "10", "--step-count", "3", "--codes", "50"])
    table = capsys.readouterr().out
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r[0].lstrip("| ") for r in rows] == [
        "planner, 1 take, ms a code",
        "planner, 4 takes, ms a code",
        "Think's planning of a 10 s song, s",
        "lyrics writer, tokens a second",
        "DiT at 10 s, ms a step",
    ]
    assert all(float(r[1]) > 0 and float(r[2]) > 0 for r in rows)
    assert [r[3] for r in rows] == ["True"] * 4 + ["0"]  # the same tokens, latents identical in fp32
    assert all(r[6] == "False" for r in rows)  # nothing fell back


def test_thinks_planning_is_benched_with_its_rows_and_declaration():
    """``python tools/bench.py --think``: the rows the model read while thinking (one: no guidance), and every
    figure measured."""
    table = bench_tables.think_table(seconds=10, runs=1)
    cells = dict(tuple(c.strip() for c in row.strip("|").split("|")) for row in table.splitlines()[2:])
    assert cells["rows the model reads while thinking"] == "1"
    assert int(cells["thinking tokens written"]) > 6 and float(cells["thinking, s"].split()[0]) > 0
    assert float(cells["whole planning (thinking + 50 codes), s"].split()[0]) > float(cells["thinking, s"].split()[0])
    assert cells["declared (the `duration_estimate` prior, warm, H100 figures)"] == "25.8 s"  # 2 + 21.25 + 50 × 0.05


def test_the_soaks_figures_read_the_samples_by_the_requests_done():
    """``soak.summary``: RSS at the warm-up's end (its highest while the warm-up ran), the peak after it,
    the last sample, and each tenth's highest (samples are noted with the requests done so far)."""
    import soak

    mb = soak.MB
    samples = [(0.0, 0, 150 * mb), (1.0, 2, 900 * mb), (2.0, 4, 1000 * mb), (3.0, 7, 1300 * mb), (4.0, 10, 1100 * mb)]
    found = soak.summary(samples, 10, 4, {"generate": [9, 1]}, 61.4)
    assert (found["start_mb"], found["warm_mb"], found["peak_mb"], found["end_mb"]) == (150, 1000, 1300, 1100)
    assert found["tenths_mb"] == [150, 0, 900, 0, 1000, 0, 0, 1300, 0, 0]
    assert found["failed"] == 1 and found["by_kind"] == {"generate": 9} and found["seconds"] == 61


def test_the_real_music_metrics_hold_bar_lines_to_the_heard_beats():
    """``bench_real_music``'s metrics on beat lists: bar lines on the beats, then half a beat off; a tempo
    at two-thirds, half and 1.5 times the reference's named as its octave class; the bars' steadiness."""
    beats = [0.1 + 0.5 * i for i in range(40)]  # 120 BPM
    lines = beats[::4]
    assert bench_real_music.on_beat(lines, beats) == 1.0
    assert bench_real_music.on_beat([t + 0.25 for t in lines], beats) == 0.0
    assert bench_real_music.on_beat([t + 0.06 for t in lines], beats) == 1.0  # within the field's ±70 ms
    assert bench_real_music.on_beat([0.0, *lines, 30.0], beats) == 1.0  # lines outside what was heard: not judged
    assert bench_real_music.on_beat(lines, [*lines[::2], lines[-1] + 1.0]) == 0.5  # every other bar line
    assert [bench_real_music.octave_class(bpm, 120.0) for bpm in (80.0, 60.5, 180.0, 240.0, 121.0, 100.0)] == [
        "2/3",
        "1/2",
        "3/2",
        "2",
        None,
        None,
    ]
    assert bench_real_music.error_pct(117.6, 120.0) == pytest.approx(-2.0)
    assert bench_real_music.steadiness_ms(lines) == pytest.approx(0.0, abs=1e-9)
    wobbly = [t + (0.05 if i % 2 else 0.0) for i, t in enumerate(lines)]  # bars of 2.05 and 1.95 s, alternating
    assert bench_real_music.steadiness_ms(wobbly) == pytest.approx(100.0)  # the short ones from the median


def test_any_tracker_is_held_to_the_references_of_an_excerpt(tmp_path):
    """``measure`` cuts the excerpt as the studio hears a song (48 kHz, channels × samples), hands it to the
    tracker given (told the reference's tempo rounded, or not) and scores what it says."""
    import numpy as np
    import soundfile as sf

    path = tmp_path / "song.wav"
    sf.write(path, np.zeros((44100 * 6, 2), dtype=np.float32), 44100)
    beats = [0.25 + 0.5 * i for i in range(8)]
    excerpt = {
        "id": "x",
        "path": str(path),
        "start": 1.0,
        "seconds": 4.0,
        "agree": True,
        "reference_bpm": 119.6,
        "tags": {"steadiness": "steady"},
        "references": {"madmom": {"bpm": 119.8, "beats": beats, "downbeats": beats[::4]}, "essentia": {"bpm": 119.4}},
    }
    heard = []

    def tracker(stereo, sr, beats_per_bar, bpm):
        heard.append((stereo.shape, sr, bpm))
        return beats[1::4], 4, 80.0

    row = bench_real_music.measure(excerpt, tracker, told=True)
    assert heard == [((2, 4 * 48000), 48000, 120.0)]
    assert row["on_beat"] == 1.0 and row["on_downbeat"] == 0.0 and row["octave"] == "2/3"
    line = bench_real_music.summary([row], {"x": excerpt})
    assert "tempo within 2 % on 0 of 1" in line and "x (2/3)" in line and "steady bars (p95 ≤ 20 ms) on 0 of 1" in line


def test_the_suites_cpu_is_read_by_kind_of_process_below_pytest():
    """tools/bench_suite.py: a child's CPU is read from /proc while it runs, found below its parent (not a process
    beside it), and counted under its kind."""
    import subprocess
    import sys
    import threading

    import bench_suite

    seen: dict[str, bench_suite.Seen] = {}
    done = threading.Event()
    sampler = threading.Thread(target=bench_suite.sample, args=(seen, done))
    sampler.start()
    try:
        work = "import time\nend = time.process_time() + 1.5\nwhile time.process_time() < end: pass"
        parent = subprocess.Popen(
            [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {work!r}])"]
        )
        beside = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
        parent.wait()
    finally:
        done.set()
        sampler.join()
        beside.communicate(b"")
    tree = bench_suite.below(seen, parent.pid)
    assert [p.pid for p in tree][0] == parent.pid and beside.pid not in {p.pid for p in tree}
    assert len(tree) == 2 and max(p.cpu for p in tree) >= 0.5, tree  # the child's work, read while it ran
    rows = bench_suite.table(tree)
    assert rows[1].split()[-1] == "all" and all("new interpreter: -c" in row for row in rows[2:]), rows


def test_ci_counts_the_pytest_below_its_shell_and_not_the_shell_or_the_watcher():
    """tools/bench_suite.py --below: .ci/run's shell runs README's command as written; the CPU counted is the tree
    of the first ``python -m pytest`` below it (its xdist workers inside), not the shell, the watcher or pip."""
    import bench_suite

    def seen(pid: int, parent: int, command: str, cpu: float) -> bench_suite.Seen:
        return bench_suite.Seen(pid, parent, command.split()[0], command, cpu)

    processes = [
        seen(10, 1, "bash -c python -m pytest", 1.0),
        seen(11, 10, "python tools/bench_suite.py --below 10", 2.0),
        seen(12, 10, "pip install -r requirements-dev.txt", 30.0),
        seen(13, 10, "python -m pytest", 4.0),
        seen(14, 13, "python -c from xdist.looponfail import ... -m pytest", 100.0),
        seen(15, 14, "python -m pytest --co tests/test_lrc.py", 8.0),
    ]
    table = {f"{p.pid}:0": p for p in processes}
    assert bench_suite.pytest_roots(table, 10) == [13]
    assert sum(p.cpu for p in bench_suite.below(table, 13)) == 112.0
