"""Tests of ``headers`` and ``startup.import_later``: a join answers at once. Gradio runs a request's
admission check inside the HTTP join, so it reads files by their headers only (``headers``) and imports
nothing heavy; the libraries a first request
needs are imported once the first page has been answered (``startup.import_later``), beside the joins,
which never wait on them. Held through the surface a
visitor uses: a studio served under the ZeroGPU harness, its start-up build held, two busy processes
beside it; and, load aside, what the admission check reads and imports."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf
from gradio_client import Client

from conftest import ROOT, free_port, inputs, page_api, wait_until_serving
from zerogpu_harness import FakeDeviceAPI, start_studio, stop_studio, studio_env

SR = 48000


@contextlib.contextmanager
def busy_cores(n: int = 2) -> Iterator[None]:
    """``n`` processes that keep a core busy each, as other work on a shared machine does."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def _song(path: Path, seconds: float, rate: int = SR, channels: int = 2) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(str(path), np.stack([wave] * channels, 1), rate, subtype="PCM_16")
    return path


def _timed_join(url: str, fns: dict, info: dict, api: str, **values) -> tuple[float, httpx.Response, str]:
    """One queue join as the page sends it (its stream not read yet): its seconds, its answer, its session."""
    data = inputs(info[api], **values)
    body = {"data": data, "fn_index": fns[api], "session_hash": uuid.uuid4().hex, "trigger_id": None}
    started = time.monotonic()
    answer = httpx.post(f"{url}gradio_api/queue/join", json=body, timeout=120)
    return time.monotonic() - started, answer, body["session_hash"]


def _heard_within_a_clients_timeout(url: str, session: str, beats: int = 2) -> list[str]:
    """The messages of a waiting request's stream up to its ``beats``-th heartbeat, read as gradio_client
    reads them: a silence longer than httpx's default 5 s is a ReadTimeout."""
    heard: list[str] = []
    params, timeout = {"session_hash": session}, httpx.Timeout(5.0)
    with httpx.stream("GET", f"{url}gradio_api/queue/data", params=params, timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                heard.append(json.loads(line[5:])["msg"])
            if heard.count("heartbeat") >= beats:
                return heard
    return heard


def test_the_first_joins_answer_at_once_while_the_build_is_held_on_a_busy_machine(
    tiny_pipeline_dir, tiny_lyrics_dir, tiny_planner_dir, tmp_path
):
    """A first /generate join that imports torch while the start-up thread does takes 3.2-3.7 s quiet and
    10.8-14.6 s loaded, past gradio_client's 5 s. Here the start-up build
    is held (as a Space's first minutes are), two processes keep the cores busy, and the first join of
    /generate, /cover (a 60 s upload) and /edit each answer while the build is still held (an order of
    events, not a time); a request waiting behind them hears a heartbeat within the client's 5 s
    (Gradio's default comes every 15 s: a script's quiet wait would be a ReadTimeout); README's
    snippet, with the client's own timeout, then makes its song once the build goes on."""
    api = FakeDeviceAPI(scale=1.0).start()
    port, log = free_port(), tmp_path / "studio.log"
    env = {**studio_env(api.url, tmp_path, tiny_pipeline_dir, tiny_lyrics_dir, port, tiny_planner_dir)}
    # Held past every join's own deadline (httpx's 120 s below): a join that waited on the build never answers.
    env["HARNESS_HOLD_BUILD"] = "600"
    url, song = f"http://127.0.0.1:{port}/", _song(tmp_path / "sixty.wav", 60.0)
    proc = start_studio(env, log)
    try:
        wait_until_serving(url, proc, log)
        fns, info = page_api(url)
        with open(song, "rb") as f:
            uploaded = httpx.post(f"{url}gradio_api/upload", files={"files": f}, timeout=120).json()[0]
        src = {"path": uploaded, "meta": {"_type": "gradio.FileData"}, "orig_name": song.name}
        one = {"inference_steps": 1, "think": False}  # what they make once the build goes on is not the point
        with busy_cores(2):
            first = {
                "generate": _timed_join(url, fns, info, "generate", prompt="first", audio_duration=10, **one),
                "cover": _timed_join(url, fns, info, "cover", src_audio=src, prompt="brass band", **one),
                "edit": _timed_join(url, fns, info, "edit", src_audio=src, prompt="a choir", repainting_start=5, **one),
            }
            # The edit waits behind the others for the held build: its stream is never silent past 5 s.
            heard = _heard_within_a_clients_timeout(url, first["edit"][2])
            # README's snippet as it stands, the client's default timeout (httpx's 5 s) and all.
            studio = Client(url, verbose=False, httpx_kwargs={"timeout": httpx.Timeout(5.0)})
            job = studio.submit(prompt="warm lo-fi", audio_duration=10, inference_steps=1, seed=1, api_name="/generate")
        proc.send_signal(signal.SIGUSR1)  # the build goes on
        made = job.result(timeout=300)
    finally:
        stop_studio(proc)
        api.close()
    seconds = {api: round(took, 3) for api, (took, _, _) in first.items()}
    print(f"\nfirst joins while the build is held, two cores busy: {seconds}")
    assert all(answer.status_code == 200 for _, answer, _ in first.values()), {
        k: a.text for k, (_, a, _) in first.items()
    }
    assert heard.count("heartbeat") == 2, heard
    # Put in order, not timed: every first join was answered while the build was still held (the
    # build goes on only at SIGUSR1, sent after them), so none of them waited on it.
    assert Path(made[0]).exists() and made[-1]["params"]["prompt"] == "warm lo-fi"


def test_the_admission_check_reads_headers_and_imports_nothing_heavy(tiny_pipeline_dir, warm_backend, tmp_path):
    """Load aside: in a fresh studio process, the checks every music endpoint's join runs (a 60 s
    upload, a 10-minute one at 16 kHz, a LoRA) decode nothing, hash nothing, scan no LoRA's numbers and
    import no model library."""
    import random_models

    script = tmp_path / "admission_check.py"
    script.write_text(ADMISSION_CHECK_SCRIPT)
    long, short = _song(tmp_path / "ten-minutes.wav", 600.0, 16000, 1), _song(tmp_path / "sixty.wav", 60.0)
    lora = random_models.save_lora(tmp_path / "style.safetensors", warm_backend.pipe.transformer)
    env = {"ACE_STUDIO_MODEL": str(tiny_pipeline_dir), "ACE_STUDIO_PLANNER_MODEL": "none"}
    env |= {"ACE_STUDIO_OUTPUT_DIR": str(tmp_path / "outputs"), "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    done = subprocess.run(
        [sys.executable, str(script), str(short), str(long), str(lora)],
        cwd=ROOT,
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["refused"] == {}, report
    assert report["heavy"] == [] and report["decodes"] == report["digests"] == report["scans"] == 0, report


ADMISSION_CHECK_SCRIPT = """
import json, sys
sys.path[:0] = [".", "tools"]
import app, admission, handlers, lora, take_latents, uploads

short, long, adapter = sys.argv[1], sys.argv[2], sys.argv[3]
HEAVY = ("torch", "diffusers", "transformers", "soxr", "librosa", "scipy", "peft", "accelerate")
asks = {
    "generate": {"prompt": "pop", "audio_duration": 240, "think": False, "lora": adapter},
    "cover": {"src_audio": long, "prompt": "brass band"},
    "extend": {"src_audio": short, "extend_seconds": 60},
    "edit": {"src_audio": long, "prompt": "a choir", "repainting_start": 100, "repainting_end": 130},
}
hashed, scanned = [], []
real, scan = take_latents.digest, lora.not_finite
take_latents.digest = lambda path: hashed.append(path) or real(path)
lora.not_finite = lambda path: scanned.append(path) or scan(path)
refused = {}
for mode, values in asks.items():
    prepare = handlers.preparer(mode)
    names = [p.name for p in handlers.preparer_parameters(prepare) if p.name != "request"]
    defaults = {p.name: p.default for p in handlers.preparer_parameters(prepare) if p.name != "request"}
    verdicts = admission.validator(handlers.admission_check(mode), names, "prompt")(*[values.get(n, defaults[n]) for n in names])
    messages = [v["message"] for v in verdicts if not v.get("is_valid", True)]
    if messages:
        refused[mode] = messages
heavy = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in HEAVY})
print(json.dumps({"refused": refused, "heavy": heavy, "decodes": uploads.stats["decodes"], "digests": len(hashed), "scans": len(scanned)}))
"""
