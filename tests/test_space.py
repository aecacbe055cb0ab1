"""Public-Space readiness: cache mirror, GPU retry, output clean-up, what the server will serve."""

from __future__ import annotations

import errno
import os
import time
import urllib.error
import urllib.request

import gradio as gr
import pytest

import app
import generation
import gpu
import handlers
import output_folder
import startup
import status
from conftest import CLIENT_TIMEOUT_S
from music_request import Call, MusicRequest, Render


def _fake_cache(root):
    """A Hub cache as huggingface_hub lays it out: blobs, snapshot symlinks, refs."""
    repo = root / "models--ACE-Step--acestep-v15-xl-sft"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "aaa").write_bytes(b"weights" * 100)
    (repo / "blobs" / "bbb").write_text('{"hidden_size": 2560}')
    snap = repo / "snapshots" / "0123abcd"
    (snap / "vae").mkdir(parents=True)
    (snap / "model.safetensors").symlink_to("../../blobs/aaa")
    (snap / "vae" / "config.json").symlink_to("../../../blobs/bbb")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    return repo


def test_mirror_hard_links_blobs_keeps_links_copies_refs(tmp_path):
    src, dst = tmp_path / "ro" / "hub", tmp_path / "rw" / "hub"
    _fake_cache(src)
    created = startup.mirror_hub_cache(src, dst)
    repo = dst / "models--ACE-Step--acestep-v15-xl-sft"
    blob = repo / "blobs" / "aaa"
    assert os.stat(blob).st_ino == os.stat(src / repo.name / "blobs" / "aaa").st_ino  # zero copy
    link = repo / "snapshots" / "0123abcd" / "model.safetensors"
    assert link.is_symlink() and os.readlink(link) == "../../blobs/aaa"
    assert link.resolve() == blob.resolve()  # resolves inside the mirror
    assert (repo / "snapshots" / "0123abcd" / "vae" / "config.json").read_text() == '{"hidden_size": 2560}'
    ref = repo / "refs" / "main"
    assert ref.read_text() == "0123abcd" and not ref.is_symlink()
    assert os.stat(ref).st_ino != os.stat(src / repo.name / "refs" / "main").st_ino
    assert created == 5
    assert startup.mirror_hub_cache(src, dst) == 0  # idempotent
    (src / repo.name / "refs" / "main").write_text("fedcba98")
    assert startup.mirror_hub_cache(src, dst) == 1 and ref.read_text() == "fedcba98"


def test_mirror_falls_back_to_symlinks_across_file_systems(tmp_path, monkeypatch):
    src, dst = tmp_path / "ro", tmp_path / "rw"
    _fake_cache(src)

    def cross_device(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    startup.mirror_hub_cache(src, dst)
    blob = dst / "models--ACE-Step--acestep-v15-xl-sft" / "blobs" / "aaa"
    assert blob.is_symlink() and blob.read_bytes() == b"weights" * 100


def test_bootstrap_points_the_hub_at_the_mirror_only_on_a_space(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    _fake_cache(tmp_path / ".cache" / "huggingface" / "hub")
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    startup.bootstrap()
    assert "HF_HUB_CACHE" not in os.environ and not (tmp_path / "hf-cache-rw").exists()
    monkeypatch.setenv("SPACE_ID", "someone/ace-studio")
    monkeypatch.setenv("HF_HOME", "unset")
    startup.bootstrap()
    assert os.environ["HF_HUB_CACHE"] == str(tmp_path / "hf-cache-rw" / "hub")
    assert os.environ["HF_HOME"] == str(tmp_path / "hf-cache-rw")
    assert (tmp_path / "hf-cache-rw" / "hub" / "models--ACE-Step--acestep-v15-xl-sft" / "refs" / "main").exists()
    # Again (a restart): nothing made anew, counted, not timed.
    mirror, created = startup.mirror_hub_cache, []
    monkeypatch.setattr(startup, "mirror_hub_cache", lambda src, dst: created.append(mirror(src, dst)) or created[-1])
    startup.bootstrap()
    assert created == [0]


def test_on_a_space_the_hub_client_uses_the_mirror_from_the_start(tmp_path):
    """``huggingface_hub`` reads ``HF_HUB_CACHE`` once, at its import: the mirror must be set before
    anything imports it (Gradio does), or downloads go to the read-only build cache. ``import app``
    in a fresh process, as a Space starts it."""
    import subprocess
    import sys

    from conftest import ROOT

    _fake_cache(tmp_path / ".cache" / "huggingface" / "hub")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HOME", "HF_HUB_CACHE")}
    env.update(SPACE_ID="someone/ace-studio", HOME=str(tmp_path))
    code = "import app, huggingface_hub.constants as c; print(c.HF_HUB_CACHE)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / "hf-cache-rw" / "hub")


def _aborted() -> gr.Error:
    # What the ``spaces`` wrapper raises when ZeroGPU killed the worker.
    return gr.Error("GPU task aborted", title="ZeroGPU worker error")


def test_gpu_abort_is_retried_once_with_twice_the_budget(monkeypatch):
    calls = []

    def flaky(multiplier):
        calls.append(multiplier)
        if len(calls) == 1:
            raise _aborted()
        return {"ok": True}

    monkeypatch.setattr(gr, "Info", lambda message: calls.append(message))
    assert gpu.with_retry(flaky) == {"ok": True}
    assert calls == [1.0, "Retrying with a longer GPU budget…", 2.0]


def test_second_abort_is_a_clear_error_and_other_errors_pass_through(monkeypatch):
    monkeypatch.setattr(gr, "Info", lambda message: None)

    def always(multiplier):
        raise _aborted()

    with pytest.raises(gr.Error, match="GPU time ran out twice"):
        gpu.with_retry(always)

    def other(multiplier):
        raise gr.Error("The song is too short")

    with pytest.raises(gr.Error, match="too short"):
        gpu.with_retry(other)


def test_estimator_receives_the_multiplier():
    call = Call(prompt="", num_inference_steps=100, guidance_scale=7.0, shift=3.0)
    request = MusicRequest("generate", Render(call, [1]), 600, "wav")
    assert generation.music_duration(request, None, None, 2.0) >= generation.music_duration(request)


OLD_TAKE = "generate-101010-abcdef-take1-seed1.wav"


def test_old_outputs_are_deleted_and_only_the_studios_own(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_OUTPUT_DIR", str(tmp_path))
    old = tmp_path / "2026-01-01" / OLD_TAKE
    old.parent.mkdir()
    old.write_bytes(b"x")
    old.with_suffix(".json").write_text("{}")
    preview = old.with_name(old.stem + "-preview.mp3")  # the page's preview goes with its take
    preview.write_bytes(b"z")
    # Files the studio did not write stay, however old: beside a take, in its own folder, at the top.
    theirs = [tmp_path / "2026-01-02" / "notes.txt", tmp_path / "mixes" / OLD_TAKE, tmp_path / "README.md"]
    for path in theirs:
        path.parent.mkdir(exist_ok=True)
        path.write_text("keep me")
    fresh = tmp_path / "2026-11-22" / "generate-222222-abcdef-take1-seed2.wav"
    fresh.parent.mkdir()
    fresh.write_bytes(b"y")
    for path in (old, old.with_suffix(".json"), preview, *theirs):
        os.utime(path, (time.time() - 3 * 86400,) * 2)
    assert output_folder.clean_outputs(max_age_hours=24) == 3
    assert not old.exists() and not old.parent.exists() and fresh.exists()
    assert all(path.read_text() == "keep me" for path in theirs)


def test_files_outside_the_output_folder_are_refused(studio_server, tmp_path):
    url, out = studio_server
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    for path in (secret, "/etc/passwd"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{url}gradio_api/file={path}", timeout=CLIENT_TIMEOUT_S)
        assert err.value.code in (403, 404)
    # Nor is anything in the output folder through Gradio's route: takes come from /takes/ only.
    inside = out / "served.txt"
    inside.write_text("ok")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{url}gradio_api/file={inside}", timeout=CLIENT_TIMEOUT_S)
    assert err.value.code == 404


def test_warmup_builds_the_pipeline_in_the_background(studio_env, monkeypatch):
    import backend

    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("ACE_STUDIO_WARMUP", raising=False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert startup.start_warmup() is None and not backend.is_warm()
    monkeypatch.setenv("SPACE_ID", "someone/ace-studio")
    monkeypatch.setenv("ACE_STUDIO_LYRICS_MODEL", str(studio_env / "no-lyrics-model"))
    thread = startup.start_warmup()
    thread.join(timeout=120)
    assert backend.is_warm()
    # The lyrics model is missing here: the failure is kept for the status line and the requests.
    assert "lyrics" in gpu.warmup_state()["errors"]
    assert "lyrics model could not be loaded" in status.studio_status()[0]


def test_a_running_studio_also_drops_old_files_when_it_writes(studio_env, monkeypatch):
    old = studio_env / "2026-01-01" / OLD_TAKE
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    monkeypatch.setattr(output_folder, "_last_clean", 0.0)
    paths, _ = handlers.make("generate", prompt="pop", audio_duration=10, inference_steps=1)
    assert not old.exists() and os.path.exists(paths[0])
    old.parent.mkdir()
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    handlers.make("generate", prompt="pop", audio_duration=10, inference_steps=1)
    assert old.exists()  # the tree is walked at most every ten minutes


def test_gradios_own_cache_is_bounded_at_the_outputs_age(monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_OUTPUT_MAX_AGE_HOURS", "2")
    assert app.build_ui().delete_cache == (600, 7200)


# ---------------------------------------------------------------- the Space's Python and torch


def zerogpu_table() -> dict[str, tuple[list[str], str]]:
    """docs/deployment.md's table of what ZeroGPU builds: {"Python" | "PyTorch": (versions, the Space's)}."""
    import re

    from conftest import ROOT

    text = (ROOT / "docs" / "deployment.md").read_text()
    section = text[text.index("### ZeroGPU's supported versions") :]
    rows = {}
    for what in ("Python", "PyTorch"):
        cells = next(line for line in section.splitlines() if line.startswith(f"| {what} ")).split("|")[1:-1]
        rows[what] = (re.findall(r"\d+\.\d+\.\d+", cells[1]), cells[2].strip())
    return rows


def test_the_spaces_python_and_torch_are_ones_zerogpu_builds():
    """README's front matter and requirements.txt against docs/deployment.md's table (hub-docs' list):
    a version outside it stops a ZeroGPU build ("No candidate PyTorch version found for ZeroGPU")."""
    import re
    import tomllib

    import yaml
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    from conftest import ROOT

    table = zerogpu_table()
    pythons, python = table["Python"]
    torches, torch = table["PyTorch"]
    readme = (ROOT / "README.md").read_text()
    front = yaml.safe_load(readme.split("---\n")[1])
    assert front["python_version"] == python and python in pythons, front["python_version"]
    needs = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert needs.contains(python), f"the studio needs Python {needs}; the Space's is {python}"
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    found = [Requirement(line) for line in lines if re.match(r"torch\b", line)]
    space = {"python_full_version": python, "python_version": python.rsplit(".", 1)[0], "sys_platform": "linux"}
    space.update(platform_machine="x86_64", platform_system="Linux")
    on_space = [r for r in found if r.marker is None or r.marker.evaluate(space)]
    assert len(on_space) == 1 and str(on_space[0].specifier) == f"=={torch}" and torch in torches, found
    # The CPU wheel README (and so .ci/run) installs first satisfies it: nothing more downloaded.
    for text in (readme, (ROOT / ".ci" / "run").read_text()):
        first = re.findall(r"pip install (?:-q )?torch==(\S+)", text)
        assert first and all(on_space[0].specifier.contains(f"{v}+cpu") for v in first), first


def test_the_space_is_uploaded_without_the_tools_and_tests():
    """docs/deployment.md uploads the Space from ``git archive``, which leaves out what
    ``.gitattributes`` marks ``export-ignore``: every module and the Space's own files go, no tool
    (``tools/``), test or CI script does. The modules import no tool (test_layout), so nothing is missing."""
    import shutil
    import subprocess

    from conftest import ROOT

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: what `git archive` ships cannot be asked")

    def git(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, input=stdin, capture_output=True, text=True, check=True).stdout

    files = git("ls-files", "--cached", "--others", "--exclude-standard").split()
    attributes = git("check-attr", "--stdin", "export-ignore", stdin="\n".join(files)).splitlines()
    shipped = {line.split(": ")[0] for line in attributes if not line.endswith(": set")}
    assert {"app.py", "README.md", "requirements.txt"} <= shipped
    assert {p.name for p in ROOT.glob("*.py")} <= shipped
    left_out = [f for f in shipped if f.startswith(("tools/", "tests/", ".ci/")) or f == ".gitattributes"]
    assert left_out == [] and any(f.startswith("tools/") for f in files)
    assert all("/" not in f for f in shipped if f.endswith(".py")), "a .py a Space would ship below the top"
    deploy = (ROOT / "docs" / "deployment.md").read_text()
    assert "git archive HEAD | tar -x -C" in deploy and '--repo-type space --delete "*"' in deploy
