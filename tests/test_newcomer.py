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
import time
from pathlib import Path

from conftest import ROOT
from test_in_time import LOCKED  # a Generate with Lock to the grid at 120 BPM, as the tests send it


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


def test_every_setting_the_studio_reads_is_in_readmes_configuration_table():
    """Each ``ACE_STUDIO_*`` name a module of the studio reads (the modules at the top: tools and tests
    aside) has its row."""
    modules = sorted(ROOT.glob("*.py"))
    read = {name for path in modules for name in re.findall(r"ACE_STUDIO_[A-Z_]+", path.read_text())}
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## Calling it from Python")]
    rows = {
        name
        for line in table.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`(ACE_[A-Z_]+)`", line.split(" | ")[0])
    }
    assert read - rows == set(), f"settings the studio reads without a row in README's configuration: {read - rows}"


# What an upload's analysis uses (``analysis``, ``beats``) and what those import in turn.
ANALYSIS_LIBRARIES = {"librosa", "numba", "llvmlite", "scipy", "sklearn", "joblib", "soxr", "audioread", "lazy_loader"}


def _printed_command(tmp_path: Path, script: str) -> dict[str, str]:
    """``python tools/random_models.py DIR`` run as README has a newcomer run it: its last line is settings
    then ``python <script>``; returns the settings."""
    done = subprocess.run(
        [sys.executable, "tools/random_models.py", str(tmp_path / "tiny")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return _settings(done.stdout, script)


def _settings(printed: str, script: str) -> dict[str, str]:
    """The settings of the command ``printed`` ends with, which must run ``python <script>``."""
    import shlex

    *settings, python, run = shlex.split(printed.strip().splitlines()[-1])
    assert (python, run) == ("python", script), printed
    return dict(setting.split("=", 1) for setting in settings)


def test_the_tiny_models_command_serves_the_studio_parts_included(tmp_path):
    """``python tools/random_models.py DIR`` and the command it prints, as README has a newcomer try the page:
    every model setting the studio reads is named (read from the modules: music, base, lyrics, planner,
    stems), so every tab works on what it wrote, Edit's parts and Stems too; and *Lock to the
    grid* keeps its noise as played, as README says."""

    from gradio_client import Client, handle_file

    import examples
    from conftest import served_env, studio_process

    env = _printed_command(tmp_path, "app.py")
    modules = "".join(path.read_text() for path in ROOT.glob("*.py"))
    read = set(re.findall(r"\b(ACE_STUDIO_[A-Z_]*MODEL)\b", modules))
    assert len(read) >= 5 and read <= set(env), f"model settings the command leaves out: {read - set(env)}"
    work = served_env(Path(env["ACE_STUDIO_MODEL"]), tmp_path, planner=env["ACE_STUDIO_PLANNER_MODEL"])
    # README's command itself, a new interpreter: not forked from imported libraries (studio_fork). Python says
    # each module it imports in the log (``-X importtime``), as the import ends: what an analysis imported.
    told = {"ACE_STUDIO_TESTS_FORK": "0", "PYTHONPROFILEIMPORTTIME": "1"}
    with studio_process({**work, **env, **told}, tmp_path) as (url, _proc):
        client = Client(url, verbose=False)  # the first page answered: the libraries are imported from here on
        (log,) = tmp_path.glob("studio-*.log")
        while "Libraries imported in" not in log.read_text(errors="replace"):
            time.sleep(0.2)  # the studio says it in its log: there is no event to wait on
        first, again = (
            _analysis(url, client, handle_file(song), log) for song in _two_copies(examples.demo_song(), tmp_path)
        )
        made = client.predict(
            src_audio=handle_file(examples.demo_song()),
            prompt="punchy live drums",
            change="add",
            part="drums",
            inference_steps=2,
            api_name="/edit",
        )
        record = made[-1]
        split = client.predict(take=1, record=record, api_name="/stems")
        noise = client.predict(**LOCKED, seed=1, api_name="/generate")[-1]["takes"][0]
    # The first upload's analysis in a fresh studio: what it uses the first time (librosa, numba's functions)
    # made ready once the first page has been answered (``startup.import_later``), not in the first analysis
    # (measured: 0.30 s, then 0.33 s for the copy; 3.3 s with librosa imported by the first analysis). Counted,
    # not timed: the modules of the analysis' libraries each analysis imported, none; and the page's
    # instant requests answered while each ran.
    assert first[0] == again[0] == [], (first[0], again[0])
    assert first[1] and again[1], (first, again)
    assert " · 5 bars: ≈ 100 BPM in 4/4, steady" in first[2] and first[2] == again[2], (first, again)
    assert Path(made[0]).is_file() and record["params"]["change"] == "add" and record["takes"][0]["part"]
    assert [Path(p).stem.rsplit("-", 1)[-1] for p in split] == ["vocals", "drums", "bass", "other"]
    assert all(Path(p).is_file() for p in split)
    # README: the tiny models make noise, so Lock to the grid keeps a take as played.
    assert noise["lock"] == {"locked": False, "why": "kept as played: no steady beat was heard in it"}
    assert "tempo" not in noise and noise["bars"] == []


def test_the_printed_command_runs_the_studio_at_one_thread_where_it_runs_on_the_cpu():
    """Torch's pool spinning between the tiny models' small operations made a 30 s take's stems 234-298 s on a busy
    2-core machine (13-15 s at one thread): the printed command sets one thread where the studio runs on the CPU, as
    the tests do, and leaves a GPU's machine its own."""
    import random_models

    folders = [Path(name) for name in ("music", "base", "lyrics", "planner", "stems")]
    on_cpu = _settings(random_models.launch_command(*folders, cpu=True), "app.py")
    assert on_cpu["OMP_NUM_THREADS"] == on_cpu["MKL_NUM_THREADS"] == "1", on_cpu
    assert "OMP_NUM_THREADS" not in _settings(random_models.launch_command(*folders, cpu=False), "app.py")


def test_the_band_command_serves_the_studio_where_lock_to_the_grid_locks(
    tmp_path, monkeypatch, tiny_pipeline_dir, tiny_base_dir, tiny_lyrics_dir, tiny_planner_dir
):
    """README's way to hear *Lock to the grid* at work on a machine without the model: the tiny
    models make noise, which has no beat (the lock keeps it as played, ``LOCK_NO_BEAT``); ``python
    tools/random_models.py DIR --band`` prints the command that serves them with the stand-in band behind the
    model's call (``band.main``), as README says, and there a take asked at 120 BPM comes back locked."""
    import contextlib
    import io

    from gradio_client import Client

    import random_models
    from conftest import served_env, studio_process

    readme = (ROOT / "README.md").read_text()
    assert "python tools/random_models.py DIR --band" in readme and "no steady beat was heard" in readme
    # The tool's own command line and its builds are the tiny-models test's: here its main with ``--band``, in
    # this process, handed the machine's tiny models as it builds them (conftest's ``tiny_model``): 16 s of CPU
    # for a new interpreter's imports and five builds, against the printed line this test reads.
    for build, made in (("save_pipeline", tiny_pipeline_dir), ("save_base", tiny_base_dir)):
        monkeypatch.setattr(random_models, build, lambda folder, made=made: made)
    for build, made in (("save_lyrics_lm", tiny_lyrics_dir), ("save_planner_lm", tiny_planner_dir)):
        monkeypatch.setattr(random_models, build, lambda folder, made=made: made)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        random_models.main([str(tmp_path / "tiny"), "--band"])
    script = "tools/band.py"
    env = _settings(printed.getvalue(), script)
    assert env["ACE_STUDIO_MODEL"] == str(tiny_pipeline_dir) and Path(env["ACE_STUDIO_STEMS_MODEL"]).is_dir()
    work = served_env(Path(env["ACE_STUDIO_MODEL"]), tmp_path, planner=env["ACE_STUDIO_PLANNER_MODEL"])
    # The printed command's script, forked from the test process's imported libraries (``studio_fork``): a new
    # interpreter's imports are the tiny-models test's point, not this one's (the band, and the lock on it).
    with studio_process({**work, **env}, tmp_path, script=script) as (url, _proc):
        record = Client(url, verbose=False).predict(**LOCKED, seed=1, api_name="/generate")[-1]
    take = record["takes"][0]
    assert take["lock"]["locked"], take["lock"]
    assert abs(take["tempo"]["bpm"] - 120) < 0.5, take["tempo"]


def _two_copies(song: str, folder: Path) -> list[str]:
    """``song`` under two names: each is analysed (a song's measurements are kept by file)."""
    import shutil

    return [shutil.copyfile(song, folder / f"{name}.wav") for name in ("first", "again")]


def _analysis(url: str, client, song, log: Path) -> tuple[list[str], int, str]:
    """Extend's analysis of ``song`` (its tempo, key, metre and bars) and, while it runs, the server's answers
    to an instant request (a page's event stream lives on such answers): (the modules of the analysis'
    libraries the studio imported meanwhile, as its log says them, ``-X importtime``; how many instant
    answers came before the analysis ended; its line)."""
    import httpx

    offset = log.stat().st_size
    job = client.submit(src_audio=song, extend_seconds=30, api_name="/extend_analyze")
    answered = 0
    with httpx.Client(timeout=60) as probe:
        while not job.done():
            probe.get(f"{url}gradio_api/app_id").raise_for_status()
            answered += not job.done()
    line = job.result()[0]
    said = log.read_bytes()[offset:].decode(errors="replace")
    imported = re.findall(r"^import time:\s*\d+ \|\s*\d+ \|\s*(\S+)", said, flags=re.MULTILINE)
    return [name for name in imported if name.split(".")[0] in ANALYSIS_LIBRARIES], answered, line
