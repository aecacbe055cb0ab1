"""Think: ACE-Step 1.5's 5 Hz planner writes the song's plan before the DiT renders it.

The planner is a Qwen3 causal LM (``acestep-5Hz-lm-0.6B/1.7B/4B``) run through transformers on
CUDA, MPS or the CPU. Caption, lyrics and whatever metadata the visitor fixed go in; metadata and
audio codes come out, in two generations as upstream ACE-Step runs them
(``acestep/llm_inference.py``, ``acestep/constrained_logits_processor.py``):

1. *Thinking*: the model writes ``<think>`` and then, one field per line in a fixed order,
   ``bpm``, ``caption``, ``duration``, ``keyscale``, ``language`` and ``timesignature``. Decoding
   is constrained: field names are forced, numbers, keys and languages can only take valid
   values, and a value the visitor fixed is written in for the model. Upstream ends this
   generation where ``</think>`` would begin. When the visitor fixed BPM, key, time signature and
   length, upstream skips this step and the plan holds only those.
2. *Blueprint*: a new prompt whose assistant message already holds the plan (YAML, as upstream
   writes it); after it only ``<|audio_code_N|>`` tokens (0 ≤ N < 64000) may follow, exactly five
   per second of the song.

Both generations sample at temperature 0.85 with top-p 0.9 (applied before the temperature, as
upstream's PyTorch path does). The thinking is unguided, one row (upstream since its commit
a188f4c); the blueprint is guided at 2.0 over the code tokens only, against upstream's
unconditional prompt (``NO USER INPUT`` and an empty plan, its commit ecd3d22). The thinking is
seeded by the first take's seed, each take's codes by its own, so a take made again alone from its
seed and place gets the same codes.

Deliberate differences from upstream, noted where they happen and in docs/fidelity.md: after the
caption the next field name is forced (upstream lets the model name a field, which may skip one),
the caption takes no special token and ends at 512 tokens, and the code count is rounded up
(``ceil``) so the blueprint covers every requested second.
"""

from __future__ import annotations

import collections
import math
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import audio
import decoding
import devices
import duration_estimate
import error_messages
import messages
import models
import music_request
import runs
from plan_constraints import TEMPERATURE, ThinkingConstraint, Vocabulary, sample, sample_rows
from plan_format import (
    DURATION_RANGE,
    FIELDS,
    FIXABLE,
    MAX_NEW_TOKENS,
    PlanUnusable,
    blueprint_negative,
    blueprint_prompt,
    check_plan,
    codes_text,
    format_plan,
    parse_plan,
    thinking_prompt,
)

DEFAULT_REPO = models.SHARED_REPO
DEFAULT_FOLDER = "acestep-5Hz-lm-1.7B"
OFF = {"none", "off", "0", "false", "no"}
CFG_SCALE = 2.0  # the blueprint's guidance (upstream's ``lm_cfg_scale``); the thinking has none
THINK_BUDGET = MAX_NEW_TOKENS  # upstream's cap on the thinking: 3,500 tokens

ProgressFn = Callable[[str, int | None, int | None], None]


# ---------------------------------------------------------------- the model's source


def model_source() -> str | None:
    """``ACE_STUDIO_PLANNER_MODEL``: a repo id or a folder; unset means the 1.7B in the shared repo,
    ``none`` switches Think off."""
    value = os.environ.get("ACE_STUDIO_PLANNER_MODEL", "").strip()
    if value.lower() in OFF:
        return None
    return value or f"{DEFAULT_REPO}/{DEFAULT_FOLDER}"


def enabled() -> bool:
    """True when a planner is configured (whether it loads is known only when it is built)."""
    return model_source() is not None


def public_name() -> str:
    return models.public_source(model_source() or "")


# ---------------------------------------------------------------- the planner


@dataclass
class Plan:
    """What the planner made of one request: one plan for all takes, a blueprint per take."""

    fields: dict[str, Any]  # bpm, caption, duration, keyscale, language, timesignature (what it wrote)
    codes: list[list[int]]  # one blueprint per take
    seconds: float
    thought: bool  # False when the plan was given, or the visitor fixed what upstream fixes
    layout: tuple[int, int]  # (the first take's place, the takes written together)
    # What each generation measured (``duration_estimate``): seconds, tokens or codes, steps replayed from graphs.
    phases: dict[str, tuple[float, int, bool]] = field(default_factory=dict)

    def record(self, source: str, take: int) -> dict[str, Any]:
        """What take ``take`` (0-based) keeps under ``planner`` in its record: the shared plan, its
        own code count, and its place in the batch (``take`` of ``of``: to remake it alone, the same
        way, so that it comes out as its batch twin did)."""
        return {
            "fields": self.fields,
            "codes": len(self.codes[take]),
            "seconds": round(self.seconds, 3),
            "thought": self.thought,
            "model": source,
            "take": self.layout[0] + take + 1,
            "of": self.layout[1],
        }


@dataclass
class Planner:
    model: Any
    tokenizer: Any
    vocab: Vocabulary
    source: str
    device: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    generations: collections.Counter = field(default_factory=collections.Counter)  # generations run, by kind
    temperature: float = TEMPERATURE  # upstream's ``lm_temperature``; 0 plans greedily (tests, comparisons)

    def plan(
        self,
        caption: str,
        lyrics: str,
        seconds: float | None,
        seeds: list[int],
        fixed: dict[str, Any] | None = None,
        progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        *,
        given: dict[str, Any] | None = None,
        rewrite_caption: bool = True,
        longest: int = DURATION_RANGE[1],
        layout: tuple[int, int] | None = None,
        loop_bars: int | None = None,
    ) -> Plan:
        """Think once (unless ``given`` holds the plan, or the visitor fixed everything upstream
        fixes), then write every take's blueprint in one batch, one seed per take.

        ``seconds`` is the visitor's length (None: Think chooses it, up to ``longest``). ``fixed``
        holds the visitor's ``bpm``, ``keyscale`` and ``timesignature`` (``None`` = the planner
        chooses); they win over a given plan too. Without ``rewrite_caption`` the plan has no
        caption (upstream's ``use_cot_caption`` off). ``layout`` = (index, takes) writes one take
        as it sat in a batch of that many, so it comes out as its batch twin did. ``loop_bars``: the length
        is that many bars at the tempo and metre planned (a loop, ``music_request.Loop``).
        ``PlanUnusable`` when the thinking gives no valid plan; ``runs.Cancelled`` on Stop.
        """
        import torch

        started = time.perf_counter()
        wanted = {k: v for k, v in (fixed or {}).items() if k in FIXABLE and v is not None}
        if seconds is not None:
            wanted["duration"] = int(seconds)
        skip = () if rewrite_caption else ("caption",)
        phases: dict[str, tuple[float, int, bool]] = {}
        on_graphs = duration_estimate.captured(self.model.device)
        with self.lock, devices.holding_gpu("planner"), torch.inference_mode():
            if given is not None:
                fields, thought = {**given, **wanted}, False
                if seconds is None:  # a plan brought back chooses no longer than Think itself may
                    fields["duration"] = min(int(fields["duration"]), longest)
            elif all(k in wanted for k in FIXABLE):
                fields, thought = dict(wanted), False
            else:
                text, tokens = self._think(caption, lyrics, wanted, seeds[0], skip, longest, progress, should_stop)
                fields, thought = check_plan(parse_plan(text), tuple(f for f in FIELDS if f not in skip)), True
                phases["think"] = (time.perf_counter() - started, tokens, on_graphs)
            if not rewrite_caption:
                fields.pop("caption", None)
            if loop_bars is not None:  # a loop: its bars at the tempo and metre planned, in whole seconds
                loop = music_request.Loop.of(loop_bars, int(fields["timesignature"]), fields["bpm"])
                fields["duration"] = math.ceil(round(loop.seconds, 6))
            if seconds is None and progress is not None:  # said before the blueprint and the render
                progress("chosen", int(fields["duration"]), None)
            target = audio.blueprint_codes(seconds if seconds is not None else fields["duration"])
            rows = layout or (0, len(seeds))
            writing = time.perf_counter()
            codes = self._blueprints(caption, lyrics, format_plan(fields), target, seeds, rows, progress, should_stop)
            phases["blueprint"] = (time.perf_counter() - writing, target, on_graphs)
        return Plan(fields, codes, time.perf_counter() - started, thought, rows, phases)

    # -- the two generations

    def _think(
        self,
        caption: str,
        lyrics: str,
        given: dict[str, Any],
        seed: int,
        skip: tuple[str, ...],
        longest: int,
        progress: ProgressFn | None,
        should_stop: Callable[[], bool],
    ) -> tuple[str, int]:
        """The thinking's text, and its tokens."""
        self.generations["think"] += 1
        constraint = ThinkingConstraint(self.vocab, given, skip=skip, longest=longest)
        generator = self.generator(seed)
        written: list[int] = []
        # One row: no guidance while thinking, as upstream (guidance there broke captions off early).
        step = self.decoder([thinking_prompt(self.tokenizer, caption, lyrics)], THINK_BUDGET, "planner's thinking")
        try:
            logits = next(step)
            while not constraint.done and len(written) < THINK_BUDGET:
                if should_stop():
                    raise runs.Cancelled(messages.STOPPED_THINKING)
                token = sample(constraint.mask(logits[0]), generator, self.temperature)
                constraint.feed(token)
                written.append(token)
                if token == self.vocab.eos:
                    break
                if progress is not None:
                    progress("thinking", len(written), None)
                logits = step.send(torch_tokens([token], logits.device))
        finally:  # the cache and the step's graph go now, also on Stop
            step.close()
        return self.tokenizer.decode(written, skip_special_tokens=False), len(written)

    def _blueprints(
        self,
        caption: str,
        lyrics: str,
        plan: str,
        target: int,
        seeds: list[int],
        layout: tuple[int, int],
        progress: ProgressFn | None,
        should_stop: Callable[[], bool],
    ) -> list[list[int]]:
        """Every take's ``target`` codes, decoded together: rows ``[cond × n, uncond × n]`` over one
        static KV cache, each take sampled from its own seed on the device; the codes reach the
        host once, at the end. ``layout`` = (first take's row, rows per half)."""
        import torch

        self.generations["blueprint"] += 1
        first, width = layout
        takes = len(seeds)
        prompts = [blueprint_prompt(self.tokenizer, caption, lyrics, plan)] * width
        prompts += [blueprint_negative(self.tokenizer)] * width
        mine = slice(first, first + takes)
        row_seeds = [seeds[min(max(i - first, 0), takes - 1)] for i in range(width)]  # outside ``mine``: unused
        generators = [self.generator(seed) for seed in row_seeds]
        code_ids = torch.tensor(self.vocab.code_ids, device=self.model.device)
        codes_of = self.vocab.code_span or code_ids
        codes = torch.empty((width, target), dtype=torch.long, device=self.model.device)
        step = self.decoder(prompts, target, "planner's blueprint")
        try:
            logits = next(step)
            for done in range(target):
                if should_stop():
                    raise runs.Cancelled(messages.STOPPED_WRITING_CODES.format(done=done, target=target))
                # Only audio codes until the count is reached, then EOS (upstream's rule), so the loop
                # simply takes ``target`` codes; a sampled index is the code's number.
                only_codes = logits[:, codes_of]
                guided = _guide(only_codes[:width], only_codes[width:])
                codes[:, done] = sample_rows(guided, generators, self.temperature)
                if progress is not None:
                    progress("blueprint", done + 1, target)
                if done + 1 < target:
                    logits = step.send(code_ids[codes[:, done]].repeat(2))
        finally:
            step.close()
        return codes[mine].tolist()

    def decoder(self, prompts: list[str], new_tokens: int, name: str = "planner") -> Any:
        """A generator of next-token logits (float32, one row per prompt) for the tokens sent in (a
        tensor, one per row): ``decoding.decoder`` over a static KV cache of ``new_tokens`` more
        positions, each step replayed from a CUDA graph where one can be captured (``graphs``)."""
        ids = [self.tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.vocab.eos
        return decoding.decoder(self.model, ids, pad, new_tokens, name)

    def generator(self, seed: int) -> Any:
        import torch

        device = self.model.device
        return torch.Generator(device if device.type == "cuda" else "cpu").manual_seed(int(seed))


def torch_tokens(tokens: list[int], device: Any) -> Any:
    import torch

    return torch.tensor(tokens, device=device)


def _guide(cond: Any, uncond: Any, scale: float = CFG_SCALE) -> Any:
    return uncond + scale * (cond - uncond)


def _free_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------- building it once


_planner: Planner | None = None
_lock = threading.Lock()
_failed: str | None = None


def is_loaded() -> bool:
    return _planner is not None


duration_estimate.watch("planner", lambda: is_loaded())  # whether a call builds it (the duration estimate asks)


def load_error() -> str | None:
    """Why the last build failed, if it did."""
    return _failed


def get_planner() -> Planner:
    """The shared planner, built on first use, once; ``models.ModelLoadError`` if it cannot be."""
    global _planner, _failed
    if _planner is not None:
        return _planner
    with _lock:
        if _planner is None:
            try:
                _planner = _load()
                _failed = None
            except models.ModelLoadError as exc:
                _failed = str(exc)
                raise
    return _planner


def reset_planner() -> None:
    global _planner, _failed
    with _lock:
        _planner, _failed = None, None
        devices.forget_resident("planner")


def _folder(source: str) -> str:
    """A local folder or a Hub repo id for ``from_pretrained``; the default lives in a subfolder."""
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists() and (path / DEFAULT_FOLDER / "config.json").exists():
            return str(path / DEFAULT_FOLDER)  # a whole upstream checkpoints/ folder
        return str(path)
    if source.startswith((".", "/", "~")):
        raise models.ModelLoadError(error_messages.PLANNER_NO_FOLDER.format(source=source))
    if source == f"{DEFAULT_REPO}/{DEFAULT_FOLDER}":
        where = models.download(DEFAULT_REPO, (f"{DEFAULT_FOLDER}/*",), "Think's planner", "ACE_STUDIO_PLANNER_MODEL")
        return str(where / DEFAULT_FOLDER)
    return source


def _load() -> Planner:
    source = model_source()
    if source is None:
        raise models.ModelLoadError(error_messages.PLANNER_OFF)
    device = models.pick_device()
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = _folder(source)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        vocab = Vocabulary.of(tokenizer)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=models.dtype_for(device, "lm")).eval()
        # Under an offload mode it waits on the CPU and visits the device only while it holds the GPU.
        home = device if devices.offload_mode(device) == "none" else "cpu"
        model.to(home)
    except models.ModelLoadError:
        raise
    except Exception as exc:  # missing files, no network, out of memory: all "cannot load"
        raise models.ModelLoadError(error_messages.PLANNER_UNREADABLE.format(name=public_name(), error=exc)) from exc
    built = Planner(model, tokenizer, vocab, source, device)
    devices.register_resident("planner", model, device, on=home)
    return built


# ---------------------------------------------------------------- a Generate request

# The length a song gets when Think was to choose it but could not.
FALLBACK_SECONDS = 30


def plan_request(
    render: music_request.Render,
    args: music_request.PlanArgs,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> music_request.Plan:
    """Plan a Generate request once: every take's blueprint (``audio_codes``, one per take), the
    planner's caption (as upstream's Think passes it on, unless ``rewrite_caption`` is off), its BPM,
    key and time signature where the visitor left them to the model (``render`` has them None), and
    the length (the planner's where it chose it), as a ``Plan`` the render takes (``Render.planned``).

    Each take's entry is what its record keeps under ``planner``; when the planner gave nothing
    usable the takes are made without a blueprint and the entries say why.
    """
    started, takes = time.perf_counter(), render.takes

    def skipped(reason: str) -> music_request.Plan:
        changes = {}
        if args.seconds is None:  # nothing chose the length: the form's own default
            changes["audio_duration"] = music_request.pipeline_seconds(FALLBACK_SECONDS)
            reason += messages.SKIP_LENGTH.format(seconds=FALLBACK_SECONDS)
        entry = {"skipped": reason, "model": public_name(), "seconds": round(time.perf_counter() - started, 3)}
        return music_request.Plan((entry,) * takes, changes)

    try:
        planned = get_planner().plan(
            args.caption,
            args.lyrics,
            args.seconds,
            list(render.seeds),
            args.fixed,
            progress,
            should_stop,
            given=args.given,
            rewrite_caption=args.rewrite_caption,
            longest=int(args.longest or DURATION_RANGE[1]),
            layout=args.layout,
            loop_bars=args.loop_bars,
        )
    except (PlanUnusable, models.ModelLoadError) as exc:
        return skipped(str(exc))
    except runs.Cancelled:
        raise
    except Exception as exc:  # out of memory, a model without a chat template: the song goes on
        traceback.print_exc()
        _free_cache()
        return skipped(messages.SKIP_FAILED.format(kind=type(exc).__name__))
    if not all(planned.codes):
        return skipped(messages.SKIP_NO_CODES)
    changes = {
        "audio_codes": [codes_text(codes) for codes in planned.codes],
        "audio_duration": len(planned.codes[0]) / audio.CODES_PER_SECOND,
    }
    if args.rewrite_caption and planned.fields.get("caption"):
        changes["prompt"] = planned.fields["caption"]
    for key in ("bpm", "keyscale", "timesignature"):
        if getattr(render.pipeline, key) is None and planned.fields.get(key) is not None:
            changes[key] = str(planned.fields[key]) if key == "timesignature" else planned.fields[key]
    entries = tuple(planned.record(public_name(), i) for i in range(takes))
    return music_request.Plan(entries, changes, dict(planned.phases))
