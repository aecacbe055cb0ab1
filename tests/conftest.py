"""Shared fixtures: tiny random ACE-Step checkpoints built here, and a running studio.

Nothing is downloaded: ``HF_HUB_OFFLINE`` is set so any accidental Hub access fails loudly.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import importlib.abc
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The studio's modules and the tools beside them (random_models …) import by name: pyproject's
# ``pythonpath`` puts both folders on the path for pytest.
os.environ["HF_HUB_OFFLINE"] = "1"
# Gradio's upload folder, this run's own (read when Gradio is imported, so set before any test module
# imports it; studios the tests start inherit it): the shared default (/tmp/gradio) holds other runs'
# uploads too, which the upload quota counts (and may remove under a run that is using them).
# Under pytest-xdist each worker makes its own: workers inherit the controller's environment, and two
# workers' studios sharing one folder would count (and clean) each other's uploads.
_RUNNER = os.environ.get("PYTEST_XDIST_WORKER", "controller")
if "GRADIO_TEMP_DIR" not in os.environ or os.environ.get("ACE_STUDIO_TESTS_TEMP_OF", _RUNNER) != _RUNNER:
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="ace-studio-tests-gradio-")
    os.environ["ACE_STUDIO_TESTS_TEMP_OF"] = _RUNNER
    atexit.register(shutil.rmtree, os.environ["GRADIO_TEMP_DIR"], ignore_errors=True)
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# One math thread (read when torch is imported; studio processes the tests start inherit it): the tiny
# models' work is many small operations, and torch's thread pool spinning for them on a loaded 2-core
# machine made one planner test take 122 s instead of 3 s.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# No planner unless a test sets one up (the tiny one below): the default would be a download.
os.environ["ACE_STUDIO_PLANNER_MODEL"] = "none"
# Every request declares the prior (``duration_estimate``): a test that asserts a declared duration must not depend on
# which tests ran before it in the same process or studio. The duration estimate's own tests (test_duration_estimate.py) learn.
os.environ["ACE_STUDIO_DURATION_ESTIMATE"] = "prior"


def _one_trusted_certificate() -> None:
    """Every connection the tests make is plain HTTP to this machine, yet each httpx client (and
    gradio_client makes one per call: thousands in the floods) loads certifi's ~140 authorities into
    a new SSL context, 26 ms of CPU each: about 175 s of the suite's CPU on a 2-core machine. Trusting
    one of them instead (httpx and OpenSSL read ``SSL_CERT_FILE``; studios the tests start inherit it)
    costs 0.5 ms. Nothing here speaks TLS; a connection that tried would fail, as it should offline.
    Set whatever the machine sets (this one points it at its whole system bundle)."""
    if Path(os.environ.get("SSL_CERT_FILE", "")).name.startswith("ace-studio-tests-ca-"):
        return  # a pytest-xdist worker: the controller's file
    import certifi

    bundle = Path(certifi.where()).read_text()
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    first = bundle[bundle.index(begin) : bundle.index(end) + len(end)] + "\n"
    fd, path = tempfile.mkstemp(prefix="ace-studio-tests-ca-", suffix=".pem")
    with os.fdopen(fd, "w") as out:
        out.write(first)
    os.environ["SSL_CERT_FILE"] = path
    atexit.register(lambda: Path(path).unlink(missing_ok=True))


_one_trusted_certificate()

# One HTTP exchange of a test's gradio_client may take this long. The client's own default (httpx's 5 s)
# is a clock load can pass: a served studio's answer to a join, an upload or the page's config came past
# it on a busy machine and failed tests with ReadTimeout before anything ran. A test waits on
# the answer instead; this bound only ends a test whose studio never answers. Clients the studio makes
# itself (the MCP endpoint's, in a studio served in this process) keep the library's default, as they would
# anywhere; a test that means the default (README's snippet) passes it.
CLIENT_TIMEOUT_S = 300.0


def sweep_client_folders(folder: Path, untouched_s: float) -> int:
    """gradio_client downloads every file a test receives through a folder of its own in the machine's
    temp folder, named by 20 random bytes, and leaves it there, empty (``Endpoint._download_file``): about
    327 a run, 10,567 found here after a day of runs. Such folders in ``folder`` go that are empty and
    untouched for ``untouched_s`` (any empty folder of 40 lower-case hex digits: that is gradio_client's
    name, 20 random bytes); how many went."""
    gone, cutoff = 0, time.time() - untouched_s
    for entry in os.scandir(folder):
        if len(entry.name) == 40 and all(c in "0123456789abcdef" for c in entry.name):
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.rmdir(entry.path)  # only an empty folder can go
                    gone += 1
    return gone


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Once every process is done (pytest-xdist's controller, or the one process of ``-n 0``), the client
    folders untouched for longer than a test's client may wait before it writes in one (a connection from
    the pool, the connection, the answer's first byte: ``CLIENT_TIMEOUT_S`` each): one that a run beside
    this one made and is waiting to fill is younger. The last 15 minutes' stay for the next run's end."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        sweep_client_folders(Path(tempfile.gettempdir()), 3 * CLIENT_TIMEOUT_S)


# ---------------------------------------------------------------- changes made once a module is imported
#
# conftest changes two of the studio's modules and a library for the tests (the client's patience, the tiny models
# kept a process). Each change is made as its module is imported (``after_import``), never by conftest itself: a
# test file that imports none of them (test_beats, test_lrc …) does not pay for Gradio's import (3-4 s of CPU, in
# pytest's process) before its first test.
_AFTER_IMPORT: dict[str, list[Callable[[], None]]] = {}


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a module waited on (``after_import``) it takes the spec the other finders give and
    has the module's loader run the waiting changes once the module's own code has run."""

    def find_spec(self, name: str, path, target=None):
        if name not in _AFTER_IMPORT:
            return None
        for finder in sys.meta_path:
            spec = None if finder is self else getattr(finder, "find_spec", lambda *_: None)(name, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        run = spec.loader.exec_module

        def exec_module(module) -> None:
            run(module)
            for change in _AFTER_IMPORT.pop(name, ()):  # not before: a spec may be found and never loaded
                change()

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AfterImport())


def after_import(name: str, change: Callable[[], None]) -> None:
    """``change()`` once module ``name`` is imported in this process (at once where it is already)."""
    if name in sys.modules:
        change()
    else:
        _AFTER_IMPORT.setdefault(name, []).append(change)


def _patient_test_clients() -> None:
    import gradio_client

    made = gradio_client.Client.__init__

    def init(self, *args, httpx_kwargs=None, **kwargs):
        caller = sys._getframe(1).f_globals.get("__file__") or ""
        if httpx_kwargs is None and Path(caller).parent == ROOT / "tests":
            httpx_kwargs = {"timeout": CLIENT_TIMEOUT_S}
        made(self, *args, httpx_kwargs=httpx_kwargs, **kwargs)

    gradio_client.Client.__init__ = init


after_import("gradio_client", _patient_test_clients)


def pytest_configure(config: pytest.Config) -> None:
    """A run that must have its browser tests (``ACE_STUDIO_REQUIRE_BROWSER=1``) stops at once without
    Chromium. Once per run, before pytest-xdist starts its workers: librosa's numba functions compiled into
    their cache beside librosa, if nothing is cached there yet (a fresh virtual environment, as CI's).
    Compiling them takes about 43 s of CPU; left to the first upload each process analyses, two
    workers and their studios compiled at once, and a page waiting on its first analysis ran out of
    time. Afterwards every process loads them from the cache (about 6 s for its first analysis)."""
    if CHROMIUM is None and os.environ.get("ACE_STUDIO_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"ACE_STUDIO_REQUIRE_BROWSER=1, and {NO_CHROMIUM}")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    spec = importlib.util.find_spec("librosa")
    if spec is None or not spec.submodule_search_locations:
        return
    if any(Path(next(iter(spec.submodule_search_locations))).rglob("*.nbi")):
        return
    import numpy as np

    import analysis

    song = np.random.default_rng(0).standard_normal((2, 48000 * 12)).astype(np.float32) * 0.1
    analysis.measure(song)


# pytest-xdist hands out files in collection order (``--no-loadscope-reorder``), so they are
# collected longest first: the last ones out are short and both processes end together (xdist's own
# order, by test count, sends a 56 s file of six tests out last, 45 s after the other process has
# ended). The ten longest lead in an order chosen so that, with two processes (a 2-core machine, as
# CI's), the Chromium files (browser, page, words) seldom run beside another Chromium file or beside
# the files that time a victim's song against a solo one (shared_space, gate, fair_share): beside
# test_browser's first page loads a victim's take took 1.77 s against a 0.75 s solo, over the bound of
# twice. Simulated on the seconds of a two-process run (shared_space 116, gate 66, fair_share 64,
# browser 157, planner 79, api 41, page 138, zerogpu 101, upstream 55, words 70): 37 s of such overlap
# against 211 s in xdist's order, both processes ending at 588 s. test_upstream goes out before
# test_zerogpu, beside test_page (each about 0.8 of a core): with test_zerogpu there the machine was
# 20-40 % idle for 45 s. The rest follow by their seconds in a quiet two-process run (each file's tests'
# wall time; docs/performance.md, "The suite's time"). A new file counts 30 s.
LEAD = (
    "test_shared_space",
    "test_gate",
    "test_fair_share",
    "test_browser",
    "test_planner",
    "test_api",
    "test_page",
    "test_upstream",
    "test_zerogpu",
    "test_words",
)
SECONDS = {
    "test_duration_estimate": 52,
    "test_mcp": 44,
    "test_newcomer": 43,
    "test_part_tasks": 43,
    "test_join": 34,
    "test_graphs": 33,
    "test_take_latents": 32,
    "test_stream_blip": 29,
    "test_take_morph": 28,
    "test_shared_files": 28,
    "test_in_time": 45,
    "test_loops": 27,
    "test_stems": 26,
    "test_voice": 26,
    "test_my_takes": 24,
    "test_cost": 24,
    "test_variations": 24,
    "test_presets": 24,
    "test_quota": 24,
    "test_song_map": 20,
    "test_bar_marks": 18,
    "test_finish": 15,
    "test_audio_modes": 15,
    "test_edit_lines": 14,
    "test_hostile": 13,
    "test_sampler": 12,
    "test_app": 11,
    "test_offload": 11,
    "test_bench": 10,
    "test_generate": 9,
    "test_layout": 9,
    "test_songwriter": 8,
    "test_lora": 7,
    "test_space": 6,
    "test_request": 5,
    "test_backend": 4,
    "test_describe": 4,
    "test_models": 4,
    "test_lyrics": 3,
    "test_band": 8,
    "test_lyrics_mlx": 3,
    "test_lrc": 2,
    "test_defaults": 2,
    "test_page_answers": 2,
    "test_analysis": 1,
    "test_rounding": 1,
    "test_cost_line": 1,
    "test_gpu_line": 30,
    "test_file_lengths": 8,
    "test_page_fields": 45,
    "test_real_record": 30,
}


# ---------------------------------------------------------------- the browser tests' Chromium

# Debian's Chromium (``apt-get install chromium``), or the one ACE_STUDIO_CHROMIUM names, through
# Playwright's ``executable_path``; never a browser Playwright downloads. A browser test is any test that
# uses the ``browser`` fixture below (itself or through another fixture: ``page``, ``site``'s tabs …):
# each is marked ``browser`` at collection, and where there is no Chromium every one of them is skipped,
# in every file, and the run's summary says so in one line. ACE_STUDIO_REQUIRE_BROWSER=1 (.ci/run)
# makes a missing browser stop the run instead: CI is never greener than a fresh machine.
TIMEOUT_MS = 120_000
# Headless without a GPU, a sandbox or background traffic: CI machines have none of them to spare.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
    "--mute-audio",
]
SHOTS = Path(os.environ.get("ACE_STUDIO_SCREENSHOTS", ROOT / "test-screenshots"))
# Pictures of the page are for a person (after a change to the page: SKILLS.md); no test looks at one, and
# each costs 0.1-0.3 s of Chromium. They are taken where ACE_STUDIO_SCREENSHOTS names their folder: how
# each browser test left its page (``leave``) and what a test pictures as it goes (``picture``). A failed
# test's page is pictured whatever this says.
EVERY_SHOT = bool(os.environ.get("ACE_STUDIO_SCREENSHOTS"))


def picture(target, path: Path, **options) -> None:
    """A picture of ``target`` (a Playwright page or locator; ``options`` its ``screenshot``'s) at
    ``path``, where pictures are asked for (``EVERY_SHOT``)."""
    if EVERY_SHOT:
        path.parent.mkdir(parents=True, exist_ok=True)
        target.screenshot(path=str(path), **options)


INSTALL = "apt-get install chromium"


def find_chromium() -> tuple[str | None, str | None]:
    """(the Chromium the browser tests launch, None), or (None, why there is none and what to do)."""
    if importlib.util.find_spec("playwright") is None:
        return None, "Playwright is not installed — pip install -r requirements-dev.txt"
    named = os.environ.get("ACE_STUDIO_CHROMIUM", "").strip()
    if named:
        found = shutil.which(named)  # a path (checked as it is) or a name on the PATH
        return (found, None) if found else (None, f"no Chromium at {named} (ACE_STUDIO_CHROMIUM) — {INSTALL}")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return (found, None) if found else (None, f"no chromium on the PATH — {INSTALL}")


CHROMIUM, NO_CHROMIUM = find_chromium()
BROWSER_SKIPPED = f"a browser test, and {NO_CHROMIUM}"


@pytest.fixture(scope="session")
def _chromium():
    """Chromium, headless, once a test process: a launch and Playwright's driver cost 0.75 s of CPU, and a
    context's first load of the page 0.65 s more than its next (the HTTP cache, V8's code in it), once a file
    before. While Playwright's sync API is started its event loop runs in this thread, where asyncio then
    refuses to run another: a test that runs one does it in a thread of its own (``in_a_thread``). Playwright's
    ``expect`` waits as long as a page's own waits (``TIMEOUT_MS``), not its 5 s default, which a loaded run
    passed (a section drawn as chosen after its click)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        _KEPT_TABS.clear()
        chromium.close()


@pytest.fixture(scope="module")
def browser(_chromium):
    """Chromium for a test file (every test that asks for it is a browser test). When the file ends its kept
    tabs' pages are closed (a page left open costs Chromium 1-9 % of a core) and their contexts kept, so the
    next file's first load finds the page's scripts in their cache. A visit never left (its load or its
    fixture failed before the test) has its context closed: nothing of a file outlives it but the kept tabs."""
    yield _chromium
    for tab in _KEPT_TABS.values():
        with contextlib.suppress(Exception):  # a page that crashed is closed already
            tab.page.close()
    for tab in _VISITS:
        with contextlib.suppress(Exception):
            tab.context.close()
    _VISITS.clear()


T = TypeVar("T")


def in_a_thread(run: Callable[..., T], *args: object) -> T:
    """``run(*args)`` (``asyncio.run``, ``anyio.run``) in a thread of its own: this one may hold Playwright's
    running event loop (``_chromium``)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run, *args).result()


# ---------------------------------------------------------------- a visit: a fresh page in a kept tab
#
# This page's load is about 1.3 s of Chromium's CPU (its ~100 modules, 3,000 nodes), and a new context and
# tab for it about 0.6 s more on a loaded machine, once for each test. ``visit`` keeps the tab (and its
# context: one for each set of context options, a phone's or a desk's) from one test to the next in a
# file, and the context from one file to the next (``browser``); what a test gets is still a new visitor's
# page: the page loaded anew (a new Gradio session), in a tab whose cookies, localStorage, sessionStorage and
# IndexedDB were emptied when the last test left it; only the HTTP cache is shared, as a returning visitor's. A tab is not kept (its context is closed)
# after a failed test, or where the test took it to a second site (its storage there is not emptied).
# What Playwright keeps on the page object goes with it: a test that adds a listener (``page.on``) or a
# route removes it when done, or opens a context of its own.


@dataclasses.dataclass(eq=False)
class Visit:
    """One test's page: ``page`` (Playwright's) in a tab ``visit`` may keep for the next test."""

    key: tuple
    context: object
    page: object
    sites: set[str] = dataclasses.field(default_factory=set)  # where the test took the tab (origins)
    failed: bool = False
    debugger: object = None  # the tab's DevTools session, its debugger on (``_debugged``)


_KEPT_TABS: dict[tuple, Visit] = {}
_VISITS: list[Visit] = []


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _went(tab: Visit, frame) -> None:
    if frame.parent_frame is None:  # the tab's own page, not a frame inside it
        tab.sites.add(_origin(frame.url))


def visit(browser, url: str, **context_options) -> Visit:
    """``url`` loaded anew in a tab with nothing stored, kept from an earlier test where there is one for
    the same ``context_options`` (``browser.new_context``'s); ``leave`` it when done."""
    key = (id(browser), repr(sorted(context_options.items())))
    kept = _KEPT_TABS.pop(key, None)
    if kept is None:
        kept = Visit(key, browser.new_context(**context_options), None)
    if kept.page is None or kept.page.is_closed():  # a new tab, or one kept from a file before (``browser``)
        kept.page = kept.context.new_page()
        kept.page.set_default_timeout(TIMEOUT_MS)
        kept.debugger = _debugged(kept.page)
        kept.page.on("framenavigated", lambda frame, tab=kept: _went(tab, frame))
    kept.sites.clear()
    kept.failed = False
    _VISITS.append(kept)
    kept.page.goto(url)
    return kept


# How long a failed test's page has to answer (a script run, a picture) before it is called stuck: a page that
# does not once cost its test's teardown the whole TIMEOUT_MS again (a full-page picture can wait 120 s).
ANSWER_MS = 10_000


def _answers(page) -> bool:
    """Whether ``page`` runs a script within ``ANSWER_MS``: a page whose renderer is stuck does not."""
    try:
        page.wait_for_function("true", timeout=ANSWER_MS)
    except Exception:  # stuck, crashed or closed: the same answer for the failure's report
        return False
    return True


def _debugged(page) -> object:
    """A DevTools session on ``page`` with its debugger on, from the tab's start: a renderer stuck in a script
    answers no command but a pause (V8 interrupts the script for it), and the debugger cannot be turned on
    once the script is stuck (``Debugger.enable`` waits on it). About 0.1 s of a renderer's CPU a page load."""
    session = page.context.new_cdp_session(page)
    session.send("Debugger.enable")
    return session


# What a paused frame named ``dispatch`` (Gradio's, which runs an event's listeners) was given: the event, so a
# page stuck in an event storm says which event (a Send to Extend's page can loop in Gradio's dispatch).
DISPATCHED = "(() => { try { return JSON.stringify(arguments[0]).slice(0, 300); } catch (e) { return String(e); } })()"
# How many times a stuck page is paused (resumed between, ``ANSWER_MS / 10`` apart): one loop, or many events.
PAUSES = 3


def _stuck_at(done: Visit) -> str:
    """Where a page that does not answer is: its script's stack, paused (``_debugged``), or that no script runs;
    paused ``PAUSES`` times, with each event a ``dispatch`` frame was running."""
    paused: list[dict] = []
    done.debugger.on("Debugger.paused", lambda event: paused.append(event))
    events: list[str] = []
    for _ in range(PAUSES):
        try:
            if paused:  # resumed, and given time to run on before the next pause
                done.debugger.send("Debugger.resume")
                done.page.wait_for_timeout(ANSWER_MS // 10)
            heard = len(paused)
            done.debugger.send("Debugger.pause")
            for _ in range(ANSWER_MS // 100):
                if len(paused) > heard:
                    break
                done.page.wait_for_timeout(100)  # Playwright's own clock: it hears the pause meanwhile
            if len(paused) == heard:
                break
            events += _dispatched(done, paused[-1]["callFrames"])
        except Exception:  # a crashed renderer or a closed tab: said as what was heard so far
            break
    if not paused:
        return "no script of its was running (its layout or paint, or a crashed renderer)"
    frames = [
        f"{f['functionName'] or '(anonymous)'} ({f['url'] or 'inline'}:{f['location']['lineNumber'] + 1}:"
        f"{f['location'].get('columnNumber', 0) + 1})"
        for f in paused[0]["callFrames"][:12]
    ]
    said = "its script was at " + " < ".join(frames)
    return said + (f"; dispatching, over {len(paused)} pauses: " + ", ".join(dict.fromkeys(events)) if events else "")


def _dispatched(done: Visit, frames: list[dict]) -> list[str]:
    """The event the innermost frame named ``dispatch`` in ``frames`` was given, as JSON (none: no such frame)."""
    for frame in frames:
        if frame["functionName"] == "dispatch":
            answer = done.debugger.send(
                "Debugger.evaluateOnCallFrame",
                {"callFrameId": frame["callFrameId"], "expression": DISPATCHED, "returnByValue": True},
            )
            return [str(answer.get("result", {}).get("value"))]
    return []


def leave(done: Visit, shot: Path, full_page: bool) -> None:
    """The test is over: a picture of the page where it failed (or every one asked for, ``EVERY_SHOT``);
    the tab emptied and kept for the next test, or closed where it cannot be trusted to be empty. A failed
    test's page that does not answer is said to be stuck, with where its script was (``_stuck_at``)."""
    _VISITS.remove(done)
    page = done.page
    if done.failed and not _answers(page):
        print(
            f"The page did not answer in {ANSWER_MS / 1000:g} s: its renderer was busy or stuck ({page.url}); "
            f"{_stuck_at(done)}."
        )
    if done.failed or EVERY_SHOT:
        shot.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):  # a picture of a page that crashed is not the test's failure
            page.screenshot(path=str(shot), full_page=full_page, timeout=ANSWER_MS if done.failed else TIMEOUT_MS)
    if done.failed or len(done.sites) != 1 or _origin(page.url) not in done.sites:
        done.context.close()
        return
    (site,) = done.sites
    try:
        page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
        page.goto("about:blank")  # the visitor leaves: its page's streams close, as a closed tab's do
        cdp = done.context.new_cdp_session(page)
        cdp.send("Storage.clearDataForOrigin", {"origin": site, "storageTypes": "all"})  # what it wrote since
        cdp.detach()
        done.context.clear_cookies()
    except Exception:  # not to be trusted: another test gets a new tab
        done.context.close()
        return
    _KEPT_TABS[done.key] = done


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test's pages (``visit``) are pictured and not kept for the next test."""
    report = yield
    if report.failed:
        for open_page in _VISITS:
            open_page.failed = True
    return report


def _browser_tests(items: list[pytest.Item]) -> None:
    """Mark every test that launches Chromium (through ``browser``); skip them all where there is none."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
            if CHROMIUM is None:
                item.add_marker(pytest.mark.skip(reason=BROWSER_SKIPPED))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """One line where browser tests were skipped for want of Chromium: how many, why, what to do."""
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if BROWSER_SKIPPED in str(getattr(r, "longrepr", ""))
    ]
    if skipped:
        terminalreporter.write_line(f"browser tests skipped ({len(skipped)}): {NO_CHROMIUM}", yellow=True, bold=True)


def _file_order(item: pytest.Item) -> tuple[int, float]:
    name = item.path.stem
    return (0, LEAD.index(name)) if name in LEAD else (1, -SECONDS.get(name, 30))


# Files that share a session's fixture run in one process: the ZeroGPU-harness studio (``zerogpu_space``,
# 12-15 s to start) once a run, not once a process. pytest-xdist's ``loadgroup`` cannot do it under
# pytest 9 (it renames a node through an attribute pytest no longer reads), so ``loadfile``'s scheduler
# is given these files as one.
SHARING = {
    "tests/test_quota.py": "tests/test_zerogpu.py",
    "tests/test_mcp.py": "tests/test_zerogpu.py",
    "tests/test_loops.py": "tests/test_zerogpu.py",
    "tests/test_in_time.py": "tests/test_zerogpu.py",  # its band under the harness: the same Space, not a second
    "tests/test_real_record.py": "tests/test_zerogpu.py",
}


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """No worker processes where the command names one test file (its tests, or some of them: ``FILE::name``):
    loadfile hands a file's tests to one process anyway, and starting two workers, each importing conftest and
    collecting the file, cost more than the file's tests (test_beats: 23 s with them, 6 s without, a 2-core
    machine). Anything else (README's command, a folder, two files) runs side by side as pyproject says."""
    named = {(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args}
    return 0 if len(named) == 1 and next(iter(named)).is_file() else None


def pytest_xdist_make_scheduler(config: pytest.Config, log) -> object | None:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedFiles(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            return SHARING.get(file, file)

    return SharedFiles(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_file_order)  # stable: each file's own order is kept
    _browser_tests(items)


# The tiny models, built once a machine (not once a process: about 10 s of CPU a process under load) and
# kept in the temp folder under a hash of what builds them (the tools' sources and the libraries'
# versions): a change to either builds them anew. Each is built in a folder of its own and renamed into
# place whole, under a lock, so pytest-xdist's processes never see half of one. Nothing writes into them.
_TINY_SOURCES = ("tools/random_models.py", "tools/random_stems.py")


def _tiny_key() -> str:
    import hashlib
    from importlib.metadata import version

    digest = hashlib.sha256()
    for source in _TINY_SOURCES:
        digest.update((ROOT / source).read_bytes())
    for package in ("torch", "diffusers", "transformers", "tokenizers", "safetensors"):
        digest.update(f"{package}={version(package)};".encode())
    return digest.hexdigest()[:16]


def tiny_model(name: str, build) -> Path:
    """The tiny model ``build(folder)`` writes, made once a machine and kept (see above)."""
    import fcntl

    root = Path(tempfile.gettempdir()) / "ace-studio-tiny-models" / _tiny_key()
    done = root / name
    if done.is_dir():
        return done
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_dir():
            building = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
            build(building / name)
            os.rename(building / name, done)
            shutil.rmtree(building, ignore_errors=True)
    return done


@pytest.fixture(scope="session")
def tiny_pipeline_dir() -> Path:
    """A tiny SFT-like pipeline saved in diffusers layout (model_index.json)."""
    import random_models

    return tiny_model("tiny-diffusers", random_models.save_pipeline)


@pytest.fixture(scope="session")
def tiny_turbo_dir() -> Path:
    """The tiny pipeline marked turbo (guidance distilled), as ``tiny_pipeline_dir`` is SFT."""
    import random_models

    return tiny_model("tiny-turbo", functools.partial(random_models.save_pipeline, turbo=True))


@pytest.fixture(scope="session")
def tiny_base_dir() -> Path:
    """A tiny XL-base-like model (its own random DiT) in the registry's diffusers layout: Edit's parts."""
    import random_models

    return tiny_model("tiny-base", random_models.save_base)


@pytest.fixture(scope="session")
def tiny_planner_dir() -> Path:
    """A tiny random Qwen3 planner with the audio-code vocabulary, saved as a folder."""
    import random_models

    return tiny_model("tiny-planner", random_models.save_planner_lm)


@pytest.fixture(scope="session")
def tiny_lyrics_dir() -> Path:
    """A tiny random Qwen2 lyrics writer, saved as a folder."""
    import random_models

    return tiny_model("tiny-qwen2", random_models.save_lyrics_lm)


@pytest.fixture
def with_planner(tiny_planner_dir, monkeypatch):
    """Think on, with the tiny planner; built afresh for the test."""
    import planner

    monkeypatch.setenv("ACE_STUDIO_PLANNER_MODEL", str(tiny_planner_dir))
    planner.reset_planner()
    yield tiny_planner_dir
    planner.reset_planner()


@pytest.fixture(scope="session")
def tiny_upstream(tmp_path_factory):
    """A tiny pipeline written in upstream ACE-Step layout; returns (dit folder, original pipeline)."""
    import random_upstream

    return random_upstream.save_upstream_layout(tmp_path_factory.mktemp("upstream") / "checkpoints")


# ---------------------------------------------------------------- the tiny models built once a process
#
# Tests forget the studio's built models between them (``studio_env``, ``with_planner``, ``studio_server``),
# and each then built its tiny models again from disk: about 150 builds a run, a second or more each on a
# loaded machine. A build is kept a process under what it was built from (the model settings, the device,
# the dtypes) and handed back to the next build of the same; one made with a test's own loader (a spy), or
# whose lock a run still holds, is never kept or handed back. A test whose point is the build itself asks
# for ``cold_models``.
_KEPT: dict[tuple, object] = {}
_COLD = {"on": False}
_MODEL_SETTINGS = (
    "ACE_STUDIO_MODEL",
    "ACE_STUDIO_VARIANT",
    "ACE_STUDIO_BASE_MODEL",
    "ACE_STUDIO_OFFLOAD",
    "ACE_STUDIO_PLANNER_MODEL",
    "SPACES_ZERO_GPU",
    "HF_HUB_OFFLINE",
)


# The loaders ``models`` holds as it is imported: a build made while a test has put its own in their place (a spy)
# is neither kept nor handed back.
_LOADERS: list[tuple] = []


def _loaders() -> tuple:
    import models

    return models.load_pipeline, models.pick_device, models.pipeline_dtypes, models.dtype_for


def _kept_key(kind: str) -> tuple | None:
    """What a build of ``kind`` is kept under (None: not kept)."""
    import models

    if _COLD["on"] or _loaders() != _LOADERS[0]:
        return None
    device = models.pick_device()
    return (kind, device, repr(models.pipeline_dtypes(device)), *(os.environ.get(k) for k in _MODEL_SETTINGS))


def _kept(kind: str, build: Callable[[], object], register: Callable[[object], None]) -> Callable[[], object]:
    """``build`` made to hand back the build of ``kind`` kept under the same settings (``register``-ed again)."""

    def build_or_reuse():
        found = _kept_key(kind)
        made = _KEPT.get(found) if found is not None else None
        if made is None or made.lock.locked():
            made = build()
            if found is not None:
                _KEPT[found] = made
            return made
        register(made)
        return made

    return build_or_reuse


def _keep_music_builds() -> None:
    import backend
    import devices

    def music(made) -> None:
        devices.register_resident("music", made.pipe, made.device, managed=made.offload != "none")

    backend._build = _kept("music", backend._build, music)


def _keep_planner_builds() -> None:
    import devices
    import planner

    def thinking(made) -> None:
        home = made.device if devices.offload_mode(made.device) == "none" else "cpu"
        devices.register_resident("planner", made.model, made.device, on=home)

    planner._load = _kept("planner", planner._load, thinking)


# ``backend`` and ``planner`` import ``models`` first, so its loaders are known before either build is wrapped.
after_import("models", lambda: _LOADERS.append(_loaders()))
after_import("backend", _keep_music_builds)
after_import("planner", _keep_planner_builds)


@pytest.fixture
def band():
    """The stand-in band (``tools/band.py``) behind the model's call in this process (``studio_env``'s studio,
    the served ``studio_server`` that ``gradio_client`` and Chromium reach): ``band(Band(...))`` sets how it
    plays from then on (None: the model's own audio), and returns every call seen (its render, whether the
    band played)."""
    import band  # the tool's module, in this function only (the fixture keeps its name)

    playing: list = [None]
    with band.installed(lambda: playing[0]) as seen:

        def play(how):
            playing[0] = how
            return seen

        yield play


@pytest.fixture
def cold_models():
    """For a test whose point is building the models: every build in it is made anew and not kept."""
    _COLD["on"] = True
    yield
    _COLD["on"] = False


@pytest.fixture
def studio_env(tiny_pipeline_dir, tiny_base_dir, tmp_path, monkeypatch):
    """Point the studio at the tiny pipeline (and base) and a fresh output folder; the backend is forgotten
    (the next request builds it, or takes back the one this process built from the same: ``_keep_models``)."""
    import backend

    studio_settings(monkeypatch, tiny_pipeline_dir, tiny_base_dir, tmp_path)
    yield tmp_path / "outputs"
    backend.reset_backend()


def studio_settings(mp: pytest.MonkeyPatch, pipeline: Path, base: Path, folder: Path) -> None:
    """``studio_env``'s settings through ``mp`` (a test's or a file's): the tiny pipeline and base, outputs and
    Stop flags under ``folder``; the backend forgotten."""
    import backend

    mp.setenv("ACE_STUDIO_MODEL", str(pipeline))
    mp.setenv("ACE_STUDIO_BASE_MODEL", str(base))
    mp.setenv("ACE_STUDIO_VARIANT", "xl-sft")
    mp.setenv("ACE_STUDIO_OUTPUT_DIR", str(folder / "outputs"))
    mp.setenv("ACE_STUDIO_CANCEL_DIR", str(folder / "cancel"))
    backend.reset_backend()


def made_once(folder: Path, model: Path, base: Path, make: Callable[[], dict]) -> dict:
    """What ``make`` makes, under ``studio_env``'s settings with ``folder`` as the output folder: once a file,
    where its tests each made the same take (a 40 s take is ~4 CPU s of VAE, preview and map). A test takes
    a copy of the folder into its own (``copy_in``), so what it changes on disk is its own, as before."""
    import backend

    assert folder.name == "outputs", folder  # studio_settings' output folder under its parent
    with pytest.MonkeyPatch.context() as mp:
        studio_settings(mp, model, base, folder.parent)
        try:
            return make()
        finally:
            backend.reset_backend()


def copy_in(folder: Path, out: Path) -> None:
    """The files ``made_once`` made, copied into this test's output folder (``studio_env``'s)."""
    shutil.copytree(folder, out, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def warm_backend(tiny_pipeline_dir):
    """A backend built once from the tiny pipeline, for tests that only run requests."""
    import backend
    import models

    pipe = models.load_pipeline(str(tiny_pipeline_dir), models.VARIANTS["xl-sft"])
    pipe.set_progress_bar_config(disable=True)
    return backend.Backend(
        pipe=pipe, variant=models.VARIANTS["xl-sft"], source=str(tiny_pipeline_dir), device="cpu", load_seconds=0.0
    )


def wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Return once the studio at ``url`` answers; its log in the error if it died or never did."""
    from gradio_client import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            Client(url, verbose=False)
            return
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(log.read_text()[-5000:]) from None
            time.sleep(0.2)  # polling a process that is starting: there is no event to wait on


def served_env(pipeline: Path, work: Path, planner: Path | str = "none", **more: str) -> dict[str, str]:
    """What ``studio_process`` needs to serve the tiny pipeline from ``work``: its outputs, Stop flags and
    Gradio upload folder of its own, no planner unless one is given; ``more`` adds or overrides settings."""
    return {
        "ACE_STUDIO_MODEL": str(pipeline),
        "ACE_STUDIO_VARIANT": "xl-sft",
        "ACE_STUDIO_PLANNER_MODEL": str(planner),
        "ACE_STUDIO_OUTPUT_DIR": str(work / "outputs"),
        "ACE_STUDIO_CANCEL_DIR": str(work / "cancel"),
        "GRADIO_TEMP_DIR": str(work / "gradio"),
        **more,
    }


@contextlib.contextmanager
def studio_process(
    env: dict[str, str], work: Path, timeout: float = 120, script: str = "app.py"
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python app.py`` (the README's command; or ``script``) in its own process (``studio_fork``), on a free
    port, with ``env`` added; yields (url, process) once it answers, and ends it and its children afterwards."""
    import studio_fork

    port = free_port()
    log = work / f"studio-{port}.log"
    full = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), **env}
    proc = studio_fork.start([script], full, log)  # forked from imported libraries (studio_fork)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, proc, log, timeout)
        yield url, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def endpoint_names(site: str) -> dict[int, str | None]:
    """Each of the served page's events by its number (``fn_index``, as the page posts it): its API name."""
    import httpx

    config = httpx.get(site + "config", timeout=CLIENT_TIMEOUT_S).json()
    return {d["id"]: d.get("api_name") for d in config["dependencies"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def page_here() -> Iterator[tuple[str, object]]:
    """``app.serve_here()``: a fresh page served in this process with the settings of the moment, for one
    test; (url, page), closed afterwards. Its close deletes no file: pages served in one process share
    Gradio's cache (a file's path is its content's hash: the examples' songs), and a page's close deletes
    every file it cached (``delete_cache``), the examples of the process's served studio with them (its
    Edit example then says the song cannot be found)."""
    import app

    url, page = app.serve_here()
    try:
        yield url, page
    finally:
        close_here(page)


def close_here(page) -> None:
    """Close a page ``app.serve_here()`` served, deleting none of the files it cached (``page_here``)."""
    for files in page.temp_file_sets:
        files.clear()
    page.close()


# The pages ``studio_server`` serves in this process, by their URL (a test that looks inside one: its MCP server).
SERVED: dict[str, object] = {}


def _served_settings(mp: pytest.MonkeyPatch, pipeline: Path, planner: Path, base: Path) -> None:
    mp.setenv("ACE_STUDIO_PLANNER_MODEL", str(planner))
    mp.setenv("ACE_STUDIO_MODEL", str(pipeline))
    mp.setenv("ACE_STUDIO_BASE_MODEL", str(base))
    mp.setenv("ACE_STUDIO_VARIANT", "xl-sft")


@pytest.fixture(scope="session")
def _one_served_studio(tiny_pipeline_dir, tiny_planner_dir, tiny_base_dir) -> Iterator[str]:
    """The real app served in this process, once a process (its page built and launched once, not once a
    file: about 5 s of a loaded machine each); its settings are ``studio_server``'s, set for each file."""
    import app

    with pytest.MonkeyPatch.context() as mp:
        _served_settings(mp, tiny_pipeline_dir, tiny_planner_dir, tiny_base_dir)
        url, demo = app.serve_here()
    SERVED[url] = demo
    yield url
    SERVED.pop(url, None)
    demo.close()


@pytest.fixture(scope="module")
def studio_server(_one_served_studio, tiny_pipeline_dir, tiny_planner_dir, tiny_base_dir, tmp_path_factory):
    """The real app, served in this process against the tiny pipeline and planner (Think on, as a visitor
    finds it), with an output folder of the file's own; yields (url, output dir). The built models are
    forgotten at the file's start and end (the next request takes back the ones this process built)."""
    import backend
    import planner

    out = tmp_path_factory.mktemp("served-outputs")
    mp = pytest.MonkeyPatch()
    _served_settings(mp, tiny_pipeline_dir, tiny_planner_dir, tiny_base_dir)
    mp.setenv("ACE_STUDIO_OUTPUT_DIR", str(out))
    mp.setenv("ACE_STUDIO_CANCEL_DIR", str(tmp_path_factory.mktemp("cancel")))
    backend.reset_backend()
    planner.reset_planner()
    try:
        yield _one_served_studio, out
    finally:
        # The planner left set would turn Think on for every later test in this process.
        backend.reset_backend()
        planner.reset_planner()
        mp.undo()


@dataclasses.dataclass(frozen=True)
class ZeroGpuSpace:
    """A studio served under the ZeroGPU harness (tests/zerogpu_harness.py)."""

    url: str
    api: object  # zerogpu_harness.FakeDeviceAPI: every declared duration, refusals, kills
    work: Path  # its outputs (``outputs/``) and the spy's log of every VAE encode (``vae-encodes.log``)

    @property
    def outputs(self) -> Path:
        return self.work / "outputs"

    @contextlib.contextmanager
    def band(self, how) -> Iterator[None]:
        """The stand-in band (``tools/band.py``) plays ``how`` in this Space's GPU calls while in it."""
        path = self.work / "band.json"
        path.write_text(json.dumps(dataclasses.asdict(how)))
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def zerogpu_space(
    tiny_pipeline_dir, tiny_planner_dir, tiny_base_dir, tiny_lyrics_dir, tmp_path_factory
) -> Iterator[ZeroGpuSpace]:
    """The studio as a ZeroGPU Space serves it, started once a process for every file that asks
    (test_zerogpu, test_quota, test_mcp …: ``SHARING``): Think on as a visitor finds it, the lyrics writer,
    Demucs's tiny bag in the Space's Hub cache (as a Space preloads it), Edit's XL base built at start-up with the rest, and
    every VAE encode, a worker's too, one line in ``vae-encodes.log``. Its start (the studio's import,
    its models built) is paid once, not once a file. Tests that share it
    read the fake API's lists from where they stood before the test, never from the start. The duration estimate's
    tests (learning) and the failed captures' (ACE_STUDIO_GRAPHS) serve studios of their own."""
    import json

    import random_stems
    import stems
    from scripted_planner import LONG_CAPTION, LONG_CAPTION_WHEN
    from zerogpu_harness import FakeDeviceAPI, start_studio, stop_studio, studio_env

    work = tmp_path_factory.mktemp("zerogpu")
    random_stems.save_stems_model(work / "hub-cache", hub_repo=stems.DEFAULT_MODEL)
    api = FakeDeviceAPI(scale=1.0).start()
    port = free_port()
    log = work / "studio.log"
    env = {
        **studio_env(api.url, work, tiny_pipeline_dir, tiny_lyrics_dir, port, tiny_planner_dir),
        "HF_HUB_CACHE": str(work / "hub-cache"),
        "ACE_STUDIO_BASE_MODEL": str(tiny_base_dir),
        "HARNESS_VAE_ENCODES": str(work / "vae-encodes.log"),
        # The stand-in band plays in every worker while this file holds how (``band.from_file``; a test writes it).
        "HARNESS_BAND": str(work / "band.json"),
        # A caption holding LONG_CAPTION_WHEN is planned with LONG_CAPTION, past what the model reads.
        "HARNESS_PLANNER_SCRIPT": json.dumps({"when": LONG_CAPTION_WHEN, "caption": LONG_CAPTION}),
    }
    proc = start_studio(env, log)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, proc, log)
        yield ZeroGpuSpace(url, api, work)
    finally:
        stop_studio(proc)
        api.close()


def stopped_result(job, pattern: str, timeout: float = 60) -> str:
    """The result of a stopped music call (a stop is not an error): no take, the stop's message as the
    seed line and ``{"stopped": message}`` as the record; returns the message."""
    import re

    *slots, line, record = job.result(timeout=timeout)
    assert not any(slots) and re.search(pattern, line) and record == {"stopped": line}, (slots, line, record)
    return line


def wait_running(job, timeout: float = 60) -> None:
    """Return once ``job`` (a ``gradio_client`` job) runs: its first step of progress is reported;
    an AssertionError if it ended, or did not get there within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not any((p.index or 0) >= 1 for p in job.status().progress_data or []):
        assert time.monotonic() < deadline and not job.done(), f"no progress: {job.status()}"
        time.sleep(0.05)  # gradio_client offers no progress callback to wait on


def page_api(url: str) -> tuple[dict[str, int], dict[str, list[dict]]]:
    """A served page's events by API name (their ``fn_index``) and each named endpoint's parameters, read once
    as a page reads the first (``/config``) and a ``gradio_client.Client`` the second (``/gradio_api/info``)."""
    import httpx

    config = httpx.get(f"{url}config", timeout=CLIENT_TIMEOUT_S).json()
    fns = {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}
    named = httpx.get(f"{url}gradio_api/info", timeout=CLIENT_TIMEOUT_S).json()["named_endpoints"]
    return fns, {name[1:]: endpoint["parameters"] for name, endpoint in named.items()}


def inputs(parameters: list[dict], **values: object) -> list:
    """An endpoint's inputs in order, as a raw join sends them: ``values``, and every other parameter's default."""
    return [values.get(p["parameter_name"], p.get("parameter_default")) for p in parameters]


def wait_in_queue(job, timeout: float = 60) -> None:
    """Return once ``job`` (a ``gradio_client`` job) waits for the GPU: in the studio's queue, or in the GPU
    line beside it (``gpu.in_gpu_queue``: its progress line says so)."""
    from gradio_client.utils import Status

    import messages

    waiting = messages.IN_GPU_QUEUE.split(":")[0]
    deadline = time.monotonic() + timeout
    while True:
        status = job.status()
        if status.code == Status.IN_QUEUE or any(
            (p.desc or "").startswith(waiting) for p in status.progress_data or []
        ):
            return
        assert time.monotonic() < deadline and not job.done(), status
        time.sleep(0.05)  # the client has no callback for "queued"; its status is the event


def music_shape(mode: str = "generate", **asked):
    """The cost shape of a request (``music_shape.MusicShape.of``) of Generate's settings ``asked`` by the
    API's names (``audio_duration``, ``inference_steps``, ``batch_size``, ``lyrics``, ``think``…), made by
    Generate's own preparer (no song needed; Think counted, not asked of a planner); then, for a test of
    the duration estimate's or the budget's arithmetic, ``mode`` and any of the shape's own fields (``part``, ``morph``,
    ``start``, ``reference``…) put on it as ``dataclasses.replace`` puts them."""
    import inspect
    from unittest import mock

    import backend
    import modes
    from music_shape import MusicShape

    generate_args = set(inspect.signature(modes.prepare_generate).parameters) - {"think"}
    settings = {k: v for k, v in asked.items() if k in generate_args}
    fields = {k: v for k, v in asked.items() if k not in generate_args and k != "think"}
    # The lyrics' tokens are counted by the admission check once a model is built; a shape asks no model.
    with mock.patch.object(backend, "is_warm", return_value=False):
        shape = MusicShape.of(modes.prepare_generate(**{"prompt": "shape", **settings}, think=False).request)
    return dataclasses.replace(shape, mode=mode, think=bool(asked.get("think")), **fields)
