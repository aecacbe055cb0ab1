"""Stems: a take split into vocals, drums, bass and other with Demucs (``htdemucs_ft``), GPU side.

The weights are the Demucs maintainer's own Hub export (``adefossez/HTDemucs-ft``: the bag's
``htdemucs_ft.yaml`` and one ``.safetensors`` per model, read with demucs's own ``demucs.hf``
loader). They are read from the local Hub cache only (preloaded on a Space by README's
``preload_from_hub``), never downloaded while a visitor waits; ``ACE_STUDIO_STEMS_MODEL`` may name
another Hub repo or a folder laid out the same way.

``separate`` returns vocals, drums and bass as Demucs makes them; ``other`` is made by the page
side as the take minus those three (``residual``), so the four always add up to the take.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

import audio
import duration_estimate
import error_messages
import gpu
import messages
import runs
from run_result import Separated

STEMS = ("vocals", "drums", "bass", "other")
MODEL_STEMS = STEMS[:3]  # what the GPU call returns; ``other`` is the residual
BAG = "htdemucs_ft"
DEFAULT_MODEL = "adefossez/HTDemucs-ft"
# Demucs runs at its own rate (44.1 kHz): a mix is resampled there from the studio's and back.


class WeightsMissing(Exception):
    """The Demucs weights are not on this machine; the message says where they were looked for."""


def model_source() -> str:
    return os.environ.get("ACE_STUDIO_STEMS_MODEL", DEFAULT_MODEL).strip() or DEFAULT_MODEL


def weights_folder() -> Path:
    """The folder holding the bag's ``.yaml`` and its models' ``.safetensors``: a local folder, or
    the Hub cache's snapshot of the repo (never a download). Raises ``WeightsMissing``."""
    source = model_source()
    if Path(source).expanduser().is_dir():
        folder = Path(source).expanduser()
    else:
        from huggingface_hub import snapshot_download

        try:
            folder = Path(
                snapshot_download(source, local_files_only=True, cache_dir=os.environ.get("HF_HUB_CACHE") or None)
            )
        except Exception:  # not cached (LocalEntryNotFoundError), or not a repo name at all
            raise WeightsMissing(error_messages.STEMS_NOT_CACHED.format(source=source)) from None
    if not (folder / f"{BAG}.yaml").is_file():
        raise WeightsMissing(error_messages.STEMS_NO_BAG.format(folder=folder, bag=BAG))
    return folder


def missing_reason() -> str | None:
    """Why stems cannot be made here (no weights), or None. Cheap: files only, nothing is loaded."""
    if _separator is not None:
        return None
    try:
        weights_folder()
    except WeightsMissing as exc:
        return str(exc)
    return None


_separator: Any = None
_load_lock = threading.Lock()
_run_lock = threading.Lock()  # one separation at a time: ``apply_model`` moves the bag's models


def load_bag(folder: Path) -> Any:
    """The ``BagOfModels`` in ``folder``, built with Demucs's own classes and loader."""
    import yaml
    from demucs.apply import BagOfModels
    from demucs.hf import load_safetensors_model

    bag = yaml.safe_load((folder / f"{BAG}.yaml").read_text())
    missing = [sig for sig in bag["models"] if not (folder / f"{sig}.safetensors").is_file()]
    if missing:
        raise WeightsMissing(error_messages.STEMS_LACKS.format(folder=folder, missing=", ".join(missing)))
    parts = [load_safetensors_model(folder / f"{sig}.safetensors") for sig in bag["models"]]
    model = BagOfModels(parts, bag.get("weights"), bag.get("segment"))
    if sorted(model.sources) != sorted(STEMS):
        raise WeightsMissing(
            error_messages.STEMS_OTHER_SOURCES.format(folder=folder, sources=model.sources, stems=list(STEMS))
        )
    return model.eval()


def get_separator() -> Any:
    """The Demucs bag, loaded once (on ZeroGPU by the start-up warm-up, in the main process)."""
    global _separator
    if _separator is None:
        with _load_lock:
            if _separator is None:
                _separator = load_bag(weights_folder())
    return _separator


def is_loaded() -> bool:
    return _separator is not None


def reset() -> None:
    global _separator
    with _load_lock:
        _separator = None


def estimate_duration(take_seconds: float, multiplier: float = 1.0, run_id: str | None = None) -> int:
    """Seconds of GPU time to declare for splitting a take this long (``duration_estimate``), clamped as every call is."""
    return duration_estimate.declare(duration_estimate.stems_phases(take_seconds), multiplier, run_id)


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@contextlib.contextmanager
def _one_thread_on_cpu(device: str) -> Iterator[None]:
    """The split's torch work at one thread where it runs on the CPU, the process's count given back after. Torch's
    pool spins its threads between the segments' many small operations: on a busy 2-core machine a 30 s take on the
    tiny bag took 234-298 s at 2 threads (94-131 s of CPU), 13-15 s at one (9 s of CPU). Splits run one at a time
    (``_run_lock``), so the count given back is the process's own."""
    if device != "cpu":
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    import soxr

    if rate_in == rate_out:
        return np.ascontiguousarray(audio, dtype=np.float32)
    return np.ascontiguousarray(soxr.resample(audio.T, rate_in, rate_out, quality="HQ").T, dtype=np.float32)


def _segments(model: Any, length: int) -> int:
    """How many segment runs ``apply_model`` makes for ``length`` samples (every model of the bag)."""
    parts = getattr(model, "models", [model])
    stride = int(0.75 * int(model.samplerate * float(parts[0].segment)))  # apply_model's, at overlap 0.25
    # One shift pads the take by up to half a second (a random amount): counted at its longest.
    return math.ceil((length + model.samplerate // 2) / stride) * len(parts)


def separate(mix: np.ndarray, run_id: str | None = None, report: Callable[[int, int], None] | None = None) -> Separated:
    """Vocals, drums and bass of ``mix`` (``[2, samples]`` float at 48 kHz), each as long as it.

    Runs segment by segment (Demucs's ``apply_model``); between segments the run's Stop flag is
    checked (``runs.Cancelled``) and ``report(done, total)`` told. The take stays in host memory and
    only each segment visits the GPU. Returns a ``run_result.Separated``.
    """
    import torch
    from demucs.apply import apply_model

    started = time.perf_counter()
    model = get_separator()
    loaded = time.perf_counter() - started
    device = _device()
    wav = torch.from_numpy(_resample(mix, audio.SAMPLE_RATE, model.samplerate))
    total, done = _segments(model, wav.shape[-1]), [0]

    def step(info: dict) -> None:
        if runs.is_stopped(run_id):
            raise runs.Cancelled()  # apply_model cancels the remaining segments and re-raises
        if info.get("state") == "end":
            done[0] += 1
            if report is not None:
                report(min(done[0], total), total)

    # As Demucs's own separator does: the model was trained on mixes of unit variance.
    splitting = time.perf_counter()
    ref = wav.mean(0)
    mean, std = ref.mean(), ref.std() + 1e-8
    with _run_lock, torch.inference_mode(), _one_thread_on_cpu(device):
        # One shift, split into overlapping segments (a quarter): Demucs's defaults for one pass.
        segments = {"shifts": 1, "split": True, "overlap": 0.25}
        out = apply_model(model, ((wav - mean) / std)[None], device=device, callback=step, **segments)[0]
    out = out * std + mean
    stems = {name: out[model.sources.index(name)].numpy() for name in MODEL_STEMS}
    stems = {
        name: _fit(_resample(part, model.samplerate, audio.SAMPLE_RATE), mix.shape[-1]) for name, part in stems.items()
    }
    seconds = mix.shape[-1] / audio.SAMPLE_RATE
    return Separated(
        stems=stems,
        device=device,
        timings={"separate_s": round(time.perf_counter() - started, 3), "model_load_s": round(loaded, 3)},
        measured=duration_estimate.report(
            "stems", {"seconds": seconds}, {"split": time.perf_counter() - splitting}, started
        ),
    )


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    if audio.shape[-1] >= n:
        return audio[..., :n]
    return np.pad(audio, [(0, 0), (0, n - audio.shape[-1])])


def residual(mix: np.ndarray, stems: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All four stems: ``other`` is the take minus vocals, drums and bass, so the four add up to the
    take exactly (Demucs's four estimates do not: each model guesses its own source)."""
    found = {name: np.asarray(stems[name], dtype=np.float32) for name in MODEL_STEMS}
    other = np.asarray(mix, dtype=np.float32) - found["vocals"] - found["drums"] - found["bass"]
    return {**found, "other": other}


def identity() -> dict[str, str]:
    """What splits, as records name it."""
    return {"name": BAG, "source": model_source(), "library": "demucs"}


# ---------------------------------------------------------------- the GPU entry


def stems_duration(mix: Any, progress: Any = None, run_id: str | None = None, multiplier: float = 1.0) -> int:
    """Seconds of GPU time ``stems_gpu`` declares, from the take's length."""
    return estimate_duration(mix.shape[-1] / audio.SAMPLE_RATE, multiplier, run_id)


def _missing(exc: WeightsMissing) -> gr.Error:
    return gr.Error(error_messages.STEMS_MISSING.format(error=exc), title="Stems not available")


def _failed(exc: Exception) -> gr.Error:  # out of memory, a broken weights file: a message, not a traceback
    return gr.Error(error_messages.STEMS_FAILED.format(error=f"{type(exc).__name__}: {exc}"))


@gpu.entry(duration=stems_duration)
def stems_gpu(mix: Any, progress: Any = None, run_id: str | None = None, multiplier: float = 1.0) -> Separated:
    """The GPU entry of stem separation: a take (``[2, samples]`` at 48 kHz) in, vocals, drums and
    bass out (numpy, picklable); a stop leaves the worker as a picklable "Stopped" ``gr.Error``."""
    report = None
    if progress is not None:

        def report(done: int, total: int) -> None:
            progress((done, total), desc=messages.SPLITTING_SEGMENT.format(done=done, total=total), unit="segments")

    with gpu.worker_errors(_failed, ((WeightsMissing, _missing),), messages.STEMS_STOPPED):
        return separate(mix, run_id, report)
