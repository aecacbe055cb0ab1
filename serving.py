"""What the server lets through, in front of Gradio: the studio's takes and nothing else of its
output folder, uploads within their quota, requests of a bounded size.

``Gate`` is an ASGI middleware (``app.launch_options`` passes it to Gradio's FastAPI app):

- ``/takes/<day>/<file>`` serves a finished take or record the studio wrote, as audio or JSON
  (never HTML), with ``nosniff``, and answers byte ranges with 206 (one or several) or 416; the
  URL names no server folder. Gradio's own ``/file=`` route gets nothing from the output folder.
- An upload that would not fit ``ACE_STUDIO_UPLOAD_QUOTA`` (after the oldest unused uploads are
  removed) is refused before it is read; after every upload the quota is enforced again.
- Any other request body over ``ACE_STUDIO_MAX_BODY_MB`` (default 2) is refused: the longest text
  a field takes is a few KB.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

import takes
import uploads

TAKES_ROUTE = "/takes/"
TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".json": "application/json; charset=utf-8",
}
UPLOAD_FULL = (
    "The studio's space for uploads is full right now. Nothing was lost: try again in a few minutes, or upload a "
    "shorter or smaller file."
)
TOO_BIG = "This request is larger than the studio accepts."


# How deeply a request's JSON may nest: a request of the studio's nests a few levels, and Gradio
# parses and walks whatever arrives recursively (a record nested 100 000 deep ended in a bare Error).
MAX_DEPTH = 64
_STRINGS = re.compile(rb'"(?:\\.|[^"\\])*"')
_OPEN, _CLOSE = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)
TOO_DEEP = "This request nests its data deeper than the studio accepts."


def json_depth(data: bytes) -> int:
    """How deeply ``data`` (JSON text) nests arrays and objects, counted without parsing it."""
    raw = np.frombuffer(_STRINGS.sub(b'""', data), np.uint8)
    steps = np.isin(raw, _OPEN).astype(np.int32) - np.isin(raw, _CLOSE).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def max_body() -> int:
    return int(float(os.environ.get("ACE_STUDIO_MAX_BODY_MB", "2")) * 2**20)


def take_url(path: str | Path, request: Any) -> str | None:
    """The public URL of a take the studio wrote (``/takes/<day>/<file>`` under the page's own
    root URL, as the visitor's browser reaches it), or None without a request to tell the root."""
    from gradio import route_utils
    from gradio.context import LocalContext

    raw = getattr(request, "request", None)
    if raw is None:
        return None
    relative = Path(path).resolve().relative_to(takes.output_dir()).as_posix()
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
            if length is not None and not uploads.enforce_quota(incoming=length):
                return await _refuse(send, 413, UPLOAD_FULL)
            try:
                return await self.app(scope, receive, send)
            finally:
                threading.Thread(target=uploads.enforce_quota, name="upload-quota", daemon=True).start()
        if method in ("POST", "PUT", "PATCH"):
            if length is not None and length > max_body():
                return await _refuse(send, 413, TOO_BIG)
            body = await _read_body(receive, max_body())
            if body is None:
                return await _refuse(send, 413, TOO_BIG)
            if json_depth(body) > MAX_DEPTH:
                return await _refuse(send, 400, TOO_DEEP)
            receive = _replay(body, receive)
        return await self.app(scope, receive, send)


def _content_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The whole request body (None past ``limit`` bytes, also when it comes in chunks)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that hands the app the body already read, then the server's own messages (a
    disconnect) as they come."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _in_output_folder(named: str) -> bool:
    try:
        return Path(named).resolve().is_relative_to(takes.output_dir())
    except (OSError, ValueError):
        return True  # a path that cannot even be resolved is not served either


async def _serve_take(relative: str, scope: dict, receive: Any, send: Any) -> None:
    from starlette.responses import FileResponse

    file = takes.own_take(unquote(relative))
    if file is None or file.suffix not in TYPES:
        return await _refuse(send, 404, "There is no such take (takes are kept for a limited time).")
    response = FileResponse(
        file,
        media_type=TYPES[file.suffix],
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
        content_disposition_type="inline",
        filename=file.name,
    )
    with takes.serving(file):  # the output quota leaves a take alone while its visitor fetches it
        await response(scope, receive, send)


async def _refuse(send: Any, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
