"""Studios the tests start, forked from an interpreter that has already imported their libraries.

A studio's start is ``python app.py`` (or the ZeroGPU harness's ``--serve``): 9.6 s of CPU until it serves,
6.4 s of them importing torch, diffusers, transformers, librosa, demucs… (``startup.LIBRARIES``), and the
suite starts about forty-five of them on a 2-core machine; forked from here, 1.2-1.6 s until its
page answers (quiet). Each test process keeps one interpreter that has imported those libraries once and
nothing of the studio; a studio is forked from it, given its own environment, folder, output and process
group, and runs its script as ``python script`` would (``runpy``, ``__main__``). The studio's own modules are
imported in the studio, after its environment is set. Gradio is imported here too (imported in each studio,
its start took 2.9-3.2 s; half of Gradio's import is it parsing each component's source for its ``.pyi``):
what it reads of its settings as it is imported is heard (``GRADIO_READ``), and a studio forked from here has
those it sets read again from its own environment (``_gradio_as_set``), or is a new interpreter where it sets
one this does not know how to set again.

What a library reads from the environment as it is imported is the interpreter's: a studio whose
environment differs from it anywhere but in the studio's own settings (``STUDIO_PREFIXES``) is started as a new
interpreter instead, as is every studio whose environment sets ``ACE_STUDIO_TESTS_FORK=0``: test_newcomer's,
started with the README's command itself, and one of the harness's kill tests.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Settings the studio reads when it runs, never a library as it is imported but Gradio (its reads heard:
# ``GRADIO_READ``).
STUDIO_PREFIXES = ("ACE_STUDIO_", "GRADIO_", "HARNESS_", "SPACES_", "ZEROGPU_", "PYTEST_")
# What the studio's launch imports besides Gradio (imported after these, its reads heard): the MCP
# SDK for its tools for agents (``agents.tools_class``, 0.56 s) and two of Gradio's own libraries (0.25 s),
# none of which reads a setting in ``STUDIO_PREFIXES`` as it is imported: 0.8 s of CPU off each studio forked.
AT_LAUNCH = ("mcp", "mcp.server.sse", "mcp.server.streamable_http_manager", "fastapi", "pandas")
# Set in a test process as it runs, never read by a library as it is imported with another value: by a studio
# as it starts (``models.enable_mps_fallback``, before torch; Gradio's launch, after the Hub's import), which a
# new studio sets again; by scikit-learn as it is imported (librosa's harmonic part for the key: Intel's OpenMP
# settings, unused by torch's libgomp); by torch's inductor, naming its default cache folder (LyCORIS imports it);
# by ``lokr`` as it is imported (LyCORIS's kernels, read at each call). Counted as read on
# import, any of the last four made every studio a test process started after it a new interpreter (9 s of CPU
# each, not 3.6 s: test_duration_estimate's and the ones after it in its process).
SET_AS_IT_RUNS = (
    "PYTORCH_ENABLE_MPS_FALLBACK",
    "HF_HUB_DISABLE_TELEMETRY",
    "KMP_INIT_AT_FORK",
    "KMP_DUPLICATE_LIB_OK",
    "TORCHINDUCTOR_CACHE_DIR",
    "LYCORIS_KERNEL_BACKEND",
)
# Read by huggingface_hub as it is imported, and set again in a studio forked with a value of its own
# (``_hub_cache_as_set``): the Hub cache of the ZeroGPU Space's studio (its Demucs bag). Counted as read on
# import, that studio was a new interpreter (its libraries imported in 17.1 s after its page answered, load 6).
SET_IN_THE_STUDIO = ("HF_HUB_CACHE",)
# What Gradio read of the environment as it was imported here (its name → the value then, None where unset).
GRADIO_READ: dict[str, str | None] = {}
# The Gradio whose modules ``_gradio_holds`` and ``_gradio_drawn`` know: under another, a studio that sets any of
# Gradio's settings otherwise than the interpreter is a new interpreter.
GRADIO_KNOWN = "6.31."


def _gradio_holds(env: dict[str, str]) -> dict[tuple[str, str], object]:
    """What Gradio's modules hold of ``env`` once imported (6.31): ``(module, attribute)`` → value, as each
    module computes it at its top. ``test_zerogpu`` holds a forked studio's Gradio to a new interpreter's."""
    import tempfile

    temp = env.get("GRADIO_TEMP_DIR") or str(Path(tempfile.gettempdir()) / "gradio")
    port, name = int(env.get("GRADIO_SERVER_PORT", "7860")), env.get("GRADIO_SERVER_NAME", "127.0.0.1")
    temps = (
        "gradio.route_utils",
        "gradio.routes",
        "gradio.mcp",
        "gradio.screen_recording_utils",
        "gradio_client.client",
    )
    return {
        **{(module, "DEFAULT_TEMP_DIR"): temp for module in temps},
        **{(module, "INITIAL_PORT_VALUE"): port for module in ("gradio.http_server", "gradio.node_server")},
        ("gradio.http_server", "LOCALHOST_NAME"): name,
        ("gradio.node_server", "LOCALHOST_NAME"): env.get("GRADIO_NODE_SERVER_NAME", name),
    }


def _gradio_drawn() -> dict[tuple[str, str], object]:
    """What Gradio draws at random as it is imported (6.31), drawn again for each studio: its own secret (the
    workflow's write token), not the interpreter's that every studio forked from it would share."""
    import secrets

    return {("gradio.workflow", "WRITE_TOKEN"): secrets.token_urlsafe(32)}


# The settings ``_gradio_holds`` reads: a studio may set these to its own values and still be forked.
GRADIO_SET_AGAIN = ("GRADIO_TEMP_DIR", "GRADIO_SERVER_PORT", "GRADIO_SERVER_NAME", "GRADIO_NODE_SERVER_NAME")


def _die_with_parent() -> None:
    """Be ended when the process that started this one dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class Forked:
    """A studio forked from the interpreter, with what the tests use of ``subprocess.Popen``."""

    def __init__(self, pid: int, interpreter: Interpreter) -> None:
        self.pid, self._interpreter, self.returncode = pid, interpreter, None

    def poll(self) -> int | None:
        self.returncode = self._interpreter.ended.get(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        with self._interpreter.changed:
            if not self._interpreter.changed.wait_for(lambda: self.pid in self._interpreter.ended, timeout):
                raise subprocess.TimeoutExpired(f"studio {self.pid}", timeout)
        return self.poll()

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Interpreter:
    """The test process's side: starts the interpreter, asks it for studios, hears how each ended. Without
    ``libraries`` it imports none (a test of how studios end, not of how they start)."""

    def __init__(self, libraries: bool = True) -> None:
        self.env = dict(os.environ)
        # No preexec_fn (ctypes after a fork of this threaded process): it ties itself to this pid.
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(os.getpid()), *([] if libraries else ["--bare"])],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ended: dict[int, int] = {}
        self.changed = threading.Condition()
        self.gone = False
        self._started: list[int] = []
        threading.Thread(target=self._hear, daemon=True).start()

    def _hear(self) -> None:
        for line in self.proc.stdout:
            try:
                kind, pid, *code = line.split()
                pid, code = int(pid), [int(c) for c in code]
            except ValueError:
                continue
            with self.changed:
                if kind == "ended":
                    self.ended[pid] = code[0]
                else:  # a pid an ended studio had may come again: its end is said after this line
                    self.ended.pop(pid, None)
                    self._started.append(pid)
                self.changed.notify_all()
        with self.changed:  # the interpreter is gone, and its studios with it
            self.gone = True
            self.ended.update({pid: -signal.SIGTERM for pid in self._started if pid not in self.ended})
            self.changed.notify_all()

    def fits(self, env: dict[str, str]) -> bool:
        def read_on_import(of: dict[str, str]) -> dict[str, str]:
            return {
                k: v
                for k, v in of.items()
                if not k.startswith(STUDIO_PREFIXES) and k not in SET_AS_IT_RUNS and k not in SET_IN_THE_STUDIO
            }

        return self.proc.poll() is None and read_on_import(self.env) == read_on_import(env)

    def start(self, argv: list[str], env: dict[str, str], log: Path) -> Forked:
        ask = {"argv": argv, "env": env, "log": str(log)}
        with self.changed:
            known = len(self._started)
            self.proc.stdin.write(json.dumps(ask) + "\n")
            self.proc.stdin.flush()
            if not self.changed.wait_for(lambda: len(self._started) > known or self.gone, 120):
                self.proc.kill()  # what it was asked is not forked later, unseen
            if len(self._started) <= known:
                raise RuntimeError("the studios' interpreter did not fork")
            return Forked(self._started[known], self)


_INTERPRETER: list[Interpreter] = []


def start(argv: list[str], env: dict[str, str], log: Path | None = None) -> Any:
    """``python argv…`` in ``ROOT`` with exactly ``env``, in its own process group, ended with this process,
    its output to ``log``: forked from this process's interpreter where ``env`` fits it, otherwise (with no
    ``log``, its output then where this process's goes; off Linux, where a fork after these imports is not
    safe, macOS's Objective-C runtime among them) a new interpreter."""
    if log is not None and sys.platform == "linux" and env.get("ACE_STUDIO_TESTS_FORK", "1") != "0":
        if not _INTERPRETER or _INTERPRETER[0].proc.poll() is not None:
            _INTERPRETER[:] = [Interpreter()]
        if _INTERPRETER[0].fits(env):
            with contextlib.suppress(RuntimeError, OSError):  # gone or stuck: a new interpreter below
                return _INTERPRETER[0].start(argv, env, log)
    with open(log, "wb") if log is not None else contextlib.nullcontext() as out:
        return subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


# ---------------------------------------------------------------- the interpreter's side


def _run(ask: dict[str, Any], parent: int) -> None:
    """In the forked child: become ``python argv…`` as ``start`` asked, and never return."""
    code = 1
    try:
        os.setsid()
        _die_with_parent()
        if os.getppid() != parent:  # the interpreter died before the tie was made
            os._exit(1)
        os.close(_SAY.fileno())
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        os.environ.clear()
        os.environ.update(ask["env"])
        _hub_cache_as_set()
        os.chdir(ROOT)
        fd = os.open(ask["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        script = str(ROOT / ask["argv"][0])
        if not _gradio_as_set():  # Gradio read a setting here that this studio sets otherwise: a new interpreter,
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # with what ``subprocess.Popen`` would give it
            os.execve(sys.executable, [sys.executable, script, *ask["argv"][1:]], ask["env"])
        sys.argv = [script, *ask["argv"][1:]]
        sys.path[0] = str(Path(script).parent)
        import runpy

        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if not isinstance(stop.code, int) and stop.code is not None:
            print(stop.code, file=sys.stderr)  # as Python says sys.exit("why")
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _hub_cache_as_set() -> None:
    """huggingface_hub's Hub cache, read as it was imported, as this studio's environment sets it."""
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is None:
        return
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(constants.HF_HOME, "hub")
    for module in (constants, sys.modules.get("huggingface_hub.utils._cache_manager")):
        for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
            if module is not None and hasattr(module, name):
                setattr(module, name, cache)


def _gradio_as_set() -> bool:
    """Gradio's settings read as it was imported here, as this studio's environment sets them; False where
    the studio sets one otherwise that ``_gradio_holds`` does not hold (a new interpreter then)."""
    # The studio's own settings (``STUDIO_PREFIXES``) and those set as libraries run (set here before Gradio's import, and in the
    # studio again): every other setting is the interpreter's (``Interpreter.fits``).
    own = (*SET_AS_IT_RUNS, *SET_IN_THE_STUDIO)
    differs = {
        n
        for n, value in GRADIO_READ.items()
        if (n.startswith(STUDIO_PREFIXES) or n in own) and os.environ.get(n) != value
    }
    known = getattr(sys.modules.get("gradio"), "__version__", "").startswith(GRADIO_KNOWN)
    if differs - set(GRADIO_SET_AGAIN if known else ()):
        return False
    for (name, attribute), value in {**_gradio_holds(dict(os.environ)), **_gradio_drawn()}.items():
        module = sys.modules.get(name)
        if module is None or not hasattr(module, attribute):
            continue
        if attribute == "DEFAULT_TEMP_DIR":  # a string made as it was imported, no literal
            _defaults_as_set(module, getattr(module, attribute), value)
        setattr(module, attribute, value)
    return True


def _defaults_as_set(module: Any, was: object, value: object) -> None:
    """Each default of ``module``'s functions and methods that is ``was`` (bound as it was imported: gradio_client's
    download folder) made ``value``."""
    import inspect

    owners = [module, *(c for c in vars(module).values() if inspect.isclass(c) and c.__module__ == module.__name__)]
    for owner in owners:
        for function in vars(owner).values():
            if inspect.isfunction(function) and function.__defaults__:
                function.__defaults__ = tuple(value if d is was else d for d in function.__defaults__)
            if inspect.isfunction(function) and function.__kwdefaults__:
                function.__kwdefaults__ = {k: value if d is was else d for k, d in function.__kwdefaults__.items()}


def _import_gradio() -> None:
    """``import gradio``, hearing which settings it reads (``GRADIO_READ``): every read of the environment
    goes through ``os._Environ.__getitem__`` (``os.getenv``, ``get``, ``in``). A walk over all of it
    (``items()``, ``values()``) is not counted: Gradio's one (``gradio.workflow``'s HTTP client, httpx looking for
    ``*_proxy`` settings) reads none of the studio's own (``STUDIO_PREFIXES``), and every other is the interpreter's (``fits``)."""
    real = os._Environ.__getitem__
    read: set[str] = set()

    def reading(environ: Any, name: str) -> str:
        caller = sys._getframe(1).f_code
        if not (caller.co_name == "__iter__" and caller.co_filename == "<frozen _collections_abc>"):
            read.add(name)
        return real(environ, name)

    os._Environ.__getitem__ = reading
    try:
        importlib.import_module("gradio")
    finally:
        os._Environ.__getitem__ = real
    GRADIO_READ.update({name: os.environ.get(name) for name in read})


def _reap(*_: Any) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        print("ended", pid, os.waitstatus_to_exitcode(status), file=_SAY, flush=True)


def serve(libraries: bool = True) -> None:
    """Import the studio's libraries (``startup.LIBRARIES``, not the studio), then fork a studio for each
    line on stdin; say each one's pid, and how each one ended."""
    # Blocked in every thread the imports start; the main thread takes it only between forks, so a
    # studio's "ended" always comes after its "started".
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    if libraries:
        _import_libraries()
    signal.signal(signal.SIGCHLD, _reap)
    _fork_each_line()


def _import_libraries() -> None:
    sys.path.insert(0, str(ROOT))
    import models
    import startup

    models.enable_mps_fallback()  # as app.py does, before torch
    startup.import_libraries()
    for name in AT_LAUNCH:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    _import_gradio()
    modules = [
        name for name, module in sys.modules.items() if Path(getattr(module, "__file__", None) or "/").parent == ROOT
    ]
    for name in modules:
        del sys.modules[name]  # the studio imports its own modules, with its own environment
    sys.path.remove(str(ROOT))


def _fork_each_line() -> None:
    while True:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        line = sys.stdin.readline()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        if not line:
            return
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _run(json.loads(line), parent)
        print("started", pid, file=_SAY, flush=True)


if __name__ == "__main__":
    _die_with_parent()
    if os.getppid() != int(sys.argv[1]):  # the test process died before the tie was made
        sys.exit(1)
    # Its own stream to the test process; whatever a library prints goes to stderr instead.
    _SAY = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    serve(libraries="--bare" not in sys.argv[2:])
