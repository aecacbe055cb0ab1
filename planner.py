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
import re
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import backend
import models

DEFAULT_REPO = models.SHARED_REPO
DEFAULT_FOLDER = "acestep-5Hz-lm-1.7B"
OFF = {"none", "off", "0", "false", "no"}

INSTRUCTION = "Generate audio semantic tokens based on the given conditions:"
TEMPERATURE = 0.85
TOP_P = 0.9
CFG_SCALE = 2.0
CODES_PER_SECOND = 5
CODEBOOK = 64000  # <|audio_code_0|> … <|audio_code_63999|>; the vocabulary holds a few more, never allowed
MAX_CAPTION_TOKENS = 512
THINK_BUDGET = 4032  # upstream's token budget for the thinking generation

BPM_RANGE = (30, 300)
DURATION_RANGE = (10, 600)
TIME_SIGNATURES = ("2", "3", "4", "6")
KEYSCALES = tuple(f"{n}{a} {m}" for n in "ABCDEFG" for a in ("", "#", "b", "♯", "♭") for m in ("major", "minor"))
LANGUAGES = (
    "ar", "az", "bg", "bn", "ca", "cs", "da", "de", "el", "en", "es", "fa", "fi", "fr", "he", "hi", "hr", "ht",
    "hu", "id", "is", "it", "ja", "ko", "la", "lt", "ms", "ne", "nl", "no", "pa", "pl", "pt", "ro", "ru", "sa",
    "sk", "sr", "sv", "sw", "ta", "te", "th", "tl", "tr", "uk", "ur", "vi", "yue", "zh", "unknown",
)  # fmt: skip
FIELDS = ("bpm", "caption", "duration", "keyscale", "language", "timesignature")
# What the visitor may fix; upstream writes these into the plan instead of letting the model choose.
FIXABLE = ("bpm", "duration", "keyscale", "timesignature")

_CODE = re.compile(r"<\|audio_code_(\d+)\|>")


class PlanUnusable(ValueError):
    """The planner wrote no usable plan; the song is made without it and the visitor is told why."""


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
    return backend.public_source(model_source() or "")


# ---------------------------------------------------------------- prompts (upstream's format)


def thinking_prompt(tokenizer: Any, caption: str, lyrics: str) -> str:
    """The conditional prompt of the thinking generation."""
    return _chat(tokenizer, f"# Caption\n{caption}\n\n# Lyric\n{lyrics}\n")


def thinking_negative(tokenizer: Any, lyrics: str) -> str:
    """Its unconditional prompt: upstream's default negative ("NO USER INPUT") drops the caption."""
    return _chat(tokenizer, f"# Lyric\n{lyrics}\n")


def blueprint_prompt(tokenizer: Any, caption: str, lyrics: str, plan: str) -> str:
    """The conditional prompt of the blueprint generation: the plan is the assistant's turn.

    The caption is the visitor's, not the planner's rewrite, as upstream does.
    """
    return _chat(tokenizer, f"# Caption\n{caption}\n\n# Lyric\n{lyrics}\n", plan)


def blueprint_negative(tokenizer: Any, caption: str, lyrics: str) -> str:
    """Its unconditional prompt: the same with an empty plan."""
    return _chat(tokenizer, f"# Caption\n{caption}\n\n# Lyric\n{lyrics}\n", "<think>\n</think>")


def _chat(tokenizer: Any, user: str, assistant: str | None = None) -> str:
    messages = [
        {"role": "system", "content": f"# Instruction\n{INSTRUCTION}\n\n"},
        {"role": "user", "content": user},
    ]
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=assistant is None)
    return text if assistant is None or text.endswith("\n") else text + "\n"


def format_plan(fields: dict[str, Any]) -> str:
    """The plan as the blueprint prompt carries it: YAML, keys sorted, inside ``<think>`` tags."""
    import yaml

    items: dict[str, Any] = {}
    for key in FIELDS:
        value = fields.get(key)
        if value is None:
            continue
        if key == "timesignature" and isinstance(value, str) and value.endswith("/4"):
            value = value.split("/")[0]
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        items[key] = value
    body = yaml.dump(items, allow_unicode=True, sort_keys=True).strip() if items else ""
    return f"<think>\n{body}\n</think>"


# ---------------------------------------------------------------- reading what the model wrote


def parse_plan(text: str) -> dict[str, Any]:
    """The fields of a thinking block, as upstream reads it (a line ``name: value`` per field, an
    indented line continues the one before), without checking them."""
    match = re.search(r"<think>(.*?)</think>", text, re.DOTALL)
    body = match.group(1) if match else text.split("<|audio_code_")[0]
    raw: dict[str, list[str]] = {}
    key = None
    for line in body.strip().split("\n"):
        if line.strip().startswith("<"):
            continue
        if line and line[0] not in " \t" and ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            raw[key] = [value.strip()] if value.strip() else []
        elif key is not None and line.strip():
            raw[key].append(line.strip())
    fields: dict[str, Any] = {}
    for key, parts in raw.items():
        if key not in FIELDS:
            continue
        value = " ".join(parts).strip()
        if key in ("bpm", "duration"):
            fields[key] = int(value) if value.isdigit() else value
        else:
            fields[key] = value
    return fields


def check_plan(fields: dict[str, Any], expected: tuple[str, ...] = FIELDS) -> dict[str, Any]:
    """``fields`` with every expected field present and in range; ``PlanUnusable`` names the first
    that is not."""
    checks: dict[str, Callable[[Any], bool]] = {
        "bpm": lambda v: isinstance(v, int) and BPM_RANGE[0] <= v <= BPM_RANGE[1],
        "duration": lambda v: isinstance(v, int) and DURATION_RANGE[0] <= v <= DURATION_RANGE[1],
        "keyscale": lambda v: v in KEYSCALES,
        "language": lambda v: v in LANGUAGES,
        "timesignature": lambda v: str(v) in TIME_SIGNATURES,
        "caption": lambda v: isinstance(v, str),  # an empty one leaves the visitor's caption to the DiT
    }
    for key in expected:
        if key not in fields:
            raise PlanUnusable(f"the planner's notes have no {key}")
        if not checks[key](fields[key]):
            raise PlanUnusable(f"the planner's {key} ({str(fields[key])[:40]!r}) is not a valid value")
    return {k: fields[k] for k in expected}


def parse_codes(text: str) -> list[int]:
    """The audio codes in ``text``, in order; codes outside the codebook are dropped."""
    return [n for n in (int(m) for m in _CODE.findall(text)) if n < CODEBOOK]


def codes_text(codes: list[int]) -> str:
    return "".join(f"<|audio_code_{n}|>" for n in codes)


# ---------------------------------------------------------------- constrained decoding


@dataclass
class Vocabulary:
    """What the constraints need from the tokenizer, computed once when the planner is built."""

    eos: int
    newline: int
    backtick: int | None
    code_ids: list[int]  # token id of <|audio_code_N|> at index N
    markup: list[int]  # every added token (chat markers, <think>, audio codes): never part of a caption
    names: dict[str, list[int]]  # "<think>", "\n" and every "field:" as forced tokens
    trees: dict[str, dict[tuple[int, ...], set[int]]]  # per field: prefix -> next tokens
    complete: dict[str, set[tuple[int, ...]]]  # per field: token sequences of whole values
    decode: Callable[[int], str]
    encode: Callable[[str], list[int]]

    @classmethod
    def of(cls, tokenizer: Any) -> Vocabulary:
        def encode(text: str) -> list[int]:
            return list(tokenizer.encode(text, add_special_tokens=False))

        unk = getattr(tokenizer, "unk_token_id", None)
        code_ids = []
        for n in range(CODEBOOK):
            token = tokenizer.convert_tokens_to_ids(f"<|audio_code_{n}|>")
            if token is None or token == unk:
                break
            code_ids.append(token)
        if not code_ids:
            raise models.ModelLoadError("the planner's tokenizer has no <|audio_code_N|> tokens")
        think = tokenizer.convert_tokens_to_ids("<think>")
        if think is None or think == unk:
            raise models.ModelLoadError("the planner's tokenizer has no <think> token")
        names = {text: _forced(encode, text) for text in ("<think>", "\n")}
        names.update({name: _forced(encode, f"{name}:") for name in FIELDS})
        values = {
            "bpm": [str(v) for v in range(BPM_RANGE[0], BPM_RANGE[1] + 1)],
            "duration": [str(v) for v in range(DURATION_RANGE[0], DURATION_RANGE[1] + 1)],
            "keyscale": list(KEYSCALES),
            "language": list(LANGUAGES),
            "timesignature": list(TIME_SIGNATURES),
        }
        trees: dict[str, dict[tuple[int, ...], set[int]]] = {}
        complete: dict[str, set[tuple[int, ...]]] = {}
        for name, options in values.items():
            head = encode(f"{name}:")
            tree: dict[tuple[int, ...], set[int]] = {}
            whole: set[tuple[int, ...]] = set()
            for value in options:
                full = encode(f"{name}: {value}")
                # The value's tokens as they follow "name:" in running text (upstream's way), or on
                # their own where the tokenizer merges across the colon (upstream would drop the
                # value; Qwen's tokenizer never merges there, so this only serves other tokenizers).
                seq = tuple(full[len(head) :] if full[: len(head)] == head else encode(f" {value}"))
                for i in range(len(seq)):
                    tree.setdefault(seq[:i], set()).add(seq[i])
                whole.add(seq)
            trees[name], complete[name] = tree, whole
        backtick = encode("`")
        if tokenizer.eos_token_id is None:
            raise models.ModelLoadError("the planner's tokenizer has no end-of-sequence token")
        return cls(
            eos=int(tokenizer.eos_token_id),
            newline=encode("\n")[-1],
            backtick=backtick[-1] if backtick else None,
            code_ids=code_ids,
            markup=sorted(int(i) for i in getattr(tokenizer, "added_tokens_decoder", {})),
            names=names,
            trees=trees,
            complete=complete,
            decode=lambda token: tokenizer.decode([token]),
            encode=encode,
        )


def _forced(encode: Callable[[str], list[int]], text: str) -> list[int]:
    """``text`` as upstream forces it: at each point the longest prefix that is a single token."""
    tokens, pos = [], 0
    while pos < len(text):
        for end in range(len(text), pos, -1):
            ids = encode(text[pos:end])
            if len(ids) == 1:
                tokens.append(ids[0])
                pos = end
                break
        else:
            raise models.ModelLoadError(f"the planner's tokenizer cannot write {text!r}")
    return tokens


class _Forced:
    """Tokens written in for the model: a field name, or a value the visitor fixed."""

    def __init__(self, tokens: list[int]) -> None:
        self.tokens, self.i = tokens, 0

    def allowed(self, scores: Any) -> list[int] | None:
        return [self.tokens[self.i]]

    def feed(self, token: int) -> bool:
        self.i += 1
        return self.i >= len(self.tokens)


class _Value:
    """A value from a fixed list (numbers, keys, languages), token by token, ended by a newline."""

    def __init__(self, vocab: Vocabulary, name: str, greedy_first: bool = False) -> None:
        self.vocab, self.tree, self.whole = vocab, vocab.trees[name], vocab.complete[name]
        self.prefix: tuple[int, ...] = ()
        self.greedy_first = greedy_first

    def allowed(self, scores: Any) -> list[int] | None:
        options = set(self.tree.get(self.prefix, ()))
        if self.prefix in self.whole:
            options.add(self.vocab.newline)
        if not options:
            return [self.vocab.newline]
        if self.greedy_first and not self.prefix:
            # Upstream picks a language's first token greedily, even when sampling.
            ids = sorted(options)
            return [ids[int(scores[ids].argmax())]]
        return sorted(options)

    def feed(self, token: int) -> bool:
        if token == self.vocab.newline:
            return True
        self.prefix += (token,)
        return False


class _Caption:
    """Free text without backticks or audio codes, at most 512 tokens, over one or more lines; a
    line the model would start without indentation ends it (judged on its most likely token).

    Two guards upstream lacks: no special token (EOS, ``</think>``, chat markers) is allowed inside
    the caption (the plan would lose every field after it), and the newline forced at 512 tokens ends the caption (upstream forces
    newlines until the model stops indenting, which a poor model may never do)."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab, self.count, self.after_newline = vocab, 0, False

    def allowed(self, scores: Any) -> list[int] | None:
        if self.after_newline:
            self.after_newline = False
            if self.count >= MAX_CAPTION_TOKENS:
                return None
            top = self.vocab.decode(int(scores.argmax()))
            if top and top[0] not in " \t":
                return None  # the caption is over; the next field begins here
        if self.count >= MAX_CAPTION_TOKENS:
            return [self.vocab.newline]
        return []  # anything but the banned tokens

    def feed(self, token: int) -> bool:
        self.count += 1
        self.after_newline = "\n" in self.vocab.decode(token)
        return False


class ThinkingConstraint:
    """Upstream's constrained decoding of the thinking block, one step at a time.

    ``mask(scores)`` sets every token the plan may not take next to -inf; ``feed(token)`` moves on
    after the token was chosen. The block ends with EOS where ``</think>`` would begin.
    """

    def __init__(self, vocab: Vocabulary, fixed: dict[str, Any]) -> None:
        self.vocab = vocab
        steps: list[Any] = [_Forced(vocab.names["<think>"]), _Forced(vocab.names["\n"])]
        for name in FIELDS:
            steps.append(_Forced(vocab.names[name]))
            if fixed.get(name) is not None:
                steps.append(_Forced(vocab.encode(f" {fixed[name]}\n")))
            elif name == "caption":
                steps.append(_Caption(vocab))
            else:
                steps.append(_Value(vocab, name, greedy_first=name == "language"))
        steps.append(_Forced([vocab.eos]))
        self.steps, self.i = steps, 0
        self._banned: Any = None

    @property
    def done(self) -> bool:
        return self.i >= len(self.steps)

    def mask(self, scores: Any) -> Any:
        """``scores`` (one row, the guided logits) with what may not come next set to -inf."""
        import torch

        while True:
            allowed = self.steps[self.i].allowed(scores)
            if allowed is None:
                self.i += 1
                continue
            break
        if allowed:
            keep = torch.full_like(scores, float("-inf"))
            index = torch.tensor(allowed, device=scores.device)
            keep[index] = scores[index]
            return keep
        if self._banned is None:
            banned = {*self.vocab.code_ids, *self.vocab.markup, self.vocab.eos}
            if self.vocab.backtick is not None:
                banned.add(self.vocab.backtick)
            self._banned = torch.zeros_like(scores)
            self._banned[torch.tensor(sorted(banned), device=scores.device)] = float("-inf")
        return scores + self._banned

    def feed(self, token: int) -> None:
        if self.steps[self.i].feed(token):
            self.i += 1


def sample(logits: Any, generator: Any, temperature: float = TEMPERATURE, top_p: float = TOP_P) -> int:
    """One token from one row of logits, as upstream's PyTorch path samples: top-p on the logits,
    then temperature. A single allowed token is taken as is."""
    import torch

    if logits.device != generator.device:  # MPS: sampled on the CPU, where the generator is
        logits = logits.to(generator.device)
    # Only the allowed tokens take part (the rest are -inf and would get no probability anyway).
    allowed = torch.isfinite(logits).nonzero()[:, 0]
    if allowed.numel() == 1:
        return int(allowed[0])
    logits = logits[allowed].float()
    if top_p is not None and 0.0 < top_p < 1.0:
        order = torch.argsort(logits, descending=True)
        cumulative = torch.softmax(logits[order], dim=-1).cumsum(-1)
        drop = cumulative > top_p
        drop[1:] = drop[:-1].clone()
        drop[0] = False
        logits = logits.clone()
        logits[order[drop]] = float("-inf")
    if temperature <= 0:
        return int(allowed[logits.argmax()])
    probs = torch.softmax(logits / temperature, dim=-1)
    return int(allowed[torch.multinomial(probs, 1, generator=generator)])


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
        covers ``seconds`` (``modes.blueprint_codes``).

        ``fixed`` holds the visitor's ``bpm``, ``keyscale`` and ``timesignature`` (``None`` = the
        planner chooses); the length is always the visitor's. ``PlanUnusable`` when the thinking
        gives no valid plan; ``backend.Cancelled`` when ``should_stop()`` says so.
        """
        import torch

        import modes

        started = time.perf_counter()
        given = {k: v for k, v in (fixed or {}).items() if k in FIXABLE and v is not None}
        given["duration"] = int(seconds)
        target = modes.blueprint_codes(seconds)
        with self.lock, backend.gpu_turn("planner"), torch.inference_mode():
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
                raise backend.Cancelled("Stopped while the planner was thinking.")
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
                raise backend.Cancelled(f"Stopped while the planner wrote the blueprint ({done} of {target} codes).")
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
        backend.forget_resident("planner")


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
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = _folder(source)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        vocab = Vocabulary.of(tokenizer)
        # bf16 on CUDA, fp32 on MPS and the CPU, as upstream loads it.
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    except models.ModelLoadError:
        raise
    except Exception as exc:  # missing files, no network, out of memory: all "cannot load"
        raise models.ModelLoadError(f"the planner ({public_name()}): {exc}") from exc
    built = Planner(model, tokenizer, vocab, source, device)
    backend.register_resident("planner", model, device)
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
    except backend.Cancelled:
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
