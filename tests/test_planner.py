"""Think: the 5 Hz planner with a tiny random Qwen3 that carries the audio-code vocabulary.

The prompts are compared with upstream ACE-Step's format; a scripted model (the real tiny model,
its logits replaced at the call boundary) checks that the constraints, the parser and the hand-off
to the pipeline keep what the model wrote; the rest runs the random model end to end.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf
import torch

import audio
import backend
import budget
import checks
import devices
import duration_estimate
import handlers
import modes
import plan_constraints
import plan_format
import planner
import random_models
import records
import results
import runs
import text_limits
from conftest import music_shape
from music_request import Call
from scripted_planner import LONG_CAPTION, LONG_CAPTION_WHEN, SCRIPT, ScriptedLM, script_with


@pytest.fixture(scope="module")
def tiny(tiny_pipeline_dir, tiny_base_dir, tiny_planner_dir):
    """The tiny planner (``random_models.build_planner_lm``'s weights) as the studio loads it from its folder,
    under the served tests' settings: conftest keeps it a process (``_keep_models``), so this file's Think
    through the studio plans with this one, not a second build (5.8 CPU s)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in (
            ("ACE_STUDIO_PLANNER_MODEL", tiny_planner_dir),
            ("ACE_STUDIO_MODEL", tiny_pipeline_dir),
            ("ACE_STUDIO_BASE_MODEL", tiny_base_dir),
            ("ACE_STUDIO_VARIANT", "xl-sft"),
        ):
            mp.setenv(name, str(value))
        built = planner._load()
    return built.model, built.tokenizer, built.vocab


def _planner(tiny, model=None) -> planner.Planner:
    base, tokenizer, vocab = tiny
    return planner.Planner(model or base, tokenizer, vocab, "tiny", "cpu")


# ---------------------------------------------------------------- upstream's format

SYSTEM = (
    "<|im_start|>system\n# Instruction\nGenerate audio semantic tokens based on the given conditions:\n\n<|im_end|>\n"
)


def test_the_prompts_are_built_as_upstream_builds_them(tiny):
    _, tok, _ = tiny
    user = "<|im_start|>user\n# Caption\njazz trio\n\n# Lyric\n[Verse]\nla la\n<|im_end|>\n"
    assert plan_format.thinking_prompt(tok, "jazz trio", "[Verse]\nla la") == SYSTEM + user + "<|im_start|>assistant\n"
    fields = {
        "bpm": 96,
        "caption": "A warm jazz trio with brushed drums and a walking upright bass, recorded live in a small club",
        "duration": 30,
        "keyscale": "D minor",
        "language": "no",
        "timesignature": "3",
    }
    plan = plan_format.format_plan(fields)
    # yaml.dump as upstream calls it: keys sorted, a long caption folded at 80 columns, "no" quoted,
    # the time signature and numbers as integers.
    assert plan == (
        "<think>\nbpm: 96\ncaption: A warm jazz trio with brushed drums and a walking upright bass, recorded\n"
        "  live in a small club\nduration: 30\nkeyscale: D minor\nlanguage: 'no'\ntimesignature: 3\n</think>"
    )
    # The codes are asked for inside the assistant message, after the plan and a blank line; the
    # negative is upstream's dropped condition (its commit ecd3d22 and the two after it).
    assert plan_format.blueprint_prompt(tok, "jazz trio", "[Verse]\nla la", plan) == (
        SYSTEM + user + "<|im_start|>assistant\n" + plan + "\n\n"
    )
    assert plan_format.blueprint_negative(tok) == (
        SYSTEM + "<|im_start|>user\nNO USER INPUT<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    assert (
        plan_format.format_plan({"timesignature": "4/4", "duration": 10})
        == "<think>\nduration: 10\ntimesignature: 4\n</think>"
    )


# The chat template as Qwen3 (the real 1.7B planner's base) writes it, in the parts the planner's
# prompts reach: plain system and user messages; an assistant message after the last user message
# re-rendered as its reasoning block, a blank line and the answer; the generation prompt, with the
# empty reasoning block ``enable_thinking=False`` adds.
QWEN3_TEMPLATE = (
    "{%- set ns = namespace(last_user=-1) %}"
    "{%- for m in messages %}{%- if m.role == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}"
    "{%- for m in messages %}"
    "{%- if m.role == 'assistant' %}"
    "{%- set content = m.content %}{%- set reasoning = '' %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\n') %}"
    "{%- endif %}"
    "{%- if loop.index0 > ns.last_user %}"
    "{{- '<|im_start|>assistant\n<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}"
    "{%- else %}{{- '<|im_start|>assistant\n' + content }}{%- endif %}"
    "{{- '<|im_end|>\n' }}"
    "{%- else %}{{- '<|im_start|>' + m.role + '\n' + m.content + '<|im_end|>\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\n\n</think>\n\n' }}{%- endif %}"
    "{%- endif %}"
)


def test_every_prompt_is_upstreams_on_a_qwen3_chat_template():
    """The prompts come from the planner's own chat template; on the real planner's (Qwen3's) they are
    upstream's strings, and the codes are asked for where the planner learnt to write them."""
    tok = random_models.build_tokenizer()
    tok.chat_template = QWEN3_TEMPLATE
    caption, lyrics = "jazz trio", "[Verse]\nla la"
    user = "<|im_start|>user\n# Caption\njazz trio\n\n# Lyric\n[Verse]\nla la\n<|im_end|>\n"
    plan = plan_format.format_plan({"bpm": 96, "caption": "warm jazz", "duration": 30, "keyscale": "D minor"})
    assert plan_format.thinking_prompt(tok, caption, lyrics) == SYSTEM + user + "<|im_start|>assistant\n"
    codes_prompt = plan_format.blueprint_prompt(tok, caption, lyrics, plan)
    assert codes_prompt == (
        SYSTEM + user + "<|im_start|>assistant\n<think>\nbpm: 96\ncaption: warm jazz\nduration: 30\n"
        "keyscale: D minor\n</think>\n\n"
    )
    negative = plan_format.blueprint_negative(tok)
    assert negative == (
        SYSTEM + "<|im_start|>user\nNO USER INPUT<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    # Training's layout: a whole assistant message, plan then codes, is the codes prompt, the codes and
    # the message's end; the negative's empty plan is how the template writes an empty reasoning block.
    codes = plan_format.codes_text([7, 63999])
    system = {"role": "system", "content": f"# Instruction\n{plan_format.INSTRUCTION}\n\n"}
    conversation = [system, {"role": "user", "content": f"# Caption\n{caption}\n\n# Lyric\n{lyrics}\n"}]
    finished = tok.apply_chat_template([*conversation, {"role": "assistant", "content": plan + codes}], tokenize=False)
    assert finished == codes_prompt + codes + "<|im_end|>\n"
    dropped = [system, {"role": "user", "content": "NO USER INPUT"}]
    assert negative == tok.apply_chat_template(
        dropped, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    # Describe's and Write it's prompts, on the same template (upstream's understanding and inspiration).
    assert plan_format.understand_prompt(tok, [7, 63999]) == (
        f"<|im_start|>system\n# Instruction\n{plan_format.UNDERSTAND_INSTRUCTION}\n\n<|im_end|>\n"
        f"<|im_start|>user\n{codes}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert plan_format.inspiration_prompt(tok, "rainy bossa nova", instrumental=False) == (
        f"<|im_start|>system\n# Instruction\n{plan_format.INSPIRED_INSTRUCTION}\n\n<|im_end|>\n"
        "<|im_start|>user\nrainy bossa nova\n\ninstrumental: false<|im_end|>\n<|im_start|>assistant\n"
    )


def test_a_thinking_block_is_parsed_and_checked():
    text = (
        "<think>\nbpm: 120\ncaption: An energetic pop-rock anthem with driving drums, crunchy electric guitars and a\n"
        "  soaring female vocal.\nduration: 180\nkeyscale: A minor\nlanguage: en\ntimesignature: 4\n<|im_end|>"
    )
    fields = plan_format.check_plan(plan_format.parse_plan(text))
    assert fields == {
        "bpm": 120,
        "caption": "An energetic pop-rock anthem with driving drums, crunchy electric guitars and a soaring female vocal.",
        "duration": 180,
        "keyscale": "A minor",
        "language": "en",
        "timesignature": "4",
    }
    with pytest.raises(plan_format.PlanUnusable, match="no keyscale"):
        plan_format.check_plan(plan_format.parse_plan(text.replace("keyscale: A minor\n", "")))
    with pytest.raises(plan_format.PlanUnusable, match="bpm"):
        plan_format.check_plan(plan_format.parse_plan(text.replace("bpm: 120", "bpm: 500")))
    with pytest.raises(plan_format.PlanUnusable, match="keyscale"):
        plan_format.check_plan(plan_format.parse_plan(text.replace("A minor", "H major")))
    assert plan_format.parse_codes("<|audio_code_5|><|audio_code_63999|><|audio_code_64000|>x") == [5, 63999]


def test_the_planners_caption_is_kept_readable():
    # What a small planner may write: control characters and U+FFFD, shown raw on the page and in the JSON.
    junk = "warm\x07 lo\u200b-fi \ufffdpiano\x00,\n  brushed\tdrums \U0010ffff\u00e9t\u00e9 \u6b4c"
    fields = plan_format.parse_plan(f"<think>\nbpm: 90\ncaption: {junk}\nduration: 30\n</think>")
    assert fields["caption"] == "warm lo-fi piano, brushed drums \u00e9t\u00e9 \u6b4c"
    assert plan_format.readable_text("\ufffd\x1b[31m") == "[31m"


# ---------------------------------------------------------------- the constraints


def _drive(constraint: plan_constraints.ThinkingConstraint, vocab: plan_constraints.Vocabulary, want: str, tok) -> str:
    """Feed the constraint the tokens a model that wants to write ``want`` would pick."""
    written: list[int] = []
    for _ in range(400):
        if constraint.done:
            break
        # What it wants next: the rest of the wanted line for the field being written, or a newline.
        line = tok.decode(written).split("\n")[-1]
        wanted = [w for w in want.split("\n") if line.split(":")[0] and w.startswith(line.split(":")[0] + ":")]
        rest = wanted[0][len(line) :] + "\n" if wanted and wanted[0].startswith(line) else "\n"
        scores = torch.zeros(len(tok))
        for token in range(512):  # the text vocabulary: prefer the longest piece of what is wanted
            piece = vocab.decode(token)
            if rest and rest.startswith(piece):
                scores[token] = 1 + len(piece)
        allowed = constraint.mask(scores)
        token = int(allowed.argmax())
        constraint.feed(token)
        written.append(token)
    assert constraint.done
    return tok.decode(written)


def test_the_constraints_force_the_fields_and_keep_values_valid(tiny):
    _, tok, vocab = tiny
    wanted = (
        "<think>\nbpm: 500\ncaption: jazz trio\nduration: 9999\nkeyscale: H minor\nlanguage: xx\ntimesignature: 7\n"
    )
    text = _drive(plan_constraints.ThinkingConstraint(vocab, {}), vocab, wanted, tok)
    fields = plan_format.check_plan(plan_format.parse_plan(text))  # every field there and in range
    assert fields["caption"] == "jazz trio"
    assert text.startswith("<think>\nbpm: 50\ncaption:") and text.endswith(tok.eos_token)
    # What the visitor fixed is written in, whatever the model wants.
    fixed = {"bpm": 120, "keyscale": "C major", "duration": 30}
    text = _drive(plan_constraints.ThinkingConstraint(vocab, fixed), vocab, "<think>\nbpm: 90\ncaption: x y\n", tok)
    fields = plan_format.check_plan(plan_format.parse_plan(text))
    assert (fields["bpm"], fields["keyscale"], fields["duration"]) == (120, "C major", 30)


def test_the_caption_takes_no_codes_or_markup_and_ends_when_a_line_is_not_indented(tiny):
    _, tok, vocab = tiny
    c = plan_constraints.ThinkingConstraint(vocab, {})
    for token in (
        vocab.names["<think>"]
        + vocab.names["\n"]
        + vocab.names["bpm"]
        + vocab.encode(" 90")
        + [vocab.newline]
        + vocab.names["caption"]
    ):
        c.feed(token)
    masked = c.mask(torch.zeros(len(tok)))
    assert torch.isinf(masked[vocab.code_ids]).all() and torch.isinf(masked[vocab.eos])
    assert torch.isinf(masked[tok.convert_tokens_to_ids("</think>")]) and torch.isfinite(masked[:400]).any()
    c.feed(vocab.encode(" a")[0])
    c.feed(vocab.newline)
    # After a newline: an indented continuation keeps the caption going…
    space = vocab.encode(" ")[0]
    scores = torch.zeros(len(tok))
    scores[space] = 5.0
    assert torch.isfinite(c.mask(scores)[space])
    c.feed(space)
    c.feed(vocab.newline)
    # …a line starting like a field name ends it: the next field's name is forced.
    scores = torch.zeros(len(tok))
    scores[vocab.encode("d")[0]] = 5.0
    masked = c.mask(scores)
    assert int(torch.isfinite(masked).sum()) == 1 and int(masked.argmax()) == vocab.names["duration"][0]


def test_the_caption_stops_at_512_tokens(tiny):
    _, tok, vocab = tiny
    c = plan_constraints._Caption(vocab)
    word = vocab.encode(" la")[0]
    scores = torch.zeros(len(tok))  # one row for every ask: the caption only reads it, never writes it
    for _ in range(plan_constraints.MAX_CAPTION_TOKENS):
        assert c.allowed(scores) == []
        c.feed(word)
    assert c.allowed(scores) == [vocab.newline]
    c.feed(vocab.newline)
    assert c.allowed(scores) is None


def test_sampling_is_seeded_and_takes_the_only_allowed_token():
    logits = torch.randn(1000)
    a = [plan_constraints.sample(logits, torch.Generator().manual_seed(3)) for _ in range(3)]
    b = [plan_constraints.sample(logits, torch.Generator().manual_seed(3)) for _ in range(3)]
    assert a == b
    only = torch.full((1000,), float("-inf"))
    only[42] = 0.0
    assert plan_constraints.sample(only, torch.Generator()) == 42
    # Top-p 0.9: two tokens hold 0.95 of the mass, so the 100 in the tail (0.05 in all, about 3 %
    # after the temperature) are never picked; without top-p some of 300 draws would be.
    probs = torch.tensor([0.6, 0.35] + [0.0005] * 100)
    generator = torch.Generator().manual_seed(0)
    assert {plan_constraints.sample(probs.log(), generator) for _ in range(300)} == {0, 1}
    assert len({plan_constraints.sample(probs.log(), generator, top_p=1.0) for _ in range(300)}) > 2


# ---------------------------------------------------------------- a scripted generation


def test_a_scripted_generation_becomes_metadata_and_codes(tiny):
    model, tok, vocab = tiny
    codes = [5, 63999, 17, 4000]
    p = _planner(tiny, ScriptedLM(model, tok, vocab, SCRIPT, codes))
    plan = p.plan("jazz", "[Instrumental]", 10, seeds=[1])
    assert plan.thought
    assert plan.fields == {
        "bpm": 96,
        "caption": "a warm jazz trio",
        "duration": 10,
        "keyscale": "D minor",
        "language": "en",
        "timesignature": "3",
    }
    assert plan.codes == [(codes * 13)[:50]]  # five codes a second
    # The visitor's values win; with BPM, key, metre and length all fixed there is no thinking.
    plan = p.plan("jazz", "[Instrumental]", 10, seeds=[1], fixed={"bpm": 120})
    assert plan.fields["bpm"] == 120 and plan.fields["keyscale"] == "D minor"
    plan = p.plan("jazz", "", 12.1, seeds=[1], fixed={"bpm": 120, "keyscale": "C major", "timesignature": "4"})
    assert not plan.thought and plan.fields == {"bpm": 120, "keyscale": "C major", "timesignature": "4", "duration": 12}
    assert len(plan.codes[0]) == 61  # every requested second covered


def test_whatever_think_writes_into_a_record_the_records_checks_take_back(tiny, monkeypatch):
    """/variations takes a Think take's own record back (not "This record's planner …"): a caption of
    up to 512 tokens may be far more than the 512 characters a caption holds, so Think's caption is cut
    where the plan is read (as Describe's and Write it's are), before the blueprints that follow it, so
    its record is taken back whole by every check of records."""
    model, tok, vocab = tiny
    long = " ".join(["la"] * 300)  # 301 tokens of the tiny tokenizer, 899 characters
    assert len(tok.encode(long)) < plan_constraints.MAX_CAPTION_TOKENS and len(long) > checks.MAX_CAPTION_CHARS
    p = _planner(tiny, ScriptedLM(model, tok, vocab, SCRIPT.replace("a warm jazz trio", long), [5, 17]))
    plan = p.plan("jazz", "[Instrumental]", 10, seeds=[1, 2])
    caption = plan.fields["caption"]
    assert plan.thought and long.startswith(caption) and len(caption) > checks.MAX_CAPTION_CHARS - 10
    assert len(caption) <= checks.MAX_CAPTION_CHARS
    monkeypatch.setattr(planner, "enabled", lambda: True)
    entry = plan.record("tiny", 1)
    record = {
        "params": {"prompt": "jazz", "audio_duration": 10, "think": True},
        "takes": [{"take": 1, "seed": 1}, {"take": 2, "seed": 2, "planner": entry}],
    }
    assert json.loads(records.settings(record, 2)["plan"])["caption"] == caption
    assert checks.check_plan(entry)[1] == (1, 2)


def test_prompts_of_different_lengths_decode_as_each_would_alone(tiny):
    p = _planner(tiny)
    prompts = [
        plan_format.thinking_prompt(p.tokenizer, "jazz trio, brushed drums", "[Verse]\nla la la"),
        plan_format.blueprint_negative(p.tokenizer),
    ]
    with torch.inference_mode():
        both = p.decoder(prompts, 3)
        alone = [p.decoder([prompt], 3) for prompt in prompts]
        rows = [next(both)] + [next(a) for a in alone]
        for token in (17, 202, 300):
            torch.testing.assert_close(rows[0][0], rows[1][0], atol=1e-5, rtol=0)
            torch.testing.assert_close(rows[0][1], rows[2][0], atol=1e-5, rtol=0)
            one, two = torch.tensor([token]), torch.tensor([token, token])
            rows = [both.send(two), alone[0].send(one), alone[1].send(one)]


def _one_take_step_by_step(
    p: planner.Planner, prompts: list[str], seed: int, count: int, temperature: float = plan_constraints.TEMPERATURE
) -> list[int]:
    """The blueprint as the studio wrote it before the batch: one take, transformers' growing
    (dynamic) cache, the attention mask grown a column a step, every step sampled on its own by
    sorting the whole row (``plan_constraints.sample``)."""
    ids = [p.tokenizer(x, add_special_tokens=False).input_ids for x in prompts]
    width = max(map(len, ids))
    tokens = torch.tensor([[0] * (width - len(x)) + x for x in ids])
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = p.model(input_ids=tokens, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    generator, code_ids, codes = torch.Generator().manual_seed(seed), torch.tensor(p.vocab.code_ids), []
    for _ in range(count):
        only_codes = out.logits[:, -1].float()[:, code_ids]
        codes.append(plan_constraints.sample(planner._guide(only_codes[0], only_codes[1]), generator, temperature))
        mask, positions = torch.cat([mask, mask.new_ones(2, 1)], 1), positions[:, -1:] + 1
        token = torch.tensor([[p.vocab.code_ids[codes[-1]]]] * 2)
        out = p.model(
            input_ids=token,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=out.past_key_values,
            use_cache=True,
            logits_to_keep=1,
        )
    return codes


def test_the_batched_blueprint_draws_the_codes_each_take_drew_alone(tiny):
    """The static cache, the batch and the sampler that sorts nothing give every take the codes
    the step-by-step decode of one take gave for its seed."""
    p = _planner(tiny)
    plan = plan_format.format_plan({"bpm": 120, "caption": "pop", "duration": 30, "keyscale": "A minor"})
    prompts = [
        plan_format.blueprint_prompt(p.tokenizer, "pop", "[Verse]\nla", plan),
        plan_format.blueprint_negative(p.tokenizer),
    ]
    with torch.inference_mode():
        batch = p._blueprints("pop", "[Verse]\nla", plan, 60, [5, 6, 7], (0, 3), None, lambda: False)
        alone = [_one_take_step_by_step(p, prompts, seed, 60) for seed in (5, 6, 7)]
    assert batch == alone and len({tuple(c) for c in batch}) == 3


@contextlib.contextmanager
def _reads(model):
    """A spy at the model's call: every forward's token rows and attention mask, as the model got them."""
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def spy(_module, _args, kwargs):
        calls.append((kwargs["input_ids"].clone(), kwargs["attention_mask"].clone()))

    hook = model.register_forward_pre_hook(spy, with_kwargs=True)
    try:
        yield calls
    finally:
        hook.remove()


def _generations(calls, tok) -> list[dict]:
    """The generations a plan ran: each prompt row as text (its padding left out), the rows every step
    read, and how many new tokens its cache was made for."""
    found = []
    for ids, mask in calls:
        if ids.shape[1] > 1:  # a prefill: a new generation
            rows = [tok.decode(row[mask[i, : ids.shape[1]].bool()]) for i, row in enumerate(ids)]
            found.append({"prompts": rows, "steps": [], "new_tokens": mask.shape[1] - ids.shape[1]})
        else:
            found[-1]["steps"].append(ids.shape[0])
    return found


def test_the_thinking_reads_one_row_and_the_codes_are_guided_against_no_user_input(tiny):
    """No negative row while thinking (upstream since a188f4c), within upstream's cap; the blueprint
    reads every take's prompt, then as many of upstream's unconditional prompts."""
    model, tok, _ = tiny
    with _reads(model) as calls:
        plan = _planner(tiny).plan("jazz trio", "[Verse]\nla la", 10, seeds=[3, 4])
    thinking, blueprint = _generations(calls, tok)
    assert plan.thought and thinking["prompts"] == [plan_format.thinking_prompt(tok, "jazz trio", "[Verse]\nla la")]
    assert set(thinking["steps"]) == {1} and thinking["new_tokens"] == planner.THINK_BUDGET == 3500
    codes_prompt = plan_format.blueprint_prompt(
        tok, "jazz trio", "[Verse]\nla la", plan_format.format_plan(plan.fields)
    )
    assert blueprint["prompts"] == [codes_prompt] * 2 + [plan_format.blueprint_negative(tok)] * 2
    assert blueprint["steps"] == [4] * 49 and [len(c) for c in plan.codes] == [50, 50]


def test_a_batch_asks_for_its_codes_with_one_takes_prompts(tiny):
    model, tok, _ = tiny
    asked = {}
    for seeds in ([8], [8, 9, 10]):
        with _reads(model) as calls:
            _planner(tiny).plan("lo-fi study beat", "[Instrumental]", 10, seeds=seeds)
        asked[len(seeds)] = _generations(calls, tok)[-1]["prompts"]
    alone, negative = asked[1]
    assert asked[3] == [alone] * 3 + [negative] * 3 and negative == plan_format.blueprint_negative(tok)


def test_greedy_planning_is_reproducible(tiny, monkeypatch):
    """At temperature 0 a plan is the request's alone: another seed or another place in a batch writes
    the same notes and codes, and the codes are the step-by-step greedy decode of one take."""
    # The tiny random planner's greedy caption runs on to its 512-token cap (557 tokens of thinking, three
    # times); a caption capped at 24 is still written, and compared, token for token: its length is not the point.
    monkeypatch.setattr(plan_constraints, "MAX_CAPTION_TOKENS", 24)
    base, tok, vocab = tiny
    greedy = planner.Planner(base, tok, vocab, "tiny", "cpu", temperature=0.0)
    one = greedy.plan("jazz trio", "[Verse]\nla la", 10, seeds=[1])
    batch = greedy.plan("jazz trio", "[Verse]\nla la", 10, seeds=[5, 6, 7])  # other seeds, other places
    assert one.fields == batch.fields and batch.codes == one.codes * 3
    prompts = [
        plan_format.blueprint_prompt(tok, "jazz trio", "[Verse]\nla la", plan_format.format_plan(one.fields)),
        plan_format.blueprint_negative(tok),
    ]
    with torch.inference_mode():
        assert one.codes[0] == _one_take_step_by_step(greedy, prompts, 0, 50, temperature=0.0)
    sampled = _planner(tiny).plan("jazz trio", "[Verse]\nla la", 10, seeds=[1])
    assert sampled.codes != one.codes  # the test can tell greedy from sampled


def test_the_sampler_draws_what_sorting_the_whole_row_draws():
    # Flat rows (a nucleus of most of the 64 000 codes, as the tiny planner's) and peaked ones; a
    # narrow top-p puts the front-runners outside the nucleus, where the whole row is sorted.
    for scale, top_p in ((0.1, 0.9), (1.0, 0.9), (6.0, 0.9), (1.0, 0.002)):
        logits = torch.randn(3, 64000, generator=torch.Generator().manual_seed(int(scale * 10))) * scale
        rows = [torch.Generator().manual_seed(r) for r in range(3)]
        alone = [torch.Generator().manual_seed(r) for r in range(3)]
        for _ in range(20):
            drawn = plan_constraints.sample_rows(logits, rows, top_p=top_p).tolist()
            assert drawn == [plan_constraints.sample(logits[r], alone[r], top_p=top_p) for r in range(3)]


# ---------------------------------------------------------------- through the studio


def _generate(**kw):
    args = {"prompt": "late night jazz", "lyrics": "[Verse]\nblue smoke", "audio_duration": 10, "inference_steps": 3}
    args.update(kw)
    return handlers.make("generate", **args)


def _spy_on_the_dit(monkeypatch) -> list[dict]:
    calls = []
    real = backend.Backend.run

    def spy(self, render, progress=None, run_id=None):
        calls.append({**vars(render.pipeline), "seeds": list(render.seeds)})  # what the DiT is asked, flat
        return real(self, render, progress, run_id)

    monkeypatch.setattr(backend.Backend, "run", spy)
    return calls


def test_think_plans_once_and_renders_every_take_in_one_call(studio_server, monkeypatch):
    from gradio_client import Client

    url, out = studio_server
    client = Client(url, verbose=False)
    calls = _spy_on_the_dit(monkeypatch)
    brain = planner.get_planner()
    before = collections.Counter(brain.generations)
    result = client.predict(
        prompt="late night jazz",
        lyrics="[Verse]\nblue smoke",
        audio_duration=10,
        bpm=100,
        inference_steps=3,
        seed=11,
        batch_size=2,
        think=True,
        api_name="/generate",
    )
    record = result[-1]
    assert brain.generations - before == {"think": 1, "blueprint": 1}  # one thinking, one batch of blueprints
    assert len(calls) == 1 and calls[0]["seeds"] == [11, 12]  # one DiT call for both takes
    codes = [plan_format.parse_codes(c) for c in calls[0]["audio_codes"]]
    assert [len(c) for c in codes] == [50, 50] and codes[0] != codes[1]  # each take its own blueprint
    plans = [take["planner"] for take in record["takes"]]
    assert plans[0]["fields"] == plans[1]["fields"] and set(plans[0]["fields"]) == set(plan_format.FIELDS)
    assert [(p["take"], p["of"], p["codes"]) for p in plans] == [(1, 2, 50), (2, 2, 50)]
    assert [t["seed"] for t in record["takes"]] == [11, 12]
    # The visitor's BPM wins; the planner's key, metre and caption reach the DiT.
    call, fields = calls[0], plans[0]["fields"]
    assert call["bpm"] == 100 == fields["bpm"] and call["keyscale"] == fields["keyscale"]
    assert call["prompt"] == fields["caption"] and record["timings"]["planner_s"] > 0
    assert "Planned in" in result[-2] and "blueprint" not in result[-2]  # a musician's message, not the model's terms
    meta = json.loads((out / record["takes"][1]["metadata"]).read_text())
    assert meta["planner"] == plans[1] and meta["seed"] == 12

    # Take 2 made again alone from its record: no thinking, its own seed and place, the same take.
    back = client.predict(record, 2, api_name="/settings_from_generate")
    assert back[8] == 12 and back[14] is True and json.loads(back[17])["take"] == 2
    calls.clear()
    before = collections.Counter(brain.generations)
    again = client.predict(
        prompt=back[0],
        lyrics=back[1]["value"],
        audio_duration=back[3],
        bpm=back[4],
        key_scale=back[5],
        time_signature=back[6],
        vocal_language=back[7],
        seed=back[8],
        inference_steps=back[9],
        batch_size=1,
        think=True,
        plan=back[17],
        api_name="/generate",
    )
    assert brain.generations - before == {"blueprint": 1}, back
    assert again[-1]["params"] == record["params"] | {"batch_size": 1, "seed": 12, "plan_given": True}, back
    assert plan_format.parse_codes(calls[0]["audio_codes"][0]) == codes[1]
    np.testing.assert_allclose(sf.read(again[0])[0], sf.read(result[1])[0], atol=2e-4)
    assert again[-1]["takes"][0]["planner"]["fields"] == plans[1]["fields"]


def test_think_may_choose_the_length_and_keep_the_visitors_caption(studio_server, monkeypatch):
    from gradio_client import Client

    url, _ = studio_server
    client = Client(url, verbose=False)
    calls = _spy_on_the_dit(monkeypatch)
    # A random planner may choose up to 10 minutes; a request's audio budget (``budget.longest``, read
    # at each request) keeps this test's takes to 30 s: the bound Think's choice meets is the point.
    monkeypatch.setenv("ACE_STUDIO_MAX_REQUEST_AUDIO_S", "30")
    # Admitted once, at the admission check: the run takes its bound, admitting nothing again.
    admitted, admit = [], budget.admit
    monkeypatch.setattr(budget, "admit", lambda job, *a, **k: admitted.append(job.mode) or admit(job, *a, **k))
    result = client.predict(
        prompt="a cappella choir",
        lyrics="",
        audio_duration=-1,
        inference_steps=2,
        seed=4,
        think=True,
        rewrite_caption=False,
        api_name="/generate",
    )
    record = result[-1]
    plan = record["takes"][0]["planner"]
    chosen = plan["fields"]["duration"]
    assert audio.MIN_SECONDS <= chosen <= 30 and plan["codes"] == math.ceil(chosen * audio.CODES_PER_SECOND)
    assert admitted == ["generate"] and record["params"]["longest"] == 30
    assert record["params"]["audio_duration"] == -1 and record["params"]["rewrite_caption"] is False
    assert sf.info(result[0]).duration == pytest.approx(chosen, abs=0.01)
    assert f"Think chose a length of {chosen // 60}:{chosen % 60:02d} ({chosen} s)." in result[-2]
    # The caption switch off: the DiT and the record keep the visitor's caption; the plan has none.
    assert calls[0]["prompt"] == "a cappella choir" == record["params"]["prompt"] and "caption" not in plan["fields"]
    assert calls[0]["lyrics"] == "[Instrumental]"  # what the planner and the DiT both see for no lyrics
    # The form's switch does the same as -1.
    auto = client.predict(
        prompt="a cappella choir",
        audio_duration=30,
        auto_length=True,
        inference_steps=2,
        seed=4,
        think=True,
        rewrite_caption=False,
        api_name="/generate",
    )
    assert auto[-1]["takes"][0]["planner"]["fields"]["duration"] == chosen


def test_an_unusable_plan_makes_the_song_without_it_and_says_so(studio_env, with_planner, monkeypatch):
    monkeypatch.setattr(planner, "THINK_BUDGET", 5)  # the thinking is cut off after five tokens
    warnings = []
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: warnings.append(message))
    paths, record = _generate(seed=3, think=True)
    skipped = record["takes"][0]["planner"]["skipped"]
    assert "no" in skipped and Path(paths[0]).exists()
    assert warnings and "made from your caption and lyrics alone" in warnings[0]
    assert "Think was skipped" in results.seeds_text(record)


def test_a_planner_that_cannot_load_is_skipped_with_a_note(studio_env, monkeypatch, tmp_path):
    monkeypatch.setenv("ACE_STUDIO_PLANNER_MODEL", str(tmp_path / "no-such-planner"))
    planner.reset_planner()
    monkeypatch.setattr(gr, "Warning", lambda *a, **k: None)
    paths, record = _generate(seed=3, think=True)
    assert "does not exist" in record["takes"][0]["planner"]["skipped"] and Path(paths[0]).exists()
    planner.reset_planner()


def test_think_off_where_no_planner_is_set_up(studio_env, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_PLANNER_MODEL", "none")
    with pytest.raises(gr.Error, match="Think is not available"):
        _generate(think=True)
    _, record = _generate()  # the default follows what is set up
    assert record["params"]["think"] is False and "planner" not in record["takes"][0]


class Recorder:
    def __init__(self, on=None) -> None:
        self.descs: list[str] = []
        self.on = on

    def __call__(self, value=None, desc=None, **kwargs) -> None:
        self.descs.append(desc or "")
        if self.on:
            self.on(desc or "")


def test_a_length_think_chooses_is_said_before_the_song_is_made(studio_env, with_planner, monkeypatch):
    # A random planner may choose 10 minutes (this one takes all it may): 15 s still leaves Think a choice.
    monkeypatch.setenv("ACE_STUDIO_MAX_REQUEST_AUDIO_S", "15")
    progress = Recorder()
    _, record = _generate(seed=6, think=True, audio_duration=-1, inference_steps=2, progress=progress)
    chosen = record["takes"][0]["planner"]["fields"]["duration"]
    said = f"Think chose {chosen // 60}:{chosen % 60:02d}"
    first = next(i for i, d in enumerate(progress.descs) if d.startswith(said))
    steps = [i for i, d in enumerate(progress.descs) if d.startswith("Step")]
    assert steps and first < steps[0] and all(said in progress.descs[i] for i in steps)
    assert all(said in d for d in progress.descs[first:] if d.startswith("Sketching"))


def test_progress_shows_the_planning_and_stop_works_during_it(studio_env, with_planner):
    progress = Recorder()
    _generate(seed=5, think=True, progress=progress)
    stages = [d.split(" ")[0] for d in progress.descs]
    assert "Thinking:" in stages and "Sketching" in stages and "Step" in stages
    assert stages.index("Thinking:") < stages.index("Sketching") < stages.index("Step")
    # Stop clicked while the planner thinks: the run ends there and nothing is saved.
    before = set(studio_env.rglob("*.wav"))
    owner = "visitor:generate"
    run_id = runs.start_run(owner)
    stopper = Recorder(on=lambda desc: desc.startswith("Thinking") and runs.request_stop(owner))
    try:
        with pytest.raises(gr.Error, match="Stopped while the planner was thinking"):
            handlers.make("generate", stopper, run_id, prompt="jazz", audio_duration=10, inference_steps=3, think=True)
    finally:
        runs.finish_run(run_id)
    assert set(studio_env.rglob("*.wav")) == before


def test_the_gpu_estimate_includes_the_planner(studio_env):
    params = {"audio_duration": 120, "inference_steps": 8, "batch_size": 2}
    plain = duration_estimate.music_seconds(music_shape(**params))
    thinking = duration_estimate.music_seconds(music_shape(**params, think=True))
    planned = [
        p
        for p in duration_estimate.music_phases(music_shape(**params, think=True))
        if p.phase in ("think", "blueprint") or p.feature == "planner"
    ]
    assert thinking == pytest.approx(plain + duration_estimate.SAFETY["music"] * sum(p.prior for p in planned))

    # Thinking counted once; four takes' blueprints in one batch cost less than four plans.
    def planning(takes: int) -> float:
        shape = music_shape(**{**params, "batch_size": takes}, think=True)
        return sum(
            p.prior for p in duration_estimate.music_phases(shape, loads=False) if p.phase in ("think", "blueprint")
        )

    one, four = planning(1), planning(4)
    assert one < four < 2 * one


def test_a_model_that_cannot_read_a_blueprint_makes_the_song_without_one(studio_env, with_planner, monkeypatch):
    be = backend.get_backend()
    monkeypatch.setattr(be.pipe, "audio_token_detokenizer", None)
    monkeypatch.setattr(gr, "Warning", lambda *a, **k: None)
    paths, record = _generate(seed=2, think=True)
    assert "cannot read a blueprint" in record["takes"][0]["planner"]["skipped"] and Path(paths[0]).exists()
    assert not planner.is_loaded()  # nothing was planned for nothing


def test_on_zerogpu_think_makes_way_when_a_call_could_not_hold_it(studio_env, with_planner, monkeypatch):
    backend.get_backend()
    planner.get_planner()
    job = modes.prepare_generate(prompt="epic", audio_duration=600, batch_size=2, think=True)
    assert duration_estimate.music_seconds(duration_estimate.MusicShape.of(job.request)) > devices.GPU_MAX_SECONDS
    kept = budget.makes_way(job, devices.GPU_MAX_SECONDS)
    assert kept.request.plan is None and "longer than the 300 s" in kept.request.plan_skipped
    assert job.request.plan is not None  # a new request: the one it was is as it was
    # Without its plan it declares no Think (the shape reads the request, not the settings recorded).
    assert duration_estimate.music_seconds(duration_estimate.MusicShape.of(kept.request)) <= devices.GPU_MAX_SECONDS
    short = modes.prepare_generate(prompt="epic", audio_duration=30, think=True)
    assert budget.makes_way(short, devices.GPU_MAX_SECONDS).request.plan is not None


def test_think_through_the_api(studio_server):
    from gradio_client import Client

    url, out = studio_server
    client = Client(url, verbose=False)
    result = client.predict(
        prompt="dusty soul",
        lyrics="[Verse]\nhold on",
        audio_duration=10,
        inference_steps=2,
        seed=8,
        think=True,
        api_name="/generate",
    )
    record = result[-1]
    plan = record["takes"][0]["planner"]
    assert plan["codes"] == 50 and plan["fields"]["duration"] == 10 and "Planned in" in result[-2]
    assert Path(result[0]).exists()
    plain = client.predict(
        prompt="dusty soul",
        lyrics="[Verse]\nhold on",
        audio_duration=10,
        inference_steps=2,
        seed=8,
        think=False,
        api_name="/generate",
    )
    assert "planner" not in plain[-1]["takes"][0] and "Planned" not in plain[-2]
    # Bring the settings back: Think comes back on.
    fields = client.predict(record, 1, api_name="/settings_from_generate")
    assert fields[14] is True


# ---------------------------------------------------------------- Think's caption and lyrics always fit


def test_texts_a_model_wrote_are_made_to_fit_what_the_text_encoder_reads(warm_backend):
    """Cut at the last phrase that fits; at a word where no phrase ends early enough; the visitor's own
    caption where a cut would keep less than half of what the model reads; the lyrics at a line's end."""
    pipe = warm_backend.pipe
    most = text_limits.caption_budget(pipe)
    read, said = text_limits.fit(pipe, "prompt", LONG_CAPTION)
    assert said["kept"] == "phrase" and said["written_tokens"] > most == said["most"] >= said["read_tokens"]
    assert (
        LONG_CAPTION.startswith(read)
        and LONG_CAPTION[len(read)] == ","
        and text_limits.tokens(pipe, "prompt", read) <= most
    )
    text_limits.check(pipe, {"prompt": read}, "en")  # what the admission check and the run check passes
    assert text_limits.fit(pipe, "prompt", "warm jazz trio") == ("warm jazz trio", None)  # fits: as written
    unbroken = LONG_CAPTION.replace(",", "")
    read, said = text_limits.fit(pipe, "prompt", unbroken)
    assert said["kept"] == "word" and unbroken.startswith(read) and text_limits.tokens(pipe, "prompt", read) <= most
    early = "drums, " + unbroken  # the one phrase that fits is a word long: the visitor's caption instead
    read, said = text_limits.fit(pipe, "prompt", early, own="  jazz  ")
    assert read == "jazz" and said["kept"] == "yours" and said["written_tokens"] > most
    # Within each call's own budget: its template says the song's length, so a 240 s song's reads a little less.
    for seconds in (12, 240, 600):
        call = Call(prompt=LONG_CAPTION, num_inference_steps=1, guidance_scale=1.0, shift=3.0, audio_duration=seconds)
        read, _ = text_limits.fit(pipe, "prompt", LONG_CAPTION, call)
        text_limits.check(pipe, {"prompt": read}, "en", call)
    lines = "\n".join(["[Verse]"] + ["la la la la"] * 1200)
    read, said = text_limits.fit(pipe, "lyrics", lines)
    assert said["kept"] == "phrase" and lines.startswith(read) and read.endswith("la la la la")
    assert said["read_tokens"] <= text_limits.MAX_LYRIC_TOKENS < said["written_tokens"]


def test_thinks_long_caption_is_made_to_fit_never_refused(studio_server, monkeypatch):
    """Think with *Rewrite the caption* may write a caption past the limit (243 tokens); the run cuts it
    rather than refusing it after the whole plan. Through gradio_client on the served studio, the planner made to write
    a caption past the limit: the take is made from the caption cut at its last phrase that fits, and
    its record and seed line say so; a plan brought back makes the same take."""
    from gradio_client import Client

    url, _ = studio_server
    built = planner.get_planner()
    scripted = ScriptedLM(built.model, built.tokenizer, built.vocab, script_with(LONG_CAPTION), None, LONG_CAPTION_WHEN)
    monkeypatch.setattr(built, "model", scripted)
    calls = _spy_on_the_dit(monkeypatch)
    client = Client(url, verbose=False)
    asked = {"prompt": f"jazz, {LONG_CAPTION_WHEN}", "audio_duration": 10, "inference_steps": 1, "seed": 5}
    result = client.predict(**asked, think=True, api_name="/generate")
    plan = result[-1]["takes"][0]["planner"]
    assert plan["fields"]["caption"] == LONG_CAPTION  # as written: its blueprint was asked with it
    read = plan["caption_read"]
    assert plan["caption_fit"]["kept"] == "phrase" and LONG_CAPTION.startswith(read) and calls[0]["prompt"] == read
    assert plan["caption_fit"]["read_tokens"] <= plan["caption_fit"]["most"] < plan["caption_fit"]["written_tokens"]
    assert "past the" in result[-2] and "cut at its last phrase" in result[-2]
    # Brought back, the plan is read the same way: the same caption reaches the model.
    again = client.predict(**asked, think=True, plan=json.dumps(plan), api_name="/generate")
    assert calls[-1]["prompt"] == read and again[-1]["takes"][0]["planner"]["caption_read"] == read
