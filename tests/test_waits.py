"""The tests wait on the studio's answer, never on a clock a busy machine can pass (AGENTS.md): every HTTP
call a test makes itself gives httpx conftest's ``CLIENT_TIMEOUT_S``, not httpx's 5 s default, which a loaded
run can exceed (test_page_answers' deep link, a read timed out at load 8); and urllib's ``urlopen``, which
has no default of its own, the same name, not a number of seconds typed beside it (10 s can fail the same
way)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

CALLS = {"get", "post", "put", "delete", "stream", "request"}


def _impatient(source: str) -> list[int]:
    """The lines of ``httpx.<call>(…)`` and ``httpx.Client(…)`` that name no ``timeout``, and of
    ``urllib.request.urlopen(…)`` whose timeout is not a name (a number typed there: ``timeout=10``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner, named = node.func.value, {keyword.arg for keyword in node.keywords}
        if isinstance(owner, ast.Name) and owner.id == "httpx" and node.func.attr in CALLS | {"Client"}:
            found += [] if "timeout" in named else [node.lineno]
        elif node.func.attr == "urlopen" and ast.unparse(owner) == "urllib.request":
            given = [k.value for k in node.keywords if k.arg == "timeout"] + node.args[2:3]
            found += [] if given and isinstance(given[0], ast.Name | ast.Attribute) else [node.lineno]
    return sorted(found)


def test_the_finder_finds_a_call_that_waits_on_httpxs_default():
    source = (
        "import httpx\n"
        "httpx.get(url)\n"
        "httpx.post(url, json={}, timeout=CLIENT_TIMEOUT_S)\n"
        "with httpx.stream('GET', url) as s: pass\n"
        "httpx.Client(base_url=url)\n"
        "urllib.request.urlopen(url, timeout=10)\n"
        "urllib.request.urlopen(url)\n"
        "urllib.request.urlopen(url, None, 10)\n"
        "urllib.request.urlopen(url, timeout=CLIENT_TIMEOUT_S)\n"
    )
    assert _impatient(source) == [2, 4, 5, 6, 7, 8]


def test_every_http_call_of_the_tests_waits_as_long_as_their_clients():
    impatient = {
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "tests").glob("*.py"))
        for line in _impatient(Path(path).read_text())
    }
    assert not impatient, sorted(impatient)
