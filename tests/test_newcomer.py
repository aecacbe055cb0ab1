"""README's two commands as a newcomer meets them on a fresh machine: no Chromium, no GPU, no Hub.

The test command must pass there as written: every browser test, in every file, skipped with one line
saying why; and CI runs exactly that command, with a missing browser made a failure, so CI is never
greener than a newcomer.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT


def _readme_block(index: int) -> str:
    """The ``index``-th fenced bash block of README.md (0: run the studio, 1: run the tests)."""
    return re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)[index].strip()


def _without_chromium(*args: str) -> subprocess.CompletedProcess:
    """pytest in a process of its own, on this suite, where the browser named is not there."""
    env = {k: v for k, v in os.environ.items() if k not in ("ACE_STUDIO_REQUIRE_BROWSER", "PYTEST_XDIST_WORKER")}
    env["ACE_STUDIO_CHROMIUM"] = "/nonexistent/chromium"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_without_chromium_every_browser_test_is_skipped_with_one_line_saying_why():
    """Every test that launches Chromium (whatever its file) runs through conftest's ``browser``
    fixture, and with no Chromium each one is skipped, none errors, and the summary says why once."""
    launching = [
        path.name
        for path in sorted((ROOT / "tests").glob("*.py"))
        if path.name not in ("conftest.py", "test_newcomer.py") and "sync_playwright" in path.read_text()
    ]
    assert launching == [], f"launch Chromium through conftest's browser fixture, not in {launching}"
    done = _without_chromium("-m", "browser", "tests")
    out = done.stdout + done.stderr
    skipped = re.search(r"(\d+) skipped", out)
    assert done.returncode == 0 and skipped and int(skipped.group(1)) >= 50, out[-3000:]
    assert not re.search(r"\d+ (failed|errors?)\b", out), out[-3000:]
    why = "no Chromium at /nonexistent/chromium (ACE_STUDIO_CHROMIUM) — apt-get install chromium"
    said = [line for line in out.splitlines() if "browser tests skipped" in line]
    assert said == [f"browser tests skipped ({skipped.group(1)}): {why}"], out[-3000:]


def test_ci_runs_readmes_test_command_and_fails_without_a_browser():
    """.ci/run makes a missing browser a failure, then runs README's test command exactly as written."""
    command = _readme_block(1)
    assert command == "pip install -r requirements-dev.txt && python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    required = ci.index(next(line for line in ci if "ACE_STUDIO_REQUIRE_BROWSER=1" in line))
    assert line_after(ci, required, command), ".ci/run must run README's test command after requiring the browser"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider", "--co", "tests/test_lrc.py"],
        cwd=ROOT,
        env={**os.environ, "ACE_STUDIO_REQUIRE_BROWSER": "1", "ACE_STUDIO_CHROMIUM": "/nonexistent/chromium"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0 and "ACE_STUDIO_REQUIRE_BROWSER=1, and no Chromium at" in done.stderr, done.stderr


def line_after(lines: list[str], index: int, text: str) -> bool:
    """Whether a line after ``lines[index]`` is exactly ``text``."""
    return any(line.strip() == text for line in lines[index + 1 :])
