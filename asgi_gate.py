"""What the server lets through, in front of Gradio: the studio's takes and nothing else of its
output folder, uploads within their quota, requests of a bounded size.

``Gate`` is an ASGI middleware (``app.launch_options`` passes it to Gradio's FastAPI app):

- ``/takes/<day>/<file>`` serves a finished take or record the studio wrote, as audio or JSON
  (never HTML), with ``nosniff``, and answers byte ranges with 206 (one or several) or 416; the
  URL names no server folder. Gradio's own ``/file=`` route gets nothing from the output folder.
- An upload reserves its length in ``ACE_STUDIO_UPLOAD_QUOTA`` before it is read (``uploads.reserve``:
  the oldest uploads nobody needs are removed to free the space, or it is refused); one sent without a length may bring
  at most ``ACE_STUDIO_MAX_UPLOAD`` and is cut off past it.
- Any other request body over ``ACE_STUDIO_MAX_BODY_MB`` (default 2) is refused: the longest text
  a field takes is a few KB. Its JSON nesting is counted (``json_depth``, linear in its size, in a
  worker thread) and over ``MAX_DEPTH`` refused.
- A body must keep coming: no more than ``ACE_STUDIO_BODY_IDLE_S`` (default 5) between its chunks
  (uploads too) and, but for uploads, all of it within ``ACE_STUDIO_BODY_DEADLINE_S`` (default 10),
  else 408 and the connection is closed. Bodies held half-read share ``ACE_STUDIO_BODY_POOL_MB``
  (default 16) beyond each one's first 64 KB, so a page's few-KB requests never wait on it; a
  large body past it gets 503. An upload cut short leaves no partial file.
- An upload has a deadline that follows its length: ``ACE_STUDIO_UPLOAD_GRACE_S`` (default 10) plus its
  length at ``ACE_STUDIO_UPLOAD_MIN_KBPS`` (default 64 KB/s), else 408; and one public address holds at
  most ``ACE_STUDIO_UPLOADS_PER_ADDRESS`` (default 4) uploads at once (429 with a message past it).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

import addresses
import messages
import output_folder
import uploads

TAKES_ROUTE = "/takes/"
TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".json": "application/json; charset=utf-8",
    ".lrc": "text/plain; charset=utf-8",
}
UPLOAD_FULL = messages.UPLOADS_FULL
UPLOAD_TOO_LARGE = messages.UPLOAD_TOO_LARGE
TOO_BIG = messages.REQUEST_TOO_BIG
UPLOADS_AT_ONCE = messages.UPLOADS_AT_ONCE


# How deeply a request's JSON may nest: a request of the studio's nests a few levels, and Gradio
# parses and walks whatever arrives recursively (a record nested 100 000 deep ended in a bare Error).
MAX_DEPTH = 64
TOO_DEEP = messages.REQUEST_TOO_DEEP
TOO_SLOW = messages.REQUEST_TOO_SLOW
BODIES_BUSY = messages.BODIES_BUSY
# A request's first bytes are counted outside the shared pool: the page's requests are a few KB.
UNPOOLED_BYTES = 64 * 1024
_STEP = np.zeros(256, np.int8)
_STEP[list(b"[{")], _STEP[list(b"]}")] = 1, -1
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
# Scanned in slices of 64 KB: one check's scratch memory stays within the CPU's cache at any size (at
# 256 KB a byte cost twice as much).
_SLICE = 1 << 16


def json_depth(data: bytes) -> int:
    """How deeply ``data`` (JSON text) nests arrays and objects outside strings, counted without
    parsing it, in time linear in its size (a regex over its strings took quadratic time on
    escaped quotes: 32 KB of them held the server 5 s)."""
    raw = np.frombuffer(data, np.uint8)
    deepest = depth = slashes = 0  # slashes: the parity of the backslashes ending the last slice
    in_string = False
    for start in range(0, len(raw), _SLICE):
        part = raw[start : start + _SLICE]
        at = np.arange(len(part), dtype=np.int32)
        # A quote is escaped when the run of backslashes just before it is odd: the run's length
        # is the distance to the last byte that is not a backslash.
        plain = np.where(part == _BACKSLASH, np.int32(-1 - slashes), at)
        np.maximum.accumulate(plain, out=plain)
        before = np.concatenate(([-1 - slashes], plain[:-1])).astype(np.int32)
        quotes = (part == _QUOTE) & ((at - before) % 2 == 1)
        inside = np.logical_xor.accumulate(quotes) ^ in_string  # odd quotes so far: in a string
        steps = _STEP[part]
        steps[inside] = 0
        levels = np.cumsum(steps, dtype=np.int32)
        deepest = max(deepest, depth + int(levels.max()))
        depth += int(levels[-1])
        in_string = bool(inside[-1])
        slashes = (len(part) - 1 - int(plain[-1])) % 2
    return deepest


def max_body() -> int:
    return int(float(os.environ.get("ACE_STUDIO_MAX_BODY_MB", "2")) * 2**20)


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class _Pool:
    """The bytes of request bodies the gate holds beyond each one's ``UNPOOLED_BYTES``, all at once
    (for every server of the process: tests run several, each in its own thread)."""

    def __init__(self) -> None:
        self.held, self.lock = 0, threading.Lock()

    def claim(self, size: int) -> bool:
        with self.lock:
            if self.held + size > float(os.environ.get("ACE_STUDIO_BODY_POOL_MB", "16")) * 2**20:
                return False
            self.held += size
            return True

    def release(self, size: int) -> None:
        with self.lock:
            self.held -= size


_pool = _Pool()


class _Senders:
    """Uploads being received per public address (for every server of the process, as ``_Pool``): a
    trickle within the idle limit would hold a connection and its upload's quota for as long as it liked."""

    def __init__(self) -> None:
        self.held: dict[str, int] = {}

    def take(self, host: str | None) -> bool:
        if host is None:  # loopback or private: a proxy or this machine more likely than one visitor
            return True
        if self.held.get(host, 0) >= int(_seconds("ACE_STUDIO_UPLOADS_PER_ADDRESS", 4)):
            return False
        self.held[host] = self.held.get(host, 0) + 1  # on the event loop: no other coroutine runs here
        return True

    def give(self, host: str | None) -> None:
        if host is not None:
            self.held[host] -= 1
            if not self.held[host]:
                del self.held[host]


_senders = _Senders()


def _sender(scope: dict) -> str | None:
    """The public address an upload comes from (uvicorn reads ``X-Forwarded-For`` from the proxies
    ``FORWARDED_ALLOW_IPS`` names) as its share counts it (``addresses.group``), or None."""
    return addresses.group((scope.get("client") or (None,))[0])


def upload_deadline(length: int) -> float:
    """Seconds an upload of ``length`` bytes may take in all: the grace, then the floor rate."""
    rate = _seconds("ACE_STUDIO_UPLOAD_MIN_KBPS", 64) * 1024
    return _seconds("ACE_STUDIO_UPLOAD_GRACE_S", 10) + length / rate


_limiters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _limiter(large: bool) -> Any:
    """Worker threads for the depth check: large bodies one at a time (2 MB costs ~0.04 s of CPU), so a
    flood of them waits on itself; small ones beside them, never behind one. Each event loop has
    its own pair."""
    import anyio

    loop = asyncio.get_running_loop()
    if loop not in _limiters:
        _limiters[loop] = (anyio.CapacityLimiter(8), anyio.CapacityLimiter(1))
    return _limiters[loop][large]


async def parsed(body: bytes) -> Any:
    """A body the gate let through (``max_body()`` at most, ``MAX_DEPTH`` deep) read as JSON, or None
    where it is not: a page's few KB at once, a larger one in a worker thread beside the depth checks
    of large bodies (one at a time), so the event loop never parses megabytes for a caller."""
    import anyio

    def read() -> Any:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            return None

    if len(body) <= UNPOOLED_BYTES:
        return read()
    return await anyio.to_thread.run_sync(read, limiter=_limiter(True))


async def whole(receive: Any) -> tuple[bytes, Any]:
    """A request's whole body (``Gate`` has bounded it), and a ``receive`` that hands it on to the app."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), receive
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    kept = [b"".join(chunks)]

    async def replay() -> dict:
        return {"type": "http.request", "body": kept.pop(), "more_body": False} if kept else await receive()

    return kept[0], replay


class _Refused(Exception):
    """A request body refused: the HTTP ``status`` and the ``message`` the answer carries."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _Gone(Exception):
    """The visitor left before their request's body was all there."""


def take_url(path: str | Path, request: Any) -> str | None:
    """The public URL of a take the studio wrote (``/takes/<day>/<file>`` under the page's
    root URL, as the visitor's browser reaches it), or None without a request to tell the root."""
    from gradio import route_utils
    from gradio.context import LocalContext

    raw = getattr(request, "request", None)
    if raw is None:
        return None
    relative = Path(path).resolve().relative_to(output_folder.output_dir()).as_posix()
    blocks = LocalContext.blocks.get(None)
    root_path = getattr(getattr(blocks, "app", None), "root_path", None)
    try:
        root = route_utils.get_root_url(raw, route_utils.get_api_call_path(raw), root_path)
    except ValueError:  # not a queued call: the URL it came by cannot tell the root
        return None
    return f"{root}{TAKES_ROUTE}{relative}"


class Gate:
    """The ASGI middleware described above."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root) :]
        method = scope["method"]
        length = _content_length(scope)
        if path.startswith(TAKES_ROUTE) and method in ("GET", "HEAD"):
            return await _serve_take(path[len(TAKES_ROUTE) :], scope, receive, send)
        if "/file=" in path:
            named = unquote(path.split("/file=", 1)[1])
            if TAKES_ROUTE in named and method in ("GET", "HEAD"):
                # gradio_client fetches every file as /file=<its path>, and a take's path is its URL.
                return await _serve_take(named.rsplit(TAKES_ROUTE, 1)[1], scope, receive, send)
            if _in_output_folder(named):
                return await _refuse(send, 404, "Not found.")
        if method == "POST" and path.rstrip("/").endswith("/upload"):
            return await _upload(self.app, scope, receive, send, length)
        if method in ("POST", "PUT", "PATCH"):
            try:  # no name here keeps the body: once Gradio has read it, it is gone
                receive = _replay(await _checked_body(receive, length), receive)
            except _Refused as refused:
                # Closed unless the body was all read (too deep): what is left of it need not be read.
                return await _refuse(send, refused.status, refused.message, close=refused.status != 400)
            except _Gone:
                return None
        return await self.app(scope, receive, send)


async def _upload(app: Any, scope: dict, receive: Any, send: Any, length: int | None) -> None:
    """An upload within the quota: its length (or, sent in chunks without one, the most one upload
    may bring) is reserved before a byte is read, so uploads at once cannot all pass one check; a body
    that brings more than it reserved is cut off and refused."""
    if length is not None and length > uploads.largest_upload() + 2**20:  # a megabyte for the form around it
        return await _refuse(send, 413, UPLOAD_TOO_LARGE.format(mb=uploads.largest_upload() // 2**20))
    host = _sender(scope)
    if not _senders.take(host):
        return await _refuse(send, 429, UPLOADS_AT_ONCE, close=True)
    try:
        await _reserved(app, scope, receive, send, length)
    finally:
        _senders.give(host)


async def _reserved(app: Any, scope: dict, receive: Any, send: Any, length: int | None) -> None:
    """The upload, its bytes reserved in the quota, streamed to Gradio within its deadline."""
    allowed = length if length is not None else uploads.largest_upload()
    # The folder is walked off the event loop: other visitors' requests go on meanwhile.
    ticket = await asyncio.to_thread(uploads.reserve, allowed)
    if ticket is None:
        return await _refuse(send, 413, UPLOAD_FULL)
    over = False

    async def counted() -> dict:
        nonlocal over
        message = await receive()
        if message["type"] == "http.request":
            ticket.received += len(message.get("body", b""))
            if ticket.received > allowed:
                over = True
                raise _cut_off()
        return message

    async def answer(message: dict) -> None:
        if not over:  # once cut off, the refusal below is the answer
            await send(message)

    try:
        await _streamed(app, scope, counted, answer, asyncio.get_running_loop().time() + upload_deadline(allowed))
    except Exception:
        if not over:
            raise
    finally:
        uploads.release(ticket)
    if over:
        await _refuse(send, 413, UPLOAD_FULL)


def _cut_off() -> Exception:
    """What ends an upload that brought more than it reserved: Gradio's own "too large"
    error, on which its parser deletes the files it had begun (any other error would leave them)."""
    try:
        from gradio.route_utils import MultiPartException

        return MultiPartException(messages.UPLOAD_PAST_LIMIT)
    except ImportError:  # pragma: no cover - another Gradio: the temporary files age out of the quota
        return OSError("upload larger than its reservation")


def _content_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _checked_body(receive: Any, length: int | None) -> bytes:
    """The whole request body, read within its time limits and the pool, its depth checked in a
    worker thread; ``_Refused`` (with the answer's status and message) or ``_Gone`` otherwise."""
    import anyio

    if length is not None and length > max_body():
        raise _Refused(413, TOO_BIG)
    held = 0

    def hold(size: int) -> None:  # a promised length is claimed at once, before a byte is read
        nonlocal held
        if size - UNPOOLED_BYTES > held:
            if not _pool.claim(size - UNPOOLED_BYTES - held):
                raise _Refused(503, BODIES_BUSY)
            held = size - UNPOOLED_BYTES

    try:
        hold(min(length or 0, max_body()))
        body = await _read_body(receive, hold)
        depth = await anyio.to_thread.run_sync(json_depth, body, limiter=_limiter(len(body) > UNPOOLED_BYTES))
    finally:
        _pool.release(held)
    if depth > MAX_DEPTH:
        raise _Refused(400, TOO_DEEP)
    return body


async def _read_body(receive: Any, hold: Any) -> bytes:
    """The body as it comes, ``hold`` told its size so far: no more than ``ACE_STUDIO_BODY_IDLE_S``
    between chunks, all of it within ``ACE_STUDIO_BODY_DEADLINE_S``, none past ``max_body()``."""
    loop = asyncio.get_running_loop()
    idle = _seconds("ACE_STUDIO_BODY_IDLE_S", 5)
    deadline = loop.time() + _seconds("ACE_STUDIO_BODY_DEADLINE_S", 10)
    chunks, size, limit = [], 0, max_body()
    while True:
        try:
            async with asyncio.timeout_at(min(loop.time() + idle, deadline)):
                message = await receive()
        except TimeoutError:
            raise _Refused(408, TOO_SLOW) from None
        if message["type"] != "http.request":
            raise _Gone
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            raise _Refused(413, TOO_BIG)
        hold(size)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _streamed(app: Any, scope: dict, receive: Any, send: Any, deadline: float) -> None:
    """Hand an upload on to Gradio, which streams it to disk, ended (408) when its body stalls for
    ``ACE_STUDIO_BODY_IDLE_S`` or is not all there by ``deadline`` (the loop's clock). A stall or a
    visitor gone mid-body is raised to Gradio's parser as its own error, so that it deletes the part
    it wrote (on a plain disconnect it keeps it)."""
    from gradio.route_utils import MultiPartException

    idle, finished, stalled = _seconds("ACE_STUDIO_BODY_IDLE_S", 5), False, False
    loop = asyncio.get_running_loop()

    async def bounded() -> dict:
        nonlocal finished, stalled
        if finished:  # past the body: waiting for a disconnect is the app's own business
            return await receive()
        try:
            async with asyncio.timeout_at(min(loop.time() + idle, deadline)):
                message = await receive()
        except TimeoutError:
            stalled = True
            raise MultiPartException(TOO_SLOW) from None
        if message["type"] != "http.request":
            raise MultiPartException(messages.UPLOAD_CUT_OFF)
        finished = not message.get("more_body", False)
        return message

    async def answer(message: dict) -> None:
        if stalled and message["type"] == "http.response.start":
            message = {**message, "status": 408, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await send(message)

    await app(scope, bounded, answer)


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that hands the app the body already read, then the server's own messages (a
    disconnect) as they come; it keeps no hold of the body once handed on."""
    kept: list[bytes] = [body]

    async def replay() -> dict:
        if kept:
            return {"type": "http.request", "body": kept.pop(), "more_body": False}
        return await receive()

    return replay


def _in_output_folder(named: str) -> bool:
    try:
        return Path(named).resolve().is_relative_to(output_folder.output_dir())
    except (OSError, ValueError):
        return True  # a path that cannot even be resolved is not served either


async def _serve_take(relative: str, scope: dict, receive: Any, send: Any) -> None:
    from starlette.responses import FileResponse

    file = output_folder.studio_file(unquote(relative))
    if file is None or file.suffix not in TYPES:
        return await _refuse(send, 404, messages.NO_SUCH_TAKE)
    response = FileResponse(
        file,
        media_type=TYPES[file.suffix],
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
        content_disposition_type="inline",
        filename=file.name,
    )
    with output_folder.serving(file):  # the output quota leaves a take alone while its visitor fetches it
        await response(scope, receive, send)


async def _refuse(send: Any, status: int, message: str, close: bool = False) -> None:
    """Answer with ``message`` as JSON ``detail``; ``close`` ends the connection too (a body may still
    be on its way, which then need not be read)."""
    body = json.dumps({"detail": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
