"""A visitor's event stream, and the few seconds its connection may blink.

Gradio (``routes.queue_data``) ends a session's requests the moment its event stream
(``GET /gradio_api/queue/data``) drops: ``Queue.clean_events`` marks its running events not alive
(``runs``' watcher then stops their runs), removes its queued ones, and the session's pending
messages are deleted, so a stream opened a second later is answered "404: Not Found" from inside a
response already started, which Starlette logs as a RuntimeError traceback.

- ``hold(blocks)`` (``app.configure_queue``) makes the queue wait ``grace_s()`` before that clean-up,
  keeping the session's messages; a stream of the same session opened meanwhile cancels it and
  receives everything held, the result included. A dropped stream's run so ends at most
  ``grace_s()`` + the watcher's interval + one step after the drop; ``/gradio_api/cancel`` is not
  deferred.
- ``Streams``, an ASGI middleware, tells the queue which sessions have a stream open, ends a
  session's older stream when a newer one opens (a connection that hangs half open would otherwise
  go on taking the session's messages, the result among them, into a dead socket), and answers a
  stream for a session the queue no longer holds with a message (``GONE``) in Gradio's message format; and
  lets a cancel (``POST /gradio_api/cancel``) through only for an event of the session it names
  (``_foreign``). Gradio's own takes a waiting event out of the queue by its id alone and sends the
  completion to the session the cancel named: another session's cancel of a victim's event id would
  drop the victim's request without a message to anyone, and close a streaming one's iterator.
- Gradio's other routes that act on an event by its id alone, closed the same way (an id is a uuid4
  hex, but it travels: every message of a page's stream names it, a ``/call`` GET carries it in its
  URL, so a proxy's access log holds it). ``GET /gradio_api/call/{api}/{id}`` opens the stream of
  the id's *session*: a page's or a ``gradio_client``'s event id would give a stranger that whole
  session's stream, every result in it, and (a newer stream takes over) end the visitor's. It is let
  through only for the REST API's own events, whose session is the id itself (Gradio's ``Event``
  takes its id where the POST named no session); any other is answered as an id never held.
  ``POST /gradio_api/stream/{id}`` would put a stranger's inputs in place of a waiting request's (Gradio
  runs the queued event from ``event.data``, whatever its function), past the join's checks; it and
  ``…/close`` mean something only for a streaming event (the studio has none), so for any other they
  are answered 404, as Gradio answers an unknown id, and new inputs come only from the event's session.

Gradio's own page never reopens a dropped stream: its client shows "Connection to the server was
lost. Attempting reconnection...", polls ``/gradio_api/app_id`` every 2 s and reloads the page, a
new session; so a page's run is stopped after the grace like a closed page's, and only clients that
reopen the same session's stream (raw HTTP, the ``/call`` API) get the result.

Everything here runs on the server's event loop, so it needs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from gradio.utils import LRUCache

import asgi_gate
import messages

DEFAULT_GRACE_S = 5.0
# A stream silent for longer than its client reads is dropped by that client: gradio_client reads with
# httpx's default 5 s and Gradio's default heartbeat comes every 15 s, so a script's request that waits
# quietly (in the queue behind others, for the start-up build) would end in ReadTimeout. Gradio reads
# ``GRADIO_HEARTBEAT_INTERVAL`` for each stream; a page's heartbeat follows it too.
HEARTBEAT_S = 2.0
GONE = messages.STREAM_GONE
_ATTR = "_ace_studio_streams"
_CALL = re.compile(r"/call/(?:v2/)?[^/]+/([^/]+)/?$")
_CANCEL = re.compile(r"/gradio_api/cancel/?$")
_STREAM = re.compile(r"/gradio_api/stream/([^/]+)(/close)?/?$")
# What Gradio answers a cancel: a foreign one gets the same, so it learns nothing of others' events.
_CANCELLED = b'{"success":true}'
# Whether a POST that acts on an event by its id (scope, body read as JSON) is a stranger's.
Foreign = Callable[[dict, Any], bool]


def grace_s() -> float:
    """How long a dropped stream's session is kept for its visitor (``ACE_STUDIO_GONE_GRACE_S``)."""
    try:
        value = float(os.environ.get("ACE_STUDIO_GONE_GRACE_S", DEFAULT_GRACE_S))
    except ValueError:
        return DEFAULT_GRACE_S
    return max(0.0, value) if math.isfinite(value) else DEFAULT_GRACE_S


class _Sessions:
    """One queue's sessions: their open streams, the clean-ups waiting out a grace, and the message
    boxes Gradio asked to delete."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.clean_now = queue.clean_events  # Gradio's own
        self.open: dict[str, list[asyncio.Event]] = {}  # session -> its open streams' "superseded" flags
        self.waiting: dict[str, asyncio.Task] = {}
        self.forget: set[str] = set()

    async def clean_events(self, *, session_hash: str | None = None, event_id: str | None = None) -> None:
        """``Queue.clean_events``: a session's (its stream dropped) waits out the grace; an event's
        does not."""
        grace = grace_s()
        if session_hash is None or event_id is not None or grace <= 0:
            await self.clean_now(session_hash=session_hash, event_id=event_id)
            return
        self._disarm(session_hash)
        self.waiting[session_hash] = asyncio.get_running_loop().create_task(self._later(session_hash, grace))

    async def _later(self, session: str, grace: float) -> None:
        await asyncio.sleep(grace)
        if self.waiting.get(session) is not asyncio.current_task():
            return
        del self.waiting[session]  # from here on no stream can cancel the clean-up half way
        if self.open.get(session):  # a stream came back; when it drops, the grace starts again
            self.forget.discard(session)
            return
        if session in self.forget:
            self.forget.discard(session)
            self.queue.pending_messages_per_session.drop(session)
        await self.clean_now(session_hash=session)

    def _disarm(self, session: str) -> None:
        task = self.waiting.pop(session, None)
        if task is not None:
            task.cancel()

    def opened(self, session: str) -> asyncio.Event:
        """A stream of ``session`` opens: it takes over from any older one; returns its flag, set
        when a newer stream takes over from it in its place."""
        self._disarm(session)
        self.forget.discard(session)
        for older in self.open.get(session, ()):
            older.set()
        flag = asyncio.Event()
        self.open.setdefault(session, []).append(flag)
        return flag

    def closed(self, session: str, flag: asyncio.Event, complete: bool) -> None:
        """A stream of ``session`` ends; one Gradio ended itself (every event delivered) leaves
        nothing for an older drop's clean-up to do."""
        if complete:
            self._disarm(session)
            self.forget.discard(session)
        streams = self.open.get(session, [])
        if flag in streams:
            streams.remove(flag)
        if not streams:
            self.open.pop(session, None)


def hold(blocks: Any) -> None:
    """Give every session of ``blocks``' queue a grace after its stream drops (see the module), and
    every stream a heartbeat a client's read timeout never misses (``HEARTBEAT_S``, unless set)."""
    os.environ.setdefault("GRADIO_HEARTBEAT_INTERVAL", f"{HEARTBEAT_S:g}")
    queue = blocks._queue
    if getattr(queue, _ATTR, None) is not None:
        return
    sessions = _Sessions(queue)
    boxes = queue.pending_messages_per_session
    queue.pending_messages_per_session = _HeldBoxes(sessions, boxes)
    queue.clean_events = sessions.clean_events
    setattr(queue, _ATTR, sessions)


class _HeldBoxes(LRUCache):
    """The queue's message boxes per session, as Gradio keeps them, except that Gradio's delete on a
    dropped stream waits for the session's clean-up (``drop``)."""

    def __init__(self, sessions: _Sessions, boxes: LRUCache) -> None:
        super().__init__(boxes.max_size)
        for session, box in boxes.items():
            self[session] = box
        self.sessions = sessions

    def __delitem__(self, key: str) -> None:
        if grace_s() > 0:
            self.sessions.forget.add(key)
        else:
            self.drop(key)

    def drop(self, key: str) -> None:
        if key in self:
            super().__delitem__(key)


class Streams:
    """The ASGI middleware described in the module's docstring."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        acting = _acting(scope) if scope["type"] == "http" and scope["method"] == "POST" else None
        if acting is not None:
            body, receive = await asgi_gate.whole(receive)
            if acting(scope, await asgi_gate.parsed(body)):
                return await _answer(send, acting)
            return await self.app(scope, receive, send)
        found = _stream_of(scope) if scope["type"] == "http" and scope["method"] == "GET" else None
        if found is None:
            return await self.app(scope, receive, send)
        sessions, session, call_api = found
        if session is None or session not in sessions.queue.pending_messages_per_session:
            return await _gone(send, call_api)
        flag = sessions.opened(session)
        complete = False

        async def sending(message: dict) -> None:
            nonlocal complete
            if flag.is_set() and message["type"] == "http.response.body":
                return  # taken over: what Gradio says as it ends (its cancellation's repr) is for no one
            complete = complete or (message["type"] == "http.response.body" and not message.get("more_body"))
            await send(message)

        watched = _Receive(flag, receive)
        try:
            await self.app(scope, watched, sending)
        finally:
            sessions.closed(session, flag, complete and not watched.gone)
        if flag.is_set() and not complete:  # taken over: end the old response, or uvicorn logs an error
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


def _stream_of(scope: dict) -> tuple[_Sessions, str | None, bool] | None:
    """(the queue's sessions, the session, whether it is the ``/call`` API) for an event stream's
    request to a held queue, the session None where a ``/call`` GET names another session's event;
    None for any other request."""
    path = scope["path"]
    call = _CALL.search(path)
    if not (path.rstrip("/").endswith("/queue/data") or call):
        return None
    queue = _queue_of(scope)
    sessions = getattr(queue, _ATTR, None)
    if sessions is None:
        return None
    if call is None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        session = (query.get("session_hash") or [None])[0]
        return (sessions, session, False) if session else None
    event_id = call.group(1)
    event = queue.event_ids_to_events.get(event_id)
    if event is not None:
        owner = event.session_hash
    else:  # as Gradio finds it: a finished event is known only by its undelivered id
        owner = next((s for s, ids in queue.pending_event_ids_session.items() if event_id in ids), event_id)
    return sessions, (owner if owner == event_id else None), True


def _foreign(scope: dict, body: Any) -> bool:
    """Whether a cancel names an event that is not one of the session it names: neither waiting nor
    running for it (Gradio keeps a session's event ids until their completion is delivered). A body
    Gradio would refuse itself is left to it."""
    session = body.get("session_hash") if isinstance(body, dict) else None
    event = body.get("event_id") if isinstance(body, dict) else None
    if not isinstance(session, str) or not isinstance(event, str):
        return False
    queue = _queue_of(scope)
    return queue is not None and not _held_by(queue, session, event)


def _foreign_stream(scope: dict, body: Any) -> bool:
    """Whether new inputs (``POST /gradio_api/stream/{id}``) are for anything but a streaming event of
    the session the body names."""
    event = _event(scope, _STREAM.search(scope["path"]).group(1))
    session = body.get("session_hash") if isinstance(body, dict) else None
    if event is None or not event.streaming or not isinstance(session, str):
        return True
    return not _held_by(_queue_of(scope), session, event._id)


def _foreign_close(scope: dict, body: Any) -> bool:
    """Whether a close (``POST /gradio_api/stream/{id}/close``) is of anything but a streaming event:
    Gradio's page names no session there, so a streaming event's close is Gradio's to judge."""
    event = _event(scope, _STREAM.search(scope["path"]).group(1))
    return event is None or not event.streaming


def _queue_of(scope: dict) -> Any:
    """The served app's queue; None where the request reaches no Gradio app."""
    try:
        return scope["app"].get_blocks()._queue
    except (KeyError, AttributeError):
        return None


def _held_by(queue: Any, session: str, event_id: str) -> bool:
    """Whether ``session`` holds ``event_id``: waiting or running for it, or its completion not yet delivered."""
    return event_id in queue.pending_event_ids_session.get(session, ())


def _event(scope: dict, event_id: str) -> Any:
    """The event ``event_id`` held by the served queue, waiting or running; None where there is none."""
    queue = _queue_of(scope)
    return None if queue is None else queue.event_ids_to_events.get(event_id)


def _acting(scope: dict) -> Foreign | None:
    """For a POST that acts on an event by its id: the test of whether it is foreign (``_foreign``,
    ``_foreign_close``, ``_foreign_stream``); None for any other."""
    path = scope["path"]
    if _CANCEL.search(path):
        return _foreign
    stream = _STREAM.search(path)
    if stream is None:
        return None
    return _foreign_close if stream.group(2) else _foreign_stream


async def _answer(send: Any, foreign: Foreign) -> None:
    """What Gradio itself answers the call: a cancel's success, an unknown event's bare 404."""
    body, status = (_CANCELLED, 200) if foreign is _foreign else (b"", 404)
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Receive:
    """The stream's ``receive``, which also answers "disconnected" once ``flag`` is set (a newer
    stream took over), and notes whether the stream's client went (``gone``)."""

    def __init__(self, flag: asyncio.Event, receive: Any) -> None:
        self.flag, self.receive, self.gone = flag, receive, False

    async def __call__(self) -> dict:
        if self.flag.is_set():
            return {"type": "http.disconnect"}
        message = asyncio.ensure_future(self.receive())
        superseded = asyncio.ensure_future(self.flag.wait())
        try:
            await asyncio.wait({message, superseded}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            superseded.cancel()
            if not message.done():
                message.cancel()
        got = message.result() if message.done() and not message.cancelled() else {"type": "http.disconnect"}
        self.gone = self.gone or got["type"] == "http.disconnect"
        return got


async def _gone(send: Any, call_api: bool) -> None:
    """What Gradio's stream says for a session it does not hold (in its message format, ``GONE``'s message),
    without the 404 it raises once the response has started."""
    if call_api:
        body = f"event: error\ndata: {json.dumps(GONE)}\n\n"
    else:
        message = {"msg": "unexpected_error", "message": GONE, "success": False, "session_not_found": True}
        body = f"data: {json.dumps(message)}\n\n"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode(), "more_body": False})
