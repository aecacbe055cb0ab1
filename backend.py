"""One ``AceStepPipeline`` for every mode: lazy, thread-safe, with progress, cancel and the GPU estimate.

The pipeline is built on first use (``get_backend()``), once even when two first requests race, and
is then shared by Generate, Cover, Extend and Edit. Calls into it are serialised by a lock: diffusers
pipelines keep per-call state on the instance (``_interrupt``, ``_guidance_scale``).

Stop works per run: every run gets a fresh id in the page's process (``start_run``), and Stop
touches that run's flag file, which the step callback checks after every diffusion step. A file,
because on ZeroGPU the loop runs in a forked worker that shares nothing else with the page.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import models

GPU_MIN_SECONDS = 60
GPU_MAX_SECONDS = 300
# Longest lyric token sequence the pipeline encodes; it truncates silently beyond it.
MAX_LYRIC_TOKENS = 2048

ProgressFn = Callable[[int, int], None]


class Cancelled(Exception):
    """The visitor pressed Stop; nothing is returned."""


class LyricsTooLong(ValueError):
    """The lyrics exceed what the text encoder takes."""


class ModeUnavailable(ValueError):
    """The loaded checkpoint lacks a component this mode needs."""


class BadLora(ValueError):
    """An uploaded file is not a LoRA, or not one for the loaded model."""


class BrokenOutput(RuntimeError):
    """The pipeline returned audio that must not be delivered (NaN, or a flat line)."""


def check_output(audio: Any) -> None:
    """Refuse non-finite or flat takes: a NaN written to WAV becomes -32768, full-scale DC."""
    import numpy as np

    for take in audio:
        if not np.isfinite(take).all() or float(np.ptp(take)) < 1e-6:
            raise BrokenOutput(
                "The model produced broken audio (invalid numbers or a flat line), so nothing was saved. "
                "If you used a LoRA, it may be damaged; otherwise try another seed."
            )


# Adapter name of a visitor's LoRA; it exists only inside ``Backend.run`` under the lock.
LORA_ADAPTER = "visitor"
_LORA_KEY = re.compile(
    r"^(?:transformer\.)?(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[^.]+)?\.weight$"
)


# What a LoRA's matrices may be stored as (safetensors dtype names).
LORA_DTYPES = {"F16", "BF16", "F32", "F64"}


def read_lora_header(path: str) -> list[str]:
    """The tensor names of a LoRA ``.safetensors`` file, read from its header alone.

    Raises ``BadLora`` for anything that is not a safetensors file of LoRA weights: no LoRA
    tensors, an A matrix without its B (or the reverse), or weights that are not floating point.
    """
    from safetensors import safe_open

    name = Path(path).name
    if not Path(path).is_file():
        raise BadLora("The LoRA file is missing; upload it again.")
    if not name.lower().endswith(".safetensors"):
        raise BadLora(f"{name} is not a .safetensors file. LoRAs for the studio come as .safetensors.")
    try:
        with safe_open(path, framework="np") as f:
            keys = list(f.keys())
            dtypes = {k: f.get_slice(k).get_dtype() for k in keys}
    except Exception:
        raise BadLora(f"{name} cannot be read as a .safetensors file; it may be damaged or incomplete.") from None
    parts: dict[str, set[str]] = {}
    for key in keys:
        match = _LORA_KEY.match(key)
        if match:
            parts.setdefault(match["module"], set()).add(match["part"])
    if not parts:
        raise BadLora(f"{name} holds no LoRA weights (no lora_A / lora_B tensors). Is it a full model instead?")
    unpaired = sorted(m for m, p in parts.items() if p != {"A", "B"})
    if unpaired:
        raise BadLora(
            f"{name} is incomplete: {len(unpaired)} of its {len(parts)} layers have only half of their LoRA "
            f"pair (lora_A without lora_B, or the reverse; first: {unpaired[0]})."
        )
    odd = sorted({dtypes[k] for k in keys if _LORA_KEY.match(k) and dtypes[k] not in LORA_DTYPES})
    if odd:
        raise BadLora(
            f"{name} stores its weights as {', '.join(odd)}; the studio takes LoRAs in float16, bfloat16 or float32."
        )
    return keys


def layer_sizes(transformer: Any) -> dict[str, tuple[int, int]]:
    """``{layer name: (inputs, outputs)}`` for every linear or convolution layer a LoRA could target."""
    sizes = {}
    for name, layer in transformer.named_modules():
        size_in = getattr(layer, "in_features", None) or getattr(layer, "in_channels", None)
        size_out = getattr(layer, "out_features", None) or getattr(layer, "out_channels", None)
        if size_in and size_out:
            sizes[name] = (size_in, size_out)
    return sizes


def check_lora_fits(state_dict: dict[str, Any], sizes: dict[str, tuple[int, int]], label: str) -> None:
    """Raise ``BadLora`` unless every LoRA matrix in ``state_dict`` fits a layer in ``sizes``."""
    pairs = [(k, _LORA_KEY.match(k)) for k in state_dict]
    misfits = []
    for key, match in pairs:
        if match is None:
            continue
        size = sizes.get(match["module"])
        shape = tuple(state_dict[key].shape)
        fits = (
            size is not None
            and len(shape) >= 2
            and (shape[1] == size[0] if match["part"] == "A" else shape[0] == size[1])
        )
        if not fits:
            misfits.append(match["module"])
    used = [m for _, m in pairs if m is not None]
    if not used:
        raise BadLora("The file holds no LoRA weights (no lora_A / lora_B tensors).")
    if misfits:
        raise BadLora(
            f"This LoRA was made for a different model: {len(misfits)} of its {len(used)} weight matrices do not "
            f"fit {label} (first: {misfits[0]}). Use a LoRA trained on this model."
        )


@dataclass
class Backend:
    """The loaded pipeline and what it runs on."""

    pipe: Any
    variant: models.Variant
    source: str
    device: str
    load_seconds: float
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lyric_tokens(self, lyrics: str, language: str) -> int:
        # Same string the pipeline tokenises for the lyric branch.
        text = f"# Languages\n{language}\n\n# Lyric\n{lyrics}<|endoftext|>"
        return len(self.pipe.tokenizer(text, add_special_tokens=False).input_ids)

    def run(
        self,
        request: dict[str, Any],
        progress: ProgressFn | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Run one request (one pipeline call, two for a partial cover); ``run_id`` names the run
        Stop may flag (``start_run``).

        ``request`` holds pipeline keyword arguments plus ``seeds`` (one per take). Source and
        reference audio come as numpy ``[2, samples]`` arrays. Returns ``{"audio": float32 array
        [takes, 2, samples], "seconds": float}``: plain numpy, safe to pickle across processes.
        """
        import numpy as np
        import torch

        req = dict(request)
        seeds: list[int] = list(req.pop("seeds"))
        lora = req.pop("lora", None)
        takes = len(seeds)
        language = req.get("vocal_language", "en")
        n_tokens = self.lyric_tokens(req.get("lyrics", ""), language)
        if n_tokens > MAX_LYRIC_TOKENS:
            raise LyricsTooLong(
                f"The lyrics are {n_tokens} tokens long; the model reads at most {MAX_LYRIC_TOKENS}. Shorten them."
            )
        if req.get("task_type") == "cover" and self.pipe.audio_tokenizer is None:
            raise ModeUnavailable(
                f"Cover is not available with this model ({public_source(self.source)}): it was loaded without "
                "the audio tokenizer and detokenizer that turn the song into its musical blueprint. The studio's "
                f"default checkpoint, {models.VARIANTS['xl-sft'].repo}, includes them (its tokenizer.* and "
                "detokenizer.* weights); a diffusers-layout folder needs audio_tokenizer/ and "
                "audio_token_detokenizer/ subfolders."
            )
        for key in ("src_audio", "reference_audio"):
            if req.get(key) is not None:
                req[key] = torch.from_numpy(np.ascontiguousarray(req[key], dtype=np.float32))
        for key in ("prompt", "lyrics", "vocal_language"):
            if key in req:
                req[key] = [req[key]] * takes
        total = int(req.get("num_inference_steps", self.variant.steps))
        flag = cancel_path(run_id) if run_id else None

        def on_step_from(offset: int, stop_after: int | None):
            def on_step(pipe, step, _t, _kwargs):
                done = offset + step + 1
                if flag is not None and flag.exists():
                    # Raising skips the VAE decode of a half-denoised clip nobody will hear.
                    pipe._interrupt = True
                    raise Cancelled(f"Stopped at step {done} of {total}.")
                if progress is not None:
                    progress(done, total)
                if stop_after is not None and step + 1 >= stop_after:
                    pipe._interrupt = True  # this phase is over; the next one continues from here
                return {}

            return on_step

        with self.lock, gpu_turn("music"):
            if flag is not None and flag.exists():
                raise Cancelled("Stopped before the first step.")
            # CPU generators give the same noise on every device; the global seed covers the VAE's
            # posterior sampling when source audio is encoded.
            torch.manual_seed(seeds[0])
            generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
            started = time.perf_counter()
            try:
                if lora:
                    self._load_lora(lora["path"], lora["scale"])
                phases = self.phases(req)
                latents = None
                for i, (call, offset, stop_after) in enumerate(phases):
                    final = i == len(phases) - 1
                    if latents is not None:
                        # The continuation asks for exactly the frames it is given (the source's,
                        # padded to a count the pipeline computes back exactly: modes.good_frames).
                        call = {**call, "audio_duration": latents.shape[1] / self.pipe.latents_per_second}
                    out = self.pipe(
                        **call,
                        **({"latents": latents} if latents is not None else {}),
                        generator=generators,
                        callback_on_step_end=on_step_from(offset, stop_after),
                        output_type="np" if final else "latent",
                    )
                    latents = out.audios
            finally:
                if lora:
                    # Still under the lock, success or not: the next request must hear the bare model.
                    self.drop_lora()
            elapsed = time.perf_counter() - started
        audio = np.asarray(out.audios, dtype=np.float32)
        check_output(audio)
        return {"audio": audio, "seconds": elapsed}

    def phases(self, req: dict[str, Any]) -> list[tuple[dict[str, Any], int, int | None]]:
        """The pipeline calls that make one request: ``(kwargs, first step, steps to run or None)``.

        Cover strength works as in upstream ACE-Step: the first round(steps × strength) steps run
        with the cover conditioning (the source's semantic tokens), the rest as text to music (no
        source), continuing from those latents over the remaining timesteps of the same schedule.
        Strength 0 is therefore a fresh song, strength 1 the plain cover call. (diffusers' own
        ``audio_cover_strength`` blends two predictions at every step instead, and its second one
        still sees the source.) One difference from upstream's single loop: APG guidance's
        momentum starts afresh in the second call.
        """
        import torch

        if req.get("task_type") != "cover":
            return [(req, 0, None)]
        steps = int(req["num_inference_steps"])
        cover_steps = round(steps * float(req.get("audio_cover_strength", 1.0)))
        cover = {**req, "audio_cover_strength": 1.0}
        text = {k: v for k, v in req.items() if k not in ("src_audio", "audio_cover_strength")}
        text["task_type"] = "text2music"
        if cover_steps >= steps:
            return [(cover, 0, None)]
        if cover_steps <= 0:
            return [(text, 0, None)]
        schedule = self.pipe._get_timestep_schedule(
            num_inference_steps=steps,
            shift=float(req.get("shift", 3.0)),
            device=self.pipe._execution_device,
            dtype=torch.float32,
        ).tolist()
        text.update(num_inference_steps=steps - cover_steps, timesteps=schedule[cover_steps:])
        return [(cover, 0, cover_steps), (text, cover_steps, None)]

    def lora_state_dict(self, path: str) -> dict[str, Any]:
        """A LoRA file's tensors in diffusers naming, checked against this transformer."""
        import torch

        read_lora_header(path)
        try:
            state = self.pipe.lora_state_dict(path)
        except Exception as exc:
            raise BadLora(f"{Path(path).name} could not be read as a LoRA ({exc}).") from None
        check_lora_fits(state, self.layer_sizes, self.variant.label)
        broken = [k for k, v in state.items() if torch.is_tensor(v) and not torch.isfinite(v).all()]
        if broken:
            raise BadLora(
                f"{Path(path).name} is damaged: {len(broken)} of its weight matrices hold invalid numbers "
                "(NaN or infinity). Export the LoRA again."
            )
        return state

    @functools.cached_property
    def layer_sizes(self) -> dict[str, tuple[int, int]]:
        # Read once: a validator checks LoRAs while another request may be adding adapter layers.
        return layer_sizes(self.pipe.transformer)

    def _load_lora(self, path: str, scale: float) -> None:
        state = self.lora_state_dict(path)
        try:
            self.pipe.load_lora_weights(state, adapter_name=LORA_ADAPTER)
        except Exception as exc:
            raise BadLora(f"{Path(path).name} could not be applied to {self.variant.label} ({exc}).") from None
        self.pipe.set_adapters([LORA_ADAPTER], [scale])

    def drop_lora(self) -> None:
        """Remove every adapter layer from the transformer (no-op when there is none)."""
        if getattr(self.pipe.transformer, "peft_config", None) or self.has_adapter_layers():
            self.pipe.unload_lora_weights()

    def has_adapter_layers(self) -> bool:
        return any(hasattr(m, "lora_A") for m in self.pipe.transformer.modules())


_backend: Backend | None = None
_build_lock = threading.Lock()
_loading_since: float | None = None


def is_warm() -> bool:
    """True once the pipeline is built."""
    return _backend is not None


def load_state() -> dict[str, Any]:
    """Where the pipeline stands, for the page header: cold, loading (for how long) or ready."""
    if _backend is not None:
        return {"state": "ready", "device": _backend.device, "load_seconds": _backend.load_seconds}
    since = _loading_since
    if since is not None:
        return {"state": "loading", "elapsed": time.time() - since}
    return {"state": "cold"}


def get_backend(on_load: Callable[[], None] | None = None) -> Backend:
    """The shared backend, built on first call (``on_load`` runs only when it is built now)."""
    global _backend
    if _backend is not None:
        return _backend
    global _loading_since
    with _build_lock:
        if _backend is None:
            if on_load is not None:
                on_load()
            _loading_since = time.time()
            try:
                _backend = _build()
            finally:
                _loading_since = None
    return _backend


def public_source(source: str) -> str:
    """The model as a record may show it: a Hub repo id, or a local folder's name (not its path)."""
    return Path(source).name if Path(source).exists() else source


def run_music(
    request: dict[str, Any],
    progress: ProgressFn | None = None,
    run_id: str | None = None,
    plan_progress: Callable[[str, int | None, int | None], None] | None = None,
) -> dict[str, Any]:
    """The GPU-side work of every music mode: the planner when the request asks for it (``plan``),
    then the shared pipeline runs ``request``.

    Returns picklable values only (numpy audio, floats, strings). ``model_load_s`` is the build
    time only when this call built the pipeline, not when it found it built or waited for it.
    """
    request = dict(request)
    built_now: list[bool] = []
    be = get_backend(on_load=lambda: built_now.append(True))
    plan_args, skipped = request.pop("plan", None), request.pop("plan_skipped", None)
    if plan_args is not None and be.pipe.audio_token_detokenizer is None:
        plan_args, skipped = None, "this music model has no audio detokenizer, so it cannot read a blueprint"
    plans = None
    if plan_args is not None:
        out, plans = _planned_takes(be, request, plan_args, progress, run_id, plan_progress)
    else:
        out = be.run(request, progress=progress, run_id=run_id)
        if skipped is not None:
            plans = [{"skipped": skipped}] * len(request["seeds"])
    result = {
        "audio": out["audio"],
        "model": {
            "variant": be.variant.name,
            "label": be.variant.label,
            "repo": public_source(be.source),
            "device": be.device,
        },
        "timings": {
            "model_load_s": round(be.load_seconds, 3) if built_now else 0.0,
            "pipeline_s": round(out["seconds"], 3),
        },
    }
    if plans is not None:
        result["planners"] = plans
        result["timings"]["planner_s"] = round(sum(p.get("seconds", 0.0) for p in plans), 3)
    return result


def _planned_takes(
    be: Backend,
    request: dict[str, Any],
    plan_args: dict[str, Any],
    progress: ProgressFn | None,
    run_id: str | None,
    plan_progress: Callable[[str, int | None, int | None], None] | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Each take planned and rendered on its own: plans differ in tempo, key and caption, which the
    pipeline takes once per call, and a take made again alone from its seed is the same take. All
    plans come first, so where the two models do not fit together each moves once."""
    import numpy as np

    import planner

    seeds = list(request["seeds"])
    n = len(seeds)
    ones = [{**request, "seeds": [seed]} for seed in seeds]
    plans = []
    for i, one in enumerate(ones):
        take_plan = plan_progress and (lambda stage, done, total, i=i: plan_progress(stage, done, total, i, n))
        plans.append(planner.think_first(one, plan_args, take_plan, lambda: is_stopped(run_id)))
    takes, seconds = [], 0.0
    for i, one in enumerate(ones):
        take_steps = progress and (lambda step, total, i=i: progress(i * total + step, n * total))
        out = be.run(one, progress=take_steps, run_id=run_id)
        takes.append(out["audio"][0])
        seconds += out["seconds"]
    # A take made without its blueprint may be a frame longer or shorter than a planned one.
    length = max(t.shape[-1] for t in takes)
    audio = np.stack([np.pad(t, ((0, 0), (0, length - t.shape[-1]))) for t in takes])
    return {"audio": audio, "seconds": seconds}, plans


def prepare_pipeline(pipe: Any, device: str) -> Any:
    """The studio's settings for a loaded pipeline (the benchmark uses them too)."""
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    # The pipeline leaves VAE tiling off, so a 10-minute song would decode in one piece. Tiles
    # (above 512 latent frames, 64 frames of overlap) halved the decode time and cut peak memory
    # to a third at 240 s in bench.py, and changed samples by < 1e-6 (docs/performance.md).
    pipe.vae.enable_tiling()
    return pipe


def _build() -> Backend:
    models.enable_mps_fallback()
    variant = models.active_variant()
    source = models.model_source(variant)
    device = models.pick_device()
    started = time.perf_counter()
    pipe = prepare_pipeline(models.load_pipeline(source, variant, dtype=models.dtype_for(device)), device)
    register_resident("music", pipe, device)
    built = Backend(
        pipe=pipe,
        variant=variant,
        source=source,
        device=device,
        load_seconds=time.perf_counter() - started,
    )
    built.layer_sizes  # noqa: B018 -- read while no adapter can be loaded
    return built


def reset_backend() -> None:
    """Forget the built pipeline (tests, or after changing the model environment)."""
    global _backend
    with _build_lock:
        _backend = None
        forget_resident("music")


# Models that live on the accelerator. Where the music pipeline and the lyrics LLM do not fit
# together (XL in bf16 is ~10 GiB, Qwen 2.5 7B ~15 GiB: a 24 GiB card holds one at a time), the one
# about to run claims the device and the others wait on the CPU.
_residents: dict[str, dict[str, Any]] = {}
_resident_lock = threading.Lock()
# Share of device memory models may fill; the rest is for activations and the VAE decode.
DEVICE_BUDGET = 0.8


def _gib(obj: Any) -> float:
    modules = [c for c in getattr(obj, "components", {}).values() if hasattr(c, "parameters")] or [obj]
    return sum(p.numel() * p.element_size() for m in modules for p in m.parameters()) / 2**30


def register_resident(name: str, obj: Any, device: str, gib: float | None = None) -> None:
    """Record a model that runs on ``device`` so it can be parked on the CPU when room is short."""
    with _resident_lock:
        _residents[name] = {"obj": obj, "gib": _gib(obj) if gib is None else gib, "home": device, "on": device}


def forget_resident(name: str) -> None:
    with _resident_lock:
        _residents.pop(name, None)


# Held by a model for the whole time it runs on the accelerator, so the lyrics writer cannot park
# the music pipeline on the CPU in the middle of a song (or the reverse) when both run at once.
_turn_lock = threading.RLock()


@contextlib.contextmanager
def gpu_turn(name: str) -> Iterator[None]:
    """Claim the accelerator for ``name`` and keep it until the block ends."""
    with _turn_lock:
        claim_device(name)
        yield


def claim_device(name: str) -> None:
    """Put ``name`` on its accelerator, first moving the others to the CPU if all would not fit."""
    with _resident_lock:
        me = _residents.get(name)
        if me is None or me["home"] != "cuda":
            return
        limit = models.vram_limit_for("cuda")
        others = [r for n, r in _residents.items() if n != name and r["on"] == "cuda"]
        if limit is not None and me["gib"] + sum(r["gib"] for r in others) > DEVICE_BUDGET * limit:
            for other in others:
                _move(other, "cpu")
        if me["on"] != "cuda":
            _move(me, "cuda")


def _move(resident: dict[str, Any], device: str) -> None:
    resident["obj"].to(device)
    resident["on"] = device
    if device == "cpu":
        import torch

        torch.cuda.empty_cache()


def _cancel_dir() -> Path:
    path = Path(os.environ.get("ACE_STUDIO_CANCEL_DIR", Path(tempfile.gettempdir()) / "ace-studio-cancel"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cancel_path(run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_-]", "", run_id)[:64] or "anonymous"
    return _cancel_dir() / safe


# Runs in progress in this (the page's) process: run id -> owner ("<session>:<tab>").
_runs: dict[str, str] = {}
_runs_lock = threading.Lock()


def start_run(owner: str) -> str:
    """A fresh id for one run of ``owner`` (a visitor's tab); Stop for that owner flags it."""
    run_id = secrets.token_hex(8)
    with _runs_lock:
        _runs[run_id] = owner
    return run_id


def finish_run(run_id: str) -> None:
    """Forget a run and remove its flag, however it ended."""
    with _runs_lock:
        _runs.pop(run_id, None)
        cancel_path(run_id).unlink(missing_ok=True)


def request_stop(owner: str) -> int:
    """Flag every run of ``owner``; returns how many there were."""
    with _runs_lock:  # held while touching, so a run cannot finish in between and leave its flag behind
        ids = [run_id for run_id, who in _runs.items() if who == owner]
        for run_id in ids:
            cancel_path(run_id).touch()
    return len(ids)


def is_stopped(run_id: str | None) -> bool:
    return bool(run_id) and cancel_path(run_id).exists()


# GPU-time model, seconds, for the XL DiT in bf16 on a ZeroGPU slice. Work per DiT forward grows
# with the latent length (25 frames a second), attention with its square; the VAE decode and encode
# are linear in audio length. Issue #7 calibrates these numbers against measurements.
_FORWARD_BASE = 0.02
_FORWARD_PER_SECOND = 3.0e-4
_FORWARD_PER_MINUTE_SQ = 2.5e-3
_VAE_PER_SECOND = 0.03
_FIXED = 8.0  # text encoding, host-device copies, file hand-off
COLD_START_SECONDS = 45.0  # building or moving the pipeline inside the call
_SAFETY = 1.5


def estimate_duration(mode: str, params: dict[str, Any], multiplier: float = 1.0) -> int:
    """Seconds of GPU time to declare for one call, clamped to [60, 300].

    ``params`` holds the endpoint's keyword arguments: ``audio_duration`` (or ``extend_seconds``),
    ``inference_steps``, ``batch_size``, ``guidance_scale``, ``think``. Cover, Extend and Edit also
    encode their source audio.
    """
    return clamp_duration(estimate_seconds(mode, params), multiplier)


def estimate_seconds(mode: str, params: dict[str, Any]) -> float:
    """``estimate_duration`` before the clamp: what the call is expected to take, with a margin."""
    variant = models.active_variant()
    seconds = float(params.get("audio_duration") or 0) or float(params.get("extend_seconds") or 0) or 60.0
    steps = int(params.get("inference_steps") or variant.steps)
    takes = max(1, int(params.get("batch_size") or 1))
    guidance = float(params.get("guidance_scale") or variant.guidance)
    forwards = 2 if (guidance > 1.0 and not variant.turbo) else 1
    minutes = seconds / 60.0
    per_forward = _FORWARD_BASE + _FORWARD_PER_SECOND * seconds + _FORWARD_PER_MINUTE_SQ * minutes**2
    work = steps * forwards * per_forward * takes + _VAE_PER_SECOND * seconds * takes
    if mode in ("cover", "extend", "edit"):
        work += _VAE_PER_SECOND * seconds
    if mode == "cover" and params.get("reference_audio"):
        work += _VAE_PER_SECOND * 30
    if mode == "generate" and params.get("think"):
        import planner

        work += planner.estimate_seconds(seconds, takes)
    return (_FIXED + work + (0.0 if is_warm() else COLD_START_SECONDS)) * _SAFETY


def clamp_duration(seconds: float, multiplier: float = 1.0) -> int:
    """``seconds`` clamped to [60, 300], then ``multiplier`` times that (a retry after an abort
    declares twice what the aborted try had, also when that was the 60 s floor), at most 300."""
    first = min(GPU_MAX_SECONDS, max(GPU_MIN_SECONDS, math.ceil(seconds)))
    return int(min(GPU_MAX_SECONDS, max(GPU_MIN_SECONDS, math.ceil(first * max(multiplier, 0.0)))))
