"""A causal LM's decoding over a static KV cache, each step through ``graphs.CapturedStep``.

Think's planner and the lyrics writer decode the same way: prompts left-padded into one batch over a
preallocated cache of ``new_tokens`` more positions, so every step has the same shapes (one token a
row, the whole mask, position ids, the cache position) and can be replayed from a CUDA graph. The
sampling stays with each caller; ``Sampler`` is the lyrics writer's, the sampling ``generate`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

import graphs

GENERATE_TOP_K = 50  # what ``generate`` samples with when the model's generation config names no top-k


def decoder(model: Any, ids: list[list[int]], pad: int, new_tokens: int, name: str) -> Generator[Any, Any, None]:
    """A generator of next-token logits (float32, one row per prompt of ``ids``) for the tokens sent
    in (a tensor, one per row). The first ``next`` runs the prompts (eager: their length is the
    prompt's); every later step is ``name``'s captured step. Each runs under inference mode (not the
    time between them: a generator that held it would leak it into its caller)."""
    import torch

    with torch.inference_mode():
        cache, mask, position, at, logits = _prefill(model, ids, pad, new_tokens)
        captured = graphs.CapturedStep(_step(model, cache), name, model.device, capturable=_capturable(model, cache))
    try:
        while True:
            tokens = yield logits
            with torch.inference_mode():
                mask[:, at] = 1
                position = position + 1
                logits = captured(tokens, mask, position, at)
                at = at + 1
    finally:
        captured.close()


def _prefill(model: Any, ids: list[list[int]], pad: int, new_tokens: int) -> tuple[Any, ...]:
    """The prompts run into a static cache of ``new_tokens`` more positions: the cache, the whole
    mask, the last position ids, the next cache position and the first logits."""
    import torch
    from transformers import StaticCache

    width = max(len(x) for x in ids)
    device = model.device
    cache = StaticCache(config=model.config, max_cache_len=width + new_tokens)
    mask = torch.zeros((len(ids), width + new_tokens), dtype=torch.long, device=device)
    for row, tokens in enumerate(ids):
        mask[row, width - len(tokens) : width] = 1
    input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=device)
    positions = (mask[:, :width].cumsum(-1) - 1).clamp(min=0)
    # The whole mask every time (positions not written yet are zeros): the same shapes each step.
    out = model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        cache_position=torch.arange(width, device=device),
        use_cache=True,
        logits_to_keep=1,
    )
    return cache, mask, positions[:, -1:], torch.tensor([width], device=device), out.logits[:, -1].float()


def _step(model: Any, cache: Any) -> Callable[..., Any]:
    """One decode step over ``cache``: the logits after one token a row."""
    import torch

    # transformers' static layers write where their own counter says, and each forward advances it;
    # setting it from ``at`` makes a step a function of its inputs, so running it twice (the
    # capture's check) rewrites the same place.
    counters = [getattr(layer, "cumulative_length", None) for layer in getattr(cache, "layers", ())]
    counters = [c for c in counters if isinstance(c, torch.Tensor)]

    def step(tokens: Any, mask: Any, position: Any, at: Any) -> Any:
        for counter in counters:
            counter.copy_(at[0])
        out = model(
            input_ids=tokens[:, None],
            attention_mask=mask,
            position_ids=position,
            past_key_values=cache,
            cache_position=at,
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1].float()

    return step


def _capturable(model: Any, cache: Any) -> bool:
    """Whether a step may be replayed from a graph: not over sliding-window layers (they roll their
    cache once full) nor with a dynamic RoPE (it rescales with the length), which a graph would
    freeze at the capture's values. Qwen2.5 and Qwen3 as the studio loads them use neither."""
    from transformers.cache_utils import StaticLayer

    layers = list(getattr(cache, "layers", ()))
    plain = all(type(layer) is StaticLayer for layer in layers)
    rope = getattr(model.config, "rope_parameters", None) or getattr(model.config, "rope_scaling", None) or {}
    return plain and rope.get("rope_type", rope.get("type", "default")) not in ("dynamic", "longrope")


class Sampler:
    """One token at a time as transformers' ``generate`` samples for a decoder-only model: the
    model's generation config (its repetition penalty, top-k and min-p) under the caller's
    temperature and top-p, in ``generate``'s order, then a draw from torch's global generator
    (``torch.manual_seed`` makes it reproducible); temperature 0 is greedy."""

    def __init__(self, model: Any, prompt: Any, temperature: float, top_p: float) -> None:
        from transformers import LogitsProcessorList
        from transformers.generation import logits_process as lp

        config = model.generation_config
        self.seen = prompt  # [1, tokens so far], for the repetition penalty
        self.greedy = temperature <= 0
        chain: list[Any] = []
        penalty = getattr(config, "repetition_penalty", None)
        if penalty is not None and penalty != 1.0:
            chain.append(lp.RepetitionPenaltyLogitsProcessor(penalty))
        if not self.greedy:
            if temperature != 1.0:
                chain.append(lp.TemperatureLogitsWarper(temperature))
            top_k = getattr(config, "top_k", None)
            top_k = GENERATE_TOP_K if top_k is None else top_k
            if top_k:
                chain.append(lp.TopKLogitsWarper(top_k=top_k))
            if top_p is not None and top_p < 1.0:
                chain.append(lp.TopPLogitsWarper(top_p=top_p))
            if getattr(config, "min_p", None) is not None:
                chain.append(lp.MinPLogitsWarper(min_p=config.min_p))
        self.chain = LogitsProcessorList(chain)
        eos = config.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])

    def __call__(self, logits: Any) -> Any:
        """The next token (a ``[1]`` tensor on the logits' device) after ``logits`` ``[1, vocab]``."""
        import torch

        scores = self.chain(self.seen, logits)
        if self.greedy:
            token = scores.argmax(-1)
        else:
            token = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        self.seen = torch.cat([self.seen, token[:, None]], dim=-1)
        return token


def sample_tokens(
    model: Any,
    prompt: list[int],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    stopped: Callable[[], bool],
    name: str = "lyrics",
) -> Iterator[int]:
    """The tokens a model writes after ``prompt``, one at a time, as ``generate`` would sample them
    (``Sampler``; seed torch first), ending after an end-of-text token, at ``max_new_tokens``, or
    as soon as ``stopped()`` says so (asked before every step)."""
    import torch

    with torch.inference_mode():
        sampler = Sampler(model, torch.tensor([prompt], device=model.device), temperature, top_p)
        step = decoder(model, [prompt], 0, max_new_tokens, name)
        try:
            logits = next(step)
            for written in range(1, max_new_tokens + 1):
                if stopped():
                    return
                token = sampler(logits)
                value = int(token)
                yield value
                if value in sampler.eos or written == max_new_tokens:
                    return
                logits = step.send(token)
        finally:
            step.close()
