"""Instant events (``queue=False``: the status poll, the quota text under each button, *Use these
settings*, Edit's lyric lines…) held to a fair share of the threads Gradio runs them in (``Instant``,
ASGI, in front of Gradio).

Gradio runs an instant event at once, beside everyone's, in one pool of 40 threads: one caller's burst
could fill it. Each call comes from a group: a public address (``ADDRESS_PLACES`` under way at once), or,
for every caller without one together (loopback or private: a proxy uvicorn does not trust, or this
machine), the nameless group (``NAMELESS_PLACES``). Within a group a page, named by the body's
top-level ``session_hash``, holds at most ``PAGE_SHARE``; pages seen only once, and calls that name
none, are one crowd holding at most ``ONE_SHOT_SHARE`` together. A flood of made-up session hashes is
that crowd, so the group's other pages keep the rest. A call past its share waits among its group's
waiting calls (at most ``WAITING_PLACES`` of them, for at most ``WAIT_S``), which serve the key holding
fewest first; when all waiting places are taken the largest holder's newest waiter gives up its place
(``evict_for``), else the call is answered 429 with a message; a body over 64 KB
(never a page's) is refused rather than kept waiting. A page's first call counts in the crowd (nothing
tells it from a flooder's yet), its second on its own.

Where requests come through a proxy uvicorn does not trust, every visitor behind it is one caller (the
proxy): the studio says so once in its log, at the first instant event (a page's first status poll;
docs/deployment.md); where visitors are told apart behind a proxy (on a Space, with no setting:
``addresses``), it says that once instead.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import addresses
import asgi_gate
import messages

# One public address's instant events under way at once: a page opening sends 9 (its status line,
# duration estimate lines and quota lines).
ADDRESS_PLACES = 12
# Every caller without a public address together: 16 of Gradio's 40 threads, the rest left to the
# queue's events and to visitors whose address is known.
NAMELESS_PLACES = 16
# One page's share of its group: a page opening, all at once.
PAGE_SHARE = 9
# Pages seen once and calls naming none, together: a third of an address's places.
ONE_SHOT_SHARE = 4
# Calls waiting for a place, per group, and for how long.
WAITING_PLACES = 32
WAIT_S = 10.0
# Pages remembered per kind (seen once; seen again), the least recently seen leaving first: a flood of
# new session hashes churns the first kind only.
PAGES_KEPT = 4096
NAMELESS = "nameless"
CROWD = ""  # the key of one-shot pages
SESSION_HASH_LONGEST = 128
UNTRUSTED_PROXY = (
    "Requests come through a proxy at {host} that uvicorn does not trust: every visitor has its address, so "
    "none is told apart by address (instant events share one bound; per-address shares count nobody). Set "
    "FORWARDED_ALLOW_IPS to the proxy's address or network, never * (docs/deployment.md)."
)

# Gradio's route for an instant event: ``/gradio_api/run/<name>`` (and its older ``/api/<name>``).
_RUN = re.compile(r"/gradio_api/(?:run|api)/[^/]+/?$")
# Gradio's deep link: a session's whole config written as a file in the upload folder (1 MB a call).
_DEEP_LINK = re.compile(r"/gradio_api/deep_link/?$")


def session_of(body: Any) -> str | None:
    """The page a request body names: its top-level ``session_hash`` (a short text), else None."""
    page = body.get("session_hash") if isinstance(body, dict) else None
    return page if isinstance(page, str) and 0 < len(page) <= SESSION_HASH_LONGEST else None


def group_of(host: str | None) -> str:
    """The group a caller's instant events share: their public address (an IPv6 one's /64), else the
    nameless group."""
    named = addresses.group(host)
    return f"address:{named}" if named else NAMELESS


def _share(key: str) -> int:
    return ONE_SHOT_SHARE if key == CROWD else PAGE_SHARE


class _Pages:
    """Which pages a group has seen: once, or again (a page of its own from then on)."""

    def __init__(self) -> None:
        self.once: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self.again: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()

    def key(self, group: str, page: str | None) -> str:
        """The key a call counts under in its group: its page where seen before, else the crowd."""
        if page is None:
            return CROWD
        name = (group, page)
        if name in self.again:
            self.again.move_to_end(name)
            return page
        if name in self.once:
            del self.once[name]
            kept, key = self.again, page
        else:
            kept, key = self.once, CROWD
        kept[name] = None
        while len(kept) > PAGES_KEPT:
            kept.popitem(last=False)
        return key


@dataclass(eq=False)
class _Waiter:
    key: str
    order: int
    placed: asyncio.Future  # True once given a place, False when told to try again


@dataclass
class _Group:
    """A group's calls under way (``held`` per key) and waiting (``waiting``), on the event loop alone."""

    places: int
    running: int = 0
    held: collections.Counter = field(default_factory=collections.Counter)
    waiting: list[_Waiter] = field(default_factory=list)

    def start(self, key: str) -> None:
        self.running += 1
        self.held[key] += 1

    def end(self, key: str) -> None:
        self.running -= 1
        self.held[key] -= 1
        if not self.held[key]:
            del self.held[key]
        self.serve()

    def serve(self) -> None:
        """Free places to waiters within their share, the key holding fewest first, then the earliest."""
        while self.waiting and self.running < self.places:
            ready = [w for w in self.waiting if self.held[w.key] < _share(w.key)]
            if not ready:
                return
            chosen = min(ready, key=lambda w: (self.held[w.key], w.order))
            self.waiting.remove(chosen)
            self.start(chosen.key)
            chosen.placed.set_result(True)

    def evict_for(self, key: str) -> bool:
        """A waiting place freed for ``key`` when all are taken: the newest waiter of a key holding more
        than ``key`` would (under way and waiting) is told to try again; False where none does."""
        counts = self.held + collections.Counter(w.key for w in self.waiting)
        largest = max(self.waiting, key=lambda w: (counts[w.key], w.order))
        if counts[largest.key] <= counts[key] + 1:
            return False
        self.waiting.remove(largest)
        largest.placed.set_result(False)
        return True

    @property
    def idle(self) -> bool:
        return not self.running and not self.waiting


class Instant:
    """The ASGI middleware described above. The studio offers no deep link, so Gradio's route for one (a
    session's config made, kept and written to the upload folder, for anyone's session hash) answers 404."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.groups: dict[str, _Group] = {}  # on the event loop alone: no lock
        self.pages = _Pages()
        self.order = itertools.count()
        self.told: set[str] = set()  # what the log was told once: "untrusted", "apart"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and _DEEP_LINK.search(scope["path"]):
            return await _answer(send, 404, messages.NO_DEEP_LINKS)
        if scope["type"] != "http" or scope["method"] != "POST" or not _RUN.search(scope["path"]):
            return await self.app(scope, receive, send)
        host = (scope.get("client") or (None,))[0]
        name = group_of(host)
        if len(self.told) < 2:
            _say_how_read(scope, host, self.told)
        body, receive = await asgi_gate.whole(receive)
        key = self.pages.key(name, session_of(await asgi_gate.parsed(body)))
        # A page's calls are a few KB: a larger one never waits, so the waiting calls hold little memory.
        small = len(body) <= asgi_gate.UNPOOLED_BYTES
        del body  # Gradio reads it from ``receive``
        group = self.groups.setdefault(name, _Group(NAMELESS_PLACES if name == NAMELESS else ADDRESS_PLACES))
        try:
            if not await self._admitted(group, key, small):
                return await _answer(send, 429, messages.CHEAP_BUSY)
            try:
                await self.app(scope, receive, send)
            finally:
                group.end(key)
        finally:
            if group.idle and self.groups.get(name) is group:
                del self.groups[name]

    async def _admitted(self, group: _Group, key: str, may_wait: bool) -> bool:
        """A place for ``key`` in ``group``: at once, or after a wait among its waiting calls; False where
        none came."""
        if group.running < group.places and group.held[key] < _share(key):
            group.start(key)  # ``serve`` leaves no waiter that could take a free place
            return True
        if not may_wait or (len(group.waiting) >= WAITING_PLACES and not group.evict_for(key)):
            return False
        waiter = _Waiter(key, next(self.order), asyncio.get_running_loop().create_future())
        group.waiting.append(waiter)
        try:
            await asyncio.wait({waiter.placed}, timeout=WAIT_S)
        except asyncio.CancelledError:
            if waiter.placed.done() and waiter.placed.result():
                group.end(key)
            raise
        finally:
            if not waiter.placed.done():
                group.waiting.remove(waiter)
                waiter.placed.cancel()
        return not waiter.placed.cancelled() and waiter.placed.result()


def _say_how_read(scope: dict, host: str | None, told: set[str]) -> None:
    """Log once each how forwarded requests are read: through a proxy uvicorn does not trust (the caller
    sent an ``X-Forwarded-For`` and is none of the addresses it names; a trusted proxy's caller is one
    of them: uvicorn takes it from there), and visitors told apart (``addresses.told_apart``); ``told``
    keeps what was said."""
    forwarded = b",".join(value for name, value in scope.get("headers", ()) if name == b"x-forwarded-for")
    named = [entry.strip() for entry in forwarded.decode("latin-1").split(",") if entry.strip()]
    if not named or host is None:
        return
    if not any(entry in (host, f"[{host}]") or entry.startswith(f"{host}:") for entry in named):
        if "untrusted" not in told:
            told.add("untrusted")
            print(UNTRUSTED_PROXY.format(host=host), flush=True)
    elif "apart" not in told and (said := addresses.told_apart(",".join(named), host)):
        told.add("apart")
        print(said, flush=True)


async def _answer(send: Any, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
