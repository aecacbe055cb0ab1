"""Who may join which queue, and how much of it one visitor may hold.

Gradio's own cap (``max_size``) counts every waiting event of every kind together, and every call of
a script joins the queue (``gradio_client`` joins it even for events the page calls directly), so a
flood of instant calls could fill the places songs wait in and a victim would get Gradio's bare "Queue
is full". Every join therefore passes one admission check (``guard``, on Gradio's queue), which sorts
it to its queue and that queue's limits (``QUEUE_LIMITS``):

- GPU work (songs and lyrics, ``concurrency_id="gpu"``): ``ACE_STUDIO_QUEUE_SIZE`` waiting or still
  running, of which one visitor holds at most ``ACE_STUDIO_PER_VISITOR``;
- reading uploads (``"uploads"``): ``ACE_STUDIO_UPLOAD_PLACES`` (the last kept for a file of at most
  ``SMALL_UPLOAD`` bytes), ``UPLOAD_SHARE`` a visitor;
- everything else (settings, Send to, Stop, examples …): ``CHEAP_PLACES``, ``CHEAP_SHARE`` a visitor.

The rest is refused at the join with a message on a field (HTTP 422, as a validator's verdict),
before anything is read or decoded. Instant events (``queue=False``: the status poll, *Use these settings*…)
never join the queue (``instant`` holds them to a fair share of Gradio's threads), and a page's
session costs Gradio a few KB until a deep link asks for its config (``light_sessions``). A visitor
is their page (Gradio's session), the signed-in name, the ZeroGPU token and their public address
(``visitor``): a request counts against every one of them.
What a visitor holds is read from Gradio's queue itself (waiting and running events), so it is
given back when a request ends, is stopped, cancelled or its page closes, with nothing to forget.
The field checks stay in ``validator`` (Gradio's ``validator=``), which runs inside the join.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import itertools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.state_holder import SessionState

import addresses
import checks
import error_messages
import headers
import lyrics
import messages
import runs
import uploads

GPU = "gpu"
UPLOADS = "uploads"
CHEAP = "cheap"
# An MCP agent's page (``agent_table``): one without a public address is told from another only by the
# credentials it chose, so every such agent counts in one crowd (``NAMELESS_AGENTS``) as well as on its own.
AGENT_PAGE = "agent-"
NAMELESS_AGENTS = "agents:nameless"
# Crowds: several visitors' shares held together (in visitors' shares; None: half the queue's places), and
# the message past them. An IPv6 subscriber's /56 (a home) holds two, a /48 (a site) four: a visitor's own
# share stays its /64's, and one subscriber's 256 or 65,536 /64s are no more visitors than that
# (``addresses.wider``). Agents without a public address hold half of each queue's places together: one
# of them showing any number of credentials holds no more, a crowd of new agents (``agent_table``'s
# ``AGENT_SHARE`` agents, two songs each: 8 of the GPU's 16) leaves places for agents already served,
# and visitors with an address keep the other half.
CROWDS: dict[str, tuple[int | None, str]] = {
    "subscriber": (2, messages.NETWORK_HELD.format(held="{held}", whose="home network (an IPv6 /56)")),
    "site": (4, messages.NETWORK_HELD.format(held="{held}", whose="site (an IPv6 /48)")),
    NAMELESS_AGENTS: (None, messages.NAMELESS_AGENTS_HELD),
}
# Instant events, of which a page has at most a few under way (Use these settings, Send to, Stop).
CHEAP_PLACES = 16
CHEAP_SHARE = 4
# Cover, Extend and Edit each read their own upload.
UPLOAD_SHARE = 3
# An upload this small on disk is read in a few CPU seconds, whatever it holds (``audio`` bounds its
# reading by its size): the last upload place is kept for one, so larger files being read (eight of
# 20 MB can hold every place for 59-130 s) never keep a visitor's short song out. Read from the file
# the join names, never from a header its caller picks.
SMALL_UPLOAD = 16 * 2**20
KEPT_FOR_SMALL = 1
# Sessions Gradio keeps, the least recently used leaving first (its default: 10,000). A session the
# page has not changed costs ~25 KB since ``light_sessions``; a visitor's page asks every 3 s.
SESSIONS = 2000


def queue_size() -> int:
    """GPU requests that may wait or still run (``ACE_STUDIO_QUEUE_SIZE``, default 32)."""
    return int(os.environ.get("ACE_STUDIO_QUEUE_SIZE", "32"))


def upload_places() -> int:
    """Uploads that may wait or be read (``ACE_STUDIO_UPLOAD_PLACES``, default 8)."""
    return int(os.environ.get("ACE_STUDIO_UPLOAD_PLACES", "8"))


def per_visitor() -> int:
    """GPU requests one visitor may have waiting or running (``ACE_STUDIO_PER_VISITOR``, default 2)."""
    return max(1, int(os.environ.get("ACE_STUDIO_PER_VISITOR", "2")))


def all_places() -> int:
    """Every place the queue limits give out: Gradio's own ``max_size`` is set above it, as a backstop."""
    return queue_size() + upload_places() + CHEAP_PLACES


def queue_of(concurrency_id: Any) -> str:
    """The queue (``GPU``, ``UPLOADS`` or ``CHEAP``) an event of Gradio ``concurrency_id`` joins."""
    return concurrency_id if concurrency_id in (GPU, UPLOADS) else CHEAP


def queued_files(demo: gr.Blocks) -> Callable[[], set[str]]:
    """The files named by every request in ``demo``'s queue, waiting or running, for the upload
    quota (``uploads.needed_by``): a file a request still needs is never removed, however long it
    waits; a request that ends (done, failed, stopped, cancelled, its page closed) leaves the queue."""

    def files() -> set[str]:
        queue = getattr(demo, "_queue", None)
        events = [e for w in list(getattr(queue, "event_queue_per_concurrency_id", {}).values()) for e in list(w.queue)]
        events += [e for job in list(getattr(queue, "active_jobs", ())) for e in (job or ())]
        found: set[str] = set()
        for event in events:
            for value in getattr(getattr(event, "data", None), "data", None) or ():
                if isinstance(value, dict) and isinstance(value.get("path"), str):
                    found.add(value["path"])
        return found

    return files


def visitor(session_hash: str | None, username: str | None, request: Any) -> frozenset[str]:
    """Every name the visitor behind a request goes by: their page, the name they signed in with,
    the token ZeroGPU's proxy gives them (``X-IP-Token``) and their public address.

    The address is the client's as uvicorn reports it (it reads ``X-Forwarded-For`` from the proxies
    ``FORWARDED_ALLOW_IPS`` names; on a Space, the Space's own: ``addresses``), an IPv6 one's /64; a
    loopback or private address is more likely a proxy or the machine itself than one visitor, so it
    names nobody.
    """
    names = {f"page:{session_hash}"} if session_hash else set()
    if username:
        names.add(f"user:{username}")
    headers = getattr(request, "headers", None)
    token = headers.get("x-ip-token") if headers is not None else None
    if token:
        names.add("token:" + hashlib.sha256(token.encode()).hexdigest()[:24])
    host = getattr(getattr(request, "client", None), "host", None)
    named = addresses.group(host)
    if named:
        names.add(f"address:{named}")
    names.update(f"{kind}:{network}" for kind, network in addresses.wider(host).items())
    if not named and (session_hash or "").startswith(AGENT_PAGE):
        names.add(NAMELESS_AGENTS)
    return frozenset(names)


def crowd_kind(name: str) -> str | None:
    """The crowd ``name`` counts (a key of ``CROWDS``), or None for a visitor's own name."""
    kind = NAMELESS_AGENTS if name == NAMELESS_AGENTS else name.split(":", 1)[0]
    return kind if kind in CROWDS else None


def crowd_most(name: str, queue_name: str) -> int | None:
    """What the visitors named ``name`` together may hold in the queue ``queue_name`` where ``name`` is a
    crowd's, else None (a visitor's own name: the queue's share). Never more than half the queue's
    places: others keep the rest."""
    kind = crowd_kind(name)
    if kind is None:
        return None
    limit = QUEUE_LIMITS[queue_name]
    shares, half = CROWDS[kind][0], limit.places() // 2
    return max(1, half if shares is None else min(shares * limit.share(), half))


@dataclass(frozen=True)
class _QueueLimit:
    """One queue's limits: its places and one visitor's share of them, and the messages past each."""

    name: str
    places: Callable[[], int]
    share: Callable[[], int]
    full: str  # formatted with ``waiting``
    held: str  # formatted with ``held``


# Looked up at each join (not bound here), so the environment and tests may change them.
QUEUE_LIMITS = {
    GPU: _QueueLimit(GPU, lambda: queue_size(), lambda: per_visitor(), messages.BUSY, messages.PER_VISITOR),
    UPLOADS: _QueueLimit(
        UPLOADS,
        lambda: upload_places(),
        lambda: UPLOAD_SHARE,
        messages.UPLOADS_BUSY,
        messages.UPLOADS_PER_VISITOR,
    ),
    CHEAP: _QueueLimit(CHEAP, lambda: CHEAP_PLACES, lambda: CHEAP_SHARE, messages.CHEAP_BUSY, messages.CHEAP_BUSY),
}


def holding(queue: Any, queue_name: str) -> tuple[list[Any], list[Any]]:
    """The events of the queue ``queue_name`` in Gradio's ``queue``: waiting (not stopped there), and running."""
    waiting = [
        event
        for concurrency_id, waiting_events in list(queue.event_queue_per_concurrency_id.items())
        if queue_of(concurrency_id) == queue_name
        for event in list(waiting_events.queue)
        if not runs.event_stopped(event._id)
    ]
    running = [e for job in list(queue.active_jobs) if job for e in job if queue_of(e.concurrency_id) == queue_name]
    return waiting, running


class _Promises:
    """Places promised to joins whose checks still run.

    A request enters Gradio's queue only after its validator returns, and validators run
    concurrently: counting the queue alone would let a burst of 30 simultaneous joins through a cap of 2.
    A place is promised before the checks (so a burst is turned away before any upload is decoded)
    and given back when the join is over: by then the request is in the queue, and counted there.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._promised: dict[int, tuple[str, frozenset[str]]] = {}
        self._tokens = itertools.count()

    def promise(
        self, limit: _QueueLimit, who: frozenset[str], queue: Any, small: bool = True
    ) -> tuple[int | None, str]:
        """``(token, "")`` for a place promised, or ``(None, message)`` saying why there is none; an
        upload that is not ``small`` leaves ``KEPT_FOR_SMALL`` of its queue's places to small ones."""
        with self._lock:
            waiting, running = holding(queue, limit.name)
            promised = [names for kind, names in self._promised.values() if kind == limit.name]
            holders = promised + [visitor(e.session_hash, e.username, e.request) for e in waiting + running]
            personal = frozenset(name for name in who if crowd_kind(name) is None)
            if (held := sum(bool(names & personal) for names in holders)) >= limit.share():
                return None, limit.held.format(held=held)
            for crowd in who - personal:
                if (held := sum(crowd in names for names in holders)) >= (crowd_most(crowd, limit.name) or 0):
                    return None, CROWDS[crowd_kind(crowd) or ""][1].format(held=held)
            # GPU work whose request was cancelled still runs (and counts) until it notices.
            working = max(len(running), runs.active()) if limit.name == GPU else len(running)
            kept = 0 if small or limit.name != UPLOADS else KEPT_FOR_SMALL
            if (taken := len(waiting) + working + len(promised)) >= limit.places() - kept:
                return None, limit.full.format(waiting=taken)
            token = next(self._tokens)
            self._promised[token] = (limit.name, who)
            return token, ""

    def release(self, token: int) -> None:
        with self._lock:
            self._promised.pop(token, None)


_promises = _Promises()


def guard(blocks: gr.Blocks) -> None:
    """Put the admission check in front of ``blocks``' queue (after ``blocks.queue()``): every join, the
    page's and any script's, is counted against its queue's limits (``QUEUE_LIMITS``) and refused with a
    message when its places or the visitor's share are taken."""
    queue = blocks._queue
    join = queue.push

    async def push(body: Any, request: Any, username: str | None) -> tuple[bool, Any, str]:
        # The page's own events (the studio renders nothing per session). Not Gradio's ``get_fn``:
        # it builds the session's state first (0.2 s and 0.4 MB for each new session hash here),
        # which a refused join must not cost.
        fn = blocks.fns.get(body.fn_index) if isinstance(body.fn_index, int) else None
        if fn is None:  # Gradio's own join answers a join it cannot place
            return await join(body=body, request=request, username=username)
        if isinstance(body.data, list) and len(body.data) < len(fn.inputs):
            got, need = len(body.data), len(fn.inputs)
            return (
                False,
                error_messages.TOO_FEW_VALUES.format(got=got, s="s" * (got != 1), api=fn.api_name, need=need),
                "error",
            )
        limit = QUEUE_LIMITS[queue_of(fn.concurrency_id)]
        who = visitor(body.session_hash, username, request) or frozenset({f"join:{id(body)}"})
        small = limit.name != UPLOADS or _bytes_named(body.data) <= SMALL_UPLOAD
        token, refusal = _promises.promise(limit, who, queue, small)
        if token is None:
            return False, refusal_verdicts(fn, limit.name, refusal), "validator_error"
        body.data = unmarked(body.data)  # a server path's refusal with the studio's message
        # From admission on, the upload quota keeps the uploads this request names.
        uploads.note_named([v.get("path") for v in body.data or () if isinstance(v, dict)])
        try:
            with runs.joining(body.session_hash, fn.api_name) as stopped:
                joined = await join(body=body, request=request, username=username)
            if joined[0] and stopped():  # Stop clicked while its checks ran: it ends when it leaves the queue
                runs.stop_event(joined[1])
            return joined
        finally:
            _promises.release(token)

    queue.push = push


def _bytes_named(data: Any) -> int:
    """The bytes on disk of the files a join names (a file gone or not a file counts nothing: Gradio
    refuses a join that names one)."""
    total = 0
    for value in data if isinstance(data, list) else ():
        path = value.get("path") if isinstance(value, dict) else None
        if isinstance(path, str) and "\0" not in path:
            with contextlib.suppress(OSError):
                total += os.stat(path).st_size
    return total


def unmarked(value: Any) -> Any:
    """``value`` (a request's data, at its join) with Gradio's file marker taken off every file object whose
    path lies outside the upload folder: Gradio refuses such a path with its own message before anything of
    the studio runs, and where the event has no validator its refusal reached a visitor as ``error: null``
    (``/settings_from_file``). Unmarked, it reaches the file input as a bare path, which the studio reads
    as no upload (never opened) and says so with a message. ``value`` is bounded in depth at the gate (``asgi_gate``)."""
    if isinstance(value, list):
        return [unmarked(v) for v in value]
    if not isinstance(value, dict):
        return value
    from gradio_client.utils import is_file_obj_with_meta, is_http_url_like

    # Gradio's own check passes a URL by (the studio's file inputs never fetch one: ``widgets.any_file``).
    path = value.get("path")
    if is_file_obj_with_meta(value) and not is_http_url_like(str(path)) and not uploads.in_upload_folder(path):
        value = {k: v for k, v in value.items() if k != "meta"}
    return {k: unmarked(v) for k, v in value.items()}


def refusal_verdicts(fn: Any, queue_name: str, message: str) -> list[dict[str, Any]]:
    """A refused join in the shape of a validator's answer: ``message`` on one field (a GPU request's
    caption or theme, else the first input; an upload's song), so the page marks it (``theme.JS``)
    and ``gradio_client`` raises it as a ``ValidationError``."""
    names = list(fn.input_parameter_names or [])[: len(fn.inputs)]
    names += [f"parameter_{i}" for i in range(len(names), len(fn.inputs))]
    if not names:
        return [{"__type__": "validate", "is_valid": False, "message": message, "parameter_name": fn.api_name}]
    anchor = next((n for n in ("prompt", "theme") if queue_name == GPU and n in names), names[0])
    return [
        {
            "__type__": "validate",
            "is_valid": n != anchor,
            "message": message if n == anchor else "",
            "parameter_name": n,
        }
        for n in names
    ]


def validator(check: Callable, names: list[str], anchor: str) -> Callable:
    """A Gradio ``validator=`` for GPU work: runs the handler's checks before the request takes its
    place (promised by ``guard``) and marks the field at fault.

    ``check`` takes the endpoint's inputs (``names``, the components ``inputs``), and the join's
    ``request`` where it has a parameter of that name (whose page it is), and raises an error with a
    ``param`` attribute (or a plain ``gr.Error``, shown on ``anchor``, an always visible field). Only
    the field at fault is marked: for one in a closed accordion the page opens it and notes the
    message on its label (``theme.JS``). The handler repeats the checks when it runs, so nothing
    depends on this alone. It runs inside the HTTP join, so files are read by their headers only
    (``headers``): a join answers at once on a busy machine.
    """
    asks = "request" in inspect.signature(check).parameters

    def validate(*given: Any) -> list[dict[str, Any]]:
        # Gradio puts the join's request after the inputs (the signature's last parameter).
        args, request = given[: len(names)], (given[len(names)] if len(given) > len(names) else None)
        uploads.note_named(list(args))  # from admission on, the quota keeps what this request names
        try:
            checks.check_text_lengths(dict(zip(names, args, strict=True)))
            with headers.only():  # inside the HTTP join: no decode, hash or scan (``headers``)
                check(*args, request=request) if asks else check(*args)
        except checks.InputError as exc:
            return _verdict(names, anchor, exc.param, exc.message)
        except lyrics.LyricsError as exc:
            return _verdict(names, anchor, exc.param, str(exc))
        except gr.Error as exc:
            return _verdict(names, anchor, anchor, exc.message)
        return _verdict(names, anchor)

    validate.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
        + [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request)]
    )
    validate.__annotations__ = {"request": gr.Request}  # Gradio passes the join's request by annotation
    return validate


def _verdict(names: list[str], anchor: str, param: str | None = None, message: str = "") -> list[dict[str, Any]]:
    if param is not None and param not in names:
        param = anchor
    return [gr.validate(name != param, message if name == param else "") for name in names]


def light_sessions() -> None:
    """Gradio builds a session's state for every session hash it has not seen, and its config for
    deep links copies the page's (1 MB and 46 ms of the event loop here): a stranger inventing a
    hash a call would grow the server 1.09 MB a call and stall every request meanwhile. The studio offers
    no deep link, so a session's config is made only when one asks for it (``_LightSession``); the
    rest of the state is Gradio's own. For every page of the process; once is enough."""
    import gradio.blocks
    import gradio.state_holder

    for module in (gradio.state_holder, gradio.blocks):
        if getattr(module, "SessionState", None) is SessionState:
            module.SessionState = _LightSession


class _Unrendered:
    """What Gradio's ``SessionState`` reads of a page, its blocks left out (the deep link's config)."""

    def __init__(self, blocks: Any) -> None:
        self.default_config, self.blocks = blocks.default_config, {}


class _LightSession(SessionState):
    """Gradio's session state, whose deep-link config (``config_values``) is made on first read, from
    the session's components as they are then and the values its events gave them since."""

    def __init__(self, blocks: Any) -> None:
        self._made: dict | None = None
        self._values: dict[int, Any] = {}  # what events gave the session's components, till it is made
        super().__init__(_Unrendered(blocks))
        self._page = blocks

    @property
    def config_values(self) -> dict:
        if self._made is None:
            config, page = self.blocks_config, self._page.blocks
            self._made = {k: config.config_for_block(k, [], v) for k, v in config.blocks.items() if k in page}
            values, self._values = self._values, {}
            for key, value in values.items():
                super()._update_value_in_config(key, value)
        return self._made

    @config_values.setter
    def config_values(self, value: dict) -> None:
        self._made = value or None  # Gradio's own ``__init__`` sets it (empty, here)

    def __setitem__(self, key: int, value: Any) -> None:
        if self._made is not None:
            return super().__setitem__(key, value)
        # Gradio's write, its config entry made aside and dropped: the config is made when read.
        self._made = {}
        try:
            super().__setitem__(key, value)
        finally:
            self._made = None

    def _update_config(self, key: int) -> None:
        if self._made is not None:  # else made from the component as it is then
            super()._update_config(key)

    def _update_value_in_config(self, key: int, value: Any) -> None:
        if self._made is None:
            self._values[key] = value
        else:
            super()._update_value_in_config(key, value)
