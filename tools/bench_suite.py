"""Where README's test command spends its CPU, by kind of process: ``python tools/bench_suite.py [PYTEST ARGS]``
runs ``python -m pytest`` (with the arguments given) while reading every process's CPU from ``/proc`` each half
second, then prints the CPU seconds of the tree below pytest by kind: the pytest-xdist processes, Chromium's
(renderers, browser, GPU, zygotes, utility) and Playwright's driver, the studios forked from ``studio_fork``, and
the new interpreters the tests start. ``/usr/bin/time`` cannot say this: it counts only the children pytest
waits for, not the studios the fork servers reap nor Chromium's processes. A process that lives under half a
second is missed (each such costs under half a CPU second). Linux only. The total is printed against
``BUDGET_CPU_S`` (.ci/run runs README's test command through this), never failed on.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import studio_root

TICK = os.sysconf("SC_CLK_TCK")
EVERY_S = 0.5
# The CPU seconds README's test command should stay at or below on a 2-core machine (docs/performance.md, "The
# suite"): the command is CPU-bound there, so its CPU work, not its wall time, says what a change cost it.
BUDGET_CPU_S = 1500


@dataclass
class Seen:
    """A process as the sampler saw it: its parent, name, command line and the CPU seconds last read."""

    pid: int
    parent: int
    name: str
    command: str
    cpu: float = 0.0


def _read(pid: str) -> tuple[int, str, float, str] | None:
    """(parent, name, CPU seconds, start tick) of ``pid``, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    close = text.rindex(")")
    fields = text[close + 2 :].split()
    return int(fields[1]), text[text.index("(") + 1 : close], (int(fields[11]) + int(fields[12])) / TICK, fields[19]


def sample(seen: dict[str, Seen], done: threading.Event) -> None:
    """Every process's CPU into ``seen`` (by pid and start, so a reused pid is another process) until ``done``."""
    while not done.wait(EVERY_S):
        for pid in filter(str.isdigit, os.listdir("/proc")):
            if (read := _read(pid)) is None:
                continue
            parent, name, cpu, start = read
            key = f"{pid}:{start}"
            if key not in seen:
                try:
                    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                seen[key] = Seen(int(pid), parent, name, command)
            seen[key].cpu = cpu


def kind(process: Seen) -> str:
    """What a process of the suite is, by its command line."""
    command = process.command
    if "chrom" in process.name or "chromium" in command:
        found = re.search(r"--type=([\w-]+)", command)
        return f"Chromium {found.group(1) if found else 'browser'}"
    if "node" in process.name:
        return "Playwright's driver (node)"
    if "exec(eval(sys.stdin.readline()))" in command:  # execnet's bootstrap: how pytest-xdist starts a worker
        return "pytest-xdist process"
    if "studio_fork" in command:
        return "studio forked (studio_fork)"
    if "python" in process.name or "python" in command.split(" ", 1)[0]:
        return "new interpreter: " + " ".join(command.split()[1:3])[:50]
    return process.name


def below(seen: dict[str, Seen], root: int) -> list[Seen]:
    """The processes started under ``root`` (a pid reused later is not taken for a child)."""
    children = collections.defaultdict(list)
    for process in seen.values():
        children[process.parent].append(process)
    tree, todo = [], [p for p in seen.values() if p.pid == root]
    while todo:
        process = todo.pop()
        tree.append(process)
        todo.extend(children[process.pid])
    return tree


def table(tree: list[Seen]) -> list[str]:
    """The CPU seconds by kind, most first, with each kind's share and count."""
    by_kind: dict[str, list[float]] = collections.defaultdict(list)
    for process in tree:
        by_kind[kind(process)].append(process.cpu)
    total = sum(p.cpu for p in tree) or 1.0
    rows = [f"{'CPU s':>9} {'share':>6} {'count':>6}  kind", ""]
    for name, cpus in sorted(by_kind.items(), key=lambda item: -sum(item[1])):
        rows.append(f"{sum(cpus):9.1f} {100 * sum(cpus) / total:5.1f}% {len(cpus):6d}  {name}")
    rows[1] = f"{total:9.1f} {100.0:5.1f}% {len(tree):6d}  all"
    return rows


def main(argv: list[str]) -> int:
    """``python tools/bench_suite.py [PYTEST ARGS]`` runs ``python -m pytest`` and prints its tree's CPU;
    ``python tools/bench_suite.py --below PID`` watches the ``python -m pytest`` started below process ``PID``
    (.ci/run's shell, which runs README's test command as written) until it is sent SIGTERM, then prints the same."""
    if argv[:1] == ["--below"]:
        return _watch(int(argv[1]))
    seen: dict[str, Seen] = {}
    done = threading.Event()
    sampler = threading.Thread(target=sample, args=(seen, done), daemon=True)
    sampler.start()
    started = time.monotonic()
    suite = subprocess.Popen([sys.executable, "-m", "pytest", *argv], cwd=studio_root.ROOT)
    code = suite.wait()
    done.set()
    sampler.join()
    tree = below(seen, suite.pid)
    print(f"\nREADME's test command: exit {code}, {time.monotonic() - started:.1f} s of wall")
    print("\n".join(table(tree)))
    print(budget(sum(p.cpu for p in tree)))
    return code


def pytest_roots(seen: dict[str, Seen], root: int) -> list[int]:
    """The ``python -m pytest`` processes below ``root`` that have no such process above them (xdist's workers,
    and a pytest a test starts, are counted in their controller's tree)."""
    inside = {p.pid: p for p in below(seen, root)}

    def is_pytest(pid: int) -> bool:
        return inside[pid].command.split()[1:3] == ["-m", "pytest"]

    def above(pid: int) -> bool:
        parent = inside[pid].parent
        while parent in inside and parent != root:
            if is_pytest(parent):
                return True
            parent = inside[parent].parent
        return False

    return [pid for pid in inside if is_pytest(pid) and not above(pid)]


def _watch(root: int) -> int:
    seen: dict[str, Seen] = {}
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    started = time.monotonic()
    sample(seen, done)
    tree = [p for pid in pytest_roots(seen, root) for p in below(seen, pid)]
    print(f"\nREADME's test command: {time.monotonic() - started:.1f} s watched")
    print("\n".join(table(tree)))
    print(budget(sum(p.cpu for p in tree)))
    return 0


def budget(cpu_s: float) -> str:
    """The suite's CPU work said against ``BUDGET_CPU_S``."""
    if cpu_s <= BUDGET_CPU_S:
        return f"CPU work: {cpu_s:,.0f} CPU s, within the {BUDGET_CPU_S:,} CPU s it should stay at or below."
    return (
        f"CPU work: {cpu_s:,.0f} CPU s, OVER the {BUDGET_CPU_S:,} CPU s it should stay at or below: the table above "
        "says which processes spent it, pytest's --durations which tests."
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
