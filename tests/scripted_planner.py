"""The tiny planner made to write what a test wants, at the model call boundary: the real tiny model
runs (cache, shapes, the decoding loop, the constraints), and its logits are replaced so that it writes
a given plan while thinking (``ScriptedLM``). Used in this process (tests/test_planner.py) and in the
ZeroGPU harness' studio (``install_from_env``: ``HARNESS_PLANNER_SCRIPT``), where it writes its plan only
for a caption that asks for it, so the studio the other tests share plans as the random model does."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any

# Every field a plan has, as the planner writes it while thinking.
SCRIPT = (
    "<think>\nbpm: 96\ncaption: a warm jazz trio\nduration: 10\nkeyscale: D minor\nlanguage: en\ntimesignature: 3\n"
)


def script_with(caption: str) -> str:
    """``SCRIPT`` with another caption."""
    return SCRIPT.replace("a warm jazz trio", caption)


class ScriptedLM:
    """The tiny planner with its logits replaced: it wants to write ``script`` while thinking and
    ``codes`` after a plan (None: the blueprint is the model's own); everything else is the real thing.
    With ``when``, only a request whose prompt holds those words is scripted."""

    def __init__(self, model: Any, tok: Any, vocab: Any, script: str, codes: list[int] | None, when: str = "") -> None:
        self.model, self.tok, self.vocab, self.script, self.codes = model, tok, vocab, script, codes
        self.when = when
        self.written: list[int] = []
        self.blueprint = False
        self.scripted = not when
        self.device, self.config = model.device, model.config

    def __call__(self, input_ids: Any, **kwargs: Any) -> Any:
        import torch

        out = self.model(input_ids=input_ids, **kwargs)
        if input_ids.shape[1] > 1:  # a new prompt
            self.written = []
            prompt = self.tok.decode(input_ids[0])
            self.blueprint = "</think>" in prompt
            self.scripted = not self.when or self.when in prompt
        else:
            self.written.append(int(input_ids[0, 0]))
        if not self.scripted or (self.blueprint and self.codes is None):
            return out
        logits = torch.full_like(out.logits[:, -1:], -30.0)
        if self.blueprint:
            logits[:, -1, self.vocab.code_ids[self.codes[len(self.written) % len(self.codes)]]] = 30.0
        else:
            rest = self.script[len(self.tok.decode(self.written)) :]
            best = max(
                (t for t in range(512) if rest.startswith(self.vocab.decode(t))),
                key=lambda t: len(self.vocab.decode(t)),
                default=self.vocab.eos,
            )
            logits[:, -1, best] = 30.0
        # While thinking the model reads one row. In the blueprint the unconditional rows want the
        # opposite: only guidance in the right direction, with the rows in the right order, writes the codes.
        half = len(logits) // 2
        if self.blueprint:
            logits[half:] = -logits[:half]
        return SimpleNamespace(logits=logits, past_key_values=out.past_key_values)


def install_from_env() -> None:
    """In the harness' studio: ``HARNESS_PLANNER_SCRIPT`` (JSON ``{"when": words, "caption": text}``)
    makes the planner, once built, write that caption for a request whose caption holds ``when``."""
    wanted = os.environ.get("HARNESS_PLANNER_SCRIPT")
    if not wanted:
        return
    import planner

    asked, load = json.loads(wanted), planner._load

    def scripted_load() -> Any:
        built = load()
        built.model = ScriptedLM(
            built.model, built.tokenizer, built.vocab, script_with(asked["caption"]), None, asked["when"]
        )
        return built

    planner._load = scripted_load


# A caption the planner writes past what the music model reads (253 tokens of the tiny text encoder's,
# where it reads at most 178 of a caption), and the words of the visitor's caption that ask for it.
LONG_CAPTION = ("warm brushed drums, upright bass, " * 14).strip()
LONG_CAPTION_WHEN = "a caption past the limit"
