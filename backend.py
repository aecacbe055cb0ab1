"""One ``AceStepPipeline`` for every mode: lazy, thread-safe, with progress, Stop and the phases it measured.

The pipeline is built on first use (``get_backend()``), once even when two first requests race, and
is then shared by Generate, Cover, Extend and Edit. Calls into it are serialised by a lock: diffusers
pipelines keep per-call state on the instance (``_interrupt``, ``_guidance_scale``).

Stop works per run (``runs``): the step callback checks the run's flag after every diffusion step.
A call reports the seconds of its phases (start, steps, decode, alignment), which ``generation`` hands to
``duration_estimate``; the GPU-time estimate itself lives there.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import alignment
import base_model
import devices
import duration_estimate
import error_messages
import flow_edit
import graphs
import lokr
import lora
import lrc
import messages
import models
import music_request
import offload
import retake
import runs
import sampler
import text_limits

ProgressFn = Callable[[int, int], None]


class ModeUnavailable(ValueError):
    """The loaded checkpoint lacks a component this mode needs."""


class BrokenOutput(RuntimeError):
    """The pipeline returned audio that must not be delivered (NaN, or a flat line)."""


def check_output(audio: Any) -> None:
    """Refuse non-finite or flat takes: a NaN written to WAV becomes -32768, full-scale DC."""
    import numpy as np

    for take in audio:
        if not np.isfinite(take).all() or float(np.ptp(take)) < 1e-6:
            raise BrokenOutput(error_messages.BROKEN_OUTPUT)


@dataclass
class Backend:
    """The loaded pipeline and what it runs on."""

    pipe: Any
    variant: models.Variant
    source: str
    device: str
    load_seconds: float
    offload: str = "none"  # offload.MODES: how the pipeline's parts share the GPU
    lock: threading.Lock = field(default_factory=threading.Lock)
    replay: dict[str, Any] = field(default_factory=dict)  # the last call's DiT graphs (``graphs.report``)
    base: Any = None  # the XL base's pipeline beside this one, built for the first part (``base_pipe``)
    base_seconds: float = 0.0
    base_lock: threading.Lock = field(default_factory=threading.Lock)
    lokr_networks: list[Any] = field(default_factory=list)  # the LoKr adapters on the DiT, during a run only

    def run(
        self,
        render: music_request.Render,
        progress: ProgressFn | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Run one render; ``run_id`` names the run Stop may flag (``runs.start_run``). ``render`` holds
        the pipeline keyword arguments (source and reference audio as numpy ``[2, samples]`` arrays, a
        take's own latents), one seed per take, the adapters (``attach_adapters``) and, for variations, each take's noise chain
        (``retake``). Returns ``{"audio": float32 [takes, 2, samples], "latents": float32 [takes, frames,
        channels] or None, "seconds", "phases"}`` (plain numpy, picklable); when something is sung, also
        ``"lyrics"`` (per take ``lrc.sync_take``: line times and score, from one extra DiT forward over
        all takes, ``alignment``) and ``"lyrics_s"`` (its seconds)."""
        import numpy as np
        import torch

        req = render.pipeline
        seeds, adapters, chains = list(render.seeds), tuple(render.adapters), render.noise
        self.check_request(req)
        rows = lrc.lyric_rows(self.pipe.tokenizer, req.lyrics, req.vocal_language)
        req = _as_pipeline_inputs(req, len(seeds))
        pipe = self.pipe_for(req.task_type)
        total = sampler.steps_run(pipe, int(req.num_inference_steps))
        flag = runs.cancel_path(run_id) if run_id else None
        sync = alignment.Pass(pipe, total, rows.columns) if rows is not None else None
        with self.lock, devices.holding_gpu("music"):
            if flag is not None and flag.exists():
                raise runs.Cancelled(messages.STOPPED_BEFORE_FIRST_STEP)
            # CPU generators give the same noise on every device; the global seed covers the VAE's
            # posterior sampling when source audio is encoded.
            torch.manual_seed(seeds[0])
            generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
            started = time.perf_counter()
            try:
                self.attach_adapters(adapters)
                with retake.mixing(pipe, chains):
                    audio, latents, phases = self._render(pipe, req, generators, flag, progress, total, sync)
            finally:
                offload.free_parts(self.pipe, self.offload)
                if adapters:
                    # Still under the lock, success or not: the next request must hear the bare model.
                    self.drop_adapters()
            elapsed = time.perf_counter() - started
        audio = np.asarray(audio, dtype=np.float32)
        check_output(audio)
        result = {"audio": audio, "latents": latents, "seconds": elapsed, "phases": phases}
        if sync is not None and sync.matrices is not None:
            started = time.perf_counter()
            clip = audio.shape[-1] / pipe.sample_rate
            result["lyrics"] = [lrc.sync_take(s, e, rows, clip, req.sung_within) for s, e in sync.matrices]
            result["lyrics_s"] = round(sync.seconds + time.perf_counter() - started, 3)
            # The alignment's forward ran inside the last step: the DiT's own steps are the rest.
            result["phases"]["dit"] = max(0.0, result["phases"]["dit"] - sync.seconds)
        return result

    def _render(
        self,
        pipe: Any,
        req: music_request.Call,
        generators: list[Any],
        flag: Path | None,
        progress: ProgressFn | None,
        total: int,
        sync: alignment.Pass | None,
    ) -> tuple[Any, Any, dict[str, Any]]:
        """The request's diffusion (``sampler``: upstream's loop over the pipeline's modules), its decode,
        and its final latents as float32 numpy (``take_latents``; None for a part added, whose latents
        are the part's, not its take's); ``sync`` (the lyric alignment pass) runs before the decode."""
        self.replay = {}  # a call that fails reports nothing rather than the last one's graphs
        started, ended = time.perf_counter(), []
        with self._replaying(pipe) as dit:
            watching = sync.watch() if sync is not None else None
            try:
                on_step = _timed(_step_callback(flag, progress, total, _eagerly(dit, sync)), ended)
                latents = (flow_edit.run if req.morph else sampler.run)(pipe, req, generators, on_step)
            finally:
                if watching is not None:
                    watching.remove()
            self.replay = dit.report() if dit is not None else {}
        decoding = _synchronized(latents)
        audio = sampler.decode(pipe, latents, normalize=not req.natural_level)
        kept = None if req.natural_level else latents.float().cpu().numpy()
        # For ``duration_estimate``: the call's per-call work to the first step's end (texts, encodes, the first step and its
        # capture), the steps after it, how many ran, the decode; whether the steps were replayed.
        first, captured = (ended or [decoding])[0], bool(self.replay.get("captures")) and not self.replay.get("eager")
        phases = {"start": first - started, "dit": decoding - first, "steps": len(ended), "captured": captured}
        return audio, kept, {**phases, "vae": time.perf_counter() - decoding}

    def _replaying(self, pipe: Any) -> Any:
        """The DiT's forward replayed from CUDA graphs for one request (``graphs``): captured at its
        first step, once for each input shape (a cover's text-only condition has the cover's). Under
        an offload mode parts move between steps, which no graph can hold, so the DiT stays eager."""
        if self.offload != "none":
            return contextlib.nullcontext()
        return graphs.replaying(pipe.transformer, "DiT", graphs.DIT_TOLERANCE)

    def pipe_for(self, task_type: str) -> Any:
        """The pipeline a call of ``task_type`` runs on: the base's for a part (``base_model.TASKS``),
        else this one."""
        if task_type not in base_model.TASKS:
            return self.pipe
        # While the music model holds the GPU: the base joins it on the device, where it must find it.
        with devices.holding_gpu("music"):
            return self.base_pipe()

    def base_pipe(self) -> Any:
        """The XL base's pipeline beside this one (``base_model.load``: its DiT, this one's VAE and text
        encoder), built on first use, once, on this device; from then on it moves with this pipeline as
        one resident (``devices``), so the card's budget counts both."""
        if self.base is not None:
            return self.base
        with self.base_lock:
            if self.base is None:
                if self.offload != "none":
                    raise ModeUnavailable(error_messages.PARTS_OFFLOADED)
                if self.variant.name == models.BASE_VARIANT and base_model.source() == self.source:
                    self.base = self.pipe  # the studio runs the base itself: nothing to build twice
                    return self.base
                started = time.perf_counter()
                base = base_model.load(self.pipe, models.pipeline_dtypes(self.device))
                for module in base_model.base_parts(base, self.pipe):
                    module.to(self.device)
                devices.register_resident("music", base_model.Both(self.pipe, base), self.device)
                self.base_seconds = time.perf_counter() - started
                self.base = base
        return self.base

    def song_codes(self, song: Any, seed: int = 0) -> list[int]:
        """A song (float32 ``[2, samples]`` at 48 kHz) as its 5 Hz audio codes, the way upstream's
        ``convert_src_audio_to_codes`` makes them: VAE latents at 25 Hz (sampled from the posterior,
        here from ``seed``, so one song gives one set of codes), then the audio tokenizer's FSQ
        index per five frames, the last group padded with the silence latent (diffusers'
        ``tokenize``, the call its own Cover makes). Under the pipeline's lock: one pipeline serves all."""
        import numpy as np
        import torch

        pipe = self.pipe
        if pipe.audio_tokenizer is None:
            raise ModeUnavailable(error_messages.DESCRIBE_NO_TOKENIZER.format(source=models.public_source(self.source)))
        with self.lock, devices.holding_gpu("music"), torch.inference_mode():
            try:
                device = pipe._execution_device
                wave = torch.from_numpy(np.require(song, np.float32, ["C_CONTIGUOUS"]))[None]
                posterior = pipe.vae.encode(wave.to(device, pipe.vae.dtype)).latent_dist
                latents = posterior.sample(generator=torch.Generator("cpu").manual_seed(seed)).transpose(1, 2)
                tokenizer = pipe.audio_tokenizer
                dtype = next(tokenizer.parameters()).dtype
                silence = pipe.condition_encoder.silence_latent.to(latents.device, dtype)
                _, indices = tokenizer.tokenize(latents.to(dtype), silence)
            finally:
                offload.free_parts(pipe, self.offload)
        return [int(n) for n in indices[0, :, 0].cpu().tolist()]

    def check_request(self, req: music_request.Call) -> None:
        """Refuse what the pipeline would silently get wrong: texts it would cut short (``text_limits``),
        a cover without the components that read the source."""
        texts = {field: getattr(req, field) for field in ("prompt", "lyrics", "morph_prompt", "morph_lyrics")}
        text_limits.check(self.pipe, texts, str(req.vocal_language), req)
        if req.task_type == "cover" and self.pipe.audio_tokenizer is None:
            source, repo = models.public_source(self.source), models.VARIANTS["xl-sft"].repo
            raise ModeUnavailable(error_messages.COVER_NO_TOKENIZER.format(source=source, repo=repo))

    def check_lora(self, path: str, whole: bool = True) -> None:
        """Refuse an adapter file (a LoRA or a LoKr) that is not one for this transformer, once per file
        (``lora.check_file``; ``whole``: its numbers too, else its header alone)."""
        lora.check_file(path, self.layer_sizes, self.variant.label, whole)

    def lora_state_dict(self, path: str) -> Any:
        """A LoRA file's tensors for ``load_lora_weights``: the path itself when diffusers reads it as
        it is, else its tensors renamed and alphas folded (``lora.load_state``); checked and finite."""
        import torch

        self.check_lora(path)
        try:
            state = lora.load_state(path) if lora.needs_rewrite(path) else self.pipe.lora_state_dict(path)
        except Exception as exc:
            raise lora.BadLora(error_messages.LORA_NOT_READ.format(name=Path(path).name, error=exc)) from None
        broken = [k for k, v in state.items() if torch.is_tensor(v) and not torch.isfinite(v).all()]
        if broken:
            raise lora.BadLora(error_messages.LORA_DAMAGED.format(name=Path(path).name, count=len(broken)))
        return state

    @functools.cached_property
    def layer_sizes(self) -> dict[str, tuple[int, int]]:
        # Read once: a validator checks LoRAs while another request may be adding adapter layers.
        return lora.layer_sizes(self.pipe.transformer)

    def attach_adapters(self, adapters: tuple[dict[str, Any], ...]) -> None:
        """Every adapter of a request on the DiT, each at its own strength (``scale`` × a preset's PEFT alpha /
        rank, ``lora_presets.alpha_ratio``; 1 for an uploaded file): LoRAs through diffusers, each under its
        own name, weighted together by one ``set_adapters``; LoKr adapters through LyCORIS (``lokr``). One at
        strength 0 is checked and left out: the bare model, exactly. ``drop_adapters`` removes them all."""
        names, weights = [], []
        for number, adapter in enumerate(adapters):
            path, weight = str(adapter["path"]), float(adapter["scale"]) * float(adapter.get("alpha", 1.0))
            self.check_lora(path)
            if weight == 0:
                continue
            if lora.adapter_kind(path) == "lokr":
                device = getattr(self.pipe, "_execution_device", None)
                self.lokr_networks.append(lokr.attach(self.pipe.transformer, path, weight, self.variant.label, device))
                continue
            names.append(f"{lora.LORA_ADAPTER}-{number}")
            self._load_lora(path, names[-1])
            weights.append(weight)
        if names:
            self.pipe.set_adapters(names, weights)

    def _load_lora(self, path: str, name: str) -> None:
        state = self.lora_state_dict(path)
        try:
            self.pipe.load_lora_weights(state, adapter_name=name)
        except Exception as exc:
            raise lora.BadLora(
                error_messages.LORA_NOT_APPLIED.format(name=Path(path).name, label=self.variant.label, error=exc)
            ) from None

    def drop_adapters(self) -> None:
        """Remove every adapter from the DiT, LoKr wrappers first (they may wrap a LoRA's base layer), then
        every LoRA layer (``drop_lora``): the model is bare again."""
        while self.lokr_networks:
            lokr.detach(self.lokr_networks.pop())
        self.drop_lora()

    def drop_lora(self) -> None:
        """Remove every adapter layer from the transformer (no-op when there is none)."""
        if getattr(self.pipe.transformer, "peft_config", None) or self.has_adapter_layers():
            self.pipe.unload_lora_weights()

    def has_adapter_layers(self) -> bool:
        return any(hasattr(m, "lora_A") for m in self.pipe.transformer.modules())


def _as_pipeline_inputs(req: music_request.Call, takes: int) -> music_request.Call:
    """The call as the sampler takes it: audio as tensors, texts once per take."""
    import dataclasses

    import numpy as np
    import torch

    changes: dict[str, Any] = {key: [getattr(req, key)] * takes for key in ("prompt", "lyrics", "vocal_language")}
    for key in ("src_audio", "reference_audio", "src_latents"):
        if getattr(req, key) is not None:
            # Uploads are shared read-only (``uploads``); the pipeline gets its own writable copy.
            changes[key] = torch.from_numpy(np.require(getattr(req, key), np.float32, ["C_CONTIGUOUS", "WRITEABLE"]))
    return dataclasses.replace(req, **changes)


def _eagerly(dit: graphs.ReplayedForward | None, at_last: Callable[[Any], None] | None) -> Any:
    """What the last step runs: the DiT's graphs freed (the VAE decode needs their memory more),
    then ``at_last`` (the lyric alignment pass) on the DiT's own forward, since it hooks layers and
    swaps attention processors, which a replayed graph would skip."""
    if dit is None:
        return at_last

    def eagerly(latents: Any) -> None:
        dit.release()
        if at_last is not None:
            at_last(latents)

    return eagerly


def _step_callback(
    flag: Path | None, progress: ProgressFn | None, total: int, at_last: Callable[[Any], None] | None = None
) -> Callable[..., dict[str, Any]]:
    """The sampler's step callback (diffusers' ``callback_on_step_end`` contract): progress, the
    run's Stop flag, and ``at_last`` (the lyric alignment pass) given the final latents after the
    last step, before the VAE decodes them."""

    def on_step(pipe, step, _t, kwargs):
        done = step + 1
        if flag is not None and flag.exists():
            # Raising skips the VAE decode of a half-denoised clip nobody will hear.
            pipe._interrupt = True
            raise runs.Cancelled(messages.STOPPED_AT_STEP.format(done=done, total=total))
        if progress is not None:
            progress(done, total)
        if at_last is not None and done >= total and kwargs.get("latents") is not None:
            at_last(kwargs["latents"])
        return {}

    return on_step


def _timed(on_step: Callable[..., dict[str, Any]], ended: list[float]) -> Callable[..., dict[str, Any]]:
    """``on_step`` noting when each step ended (the first once its device work is done)."""

    def timed(pipe, step, t, kwargs):
        ended.append(_synchronized(kwargs.get("latents")) if not ended else time.perf_counter())
        return on_step(pipe, step, t, kwargs)

    return timed


def _synchronized(latents: Any) -> float:
    """The clock once the GPU has done what was queued for ``latents`` (CUDA runs ahead of the host)."""
    if getattr(getattr(latents, "device", None), "type", None) == "cuda":
        import torch

        torch.cuda.synchronize(latents.device)
    return time.perf_counter()


_backend: Backend | None = None
_build_lock = threading.Lock()
_loading_since: float | None = None
# Why the last build failed, until one succeeds: the header says so (also after a reload) instead of
# going back to "loads on first use".
_load_error: str | None = None

# A Hub repo id is owner/name and nothing more; a folder's path has more parts or starts with / . ~
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def model_identity(source: str | None = None, variant: models.Variant | None = None) -> dict[str, str | None]:
    """What runs, as the header and every take's record name it: ``label``, ``repo`` (a Hub repo
    id), ``folder`` (a local folder's last name, never its path) and ``variant`` (the registry's
    name, only where the repo is one the registry knows: for another repo or a folder
    ``ACE_STUDIO_VARIANT`` only picks the layout and the sampling defaults)."""
    variant = variant or models.active_variant()
    source = (source or models.model_source(variant)).strip()
    if Path(source).expanduser().is_dir() or not _REPO_ID.match(source):
        folder = Path(os.path.normpath(os.path.expanduser(source))).name
        return {"label": f"a local model ({folder})", "repo": None, "folder": folder, "variant": None}
    known = next((v for v in models.VARIANTS.values() if v.repo == source), None)
    return {
        "label": f"{known.label} ({source})" if known else source,
        "repo": source,
        "folder": None,
        "variant": known.name if known else None,
    }


def is_warm() -> bool:
    """True once the pipeline is built."""
    return _backend is not None


def latent_width() -> int | None:
    """The channels of the built model's latents (its VAE's): a take's own must match; None: not built."""
    return None if _backend is None else int(_backend.pipe.vae.config.decoder_input_channels)


def base_is_warm() -> bool:
    """True once the XL base's DiT is built beside the pipeline (Edit's parts)."""
    return _backend is not None and _backend.base is not None


def build_base() -> Any:
    """The pipeline, then the XL base's beside it (the start-up build on a Space)."""
    return get_backend().pipe_for(base_model.TASKS[0])


def load_state() -> dict[str, Any]:
    """Where the pipeline stands, for the page header: cold, loading (for how long) or ready."""
    built = _backend
    if built is not None:
        return {"state": "ready", "device": built.device, "load_seconds": built.load_seconds, "offload": built.offload}
    since = _loading_since
    if since is not None:
        return {"state": "loading", "elapsed": time.time() - since}
    if _load_error is not None:
        return {"state": "failed", "error": _load_error}
    return {"state": "cold"}


def get_backend(on_load: Callable[[], None] | None = None) -> Backend:
    """The shared backend, built on first call (``on_load`` runs only when it is built now)."""
    global _backend, _loading_since, _load_error
    if _backend is not None:
        return _backend
    with _build_lock:
        if _backend is None:
            if on_load is not None:
                on_load()
            _loading_since = time.time()
            try:
                _backend = _build()
                _load_error = None
            except Exception as exc:
                _load_error = str(exc) or type(exc).__name__
                raise
            finally:
                _loading_since = None
    return _backend


def prepare_pipeline(pipe: Any, device: str, mode: str = "none") -> Any:
    """The studio's settings for a loaded pipeline (the benchmark uses them too), on ``device`` as
    the offload ``mode`` says."""
    offload.apply(pipe, mode, device)
    pipe.set_progress_bar_config(disable=True)
    # Tiles (above 512 latent frames, 64 of overlap) halved a 240 s decode's time and cut its memory to a
    # third (samples within 1e-6); a take at a time (slicing) cut a 4 × 60 s decode's peak 1.27 → 0.51 GB.
    pipe.vae.enable_tiling()
    pipe.vae.enable_slicing()
    return pipe


def _build() -> Backend:
    models.enable_mps_fallback()
    variant = models.active_variant()
    source = models.model_source(variant)
    started = time.perf_counter()
    # The weights before torch and diffusers: a studio without them says so at once instead of
    # after 10 s of imports (and the memory they hold) it had no use for.
    folder = models.resolve_local(source, variant)
    device = models.pick_device()
    mode = devices.offload_mode(device)
    pipe = models.load_pipeline(str(folder), variant, dtype=models.pipeline_dtypes(device))
    pipe = prepare_pipeline(pipe, device, mode)
    devices.register_resident("music", pipe, device, managed=mode != "none")
    built = Backend(
        pipe=pipe,
        variant=variant,
        source=source,
        device=device,
        load_seconds=time.perf_counter() - started,
        offload=mode,
    )
    built.layer_sizes  # noqa: B018 -- read while no adapter can be loaded
    return built


def reset_backend() -> None:
    """Forget the built pipeline (tests, or after changing the model environment)."""
    global _backend, _load_error
    with _build_lock:
        _backend = None
        _load_error = None
        devices.forget_resident("music")


# Whether a call builds a model (its build counted in the duration estimate): the pipeline, and the XL base's DiT.
duration_estimate.watch("music", lambda: is_warm())
duration_estimate.watch("base", lambda: base_is_warm())
