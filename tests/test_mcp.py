"""Tests of ``agents``, ``agent_table`` and ``mcp_schema``: the served studio on the tiny models, called
through its MCP endpoint with the real ``mcp`` client, as an agent calls it."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

pytest.importorskip("mcp")

from mcp import ClientSession  # noqa: E402
from mcp.client.sse import sse_client  # noqa: E402
from mcp.client.streamable_http import streamablehttp_client  # noqa: E402

from conftest import CLIENT_TIMEOUT_S, in_a_thread, inputs, page_api  # noqa: E402
from test_song_map import clicking  # noqa: E402, F401 (a fixture)


async def _session_do(url: str, work: Any, sse: bool = False, headers: dict[str, str] | None = None) -> Any:
    """``work(session)`` in an initialized MCP session with the studio at ``url``, as the agent ``headers`` say."""
    if sse:
        async with sse_client(url + "gradio_api/mcp/sse", headers=headers) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)
    async with streamablehttp_client(url + "gradio_api/mcp/", headers=headers) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)


def agent(url: str, work: Any, sse: bool = False, headers: dict[str, str] | None = None) -> Any:
    return in_a_thread(anyio.run, _session_do, url, work, sse, headers)


def call(
    url: str, tool: str, arguments: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[bool, list[str]]:
    """One tool call: (whether it is an error, its texts)."""

    async def work(session: ClientSession) -> Any:
        return await session.call_tool(tool, arguments)

    result = agent(url, work, headers=headers)
    return bool(result.isError), [c.text for c in result.content]


def raw_call(
    url: str, tool: str, arguments: Any, headers: dict[str, str] | None = None, http: httpx.Client | None = None
) -> tuple[bool, list[str]]:
    """One ``tools/call`` POSTed as it is, as a flooder sends it (the server is stateless: no session
    first), and its answer: (whether it is an error, its texts); through ``http`` where given."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    sent = {"accept": "application/json, text/event-stream", "content-type": "application/json", **(headers or {})}
    post = http.post if http is not None else httpx.post
    response = post(url + "gradio_api/mcp/", content=json.dumps(body), headers=sent, timeout=120)
    for line in response.text.splitlines():
        if line.startswith("data:") and (message := json.loads(line[5:])).get("id") == 1:
            result = message["result"]
            return bool(result.get("isError")), [c["text"] for c in result["content"]]
    raise AssertionError(response.text[:500])


def tools(url: str, sse: bool = False) -> dict[str, Any]:
    async def work(session: ClientSession) -> Any:
        return (await session.list_tools()).tools

    return {tool.name: tool for tool in agent(url, work, sse)}


def test_the_tools_are_the_musicians_endpoints_each_parameter_described(studio_server):
    import admission
    import agent_table
    import agents
    import audio
    import checks
    import mcp_schema

    url, _ = studio_server
    listed = tools(url)
    assert sorted(listed) == sorted(agents.TOOLS)
    for name, tool in listed.items():
        assert tool.description and "Gradio" not in tool.description, name
        properties = tool.inputSchema["properties"]
        assert properties, name
        for parameter, schema in properties.items():
            assert schema.get("description"), (name, parameter)
    generate = listed["generate"].inputSchema["properties"]
    # The range is the one ``audio`` holds, in the studio's description.
    assert f"Range: {audio.MIN_SECONDS:g}–{audio.MAX_SECONDS:g} s." in generate["audio_duration"]["description"]
    assert "the model's default" in generate["inference_steps"]["description"]
    assert f"Up to {checks.MAX_CAPTION_CHARS} characters." in generate["prompt"]["description"]
    # A key the studio takes as text ("A min") is not refused by an enum before its checks.
    assert "enum" not in generate["key_scale"]
    assert "upload" in listed["cover"].inputSchema["properties"]["src_audio"]["description"]
    # Edit's lines as README and the endpoint take them: a number, a list, or text such as "3, 4".
    lines = listed["edit"].inputSchema["properties"]["lines"]
    assert {"array", "string", "number"} <= set(lines["type"]) and "Default: none." in lines["description"]
    assert '"3, 4"' in lines["description"] and "Default: []" not in lines["description"]
    # A musician's bar 1: Edit and Extend count their bars from it, in seconds, none by default.
    for name in ("edit", "extend"):
        first = listed[name].inputSchema["properties"]["first_downbeat"]
        assert "Where bar 1 starts, in seconds" in first["description"] and 'Default: "".' in first["description"]
        assert first["default"] == "" and {"number", "string", "null"} <= set(first["type"]), first
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert (
        f"at most {agent_table.AGENT_SHARE} agents at once for one address and {agent_table.AGENT_SHARE} for one set"
        in readme
    )
    assert f"half of the {admission.all_places()} agents kept in all" in readme
    assert f"nested deeper than {mcp_schema.DEEPEST} levels is refused" in readme
    # Settings, Stop and My takes stay in the API only.
    assert "stop" not in listed and "settings" not in listed
    # The same tools over SSE, the older transport.
    assert sorted(tools(url, sse=True)) == sorted(agents.TOOLS)


def test_a_song_through_the_mcp_endpoint(studio_server):
    url, out = studio_server
    failed, texts = call(
        url,
        "generate",
        {"prompt": "funk groove", "audio_duration": 10, "inference_steps": 1, "seed": 21, "think": False},
    )
    assert not failed, texts
    take_url, line, record, made = texts[0], texts[-2], json.loads(texts[-1]), texts[-1]
    assert len(texts) == 3  # one take asked for: the unused slots are left out
    assert "21" in line and record["takes"][0]["seed"] == 21 and record["params"]["audio_duration"] == 10
    relative = record["takes"][0]["audio"]
    assert take_url == f"{url}takes/{relative}" and (out / relative).is_file()
    with urllib.request.urlopen(take_url, timeout=CLIENT_TIMEOUT_S) as response:
        assert response.read() == (out / relative).read_bytes()

    # The take goes on by its URL (the agent's own) and by its record.
    failed, texts = call(url, "extend", {"src_audio": take_url, "extend_seconds": 10, "inference_steps": 1})
    assert not failed, texts
    extended = json.loads(texts[-1])
    assert (out / extended["takes"][0]["audio"]).is_file() and extended["params"]["audio_duration"] == 20
    failed, texts = call(url, "variations", {"record": made, "count": 1, "amount": 0.2})
    assert not failed, texts
    varied = json.loads(texts[-1])
    assert (out / varied["takes"][0]["audio"]).is_file() and varied["takes"][0]["variation"]["of"]["audio"] == record[
        "takes"
    ][0]["audio"]
    failed, texts = call(url, "morph", {"record": made, "prompt": "slow acoustic ballad", "inference_steps": 1})
    assert not failed, texts
    morphed = json.loads(texts[-1])
    assert morphed["mode"] == "morph" and (out / morphed["takes"][0]["audio"]).is_file()


def test_a_refusal_comes_back_with_the_studios_message(studio_server):
    url, _ = studio_server
    failed, texts = call(url, "generate", {"prompt": "funk", "audio_duration": 10000, "think": False})
    assert failed and "Duration" in texts[0] and "600" in texts[0] and "Traceback" not in texts[0], texts


def test_an_argument_a_tool_does_not_use_is_refused_in_the_words_the_page_and_api_give(studio_server):
    """An argument the chosen way of a tool does not use (``parameters.USED_BY``): *Let Think rewrite the caption*
    with Think off, a start from the song with Morph on, a style with a part taken out, each refused through MCP in
    the words the preparer gives the page and the API (tests/test_unused_arguments.py derives every case)."""
    import checks
    import handlers

    url, out = studio_server
    failed, texts = call(
        url, "generate", {"prompt": "funk", "audio_duration": 10, "inference_steps": 1, "think": False}
    )
    assert not failed, texts
    take_url, take = texts[0], out / json.loads(texts[-1])["takes"][0]["audio"]
    cases = {
        "generate": {"prompt": "funk", "think": False, "rewrite_caption": False},
        "cover": {
            "src_audio": take_url,
            "prompt": "glass",
            "morph": True,
            "morph_prompt": "a funk groove",
            "cover_noise_strength": 0.3,
        },
        "edit": {"src_audio": take_url, "change": "extract", "part": "drums", "prompt": "brass"},
    }
    for tool, arguments in cases.items():
        here = {**arguments, **({"src_audio": str(take)} if "src_audio" in arguments else {})}
        with pytest.raises(checks.InputError) as refused:
            handlers.prepare_for_admission(tool, here)
        assert refused.value.param in arguments and refused.value.param != "src_audio", tool
        failed, texts = call(url, tool, {**arguments, "inference_steps": 1})
        said = f"{refused.value.param}: {refused.value.message}"  # as the join's validation names each field
        assert failed and texts[0].endswith(said) and "Traceback" not in texts[0], (tool, said, texts)


def test_files_only_by_the_url_of_this_studios_takes_and_uploads(studio_server, tmp_path):
    import mcp_schema

    url, out = studio_server
    refused = mcp_schema.MCP_NOT_HERE.format(name="src_audio")
    for elsewhere in (
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "/etc/passwd",
        f"{url}takes/x.wav",
    ):
        failed, texts = call(url, "describe", {"src_audio": elsewhere})
        assert failed and refused in texts[0], (elsewhere, texts)


def test_an_agents_takes_are_its_own(studio_server):
    """Each agent is a visitor of its own (its own session: its takes, its share of the queue): a take
    one agent made is not another's to pass by URL."""
    import mcp_schema

    url, out = studio_server
    one, other = {"X-IP-Token": "one-agent"}, {"X-IP-Token": "another-agent"}
    failed, texts = call(
        url, "generate", {"prompt": "funk", "audio_duration": 10, "inference_steps": 1, "think": False}, one
    )
    assert not failed, texts
    failed, texts = call(url, "describe", {"src_audio": texts[0]}, other)
    assert failed and mcp_schema.MCP_NOT_HERE.format(name="src_audio") in texts[0], texts


def test_off_by_a_setting_serves_no_mcp_route(studio_env, monkeypatch):
    """``ACE_STUDIO_MCP=off`` is read as the studio launches (``agents.launch_option``): a page launched in
    this process with it set, as ``python app.py`` launches its own, serves no MCP route, and its named
    API as ever."""
    from conftest import page_here

    monkeypatch.setenv("ACE_STUDIO_MCP", "off")
    with page_here() as (url, _):
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url + "gradio_api/mcp/sse", timeout=CLIENT_TIMEOUT_S)
        assert missing.value.code == 404
        # The named API is there as ever.
        with urllib.request.urlopen(url + "gradio_api/info", timeout=CLIENT_TIMEOUT_S) as response:
            assert "/generate" in json.loads(response.read())["named_endpoints"]


@pytest.fixture
def space(zerogpu_space):
    """The studio served under the ZeroGPU harness (the real ``spaces`` wrappers, a fake device API): conftest's
    ``zerogpu_space``, started once a run for this file and test_zerogpu's (conftest's ``SHARING``), not a
    studio of this file's own (a new interpreter: its environment trusted certifi's authorities, for the CPU
    test below that counts instead now)."""
    return zerogpu_space.url, zerogpu_space.api, None


def test_on_zerogpu_an_agent_enters_the_gpu_and_hears_its_quota_as_a_message(space):
    url, api, _ = space
    agent_token = {"X-IP-Token": "an-agent"}
    seen = len(api.durations)
    song = {"prompt": "funk", "audio_duration": 10, "inference_steps": 1, "think": False}
    failed, texts = call(url, "generate", song, agent_token)
    assert not failed, texts
    assert len(api.durations) > seen  # the GPU entry declared its duration, as a click's does
    api.refusals = [{"left": 100, "wait": 7511}]
    failed, texts = call(url, "generate", {**song, "audio_duration": 240, "batch_size": 4}, agent_token)
    assert failed and "your daily ZeroGPU quota has 1:40 left" in texts[0] and "comes back in 2:05:11" in texts[0]
    assert not api.refusals  # asked once and refused


def test_an_agent_holds_a_visitors_share_and_gives_it_back_when_it_goes(studio_server):
    """An agent's share of the GPU queue is a visitor's (``ACE_STUDIO_PER_VISITOR``, refused with the
    same message past it); an agent that goes away has its requests cancelled and the share comes back."""
    import admission

    url, _ = studio_server
    greedy = {"X-IP-Token": "a-greedy-agent"}
    long_song = {"prompt": "hold the GPU", "audio_duration": 60, "inference_steps": 200, "think": False}
    short = {"prompt": "funk", "audio_duration": 10, "inference_steps": 1, "think": False}

    async def holding(joined: anyio.Event) -> None:
        async def work(session: ClientSession) -> Any:
            async def progress(step: float, total: float | None, message: str | None) -> None:
                if message and message != "Joined server queue.":  # in the queue or running: joined
                    joined.set()

            return await session.call_tool("generate", long_song, progress_callback=progress)

        await _session_do(url, work, headers=greedy)

    async def scenario() -> tuple[bool, list[str]]:
        async with anyio.create_task_group() as agent_runs:
            for _ in range(admission.per_visitor()):
                joined = anyio.Event()
                agent_runs.start_soon(holding, joined)
                await joined.wait()
            refused = await anyio.to_thread.run_sync(call, url, "generate", short, greedy)
            agent_runs.cancel_scope.cancel()  # the agent goes away
        return refused

    failed, texts = in_a_thread(anyio.run, scenario)
    assert failed and f"You already have {admission.per_visitor()} requests" in texts[0], texts
    # Its requests are cancelled: the share comes back (at once for the one waiting, within a step for
    # the one running), so a song of the agent's gets in and is made.
    # Left running, the two long songs would hold it about 90 s here; cancelled, about 2 s.
    gone = time.monotonic()
    deadline = gone + 20
    while (answer := call(url, "generate", short, greedy))[0]:  # each refused call is the wait's tick
        assert "You already have" in answer[1][0] and time.monotonic() < deadline, answer
    failed, texts = answer
    print(f"\nthe agent's share came back and its song was made {time.monotonic() - gone:.2f} s after it went")
    assert json.loads(texts[-1])["takes"][0]["seed"] >= 0


def _generate_events(queue: Any) -> tuple[list[str], list[str]]:
    """The ids of the ``generate`` requests in Gradio's ``queue``: (waiting, running)."""
    waiting = [e._id for line in list(queue.event_queue_per_concurrency_id.values()) for e in list(line.queue)]
    running = [e._id for job in list(queue.active_jobs) if job for e in job]
    return waiting, running


def test_an_agent_that_leaves_one_call_keeps_its_other(studio_server):
    """An agent's calls share one session of the studio's; one call left (its connection gone) stops that
    call only. Stopped with Gradio's ``/cancel``, it would end every running call of the session's
    endpoint: the agent's song running beside it would lose its task and its answer, and the agent's next
    song would wait for ever (the GPU queue idle, a song in Gradio's queue)."""
    import runs
    from conftest import SERVED

    url, _ = studio_server
    queue = SERVED[url]._queue
    who = {"X-IP-Token": "an-agent-with-two-calls"}
    long_song = {"prompt": "hold the GPU", "audio_duration": 60, "inference_steps": 200, "think": False}
    short = {"prompt": "funk", "audio_duration": 10, "inference_steps": 1, "think": False}

    async def calling(song: dict[str, Any], joined: anyio.Event) -> None:
        async def work(session: ClientSession) -> Any:
            async def progress(step: float, total: float | None, message: str | None) -> None:
                if message and message != "Joined server queue.":
                    joined.set()

            return await session.call_tool("generate", song, progress_callback=progress)

        await _session_do(url, work, headers=who)

    async def scenario() -> tuple[list[str], list[str]]:
        async with anyio.create_task_group() as agent:
            runs_now, waits = anyio.Event(), anyio.Event()
            agent.start_soon(calling, long_song, runs_now)
            await runs_now.wait()
            _, (running,) = _generate_events(queue)
            async with anyio.create_task_group() as leaving:
                leaving.start_soon(calling, short, waits)
                await waits.wait()
                # Waiting for the GPU: in Gradio's queue, or running in the GPU queue beside the long song.
                (left,) = [e for e in sum(_generate_events(queue), []) if e != running]
                leaving.cancel_scope.cancel()  # this call's connection goes; the long song's stays
            while left in sum(_generate_events(queue), []) and not runs.event_stopped(left):  # its stop lands
                await anyio.sleep(0.05)
            after = ([], [e for e in _generate_events(queue)[1] if e != left])
            agent.cancel_scope.cancel()  # then the agent goes, and its long song stops within a step
        while any(_generate_events(queue)):
            await anyio.sleep(0.05)
        return [running], after[1]

    before, after = in_a_thread(anyio.run, scenario)
    assert after == before, "the long song's run ended with the call left beside it"


def test_ids_stopped_and_never_run_are_not_kept_for_ever(monkeypatch):
    """A stop by id is forgotten when its run starts or ends; one whose request never ran (refused, or
    dropped with its page) is let go once it is older than ``runs.STOPPED_KEPT_S``: a server left
    running keeps a bounded set, whatever agents leave behind."""
    import runs

    monkeypatch.setattr(runs, "_stopped_events", {})
    monkeypatch.setattr(runs, "STOPPED_KEPT_S", 0.0)
    for event_id in ("never-ran-1", "never-ran-2"):
        runs.stop_event(event_id)
    runs.stop_event("the-latest")
    assert list(runs._stopped_events) == ["the-latest"] and runs.event_stopped("the-latest")
    assert runs.forget_event("the-latest") and not runs.event_stopped("the-latest")
    assert not runs.forget_event(None)


# A call every admission check refuses, before anything is queued or made.
REFUSED = {"prompt": "funk", "audio_duration": 10000, "think": False}


def test_one_stranger_with_many_credentials_shuts_out_no_other_agent(studio_server):
    """70 calls from one address, each with an ``Authorization`` of its own, could fill the agents' table
    (``admission.all_places()``) and every other agent would be told the studio was full for a minute.
    The headers a caller picks tell its agents apart within its address's share only."""
    import admission
    import agent_table
    import mcp_schema
    from conftest import SERVED

    url, _ = studio_server
    stranger, other = "81.2.69.142", "81.2.69.160"  # public addresses, as a local proxy forwards them

    def flood(i: int) -> tuple[bool, list[str]]:
        return raw_call(url, "generate", REFUSED, {"x-forwarded-for": stranger, "authorization": f"Bearer s-{i}"})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(flood, range(70)))
    assert admission.all_places() < 70
    assert all(failed for failed, _ in answers)
    assert not [texts for _, texts in answers if mcp_schema.MCP_MANY_AGENTS in texts[0]]
    # The stranger's own agents stay within its share; past it, its own calls are told so.
    assert SERVED[url].mcp_server_obj.callers.shares(f"address:{stranger}") <= agent_table.AGENT_SHARE
    # Another agent is served at once: its call reaches the studio's checks.
    failed, texts = raw_call(url, "generate", REFUSED, {"x-forwarded-for": other})
    assert failed and "Duration must be between" in texts[0], texts

    # Strangers without a public address (here the machine itself) count in one share, of half the table.
    def unnamed(i: int) -> tuple[bool, list[str]]:
        return raw_call(url, "generate", REFUSED, {"authorization": f"Bearer u-{i}"})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(unnamed, range(70)))
    assert not [texts for _, texts in answers if mcp_schema.MCP_MANY_AGENTS in texts[0]]
    assert SERVED[url].mcp_server_obj.callers.shares(agent_table.NO_ADDRESS) <= agent_table.shared_share()
    failed, texts = raw_call(url, "generate", REFUSED, {"x-forwarded-for": other, "authorization": "Bearer mine"})
    assert failed and "Duration must be between" in texts[0], texts


def test_an_mcp_call_costs_the_studio_about_what_its_join_costs(studio_server, monkeypatch):
    """200 refused ``generate`` calls, 16 at once, could stall another client's GET 12–15× longer through
    the MCP endpoint than the same joins sent straight: each call would cost the studio 46–60 ms of CPU
    against the join's 4–5 ms where each agent's client read every certificate authority's certificate
    into a TLS context a call and built ~200 endpoints, and ``mcp`` checked each tool's schema against
    JSON Schema's own (and looked its own version up on disk) a call. Counted, not timed:
    once an agent's first call is made, its further calls do none of that work in the studio (served in this
    process, where it is counted), as a join sent straight does none."""
    import importlib.metadata
    import ssl

    import gradio_client.client
    import jsonschema

    url, _ = studio_server
    fns, parameters = page_api(url)
    data = inputs(parameters["generate"], **REFUSED)
    counts = {"certificates read": 0, "endpoints built": 0, "schemas checked": 0, "versions looked up": 0}

    def counted(kind: str, real: Any) -> Any:
        def count(*args: Any, **kwargs: Any) -> Any:
            counts[kind] += 1
            return real(*args, **kwargs)

        return count

    for kind, owner, name in (
        ("certificates read", ssl.SSLContext, "load_verify_locations"),
        ("endpoints built", gradio_client.client.Endpoint, "__init__"),
        ("schemas checked", jsonschema, "validate"),  # ``mcp``'s own check: the schema, then the arguments
        ("versions looked up", importlib.metadata, "version"),
    ):
        monkeypatch.setattr(owner, name, counted(kind, getattr(owner, name)))

    with httpx.Client(timeout=120) as http:  # the test's own TLS context made here, once, before counting

        def join() -> None:
            body = {"data": data, "fn_index": fns["generate"], "session_hash": uuid.uuid4().hex, "trigger_id": None}
            answer = http.post(url + "gradio_api/queue/join", json=body)
            assert answer.status_code == 422 and "Duration must be between" in answer.text, answer.text

        def through_mcp() -> None:
            failed, texts = raw_call(url, "generate", REFUSED, {"x-ip-token": "a-busy-agent"}, http)
            assert failed and "Duration must be between" in texts[0], texts

        join(), through_mcp()  # each way's first: the agent's client made, the tools' validators with it
        first = dict(counts)
        for _ in range(20):
            join()
        joined = dict(counts)
        for _ in range(20):
            through_mcp()
    print(
        f"\n20 refused generate calls: sent straight {_more(joined, first)}, through the MCP endpoint {_more(counts, joined)}"
    )
    assert _more(joined, first) == _more(counts, joined) == dict.fromkeys(counts, 0), (first, joined, counts)


def _more(now: dict[str, int], then: dict[str, int]) -> dict[str, int]:
    return {kind: now[kind] - then[kind] for kind in now}


def test_a_voice_by_its_takes_url(studio_server):
    """``reference_take`` given as the take's URL, as README says and an agent receives it, is taken
    (not refused for its length, 64 characters at most), through the MCP endpoint and through
    gradio_client."""
    from gradio_client import Client

    url, _ = studio_server
    sung = {"prompt": "funk", "lyrics": "[Verse]\nhello there\nmy friend", "audio_duration": 10, "inference_steps": 1}
    agent_token = {"X-IP-Token": "a-singing-agent"}
    failed, texts = call(url, "generate", {**sung, "think": False}, agent_token)
    assert not failed, texts
    take_url = texts[0]
    assert len(take_url) > 64
    failed, texts = call(url, "generate", {**sung, "think": False, "reference_take": take_url}, agent_token)
    assert not failed, texts
    assert json.loads(texts[-1])["params"]["reference"]["take"] == take_url.split("/takes/", 1)[1]

    client = Client(url, verbose=False)
    record = client.predict(**sung, think=False, api_name="/generate")[-1]
    by_url = f"{url}takes/{record['takes'][0]['audio']}"
    again = client.predict(**sung, think=False, reference_take=by_url, api_name="/generate")[-1]
    assert again["params"]["reference"]["take"] == record["takes"][0]["audio"]


def test_an_agents_mistakes_come_back_as_messages(studio_server, monkeypatch):
    """An unknown tool, a record nested 200 or 5,000 deep, a parameter of the wrong kind or one a tool
    does not have each get the studio's message, not ``'nope'``, the loopback's "Client error '400 Bad
    Request' for url 'http://127.0.0.1:…'", "maximum recursion depth exceeded", or jsonschema's or
    Gradio's own message."""
    import agents
    import mcp_schema

    url, _ = studio_server
    failed, texts = raw_call(url, "nope", {})
    assert failed and texts[0] == "The studio has no tool 'nope'. Its tools: " + ", ".join(agents.TOOLS) + ".", texts
    for depth in (200, 5000):
        failed, texts = raw_call(url, "variations", {"record": "[" * depth + "]" * depth})
        assert failed and texts[0].startswith(f"record nests {depth} levels deep; a record or plan a tool"), texts
    nested: Any = []
    for _ in range(20):
        nested = [nested]
    failed, texts = raw_call(url, "variations", {"record": {"takes": nested}})
    assert failed and texts[0].startswith("record nests 22 levels deep"), texts
    assert mcp_schema.DEEPEST < 22
    failed, texts = raw_call(url, "generate", {"prompt": "funk", "think": "maybe"})
    assert failed and texts[0] == 'think takes true or false; it was given "maybe".', texts
    failed, texts = raw_call(url, "generate", {"prompt": "funk", "tempo": 120})
    assert failed and texts[0].startswith("generate has no parameter 'tempo'. Its parameters: prompt, "), texts
    # An HTTP refusal of the loopback join (here its body over a limit set low) with the gate's message.
    monkeypatch.setenv("ACE_STUDIO_MAX_BODY_MB", str(200 / 2**20))  # the call ~150 bytes, its join ~280
    failed, texts = raw_call(url, "generate", REFUSED)
    assert failed and texts[0] == "This request is larger than the studio accepts.", texts


def test_edit_takes_lines_as_readme_gives_them(studio_server):
    """The ``edit`` tool's ``lines`` takes what README (and the endpoint) take: a number, a list of
    numbers or of text, or text such as "3, 4" or "3-5", not only a list of text (``["2"]``) with
    ``"2"`` and ``[2]`` refused by jsonschema."""
    url, _ = studio_server
    agent_token = {"X-IP-Token": "an-editing-agent"}
    lyrics = "[Verse]\nthe first line\nthe second line\n[Chorus]\nthe third line\nthe fourth line"
    song = {"prompt": "funk", "lyrics": lyrics, "audio_duration": 10, "inference_steps": 1, "think": False}
    failed, texts = call(url, "generate", song, agent_token)
    assert not failed, texts
    take_url, times = texts[0], [line["time"] for line in json.loads(texts[-1])["takes"][0]["lyric_lines"]]
    spans = [end - start for start, end in zip(times, [*times[1:], 10.0], strict=True)]
    n = spans.index(max(spans)) + 1  # the line sung longest: a stretch long enough to make again
    for lines in (n, float(n), str(n), [n], [str(n)], [n, str(n)], f"{n}, {n}", f"{n}-{n}"):
        failed, texts = call(url, "edit", {"src_audio": take_url, "lines": lines, "inference_steps": 1}, agent_token)
        assert not failed, (lines, texts)
        assert json.loads(texts[-1])["params"]["edited_lines"] == [n, n], lines


def test_an_agent_edits_and_extends_by_the_bar(studio_server, clicking):  # noqa: F811
    """The edit and extend tools take bars as a take's record counts them (``takes[i].bars``), and their
    descriptions say what a bar is; the music model plays a click track (test_song_map's ``clicking``)."""
    url, _ = studio_server
    agent_token = {"X-IP-Token": "a-counting-agent"}
    found = tools(url)
    assert "one measure" in found["edit"].description + json.dumps(found["edit"].inputSchema)
    assert "Edit by the bar" in found["edit"].inputSchema["properties"]["bars"]["description"]
    assert "Whole bars to add" in found["extend"].inputSchema["properties"]["bars"]["description"]
    song = {"prompt": "click", "audio_duration": 12, "bpm": 120, "time_signature": "4", "inference_steps": 1}
    failed, texts = call(url, "generate", {**song, "think": False}, agent_token)
    assert not failed, texts
    take_url, bars = texts[0], json.loads(texts[-1])["takes"][0]["bars"]
    assert len(bars) >= 5
    for chosen in ([2, 3], "2-3", ["2", 3]):
        failed, texts = call(
            url, "edit", {"src_audio": take_url, "prompt": "dub", "bars": chosen, "inference_steps": 1}, agent_token
        )
        assert not failed, (chosen, texts)
        params = json.loads(texts[-1])["params"]
        assert params["edited_bars"] == [2, 3] and (params["repainting_start"], params["repainting_end"]) == (
            bars[1],
            bars[3],
        )
    failed, texts = call(url, "extend", {"src_audio": take_url, "bars": 4, "inference_steps": 1}, agent_token)
    assert not failed and json.loads(texts[-1])["params"]["extend_bars"] == 4, texts
    failed, texts = call(
        url, "edit", {"src_audio": take_url, "prompt": "dub", "bars": 99, "inference_steps": 1}, agent_token
    )
    assert failed and f"The song has {len(bars)} bars; there is no bar 99" in texts[0], texts


# A proxy uvicorn does not trust (its hop a private address): every caller through it is nameless.
BEHIND_A_PROXY = {"x-forwarded-for": "10.16.3.80"}
TINY_SONG = {"prompt": "funk", "audio_duration": 10, "inference_steps": 1, "think": False}


def test_nameless_callers_never_act_as_each_other_unless_they_share_credentials(studio_server):
    """Two MCP callers with no credentials and no public address are not one agent (one could extend the
    other's take as its own). Without an address, a take is its caller's where the caller sends the same
    credentials again; a call with none is an agent of its own."""
    import mcp_schema

    url, _ = studio_server
    not_here = mcp_schema.MCP_NOT_HERE.format(name="src_audio")
    failed, texts = raw_call(url, "generate", TINY_SONG, BEHIND_A_PROXY)
    assert not failed, texts
    nobodys = texts[0]
    for headers in (BEHIND_A_PROXY, {**BEHIND_A_PROXY, "authorization": "Bearer b"}):
        failed, texts = raw_call(url, "describe", {"src_audio": nobodys}, headers)
        assert failed and not_here in texts[0], (headers, texts)
    mine = {**BEHIND_A_PROXY, "authorization": "Bearer mine"}
    failed, texts = raw_call(url, "generate", TINY_SONG, mine)
    assert not failed, texts
    extend = {"src_audio": texts[0], "extend_seconds": 10, "inference_steps": 1}
    failed, texts = raw_call(url, "extend", extend, {**BEHIND_A_PROXY, "authorization": "Bearer b"})
    assert failed and not_here in texts[0], texts
    failed, texts = raw_call(url, "extend", extend, mine)
    assert not failed and json.loads(texts[-1])["params"]["audio_duration"] == 20, texts


def test_a_nameless_flood_of_new_credentials_shuts_out_no_agent_served_before(studio_server, monkeypatch):
    """One nameless caller sending long calls with a new ``Authorization`` each could fill the nameless
    half of the agents' table, and every other nameless agent would be refused with a message untrue of
    it. New credentials without an address are one crowd of ``AGENT_SHARE``: past it the flood's own calls are
    told so, and an agent already served, or one with an address, is served at once."""
    import agent_table
    import mcp_schema
    from conftest import SERVED

    url, _ = studio_server
    known = {**BEHIND_A_PROXY, "authorization": "Bearer served-before"}
    failed, texts = raw_call(url, "generate", TINY_SONG, known)
    assert not failed, texts
    gate = _held_at_the_model(monkeypatch)
    crowd = mcp_schema.agents_here("newcomers", agent_table.AGENT_SHARE)
    flooders = 3 * agent_table.AGENT_SHARE
    with ThreadPoolExecutor(flooders) as pool:
        calls = [
            pool.submit(raw_call, url, "generate", TINY_SONG, {**BEHIND_A_PROXY, "authorization": f"Bearer f-{i}"})
            for i in range(flooders)
        ]
        try:
            refused = []
            for done in as_completed(calls, timeout=120):  # the crowd's places are held at the model's call
                refused.append(done.result())
                if len(refused) == flooders - agent_table.AGENT_SHARE:
                    break
            assert all(failed and texts[0] == crowd for failed, texts in refused), refused
            table = SERVED[url].mcp_server_obj.callers
            assert table.shares(agent_table.NEWCOMERS) == agent_table.AGENT_SHARE
            # The agent served before, and one with an address, reach the studio's checks at once.
            for headers in (known, {"x-forwarded-for": "81.2.69.160"}):
                failed, texts = raw_call(url, "generate", REFUSED, headers)
                assert failed and "Duration must be between" in texts[0], (headers, texts)
            # A new agent without credentials is told why, with a message true of it.
            failed, texts = raw_call(url, "generate", REFUSED, BEHIND_A_PROXY)
            assert failed and texts[0] == crowd and "has not served yet" in crowd, texts
        finally:
            gate.set()
        # The crowd's own calls are served once the model runs again.
        assert sum(not call.result()[0] for call in calls) == agent_table.AGENT_SHARE


def test_one_nameless_caller_holds_half_the_songs_places_whatever_credentials_it_shows(studio_server, monkeypatch):
    """Counted by credentials alone, an agent without a public address switching through 8 credentials
    would hold 8 GPU places (each served credentials an agent of its own, with a visitor's share each: 28
    of them could hold every place). Agents without an address count in one crowd at admission, of half
    the GPU's places (``admission.CROWDS``): past it each is told why with a message, and an agent with
    an address still gets in."""
    import admission
    import messages

    monkeypatch.setenv("ACE_STUDIO_QUEUE_SIZE", "8")  # half: 4 places for every nameless agent together
    url, _ = studio_server
    most = admission.crowd_most(admission.NAMELESS_AGENTS, admission.GPU)
    credentials = [{**BEHIND_A_PROXY, "authorization": f"Bearer n-{i}"} for i in range(most + 2)]
    for headers in credentials:  # each served once: known agents, no longer newcomers (``agent_table``)
        failed, texts = raw_call(url, "generate", TINY_SONG, headers)
        assert not failed, texts
    gate = _held_at_the_model(monkeypatch)
    told = messages.NAMELESS_AGENTS_HELD.format(held=most)
    with ThreadPoolExecutor(len(credentials)) as pool:
        calls = [pool.submit(raw_call, url, "generate", TINY_SONG, headers) for headers in credentials]
        try:
            refused = []
            for done in as_completed(calls, timeout=120):  # the crowd's places are held at the model's call
                refused.append(done.result())
                if len(refused) == len(credentials) - most:
                    break
            print(f"\n{len(credentials)} credentials without an address: {most} held, {len(refused)} told")
            assert all(failed and told in texts[0] for failed, texts in refused), refused
            failed, texts = raw_call(url, "generate", REFUSED, {"x-forwarded-for": "81.2.69.160"})
            assert failed and "Duration must be between" in texts[0], texts
        finally:
            gate.set()
        assert sum(not call.result()[0] for call in calls) == most


def test_an_ipv6_callers_agents_count_in_its_64s_share(studio_server):
    """An IPv6 caller does not get a share per address. Ten addresses of one /64 are one agent (its
    addresses rotate there: its takes stay its own); with ten credentials, ten agents that count in that
    /64's one share of ``AGENT_SHARE``; each call is still answered with the studio's message."""
    import agent_table
    from conftest import SERVED

    url, _ = studio_server
    table, share = SERVED[url].mcp_server_obj.callers, "address:2a01:4f8:10a:1f::/64"
    for credentials in (False, True):
        for i in range(10):
            sent = {
                "x-forwarded-for": f"2a01:4f8:10a:1f::{i + 1:x}",
                **({"authorization": f"b-{i}"} if credentials else {}),
            }
            failed, texts = raw_call(url, "generate", REFUSED, sent)
            assert failed and "Duration must be between" in texts[0], texts
        assert table.shares(share) == (agent_table.AGENT_SHARE if credentials else 1)


def _held_at_the_model(monkeypatch: Any) -> threading.Event:
    """Every music call held at the model's call until the returned event is set: the places stay taken."""
    import backend

    gate, real = threading.Event(), backend.Backend.run

    def held(self: Any, *args: Any, **kwargs: Any) -> Any:
        gate.wait()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(backend.Backend, "run", held)
    return gate
