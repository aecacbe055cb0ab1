"""The cost modules in order: what fits in a visitor's day (``quota``) → what a request costs (``budget``)
→ writing its takes (``takes``) → where they are kept (``output_folder``). Traced at run time through a
real Generate click and a ZeroGPU refusal worded with what fits: no cost module calls one before it in
the order (a callback up, such as a ``fits`` of ``quota``'s called inside ``budget``), and the modules
that drive a request enter them in that order, each once, so a request reads top to bottom."""

from __future__ import annotations

import dis
import inspect
from collections.abc import Callable
from pathlib import Path

import gradio as gr

import click_trace
import handlers
import quota
from conftest import ROOT
from music_shape import MusicShape

COST_ORDER = ("quota", "budget", "takes", "output_folder")
# The modules that drive a request from top to bottom (the endpoint, then the finish).
DRIVERS = ("handlers", "modes")


def _module(frame) -> str | None:
    path = Path(frame.f_code.co_filename)
    return path.stem if path.parent == ROOT else None


def _resumed(frame) -> bool:
    """A generator's frame (a context manager's) is "called" again at each resume: past its first
    ``RESUME``, it is not a new entry."""
    if not frame.f_code.co_flags & inspect.CO_GENERATOR:
        return False
    first = next(i.offset for i in dis.get_instructions(frame.f_code) if i.opname == "RESUME")
    return frame.f_lasti > first


def _caller(frame) -> str | None:
    """The studio module nearest up the stack (a context manager is entered through ``contextlib``)."""
    frame = frame.f_back
    while frame is not None and _module(frame) is None:
        frame = frame.f_back
    return _module(frame) if frame is not None else None


def traced(run: Callable[[], object]) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """``run`` traced: the cost modules' functions the drivers called, in order ((module, function)), and
    every call from a cost module into one before it in the order ((caller, callee, function))."""
    rank = {module: i for i, module in enumerate(COST_ORDER)}
    entered: list[tuple[str, str]] = []
    upward: list[tuple[str, str, str]] = []

    def profile(frame, event, _arg):
        if event != "call" or (callee := _module(frame)) not in rank or _resumed(frame):
            return
        caller = _caller(frame)
        if caller in rank and rank[callee] < rank[caller]:
            upward.append((caller, callee, frame.f_code.co_name))
        elif caller in DRIVERS:
            entered.append((callee, frame.f_code.co_name))

    click_trace.profiled(profile, run)
    return entered, upward


def test_a_generate_click_walks_the_cost_modules_once_in_order(studio_env):
    entered, upward = traced(
        lambda: handlers.make("generate", prompt="one line", audio_duration=10, inference_steps=2, seed=5, think=False)
    )
    assert upward == []
    ranks = [COST_ORDER.index(module) for module, _ in entered]
    assert ranks == sorted(ranks), entered
    assert [name for _, name in entered] == ["admit", "reserving_disk", "write_takes"], entered


def test_a_click_on_the_page_enters_budget_once(studio_env):
    """Generate's button as the page wires it, its admission check and then its run on one join
    (``tools/click_trace``): the admission check admits the request, and the run reads the cost estimate
    made there (``music_request.Admission``), asking the budget nothing again."""
    walk = click_trace.traced(click_trace.generate_click(), ROOT)
    assert [(caller, name) for caller, module, name in walk.entries if module == "budget"] == [("handlers", "admit")]
    assert walk.entered()["takes"] and walk.moves, walk.entries


def test_a_refusal_worded_with_what_fits_calls_nothing_back_up_the_order(studio_env):
    """ZeroGPU's quota refusal as the studio's message: ``quota`` asks ``budget`` what fits in what is
    left, by a number of seconds (``quota.most_declared``), not by a function budget calls back."""
    job = handlers.preparer("generate")(
        prompt="long", audio_duration=240, inference_steps=50, batch_size=4, think=False
    )
    refusal = gr.Error("You have exceeded your free GPU quota (600s requested vs. 100s left). Try again in 1:00:00")
    refusal.title = quota.QUOTA_TITLE
    said: list[gr.Error] = []
    ways = quota.music_ways(MusicShape.of(job.request))
    _, upward = traced(lambda: said.append(quota.refusal(refusal, ways)))
    assert upward == []
    assert "What fits now" in said[0].message, said[0].message


def test_the_most_a_call_may_declare_is_what_zerogpu_charges_within_what_is_left(monkeypatch):
    monkeypatch.setattr(quota, "charged", lambda declared: round(declared * 1.5))
    most = quota.most_declared(100)
    assert quota.charged(most) <= 100 < quota.charged(most + 1) and most == 67  # 67 × 1.5 = 100.5: 100
    assert quota.most_declared(10_000) == 300  # no call declares more than ZeroGPU's one-call limit
    monkeypatch.setattr(quota, "charged", lambda declared: declared + 1)
    assert quota.most_declared(0) == -1  # nothing fits
