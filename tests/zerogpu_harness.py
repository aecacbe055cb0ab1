"""ZeroGPU on a CPU: the real ``spaces`` wrappers, a fake device API, and the studio served under them.

- ``FakeDeviceAPI`` answers the four endpoints the ``spaces`` client calls (``/schedule``,
  ``/allow``, ``/release``, ``/startup-report``) from a thread on loopback, records every declared
  duration, refuses the calls ``error_messages`` names as ZeroGPU refuses an exhausted quota, and kills the worker process of a call that outlives its declared duration times
  ``scale`` (``scales`` gives one-off scales for the next calls), as ZeroGPU does; a worker the wrapper
  replaces is ended (``ended``), as ZeroGPU ends a worker it no longer uses.
- ``serve()`` (``--serve``) is the studio process: ``spaces.zero.torch`` is replaced by no-ops before
  ``spaces`` is imported (there is no CUDA to pack or move), then ``app.main()`` runs with
  ``SPACES_ZERO_GPU=true``, so every GPU call forks a worker and crosses by pickle, as on a Space.

One command serves the studio this way on tiny random models (docs/deployment.md)::

    python tests/zerogpu_harness.py            # then open http://127.0.0.1:7860
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent


class FakeDeviceAPI:
    """The ZeroGPU device API, as far as the ``spaces`` client uses it, in a thread of this process."""

    def __init__(self, scale: float = 1.0, fresh_every: int = 3) -> None:
        self.scale = scale
        self.scales: list[float] = []  # one-off scales, used before ``scale`` by the next calls
        # Every n-th schedule reports the GPU as not idle, so the wrapper forks a fresh worker
        # instead of reusing the last one: both of ZeroGPU's behaviours get exercised.
        self.fresh_every = fresh_every
        self.durations: list[int] = []
        # ZeroGPU's refusals for the next calls, as its /schedule sends them (HTTP 429): ``{"left":
        # seconds of quota left, "wait": seconds until it comes back}``; a negative wait is a duration
        # over the visitor's largest ("illegal duration"). Their declared durations go to ``refused``.
        self.refusals: list[dict[str, int]] = []
        self.refused: list[int] = []
        self.killed: list[int] = []
        self.ended: list[int] = []  # workers ended because the wrapper forked another in their place
        self.workers: list[int] = []  # every worker that said who it is
        self.startup_reports = 0
        # Each call's GPU as ZeroGPU lends it: (scheduled, released), ``time.monotonic()`` of this process.
        self.spans: list[list[float]] = []
        # When each call was scheduled on the wall clock (``time.time()``): put in order with what another
        # process wrote (a file's mtime), as ``spans`` are with this process's own events.
        self.scheduled_at: list[float] = []
        self._calls: dict[str, dict[str, Any]] = {}
        self._last_pid: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-zerogpu-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeDeviceAPI:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for call in self._calls.values():
                call["timer"].cancel()

    def _schedule(self, query: dict[str, str]) -> dict[str, Any]:
        token = uuid.uuid4().hex
        duration = int(query.get("durationSeconds", 60))
        with self._lock:
            self.durations.append(duration)
            scale = self.scales.pop(0) if self.scales else self.scale
            idle = self.fresh_every <= 0 or len(self.durations) % self.fresh_every != 0
            timer = threading.Timer(duration * scale, self._expire, args=(token,))
            timer.daemon = True
            self.spans.append([time.monotonic(), math.inf])
            self.scheduled_at.append(time.time())
            self._calls[token] = {"task": query.get("taskId", ""), "pid": None, "idle": idle, "timer": timer}
            self._calls[token]["span"] = self.spans[-1]
        timer.start()
        return {"idle": idle, "nvidiaIndex": 0, "nvidiaUUID": "GPU-harness", "allowToken": token}

    def _refusal(self, query: dict[str, str]) -> dict[str, int] | None:
        with self._lock:
            if not self.refusals:
                return None
            self.refused.append(int(query.get("durationSeconds", 60)))
            return self.refusals.pop(0)

    def _allow(self, query: dict[str, str]) -> None:
        """A worker says who it is. One the wrapper forked in place of the function's last worker ends
        that one, as ZeroGPU ends a worker it no longer uses (the wrapper only drops it: kept alive, the
        replaced workers of a long run held gigabytes)."""
        pid = int(query["pid"])
        with self._lock:
            call = self._calls.get(query.get("allowToken", ""))
            replaced = None
            if call is not None:
                call["pid"] = pid
                self.workers.append(pid)
                replaced = self._last_pid.get(call["task"])
                self._last_pid[call["task"]] = pid
        if replaced is not None and replaced != pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(replaced, signal.SIGKILL)
                self.ended.append(replaced)

    def _release(self, query: dict[str, str]) -> None:
        with self._lock:
            call = self._calls.pop(query.get("allowToken", ""), None)
        if call is not None:
            call["timer"].cancel()
            call["span"][1] = time.monotonic()

    def _expire(self, token: str) -> None:
        with self._lock:
            call = self._calls.get(token)
            if call is None:
                return
            pid = call["pid"]
            if pid is None and call["idle"]:
                # A reused worker sends no /allow: it is the last one allowed for the same function,
                # if that one is still alive (otherwise the wrapper forks a new one, which will).
                pid = self._last_pid.get(call["task"])
                if pid is not None and not _alive(pid):
                    pid = None
            if pid is None:
                # The worker is still being forked: time is up as soon as it says who it is.
                call["timer"] = threading.Timer(0.02, self._expire, args=(token,))
                call["timer"].daemon = True
                call["timer"].start()
                return
            del self._calls[token]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            self.killed.append(pid)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                body, status = b"", 200
                refusal = api._refusal(query) if url.path == "/schedule" else None
                if refusal is not None:
                    body, status = json.dumps(refusal).encode(), 429
                elif url.path == "/schedule":
                    body = json.dumps(api._schedule(query)).encode()
                elif url.path == "/allow":
                    api._allow(query)
                elif url.path == "/release":
                    api._release(query)
                elif url.path == "/startup-report":
                    api.startup_reports += 1
                else:
                    self.send_error(404)
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a process ended but not yet reaped by its parent does not)."""
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[-1][:4]
    except OSError:
        return False


def studio_env(
    api_url: str, work: Path, model: Path, lyrics_model: Path, port: int, planner_model: Path | None = None
) -> dict[str, str]:
    """The environment of a studio process that believes it runs on a ZeroGPU Space."""
    cgroup = work / "cgroup"
    cgroup.write_text("12:devices:/harness\n")
    return {
        **os.environ,
        "SPACES_ZERO_GPU": "true",
        "SPACES_ZERO_DEVICE_API_URL": api_url,
        "ZEROGPU_PROC_SELF_CGROUP_PATH": str(cgroup),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "ACE_STUDIO_MODEL": str(model),
        "ACE_STUDIO_VARIANT": "xl-sft",
        "ACE_STUDIO_LYRICS_MODEL": str(lyrics_model),
        "ACE_STUDIO_PLANNER_MODEL": str(planner_model) if planner_model else "none",
        "ACE_STUDIO_OUTPUT_DIR": str(work / "outputs"),
        "ACE_STUDIO_CANCEL_DIR": str(work / "cancel"),
    }


NO_SPACES = (
    "The ZeroGPU harness needs the `spaces` package (pip install -r requirements-dev.txt). Without it the "
    "studio runs as on any machine, so its ZeroGPU tests would pass without testing ZeroGPU at all."
)


class NoSpaces(RuntimeError):
    """``spaces`` is not installed: the harness refuses to start rather than test nothing."""


def require_spaces() -> None:
    """Refuse, with what to do, where ``spaces`` is missing (found without importing it: importing
    it here would also import Gradio into the test process)."""
    import importlib.util

    if importlib.util.find_spec("spaces") is None:
        raise NoSpaces(NO_SPACES)


def start_studio(env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    """The studio in its own process group, so that stopping it also ends the workers it forked; it
    ends with the process that started it, even one killed by SIGKILL (``serve`` takes its workers
    along). Its output goes to ``log``, or where this process's goes."""
    import studio_fork

    require_spaces()
    return studio_fork.start([str(Path(__file__).resolve()), "--serve"], env, log)


def stop_studio(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _no_cuda_spaces() -> None:
    """``spaces.zero.torch`` as no-ops: it packs and moves CUDA tensors, and there is no CUDA here."""
    stub = types.ModuleType("spaces.zero.torch")
    for name in ("enter_mode", "patch", "unpatch", "init", "move"):
        setattr(stub, name, lambda *args, **kwargs: None)
    stub.pack = lambda *args, **kwargs: 0
    stub.size = lambda *args, **kwargs: 0
    stub.is_in_bad_fork = lambda *args, **kwargs: False
    sys.modules["spaces.zero.torch"] = stub


def _end_the_group(signum: int, frame: Any) -> None:
    """SIGTERM (a stop, or the death of the test run): end the whole process group, the ZeroGPU
    workers this studio forked included, which would otherwise be left behind."""
    os.killpg(os.getpgid(0), signal.SIGKILL)


def _count_vae_encodes(log: Path) -> None:
    """A spy at the model-call boundary for tests: each VAE encode the studio or any worker it forks
    makes, one line in ``log`` (the samples it was given), appended as it happens (workers' memory
    is gone after each call; a file is not)."""
    from diffusers import AutoencoderOobleck

    real = AutoencoderOobleck.encode

    def encode(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        with open(log, "a") as out:
            out.write(f"{int(x.shape[-1])}\n")
        return real(self, x, *args, **kwargs)

    AutoencoderOobleck.encode = encode


def _hold_the_build(seconds: float) -> None:
    """The start-up build waits until this process gets SIGUSR1, at most ``seconds``: a studio that
    serves while its models are still being built, as a Space does for its first minutes."""
    import startup

    released, build = threading.Event(), startup.Warmup._build
    signal.signal(signal.SIGUSR1, lambda *_: released.set())

    def held(self: Any) -> None:
        released.wait(seconds)
        build(self)

    startup.Warmup._build = held


def serve() -> None:
    try:
        require_spaces()
    except NoSpaces as exc:
        sys.exit(str(exc))
    _no_cuda_spaces()
    sys.path.insert(0, str(ROOT))
    if os.getpgid(0) == os.getpid():  # the leader of its own group (start_studio): the group is its own
        signal.signal(signal.SIGTERM, _end_the_group)
    if os.environ.get("HARNESS_VAE_ENCODES"):
        _count_vae_encodes(Path(os.environ["HARNESS_VAE_ENCODES"]))
    if os.environ.get("HARNESS_BAND"):  # the stand-in band behind the model's call, read at each call
        sys.path.insert(0, str(ROOT / "tools"))
        import band

        band.install(band.from_file(Path(os.environ["HARNESS_BAND"])))
    import scripted_planner

    scripted_planner.install_from_env()
    if os.environ.get("HARNESS_HOLD_BUILD"):
        _hold_the_build(float(os.environ["HARNESS_HOLD_BUILD"]))
    import app

    app.main()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the studio as on a ZeroGPU Space, on a CPU.")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help="pipeline folder (default: tiny random models)")
    parser.add_argument("--lyrics-model", type=Path, help="lyrics LM folder (default: a tiny random one)")
    parser.add_argument("--planner-model", type=Path, help="5 Hz planner folder (default: a tiny random one)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--scale", type=float, default=1.0, help="kill a call after declared duration × this")
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    try:
        require_spaces()
    except NoSpaces as exc:
        sys.exit(str(exc))
    sys.path[:0] = [str(ROOT), str(ROOT / "tools")]  # the modules, and the tools beside them (random_models)
    work = Path(tempfile.mkdtemp(prefix="ace-zerogpu-"))
    import random_models

    model = args.model or random_models.save_pipeline(work / "tiny-diffusers")
    lyrics_model = args.lyrics_model or random_models.save_lyrics_lm(work / "tiny-qwen2")
    planner_model = args.planner_model or random_models.save_planner_lm(work / "tiny-planner")
    api = FakeDeviceAPI(scale=args.scale).start()
    env = studio_env(api.url, work, model, lyrics_model, args.port, planner_model)
    # Its own group (Ctrl-C here does not reach it: stopped below), ended with this process however it
    # ends (a kill -9 too), so the next ``python app.py`` finds its port free.
    proc = start_studio(env)
    print(f"Fake ZeroGPU device API on {api.url}; studio on http://127.0.0.1:{args.port} (Ctrl-C stops)", flush=True)
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_studio(proc)
        api.close()
        print(f"Declared GPU durations: {api.durations}; workers killed: {len(api.killed)}")


if __name__ == "__main__":
    main()
