"""What an open, idle page costs: ``python tools/bench_idle.py`` serves the studio on tiny random models
(README's command), opens N pages in headless Chromium (Debian's, never a downloaded one), lets them sit
idle after their load, and prints the server's CPU seconds (its process and its children) per idle page
per minute, Chromium's beside it, and each page's requests per minute by route, read in Chromium from the
DevTools protocol: requests sent, and the chunks and messages of the streams it holds open (the heartbeat).
The server alone (no page) is measured first and taken off. ``--root`` measures another checkout of the
studio (the commit before a change) in the same minutes, ``--rounds`` repeats each.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import bench_join
import studio_root

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
    "--mute-audio",
]  # same as tests/conftest.py
TICK = os.sysconf("SC_CLK_TCK")
CHECKING = "Checking the model"  # the status line before the page's first answer (studio_words)


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its waited-for children), or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / TICK


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and every live process under it."""
    parents: dict[int, list[int]] = collections.defaultdict(list)
    seconds: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            parents[found[0]].append(int(entry.name))
            seconds[int(entry.name)] = found[1]
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += seconds.get(pid, 0.0)
        todo.extend(parents.get(pid, []))
    return total


def make_models(folder: Path) -> Path:
    """The tiny music pipeline and planner, written once into ``folder``."""
    if not (folder / "music" / "model_index.json").exists():
        studio_root.reach()
        import random_models

        random_models.save_pipeline(folder / "music")
        random_models.save_planner_lm(folder / "planner")
    return folder


def wait_until_idle(pid: int, most: float = 0.05, span: float = 3.0) -> None:
    """Until the server's start-up work in the background (its libraries' imports) is over: a span of
    ``span`` s in which it used under ``most`` of a core."""
    while True:
        before = tree_cpu(pid)
        time.sleep(span)
        if tree_cpu(pid) - before < most * span:
            return


def route(url: str) -> str:
    """A request's route, its session and event ids left out."""
    path = re.sub(r"^https?://[^/]+", "", url).split("?")[0]
    path = re.sub(r"/(heartbeat|stream)/[^/]+", r"/\1/…", path)
    return re.sub(r"/file=.*|/assets/.*|/static/.*", "/(files)", path)


class Counted:
    """One page's traffic, as Chromium sees it: requests sent and stream chunks received, by route."""

    def __init__(self, context, page) -> None:
        self.sent: collections.Counter = collections.Counter()
        self.chunks: collections.Counter = collections.Counter()
        self.urls: dict[str, str] = {}
        self.on = False
        cdp = context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.dataReceived", self._chunk)
        cdp.on("Network.eventSourceMessageReceived", self._chunk)
        cdp.send("Network.enable")

    def _sent(self, event: dict) -> None:
        request = event["request"]
        self.urls[event["requestId"]] = route(request["url"])
        if self.on:
            self.sent[f"{request['method']} {route(request['url'])}"] += 1

    def _chunk(self, event: dict) -> None:
        if self.on:
            self.chunks[f"chunk {self.urls.get(event['requestId'], '?')}"] += 1


def idle_window(browser, url: str, server: int, n: int, seconds: float) -> dict:
    """``n`` pages opened and loaded, then ``seconds`` idle: the server's and Chromium's CPU seconds over
    the span, and the pages' requests and stream chunks by route, all pages together."""
    pages = []
    for _ in range(n):
        context = browser.new_context()
        page = context.new_page()
        counted = Counted(context, page)
        page.goto(url)
        page.locator("#studio-status").filter(has_not_text=CHECKING).wait_for(timeout=120_000)
        pages.append((context, counted, page))
    # Sync Playwright hands on the DevTools events only while it is waited on: a page's own wait, not a sleep.
    wait = pages[0][2].wait_for_timeout if pages else (lambda ms: time.sleep(ms / 1000))
    wait(5_000)  # the load's own late requests (the first tick, the theme's scripts) left out
    for _, counted, _ in pages:
        counted.on = True
    me = os.getpid()
    started, server_cpu, all_cpu, mine_at_start = time.monotonic(), tree_cpu(server), tree_cpu(me), _stat(me)[1]
    wait(seconds * 1000)
    span = time.monotonic() - started
    server_s = tree_cpu(server) - server_cpu
    mine_s = tree_cpu(me) - all_cpu - (_stat(me)[1] - mine_at_start)
    traffic: collections.Counter = collections.Counter()
    for context, counted, _ in pages:
        traffic.update(counted.sent)
        traffic.update(counted.chunks)
        context.close()
    # This script's tree holds the server, Chromium and Playwright's driver: the last two are the rest of it.
    return {"span": span, "server": server_s, "chromium": mine_s - server_s, "traffic": traffic}


def measure(root: Path, models: Path, counts: list[int], seconds: float) -> list[dict]:
    """One served studio at ``root``: a window with no page, then one for each page count."""
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="ace-idle-"))
    proc, url, _ = bench_join.serve(root, models, work)
    wait_until_idle(proc.pid)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                return [{"n": n, **idle_window(browser, url, proc.pid, n, seconds)} for n in [0, *counts]]
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def report(name: str, rounds: list[list[dict]]) -> str:
    """Medians over rounds: per idle page per minute, the server alone taken off."""
    lines = [
        f"## {name}",
        "| pages | server CPU s / page / min | Chromium CPU s / page / min | requests / page / min |",
    ]
    lines.append("|---|---|---|---|")
    alone = statistics.median(r[0]["server"] * 60 / r[0]["span"] for r in rounds)
    lines_routes = []
    for i, n in enumerate(w["n"] for w in rounds[0]):
        per_min = [60 / r[i]["span"] for r in rounds]
        if n == 0:
            lines.append(f"| 0 (server alone, CPU s / min) | {alone:.3f} | — | — |")
            continue
        server = statistics.median((r[i]["server"] * m - alone) / n for r, m in zip(rounds, per_min, strict=True))
        chromium = statistics.median(r[i]["chromium"] * m / n for r, m in zip(rounds, per_min, strict=True))
        routes = collections.Counter()
        for r, m in zip(rounds, per_min, strict=True):
            for key, count in r[i]["traffic"].items():
                routes[key] += count * m / n / len(rounds)
        sent = sum(v for k, v in routes.items() if not k.startswith("chunk"))
        lines.append(f"| {n} | {server:.4f} | {chromium:.3f} | {sent:.1f} |")
        said = ", ".join(f"{k} {v:.1f}" for k, v in sorted(routes.items(), key=lambda kv: -kv[1]))
        lines_routes.append(f"- {n} page(s), per page per minute: {said or 'nothing'}")
    return "\n".join([*lines, "", *lines_routes])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[1, 8], help="page counts (default 1 8)")
    parser.add_argument("--seconds", type=float, default=60.0, help="idle span measured (default 60)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--root", type=Path, action="append", default=[], help="another checkout (repeatable)")
    parser.add_argument("--models", type=Path, default=Path(tempfile.gettempdir()) / "ace-idle-models")
    args = parser.parse_args()
    models = make_models(args.models)
    roots = [studio_root.ROOT, *args.root]
    found: dict[Path, list] = {root: [] for root in roots}
    for _ in range(args.rounds):  # checkouts one after another within each round: the same minutes, the same load
        for root in roots:
            found[root].append(measure(root, models, args.pages, args.seconds))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    for root in roots:
        print(report("this checkout" if root == studio_root.ROOT else str(root), found[root]))


if __name__ == "__main__":
    main()
