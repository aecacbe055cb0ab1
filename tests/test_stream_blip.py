"""A visitor's event stream blinks: the run goes on and its result reaches the stream that comes back;
a visitor who never comes back still has their run stopped, within the grace and one step.

The studio runs as ``python app.py`` on the tiny model and is reached as Gradio's protocol is, by raw
HTTP: the queue join (POST ``/gradio_api/queue/join``), then the session's event stream (GET
``/gradio_api/queue/data?session_hash=…``), dropped and opened again. Every wait is on a message of
the stream or a line of the server's log; the one pause is the blip itself, part of the scenario.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest
from gradio_client import Client

import streams
from conftest import CLIENT_TIMEOUT_S, in_a_thread, inputs, page_api, served_env, studio_process

# The grace the studio here gives a dropped stream: long enough that a loaded test machine reconnects
# well within it, short enough to wait for.
GRACE_S = 8.0
# How long a stopped run may take past the grace on a loaded machine: the watcher's interval and one
# step of the tiny model are milliseconds; the rest is the machine.
SLACK_S = 15.0
BLIP_S = 1.0


@pytest.fixture(scope="module")
def studio(tiny_pipeline_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("stream-blip")
    env = served_env(
        tiny_pipeline_dir,
        work,
        **{
            "ACE_STUDIO_GONE_GRACE_S": str(GRACE_S),
        },
    )
    with studio_process(env, work) as (url, proc):
        client = Client(url, verbose=False)
        client.predict(prompt="warm up", audio_duration=10, inference_steps=1, api_name="/generate")
        fns, parameters = page_api(url)
        yield SimpleNamespace(
            url=url,
            fn=fns["generate"],
            parameters=parameters["generate"],
            log=next(work.glob("studio-*.log")),
            out=work / "outputs",
        )


def _join(studio, session: str, **values) -> str:
    """Join a Generate as the page does; returns its event id."""
    data = inputs(studio.parameters, **values)
    joined = httpx.post(
        f"{studio.url}gradio_api/queue/join",
        json={"data": data, "fn_index": studio.fn, "session_hash": session, "trigger_id": None},
        timeout=CLIENT_TIMEOUT_S,
    )
    assert joined.status_code == 200, joined.text
    return joined.json()["event_id"]


@contextlib.contextmanager
def _stream(studio, session: str) -> Iterator[Iterator[dict]]:
    """The session's event stream, message by message; leaving the block drops the connection."""
    with httpx.stream(
        "GET", f"{studio.url}gradio_api/queue/data", params={"session_hash": session}, timeout=120
    ) as answer:
        assert answer.status_code == 200, answer.read()
        yield (json.loads(line[5:]) for line in answer.iter_lines() if line.startswith("data:"))


def _step(message: dict) -> int:
    """The step a progress message reports (0 for any other message)."""
    if message.get("msg") != "progress":
        return 0
    return max((p.get("index") or 0 for p in message.get("progress_data") or []), default=0)


def _until_step(messages: Iterator[dict], step: int) -> None:
    for message in messages:
        assert message["msg"] not in ("process_completed", "unexpected_error"), message
        if _step(message) >= step:
            return
    raise AssertionError("the stream ended before the run got under way")


def _log_from(studio) -> int:
    return studio.log.stat().st_size


def _log_since(studio, offset: int) -> str:
    return studio.log.read_bytes()[offset:].decode(errors="replace")


def _wait_for_log(studio, offset: int, text: str, timeout: float) -> float:
    """Wait until ``text`` appears in the server's log after ``offset``; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while text not in _log_since(studio, offset):
        assert time.monotonic() < deadline, _log_since(studio, offset)[-3000:]
        time.sleep(0.05)  # the log is a file: polling it is how its next line is awaited
    return time.monotonic()


def test_a_blip_keeps_the_run_and_its_result_reaches_the_stream_that_comes_back(studio):
    offset = _log_from(studio)
    session = "blip-back"
    event = _join(studio, session, prompt="a blip", audio_duration=10, inference_steps=200, seed=5)
    with _stream(studio, session) as messages:
        _until_step(messages, 2)  # the connection drops at step 2
    time.sleep(BLIP_S)  # the blip itself: a second offline, part of the scenario
    with _stream(studio, session) as messages:
        after = list(messages)
    done = [m for m in after if m["msg"] == "process_completed"]
    assert done and done[0]["event_id"] == event and done[0]["success"], after[-3:]
    take, *_ = done[0]["output"]["data"]
    assert take and take["url"].startswith("http"), done[0]
    assert httpx.get(take["url"], timeout=CLIENT_TIMEOUT_S).status_code == 200
    steps = [_step(m) for m in after if m["msg"] == "progress"]
    print(f"\nafter a {BLIP_S:.0f} s blip at step 2: {len(steps)} progress messages, the take delivered")
    assert after[-1]["msg"] == "close_stream"
    log = _log_since(studio, offset)
    assert "Traceback" not in log and "Stopped" not in log, log[-3000:]


def test_a_page_that_never_comes_back_has_its_run_stopped_within_the_grace(studio):
    offset = _log_from(studio)
    before = set(studio.out.rglob("*"))
    session = "blip-gone"
    _join(studio, session, prompt="gone", audio_duration=300, inference_steps=200, seed=6)  # outlasts the grace
    with _stream(studio, session) as messages:
        _until_step(messages, 2)
    dropped = time.monotonic()
    stopped = _wait_for_log(studio, offset, "generate: Stopped", GRACE_S + SLACK_S) - dropped
    print(f"\na page gone at step 2: its run stopped {stopped:.2f} s later (grace {GRACE_S:g} s)")
    assert stopped >= GRACE_S - 0.5, "stopped before its grace was over"
    assert set(studio.out.rglob("*")) == before
    # Coming back after the grace: a message, not Gradio's bare "404: Not Found" and a traceback in the log.
    with _stream(studio, session) as messages:
        late = list(messages)
    assert [m["msg"] for m in late] == ["unexpected_error"] and late[0]["session_not_found"], late
    assert late[0]["message"] == streams.GONE, late
    log = _log_since(studio, offset)
    assert "Traceback" not in log, log[-3000:]


def test_a_second_stream_of_the_session_takes_over_from_a_connection_that_hangs(studio):
    """A real blip leaves the old connection half open: the server does not see it go, and the old
    stream would go on taking messages (the result among them) that never arrive."""
    offset = _log_from(studio)
    session = "blip-half-open"
    event = _join(studio, session, prompt="half open", audio_duration=10, inference_steps=200, seed=7)
    with _stream(studio, session) as old:
        _until_step(old, 2)
        with _stream(studio, session) as new:
            after = list(new)
        rest = list(old)  # the server ended the old stream
    assert {m["msg"] for m in rest} <= {"progress", "heartbeat"}, rest  # sent before the takeover
    done = [m for m in after if m["msg"] == "process_completed"]
    assert done and done[0]["event_id"] == event and done[0]["success"], after[-3:]
    log = _log_since(studio, offset)
    assert "Traceback" not in log and "Stopped" not in log, log[-3000:]


def test_a_stream_for_a_session_the_studio_never_had_gets_a_message(studio):
    offset = _log_from(studio)
    with _stream(studio, "never-joined") as messages:
        got = list(messages)
    assert [m["msg"] for m in got] == ["unexpected_error"] and got[0]["message"] == streams.GONE, got
    assert "Traceback" not in _log_since(studio, offset)


def test_cancel_still_stops_at_once(studio):
    """Cancel is not a blip: the run stops at its next step, with no grace. Waited for as an event, not
    timed: the stop is said in the log while the session's stream is still open and nothing is written;
    a cancel left to a dropped stream's clean-up (``streams``) never stops a run whose stream stays open, and
    one the run's watcher did not see (``runs``) lets it make its take."""
    offset = _log_from(studio)
    before = set(studio.out.rglob("*"))
    session = "blip-cancel"
    event = _join(studio, session, prompt="cancelled", audio_duration=60, inference_steps=200, seed=8)
    with _stream(studio, session) as messages:
        _until_step(messages, 2)
        answer = httpx.post(
            f"{studio.url}gradio_api/cancel",
            json={"session_hash": session, "fn_index": studio.fn, "event_id": event},
            timeout=CLIENT_TIMEOUT_S,
        )
        assert answer.status_code == 200, answer.text
        # The deadline only ends a test whose run is never stopped.
        _wait_for_log(studio, offset, "generate: Stopped", 120)
    said = re.search(r"generate: Stopped: Stopped at step (\d+) of 200", _log_since(studio, offset))
    assert said and int(said[1]) < 200, _log_since(studio, offset)[-3000:]
    assert set(studio.out.rglob("*")) == before


def test_the_grace_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_GONE_GRACE_S", "2.5")
    assert streams.grace_s() == 2.5
    monkeypatch.setenv("ACE_STUDIO_GONE_GRACE_S", "-1")
    assert streams.grace_s() == 0.0
    monkeypatch.delenv("ACE_STUDIO_GONE_GRACE_S")
    assert streams.grace_s() == streams.DEFAULT_GRACE_S


@pytest.mark.parametrize("grace", ["0", "30"])
def test_gradios_clean_up_of_a_dropped_stream_waits_for_the_grace_only(monkeypatch, grace):
    """What Gradio's stream route does when its connection drops, on a queue the studio holds: with no
    grace the session is cleaned at once, as Gradio does; with one, its message box is kept."""
    import asyncio

    import gradio as gr

    monkeypatch.setenv("ACE_STUDIO_GONE_GRACE_S", grace)
    with gr.Blocks() as page:
        gr.Markdown("x")
    page.queue()
    streams.hold(page)
    queue = page._queue

    async def drop() -> None:
        queue.pending_messages_per_session["s"] = asyncio.Queue()
        del queue.pending_messages_per_session["s"]
        await queue.clean_events(session_hash="s")

    in_a_thread(asyncio.run, drop())
    assert ("s" in queue.pending_messages_per_session) == (grace != "0")
