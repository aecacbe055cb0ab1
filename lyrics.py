"""The lyrics writer: Qwen 2.5 7B Instruct through transformers (CUDA/CPU) or mlx-lm (Apple Silicon;
``ACE_STUDIO_LYRICS_ENGINE`` forces either).

It builds a songwriting prompt and streams the model's text; ``lyrics_page`` makes that text into
what ACE-Step sings well, plus a style caption for Generate (``lyrics_page.clean``).
"""

from __future__ import annotations

import os
import platform
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

import checks
import decoding
import devices
import duration_estimate
import error_messages
import gpu
import hub
import messages
import models
import parameters
import runs

DEFAULT_MODEL = "Qwen/Qwen2.5-7B-Instruct"
MLX_MODEL = "mlx-community/Qwen2.5-7B-Instruct-4bit"
TOP_P = 0.9

STRUCTURES: dict[str, list[str]] = {
    "verse-chorus": ["Verse 1", "Chorus", "Verse 2", "Chorus"],
    "verse-chorus-bridge": ["Verse 1", "Chorus", "Verse 2", "Chorus", "Bridge", "Chorus"],
    "full-song": [
        "Intro",
        "Verse 1",
        "Pre-Chorus",
        "Chorus",
        "Verse 2",
        "Pre-Chorus",
        "Chorus",
        "Bridge",
        "Chorus",
        "Outro",
    ],
    "short-loop": ["Verse", "Chorus"],
    "custom": [],
}
LENGTHS = {"short": 2, "medium": 4, "long": 6}  # lines per section
# Creativity (the sampling temperature): the page's slider and the admission check read this range.
TEMPERATURE_RANGE = (0.0, 1.5)


class LyricsError(ValueError):
    """A request the writer cannot serve; the message is for the songwriter, ``param`` the field at fault."""

    def __init__(self, message: str, param: str = "theme") -> None:
        super().__init__(message)
        self.param = param

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps ``param`` across a pickle round trip (ZeroGPU's worker boundary).
        return (type(self), (str(self), self.param))


class Stopped(Exception):
    """The songwriter clicked Stop."""


@dataclass
class Request:
    """What the writer is asked; its defaults are the Lyrics tab's and ``/lyrics``' (``make_request``'s)."""

    theme: str
    genre: str = ""
    mood: str = ""
    vocal_language: str = "en"
    structure: str = "verse-chorus"
    custom_sections: str = ""
    length: str = "medium"
    temperature: float = 0.8
    seed: int = -1

    def sections(self) -> list[str]:
        if self.structure == "custom":
            names = [s.strip(" []") for s in re.split(r"[,\n;]+", self.custom_sections) if s.strip(" []")]
            if not names:
                raise LyricsError(error_messages.LYRICS_NO_SECTIONS, "custom_sections")
            return names
        return list(STRUCTURES[self.structure])


def build_messages(req: Request, language_name: str) -> list[dict[str, str]]:
    """The chat the model is given: the rules of the format, then the song idea."""
    sections = req.sections()
    lines = LENGTHS[req.length]
    tags = "\n".join(f"[{s}]" for s in sections)
    system = (
        "You are a professional songwriter. You write singable lyrics with natural rhythm and rhyme. "
        "Answer with the lyrics only: no title, no explanations, no markdown, no numbering."
    )
    user = (
        f"Write song lyrics in {language_name}.\n"
        f"Theme: {req.theme}\n"
        + (f"Genre/style: {req.genre}\n" if req.genre else "")
        + (f"Mood: {req.mood}\n" if req.mood else "")
        + f"Use exactly these sections, in this order, each tag alone on its own line:\n{tags}\n"
        f"Write about {lines} short lines per section (an [Intro], [Outro] or [Instrumental] may be empty).\n"
        "After the lyrics, add one final line that starts with 'Caption:' followed by a short, "
        "comma-separated description of the music in English (genre, mood, instruments, vocal type)."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# ---------------------------------------------------------------- the model


def model_source() -> str:
    return os.environ.get(ENV, "").strip()


ENV = "ACE_STUDIO_LYRICS_MODEL"


def missing(wait: float = 0.0) -> str | None:
    """Why the writer's weights cannot be had now, as the studio's message (as the music model's and the
    planner's: ``models.weights_missing``), or None where they can: a folder, a repo in the Hub cache, or
    one the Hub may give now. Reads no weights and asks the Hub nothing itself (``hub.reachable``'s
    answer, waiting up to ``wait`` s for its first): never the Hub client's retries, never its messages."""
    try:
        source = model_source() or (MLX_MODEL if engine() == "mlx" else DEFAULT_MODEL)
    except models.ModelLoadError as exc:
        return str(exc)
    if Path(source).expanduser().is_dir():
        return None
    if source.startswith((".", "/", "~")):
        return messages.WRITER_NO_FOLDER.format(folder=source, env=ENV)
    if hub.cached(source, "config.json"):
        return None
    closed = models.hub_closed(source, wait=wait)
    return None if closed is None else models.weights_missing("the lyrics writer", source, ENV, closed)


def check_weights() -> None:
    """Before a request waits for the GPU: the writer's weights, where they cannot be had, refused at once
    with ``missing``'s message (the Hub's first answer waited for at most ``hub.PROBE_TIMEOUT_S``)."""
    if not is_loaded() and (why := missing(wait=hub.PROBE_TIMEOUT_S)) is not None:
        raise _not_built(models.WeightsMissing(why))


def _mlx_available() -> bool:
    try:
        import mlx_lm  # noqa: F401
    except ImportError:
        return False
    return True


def engine() -> str:
    """``ACE_STUDIO_LYRICS_ENGINE``: ``mlx``, ``transformers``, or ``auto`` (default): mlx-lm on
    Apple Silicon where it is installed, else transformers. mlx also has Linux wheels (its CPU
    backend, which the tests use), so being importable alone must not pick it."""
    wanted = os.environ.get("ACE_STUDIO_LYRICS_ENGINE", "").strip().lower() or "auto"
    if wanted not in ("auto", "mlx", "transformers"):
        raise models.ModelLoadError(error_messages.LYRICS_ENGINE_UNKNOWN.format(given=wanted))
    if wanted == "mlx" and not _mlx_available():
        raise models.ModelLoadError(error_messages.LYRICS_ENGINE_NO_MLX)
    if wanted == "auto":
        apple = sys.platform == "darwin" and platform.machine() == "arm64"
        return "mlx" if apple and _mlx_available() else "transformers"
    return wanted


@dataclass
class Writer:
    """A loaded lyrics model and how to stream from it."""

    engine: str  # "transformers" or "mlx"
    source: str
    model: Any
    tokenizer: Any
    device: str

    def stream(
        self,
        messages: list[dict[str, str]],
        temperature: float,
        seed: int,
        max_new_tokens: int,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[str]:
        """The model's text piece by piece; ``Stopped`` as soon as ``should_stop()`` says so."""
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if self.engine == "mlx":
            pieces = self._stream_mlx(prompt, temperature, seed, max_new_tokens, should_stop)
        else:
            pieces = self._stream_transformers(prompt, temperature, seed, max_new_tokens, should_stop)
        try:
            for piece in pieces:
                if should_stop():
                    raise Stopped
                yield piece
        finally:
            pieces.close()

    def _stream_mlx(
        self, prompt: str, temperature: float, seed: int, max_new_tokens: int, should_stop: Callable[[], bool]
    ) -> Iterator[str]:
        import mlx.core as mx
        import mlx_lm
        from mlx_lm.sample_utils import make_sampler

        mx.random.seed(seed)
        sampler = make_sampler(temp=temperature, top_p=TOP_P)
        # mlx-lm decodes in this thread, one token per step of its generator, so closing it ends the
        # generation at once (and its own finally restores Metal's wired-memory limit).
        tokens = mlx_lm.stream_generate(self.model, self.tokenizer, prompt, max_tokens=max_new_tokens, sampler=sampler)
        try:
            for response in tokens:
                if should_stop():
                    raise Stopped
                yield response.text
        finally:
            tokens.close()

    def _stream_transformers(
        self, prompt: str, temperature: float, seed: int, max_new_tokens: int, should_stop: Callable[[], bool]
    ) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        closed = threading.Event()
        # Not ``skip_prompt``: the prompt is never put, only the written tokens.
        streamer = TextIteratorStreamer(self.tokenizer, skip_special_tokens=True)
        failure: list[BaseException] = []

        def work() -> None:
            try:
                # The GPU is held by this one thread for the whole generation, never across the
                # reader's yields: Gradio may drive a generator from a different thread each step.
                with devices.holding_gpu("lyrics"):
                    ids = self.tokenizer(prompt).input_ids
                    torch.manual_seed(seed)
                    # Ends when the reader went away or Stop was clicked (asked before every token),
                    # so no thread keeps the model busy after the visitor has left.
                    for token in decoding.sample_tokens(
                        self.model, ids, max_new_tokens, temperature, TOP_P, lambda: closed.is_set() or should_stop()
                    ):
                        streamer.put(torch.tensor([token]))
                streamer.end()
            except BaseException as exc:  # surfaced in the caller's thread below
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=work, name="lyrics-generate", daemon=True)
        thread.start()
        try:
            yield from streamer
        finally:
            closed.set()
            thread.join()
        if failure:
            raise failure[0]


_writer: Writer | None = None
_lock = threading.Lock()


def is_loaded() -> bool:
    return _writer is not None


def get_writer() -> Writer:
    """The shared lyrics model, loaded on first use, once."""
    global _writer
    if _writer is not None:
        return _writer
    with _lock:
        if _writer is None:
            _writer = _load()
    return _writer


def reset_writer() -> None:
    global _writer
    with _lock:
        _writer = None


def _load() -> Writer:
    override = model_source()
    if (why := missing()) is not None:  # the studio's message, not the Hub client's after its retries
        raise models.WeightsMissing(why)
    try:
        if engine() == "mlx":
            import mlx.core as mx
            import mlx_lm

            source = override or MLX_MODEL
            model, tokenizer = mlx_lm.load(source)
            return Writer("mlx", source, model, tokenizer, "mps" if mx.metal.is_available() else "cpu")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = override or DEFAULT_MODEL
        device = models.pick_device()
        devices.offload_mode(device)  # decided before anything is on the device
        model = AutoModelForCausalLM.from_pretrained(source, dtype=models.dtype_for(device, "lm"))
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as exc:  # missing files, no network, out of memory: all "cannot load"
        source = override or error_messages.THE_LYRICS_MODEL
        raise models.ModelLoadError(error_messages.LYRICS_MODEL_UNREADABLE.format(source=source, error=exc)) from exc
    gib = devices.weights_gib(model)
    if not devices.fits_alone(gib, device):
        raise models.ModelLoadError(messages.LYRICS_TOO_BIG.format(source=models.public_source(source), gib=gib))
    model.eval()
    # Built on the CPU; its first call brings it to the device (devices.claim_device).
    devices.register_resident("lyrics", model, device, gib, on="cpu")
    return Writer("transformers", source, model, tokenizer, device)


duration_estimate.watch("lyrics", lambda: is_loaded())  # whether a call builds it (the duration estimate asks)


def estimate_duration(req: Request, multiplier: float = 1.0, run_id: str | None = None) -> int:
    """GPU seconds for one lyrics call (``duration_estimate``): loading if cold, then the longest text ``req`` may have
    written (``max_new_tokens``, what the writer is held to)."""
    return duration_estimate.declare(duration_estimate.lyrics_phases(max_new_tokens(req)), multiplier, run_id)


def max_new_tokens(req: Request) -> int:
    """The most tokens the writer may write for ``req``: its sections' lines, capped."""
    return min(1536, 80 + len(req.sections()) * LENGTHS[req.length] * 16)


def draw_seed(seed: int) -> int:
    """``seed`` itself, or a random one for -1."""
    return seed if seed >= 0 else int.from_bytes(os.urandom(4), "little") >> 1


def stream_lyrics(req: Request, language_name: str, run_id: str | None = None) -> Iterator[str]:
    """Raw text as the model writes it, accumulated; ``Stopped`` once Stop flags ``run_id``."""
    writer = get_writer()
    seed = draw_seed(req.seed)
    text = ""
    tokens = max_new_tokens(req)
    pieces = writer.stream(
        build_messages(req, language_name), req.temperature, seed, tokens, lambda: runs.is_stopped(run_id)
    )
    for piece in pieces:
        text += piece
        yield text


def make_request(
    theme: Any,
    genre: Any = Request.genre,
    mood: Any = Request.mood,
    vocal_language: Any = Request.vocal_language,
    structure: Any = Request.structure,
    temperature: Any = Request.temperature,
    seed: Any = Request.seed,
    custom_sections: Any = Request.custom_sections,
    length: Any = Request.length,
) -> Request:
    """Validate the Lyrics tab's inputs; every problem is a ``LyricsError`` a songwriter can act on."""
    theme = str(theme or "").strip()
    if not theme:
        raise LyricsError(error_messages.LYRICS_NO_THEME)
    for name, value in (("theme", theme), ("genre", genre), ("mood", mood), ("custom_sections", custom_sections)):
        if len(str(value or "")) > checks.TEXT_LIMITS[name]:
            limit = checks.TEXT_LIMITS[name]
            raise LyricsError(error_messages.TEXT_TOO_LONG.format(limit=limit, n=len(str(value))), name)
    code = checks.language_code(vocal_language)
    if code is None:
        given, count = checks.shown(vocal_language), len(checks.LANGUAGES)
        raise LyricsError(error_messages.LYRICS_LANGUAGE_UNKNOWN.format(given=given, count=count), "vocal_language")
    structure = str(structure or "").strip().lower()
    if structure not in STRUCTURES:
        choices = ", ".join(STRUCTURES)
        raise LyricsError(
            error_messages.LYRICS_STRUCTURE_UNKNOWN.format(given=checks.shown(structure), choices=choices), "structure"
        )
    length = str(length or Request.length).strip().lower()
    if length not in LENGTHS:
        raise LyricsError(error_messages.LYRICS_LENGTH_UNKNOWN.format(given=checks.shown(length)), "length")
    try:
        temp = float(temperature)
    except (TypeError, ValueError, OverflowError):
        raise LyricsError(error_messages.CREATIVITY_NOT_NUMBER, "temperature") from None
    if temp != temp:
        raise LyricsError(error_messages.CREATIVITY_NOT_NUMBER, "temperature")
    try:  # the message every seed of the studio gets
        seed_value = parameters.check_seed(seed)
    except gr.Error as exc:
        raise LyricsError(exc.message, "seed") from None
    if not TEMPERATURE_RANGE[0] <= temp <= TEMPERATURE_RANGE[1]:
        low, high = TEMPERATURE_RANGE
        raise LyricsError(error_messages.CREATIVITY_OUT_OF_RANGE.format(low=low, high=high, given=temp), "temperature")
    req = Request(
        theme,
        str(genre or "").strip(),
        str(mood or "").strip(),
        code,
        structure,
        str(custom_sections or ""),
        length,
        temp,
        seed_value,
    )
    req.sections()  # a custom structure with no sections is refused here
    return req


def fallback_caption(req: Request) -> str:
    """A caption from the form when the model proposed none."""
    parts = [p for p in (req.genre, req.mood) if p]
    return ", ".join(parts) or "song with vocals"


# ---------------------------------------------------------------- the GPU entry


def lyrics_duration(
    request: Request,
    language_name: str,
    progress: Any = None,
    run_id: str | None = None,
    multiplier: float = 1.0,
) -> int:
    return estimate_duration(request, multiplier, run_id)


def _stopped(exc: Stopped) -> Exception:
    return runs.stopped(messages.LYRICS_STOPPED)


def _not_built(exc: models.ModelLoadError) -> Exception:
    return gr.Error(error_messages.LYRICS_MODEL_MISSING.format(error=exc), title="Model not available")


def _failed(exc: Exception) -> Exception:
    return gr.Error(error_messages.LYRICS_FAILED.format(kind=type(exc).__name__, error=exc))


@gpu.entry(duration=lyrics_duration)
def lyrics_gpu(
    request: Request,
    language_name: str,
    progress: Any = None,
    run_id: str | None = None,
    multiplier: float = 1.0,
) -> Iterator[str]:
    """The GPU entry of the lyrics writer (``request``: as ``make_request`` checked it, its seed drawn;
    a plain dataclass, it crosses ZeroGPU's pickle as it is); yields the text
    written so far and, once the writer has finished (not on Stop or an error), what the call measured
    (``duration_estimate.Report``, which ``gpu.stream`` keeps and does not pass on)."""
    with gpu.worker_errors(_failed, ((Stopped, _stopped), (models.ModelLoadError, _not_built))):
        started, cold = time.perf_counter(), not is_loaded()
        writer = get_writer()
        loaded = time.perf_counter() - started if cold else 0.0
        writing, text = time.perf_counter(), ""
        for text in stream_lyrics(request, language_name, run_id=run_id):
            yield text
        yield _measured(writer, text, time.perf_counter() - writing, started, loaded)


def _measured(writer: Writer, text: str, seconds: float, started: float, loaded: float) -> duration_estimate.Report:
    """The writer's speed for the duration estimate: the tokens of what it wrote (its own tokenizer's count) in ``seconds``."""
    tokens = len(writer.tokenizer.encode(text, add_special_tokens=False)) if text else 0
    on_graphs = writer.engine == "transformers" and duration_estimate.captured(writer.device)
    spent = {"write": seconds}
    return duration_estimate.report(
        "lyrics", {"tokens": tokens}, spent, started, {"write": tokens}, {"write": on_graphs}, {"lyrics": loaded}
    )
