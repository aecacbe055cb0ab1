"""The studio's start-up, which only ``app`` imports: on a Space the Hub cache's writable mirror
(``bootstrap``, before anything reads the Hub client's settings), then the models built in this
process before any ZeroGPU worker is forked (``start_warmup``; the GPU call, ``gpu.call``, waits for
it), and the libraries a first request needs imported once the first page is answered
(``import_later``, ``LIBRARIES``).

The modules that build the models are imported inside the functions: ``app`` calls ``bootstrap`` first,
and Gradio imports ``huggingface_hub``, which reads ``HF_HOME`` and ``HF_HUB_CACHE`` once, at import.
"""

from __future__ import annotations

import errno
import importlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def mirror_hub_cache(src: Path, dst: Path) -> int:
    """Mirror a read-only Hub cache into a writable one without copying weights.

    Blobs are hard-linked (a symlink where the link would cross file systems), snapshot entries
    stay relative symlinks so they resolve inside the mirror, and ``refs/`` files are copied (the
    Hub client rewrites them). Returns how many entries were created; a second run creates none.
    """
    created = 0
    for repo in sorted(p for p in src.iterdir() if p.is_dir()) if src.is_dir() else []:
        for path in sorted(repo.rglob("*")):
            rel = path.relative_to(src)
            target = dst / rel
            if path.is_symlink():
                if not target.is_symlink():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.symlink_to(os.readlink(path))
                    created += 1
            elif path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif rel.parts[1] == "refs":
                if not target.exists() or target.read_bytes() != path.read_bytes():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
                    created += 1
            elif not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, target)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                        raise
                    target.symlink_to(path)
                created += 1
    return created


def bootstrap() -> None:
    """On a Space, point the Hub client at a writable mirror of the build-time cache.

    ``preload_from_hub`` downloads while the Space is built, into a cache that belongs to another
    user and is read only at run time; the Hub client needs to write (locks, refs).
    """
    if not on_space():
        return
    home = Path.home()
    rw = home / "hf-cache-rw"
    mirror_hub_cache(home / ".cache" / "huggingface" / "hub", rw / "hub")
    os.environ["HF_HOME"] = str(rw)
    os.environ["HF_HUB_CACHE"] = str(rw / "hub")


# ---------------------------------------------------------------- warm-up

KINDS = ("music", "base", "planner", "lyrics", "stems", "beats")


def on_space() -> bool:
    import addresses

    return addresses.on_space()


def warmup_enabled() -> bool:
    """Always on ZeroGPU (models must exist before a worker is forked); on a Space by default
    (``ACE_STUDIO_WARMUP=0`` turns it off there); elsewhere only with ``ACE_STUDIO_WARMUP=1``."""
    import devices

    if devices.on_zero_gpu():
        return True
    return os.environ.get("ACE_STUDIO_WARMUP", "1" if on_space() else "0") == "1"


class Warmup:
    """The start-up build of this process: one thread at a time builds what is not built yet, music
    first; a failure is kept for the requests (``gpu.wait_for_models``) and the status line to say."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._since: float | None = None
        self._lock = threading.Lock()
        self.errors: dict[str, str] = {}

    def builds(self) -> tuple[tuple[str, Callable[[], Any]], ...]:
        import backend
        import beat_network
        import lyrics
        import planner
        import stems

        return (
            ("music", backend.get_backend),
            ("base", backend.build_base),
            ("planner", planner.get_planner),
            ("lyrics", lyrics.get_writer),
            ("stems", stems.get_separator),
            # Its file read once (5-20 CPU s) here, not in a visitor's first upload; absent, it says why.
            ("beats", beat_network.why_absent),
        )

    def built(self, kind: str) -> bool:
        import backend
        import devices
        import lyrics
        import planner
        import stems

        if kind == "planner":
            return planner.is_loaded() or not planner.enabled()
        if kind == "base":  # at start-up where ZeroGPU forks workers or on a Space; elsewhere on the first part
            import base_model

            early = devices.on_zero_gpu() or on_space()
            return not early or backend.base_is_warm() or base_model.missing() is not None
        if kind == "stems":  # without its weights there is nothing to build: the Stems button says so
            return stems.is_loaded() or stems.missing_reason() is not None
        if kind == "beats":
            import beat_network

            return beat_network.tried()
        return backend.is_warm() if kind == "music" else lyrics.is_loaded()

    def _build(self) -> None:
        for kind, build in self.builds():
            if self.built(kind):
                continue
            try:
                build()
                self.errors.pop(kind, None)
            except Exception as exc:  # the requests that need this model report it to the visitor
                self.errors[kind] = str(exc)
                print(f"Warm-up: the {kind} model could not be built: {exc}")

    def running(self) -> threading.Thread | None:
        return self._thread if self._thread is not None and self._thread.is_alive() else None

    def again(self) -> threading.Thread | None:
        """Start building what is not built, unless a build is under way or all is built; returns the
        thread doing it, if any."""
        with self._lock:
            if self.running() is not None:
                return self._thread
            if all(self.built(kind) for kind in KINDS):
                return None
            self._since = time.time()
            self._thread = threading.Thread(target=self._build, name="ace-studio-warmup", daemon=True)
            self._thread.start()
            return self._thread

    def failure(self, kind: str) -> str:
        """Why ``kind`` is not built, as the message a click gets (the music model's as the header says it)."""
        import error_messages
        import generation

        error = self.errors.get(kind, "unknown error")
        return (
            generation.model_missing(error)
            if kind == "music"
            else error_messages.MODEL_NOT_LOADED.format(name=error_messages.MODEL_NAMES[kind], error=error)
        )

    def state(self) -> dict[str, Any]:
        running = self.running() is not None
        elapsed = time.time() - self._since if running and self._since is not None else 0.0
        return {"running": running, "elapsed": elapsed, "errors": dict(self.errors)}


WARMUP = Warmup()


def start_warmup() -> threading.Thread | None:
    """Build the models in a background thread of this process (the GPU call waits for it), unless
    they are built, a build is under way, or warm-up is off. Returns the thread doing it, if any."""
    import gpu

    if not warmup_enabled():
        return None
    gpu.register(WARMUP)
    return WARMUP.again()


# ---------------------------------------------------------------- libraries

# What a first request imports (the models' libraries, the audio's, the analysis'), imported as soon as
# the server answers (``import_later``), not in a first request: there every other visitor's join would
# wait on them (the first join after start took 3-15 s on a busy machine). The admission check imports
# none (``headers``), so a join never waits on the import lock; only Python's lock is shared, a few
# tenths of a second at most while an extension starts (torch's ``_C``: 0.23 s). A name not installed
# here is passed over.
LIBRARIES = (
    "torch",
    "safetensors.torch",
    "diffusers",
    "diffusers.pipelines.ace_step",
    "accelerate",
    "peft",
    "diffusers.pipelines.pipeline_utils",
    "diffusers.models.modeling_utils",
    "diffusers.loaders.lora_pipeline",
    "diffusers.models.autoencoders",
    "diffusers.schedulers",
    "diffusers.quantizers.auto",
    "encodings.utf_16",
    "diffusers.schedulers.scheduling_flow_match_euler_discrete",
    "diffusers.guiders.adaptive_projected_guidance",
    "diffusers.utils.torch_utils",
    "mutagen.id3",
    "transformers",
    "transformers.models.qwen2.modeling_qwen2",
    "transformers.models.qwen3.modeling_qwen3",
    "transformers.generation",
    "tokenizers",
    "scipy.signal",
    "soxr",
    "pyloudnorm",
    "lameenc",
    "mutagen",
    "librosa",
    "librosa.beat",
    "librosa.feature",
    # The key is read from the harmonic part (``analysis.key_chroma``): librosa's separation imports scikit-learn.
    "librosa.effects",
    "librosa.decompose",
    # A LoKr adapter is attached through LyCORIS (``lokr.attach``) inside a request's GPU call.
    "lycoris",
    "demucs.htdemucs",
    "demucs.apply",
    # A take's finish runs beside the next visitor's call (``gpu.in_gpu_queue``), whose ZeroGPU worker is
    # forked meanwhile: nothing the finish imports may be mid-import then (the stretcher, the limiter's filters).
    "python_stretch",
    "scipy.ndimage",
    "pyloudnorm",
)


# How long the libraries wait for a first page to be answered (``import_later``) before they go on alone.
PAGE_FIRST_S = 20.0


def import_later(then: Callable[[], None]) -> threading.Thread:
    """``import_libraries`` in a thread of its own once the first page has been answered (or after
    ``PAGE_FIRST_S``), saying how long it took, then ``then()``. The page comes first: its first answer
    (a 1.2 MB config made once) shares Python's lock with nothing."""
    import page_answers

    def run() -> None:
        page_answers.ANSWERED.wait(PAGE_FIRST_S)
        seconds = None
        try:
            seconds = import_libraries()
        finally:
            then()
        print(f"Libraries imported in {seconds:.1f} s, after the page answered", flush=True)

    import gpu

    thread = threading.Thread(target=run, name="ace-studio-imports", daemon=True)
    gpu.register_imports(thread)
    thread.start()
    return thread


def import_libraries() -> float:
    """Import ``LIBRARIES`` (those installed); returns the seconds it took."""
    started = time.perf_counter()
    for name in LIBRARIES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        except Exception as exc:  # the start-up build's thread importing the same package the other way round
            print(f"{name} was not imported at start-up ({type(exc).__name__}: {exc}); a first use imports it")
    return time.perf_counter() - started
