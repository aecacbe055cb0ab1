"""bench.py keeps working: its phase timers see every part of a real (tiny) pipeline call."""

from __future__ import annotations

import bench


def test_phases_of_one_call_add_up(warm_backend, tmp_path):
    row = bench.run_case(warm_backend.pipe, "cpu", "sft", 10, None, tmp_path)
    assert row["steps"] == 50 and row["encode_s"] > 0 and row["dit_s"] > 0 and row["vae_s"] > 0
    assert row["encode_s"] + row["dit_s"] + row["vae_s"] <= row["pipeline_s"]
    assert (tmp_path / "sft-10s.wav").exists() and row["mfu"] is None
    # The hooks are gone afterwards: the pipeline is left as it was found.
    assert not warm_backend.pipe.transformer._forward_hooks and not warm_backend.pipe.transformer._forward_pre_hooks
    assert "Phases" not in repr(warm_backend.pipe.vae.decode)


def test_the_report_has_every_phase():
    row = {"variant": "turbo", "seconds": 10.0, "steps": 8, "encode_s": 0.1, "dit_s": 0.8, "dit_step_s": 0.1,
           "vae_s": 0.2, "pipeline_s": 1.2, "write_s": 0.01, "host_peak_gib": 1.0, "gpu_peak_gib": 3.0,
           "mfu": 0.5, "tflops": 494.0}  # fmt: skip
    info = {"size": "xl", "device": "cuda", "environment": "env", "attention": None, "compile": False,
            "vae_tiling": False, "import_app_s": 3.0, "import_gradio_s": 2.5, "cold_build_s": 20.0,
            "overhead": {"studio_s": 1.26, "direct_s": 1.2, "overhead": 0.05}, "overhead_case": "sft, 60 s",
            "overhead_runs": 3}  # fmt: skip
    text = bench.tables(info, [row])
    assert "| turbo | 10 | 8 | 0.100 | 0.1000 | 0.800 | 0.200 | 1.200 | 0.010 | 494 | 50% | 3.00 | 1.00 |" in text
    assert "**+5.0 %**" in text and "`import app`" in text
