"""A Generate click traced through the modules: ``python tools/click_trace.py``.

It builds the studio on the tiny random models the tests use (``random_models``), builds the page
(``app.build_ui``) and clicks Generate through what the page's button is wired to: its admission check (the
``validator=`` Gradio runs inside the join) and then its handler, on one join's HTTP request, as Gradio
hands both. Nothing inside the studio is stood in for; the pipeline is the tiny one, built before the
click, so the trace is the click's alone. The click is traced (``sys.setprofile``, ``threading.setprofile``)
and it prints the modules the click enters, in order, and:

- a *move*: a call from one module into another (the nearest module up the caller's stack; a generator
  resumed, a context manager's exit among them, is not a new call, and a return is no move);
- a *climb*: a move back up the level picture (docs/design.md: a module's level is one more than the
  highest it imports), into a module above the caller's;
- how many times each module is entered: the moves into it, and the entries from outside the modules (the
  page's admission check and handler, a thread's first call).

First it prints the numbered steps (docs/design.md, "One request": a function a step, numbered from the page
to the model's call and back) in the order this click reached them, and whether that is the doc's order: a
step is reached when its function runs, or a function it made (an admission check, an endpoint's handler); the
page's wiring, which runs as the page is built and not at the click, comes first.

The click asks what tests ask (a short take, two steps, no Think), so it runs in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import collections
import dis
import inspect
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import studio_root

# What the click asks besides the page's first values (the preparer's defaults): what the tests ask.
CLICK = {"prompt": "night drive", "audio_duration": 10, "inference_steps": 2, "seed": 5, "think": False}
_GENERATORS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def levels(root: Path) -> dict[str, int]:
    """Each module's level, as docs/design.md draws them (tests/test_layout.py holds the picture to the code:
    one more than the highest module a module imports, 0 for one that imports none)."""
    text = (root / "docs" / "design.md").read_text()
    picture = text.split("```\n", 2)[1].split("```", 1)[0]
    return {name: int(number) for number, *names in map(str.split, picture.splitlines()) for name in names}


# A numbered step in docs/design.md: "N. **What it is** (`module.function`): ...", in its section "One request".
STEP = re.compile(r"^(\d+)\. \*\*[^*\n]+\*\* \(`([\w.]+)`\)", re.MULTILINE)
WALK_SECTION = "## One request"


def numbered(text: str) -> list[tuple[int, str]]:
    """The numbered steps of a click in design.md's ``text``: each step's number and the function it names
    (``module.function``, a method as ``module.Class.method``), in the doc's order."""
    if (marker := f"\n{WALK_SECTION}\n") not in text:
        return []
    section = text.split(marker, 1)[1].split("\n## ", 1)[0]
    return [(int(number), name) for number, name in STEP.findall(section)]


def steps(root: Path) -> list[str]:
    """The functions docs/design.md's numbered steps of a click name, in its order."""
    return [name for _, name in numbered((root / "docs" / "design.md").read_text())]


@dataclass
class Reached:
    """The numbered ``steps`` a run reached, in the order it first reached each: the step's own function, or
    a function it made (``admission_check``'s check, ``_endpoint``'s handler: their code is the step's ``<locals>``)."""

    steps: frozenset[str]
    order: list[str] = field(default_factory=list)

    def see(self, module: str, code: CodeType) -> None:
        name = f"{module}.{code.co_qualname.split('.<locals>.')[0]}"
        if name in self.steps and name not in self.order:
            self.order.append(name)


def in_order(built: Reached, clicked: Reached) -> list[str]:
    """The steps as a click reached them: those reached only while its page was built (the wiring) first."""
    return [name for name in built.order if name not in clicked.order] + clicked.order


def _modules(root: Path) -> Callable[[FrameType | None], str | None]:
    """A frame's module (its code file's name, for a file at ``root``), asked once a file; None outside."""
    modules: dict[str, str | None] = {}

    def module(frame: FrameType | None) -> str | None:
        if frame is None:
            return None
        name = frame.f_code.co_filename
        if name not in modules:
            path = Path(name)
            modules[name] = path.stem if path.parent == root and path.suffix == ".py" else None
        return modules[name]

    return module


def profiled(profile: Callable[[FrameType, str, Any], None], run: Callable[[], Any]) -> None:
    """``run()`` with ``profile`` told of every call in every thread, and nothing told after it."""
    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)


@dataclass
class Walk:
    """What a traced run did among the modules: every entry (caller's module, or None from outside; the module;
    the function), in order."""

    entries: list[tuple[str | None, str, str]] = field(default_factory=list)

    @property
    def moves(self) -> list[tuple[str, str, str]]:
        return [(a, b, f) for a, b, f in self.entries if a is not None]

    def modules(self) -> list[str]:
        """The modules entered, in the order first entered."""
        return list(dict.fromkeys(module for _, module, _ in self.entries))

    def climbs(self, level: dict[str, int]) -> list[tuple[str, str, str]]:
        return [(a, b, f) for a, b, f in self.moves if level[b] > level[a]]

    def entered(self) -> collections.Counter[str]:
        return collections.Counter(module for _, module, _ in self.entries)


def _resumed(frame: FrameType) -> bool:
    """A generator's frame is "called" again at every resume: past its first ``RESUME`` it is no new call."""
    if not frame.f_code.co_flags & _GENERATORS:
        return False
    first = next(i.offset for i in dis.get_instructions(frame.f_code) if i.opname == "RESUME")
    return frame.f_lasti > first


def reaching(run: Callable[[], Any], root: Path, reached: Reached) -> None:
    """``run()`` with the numbered steps it reaches told to ``reached``, and nothing else traced."""

    module = _modules(root)

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call" and (callee := module(frame)) is not None:
            reached.see(callee, frame.f_code)

    profiled(profile, run)


def traced(run: Callable[[], Any], root: Path, reached: Reached | None = None) -> Walk:
    """``run()`` traced: every call into a module from another module or from outside the modules (and the
    numbered steps it reaches told to ``reached``)."""
    walk, module = Walk(), _modules(root)

    def caller(frame: FrameType) -> str | None:
        up = frame.f_back
        while up is not None and module(up) is None:  # a library between (contextlib, gradio, a pool)
            up = up.f_back
        return module(up)

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call" or (callee := module(frame)) is None or _resumed(frame):
            return
        if reached is not None:
            reached.see(callee, frame.f_code)
        if (source := caller(frame)) != callee:
            walk.entries.append((source, callee, frame.f_code.co_name))

    profiled(profile, run)
    return walk


def _studio(folder: Path) -> None:
    """The tiny models and the studio's settings, as tests/conftest.py's ``studio_env`` gives them."""
    import random_models

    music = random_models.save_pipeline(folder / "music")
    base = random_models.save_base(folder / "base")
    os.environ.update(
        HF_HUB_OFFLINE="1",
        ACE_STUDIO_MODEL=str(music),
        ACE_STUDIO_BASE_MODEL=str(base),
        ACE_STUDIO_VARIANT="xl-sft",
        ACE_STUDIO_OUTPUT_DIR=str(folder / "outputs"),
        ACE_STUDIO_CANCEL_DIR=str(folder / "cancel"),
    )


def _join() -> Any:
    """One join's HTTP request, as Gradio hands it to both the admission check and the run (``gr.Request``)."""
    import gradio as gr
    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/gradio_api/queue/join",
        "headers": [(b"host", b"localhost:7860")],
        "query_string": b"",
        "scheme": "http",
        "server": ("localhost", 7860),
        "root_path": "",
    }
    return gr.Request(request=Request(scope), session_hash="click-trace")


def generate_click(page: Any = None) -> Callable[[], Any]:
    """One click of Generate's button as the page wires it (``page``, else ``app.build_ui()``): the admission check it
    names (``validator=``) with the form's values and the join's request, then, let in, its handler."""
    import app
    import backend

    page = app.build_ui() if page is None else page
    wired = next(fn for fn in page.fns.values() if fn.api_name == "generate")
    names = list(inspect.signature(wired.fn).parameters)[: len(wired.inputs)]
    values = [CLICK.get(name, component.value) for name, component in zip(names, wired.inputs, strict=True)]
    backend.get_backend()  # the pipeline built before the click: the trace is the click's alone

    def click() -> Any:
        join = _join()
        verdicts = wired.validator(*values, join)
        refused = [v for v in verdicts if not v.get("is_valid", True)]
        assert not refused, refused
        return wired.fn(*values, request=join)

    return click


def built_page(root: Path, reached: Reached) -> Any:
    """The page (``app.build_ui``), the numbered steps its build reaches (the click's wiring) told to ``reached``."""
    import app

    page: list[Any] = []
    reaching(lambda: page.append(app.build_ui()), root, reached)
    return page[0]


def walked(root: Path) -> list[str]:
    """The numbered steps (docs/design.md) as a Generate click on a page built here reaches them (``in_order``)."""
    names = frozenset(steps(root))
    built, clicked = Reached(names), Reached(names)
    reaching(generate_click(built_page(root, built)), root, clicked)
    return in_order(built, clicked)


def said(order: list[str], named: list[str]) -> str:
    """The steps as reached, numbered, and whether that is the order docs/design.md numbers."""
    verdict = "as docs/design.md numbers them" if order == named else "NOT as docs/design.md numbers them"
    lines = [f"the numbered steps, in the order this click reached them ({verdict}):"]
    lines += [f"  {i:2}. {name}" for i, name in enumerate(order, 1)]
    if order != named:
        lines.append("docs/design.md: " + " ".join(f"{i}. {name}" for i, name in enumerate(named, 1)))
        lines += [f"never reached: {name}" for name in named if name not in order]
    return "\n".join(lines)


def report(walk: Walk, level: dict[str, int]) -> str:
    """The trace as text: the modules in order, the moves and climbs, each module's entries."""
    modules, climbs, budget = walk.modules(), walk.climbs(level), walk.entered()["budget"]
    lines = [
        "modules entered, in order: " + " ".join(modules),
        f"{len(modules)} modules in {len(walk.moves)} moves with {len(climbs)} climbs back up, "
        f"budget {budget} time{'s' * (budget != 1)}",
        "climbs back up: " + (", ".join(f"{a} → {b}.{f}" for a, b, f in climbs) or "none"),
        "entered: " + ", ".join(f"{module} {n}" for module, n in walk.entered().most_common()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", action="store_true", help="list every move too")
    args = parser.parse_args(argv)
    root = studio_root.reach()
    named = steps(root)
    built, clicked = Reached(frozenset(named)), Reached(frozenset(named))
    with tempfile.TemporaryDirectory(prefix="click-trace-") as folder:
        _studio(Path(folder))
        click = generate_click(built_page(root, built))
        walk = traced(click, root, clicked)
    print(said(in_order(built, clicked), named))
    print(report(walk, levels(root)))
    if args.moves:
        print("\n".join(f"{a or '(outside)'} → {b}.{f}" for a, b, f in walk.entries))


if __name__ == "__main__":
    main()
