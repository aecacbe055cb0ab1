"""Captured steps (``graphs``): the static-buffer path every model's step takes gives what the
eager loops give (the planner's tokens, the lyrics writer's, the DiT's latents), each step traces
whole (no host sync, no data-dependent branch: what would break a capture on a GPU), and a capture
that fails or disagrees falls back to eager with one log line while the request succeeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import decoding
import graphs
import modes
import planner
import random_models
from test_audio_modes import tone

LYRICS = "[Verse]\nrain on the window\nlights across the bay\n\n[Chorus]\nhold on"


def _eager_and_static(monkeypatch, run):
    """``run()`` with every step plain (``off``: the eager loops) and through the static buffers."""
    monkeypatch.setenv("ACE_STUDIO_GRAPHS", "off")
    eager = run()
    monkeypatch.setenv("ACE_STUDIO_GRAPHS", "auto")
    return eager, run()


# ---------------------------------------------------------------- the module itself


def test_the_static_buffers_give_what_the_step_gives():
    def fn(x, w):
        return x @ w + 1, x.sum(-1)

    step = graphs.CapturedStep(fn, "test", "cpu")
    x, w = torch.randn(3, 4), torch.randn(4, 5)
    first = step(x, w)
    x += 1  # the caller's tensors change: the step read its own copies
    second = step(x, w)
    for got, want in zip(second, fn(x, w), strict=True):
        assert torch.equal(got, want)
    assert not torch.equal(first[0], second[0]) and step.captures == 0 and not step.eager
    # A new shape is a new set of buffers; past MAX_SHAPES the step calls the function as it is.
    for n in range(1, graphs.MAX_SHAPES + 2):
        y = torch.randn(n, 4)
        assert torch.equal(step(y, w)[0], fn(y, w)[0])
    assert len(step.statics) == graphs.MAX_SHAPES


@pytest.mark.parametrize("failure", ["raise", "mismatch"])
def test_a_failed_capture_says_so_once_and_runs_eagerly(failure, monkeypatch, capsys):
    monkeypatch.setenv("ACE_STUDIO_GRAPHS", failure)
    step = graphs.CapturedStep(lambda x: x * 2, "test step", "cpu", tolerance=graphs.DIT_TOLERANCE)
    for n in range(3):
        x = torch.full((2, 3), float(n))
        assert torch.equal(step(x), x * 2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("graphs:")]
    assert len(lines) == 1 and "test step" in lines[0] and "eager for the rest of this call" in lines[0]
    assert step.eager and step.captures == 0
    if failure == "mismatch":
        assert step.difference == pytest.approx(1.0) and "differs from eager by up to 1" in lines[0]


def test_a_replay_that_fails_later_runs_eagerly_from_there(capsys):
    class Broken(graphs._Graph):
        def run(self, inputs):
            raise RuntimeError("CUDA error: an illegal memory access")

    step = graphs.CapturedStep(lambda x: x + 1, "test step", "cpu")
    x = torch.ones(2)
    step.graphs[graphs._signature((x,))] = Broken((x.clone(),), None, None)
    assert torch.equal(step(x), x + 1) and torch.equal(step(x), x + 1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("graphs:")]
    assert len(lines) == 1 and "illegal memory access" in lines[0] and step.eager and not step.graphs


class _Doubler(torch.nn.Module):
    def forward(self, hidden_states, return_dict=True):
        return (hidden_states * 2,)


def test_a_released_forward_is_the_modules_own():
    """After ``release`` (the denoising's last step) the buffers are gone and every call, the
    alignment pass's included, runs the module's own forward."""
    module, x = _Doubler(), torch.randn(4, 3)
    with graphs.replaying(module, "test") as replayed:
        assert torch.equal(module(hidden_states=x, return_dict=False)[0], x * 2)
        assert replayed.report()["calls"] == 1 and any(s.statics for s in replayed.steps.values())
        replayed.release()
        assert not any(s.graphs or s.statics for s in replayed.steps.values())
        assert torch.equal(module(hidden_states=x, return_dict=False)[0], x * 2)
        assert replayed.report()["calls"] == 1
    assert "forward" not in module.__dict__


def test_a_replay_is_held_to_its_tolerance():
    reference = torch.tensor([1.0, -4.0])
    assert graphs._agree(reference.clone(), reference, None) == (True, 0.0)
    assert not graphs._agree(reference + 1e-6, reference, None)[0]  # the LMs: exactly
    assert graphs._agree(reference + 0.03, reference, graphs.DIT_TOLERANCE)[0]  # 0.03 ≤ 4 × 2 × 2⁻⁸
    assert not graphs._agree(reference + 0.04, reference, graphs.DIT_TOLERANCE)[0]


# ---------------------------------------------------------------- each model through it


def test_the_planner_writes_the_same_plan_as_before(studio_env, with_planner, monkeypatch):
    # Under the served studio's model settings (``studio_env``): the planner built here is the one the API
    # test's studio takes back (conftest's ``_keep_models``), one build for the file, not two (2.2-2.5 CPU s).
    def plan():
        # Up to 10 s of codes (50) a blueprint, as the trace below: the length is not what is compared.
        made = planner.get_planner().plan("dreamy synth pop", LYRICS, None, [5, 6], longest=10)
        return made.fields, made.codes

    eager, static = _eager_and_static(monkeypatch, plan)
    assert static == eager and len(eager[1]) == 2 and eager[1][0]


LYRICS_SAMPLING = [(0.8, {}), (1.2, {"repetition_penalty": 1.05, "top_k": 20}), (0.0, {"repetition_penalty": 1.1})]


@pytest.mark.parametrize(("temperature", "config"), LYRICS_SAMPLING)
def test_the_lyrics_loop_writes_what_generate_wrote(temperature, config):
    """The studio's own loop over a static cache against transformers' ``generate`` over its
    growing cache (the lyrics writer's path before): the same tokens for the same seed."""
    model, tokenizer = random_models.build_lyrics_lm()
    for key, value in config.items():
        setattr(model.generation_config, key, value)
    message = [{"role": "user", "content": "rain"}]
    prompt = tokenizer.apply_chat_template(message, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt).input_ids
    for seed in (0, 7):
        torch.manual_seed(seed)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": 0.9} if temperature else {}
        before = model.generate(torch.tensor([ids]), max_new_tokens=60, pad_token_id=0, **sampling)[0, len(ids) :]
        torch.manual_seed(seed)
        now = list(decoding.sample_tokens(model, ids, 60, temperature, 0.9, lambda: False))
        assert now == before.tolist()


def test_the_lyrics_loop_stops_when_asked():
    model, tokenizer = random_models.build_lyrics_lm()
    asked = []

    def stopped():
        asked.append(1)
        return len(asked) > 5

    assert len(list(decoding.sample_tokens(model, [1, 2, 3], 200, 0.8, 0.9, stopped))) == 5


def test_a_sliding_window_model_is_never_captured(monkeypatch, capsys):
    """A sliding-window cache rolls once full, which a graph would freeze: such a model decodes
    through the static buffers only, even where every capture would be tried (and fail)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tiny = random_models._tiny_lm_config(random_models.build_tokenizer())
    config = Qwen2Config(use_sliding_window=True, sliding_window=8, max_window_layers=0, **tiny)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)

    def write():
        torch.manual_seed(5)
        return list(decoding.sample_tokens(model, [5, 6, 7, 8, 9], 20, 0.8, 0.9, lambda: False))

    eager, _ = _eager_and_static(monkeypatch, write)
    monkeypatch.setenv("ACE_STUDIO_GRAPHS", "raise")
    capsys.readouterr()
    assert write() == eager and len(eager) == 20
    assert "graphs:" not in capsys.readouterr().out


COMMON = {"prompt": "warm lo-fi", "lyrics": LYRICS, "inference_steps": 4, "seed": 3}


def _requests(tmp_path, *wanted: str):
    """The same song's request in each mode (``wanted``: only those modes, none of the others prepared). The
    source is 6 s (a source may be shorter than Generate's 10 s): eager and static are compared, not lengths."""
    song = str(tone(tmp_path / "song.wav", seconds=6.0)) if set(wanted) != {"generate"} else ""
    prepare = {
        "generate": lambda: modes.prepare_generate(audio_duration=10, think=False, **COMMON),
        "cover": lambda: modes.prepare_cover(src_audio=song, audio_cover_strength=0.5, **COMMON),
        "extend": lambda: modes.prepare_extend(src_audio=song, extend_seconds=5, **COMMON),  # the least added
        "edit": lambda: modes.prepare_edit(src_audio=song, repainting_start=2, repainting_end=5, **COMMON),
    }
    return {mode: made() for mode, made in prepare.items() if not wanted or mode in wanted}


def test_the_dit_renders_the_same_latents_in_every_mode(warm_backend, monkeypatch, tmp_path):
    for mode, job in _requests(tmp_path).items():
        eager, static = _eager_and_static(monkeypatch, lambda job=job: warm_backend.run(job.request.render))
        assert np.array_equal(static["audio"], eager["audio"]), mode
        # The lyric alignment pass ran on the DiT's own forward, and found what it found before.
        assert static["lyrics"] == eager["lyrics"] and static["lyrics"], mode
        # Every step's forward went through the static buffers (none captured on a CPU).
        report = warm_backend.replay
        assert report["calls"] >= 4 and not report["eager"], mode  # 4 steps
        assert (report["captures"], report["capture_s"], report["difference"]) == (0, 0.0, 0.0)


def test_a_dit_capture_that_disagrees_falls_back_for_the_whole_call(warm_backend, monkeypatch, tmp_path, capsys):
    job = _requests(tmp_path, "cover")["cover"]  # two pipeline calls: the fallback holds for both
    monkeypatch.setenv("ACE_STUDIO_GRAPHS", "off")
    eager = warm_backend.run(job.request.render)
    monkeypatch.setenv("ACE_STUDIO_GRAPHS", "mismatch")
    capsys.readouterr()
    fell_back = warm_backend.run(job.request.render)
    assert np.array_equal(fell_back["audio"], eager["audio"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("graphs: DiT")]
    assert len(lines) == 1 and warm_backend.replay["eager"]
    assert warm_backend.replay["difference"] == pytest.approx(1.0)


# ---------------------------------------------------------------- capturable as they are


def test_every_step_traces_whole(studio_env, with_planner, warm_backend, monkeypatch, tmp_path):
    """Each step the studio hands to ``graphs`` compiles as one graph with dynamo
    (``fullgraph=True``): a host sync (``.item()``, ``if mask.all()``) or a data-dependent
    branch would break it here, as it would break a capture on a GPU."""
    traced: dict[str, int] = {}

    class Traced(graphs.CapturedStep):
        def __call__(self, *inputs):
            if self.name not in traced:
                torch._dynamo.reset()
                want = self.fn(*inputs)
                got = torch.compile(self.fn, fullgraph=True, backend="eager")(*inputs)
                # Traced, transformers' SDPA attention repeats the grouped KV heads instead of
                # packing the queries (sdpa_attention.py), so the logits agree to rounding only.
                pairs = zip(_flat(got), _flat(want), strict=True)
                same = [torch.allclose(a, b, rtol=1e-4, atol=1e-4) for a, b in pairs]
                traced[self.name] = all(same)
            return super().__call__(*inputs)

    monkeypatch.setattr(graphs, "CapturedStep", Traced)
    try:
        planner.get_planner().plan("dreamy synth pop", LYRICS, None, [5], longest=10)
        model, tokenizer = random_models.build_lyrics_lm()
        list(decoding.sample_tokens(model, tokenizer("hello").input_ids, 4, 0.8, 0.9, lambda: False))
        warm_backend.run(_requests(tmp_path, "generate")["generate"].request.render)
    finally:
        torch._dynamo.reset()
    assert traced == {"planner's thinking": True, "planner's blueprint": True, "lyrics": True, "DiT": True}


def _flat(out):
    return list(out) if isinstance(out, tuple | list) else [out]


def test_a_backend_under_an_offload_mode_is_never_replayed(warm_backend, monkeypatch):
    monkeypatch.setattr(warm_backend, "offload", "model")
    with warm_backend._replaying(warm_backend.pipe) as dit:
        assert dit is None and "forward" not in warm_backend.pipe.transformer.__dict__
    monkeypatch.setattr(warm_backend, "offload", "none")
    with warm_backend._replaying(warm_backend.pipe) as dit:
        assert warm_backend.pipe.transformer.forward is dit
    assert "forward" not in warm_backend.pipe.transformer.__dict__


# ---------------------------------------------------------------- through the surfaces a visitor uses


def _fallbacks(text: str) -> set[str]:
    return {line.split(":")[1].strip() for line in text.splitlines() if line.startswith("graphs:")}


def test_a_failed_capture_costs_a_visitor_nothing_through_the_api(studio_server, monkeypatch, capfd):
    from gradio_client import Client

    monkeypatch.setenv("ACE_STUDIO_GRAPHS", "raise")
    capfd.readouterr()
    client = Client(studio_server[0], verbose=False)
    song = {"prompt": "slow blues", "lyrics": LYRICS, "audio_duration": 10, "inference_steps": 3, "seed": 30}
    result = client.predict(**song, think=True, api_name="/generate")
    assert result[0] and result[-1]["takes"][0]["planner"]["codes"] == 50
    assert _fallbacks(capfd.readouterr().out) == {"planner's thinking", "planner's blueprint", "DiT"}


def test_a_failed_capture_costs_a_visitor_nothing_under_zerogpu(
    tiny_pipeline_dir, tiny_planner_dir, tiny_lyrics_dir, tmp_path
):
    """In the Space's forked GPU workers: a Think song and a lyrics stream, every capture
    disagreeing with eager; both succeed and the worker says so once per step."""
    from gradio_client import Client

    from conftest import free_port, wait_until_serving
    from zerogpu_harness import FakeDeviceAPI, start_studio, stop_studio, studio_env

    lm = tiny_lyrics_dir
    api = FakeDeviceAPI(scale=1.0).start()
    port, log = free_port(), tmp_path / "studio.log"
    env = {
        **studio_env(api.url, tmp_path, tiny_pipeline_dir, lm, port, tiny_planner_dir),
        "ACE_STUDIO_GRAPHS": "mismatch",
    }
    proc = start_studio(env, log)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(url, proc, log)
        client = Client(url, verbose=False)
        song = {"prompt": "slow blues", "lyrics": LYRICS, "audio_duration": 10, "inference_steps": 3, "seed": 30}
        result = client.predict(**song, think=True, api_name="/generate")
        assert result[0] and result[-1]["takes"][0]["planner"]["codes"] == 50
        # A short lyric: the stream's length is not the point, its fallback is.
        lyric = {"theme": "rain on the city", "genre": "lo-fi", "length": "short", "seed": 4}
        text, caption, seed = client.predict(**lyric, api_name="/lyrics")
        assert text.startswith("[") and seed == 4
    finally:
        stop_studio(proc)
        api.close()
    assert _fallbacks(log.read_text()) == {"planner's thinking", "planner's blueprint", "DiT", "lyrics"}
