"""Upstream's constrained decoding of the plan, one token at a time, and how a token is drawn.

``Vocabulary`` holds what the constraints need from the planner's tokenizer (computed once);
``ThinkingConstraint`` masks what the thinking block may not write next (forced field names, values
from prefix trees of valid values, a bounded caption); ``sample`` draws a token as upstream's PyTorch
path does (top-p on the logits, then temperature). Read from ``acestep/constrained_logits_processor.py``
and written anew.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import error_messages
import models
from plan_format import BPM_RANGE, CODEBOOK, DURATION_RANGE, FIELDS, KEYSCALES, LANGUAGES, TIME_SIGNATURES

TEMPERATURE = 0.85
TOP_P = 0.9
MAX_CAPTION_TOKENS = 512

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
    sequences: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)  # per field: value -> tokens
    # The codes' token ids as one slice where they lie in one run (Qwen's added tokens do), so the
    # codes' logits can be a view rather than a copy each step; None where they do not.
    code_span: slice | None = None
    _limited: dict[tuple[str, int], Any] = field(default_factory=dict)

    def numbers_up_to(self, name: str, at_most: int) -> tuple[dict[tuple[int, ...], set[int]], set[tuple[int, ...]]]:
        """The prefix tree and whole values of a numeric field, for values up to ``at_most``."""
        if (name, at_most) not in self._limited:
            kept = [seq for value, seq in self.sequences[name].items() if int(value) <= at_most]
            self._limited[(name, at_most)] = _tree(kept)
        return self._limited[(name, at_most)]

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
            raise models.ModelLoadError(error_messages.PLANNER_NO_CODES)
        think = tokenizer.convert_tokens_to_ids("<think>")
        if think is None or think == unk:
            raise models.ModelLoadError(error_messages.PLANNER_NO_THINK)
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
        sequences: dict[str, dict[str, tuple[int, ...]]] = {}
        for name, options in values.items():
            head = encode(f"{name}:")
            sequences[name] = {}
            for value in options:
                full = encode(f"{name}: {value}")
                # The value's tokens as they follow "name:" in running text (upstream's way), or on
                # their own where the tokenizer merges across the colon (upstream would drop the
                # value; Qwen's tokenizer never merges there, so this only serves other tokenizers).
                sequences[name][value] = tuple(full[len(head) :] if full[: len(head)] == head else encode(f" {value}"))
            trees[name], complete[name] = _tree(sequences[name].values())
        backtick = encode("`")
        if tokenizer.eos_token_id is None:
            raise models.ModelLoadError(error_messages.PLANNER_NO_END)
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
            sequences=sequences,
            code_span=_span(code_ids),
        )


def _span(ids: list[int]) -> slice | None:
    return slice(ids[0], ids[0] + len(ids)) if ids == list(range(ids[0], ids[0] + len(ids))) else None


def _tree(sequences: Any) -> tuple[dict[tuple[int, ...], set[int]], set[tuple[int, ...]]]:
    """A prefix tree (prefix -> the tokens that may follow) over token sequences, and the set of
    sequences that are whole values."""
    tree: dict[tuple[int, ...], set[int]] = {}
    whole: set[tuple[int, ...]] = set()
    for seq in sequences:
        for i in range(len(seq)):
            tree.setdefault(seq[:i], set()).add(seq[i])
        whole.add(seq)
    return tree, whole


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
            raise models.ModelLoadError(error_messages.PLANNER_CANNOT_WRITE.format(text=text))
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

    def __init__(self, vocab: Vocabulary, name: str, greedy_first: bool = False, at_most: int | None = None) -> None:
        self.vocab, self.tree, self.whole = vocab, vocab.trees[name], vocab.complete[name]
        if at_most is not None:  # only numbers up to ``at_most`` (Think choosing the length within a limit)
            self.tree, self.whole = vocab.numbers_up_to(name, at_most)
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

    def __init__(
        self,
        vocab: Vocabulary,
        fixed: dict[str, Any],
        skip: tuple[str, ...] = (),
        longest: int | None = None,
        end: list[int] | None = None,
    ) -> None:
        """``fixed`` values are written in; ``skip`` names fields left out of the block (upstream's
        ``skip_caption`` when Think may not rewrite the caption); ``longest`` caps the length Think
        may choose (seconds); ``end``: the tokens forced after the last field (EOS by default, where
        Think stops; *Describe* closes the block with ``</think>`` and goes on to the lyrics)."""
        self.vocab = vocab
        steps: list[Any] = [_Forced(vocab.names["<think>"]), _Forced(vocab.names["\n"])]
        for name in (f for f in FIELDS if f not in skip):
            steps.append(_Forced(vocab.names[name]))
            if fixed.get(name) is not None:
                steps.append(_Forced(vocab.encode(f" {fixed[name]}\n")))
            elif name == "caption":
                steps.append(_Caption(vocab))
            else:
                limit = longest if name == "duration" else None
                steps.append(_Value(vocab, name, greedy_first=name == "language", at_most=limit))
        steps.append(_Forced(end or [vocab.eos]))
        self.steps, self.i = steps, 0
        self._banned: Any = None

    @property
    def done(self) -> bool:
        return self.i >= len(self.steps)

    def mask(self, scores: Any) -> Any:
        """``scores`` (one row of logits) with what may not come next set to -inf."""
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


# The nucleus is first looked for among this many most likely tokens (a bounded top-k instead of a
# sort of all 64 000 codes); only where it is wider is the whole row sorted.
NUCLEUS_BOUND = 1024


def nucleus(logits: Any, top_p: float = TOP_P, bound: int = NUCLEUS_BOUND) -> Any:
    """Which tokens of each row ``[rows, vocab]`` top-p keeps, as ``sample`` decides it: a token
    stays while the probability of those more likely than it is at most ``top_p``. One transfer
    to the host (whether the bounded top-k covered every row's nucleus), none with ``bound`` at
    least the row's size (a sort of the whole row)."""
    import torch

    probs = torch.softmax(logits, dim=-1)
    if bound < probs.shape[-1]:
        top, order = probs.topk(bound, dim=-1)
        before = _exclusive_cumsum(top)
    if bound >= probs.shape[-1] or not bool((before[:, -1] > top_p).all()):  # some nucleus is wider
        top, order = probs.sort(dim=-1, descending=True)
        before = _exclusive_cumsum(top)
    keep = torch.zeros_like(probs, dtype=torch.bool)
    return keep.scatter_(-1, order, before <= top_p)


def _exclusive_cumsum(values: Any) -> Any:
    """Each entry's running total of the entries before it (the same sums ``sample`` compares)."""
    import torch

    total = torch.cumsum(values, dim=-1)
    return torch.cat([torch.zeros_like(total[..., :1]), total[..., :-1]], dim=-1)


# How many of a draw's front-runners are tested for the nucleus at once (``sample_rows``).
FRONT_RUNNERS = 4


def sample_rows(logits: Any, generators: list[Any], temperature: float = TEMPERATURE, top_p: float = TOP_P) -> Any:
    """One token per row of ``logits`` ``[rows, vocab]``, every token allowed, each row from its own
    generator, with the tokens ``sample`` would draw: top-p on the logits, then temperature.

    ``torch.multinomial`` draws one token as a race, ``argmax(p / q)`` with ``q`` one exponential
    draw per token; the same race is run here on every token, and the winner is the best-placed
    runner inside the nucleus. Only the front-runners' places in the nucleus are computed (the mass
    of the tokens more likely than each), not the nucleus itself: no sort of the vocabulary where a
    front-runner is inside, and a full ``nucleus`` where none is (rare). Stays on the logits' device.
    On the CPU it asks whether any row needs the full nucleus; on an accelerator it sorts every row
    instead of asking, so a step never waits for the device (tens of microseconds on a GPU)."""
    import torch

    logits = logits.float()
    size = logits.shape[-1]
    on_host = logits.device.type == "cpu"
    if temperature <= 0:
        kept = nucleus(logits, top_p, NUCLEUS_BOUND if on_host else size)
        return torch.where(kept, logits, float("-inf")).argmax(-1)
    # The same exponential draws ``multinomial`` makes for a row of this size, from the row's generator.
    q = torch.stack([torch.empty(size, device=g.device).exponential_(generator=g) for g in generators])
    q = q.to(logits.device)
    probs = torch.softmax(logits, dim=-1)
    race = torch.softmax(logits / temperature, dim=-1) / q
    runners = race.topk(min(FRONT_RUNNERS, race.shape[-1]), dim=-1).indices
    at = probs.gather(-1, runners)
    # A token is in the nucleus while the mass of the tokens more likely than it is at most top_p.
    ahead = torch.stack([(probs * (probs > at[:, k : k + 1])).sum(-1) for k in range(at.shape[-1])], dim=-1)
    inside = ahead <= top_p
    picks = runners.gather(-1, inside.to(torch.uint8).argmax(-1, keepdim=True))[:, 0]
    if on_host and bool(inside.any(-1).all()):
        return picks
    kept = torch.where(nucleus(logits, top_p, NUCLEUS_BOUND if on_host else size), race, 0.0)
    return torch.where(inside.any(-1), picks, kept.argmax(-1))
