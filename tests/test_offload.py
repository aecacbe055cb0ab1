"""The offload mode: chosen from the card's reported free memory, and where every model is at each
stage of a take.

No GPU here, so ``torch.device("cpu:0")`` plays the accelerator: moves to it are real ``.to`` calls
(diffusers' and accelerate's hooks make them too), told apart from parking (``.to("cpu")``) by their
argument, and ``offload.device_memory`` reports a card's free and total memory (a fake report, the one
thing a CPU cannot give). Nothing inside the pipeline or the models is replaced.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import backend
import bench_memory
import devices
import generation
import lyrics
import models
import offload
import runs
import status
from music_request import Call, MusicRequest, PlanArgs, Render

ACCELERATOR = "cpu:0"
GIB = 2**30


@pytest.mark.parametrize(
    ("free", "total", "mode"),
    [
        (7.1, 7.6, "sequential"),
        (11.1, 11.6, "model"),
        (15.1, 15.6, "none"),
        (13.6, 15.6, "model"),
        (23.1, 23.6, "none"),
        (79.1, 79.6, "none"),
    ],
)
def test_auto_picks_the_mode_from_the_reported_free_memory(free, total, mode, monkeypatch):
    assert offload.choose(free, total) == mode
    # The same through torch's own report, as a card gives it in bytes (a 16 GB card with a desktop
    # on it has less free: 13.6 GiB, and then the whole pipeline no longer fits).
    monkeypatch.delenv("ACE_STUDIO_OFFLOAD", raising=False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (int(free * GIB), int(total * GIB)))
    assert offload.device_memory("cuda") == pytest.approx((free, total))
    assert offload.decide("cuda") == mode


def test_what_is_asked_for_wins_except_on_zerogpu_and_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (79 * GIB, 80 * GIB))
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    for mode in offload.MODES:
        monkeypatch.setenv("ACE_STUDIO_OFFLOAD", mode)
        assert offload.decide("cuda") == mode
        assert offload.decide("cpu") == "none"
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")  # a ~70 GB slice whose calls run in forked workers
    assert offload.decide("cuda") == "none" and offload.device_memory("cuda") is None
    monkeypatch.setenv("ACE_STUDIO_OFFLOAD", "half")
    with pytest.raises(models.ModelLoadError, match="ACE_STUDIO_OFFLOAD 'half'"):
        offload.decide("cuda")


def test_the_sizes_it_decides_by_are_the_real_models():
    counts = bench_memory.parameter_counts()
    pipeline = sum(v for k, v in counts.items() if k not in ("planner", "lyrics")) * 2 / GIB
    assert pytest.approx(pipeline, abs=0.01) == offload.PIPELINE_GIB
    assert pytest.approx(counts["transformer"] * 2 / GIB, abs=0.01) == offload.LARGEST_PART_GIB
    assert max(counts, key=lambda k: counts[k] if k in models.PIPELINE_PARTS else 0) == "transformer"
    # What ZeroGPU packs (docs/performance.md's 37.25 GiB), and Demucs beside it (fp32), to the same count.
    gib = {k: v * 2 / GIB for k, v in counts.items()}
    base = gib["transformer"] + gib["condition_encoder"]
    counted = {"music": pipeline, "base": base, "planner": gib["planner"], "lyrics": gib["lyrics"]}
    assert pytest.approx(counted, abs=0.01) == offload.PACKED_GIB
    assert pytest.approx(bench_memory.stems_parameters() * 4 / GIB, abs=0.01) == offload.STEMS_GIB


def published_configs() -> list[dict]:
    """``spaces``' own configuration of each ZeroGPU card, as the installed package publishes it."""
    import json
    from importlib.resources import files

    from spaces.zero import config

    return json.loads(files("spaces.zero").joinpath(config.CONFIGS_FILENAME).read_text())


def test_the_weights_the_studio_packs_on_zerogpu_stay_under_the_whole_card_threshold():
    """``spaces`` 0.51.3 runs every call as ``xlarge`` (a whole card at twice the quota) once the
    weights a Space packs pass its card's ``xlarge_threshold``; the studio's, with Demucs beside them in a
    split, stay under every card's that has one."""
    thresholds = {c["model"]: c["xlarge_threshold"] for c in published_configs() if c["xlarge_threshold"]}
    assert thresholds  # the rule is published (45,097,156,608 B = 42 GiB on the RTX Pro 6000 in 0.51.3)
    packed = sum(offload.PACKED_GIB.values()) * GIB
    for card, threshold in thresholds.items():
        headroom = (threshold - packed - offload.STEMS_GIB * GIB) / GIB
        print(f"\n{card}: {packed / GIB:.2f} GiB packed + {offload.STEMS_GIB} GiB Demucs; {headroom:.2f} GiB to spare")
        assert headroom > 0, (card, packed / GIB, threshold / GIB)


class Trace:
    """Where each pipeline part was last sent, from the ``.to`` calls made on it (by the pipeline,
    diffusers or accelerate's hooks). Watched on the class: accelerate removes attributes it did not
    expect from the modules it unhooks."""

    def __init__(self, pipe, monkeypatch):
        self.where: dict[str, str] = {}
        parts = {id(getattr(pipe, name)): name for name in models.PIPELINE_PARTS}
        real = torch.nn.Module.to

        def to(module, *args, **kwargs):
            target = args[0] if args else kwargs.get("device")
            if id(module) in parts and isinstance(target, str | torch.device):
                self.where[parts[id(module)]] = str(torch.device(target))
            return real(module, *args, **kwargs)

        monkeypatch.setattr(torch.nn.Module, "to", to)

    def on_accelerator(self) -> set[str]:
        return {name for name, device in self.where.items() if device == ACCELERATOR}


@pytest.fixture
def card(studio_env, with_planner, tiny_lyrics_dir, monkeypatch):
    """The studio on a pretend 12 GB card (``auto`` picks ``model``), with the tiny pipeline,
    planner and lyrics LM; yields the trace of the pipeline's parts."""
    monkeypatch.delenv("ACE_STUDIO_OFFLOAD", raising=False)
    monkeypatch.setattr(models, "pick_device", lambda: ACCELERATOR)
    monkeypatch.setattr(offload, "device_memory", lambda device: (11.1, 11.6))
    monkeypatch.setenv("ACE_STUDIO_LYRICS_MODEL", str(tiny_lyrics_dir))
    traces = []
    real_load = models.load_pipeline

    def load_and_trace(*args, **kwargs):
        pipe = real_load(*args, **kwargs)
        traces.append(Trace(pipe, monkeypatch))
        return pipe

    monkeypatch.setattr(models, "load_pipeline", load_and_trace)
    devices.reset_offload_mode()
    lyrics.reset_writer()
    devices.forget_resident("lyrics")  # an earlier test's writer may still be registered
    yield traces
    lyrics.reset_writer()
    devices.forget_resident("lyrics")
    devices.reset_offload_mode()


def _think_request(seconds: float = 10.0) -> MusicRequest:
    pipeline = {
        "prompt": "warm lo-fi",
        "lyrics": "[Verse]\nrain",
        "audio_duration": seconds,
        "vocal_language": "en",
        "num_inference_steps": 3,
        "guidance_scale": 7.0,
        "shift": 3.0,
        "task_type": "text2music",
    }
    plan = PlanArgs("warm lo-fi", "[Verse]\nrain", seconds, {})
    return MusicRequest("generate", Render(Call(**pipeline), [5]), seconds, "wav", plan=plan)


def test_every_part_is_where_model_offload_puts_it_at_each_stage_of_a_take(card, warm_backend):
    built = backend.get_backend()
    (trace,) = card
    assert built.offload == "model" and backend.load_state()["offload"] == "model"
    # The audio tokenizer is used outside forward() (Think's codes), so it stays; nothing else is there.
    assert trace.on_accelerator() == {"audio_tokenizer"}
    stages = {}

    def plan_progress(stage, done, total, *rest):
        stages.setdefault("planning", (devices.placement(), trace.on_accelerator()))

    def step_progress(step, total):
        stages.setdefault("denoising", (devices.placement(), trace.on_accelerator()))

    result = generation.run_music(_think_request(), step_progress, None, plan_progress)
    assert result.planners[0]["codes"] > 0  # the take was planned, then rendered from the blueprint
    assert stages["planning"] == ({"music": "offloaded", "planner": ACCELERATOR}, {"audio_tokenizer"})
    assert stages["denoising"] == ({"music": "offloaded", "planner": "cpu"}, {"transformer", "audio_tokenizer"})
    assert devices.placement() == {"music": "offloaded", "planner": "cpu"}
    assert trace.on_accelerator() == {"audio_tokenizer"}
    # The hooks change where the weights are, not what they compute.
    plain = _think_request().render
    assert np.array_equal(built.run(plain)["audio"], warm_backend.run(plain)["audio"])

    # The lyrics LLM: on the card while it holds the GPU (seen from its forward passes), back on the CPU after it.
    seen = []
    lyrics.get_writer().model.register_forward_pre_hook(lambda *_: seen.append(devices.placement()))
    assert list(lyrics.stream_lyrics(lyrics.make_request("rain", structure="short-loop", seed=1), "English"))
    assert seen and all(p["lyrics"] == ACCELERATOR and p["planner"] == "cpu" for p in seen)
    assert devices.placement()["lyrics"] == "cpu"


def test_a_stopped_song_leaves_no_part_on_the_card(card, tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_CANCEL_DIR", str(tmp_path))
    built = backend.get_backend()
    (trace,) = card
    run_id = runs.start_run("me:generate")
    during = []

    def progress(step, total):
        during.append(trace.on_accelerator())
        runs.request_stop("me:generate")

    request = _think_request().render
    with pytest.raises(runs.Cancelled):
        built.run(request, progress=progress, run_id=run_id)
    runs.finish_run(run_id)
    assert during == [{"transformer", "audio_tokenizer"}]
    # Stop raised out of the pipeline before diffusers sent the DiT back; the studio does it.
    assert trace.on_accelerator() == {"audio_tokenizer"}


def test_without_offload_on_a_big_card_everything_stays(card, monkeypatch):
    monkeypatch.setattr(offload, "device_memory", lambda device: (79.1, 79.6))
    devices.reset_offload_mode()
    built = backend.get_backend()
    (trace,) = card
    assert built.offload == "none"
    assert trace.on_accelerator() == set(models.PIPELINE_PARTS)
    generation.run_music(_think_request(), None, None, None)
    assert devices.placement() == {"music": ACCELERATOR, "planner": ACCELERATOR}
    assert trace.on_accelerator() == set(models.PIPELINE_PARTS)


def test_sequential_offload_streams_all_but_the_audio_tokenizer(tiny_pipeline_dir):
    pipe = models.load_pipeline(str(tiny_pipeline_dir), models.VARIANTS["xl-sft"])
    offload.apply(pipe, "sequential", ACCELERATOR)
    assert all(p.is_meta for p in pipe.transformer.parameters())  # brought in layer by layer
    assert not any(p.is_meta for p in pipe.audio_tokenizer.parameters())
    assert "audio_tokenizer" in type(pipe).model_cpu_offload_seq.split("->")  # the class is left as it was


def test_a_lyrics_model_bigger_than_the_card_is_refused_with_a_way_out(tiny_lyrics_dir, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_LYRICS_MODEL", str(tiny_lyrics_dir))
    monkeypatch.setenv("ACE_STUDIO_LYRICS_ENGINE", "transformers")
    monkeypatch.setattr(models, "pick_device", lambda: ACCELERATOR)
    monkeypatch.setattr(offload, "device_memory", lambda device: (1e-6, 2e-6))  # GiB: smaller than even the tiny LM
    devices.reset_offload_mode()
    lyrics.reset_writer()
    try:
        with pytest.raises(models.ModelLoadError, match="ACE_STUDIO_LYRICS_MODEL at a smaller model"):
            lyrics.get_writer()
    finally:
        lyrics.reset_writer()
        devices.reset_offload_mode()


def test_the_header_names_the_mode(monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    for mode in offload.MODES:
        state = {"state": "ready", "device": "cuda", "load_seconds": 1.0, "offload": mode}
        monkeypatch.setattr(backend, "load_state", lambda state=state: state)
        assert f"Offload: {mode}" in status.studio_status()[0]
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert "Offload" not in status.studio_status()[0]


def test_turns_still_exclude_each_other_under_offload(card):
    backend.get_backend()
    taken = []
    with devices.holding_gpu("music"):
        probe = threading.Thread(target=lambda: taken.append(devices._gpu_lock.acquire(timeout=0.2)))
        probe.start()
        probe.join()
    assert taken == [False]
