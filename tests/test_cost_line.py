"""The cost rooms in a line: what fits in a visitor's day (``quota``) → what a request costs (``budget``)
→ writing its takes (``takes``) → where they are kept (``output_folder``). Traced at run time through a
real Generate press and a ZeroGPU refusal worded with what fits: no cost room calls one before it in
the line (a callback up, as quota's ``fits`` once was inside ``budget``), and a press's own rooms
enter them in the line's order, each once, so a press reads top to bottom."""

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

LINE = ("quota", "budget", "takes", "output_folder")
# The rooms that drive a press from top to bottom (the endpoint, then the finish).
DRIVERS = ("handlers", "modes")


def _room(frame) -> str | None:
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
    """The studio room nearest up the stack (a context manager is entered through ``contextlib``)."""
    frame = frame.f_back
    while frame is not None and _room(frame) is None:
        frame = frame.f_back
    return _room(frame) if frame is not None else None


def traced(run: Callable[[], object]) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """``run`` traced: the cost rooms' functions the drivers called, in order ((room, function)), and
    every call from a cost room into one before it in the line ((caller, callee, function))."""
    rank = {room: i for i, room in enumerate(LINE)}
    entered: list[tuple[str, str]] = []
    upward: list[tuple[str, str, str]] = []

    def profile(frame, event, _arg):
        if event != "call" or (callee := _room(frame)) not in rank or _resumed(frame):
            return
        caller = _caller(frame)
        if caller in rank and rank[callee] < rank[caller]:
            upward.append((caller, callee, frame.f_code.co_name))
        elif caller in DRIVERS:
            entered.append((callee, frame.f_code.co_name))

    click_trace.profiled(profile, run)
    return entered, upward


def test_a_generate_press_walks_the_cost_rooms_once_in_line_order(studio_env):
    entered, upward = traced(
        lambda: handlers.make("generate", prompt="one line", audio_duration=10, inference_steps=2, seed=5, think=False)
    )
    assert upward == []
    ranks = [LINE.index(room) for room, _ in entered]
    assert ranks == sorted(ranks), entered
    assert [name for _, name in entered] == ["settle", "room", "write_takes"], entered


def test_a_press_on_the_page_enters_budget_once(studio_env):
    """Generate's button as the page wires it, its door and then its run on one join (``tools/click_trace``):
    the door settles the press, and the run reads what it settled (``music_request.Settled``), asking the
    budget nothing again."""
    walk = click_trace.traced(click_trace.generate_press(), ROOT)
    assert [(caller, name) for caller, room, name in walk.entries if room == "budget"] == [("handlers", "settle")]
    assert walk.entered()["takes"] and walk.moves, walk.entries


def test_a_refusal_worded_with_what_fits_calls_nothing_back_up_the_line(studio_env):
    """ZeroGPU's quota refusal in the studio's words: ``quota`` asks ``budget`` what fits in what is
    left, by a number of seconds (``quota.most_declared``), not by a function budget calls back."""
    job = handlers.preparer("generate")(
        prompt="long", audio_duration=240, inference_steps=50, batch_size=4, think=False
    )
    refusal = gr.Error("You have exceeded your free GPU quota (600s requested vs. 100s left). Try again in 1:00:00")
    refusal.title = quota.QUOTA_TITLE
    said: list[gr.Error] = []
    ways = quota.music_ways(MusicShape.of(job.request))
    _, upward = traced(lambda: said.append(quota.in_words(refusal, ways)))
    assert upward == []
    assert "What fits now" in said[0].message, said[0].message


def test_the_most_a_call_may_declare_is_what_zerogpu_charges_within_what_is_left(monkeypatch):
    monkeypatch.setattr(quota, "charged", lambda declared: round(declared * 1.5))
    most = quota.most_declared(100)
    assert quota.charged(most) <= 100 < quota.charged(most + 1) and most == 67  # 67 × 1.5 = 100.5: 100
    assert quota.most_declared(10_000) == 300  # no call declares more than ZeroGPU's one-call limit
    monkeypatch.setattr(quota, "charged", lambda declared: declared + 1)
    assert quota.most_declared(0) == -1  # nothing fits
