"""docs/design.md's numbered steps of a Generate click ("One request"), from the page to the model's call
and back, held to the code.

Read with ``ast``: the doc numbers exactly the steps of ``WALK``, in its order; each step's function is in
its module; the step that hands on to it refers to it (calls it, passes it as a value, names it in a table),
in its own body or its module's private helpers (``_render``); and the three hand-overs a reader would not
guess are read as written: the preparer table, the GPU function passed as a value to ``gpu.call``, and
``Admission`` carried on the join's request from the admission check to the run. At run time a click on the
page (``tools/click_trace.py``) reaches the steps in the doc's order.
"""

from __future__ import annotations

import ast
import itertools
from functools import cache

import click_trace
from conftest import ROOT

# The steps as the code has them: each step's function, and the step (or the page's build) that hands on to it.
# A step back up (the finish, the takes, the result) is handed on by the step the call returned to.
WALK = (
    ("tabs.wire_music", "app.build_ui"),
    ("admission.validator", "tabs.wire_music"),
    ("handlers.admission_check", "tabs.wire_music"),
    ("handlers.prepare_for_admission", "handlers.admission_check"),
    ("modes.prepare_generate", "handlers.prepare_for_admission"),
    ("budget.admit", "handlers.admission_check"),
    ("handlers._endpoint", "tabs.wire_music"),
    ("handlers.as_admitted", "handlers._endpoint"),
    ("handlers.run_job", "handlers._endpoint"),
    ("gpu.call", "handlers.run_job"),
    ("generation.music_gpu", "handlers.run_job"),
    ("generation.run_music", "generation.music_gpu"),
    ("backend.Backend.run", "generation.run_music"),
    ("sampler.run", "backend.Backend.run"),
    ("modes.finish", "handlers.run_job"),
    ("takes.write_takes", "modes.finish"),
    ("results.seeds_text", "handlers._endpoint"),
)
DEFINITIONS = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse((ROOT / f"{module}.py").read_text())


def _definition(name: str) -> ast.AST | None:
    """The function (or class) ``module.name`` (``module.Class.method``) as written, or None."""
    module, *path = name.split(".")
    if not (ROOT / f"{module}.py").exists():
        return None
    node, body = None, _tree(module).body
    for part in path:
        node = next((n for n in body if isinstance(n, DEFINITIONS) and n.name == part), None)
        if node is None:
            return None
        body = node.body
    return node


@cache
def _names(module: str) -> dict[str, str]:
    """What a bare name means in ``module``: its own definitions and tables, the modules it imports, the names
    it imports from them."""
    names: dict[str, str] = {}
    for node in _tree(module).body:
        if isinstance(node, DEFINITIONS):
            names[node.name] = f"{module}.{node.name}"
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    names[target.id] = f"{module}.{target.id}"
        elif isinstance(node, ast.Import):
            names |= {alias.asname or alias.name: alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _dotted(node: ast.AST, module: str, local: dict[str, str]) -> str | None:
    """``node`` (a name, or attributes of one) as ``module.name``: read through ``module``'s names and ``local``."""
    if isinstance(node, ast.Name):
        return local.get(node.id) or _names(module).get(node.id)
    if isinstance(node, ast.Attribute) and (base := _dotted(node.value, module, local)) is not None:
        return f"{base}.{node.attr}"
    return None


def _locals(function: ast.AST, module: str, owner: str | None) -> dict[str, str]:
    """A function's names that stand for an instance: ``self`` (of ``owner``), and a name given what a
    function annotated to return a class returns (``be = backend.get_backend()``: a ``backend.Backend``)."""
    found = {"self": f"{module}.{owner}"} if owner else {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1:
            made = _dotted(node.value.func, module, {})
            maker = _definition(made) if made else None
            returns = getattr(maker, "returns", None)
            if isinstance(node.targets[0], ast.Name) and returns is not None:
                kind = _dotted(returns, made.split(".")[0], {})
                found |= {node.targets[0].id: kind} if kind else {}
    return found


def refers(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """Every ``module.name`` the function ``name`` refers to, in its body (its inner functions too), in its
    module's private helpers it refers to and in the tables it reads (a module's assignments), followed."""
    module, *path = name.split(".")
    node = _definition(name) or _assignment(name)
    if node is None:
        return set()
    local = _locals(node, module, path[0] if len(path) == 2 else None)
    found = {d for n in ast.walk(node) if (d := _dotted(n, module, local)) is not None}
    for further in found - seen - {name}:
        if further.rsplit(".", 1)[-1].startswith("_") or _assignment(further) is not None:
            found |= refers(further, seen | found | {name})
    return found


def _assignment(name: str) -> ast.stmt | None:
    """The module-level assignment of ``module.name`` (a table, a constant, an endpoint made), or None."""
    module, _, rest = name.partition(".")
    if "." in rest or not (ROOT / f"{module}.py").exists():
        return None
    return next((n for n in _tree(module).body if _target(n) == rest), None)


def _target(node: ast.stmt) -> str | None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    return None


def _calls(name: str, callee: str) -> list[ast.Call]:
    """The calls of ``callee`` (``module.name``) in the function ``name``."""
    module, *path = name.split(".")
    node = _definition(name)
    local = _locals(node, module, path[0] if len(path) == 2 else None)
    return [c for c in ast.walk(node) if isinstance(c, ast.Call) and _dotted(c.func, module, local) == callee]


def _table(module: str, name: str) -> ast.Dict:
    node = next(n for n in _tree(module).body if _target(n) == name)
    assert isinstance(node.value, ast.Dict), f"{module}.{name} is no table written out"
    return node.value


def problems(text: str) -> list[str]:
    """What is wrong with design.md's numbered steps (``text``) against the code's (``WALK``): its numbering, its steps."""
    numbered = click_trace.numbered(text)
    found = []
    if [number for number, _ in numbered] != list(range(1, len(numbered) + 1)):
        found.append(f"numbered {[number for number, _ in numbered]}, not 1 to {len(numbered)}")
    named, coded = [name for _, name in numbered], [step for step, _ in WALK]
    pairs = itertools.zip_longest(named, coded)
    found += [f"step {i}: the doc names {a}, the code {b}" for i, (a, b) in enumerate(pairs, 1) if a != b]
    return found


def test_design_md_numbers_the_steps_of_a_click_in_the_order_the_code_takes_them():
    assert problems((ROOT / "docs" / "design.md").read_text()) == []


def test_a_step_renamed_or_moved_in_the_doc_is_found():
    text = (ROOT / "docs" / "design.md").read_text()
    renamed = text.replace("** (`budget.admit`)", "** (`budget.admitted`)")
    first, second = (f"\n{n}. **" for n in (3, 4))  # the admission check and what it prepares, their numbers kept
    moved = text.replace(first, "@@").replace(second, first).replace("@@", second)
    misnumbered = text.replace(first, second)
    assert text not in (renamed, moved, misnumbered)
    assert problems(renamed) and problems(moved) and problems(misnumbered)


def test_each_step_is_a_function_in_its_module():
    missing = [step for step, _ in WALK if not isinstance(_definition(step), ast.FunctionDef | ast.AsyncFunctionDef)]
    assert missing == []


def test_each_step_is_handed_on_by_the_step_the_code_hands_it_from():
    # The two a reference does not show (a table by mode, a value passed): their own tests below.
    apart = {("handlers.prepare_for_admission", "modes.prepare_generate"), ("handlers.run_job", "generation.music_gpu")}
    unreached = [
        f"{giver} → {step}" for step, giver in WALK if (giver, step) not in apart and step not in refers(giver)
    ]
    assert unreached == []


def test_the_admission_check_prepares_a_request_by_the_preparer_table_its_mode_names():
    """``prepare_for_admission`` asks ``preparer(mode)``: ``PREPARERS[mode]``, which holds ``modes.PREPARE``, each mode's
    ``prepare_<mode>``; the run prepares it with the same (``_endpoint``)."""
    prepare = _table("modes", "PREPARE")
    modes = {key.value: _dotted(value, "modes", {}) for key, value in zip(prepare.keys, prepare.values, strict=True)}
    assert modes == {mode: f"modes.prepare_{mode}" for mode in modes} and "generate" in modes
    preparers = _table("handlers", "PREPARERS")
    assert [_dotted(v, "handlers", {}) for k, v in zip(preparers.keys, preparers.values, strict=True) if k is None] == [
        "modes.PREPARE"
    ]
    returns = [n.value for n in ast.walk(_definition("handlers.preparer")) if isinstance(n, ast.Return)]
    assert [_dotted(r.value, "handlers", {}) for r in returns if isinstance(r, ast.Subscript)] == ["handlers.PREPARERS"]
    assert {"handlers.preparer"} <= refers("handlers.prepare_for_admission") & refers("handlers._endpoint")


def test_the_gpu_function_is_passed_as_a_value_to_gpu_call():
    """``run_job`` hands ``generation.music_gpu`` to ``gpu.call`` uncalled, and ``gpu.call`` calls it (its
    first parameter); ``music_gpu`` is a GPU entry (``gpu.entry``: ``spaces.GPU`` on ZeroGPU)."""
    passed = [_dotted(c.args[0], "handlers", {}) for c in _calls("handlers.run_job", "gpu.call")]
    assert passed == ["generation.music_gpu"]
    assert _calls("handlers.run_job", "generation.music_gpu") == []
    call = _definition("gpu.call")
    entry = call.args.args[0].arg
    assert [c for c in ast.walk(call) if isinstance(c, ast.Call) and getattr(c.func, "id", None) == entry]
    decorators = [_dotted(d.func, "generation", {}) for d in _definition("generation.music_gpu").decorator_list]
    assert decorators == ["gpu.entry"]


def test_the_admission_is_carried_on_the_joins_request_from_the_admission_check_to_the_run():
    """The admission check admits with the join's request; ``budget.admit`` carries ``Admission`` on the job and
    leaves it on that request's state (``ADMISSION``); the run reads it off the same request in
    ``as_admitted`` before ``run_job``."""
    assert [k.arg for c in _calls("handlers.admission_check", "budget.admit") for k in c.keywords] == ["request"]
    admit = _definition("budget.admit")
    left = [c for c in ast.walk(admit) if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "setattr"]
    assert [_dotted(c.args[1], "budget", {}) for c in left] == ["budget.ADMISSION"]
    assert {"budget._state", "music_request.Admission"} <= refers("budget.admit")
    said = {n.value for n in ast.walk(_definition("budget._state")) if isinstance(n, ast.Constant)}
    assert {"request", "state"} <= said
    read = [c for c in ast.walk(_definition("handlers.as_admitted")) if getattr(c, "func", None) is not None]
    got = [c for c in read if getattr(c.func, "id", None) == "getattr" and len(c.args) > 1]
    assert {a.value for c in got for a in c.args[1:2] if isinstance(a, ast.Constant)} == {"request", "state"}
    assert [_dotted(c.args[1], "handlers", {}) for c in got if isinstance(c.args[1], ast.Attribute)] == [
        "budget.ADMISSION"
    ]
    runs = _calls("handlers._endpoint", "handlers.run_job")
    assert [_dotted(c.args[0].func, "handlers", {}) for c in runs] == ["handlers.as_admitted"]
    job = _definition("music_request.Job")
    fields = {n.target.id: ast.unparse(n.annotation) for n in job.body if isinstance(n, ast.AnnAssign)}
    assert fields["admission"] == "Admission | None"


def test_a_click_on_the_page_reaches_the_steps_in_the_doc_order(studio_env):
    """``tools/click_trace.py``'s order: the page built here, Generate clicked (its admission check, then its run, on one
    join's request), each step's function seen as it first runs."""
    assert click_trace.walked(ROOT) == click_trace.steps(ROOT) == [step for step, _ in WALK]
