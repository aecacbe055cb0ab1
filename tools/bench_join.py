"""How soon a join answers after ``python app.py`` starts (``tools/bench.py --join``): the README's command
on tiny random models, then, as soon as the page answers, the first queue join of ``/generate``,
``/cover`` (a 60 s upload) and ``/edit``, and three warm joins each; quiet, and with busy processes
beside it (``--busy``), with the start-up build running (``--warmup``). ``--root`` times another checkout
of the studio (the commit before a change) on the same machine.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import studio_root

SR = 48000


@contextlib.contextmanager
def busy(n: int) -> Iterator[None]:
    """``n`` processes keeping a core busy each."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def _song(path: Path, seconds: float) -> Path:
    import numpy as np
    import soundfile as sf

    wave = (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * SR)) / SR)).astype(np.float32)
    sf.write(str(path), np.stack([wave, wave], 1), SR, subtype="PCM_16")
    return path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(root: Path, models: Path, work: Path, warmup: bool | None = None) -> tuple[subprocess.Popen, str, float]:
    """README's ``python app.py`` at ``root`` on the tiny ``models``, its outputs and uploads in ``work``, on a
    free port; returns once its page answers: the process, its URL and the seconds that took. ``warmup``: the
    start-up build on or off (None: the studio's own default)."""
    port = _port()
    env = {
        **os.environ,
        "ACE_STUDIO_MODEL": str(models / "music"),
        "ACE_STUDIO_PLANNER_MODEL": str(models / "planner"),
        "ACE_STUDIO_OUTPUT_DIR": str(work / "outputs"),
        "GRADIO_TEMP_DIR": str(work / "gradio"),
        "GRADIO_SERVER_PORT": str(port),
        "HF_HUB_OFFLINE": "1",
    }
    if warmup is not None:
        env["ACE_STUDIO_WARMUP"] = "1" if warmup else "0"
    started = time.monotonic()
    out = open(work / "studio.log", "wb")  # noqa: SIM115 (the studio writes to it until it ends)
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    import httpx

    while True:
        try:
            httpx.get(f"{url}config", timeout=5).raise_for_status()
            return proc, url, time.monotonic() - started
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError((work / "studio.log").read_text()[-3000:]) from None
            time.sleep(0.05)  # a process starting: there is no event to wait on


def joins(root: Path, models: Path, warmup: bool) -> dict[str, float]:
    """One start of the studio at ``root``: seconds until the page answered, each first join, warm joins."""
    import httpx

    work = Path(tempfile.mkdtemp(prefix="ace-join-"))
    song = _song(work / "sixty.wav", 60.0)
    proc, url, served = serve(root, models, work, warmup)
    try:
        config = httpx.get(f"{url}config").json()
        fns = {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}
        info = httpx.get(f"{url}gradio_api/info", timeout=60).json()["named_endpoints"]
        with open(song, "rb") as f:
            path = httpx.post(f"{url}gradio_api/upload", files={"files": f}, timeout=120).json()[0]
        src = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": song.name}
        asks = {
            "generate": {"prompt": "first", "audio_duration": 10, "think": False, "inference_steps": 1},
            "cover": {"src_audio": src, "prompt": "brass band", "inference_steps": 1},
            "edit": {"src_audio": src, "prompt": "a choir", "repainting_start": 5, "inference_steps": 1},
        }
        found = {"served_s": served}
        for api, values in asks.items():
            found[f"{api}_first_s"] = _join(url, fns, info, api, values)
        for api, values in asks.items():
            found[f"{api}_warm_s"] = statistics.median(_join(url, fns, info, api, values) for _ in range(3))
        return found
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _join(url: str, fns: dict, info: dict, api: str, values: dict) -> float:
    import httpx

    data = [values.get(p["parameter_name"], p.get("parameter_default")) for p in info[f"/{api}"]["parameters"]]
    body = {"data": data, "fn_index": fns[api], "session_hash": uuid.uuid4().hex, "trigger_id": None}
    started = time.monotonic()
    answer = httpx.post(f"{url}gradio_api/queue/join", json=body, timeout=300)
    took = time.monotonic() - started
    if answer.status_code != 200:
        raise RuntimeError(f"{api}: {answer.status_code} {answer.text[:300]}")
    return took


def table(roots: list[Path], busy_counts: list[int], warmup: bool, runs: int = 3) -> str:
    """Medians of ``runs`` starts for each checkout and load, as a Markdown table."""
    import random_models

    models = Path(tempfile.mkdtemp(prefix="ace-join-models-"))
    random_models.save_pipeline(models / "music")
    random_models.save_planner_lm(models / "planner")
    rows = ["| studio | busy processes | page answers (s) | first join: generate / cover / edit (s) | warm (s) |"]
    rows.append("|---|---|---|---|---|")
    for root in roots:
        for n in busy_counts:
            with busy(n):
                found = [joins(root, models, warmup) for _ in range(runs)]
            med = {k: statistics.median(f[k] for f in found) for k in found[0]}
            first = " / ".join(f"{med[f'{api}_first_s']:.2f}" for api in ("generate", "cover", "edit"))
            warm = " / ".join(f"{med[f'{api}_warm_s']:.2f}" for api in ("generate", "cover", "edit"))
            name = "this checkout" if root == studio_root.ROOT else str(root)
            rows.append(f"| {name} | {n} | {med['served_s']:.1f} | {first} | {warm} |")
    return "\n".join(rows)
