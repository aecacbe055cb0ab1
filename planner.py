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
2. *Blueprint*: a new prompt whose assistant turn already holds the plan (YAML, as upstream
   writes it); after it only ``<|audio_code_N|>`` tokens (0 ≤ N < 64000) may follow, exactly five
   per second of the song.

Both generations sample at temperature 0.85 with top-p 0.9 (applied before the temperature, as
upstream's PyTorch path does) and classifier-free guidance 2.0 against upstream's unconditional
prompts, seeded by the take's seed. Each take is planned on its own, so a take made again alone
from its seed gets the same plan.

Two deliberate differences from upstream, both noted where they happen: after the caption the
next field name is forced (upstream lets the model name a field, which may skip one), and the
code count is rounded up (``ceil``) so the blueprint covers every requested second.
"""

from __future__ import annotations

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
import devices
import models
import runs
from plan_constraints import ThinkingConstraint, Vocabulary, sample
from plan_format import (
    CODES_PER_SECOND,
    FIXABLE,
    PlanUnusable,
    blueprint_negative,
    blueprint_prompt,
    check_plan,
    codes_text,
    format_plan,
    parse_plan,
    thinking_negative,
    thinking_prompt,
)

DEFAULT_REPO = models.SHARED_REPO
DEFAULT_FOLDER = "acestep-5Hz-lm-1.7B"
OFF = {"none", "off", "0", "false", "no"}
CFG_SCALE = 2.0
THINK_BUDGET = 4032  # upstream's token budget for the thinking generation

ProgressFn = Callable[[str, int | None, int | None], None]


# ---------------------------------------------------------------- the model's source


def model_source() -> str | None:
    """``ACE_STUDIO_PLANNER_MODEL``: a repo id or a folder; unset means the 1.7B in the shared repo,
    ``none`` turns Think off."""
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
    """What the planner made of one take."""

    fields: dict[str, Any]  # bpm, caption, duration, keyscale, language, timesignature (what it wrote)
    codes: list[int]  # the blueprint
    seconds: float
    thought: bool  # False when the visitor fixed BPM, key, time signature and length (no thinking)

    def record(self, source: str) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "codes": len(self.codes),
            "seconds": round(self.seconds, 3),
            "thought": self.thought,
            "model": source,
        }


@dataclass
class Planner:
    model: Any
    tokenizer: Any
    vocab: Vocabulary
    source: str
    device: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    def plan(
        self,
        caption: str,
        lyrics: str,
        seconds: float,
        seed: int,
        fixed: dict[str, Any] | None = None,
        progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Plan:
        """Think (unless the visitor fixed everything upstream fixes), then write a blueprint that
        covers ``seconds`` (``audio.blueprint_codes``).

        ``fixed`` holds the visitor's ``bpm``, ``keyscale`` and ``timesignature`` (``None`` = the
        planner chooses); the length is always the visitor's. ``PlanUnusable`` when the thinking
        gives no valid plan; ``runs.Cancelled`` when ``should_stop()`` says so.
        """
        import torch

        started = time.perf_counter()
        given = {k: v for k, v in (fixed or {}).items() if k in FIXABLE and v is not None}
        given["duration"] = int(seconds)
        target = audio.blueprint_codes(seconds)
        with self.lock, devices.gpu_turn("planner"), torch.inference_mode():
            if all(k in given for k in FIXABLE):
                fields, thought = dict(given), False
            else:
                text = self._think(caption, lyrics, given, seed, progress, should_stop)
                fields, thought = check_plan(parse_plan(text)), True
            codes = self._blueprint(caption, lyrics, format_plan(fields), target, seed, progress, should_stop)
        return Plan(fields, codes, time.perf_counter() - started, thought)

    # -- the two generations

    def _think(
        self,
        caption: str,
        lyrics: str,
        given: dict[str, Any],
        seed: int,
        progress: ProgressFn | None,
        should_stop: Callable[[], bool],
    ) -> str:
        rows = [thinking_prompt(self.tokenizer, caption, lyrics), thinking_negative(self.tokenizer, lyrics)]
        constraint = ThinkingConstraint(self.vocab, given)
        generator = self._generator(seed)
        written: list[int] = []
        step = self._decoder(rows)
        logits = next(step)
        while not constraint.done and len(written) < THINK_BUDGET:
            if should_stop():
                raise runs.Cancelled("Stopped while the planner was thinking.")
            guided = _guide(logits[0], logits[1])
            token = sample(constraint.mask(guided), generator)
            constraint.feed(token)
            written.append(token)
            if token == self.vocab.eos:
                break
            if progress is not None:
                progress("thinking", len(written), None)
            logits = step.send([token, token])
        step.close()
        return self.tokenizer.decode(written, skip_special_tokens=False)

    def _blueprint(
        self,
        caption: str,
        lyrics: str,
        plan: str,
        target: int,
        seed: int,
        progress: ProgressFn | None,
        should_stop: Callable[[], bool],
    ) -> list[int]:
        import torch

        rows = [
            blueprint_prompt(self.tokenizer, caption, lyrics, plan),
            blueprint_negative(self.tokenizer, caption, lyrics),
        ]
        generator = self._generator(seed)
        code_ids = torch.tensor(self.vocab.code_ids, device=self.model.device)
        codes: list[int] = []
        step = self._decoder(rows)
        logits = next(step)
        for done in range(target):
            if should_stop():
                raise runs.Cancelled(f"Stopped while the planner wrote the blueprint ({done} of {target} codes).")
            # Only audio codes until the count is reached, then EOS (upstream's rule), so the loop
            # simply takes ``target`` codes; a sampled index is the code's number.
            only_codes = logits[:, code_ids]
            codes.append(sample(_guide(only_codes[0], only_codes[1]), generator))
            if progress is not None:
                progress("blueprint", done + 1, target)
            if done + 1 < target:
                token = self.vocab.code_ids[codes[-1]]
                logits = step.send([token, token])
        step.close()
        return codes

    def _decoder(self, prompts: list[str]):
        """A generator of next-token logits (float32, one row per prompt) for the tokens sent in;
        prompts are left-padded into one batch with a KV cache."""
        import torch

        ids = [self.tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
        width = max(len(x) for x in ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.vocab.eos
        device = self.model.device
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1
        )
        cache = out.past_key_values
        while True:
            tokens = yield out.logits[:, -1].float()
            mask = torch.cat([mask, mask.new_ones(len(ids), 1)], dim=1)
            positions = positions[:, -1:] + 1
            out = self.model(
                input_ids=torch.tensor(tokens, device=device)[:, None], attention_mask=mask, position_ids=positions,
                past_key_values=cache, use_cache=True, logits_to_keep=1,
            )  # fmt: skip
            cache = out.past_key_values

    def _generator(self, seed: int) -> Any:
        import torch

        device = self.model.device
        return torch.Generator(device if device.type == "cuda" else "cpu").manual_seed(int(seed))


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
        raise models.ModelLoadError(f"Planner folder {source} does not exist.")
    if source == f"{DEFAULT_REPO}/{DEFAULT_FOLDER}":
        return str(models.download(DEFAULT_REPO, (f"{DEFAULT_FOLDER}/*",)) / DEFAULT_FOLDER)
    return source


def _load() -> Planner:
    source = model_source()
    if source is None:
        raise models.ModelLoadError("Think is off on this studio (ACE_STUDIO_PLANNER_MODEL=none).")
    device = models.pick_device()
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = _folder(source)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        vocab = Vocabulary.of(tokenizer)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=models.dtype_for(device, "lm")).eval()
        # Under an offload mode it waits on the CPU and visits the device for its turns only.
        home = device if devices.offload_mode(device) == "none" else "cpu"
        model.to(home)
    except models.ModelLoadError:
        raise
    except Exception as exc:  # missing files, no network, out of memory: all "cannot load"
        raise models.ModelLoadError(f"the planner ({public_name()}): {exc}") from exc
    built = Planner(model, tokenizer, vocab, source, device)
    devices.register_resident("planner", model, device, on=home)
    return built


# ---------------------------------------------------------------- GPU time

# Seconds per generated token for the 1.7B in bf16 on a ZeroGPU slice, batch of two rows (guided),
# eager PyTorch; a guess until issue #15 measures it.
SECONDS_PER_TOKEN = 0.025
THINK_TOKENS = 250  # a typical thinking block: six fields and a caption of a few lines
COLD_SECONDS = 20.0


def estimate_seconds(seconds: float, takes: int = 1) -> float:
    """GPU seconds the planner adds to a call for ``takes`` songs of ``seconds`` (each planned alone)."""
    tokens = THINK_TOKENS + math.ceil(seconds * CODES_PER_SECOND)
    return takes * (2.0 + tokens * SECONDS_PER_TOKEN) + (0.0 if is_loaded() else COLD_SECONDS)


# ---------------------------------------------------------------- a Generate request


def think_first(
    request: dict[str, Any],
    plan_args: dict[str, Any],
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Plan one take of a Generate request (``request["seeds"]`` holds its one seed) and fold the
    plan into its pipeline arguments, in place.

    ``plan_args`` holds caption, lyrics, length and the visitor's fixed metadata. The DiT gets the
    blueprint (``audio_codes``), the planner's caption (as upstream's Think passes it on), and its
    BPM, key and time signature where the visitor left them to the model; the visitor's length and
    language always stand. Returns what the take's record keeps under ``planner``; when the planner
    gave nothing usable the take is made without a blueprint and the record says why
    (``skipped``).
    """
    started = time.perf_counter()

    def skipped(reason: str) -> dict[str, Any]:
        return {"skipped": reason, "model": public_name(), "seconds": round(time.perf_counter() - started, 3)}

    try:
        planned = get_planner().plan(
            plan_args["caption"], plan_args["lyrics"], float(plan_args["seconds"]), int(request["seeds"][0]),
            plan_args.get("fixed"), progress, should_stop,
        )  # fmt: skip
    except (PlanUnusable, models.ModelLoadError) as exc:
        return skipped(str(exc))
    except runs.Cancelled:
        raise
    except Exception as exc:  # out of memory, a model without a chat template: the song goes on
        traceback.print_exc()
        _free_cache()
        return skipped(f"the planner stopped with an error ({type(exc).__name__})")
    if not planned.codes:
        return skipped("the planner wrote no audio codes")
    request["audio_codes"] = codes_text(planned.codes)
    request["audio_duration"] = len(planned.codes) / CODES_PER_SECOND
    if planned.fields.get("caption"):
        request["prompt"] = planned.fields["caption"]
    for key in ("bpm", "keyscale", "timesignature"):
        if request.get(key) is None and planned.fields.get(key) is not None:
            request[key] = str(planned.fields[key]) if key == "timesignature" else planned.fields[key]
    return planned.record(public_name())
