"""What importing the app costs and what it must not do."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time

import pytest

import handlers
import runs
import status
from conftest import ROOT


def _run(code: str, *args: str, **more: str) -> str:
    """``code`` in a fresh interpreter with ``args`` (and ``more`` in its environment); what it printed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTORCH_ENABLE_MPS_FALLBACK"} | more
    command = [sys.executable, "-c", code, *args]
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture(scope="module")
def fresh_import() -> dict[str, str]:
    """One fresh interpreter that imports the app (6 s of Gradio imports, paid once for both checks):
    what the import loaded, and the page's public endpoints, each on its own labelled line."""
    got = _run(
        "import sys, os, app, backend\n"
        "print('loaded:', [m for m in ('torch', 'diffusers', 'transformers', 'mlx') if m in sys.modules],"
        " backend.is_warm(), os.environ.get('PYTORCH_ENABLE_MPS_FALLBACK'))\n"
        "cfg = app.demo.get_config_file()\n"
        "print('endpoints:', sorted(d['api_name'] for d in cfg['dependencies']"
        " if d.get('api_visibility', 'public') == 'public'))"
    )
    return dict(line.split(": ", 1) for line in got.splitlines() if line.startswith(("loaded: ", "endpoints: ")))


def test_import_app_loads_no_model_library_and_builds_nothing(fresh_import):
    assert fresh_import["loaded"] == "[] False 1"


def test_every_action_is_a_named_endpoint(fresh_import):
    for name in ("generate", "stop"):
        assert f"'{name}'" in fresh_import["endpoints"]


# Buffers freed the way a studio's requests free them: a large one first (glibc then raises its
# mmap threshold to that size), then a hundred 4 MB ones (audio-sized) beside small allocations that stay.
FREED = (
    "import os, sys, numpy as np, memory\n"
    "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') // 2**20\n"
    "base, big = rss(), np.ones(3 * 2**20)\n"
    "del big\n"
    "takes, pins = [], []\n"
    "for _ in range(100):\n"
    "    takes.append(np.ones(2**19))\n"
    "    pins.append(bytearray(4096))\n"
    "del takes\n"
    "if sys.argv[-1] == 'trim':\n"
    "    memory.trim()\n"
    "print(rss() - base)\n"
)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the trim is glibc's")
def test_an_events_trim_gives_freed_audio_buffers_back():
    """Two visitors' ordinary requests took a server from 163 MB to 5.8 GB, freed memory glibc
    kept; ``memory.trim`` (after every event) gives it back. Without it the same buffers stay."""
    kept = {how: int(_run(FREED, how)) for how in ("trim", "none")}
    assert kept["trim"] < 40 and kept["none"] > 200, kept


def test_four_takes_decode_one_at_a_time(studio_env):
    """The soak's peak was the VAE decode of every take of a request at once (1.9 GB for four
    60 s takes on the tiny VAE, kept through the finish). A take at a time (diffusers' slicing: a 4 x 60 s
    decode's peak 1.27 -> 0.51 GB, docs/performance.md), so a four-take click reaches the decoder as four
    one-take calls. Counted at the decoder's call, not read from the RSS: a server's RSS under load is
    the allocator's to keep, and a ratio of two readings failed CI once (2.15x against 2x)."""
    import backend

    batches: list[int] = []
    decoder = backend.get_backend().pipe.vae.decoder
    hook = decoder.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    try:
        handlers.make(
            "generate", prompt="peak", audio_duration=12, inference_steps=1, think=False, seed=1, batch_size=4
        )
    finally:
        hook.remove()
    assert batches == [1, 1, 1, 1], batches


def test_the_trim_is_a_no_op_where_the_c_library_is_not_glibc(monkeypatch):
    import ctypes

    import memory

    def no_glibc(*args: object, **kwargs: object) -> None:
        raise OSError("no C library by that name")

    monkeypatch.setattr(ctypes, "CDLL", no_glibc)
    monkeypatch.setattr(memory, "_libc", [])
    assert memory.trim() is None


def test_missing_weights_are_found_missing_before_torch_is_imported(tmp_path):
    """A studio without its weights refuses a song at once: the weights are looked for before torch
    and diffusers (10 s of imports and their memory) are brought in for nothing."""
    got = _run(
        "import sys, backend, models\n"
        "try:\n    backend.get_backend()\nexcept models.WeightsMissing as exc:\n    print(type(exc).__name__)\n"
        "print([m for m in ('torch', 'diffusers') if m in sys.modules])",
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path),
        HF_HUB_CACHE=str(tmp_path / "hub"),
        ACE_STUDIO_MODEL="",
        ACE_STUDIO_VARIANT="xl-sft",
    )
    assert got.split() == ["WeightsMissing", "[]"]


def test_status_line_follows_the_model_from_cold_to_ready(studio_env, monkeypatch):
    import backend

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    text, timer = status.studio_status()
    assert "A local model (**tiny-diffusers**) runs on **CPU**" in text and "loads on first use" in text
    assert timer.active is False  # nothing happening: the page's stamp or a click wakes it (tools/bench_idle.py)
    run = runs.start_run("a visitor's request")  # a run may start the build: the line is watched
    try:
        assert status.studio_status()[1].active is True
    finally:
        runs.finish_run(run)
    monkeypatch.setattr(backend, "_loading_since", 0.0)
    monkeypatch.setattr(backend.time, "time", lambda: 12.0)
    text, timer = status.studio_status()
    assert "12 s so far" in text and timer.active is True
    monkeypatch.setattr(backend, "_loading_since", None)
    monkeypatch.setattr(backend.time, "time", time.time)
    backend.get_backend()
    text, timer = status.studio_status()
    assert text.startswith("Ready: a local model (**tiny-diffusers**) on **CPU** (loaded in ") and timer.active is False
    monkeypatch.delenv("ACE_STUDIO_MODEL")
    assert status.model_label() == "**ACE-Step 1.5 XL SFT** (ACE-Step/acestep-v15-xl-sft)"
    assert "XL SFT" in status.header()


def test_what_runs_is_named_as_it_is(monkeypatch, tmp_path):
    import backend

    folder = tmp_path / "my-finetune"
    folder.mkdir()
    names = {
        "": "ACE-Step 1.5 XL SFT (ACE-Step/acestep-v15-xl-sft)",  # the default: the variant is known
        "ACE-Step/acestep-v15-xl-turbo-diffusers": "ACE-Step 1.5 XL Turbo (ACE-Step/acestep-v15-xl-turbo-diffusers)",
        "someone/ace-remix": "someone/ace-remix",  # a repo the registry does not know: no variant claimed
        str(folder): "a local model (my-finetune)",
        str(tmp_path / "typo" / "music"): "a local model (music)",  # a path, even a missing one, is no repo id
    }
    monkeypatch.setenv("ACE_STUDIO_VARIANT", "xl-sft")
    for source, label in names.items():
        monkeypatch.setenv("ACE_STUDIO_MODEL", source)
        who = backend.model_identity()
        assert who["label"] == label, source
        assert (who["variant"] is None) == (source not in ("", "ACE-Step/acestep-v15-xl-turbo-diffusers")), source
        assert str(tmp_path) not in str(who)  # never a server path
    assert status.model_label() == "a local model (**music**)"


def test_device_names_for_visitors(monkeypatch):

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert status.device_label("cuda") == "ZeroGPU"
    monkeypatch.delenv("SPACES_ZERO_GPU")
    assert [status.device_label(d) for d in ("cuda", "mps", "cpu")] == ["NVIDIA GPU (CUDA)", "Apple GPU (MPS)", "CPU"]


def test_demo_song_is_synthesized_here_and_usable_as_a_source():
    import numpy as np

    import audio
    import examples

    song = audio.load(examples.demo_song())
    assert song.shape == (2, int(examples.DEMO_SECONDS * audio.SAMPLE_RATE))
    assert 0.05 < audio.rms(song) < 0.5
    np.testing.assert_array_equal(examples.demo_song_audio(), examples.demo_song_audio())
    assert len(examples.GENERATE) == len(examples.GENERATE_LABELS)
    assert {lang for *_, lang in examples.GENERATE} >= {"en", "es", "ja", "fr", "ko"}


def test_two_studios_writing_the_demo_song_at_once_both_get_it(monkeypatch, tmp_path):
    """Two processes importing the app on a fresh machine each write the demo song: a second writer that
    finishes between the first's write and its move must leave the first its own file to move (a collection
    error of pytest-xdist's second worker, seen with a fresh temp folder)."""
    import soundfile as sf

    import examples

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    write, others = sf.write, []

    def write_while_another_writes(path, *args, **kwargs):
        write(path, *args, **kwargs)
        if not others:
            others.append("writing")
            others[0] = examples.demo_song()  # the other studio, start to end, before this one moves its file

    monkeypatch.setattr(sf, "write", write_while_another_writes)
    mine = examples.demo_song()
    assert mine == others[0] == str(tmp_path / "ace-studio-examples" / "demo-song.wav")
    assert sf.info(mine).duration == examples.DEMO_SECONDS
    assert [p.name for p in (tmp_path / "ace-studio-examples").iterdir()] == ["demo-song.wav"]
    assert os.stat(mine).st_mode & 0o777 == 0o644  # every user of the machine reads it


def test_a_missing_model_says_what_to_do_and_stays_on_the_page(studio_env, monkeypatch, tmp_path):
    import gradio as gr

    monkeypatch.setenv("ACE_STUDIO_MODEL", str(tmp_path / "no-such-model"))
    try:
        handlers.make("generate", prompt="pop", audio_duration=10, inference_steps=1)
    except gr.Error as exc:
        assert "ACE_STUDIO_MODEL" in exc.message and "python tools/random_models.py DIR" in exc.message
        assert exc.duration is None  # until the visitor dismisses it
    else:
        raise AssertionError("a missing model must be reported")


def test_a_model_that_failed_to_load_stays_named_in_the_header(studio_env, monkeypatch, tmp_path):
    import backend

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    good = os.environ["ACE_STUDIO_MODEL"]
    monkeypatch.setenv("ACE_STUDIO_MODEL", str(tmp_path / "no-such-model"))
    with pytest.raises(Exception, match="does not exist"):
        backend.get_backend()
    for _ in range(2):  # the timer's tick, and a reload's first call
        text, timer = status.studio_status()
        # What is missing first, then what to do.
        assert text.startswith("The model folder ") and "does not exist on this machine. What to do:" in text
        assert "loads on first use" not in text and timer.active is False  # until a click tries again
    monkeypatch.setenv("ACE_STUDIO_MODEL", good)
    backend.get_backend()  # a later click that loads it
    assert status.studio_status()[0].startswith("Ready: ")


def test_the_queue_looks_for_work_every_20_ms_not_every_millisecond():
    """Gradio's queue polls every 1 ms for an event to start and every 10 ms for progress to send, even
    idle: 0.43 s of CPU every 10 s for a studio left running (``tools/soak.py --idle``). The loops still read
    the intervals by the names ``configure_queue`` sets, only ``Blocks.queue`` makes the queue (so a launch
    keeps it), and a configured page holds the studio's intervals."""
    import inspect

    import gradio as gr
    from gradio import queueing

    import app

    loops = inspect.getsource(queueing.Queue.start_processing) + inspect.getsource(
        queueing.Queue.start_progress_updates
    )
    assert "asyncio.sleep(self.sleep_when_free)" in loops
    assert "asyncio.sleep(self.progress_update_sleep_when_free)" in loops
    makers = [
        name for name, fn in inspect.getmembers(gr.Blocks, inspect.isfunction) if "Queue(" in inspect.getsource(fn)
    ]
    assert makers == ["queue"], makers
    page = app.configure_queue(gr.Blocks())
    polls = (page._queue.sleep_when_free, page._queue.progress_update_sleep_when_free)
    assert polls == (app.QUEUE_POLL_S, app.PROGRESS_POLL_S) and max(polls) <= 0.05
