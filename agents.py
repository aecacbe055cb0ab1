"""The MCP endpoint: the studio as MCP tools for agents, Gradio's MCP server over the studio's named
endpoints, each call a visitor that passes the same admission check as the page and any script.

Gradio serves a page's public named endpoints as MCP tools (``launch(mcp_server=True)``, the ``mcp``
extra) at ``/gradio_api/mcp/`` (streamable HTTP; SSE at ``/gradio_api/mcp/sse``). A call of a queued
endpoint is a ``gradio_client`` join over loopback: the same queue, validator, concurrency group,
admission check (``admission.guard``), GPU entry and duration estimate as a click on the page. What the studio changes (``tools_class``,
its subclass of Gradio's server, put in place of Gradio's by ``launch_option``):

- which tools: the endpoints a musician uses (``TOOLS``), named by their api names; settings, Send to,
  Stop, the readings and My takes stay in the API only (``view_api`` is unchanged);
- their descriptions (``mcp_schema``): the studio's, with each range and default from where it lives;
- who calls: Gradio's one loopback client would make every agent one page (one share of the queue for
  all of them, one list of takes). Each agent (its address, ZeroGPU token and credentials) gets a
  session of its own (``agent_table``), and its joins carry its address as uvicorn resolved it: Gradio
  forwards the caller's ``X-Forwarded-For`` to a loopback connection uvicorn trusts, so any agent could
  otherwise name its own address;
- files: a take of this studio made for that agent, or an upload to it, by URL (uploaded again by the
  loopback client, through the gate and within the upload quota); the studio fetches nothing else;
- what comes back: each take's URL, the seed line, the record as JSON (Gradio's fast path prints the
  whole result as one Python tuple);
- an agent that goes away: its request is cancelled, and its run stops as a closed page's does.

On unless ``ACE_STUDIO_MCP=off``. The ``mcp`` package is imported when a server starts, not with
Gradio (``later``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.metadata
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlparse

import agent_table

# The endpoints a musician uses, in the order an agent meets them.
TOOLS = ("generate", "lyrics", "write_song", "cover", "extend", "edit", "morph", "variations", "stems", "describe")
# An agent just handed to a call is not idle until the call is submitted, at most this long.
HANDED_S = 30.0


def enabled() -> bool:
    """Whether the studio serves its tools to agents: ``ACE_STUDIO_MCP``, on unless off, 0, false or no."""
    return os.environ.get("ACE_STUDIO_MCP", "on").strip().lower() not in ("off", "0", "false", "no")


def launch_option() -> bool:
    """``launch(mcp_server=…)``: where the tools are on, the studio's server in place of Gradio's."""
    if not enabled():
        return False
    import gradio.mcp

    gradio.mcp.GradioMCPServer = tools_class()
    return True


class _NotYet(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "mcp" or name.startswith("mcp."):
            raise ModuleNotFoundError(f"{name} is imported when the MCP server starts", name=name)
        return None


@contextlib.contextmanager
def later() -> Iterator[None]:
    """Around Gradio's first import: the ``mcp`` package left out. Gradio's module imports the whole
    MCP server in a class body wherever ``mcp`` is installed (it skips it where the import fails);
    ``tools_class`` imports it when a server starts."""
    finder = _NotYet()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


@functools.cache
def _loopback_tls() -> Any:
    """The loopback client's TLS context, made once: httpx made one for each request, reading every
    certificate authority's certificate (16–20 ms of the server's CPU a call), for a plain-HTTP loopback."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # as Gradio's own loopback client
    return context


@functools.cache
def _caller_class() -> type:
    from gradio_client import Client

    class Caller(Client):
        """An agent's loopback client: the template's config and API (only the tools' endpoints: a
        client builds one object per event, 200 of them), the agent's session and address."""

        def __init__(self, template: Any, session: str, agent: agent_table.Agent) -> None:
            self._template = template
            headers = {"x-gradio-user": "mcp", **({"x-forwarded-for": agent.address} if agent.address else {})}
            super().__init__(
                template.src,
                verbose=False,
                download_files=False,
                analytics_enabled=False,
                headers=headers,
                ssl_verify=_loopback_tls(),
            )
            self.session_hash, self.shares = session, agent.shares
            self.calls, self.used, self.handed, self._counting = 0, time.monotonic(), 0.0, threading.Lock()
            self.served = False

        def _get_config(self) -> dict[str, Any]:
            config = self._template.config
            tools = [d for d in config["dependencies"] if d.get("api_name") in TOOLS]
            return {**config, "dependencies": tools, "connect_heartbeat": False}

        def _get_api_info(self) -> dict[str, Any]:
            return self._template._info

        def idle(self, now: float) -> bool:
            """No call under way, and not just handed to a call about to be submitted."""
            return self.calls == 0 and now - self.handed > HANDED_S

        def submit(self, *args: Any, **kwargs: Any) -> Any:
            job = super().submit(*args, **kwargs)
            with self._counting:
                self.calls += 1
                self.handed = 0.0

            def ended(done: Any) -> None:
                with self._counting:
                    self.calls -= 1
                    self.used = time.monotonic()
                    # Served: past the admission check and run (a refusal there is an exception).
                    self.served = self.served or (not done.cancelled() and done.exception() is None)

            job.add_done_callback(ended)
            return job

        def close(self) -> None:
            super().close()
            for pool in (self.executor, self.helper_executor, self.stream_executor):
                pool.shutdown(wait=False)

    return Caller


def agent_file(value: Any, session: str) -> Path | None:
    """The file an agent names by URL: a take of this studio made in its ``session`` and still kept
    (``/takes/…``), or a file in Gradio's upload folder (``/gradio_api/file=…``, as an upload answers);
    None for anything else, which is never fetched or opened."""
    import asgi_gate
    import output_folder
    import take_owners
    import uploads

    path = unquote(urlparse(str(value)).path)
    if asgi_gate.TAKES_ROUTE in path:
        relative = path.split(asgi_gate.TAKES_ROUTE, 1)[1]
        found = output_folder.studio_take_audio(relative)
        return (
            found
            if found is not None and take_owners.made_by(SimpleNamespace(session_hash=session), relative)
            else None
        )
    if "/gradio_api/file=" in path:
        named = path.split("/gradio_api/file=", 1)[1]
        return Path(named) if uploads.in_upload_folder(named) and os.path.isfile(named) else None
    return None


def given_files(arguments: dict[str, Any], names: set[str], session: str) -> dict[str, Any]:
    """An agent's arguments with each file parameter (``names``) as the file its URL names in its
    ``session`` (``agent_file``), empty as none; a ValueError with a message for any other URL."""
    from gradio_client import handle_file

    import mcp_schema

    converted = {}
    for name, given in arguments.items():
        if name in names and given in ("", None):
            given = None
        elif name in names:
            path = agent_file(given, session)
            if path is None:
                raise ValueError(mcp_schema.MCP_NOT_HERE.format(name=name))
            given = handle_file(str(path))
        converted[name] = given
    return converted


def shown(outputs: list[Any]) -> list[str]:
    """An endpoint's outputs as an agent reads them: a file as its URL, a record as JSON, an unused
    take slot left out."""
    texts = []
    for value in outputs:
        if value is None:
            continue
        if isinstance(value, dict) and ("url" in value or "path" in value) and "meta" in value:
            texts.append(str(value.get("url") or value.get("path")))
        elif isinstance(value, dict | list):
            texts.append(json.dumps(value, ensure_ascii=False))
        else:
            texts.append(str(value))
    return texts


async def finished(job: Any, waiting: Any) -> Any:
    """``waiting`` (the wait for ``job``'s result); the request stopped if the wait is (its agent went),
    as Stop stops one: this request only (``runs.stop_event``), where Gradio's ``/cancel`` (the
    client's ``job.cancel``) ended every running call of the agent's session on that endpoint, its
    next song among them, which then waited for ever."""
    try:
        return await waiting
    except BaseException as error:
        if not job.done():
            threading.Thread(target=_stop, args=(job,), name="ace-studio-agent-gone", daemon=True).start()
        if isinstance(error, Exception) and (said := as_message(error)) is not error:
            raise said from None
        raise


def _stop(job: Any) -> None:
    """Stop ``job``'s request by its event id, once its join has answered (within the admission check's second)."""
    import runs

    if (communicator := getattr(job, "communicator", None)) is None:  # not queued: nothing to stop
        return
    while (event_id := communicator.event_id) is None and not job.done():
        time.sleep(0.05)
    if event_id is not None:
        runs.stop_event(event_id)
        if job.done():  # it ended meanwhile: nothing left to stop, nothing kept
            runs.forget_event(event_id)


def as_message(error: Exception) -> Exception:
    """The loopback client's error as an agent is told it: an HTTP refusal with the message it came with
    (the gate's, ``asgi_gate``), else its status; a connection that failed as such; never the internal
    URL httpx names. Any other error as it was (the studio's message)."""
    import httpx

    import mcp_schema

    if isinstance(error, httpx.HTTPStatusError):
        detail = None
        with contextlib.suppress(Exception):
            detail = error.response.json().get("detail")
        status = error.response.status_code
        return RuntimeError(
            detail if isinstance(detail, str) and detail else mcp_schema.MCP_REFUSED.format(status=status)
        )
    if isinstance(error, httpx.HTTPError):
        return RuntimeError(mcp_schema.MCP_UNREACHED)
    return error


def tool_endpoints(server: Any) -> dict[str, str]:
    """Each tool's name (Gradio's: the Space's name before it on a Space) and its endpoint, for the
    endpoints in ``TOOLS`` that ``server``'s page has. Only queued ones: Gradio calls an unqueued
    event directly, past the agent's session (``agent_table``) and the queue's admission check."""
    named = server.api_info["named_endpoints"]
    return {
        server.valid_and_unique_tool_name(server.tool_prefix + name, set()): f"/{name}"
        for name in TOOLS
        if f"/{name}" in named and server.get_block_fn_from_endpoint_name(f"/{name}").queue
    }


@functools.cache
def tools_class() -> type:
    """The studio's MCP server: Gradio's, with the studio's tools, descriptions, callers, files and results."""
    import anyio
    from gradio.mcp import GradioMCPServer
    from mcp import types as mcp_types
    from mcp.server.lowlevel.helper_types import ReadResourceContents as Contents
    from mcp.server.sse import SseServerTransport as Sse
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager as Sessions

    import mcp_schema
    import models

    class Tools(GradioMCPServer):
        # Gradio's class body imports these where ``mcp`` was importable with Gradio (not under ``later``).
        types, Server, ReadResourceContents = mcp_types, _checked_server(), Contents
        SseServerTransport, StreamableHTTPSessionManager = Sse, Sessions

        def __init__(self, blocks: Any) -> None:
            super().__init__(blocks)
            variant = models.active_variant()
            self.mcp_server.instructions = mcp_schema.instructions(variant)
            self.callers = agent_table.Callers(_caller_class)
            self.descriptions = {tool: self._description(tool, variant) for tool in self.tool_to_endpoint}
            # Made once: Gradio would make each tool's schema again for every call and every list of tools.
            self.schemas = {tool: self._schema(tool) for tool in self.tool_to_endpoint}
            self.mcp_server.schemas = {tool: schema for tool, (schema, _) in self.schemas.items()}

        def _description(self, tool: str, variant: Any) -> tuple[str, dict[str, str]]:
            endpoint = self.tool_to_endpoint[tool]
            listed = mcp_schema.choices(super().get_input_schema(tool)[0])
            parameters = [{**p, **listed.get(p["parameter_name"], {})} for p in self._parameters(tool)]
            return mcp_schema.tool_help(endpoint.lstrip("/"), parameters, variant)

        def _schema(self, tool: str) -> tuple[dict[str, Any], list]:
            schema, files = super().get_input_schema(tool)
            return mcp_schema.input_schema(schema, self._parameters(tool), self.descriptions[tool][1]), files

        def _parameters(self, tool: str) -> list[dict[str, Any]]:
            return self.api_info["named_endpoints"][self.tool_to_endpoint[tool]]["parameters"]

        def get_tool_to_endpoint(self) -> dict[str, str]:
            return tool_endpoints(self)

        def get_fn_description(self, block_fn: Any, tool_name: str) -> tuple[str, dict[str, str]]:
            return self.descriptions[tool_name]

        def get_input_schema(self, tool_name: str, parameters: Any = None) -> tuple[dict[str, Any], list]:
            return self.schemas[tool_name]

        def _caller(self) -> agent_table.Agent:
            return agent_table.caller(self.mcp_server.request_context.request)

        def _get_or_create_client(self) -> Any:
            with self.callers.making:  # Gradio's builds its one client unlocked: a first burst built one a call
                template = super()._get_or_create_client()
            return self.callers.client(self._caller(), template)

        def convert_strings_to_filedata(self, value: Any, filedata_positions: list) -> Any:
            named = {position[0] for position in filedata_positions if len(position) == 1}
            return given_files(value, named, self.callers.session(self._caller().name))

        def _prepare_tool_call_args(self, name: str, arguments: dict[str, Any]) -> tuple[Any, ...]:
            arguments = mcp_schema.json_text(arguments, self._parameters(name))
            endpoint, args, headers, block_fn = super()._prepare_tool_call_args(name, arguments)
            headers = {k: v for k, v in headers.items() if k.lower() != "x-forwarded-for"}
            if address := self._caller().address:
                headers["x-forwarded-for"] = address
            return endpoint, args, headers, block_fn

        async def _execute_tool_without_progress(self, job: Any) -> list[Any]:
            result = await finished(job, anyio.to_thread.run_sync(job.result, abandon_on_cancel=True))
            return list(result) if isinstance(result, tuple) else [result]

        async def _execute_tool_with_progress(self, job: Any, progress_token: Any) -> Any:
            return await finished(job, super()._execute_tool_with_progress(job, progress_token))

        def postprocess_output_data(self, data: Any, root_url: str) -> list[Any]:
            return [self.types.TextContent(type="text", text=text) for text in shown(data)]

    return Tools


@functools.cache
def _checked_server() -> type:
    """``mcp``'s server, each call's arguments checked against its tool's schema by a validator made
    once a tool (``mcp`` would check the schema itself against JSON Schema's on every call, a tenth of a
    call's cost here) and refused with the studio's message; a tool the studio does not have is named as
    such (``mcp`` would list every tool again to look for it, and Gradio would answer its name alone)."""
    import jsonschema
    from mcp import types as mcp_types
    from mcp.server import Server

    import mcp_schema

    class Checked(Server):
        schemas: dict[str, dict[str, Any]] = {}  # each tool's input schema (``Tools``)

        @functools.cached_property
        def _validators(self) -> dict[str, Any]:
            return {tool: jsonschema.validators.validator_for(s)(s) for tool, s in self.schemas.items()}

        def create_initialization_options(self, *args: Any, **kwargs: Any) -> Any:
            if self.version is None:  # ``mcp`` would look its own version up on disk for every request
                self.version = importlib.metadata.version("mcp")
            return super().create_initialization_options(*args, **kwargs)

        async def _get_cached_tool_definition(self, tool_name: str) -> Any:
            return None  # ``checked`` checks the arguments; the tools declare no output schema

        def call_tool(self, *, validate_input: bool = True) -> Any:
            register = super().call_tool(validate_input=False)

            def decorator(func: Any) -> Any:
                async def checked(name: str, arguments: dict[str, Any]) -> Any:
                    if name not in self.schemas:
                        problem = mcp_schema.unknown_tool(name, list(self.schemas))
                    else:
                        schema, validator = self.schemas[name], self._validators[name]
                        problem = mcp_schema.argument_problem(name, arguments, schema, validator)
                    if problem:
                        text = mcp_types.TextContent(type="text", text=problem)
                        return mcp_types.CallToolResult(content=[text], isError=True)
                    return await func(name, arguments)

                return register(checked)

            return decorator

    return Checked
