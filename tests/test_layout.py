"""The layout rules, read from the source with ``ast``: imports that point one way (function-level imports
included), so a request reads top down; no ``# fmt: skip`` in a module (in a tool, on data literals only);
AGENTS.md's module table and docs/design.md's level picture as the code has them; a take's record read only
through its type; every message a visitor reads in a message module. The tools beside the studio (``tools/``:
the bench, the soak, the random stand-in models) keep the same rules, and no module imports one: the product a
Space runs is the top-level modules alone.

Size is a guide for review, not a rule that splits a module: about 500 lines a module and 80 a function read
well, and a module holds one responsibility whatever its length. The test keeps a generous sanity bound
(``MAX_LINES``, ``MAX_FUNCTION_LINES``) that only a module grown far past its one idea reaches.
"""

from __future__ import annotations

import ast
import builtins
import io
import re
import shutil
import subprocess
import sys
import tokenize
from collections.abc import Callable, Iterator
from pathlib import Path

from conftest import ROOT

TOOLS = ROOT / "tools"
# Sanity bounds, not a target: a module is split by responsibility, never to fit a number (see the docstring).
MAX_LINES = 1200
MAX_FUNCTION_LINES = 150


_PARSED: dict[Path, tuple[str, ast.Module]] = {}


def _parsed(path: Path) -> ast.Module:
    """``path``'s tree, parsed once for the file's tests while its text is the same (no finder changes a tree:
    the 17 tests that read every module parsed each of them again, 2.5 CPU s a run)."""
    text = path.read_text()
    if (kept := _PARSED.get(path)) is None or kept[0] != text:
        _PARSED[path] = kept = (text, ast.parse(text))
    return kept[1]


def _modules() -> dict[str, ast.Module]:
    """The studio's modules: every module at the top."""
    return {p.stem: _parsed(p) for p in sorted(ROOT.glob("*.py"))}


def _tools() -> dict[str, ast.Module]:
    """The tools beside it (imported by name, as the modules are: ``tools/`` is on the path they run with)."""
    return {p.stem: _parsed(p) for p in sorted(TOOLS.glob("*.py"))}


def _path(name: str) -> Path:
    return ROOT / f"{name}.py" if (ROOT / f"{name}.py").exists() else TOOLS / f"{name}.py"


def _imports(tree: ast.Module, modules: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & modules


def import_graph(modules: dict[str, ast.Module] | None = None) -> dict[str, set[str]]:
    """Who imports whom among ``modules`` (default: the modules)."""
    modules = _modules() if modules is None else modules
    return {name: _imports(tree, set(modules)) - {name} for name, tree in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), i.e. every import circle."""
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


def test_no_import_circle_among_the_modules_and_the_tools():
    graph = import_graph({**_modules(), **_tools()})
    assert graph["app"] and graph["bench"], "the graph reads no imports at all"
    assert cycles(graph) == []


def test_no_module_imports_a_tool():
    """The product is the modules at the top: none of them imports a tool (at the top or in a function),
    so a Space shipped without ``tools/`` (docs/deployment.md) runs every path it has."""
    modules, tools = _modules(), _tools()
    assert set(modules).isdisjoint(tools), "a tool named like a module: " + repr(set(modules) & set(tools))
    graph = import_graph({**modules, **tools})
    found = {name: sorted(graph[name] & set(tools)) for name in modules if graph[name] & set(tools)}
    assert found == {}, "modules importing tools: " + repr(found)
    assert {"random_models", "bench"} <= set(tools) and any(graph[t] & set(modules) for t in tools)


def test_the_circle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _ruff() -> list[str]:
    """The ruff beside this interpreter (a venv's ``bin/ruff``), else ``python -m ruff``, else the PATH's."""
    beside = Path(sys.executable).with_name("ruff")
    if beside.exists():
        return [str(beside)]
    if subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True).returncode == 0:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    assert found, "ruff is needed to measure the modules as it formats them (requirements-dev.txt)"
    return [found]


def formatted(path: Path) -> str:
    """The module as ``ruff format`` writes it with the repo's settings: sizes are measured on that, so a
    line packed past the formatter (or kept packed by ``# fmt: skip``) buys no module."""
    done = subprocess.run(
        [*_ruff(), "format", "--config", str(ROOT / "pyproject.toml"), "--stdin-filename", str(path), "-"],
        input=path.read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"ruff format {path.name}: {done.stderr}"
    return done.stdout


def too_long(name: str, text: str) -> list[str]:
    """The module's size and every function's, each over its bound, as lines of text."""
    found = []
    lines = text.count("\n")
    if lines > MAX_LINES:
        found.append(f"{name}.py: {lines} lines")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{name}.{node.name}: {length} lines")
    return found


def unformatted(paths: list[Path]) -> set[Path]:
    """Those of ``paths`` that ``ruff format`` would change, asked of one ruff (not one a file)."""
    config = ("--config", str(ROOT / "pyproject.toml"), "--output-format=concise")
    done = subprocess.run([*_ruff(), "format", "--check", *config, *map(str, paths)], capture_output=True, text=True)
    assert done.returncode in (0, 1), f"ruff format --check: {done.stderr}"
    said = {Path(line.split(":", 1)[0]).resolve() for line in done.stdout.splitlines() if ": unformatted" in line}
    named = {path for path in paths if path.resolve() in said}
    # Where ruff says some would change but its output names none of them, every one is formatted and measured.
    return named if named or done.returncode == 0 else set(paths)


def test_modules_and_functions_stay_within_the_sanity_bounds():
    """Measured as ruff formats each module, not as it stands: the bounds are about how much code there is. They
    are sanity bounds: a module past one holds more than one idea (split it by responsibility, not by size)."""
    paths = [_path(name) for name in {**_modules(), **_tools()}]
    changed = unformatted(paths)
    found = [
        line for path in paths for line in too_long(path.stem, formatted(path) if path in changed else path.read_text())
    ]
    assert found == [], "over the sanity bounds when formatted:\n" + "\n".join(found)


def _is_data(node: ast.expr) -> bool:
    """A literal made of constants, names and literals (``-1`` included): a table, not code."""
    if isinstance(node, ast.Constant | ast.Name):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return isinstance(node.operand, ast.Constant)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(_is_data(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_data(k) for k in node.keys) and all(_is_data(v) for v in node.values)
    return False


def _is_data_literal(statement: ast.stmt) -> bool:
    """An assignment of a literal list, tuple, dict or set of data: the one thing ``# fmt: skip`` may keep."""
    if not isinstance(statement, ast.Assign | ast.AnnAssign) or statement.value is None:
        return False
    value = statement.value
    return isinstance(value, ast.List | ast.Tuple | ast.Dict | ast.Set) and _is_data(value)


def skips_off_data(text: str) -> list[int]:
    """The lines whose ``# fmt: skip`` comment sits on anything but a data literal (the innermost
    statement spanning the comment's line; a comment on a block's header line belongs to the block),
    and every ``# fmt: off`` (a region the formatter never sees is packing by another name)."""
    tree = ast.parse(text)
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
    wrong = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type != tokenize.COMMENT:
            continue
        line = token.start[0]
        if "fmt: off" in token.string:
            wrong.append(line)
        if "fmt: skip" not in token.string:
            continue
        spanning = [s for s in statements if s.lineno <= line <= s.end_lineno]
        innermost = max(spanning, key=lambda s: s.lineno, default=None)
        if innermost is None or not _is_data_literal(innermost):
            wrong.append(line)
    return wrong


def test_fmt_skip_keeps_only_data_literals():
    """``# fmt: skip`` is for tables of data (numbers, names) whose rows read better as laid out; on
    code it packs lines the bounds would count, so every module (tools too) is checked."""
    paths = sorted([*ROOT.glob("*.py"), *TOOLS.glob("*.py")])
    found = {path.name: lines for path in paths if (lines := skips_off_data(path.read_text()))}
    assert found == {}, "# fmt: skip on code, not a data literal, or # fmt: off (file: lines):\n" + "\n".join(
        f"{name}: {', '.join(map(str, lines))}" for name, lines in found.items()
    )


def fmt_skips(text: str) -> list[int]:
    """The lines that hold a ``# fmt: skip`` comment (a string that says it is not one)."""
    return [
        token.start[0]
        for token in tokenize.generate_tokens(io.StringIO(text).readline)
        if token.type == tokenize.COMMENT and "fmt: skip" in token.string
    ]


def test_no_module_keeps_a_table_from_the_formatter():
    """The product's modules are read as ``ruff format`` writes them, their tables too: a ``# fmt: skip``
    keeps lines packed that the bounds would count, so no module holds one (the tools may keep a table laid
    out by hand, ``test_fmt_skip_keeps_only_data_literals``)."""
    found = {path.name: lines for path in sorted(ROOT.glob("*.py")) if (lines := fmt_skips(path.read_text()))}
    assert found == {}, f"# fmt: skip in a module (file: lines): {found}"


def test_the_skip_finder_tells_data_from_code():
    text = (
        "TABLE = [(1, 'a'), (-2, B)]  # fmt: skip\n"
        "NAMES: dict = {'x': 1,\n"
        "    'y': 2}  # fmt: skip\n"
        "call(a,\n"
        "     b)  # fmt: skip\n"
        "WORK = [f(x) for x in y]  # fmt: skip\n"
        "for x in (1, 2):  # fmt: skip\n"
        "    LATER = (1, 2)\n"
        "TEXT = '# fmt: skip'\n"
        "# fmt: off\n"
    )
    assert skips_off_data(text) == [5, 6, 7, 10]
    assert fmt_skips(text) == [1, 3, 5, 6, 7]


def test_agents_md_names_every_module_and_its_imports_as_the_code_has_them():
    """AGENTS.md's modules table is kept true by this test: one row a module and one a tool (``tools/NAME.py``),
    and its imports column is exactly the modules and tools the file imports (at the top or inside a
    function)."""
    import re

    modules, tools = _modules(), _tools()
    everything = {**modules, **tools}
    rows = {}
    for line in (ROOT / "AGENTS.md").read_text().splitlines():
        found = re.fullmatch(r"\| `(tools/)?([a-z_]+)\.py` \|.*\| ([a-z_, —]+) \|", line)
        if found:
            assert bool(found.group(1)) == (found.group(2) in tools), f"{found.group(2)}: in tools/ or not?"
            listed = found.group(3).strip()
            rows[found.group(2)] = set() if listed == "—" else {n.strip() for n in listed.split(",")}
    assert set(rows) == set(everything), f"rows missing or stale: {set(rows) ^ set(everything)}"
    wrong = {
        name: (rows[name], actual)
        for name, tree in everything.items()
        if rows[name] != (actual := _imports(tree, set(everything)) - {name})
    }
    assert wrong == {}, "AGENTS.md's imports column (listed, actual): " + repr(wrong)


def layer_picture() -> str:
    """The modules by level, top down: a module's level is one more than the highest it imports (0: it
    imports no module). docs/design.md draws the modules with exactly these lines."""
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

    import generate_page
    import models
    import modes
    import records
    import tabs

    variant = models.active_variant()
    with gr.Blocks():
        with gr.Tabs():
            made = [
                generate_page.build(variant),
                tabs.cover_tab(variant),
                tabs.extend_tab(variant),
                tabs.edit_tab(variant),
            ]
    for tab in made:
        parameters = set(inspect.signature(modes.PREPARE[tab.name]).parameters)
        page = set(generate_page.PAGE_ONLY) if tab.name == "generate" else set()
        assert set(tab.fields) == parameters | page, (tab.name, set(tab.fields) ^ (parameters | page))
        assert len({id(c) for c in tab.fields.values()}) == len(tab.fields), tab.name  # one component a field
    # What Use these settings fills is Generate's form less what a record cannot carry, and Instrumental.
    generate = set(inspect.signature(modes.prepare_generate).parameters)
    # Files, and a take lent as a voice (brought back by ``voice_row``), are not fields a record fills.
    from parameters import ADAPTER_SLOTS

    adapters = {file for file, _, _ in ADAPTER_SLOTS}
    assert set(records.FIELDS) == generate - {"reference_audio", "reference_take", *adapters} | {"instrumental"}
    assert len(records.FIELDS) == len(set(records.FIELDS))


def record_reads(tree: ast.Module) -> list[int]:
    """The lines of ``tree`` that read a record's settings by key, in any spelling: ``params[…]``,
    ``params.get(…)``, ``…["params"]``, ``….get("params"…)``, ``….params``."""

    def named(node: ast.AST) -> bool:
        return (isinstance(node, ast.Name) and node.id == "params") or (
            isinstance(node, ast.Attribute) and node.attr == "params"
        )

    def said(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and node.value == "params"

    found = set()
    for node in ast.walk(tree):
        getter = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
        if (
            # A subscript read (not one written: ``entry["params"] = …`` writes, as ``job_record`` does).
            (
                isinstance(node, ast.Subscript)
                and isinstance(node.ctx, ast.Load)
                and (named(node.value) or said(node.slice))
            )
            or (getter and (named(node.func.value) or (node.args and said(node.args[0]))))
            or (isinstance(node, ast.Attribute) and node.attr == "params")
        ):
            found.add(node.lineno)
    return sorted(found)


def test_the_record_finder_finds_every_spelling():
    for spelling in (
        'params["bpm"]',
        'params.get("bpm")',
        'record["params"]',
        'record.get("params", {})',
        "job.params",
    ):
        assert record_reads(ast.parse(spelling)) == [1], spelling
    assert record_reads(ast.parse('said = {"params": made}\nsaid.bpm\nfound["params"] = None')) == []


def test_the_record_is_read_only_through_its_type():
    """A take's record is read by key in one module (``records``: ``Record``, ``Take``, ``settings``) and
    written in one (``job_record``, which writes, never reads): no other module knows a setting's key in any
    spelling, and no preparer imports a page module to read one (``results`` shows a result)."""
    found = [
        f"{name}.py:{line}" for name, tree in _modules().items() if name != "records" for line in record_reads(tree)
    ]
    assert found == []
    graph = import_graph()
    preparers = ("modes", "part_tasks", "take_morph", "variations", "preparing")
    assert [name for name in preparers if "results" in graph[name]] == []


# The keys of a run's result and of a take's record and its takes' entries (``run_result``'s fields, as
# ``takes`` and ``job_record`` write them): read by key in ``records`` alone, everywhere else through
# ``records.Record``/``Take`` or ``run_result``. Keys every kind of dict has (a take's "audio", "seed" and
# "seconds", a "mode", "lyrics") are left out: other modules' reads of them would be noise.
RESULT_KEYS = frozenset(
    {
        "takes",
        "timings",
        "loop",
        "untouched",
        "encoding",
        "created",
        "preview",
        "planner",
        "planners",
        "finish",
        "finishes",
        "variation",
        "noise",
        "latents",
        "bars",
        "sections",
        "tempo",
        "stretch",
        "lock",
        "locks",
        "unlocked",
        "audio_sha256",
        "lrc",
        "lyric_score",
        "lyric_lines",
        "metadata",
        "peaks",
        "loop_songs",
        "in_time",
        "per_take",
        "parts",
        "own",
        "source_latents",
        "seam_s",
        "measured",
    }
)
# Other dicts that share a key with a record or a result, by module: not a record's reads.
NOT_RECORDS = {
    # The pipeline's own arguments and output (``backend.run``'s), and a file name's parts.
    **dict.fromkeys(("backend", "sampler", "flow_edit", "retake", "output_folder"), {"latents"}),
    "generation": {"latents", "planner"},  # ``backend.run``'s output; the start-up build's errors by model
    "gpu": {"measured", "timings"},  # every GPU entry's own result (Describe's, the stems', Write it's)
    "describe": {"timings"},
    "handlers": {"timings"},  # the stems call's
    "takes": {"timings"},  # ``write_stems``' stems record
    "music_request": {"noise"},  # ``Render.flat``'s mapping, as the tests write one
    "results": {"variation"},  # ``records.settings``' values
    # A take's map as ``song_map`` makes it and the page draws it, before a record holds it.
    "bar_one": {"bars", "tempo"},
    "waveform": {"bars", "sections"},
    "song_map": {"sections"},
}
# Reads of a record not yet through its type: none. Typed: the digest that binds a song sent
# back to its take (``records.Take.bound_to``), a record's loop (``records.LoopEntry``), a loop as its map reads
# it (``song_map.Looping``: a ``music_request.Loop`` or a ``records.LoopEntry``).
NOT_YET_TYPED: dict[str, set[str]] = {}


def result_reads(tree: ast.Module) -> list[tuple[int, str]]:
    """The lines of ``tree`` that read a result's or a record's key (``RESULT_KEYS``) in any spelling:
    ``x["takes"]``, ``x.get("takes")``, ``x.pop("takes")``, ``"takes" in x`` (a write, ``x["takes"] = …``,
    is not a read)."""

    def key(node: ast.AST) -> str | None:
        return node.value if isinstance(node, ast.Constant) and node.value in RESULT_KEYS else None

    found = set()
    for node in ast.walk(tree):
        said = None
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            said = key(node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            said = key(node.args[0]) if node.func.attr in ("get", "pop", "setdefault") else None
        elif isinstance(node, ast.Compare) and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            said = key(node.left)
        if said is not None:
            found.add((node.lineno, said))
    return sorted(found)


def test_the_result_finder_finds_every_spelling():
    for spelling in ('made["takes"]', 'record.get("takes", [])', 'result.pop("loop", None)', '"in_time" in result'):
        assert result_reads(ast.parse(spelling)) == [(1, spelling.split('"')[1])], spelling
    assert result_reads(ast.parse('entry["bars"] = []\nresult.takes\nsaid = {"timings": {}}')) == []


def test_the_result_and_the_record_are_read_only_through_their_types():
    """What a music run returns and what its finish writes are typed (``run_result``; ``records.Record`` and
    ``Take`` read a record back): no module but ``records`` reads their keys in any spelling, but where a dict
    of its own shares one (``NOT_RECORDS``) and the reads not yet typed (``NOT_YET_TYPED``)."""
    allowed = {name: NOT_RECORDS.get(name, set()) | NOT_YET_TYPED.get(name, set()) for name in _modules()}
    found = [
        f"{name}.py:{line} [{said!r}]"
        for name, tree in _modules().items()
        if name != "records"
        for line, said in result_reads(tree)
        if said not in allowed[name]
    ]
    assert found == []


def test_no_module_is_imported_under_another_name():
    """A module is read by its name everywhere (``tooltips as tips``, the same in every module, aside)."""
    names = {p.stem for p in [*ROOT.glob("*.py"), *TOOLS.glob("*.py")]}
    renamed = [
        f"{path.name}: {alias.name} as {alias.asname}"
        for path in sorted([*ROOT.glob("*.py"), *TOOLS.glob("*.py"), *ROOT.glob("tests/*.py")])
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name in names
        and alias.asname not in (None, alias.name)
        and (alias.name, alias.asname) != ("tooltips", "tips")
    ]
    assert renamed == []


def test_agents_md_stays_short_and_ruff_knows_every_module():
    """AGENTS.md stays at most 200 lines (its glossary, one row a module and a tool, where to change what, the
    rules); ruff finds the modules, the tools and the tests' helpers as first-party by itself (pyproject's
    ``src``: no list to keep by hand)."""
    import tomllib

    assert len((ROOT / "AGENTS.md").read_text().splitlines()) <= 200
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["ruff"]["src"] == [".", "tools", "tests"]
    assert "isort" not in config["tool"]["ruff"]["lint"]


# The module that holds every refusal's message (a field's, a file's, a model's error a refusal carries).
ERROR_MODULES = ("error_messages",)


def _last_name(node: ast.AST) -> str | None:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)


def _subclasses(modules: dict[str, ast.Module], found: set[str]) -> set[str]:
    """``found`` and every class a module derives from one of them, by name."""
    while True:
        more = {
            node.name
            for tree in modules.values()
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef) and any(_last_name(b) in found for b in node.bases)
        }
        if more <= found:
            return found
        found = found | more


def _carriers(tree: ast.Module) -> list[tuple[ast.AST, str, ast.AST]]:
    """Where an exception is caught and handled by a name: ``(its class or classes, the name, the handling)``: an
    ``except T as e``, a function whose parameter is annotated ``T``, a ``(T, lambda e: …)`` pair (``gpu.Known``)."""
    found: list[tuple[ast.AST, str, ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is not None and node.name:
            found.append((node.type, node.name, node))
        elif isinstance(node, ast.FunctionDef | ast.Lambda):
            args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            found += [(a.annotation, a.arg, node) for a in args if getattr(a, "annotation", None) is not None]
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[1], ast.Lambda):
            handler = node.elts[1]
            found += [(node.elts[0], a.arg, handler.body) for a in handler.args.args[:1]]
    return found


def _message(call: ast.Call) -> ast.AST | None:
    return call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "message"), None)


def _said(message: ast.AST) -> set[str]:
    """The names whose text a message carries: not one only named by its type (``type(exc).__name__``)."""
    if isinstance(message, ast.Call) and _last_name(message.func) == "type":
        return set()
    named = {message.id} if isinstance(message, ast.Name) else set()
    return named.union(*(_said(child) for child in ast.iter_child_nodes(message)))


def _python_errors() -> set[str]:
    """Python's own exceptions, by name."""
    return {name for name, kind in vars(builtins).items() if isinstance(kind, type) and issubclass(kind, BaseException)}


def _refusal_classes(modules: dict[str, ast.Module]) -> set[str]:
    """``gr.Error`` and every class a module derives from it (``InputError``, ``SaveError`` …), by name; and every
    module's own exception whose message reaches the page: one a refusal carries in its message where it is caught
    (``checks.about``'s ``InputError(str(exc), param)``, ``gpu.Known``'s pairs, ``_not_built(exc)``), and its
    subclasses."""
    raised = _python_errors()
    exceptions = _subclasses(modules, raised | {"Error"})
    found = _subclasses(modules, {"Error"})
    while True:
        carried = set()
        for tree in modules.values():
            for types, name, handling in _carriers(tree):
                calls = [n for n in ast.walk(handling) if isinstance(n, ast.Call) and _last_name(n.func) in found]
                if any(name in _said(_message(call)) for call in calls if _message(call) is not None):
                    elts = types.elts if isinstance(types, ast.Tuple) else [types]
                    carried |= {_last_name(t) for t in elts} & exceptions - raised
        more = _subclasses(modules, found | carried)
        if more <= found:
            return found
        found = more


def _literal(node: ast.AST | None) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _named_literals(scope: ast.AST, statements: list[ast.stmt]) -> tuple[set[str], set[str]]:
    """The names ``statements`` (a function's, walked; a module's, its own) give a literal (``x = f"…"``, ``a, b =
    "…", "…"``), and every name they give a value to."""
    worded, named = set(), set()
    for node in statements:
        for assign in [node] if isinstance(scope, ast.Module) else ast.walk(node):
            if not isinstance(assign, ast.Assign | ast.AnnAssign) or assign.value is None:
                continue
            for target in assign.targets if isinstance(assign, ast.Assign) else [assign.target]:
                pairs = [(target, assign.value)]
                if isinstance(target, ast.Tuple) and isinstance(assign.value, ast.Tuple):
                    pairs = list(zip(target.elts, assign.value.elts, strict=False))
                for name, value in pairs:
                    if isinstance(name, ast.Name):
                        named.add(name.id)
                        worded |= {name.id} if _literal(value) else set()
    return worded, named


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """``scope``'s nodes, not those of the functions within it (each is a scope of its own)."""
    for child in ast.iter_child_nodes(scope):
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield child
            yield from _own_nodes(child)


def refusal_literals(tree: ast.Module, classes: set[str]) -> list[int]:
    """The lines of ``tree`` where a refusal (one of ``classes``) is given its message as a literal: a string or an
    f-string as its message, or a name given one first (in its function, or the module's where the function gives
    it none), rather than one of ``error_messages``' messages."""
    module_worded, _ = _named_literals(tree, tree.body)
    found = set()
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))]
    for scope in scopes:
        worded, named = _named_literals(scope, scope.body) if scope is not tree else (module_worded, set())
        worded |= module_worded - named
        for node in _own_nodes(scope):
            if isinstance(node, ast.Call) and _last_name(node.func) in classes:
                message = _message(node)
                if _literal(message) or (isinstance(message, ast.Name) and message.id in worded):
                    found.add(node.lineno)
    return sorted(found)


def test_the_refusal_finder_finds_a_message_written_in_a_module():
    classes = {"Error", "InputError"}
    for spelling in (
        'raise gr.Error("Upload a song first.")',
        'raise InputError(f"{n} bars is too many.", "loop_bars")',
        'error = gr.Error(message="No take yet.")',
    ):
        assert refusal_literals(ast.parse(spelling), classes) == [1], spelling
    assert refusal_literals(ast.parse("raise gr.Error(error_messages.NO_TAKE)\nraise ValueError('x')"), classes) == []


def test_the_refusal_finder_finds_a_message_kept_in_a_name_first():
    """A message written into a name, then given to a refusal, is a message written in a module all the same."""
    classes = {"Error", "InputError"}
    for spelling in (
        'def f(n):\n    message = f"{n} bars is too many."\n    raise InputError(message, "loop_bars")',
        'def f(n):\n    why, hint = f"{n} bars", "Fewer."\n    raise gr.Error(hint)',
        'words = "Upload a song first."\nraise gr.Error(words)',
    ):
        assert refusal_literals(ast.parse(spelling), classes) == [len(spelling.splitlines())], spelling
    assert refusal_literals(ast.parse("words = error_messages.NO_TAKE\nraise gr.Error(words)"), classes) == []


def test_the_refusal_finder_finds_exceptions_whose_message_reaches_the_page():
    """A module's exception is a refusal where a refusal carries its message (caught as ``exc``, or handed to a
    function or a ``gpu.Known`` pair); so are its subclasses. One only named by its type is not."""
    modules = {
        "a": ast.parse(
            "class InputError(gr.Error): ...\nclass Bad(ValueError): ...\nclass Worse(Bad): ...\n"
            "class Known(ValueError): ...\n"
            "class Typed(ValueError): ...\nclass Told(RuntimeError): ...\nclass Quiet(ValueError): ..."
        ),
        "b": ast.parse(
            "try:\n    f()\nexcept (a.Bad, KeyError) as exc:\n    raise InputError(str(exc), 'lora')\n"
            "except a.Typed as exc:\n    raise gr.Error(error_messages.FAILED.format(kind=type(exc).__name__))\n"
            "except a.Quiet:\n    raise gr.Error(error_messages.FAILED)\n"
            "KNOWN = ((a.Known, lambda exc: gr.Error(str(exc))),)\n"
            "def _not_built(exc: a.Told) -> Exception:\n    return gr.Error(error_messages.MISSING.format(error=exc))"
        ),
    }
    classes = _refusal_classes(modules)
    assert {"Bad", "Worse", "Known", "Told"} <= classes
    assert not {"Typed", "Quiet", "KeyError", "ValueError"} & classes
    assert refusal_literals(ast.parse("raise Worse(f'{name} is damaged.')\nraise Quiet('x')"), classes) == [1]


def test_every_refusal_has_its_message_in_error_messages():
    """A visitor's refusal has its message in one module (``error_messages``), where it is read, kept and changed."""
    modules = _modules()
    classes = _refusal_classes(modules)
    found = _outside(modules, ERROR_MODULES, lambda name, tree: map(str, refusal_literals(tree, classes)))
    assert found == [], "a refusal's message outside error_messages.py:\n" + "\n".join(found)


def _outside(modules: dict[str, ast.Module], skip: tuple[str, ...], find: Callable) -> list[str]:
    """``module.py:what`` for each ``what`` that ``find(module, tree)`` finds in a module not in ``skip``."""
    return [f"{name}.py:{what}" for name, tree in modules.items() if name not in skip for what in find(name, tree)]


# The modules whose text a visitor reads, each its own kind (its docstring says which): a module elsewhere reads
# them: refusals, the other messages (progress, results, the studio's state), a field's help, an agent's tool help.
MESSAGE_MODULES = (*ERROR_MODULES, "messages", "tooltips", "mcp_schema")


def _imported(tree: ast.Module, modules: dict[str, ast.Module]) -> dict[str, str | tuple[str, str]]:
    """What each name ``tree`` imports is: a module (``import tooltips as tips``), or a module's name (``from x import f``)."""
    found: dict[str, str | tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.asname or a.name: a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module in modules:
            found |= {a.asname or a.name: (node.module, a.name) for a in node.names}
    return found


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}


def _valued(expr: ast.AST) -> Iterator[ast.AST]:
    """``expr``'s nodes that may end in its value: not a key looked up (``error_messages.HUB_REFUSED[hub.why_not(exc)]``)
    nor a test (``x if engine() == "mlx" else y``), which choose a message and say none."""
    yield expr
    for name, child in ast.iter_fields(expr):
        tested = isinstance(expr, ast.Compare) or (isinstance(expr, ast.IfExp) and name == "test")
        if tested or (isinstance(expr, ast.Subscript) and name == "slice") or name == "ifs":
            continue
        for node in child if isinstance(child, list) else [child]:
            yield from _valued(node) if isinstance(node, ast.AST) else []


def _bound(scope: ast.AST) -> dict[str, list[ast.AST]]:
    """The values each name is given in ``scope`` (``x = …``, ``a, b = …``, ``(x := …)``)."""
    found: dict[str, list[ast.AST]] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for name in (n for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)):
                found.setdefault(name.id, []).append(node.value)
    return found


def _helpers_called(expr: ast.AST, module: str, imports: dict, functions: dict) -> Iterator[tuple[str, str]]:
    """The modules' own functions whose result ``expr`` (in ``module``) may be made of (``_valued``), as (module,
    function): ``f(…)``, ``module.f(…)``, an imported ``f``; ``imports`` and ``functions``: each module's
    (``_imported``, ``_functions``)."""
    for call in (n for n in _valued(expr) if isinstance(n, ast.Call)):
        func, named = call.func, None
        if isinstance(func, ast.Name):
            named = (module, func.id) if func.id in functions[module] else imports[module].get(func.id)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            named = (imports[module].get(func.value.id), func.attr)
        if isinstance(named, tuple) and named[0] in functions and named[1] in functions[named[0]]:
            yield named


def _message_sinks(tree: ast.Module, imported: dict, classes: set[str]) -> Iterator[ast.AST]:
    """What a visitor reads is made of, in ``tree``: a refusal's arguments (one of ``classes``), a toast's
    (``gr.Info``, ``gr.Warning``), and the values a message module's template is filled with (``error_messages.X.format``);
    ``imported``: what ``tree``'s names import (``_imported``)."""
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        func = call.func
        template = isinstance(func, ast.Attribute) and func.attr == "format" and isinstance(func.value, ast.Attribute)
        worded = template and isinstance(func.value.value, ast.Name) and imported.get(func.value.value.id)
        if _last_name(func) in classes | {"Info", "Warning"} or worded in MESSAGE_MODULES:
            yield from [*call.args, *(k.value for k in call.keywords)]


def _returned_parts(expr: ast.AST, methods: bool = False) -> Iterator[ast.AST]:
    """The parts a returned ``expr``'s value is made of: the value itself, either branch of an ``if``, a ``+``'s
    sides, ``or``'s, and with ``methods`` a literal's own method (``"…".join``); not a key looked up or a test
    (``"seconds" in chosen``), nor a name passed to a call, which are no part of the result."""
    if isinstance(expr, ast.IfExp):
        parts = [expr.body, expr.orelse]
    elif isinstance(expr, ast.BinOp | ast.BoolOp):
        parts = expr.values if isinstance(expr, ast.BoolOp) else [expr.left, expr.right]
    elif methods and isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        parts = [expr.func.value]
    else:
        yield expr
        return
    for part in parts:
        yield from _returned_parts(part, methods)


def _returned_literals(expr: ast.AST) -> Iterator[ast.AST]:
    """The literals a returned ``expr`` is made of (``_returned_parts``) that hold a word (two letters running)."""
    for part in _returned_parts(expr, methods=True):
        spelled = _spelled(part)
        yield from [part] if spelled is not None and re.search(r"[^\W\d_]{2}", spelled) else []


def _returned_names(expr: ast.AST) -> Iterator[str]:
    """The names a returned ``expr`` is made of (``_returned_parts``), where a literal would be read."""
    yield from (part.id for part in _returned_parts(expr) if isinstance(part, ast.Name))


def helper_messages(modules: dict[str, ast.Module], classes: set[str]) -> list[str]:
    """Where a function outside the message modules returns text (``module.py:line``) that a visitor reads: one whose
    result a refusal, a toast or a message module's template takes, and each such function its result is made with."""
    imports = {module: _imported(tree, modules) for module, tree in modules.items()}
    functions = {module: _functions(tree) for module, tree in modules.items()}
    asked = set()
    for module, tree in modules.items():
        scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)]
        for scope in [tree, *scopes] if module not in MESSAGE_MODULES else []:
            # A helper's text kept in a name first (``why = base_model.missing()``), in a function.
            bound = _bound(scope) if scope is not tree else {}
            for sink in _message_sinks(scope, imports[module], classes):
                named = [n.id for n in _valued(sink) if isinstance(n, ast.Name)]
                for expr in [sink, *(value for name in named for value in bound.get(name, []))]:
                    asked |= set(_helpers_called(expr, module, imports, functions))
    found, seen = set(), set()
    while asked:
        module, name = asked.pop()
        if (module, name) in seen or module in MESSAGE_MODULES:
            continue
        seen.add((module, name))
        bound = _bound(functions[module][name])
        for node in ast.walk(functions[module][name]):
            if isinstance(node, ast.Return) and node.value is not None:
                # The value returned, and what a name returned was given first (``why = f"…"``, ``return why``).
                for value in [node.value, *(v for kept in _returned_names(node.value) for v in bound.get(kept, []))]:
                    found |= {f"{module}.py:{w.lineno} {name}" for w in _returned_literals(value)}
                    asked |= set(_helpers_called(value, module, imports, functions))
    return sorted(found)


def test_the_helper_finder_follows_a_helper_into_what_a_visitor_reads():
    """Text a helper returns into a refusal, a toast or a template is found where the helper writes it, and so
    is the text of a helper it returns or that is kept in a name first, at the sink or in the helper before it
    returns it; a helper that reads a message module's templates is not, nor one whose result chooses a message as a key
    or in a test, nor a name a helper passes to a call it returns."""
    modules = {
        "a": ast.parse(
            'def which(a, b):\n    return f"Bar {a}" if a == b else f"Bars {a}–{b}"\n'
            'def asked(n):\n    return f"{n} takes of {span(n)}"\n'
            'def span(s):\n    return str(s) + " s" if s < 60 else f"{s // 60} minutes"\n'
            'def why(e):\n    return "No such model." if e else error_messages.HUB_NO_REPO\n'
            'def quiet(c):\n    return error_messages.CHOSEN.format(n=c["seconds"]) if "seconds" in c else ""\n'
            "def told(a, b):\n    return error_messages.BAR_ONE.format(first=a)\n"
            'def kind(e):\n    return "gated" if e else "failed"\n'
            'def engine():\n    return "mlx" if e else "torch"\n'
            'def missing(where):\n    return f"the folder {where} is gone"\n'
            'def kept(n):\n    said = f"{n} bars" if n > 1 else "one bar"\n    return said\n'
            "def device(d):\n    d = d or engine()\n    return Chosen(d)\n"
        ),
        "b": ast.parse(
            "import a\nfrom a import why\n"
            "raise InputError(error_messages.TOO_SHORT.format(which=a.which(1, 2), n=a.asked(2)))\n"
            "gr.Info(why(1))\nx = tips.NOTE.format(which=a.told(1, 1), c=a.quiet({}))\n"
            "raise InputError(error_messages.HUB[a.kind(1)].format(repo='r'))\n"
            "def parts():\n    why, src = a.missing('/x'), 'x' if a.engine() == 'mlx' else 'y'\n"
            "    raise InputError(error_messages.PARTS.format(why=why, source=src))\n"
            "gr.Warning(a.kept(2) + a.device(None).name)\n"
        ),
    }
    modules["b"].body.insert(0, ast.parse("import tooltips as tips").body[0])
    modules["tooltips"] = ast.parse("NOTE = '{which}'")
    found = ["a.py:18 missing", "a.py:2 which", "a.py:20 kept", "a.py:4 asked", "a.py:6 span", "a.py:8 why"]
    assert helper_messages(modules, {"InputError"}) == found


def test_no_helper_returns_a_message_a_visitor_reads_outside_the_message_modules():
    """A helper's text (``hub.why_not``'s, ``records.files_note``'s, ``budget``'s request said, a choice
    of bars or lines, ``base_model``'s why) are a message module's templates: the refusal finder reads a message's own
    literals, so a helper that returns them is followed here, where it is a refusal's, a toast's or a template's
    value (or kept in a name for one first)."""
    modules = _modules()
    found = helper_messages(modules, _refusal_classes(modules))
    assert found == [], "a helper's text outside the message modules:\n" + "\n".join(found)


def stop_titles(tree: ast.Module) -> list[int]:
    """The lines of ``tree`` that make or tell a stop by its title (``STOPPED``, as ``runs`` names it)."""
    return sorted(
        {
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute | ast.Name)
            and (node.attr if isinstance(node, ast.Attribute) else node.id) == "STOPPED"
        }
    )


def test_a_stop_is_made_and_told_in_runs_alone():
    """What a stop is to the page (its error, its title, how it is told and said) is one module's: ``runs``;
    ``runs`` names the title beside its flags, and every other module asks ``runs``."""
    found = [f"{name}.py:{line}" for name, tree in _modules().items() if name != "runs" for line in stop_titles(tree)]
    assert found == []


def record_names(tree: ast.Module) -> dict[str, set[bool]]:
    """Each name ``tree`` binds (a typed argument, an assignment), and whether it is bound to a take's typed record
    (an argument typed ``records.Record``, a ``records.Record.of(…)`` assigned) or to anything else (an argument
    typed ``Any`` says neither: ``song_map`` takes a record without importing ``records``)."""
    found: dict[str, set[bool]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None and ast.unparse(node.annotation) != "Any":
            typed = ast.unparse(node.annotation) in ("records.Record", "Record")
            found.setdefault(node.arg, set()).add(typed)
        elif isinstance(node, ast.Assign):
            made = isinstance(node.value, ast.Call) and ast.unparse(node.value.func) in (
                "records.Record.of",
                "Record.of",
            )
            for name in (n for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)):
                found.setdefault(name.id, set()).add(made)
    return found


def test_a_takes_typed_record_has_one_name_and_the_name_one_meaning():
    """``how_made`` is a take's typed record (``records.Record``: how the take was made) wherever a module holds
    one, and nothing else, so one name never means a record in one module and a dict of text in another."""
    modules = _modules()
    found = sorted(
        f"{name}.py: {bound}"
        for name, tree in modules.items()
        for bound, kinds in record_names(tree).items()
        if (True in kinds and bound != "how_made") or (bound == "how_made" and kinds != {True})
    )
    assert found == []


def test_every_field_a_parameter_declares_is_read():
    """a declaration says what the studio does with a parameter, so each field of ``parameters.Param``
    is read by some module (a field read by nothing would declare what the studio does not do)."""
    import dataclasses

    import parameters

    text = "\n".join(p.read_text() for p in sorted(ROOT.glob("*.py")))
    unread = [f.name for f in dataclasses.fields(parameters.Param) if not re.search(rf"\.{f.name}\b", text)]
    assert not unread, unread


def test_a_declared_parameters_label_is_written_once():
    """A declared parameter's check and its refusal's message are its declaration's alone (``Param.check``):
    no module but ``parameters`` names its label, as ``checks.check_ceiling`` and ``check_finish`` did."""
    import parameters

    for p in parameters.DECLARED:
        named = [path.name for path in sorted(ROOT.glob("*.py")) if f'"{p.label}"' in path.read_text()]
        assert named == ["parameters.py"], (p.name, named)


def _spelled(node: ast.AST) -> str | None:
    """A string as the code spells it: a literal's text, an f-string's with ``{}`` for each value in it."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def test_a_declared_parameters_help_and_field_are_its_declarations_alone():
    """A declared parameter's help (its text in ``tooltips``) is named by no module but ``parameters``,
    and no module builds its field on a music tab by hand (by its id there: ``#gen-steps``, ``#cover-seed`` …):
    ``form_fields.field`` makes it from the declaration, so label, help, range and first value are said once."""
    import parameters
    import tooltips

    # The song's facts every mode shares and the output format among them (a choice each).
    choices = {"audio_format", "key_scale", "time_signature", "vocal_language"}
    assert choices <= {p.name for p in parameters.DECLARED}
    helps = {name for name, words in vars(tooltips).items() if any(words == p.help for p in parameters.DECLARED)}
    # Each by the tabs of the modes that take it (Cover's start, ``#cover-start``, is not Edit's region start).
    prefixes = {"generate": "gen", "cover": "cover", "extend": "extend", "edit": "edit"}
    ids = {
        f"{prefix}-{(p.page or p.name).replace('_', '-')}"
        for p in parameters.DECLARED
        for prefix in ("{}", *(prefixes[mode] for mode in p.modes))
    }
    found = []
    for path in sorted(ROOT.glob("*.py")):
        if path.name == "parameters.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in helps and getattr(node.value, "id", "") in TIPS:
                found.append((path.name, node.lineno, node.attr))
            if isinstance(node, ast.keyword) and node.arg == "elem_id" and _spelled(node.value) in ids:
                found.append((path.name, node.value.lineno, _spelled(node.value)))
    assert found == []


TIPS = ("tips", "tooltips")


def test_what_the_model_decides_is_read_from_the_declaration():
    """the parameters a client leaves to the model that runs (``handlers.MODEL_DEFAULTS``: served as
    None) are the declared ones with a model's default (``parameters.Param.model_default``); no module but ``parameters`` lists
    them by hand (a tuple, list or set of two or more of them alone), so a parameter declared with one is served
    so."""
    import handlers
    import parameters

    decided = {p.name for p in parameters.DECLARED if p.model_default}
    assert set(handlers.MODEL_DEFAULTS) == decided and len(handlers.MODEL_DEFAULTS) == len(decided)
    listed = [
        (path.name, node.lineno)
        for path in sorted(ROOT.glob("*.py"))
        if path.name != "parameters.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Tuple | ast.List | ast.Set)
        and len(node.elts) >= 2
        and {_spelled(element) for element in node.elts} <= decided
    ]
    assert listed == []


# Every message a visitor or an API caller reads is a message module's. A literal of four words or more in any other
# module is one, but where it stands says it is not: a docstring, the server's log, a developer's exception (not a
# refusal), a pattern, the page's code (JS, CSS, markup). What a module says otherwise that no visitor reads, by name:
# ``module.scope`` (its function, or the name a module gives it) and why.
_EXAMPLES = "an example offered to start from: a visitor's own text, not the studio's message"
_LOGGED_ONCE = "a log line said once, kept in a name for the function that returns it to be logged"
_PROMPT = "a model's prompt: the model reads it, no visitor does"
_NAME = "a proper name (a model's, a card's, a preset's): the same in every language of the page"
_LABEL = "a field's or a button's label, where its component is built (as ``_labelled``)"
NOT_VISITOR_MESSAGES = {
    **dict.fromkeys(
        [f"examples.{n}" for n in ("GENERATE", "COVER", "EXTEND", "EDIT", "EDIT_PARTS", "LYRICS")], _EXAMPLES
    ),
    "songwriter.EXAMPLE": _EXAMPLES,
    **dict.fromkeys(("addresses.TRUSTED_ON_SPACE", "addresses.TOLD_APART", "instant.UNTRUSTED_PROXY"), _LOGGED_ONCE),
    # ``Table.load``'s reason a table is ignored, printed to the log alone.
    **dict.fromkeys(
        ("duration_estimate.Table", "duration_estimate._unreadable"),
        "the reason a file of learned durations is ignored, logged",
    ),
    **dict.fromkeys(
        (
            "lyrics.build_messages",
            "plan_format.INSTRUCTION",
            "plan_format.UNDERSTAND_INSTRUCTION",
            "plan_format.INSPIRED_INSTRUCTION",
        ),
        _PROMPT,
    ),
    **dict.fromkeys(("models.VARIANTS", "lora_presets.OFFICIAL", "quota.PUBLISHED_CARD"), _NAME),
    "checks.LOUDNESS_CHOICES": "a choice as the API takes it: the value a caller sends is the text it reads",
    "parameters.DECLARED": "a declared parameter's label and MCP help: its declaration's alone (its label's test)",
    "preparing.plan_args": "a field's label as its check names it (``check_switch``), the label's text",
    "handlers.stems_endpoint": "the stems' sum as their record keeps it: a formula of the record's names",
    **dict.fromkeys(
        (
            "edit_fields.BUTTONS",
            "edit_fields.STYLE_LABELS",
            "edit_fields.LYRICS_LABELS",
            "edit_fields.lines_picker",
            "tabs.edit_tab",
            "part_tasks.CHOICES",
            "variation_row.build",
            "widgets.result_column",
        ),
        _LABEL,
    ),
}
_LOGGED = {"debug", "info", "warning", "error", "exception", "critical", "print", "warn"}
_PATTERNS = {"compile", "match", "fullmatch", "search", "sub", "subn", "findall", "finditer", "split"}


def _scopes(tree: ast.Module) -> dict[int, str]:
    """Each node's scope by id: the module-level function or class it is in, else the name the module gives it."""
    found: dict[int, str] = {}
    for top in tree.body:
        name = getattr(top, "name", None)
        if name is None and isinstance(top, ast.Assign | ast.AnnAssign):
            targets = top.targets if isinstance(top, ast.Assign) else [top.target]
            name = next((n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)), None)
        for node in ast.walk(top):
            found[id(node)] = name or "<module>"
    return found


def _unread(node: ast.AST, parents: dict[int, ast.AST], developers: set[str]) -> bool:
    """Whether where ``node`` stands says no visitor reads it: a docstring, a log line, an assertion, a
    developer's exception (one of ``developers``, never a refusal), a pattern."""
    child, parent = node, parents.get(id(node))
    if isinstance(parent, ast.Expr):
        return True  # a docstring (or a bare string), read by no one but the code's reader
    while parent is not None:
        if isinstance(parent, ast.Assert):
            return True
        if isinstance(parent, ast.Call) and child is not parent.func:
            name = _last_name(parent.func)
            logged = name in _LOGGED and (name in ("print", "warn") or _last_name(parent.func.value) != "gr")
            patterned = name in _PATTERNS and _last_name(getattr(parent.func, "value", None)) == "re"
            if logged or patterned or name in developers:
                return True
        child, parent = parent, parents.get(id(parent))
    return False


def _labelled(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """Whether ``node`` is a component's label (``label=``): the page's layout, built where it stands, as a declared
    parameter's label is its declaration's (``test_a_declared_parameters_label_is_written_once``)."""
    parent = parents.get(id(node))
    return isinstance(parent, ast.keyword) and parent.arg == "label"


def visitor_literals(tree: ast.Module, developers: set[str]) -> list[tuple[int, str, str]]:
    """The literals of ``tree`` of four words or more (an f-string's constant parts together) that a visitor or a
    caller may read: ``(line, scope, text)``; not where ``_unread`` says none does, nor the page's code (``=>``, a
    tag, a rule's braces)."""
    parents = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    scopes, found = _scopes(tree), []
    for node in ast.walk(tree):
        spelled = _spelled(node)
        if spelled is None or isinstance(parents.get(id(node)), ast.JoinedStr):
            continue
        words = [w for w in spelled.split() if re.search(r"[^\W\d_]{2}", w) and not re.search(r"[\d_=|/\\\[\]*]", w)]
        code = re.search(r"=>|</?[a-z]+[ >/]|[{;]\s*\n|^\s*(const|let) ", spelled)
        if len(words) >= 4 and not code and not _labelled(node, parents) and not _unread(node, parents, developers):
            found.append((node.lineno, scopes[id(node)], spelled))
    return found


def _told(modules: dict[str, ast.Module]) -> set[str]:
    """The modules' exceptions whose message is told where they are caught, written into a message (``f"{exc} Nothing was
    saved."``, ``str(exc)``) for anything but the log or Python's own exception: ``runs.Cancelled``'s stop, which
    ``gpu.worker_errors`` says. A catch-all's (``except Exception``) tells whichever it caught: no class by it."""
    python = _python_errors()
    found = set()
    for tree in modules.values():
        for types, name, handling in _carriers(tree):
            if not isinstance(handling, ast.ExceptHandler):
                continue  # a parameter typed so is handed on, not told
            parents = {id(c): p for p in ast.walk(handling) for c in ast.iter_child_nodes(p)}
            for node in ast.walk(handling):
                worded = isinstance(node, ast.JoinedStr) or (
                    isinstance(node, ast.Call) and _last_name(node.func) == "str"
                )
                if worded and name in _said(node) and not _unread(node, parents, python):
                    found |= {_last_name(t) for t in (types.elts if isinstance(types, ast.Tuple) else [types])}
    return found - {None, "Exception", "BaseException"}


def _developer_errors(modules: dict[str, ast.Module]) -> set[str]:
    """Every exception class (Python's and the modules') that is neither a refusal nor told (``_told``): its message
    is a developer's."""
    return _subclasses(modules, _python_errors()) - _refusal_classes(modules) - _subclasses(modules, _told(modules))


def test_the_message_finder_finds_what_a_visitor_reads_and_leaves_the_rest():
    tree = ast.parse(
        'TITLE = "Out of GPU time"\n'
        'def f(n):\n    log.info("made %d takes in all", n)\n    print(f"made {n} takes in all")\n'
        '    assert n, "no takes were made here"\n    raise ValueError(f"{n} is not a take here")\n'
        '    re.compile("^(note|the song is|feel free)")\n    "Docstring words, four or more."\n'
        '    JS = "() => { return the value here; }"\n    gr.Warning(f"Stopped at step {n} of it.", title="x")\n'
        '    return {"error": "This request is larger than the studio accepts."}\n'
        '    gr.Textbox("", label="What is the song about?")\n'
    )
    found = [(line, scope) for line, scope, _ in visitor_literals(tree, {"ValueError"})]
    assert found == [(1, "TITLE"), (10, "f"), (11, "f")]


def test_the_message_finder_reads_a_stop_told_as_a_visitors_message():
    """An exception whose message a handler writes into what it says (``runs.Cancelled``'s, in ``gpu.worker_errors``)
    is no developer's: its message is found where it is raised; one only logged, or caught by a catch-all, is."""
    modules = {
        "a": ast.parse("class Cancelled(Exception): ...\nclass Broken(ValueError): ...\nclass Odd(ValueError): ..."),
        "b": ast.parse(
            "try:\n    f()\nexcept a.Cancelled as exc:\n    raise stopped(f'{exc} Nothing was saved.')\n"
            "except a.Broken as exc:\n    print(f'broken: {exc}')\n"
            "except Exception as exc:\n    errors[kind] = str(exc)\n"
        ),
    }
    developers = _developer_errors(modules)
    assert "Cancelled" not in developers and {"Broken", "Odd", "ValueError"} <= developers
    tree = ast.parse('raise Cancelled(f"Stopped at step {n} of it.")\nraise Broken(f"the {n} file is broken here")')
    assert [line for line, _, _ in visitor_literals(tree, developers)] == [1]


def test_every_message_a_visitor_reads_is_in_a_message_module():
    """A literal of four words or more that a visitor or an API caller may read (a toast's title, a
    progress line, an HTTP answer's body, a result's note) is a message module's, read by name where it is said."""
    modules = _modules()
    developers = _developer_errors(modules)

    def messages(name: str, tree: ast.Module) -> Iterator[str]:
        for line, scope, text in visitor_literals(tree, developers):
            yield from [] if f"{name}.{scope}" in NOT_VISITOR_MESSAGES else [f"{line} {scope}: {text[:60]!r}"]

    found = _outside(modules, MESSAGE_MODULES, messages)
    assert found == [], f"{len(found)} messages a visitor reads outside the message modules:\n" + "\n".join(found)
