"""Captured steps: one model step replayed from a CUDA graph, for every model of the studio.

On a GPU every model here is bound by launching kernels from Python (Think's planner ~45 ms a step
eager against a 1.2 ms floor, the DiT ~3,600 launches a step), and ZeroGPU supports no
``torch.compile`` and may fork a fresh worker for each call. So a step is captured once per call, at
that call's shapes (~50 ms), and replayed: each step copies its inputs into the static buffers and
replays the graph. The models stay unaware of it (upstream nano-vllm keeps its capture in its model
runner the same way); the planner, the lyrics writer and the DiT each hand their step function here.

A capture is trusted only after one check: the eager run that warms the capture up is the reference,
and the first replay, on the same inputs, must give the LMs' logits exactly and the DiT's output
within ``DIT_TOLERANCE``. On a mismatch or any error the step logs one line and runs eagerly for the
rest of the call; it never fails a request. On the CPU and MPS nothing is captured, but the same
static-buffer code runs (inputs copied in, the step called on the copies), so the CPU suite
exercises all of it except the capture itself.

``ACE_STUDIO_GRAPHS``: ``auto`` (default: capture on CUDA), ``off`` (plain eager calls, no static
buffers: the bench's "eager" column), or, for tests, ``raise`` / ``mismatch``: every capture fails
that way, on any device, so the fallback is exercised where no GPU is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

MODES = ("auto", "off", "raise", "mismatch")
# The DiT's replay against its eager run, relative to the output's largest magnitude: two bf16 steps
# (2 × 2⁻⁸). A graph replays the very kernels it captured, so it is normally exact; the margin is for
# kernels that pick a reduction order at run time.
DIT_TOLERANCE = 2 * 2**-8
MAX_SHAPES = 4  # distinct input shapes captured per step and call (the DiT: with and without guidance)


class CaptureFailed(Exception):
    """A capture that could not be trusted (the simulated failures, or a replay that disagreed)."""


def mode() -> str:
    value = os.environ.get("ACE_STUDIO_GRAPHS", "auto").strip().lower() or "auto"
    return value if value in MODES else "auto"


def _signature(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((tuple(v.shape), v.dtype, v.device) for v in values)


def _clone(out: Any) -> Any:
    if isinstance(out, tuple | list):
        return type(out)(o.clone() for o in out)
    return out.clone()


def _agree(replayed: Any, reference: Any, tolerance: float | None) -> tuple[bool, float]:
    """Whether a replay matches the eager reference, and the largest difference."""
    import torch

    pairs = (
        list(zip(replayed, reference, strict=True)) if isinstance(replayed, tuple | list) else [(replayed, reference)]
    )
    worst, ok = 0.0, True
    for got, want in pairs:
        diff = float((got.float() - want.float()).abs().max()) if got.numel() else 0.0
        worst = max(worst, diff)
        if tolerance is None:
            ok = ok and torch.equal(got, want)
        else:
            scale = float(want.float().abs().max()) if want.numel() else 0.0
            ok = ok and diff <= tolerance * max(scale, 1e-6)
    return ok, worst


class _Graph:
    """One captured shape: its static inputs, its graph and the graph's (static) output."""

    def __init__(self, static: tuple[Any, ...], graph: Any, output: Any) -> None:
        self.static, self.graph, self.output = static, graph, output

    def run(self, inputs: tuple[Any, ...]) -> Any:
        for buffer, value in zip(self.static, inputs, strict=True):
            buffer.copy_(value)
        self.graph.replay()
        # The graph's output is overwritten by the next replay; a caller may still hold this one.
        return _clone(self.output)


class CapturedStep:
    """``fn`` (tensors in, a tensor or a tuple of tensors out, fixed shapes) called as a step.

    On CUDA each new input shape (up to ``MAX_SHAPES``) is captured on its first call and checked;
    later calls at that shape replay it. ``tolerance`` None: the replay must equal eager exactly (the
    LMs' logits); else relative to the output's largest magnitude (``DIT_TOLERANCE``). A step's
    graphs share one memory pool and live as long as the step: make one per call, ``close`` it after.
    """

    def __init__(
        self, fn: Callable[..., Any], name: str, device: Any, tolerance: float | None = None, capturable: bool = True
    ) -> None:
        self.fn, self.name, self.tolerance = fn, name, tolerance
        self.capturable = capturable  # False: the static buffers only, on every device
        self.cuda = str(getattr(device, "type", device)).startswith("cuda")
        self.mode = mode()
        self.eager = self.mode == "off"  # plain calls from now on
        self.graphs: dict[tuple[Any, ...], _Graph] = {}
        self.statics: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self.pool: Any = None
        self.captures = 0  # graphs made (for the bench and the tests)
        self.calls = 0  # calls through the static buffers or a graph (not plain eager ones)
        self.capture_s = 0.0
        self.difference = 0.0  # the largest replay-against-eager difference seen at a check

    def __call__(self, *inputs: Any) -> Any:
        if self.eager:
            return self.fn(*inputs)
        self.calls += 1
        key = _signature(inputs)
        graph = self.graphs.get(key)
        if graph is not None:
            try:
                return graph.run(inputs)
            except Exception as exc:  # a replay must never fail a request either
                self._give_up(exc)
                return self.fn(*inputs)
        static = self.statics.get(key)
        if static is None and self._should_capture() and len(self.graphs) < MAX_SHAPES:
            return self._capture(key, inputs)
        if static is None:
            if len(self.statics) >= MAX_SHAPES:
                return self.fn(*inputs)
            static = self.statics[key] = tuple(v.clone() for v in inputs)
        for buffer, value in zip(static, inputs, strict=True):
            buffer.copy_(value)
        return self.fn(*static)

    def _should_capture(self) -> bool:
        return self.capturable and (self.cuda or self.mode in ("raise", "mismatch"))

    def _capture(self, key: tuple[Any, ...], inputs: tuple[Any, ...]) -> Any:
        import time

        started = time.perf_counter()
        static = tuple(v.clone() for v in inputs)
        try:
            reference, graph = self._record(static)
            replayed = graph.run(inputs)
            if self.mode == "mismatch":
                replayed = _perturbed(replayed)
            ok, worst = _agree(replayed, reference, self.tolerance)
            self.difference = max(self.difference, worst)
            if not ok:
                raise CaptureFailed(f"the replay differs from eager by up to {worst:.3g}")
        except Exception as exc:  # a capture must never fail a request: eager it is
            self._give_up(exc)
            return self.fn(*inputs)
        self.graphs[key] = graph
        self.captures += 1
        self.capture_s += time.perf_counter() - started
        return replayed

    def _record(self, static: tuple[Any, ...]) -> tuple[Any, _Graph]:
        """The eager warm-up (the reference) and the graph captured after it, on the same inputs."""
        import torch

        if self.mode == "raise":
            raise CaptureFailed("capture failure simulated (ACE_STUDIO_GRAPHS=raise)")
        if not self.cuda:  # the simulated mismatch on a machine without CUDA: no graph to make
            reference = _clone(self.fn(*static))
            return reference, _Eager(self.fn, static)
        side = _side_stream(torch.cuda.current_device())
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            reference = _clone(self.fn(*static))
        torch.cuda.current_stream().wait_stream(side)
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        # thread_local: only this thread's calls are checked while capturing, so the server's other
        # threads (another request, a stream's progress) may go on using CUDA meanwhile.
        with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
            output = self.fn(*static)
        return reference, _Graph(static, graph, output)

    def _give_up(self, exc: BaseException) -> None:
        self.eager = True
        self.graphs.clear()
        self.statics.clear()
        print(f"graphs: {self.name}: capture not used, eager for the rest of this call: {exc}", flush=True)

    def close(self) -> None:
        """Free the graphs, their pool and the static buffers."""
        self.graphs.clear()
        self.statics.clear()
        self.pool = None


_SIDE_STREAMS: dict[int, Any] = {}


def _side_stream(device: int) -> Any:
    """The one stream per device that warm-ups run on (a new stream per capture would leave a
    cuBLAS workspace behind each time)."""
    import torch

    if device not in _SIDE_STREAMS:
        _SIDE_STREAMS[device] = torch.cuda.Stream(device)
    return _SIDE_STREAMS[device]


class _Eager(_Graph):
    """What stands for a graph where none can be made (the simulated failures on the CPU)."""

    def __init__(self, fn: Callable[..., Any], static: tuple[Any, ...]) -> None:
        super().__init__(static, None, None)
        self.fn = fn

    def run(self, inputs: tuple[Any, ...]) -> Any:
        for buffer, value in zip(self.static, inputs, strict=True):
            buffer.copy_(value)
        return self.fn(*self.static)


def _perturbed(out: Any) -> Any:
    if isinstance(out, tuple | list):
        return type(out)(_perturbed(o) for o in out)
    return out + 1 if out.is_floating_point() else out ^ 1


# ---------------------------------------------------------------- a module's forward, replayed


class ReplayedForward:
    """A module's ``forward`` routed through a ``CapturedStep`` while installed (``replaying``).

    Only calls whose keyword arguments are tensors, plus hashable constants with ``return_dict``
    False, are replayed (the constants are part of the shape key); anything else, and every call
    after ``release()``, goes to the module's own forward."""

    def __init__(self, module: Any, name: str, tolerance: float | None) -> None:
        self.module, self.name, self.tolerance = module, name, tolerance
        self.original = module.forward
        self.steps: dict[tuple[Any, ...], CapturedStep] = {}
        self.released = False  # the graphs are freed: the module's own forward from now on
        self.gave_up = mode() == "off"  # a step's capture failed: the module's own forward for the call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        tensors = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
        constants = tuple(sorted((k, v) for k, v in kwargs.items() if k not in tensors))
        if self.released or self.gave_up or args or kwargs.get("return_dict", True) or not _hashable(constants):
            return self.original(*args, **kwargs)
        names = tuple(sorted(tensors))
        step = self.steps.get((names, constants))
        if step is None:
            if len(self.steps) >= MAX_SHAPES:
                return self.original(*args, **kwargs)
            fixed = dict(constants)

            def fn(*values: Any) -> Any:
                return tuple(self.original(**dict(zip(names, values, strict=True)), **fixed))

            device = next(iter(tensors.values())).device if tensors else "cpu"
            step = self.steps[(names, constants)] = CapturedStep(fn, self.name, device, self.tolerance)
        out = step(*(tensors[n] for n in names))
        self.gave_up = step.eager
        return out

    def release(self) -> None:
        """Free the graphs and their pool now (the denoising is over: the VAE decode and the
        alignment pass may use that memory); later calls run the module's own forward."""
        self.released = True
        for step in self.steps.values():
            step.close()

    def report(self) -> dict[str, Any]:
        """Graphs made, seconds spent making them, calls through the static buffers or a graph, the
        largest difference a capture's check saw, and whether any step fell back to eager."""
        steps = list(self.steps.values())
        return {
            "captures": sum(s.captures for s in steps),
            "calls": sum(s.calls for s in steps),
            "capture_s": sum(s.capture_s for s in steps),
            "difference": max((s.difference for s in steps), default=0.0),
            "eager": self.gave_up,
        }


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@contextlib.contextmanager
def replaying(module: Any, name: str, tolerance: float | None = DIT_TOLERANCE) -> Iterator[ReplayedForward]:
    """``module``'s forward replayed from graphs for the block (one call: its graphs go with it)."""
    instance_forward = module.__dict__.get("forward")  # an instance's forward (a hook's wrapper) comes back as it was
    replayed = ReplayedForward(module, name, tolerance)
    module.forward = replayed
    try:
        yield replayed
    finally:
        if instance_forward is None:
            del module.forward
        else:
            module.forward = instance_forward
        for step in replayed.steps.values():
            step.close()
