"""The house rules, read from the source with ``ast``: rooms of at most 500 lines, functions of at most
80, and imports that point one way (function-level imports included), so a request reads top down.
"""

from __future__ import annotations

import ast

from conftest import ROOT

# Tools beside the studio, not rooms of it.
TOOLS = {"bench", "bench_steps", "random_models"}
MAX_LINES = 500
MAX_FUNCTION_LINES = 80


def _rooms() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text()) for p in sorted(ROOT.glob("*.py")) if p.stem not in TOOLS}


def _imports(tree: ast.Module, rooms: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & rooms


def import_graph() -> dict[str, set[str]]:
    rooms = _rooms()
    return {name: _imports(tree, set(rooms)) - {name} for name, tree in rooms.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one room (Tarjan), i.e. every import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_among_the_rooms():
    graph = import_graph()
    assert graph["app"], "the graph reads no imports at all"
    assert cycles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_rooms_and_functions_stay_small():
    too_long = []
    for name, tree in _rooms().items():
        lines = (ROOT / f"{name}.py").read_text().count("\n")
        if lines > MAX_LINES:
            too_long.append(f"{name}.py: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert too_long == []


def test_agents_md_names_every_room_and_its_imports_as_the_code_has_them():
    """AGENTS.md's rooms table is kept true by this test: one row a room (tools too), and its imports
    column is exactly the studio rooms the room imports (at the top or inside a function)."""
    import re

    everything = {p.stem: ast.parse(p.read_text()) for p in sorted(ROOT.glob("*.py"))}
    rows = {}
    for line in (ROOT / "AGENTS.md").read_text().splitlines():
        found = re.fullmatch(r"\| `([a-z_]+)\.py` \|.*\| ([a-z_, —]+) \|", line)
        if found:
            listed = found.group(2).strip()
            rows[found.group(1)] = set() if listed == "—" else {n.strip() for n in listed.split(",")}
    assert set(rows) == set(everything), f"rows missing or stale: {set(rows) ^ set(everything)}"
    wrong = {
        name: (rows[name], actual)
        for name, tree in everything.items()
        if rows[name] != (actual := _imports(tree, set(everything)) - {name})
    }
    assert wrong == {}, "AGENTS.md's imports column (listed, actual): " + repr(wrong)


def layer_picture() -> str:
    """The rooms by level, top down: a room's level is one more than the highest it imports (0: it
    imports no room). docs/design.md draws the house with exactly these lines."""
    graph = import_graph()
    level: dict[str, int] = {}

    def of(name: str) -> int:
        if name not in level:
            level[name] = 1 + max((of(n) for n in graph[name]), default=-1)
        return level[name]

    for name in graph:
        of(name)
    return "\n".join(
        f"{n:>2}  {' '.join(sorted(r for r in graph if level[r] == n))}" for n in range(max(level.values()), -1, -1)
    )


def test_design_md_draws_the_layers_the_code_has():
    assert f"```\n{layer_picture()}\n```" in (ROOT / "docs" / "design.md").read_text(), layer_picture()


def test_each_music_tab_has_a_field_for_every_parameter_of_its_preparer_and_no_other(studio_env):
    """The form is spelled once, by the preparer's signature: each tab maps those names (the API's) to
    its components; a parameter without a component, or a component no parameter names, fails here."""
    import inspect

    import gradio as gr

    import models
    import modes
    import records
    import tabs

    variant = models.active_variant()
    with gr.Blocks():
        with gr.Tabs():
            made = [
                tabs.generate_tab(variant),
                tabs.cover_tab(variant),
                tabs.extend_tab(variant),
                tabs.edit_tab(variant),
            ]
    for tab in made:
        parameters = set(inspect.signature(modes.PREPARE[tab.name]).parameters)
        page = set(tabs.PAGE_ONLY) if tab.name == "generate" else set()
        assert set(tab.fields) == parameters | page, (tab.name, set(tab.fields) ^ (parameters | page))
        assert len({id(c) for c in tab.fields.values()}) == len(tab.fields), tab.name  # one component a field
    # What Use these settings fills is Generate's form less what a record cannot carry, and Instrumental.
    generate = set(inspect.signature(modes.prepare_generate).parameters)
    assert set(records.FIELDS) == generate - {"reference_audio", "lora"} | {"instrumental"}
    assert len(records.FIELDS) == len(set(records.FIELDS))


def test_no_room_is_imported_under_another_name():
    """A room is read by its name everywhere (``tooltips as tips``, the same in every room, aside)."""
    names = {p.stem for p in ROOT.glob("*.py")}
    renamed = [
        f"{path.name}: {alias.name} as {alias.asname}"
        for path in sorted([*ROOT.glob("*.py"), *ROOT.glob("tests/*.py")])
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name in names
        and alias.asname not in (None, alias.name)
        and (alias.name, alias.asname) != ("tooltips", "tips")
    ]
    assert renamed == []
