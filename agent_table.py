"""The agents' table: who an MCP call comes from (``caller``: its address, its credentials, or the call
itself) and the one loopback client kept for each agent calling now (``Callers``), within the shares
that keep one caller from shutting others out.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

# An agent's session is forgotten this long after its last call ended (its takes stay its own: the
# session is the same the next time it calls).
IDLE_S = 60.0
# Agents kept at once for one share: one public address (an IPv6 one's /64), or one set of credentials.
# A caller picks its headers: they tell its agents apart within its share only. Every agent without a
# public address (the machine itself, a proxy not trusted) counts in one share of half the table
# (``shared_share``); there, credentials not yet served and calls without any are one crowd (``NEWCOMERS``)
# of ``AGENT_SHARE``, so a caller writing new headers a call holds that crowd's places and no more.
AGENT_SHARE = 4
NO_ADDRESS = "address:"
NEWCOMERS = "newcomers"
# Credentials served once, remembered (the least recently served forgotten first).
KNOWN_KEPT = 4096


class Agent(NamedTuple):
    """Who an MCP request comes from: ``name`` tells agents apart (its address, its ZeroGPU token and
    its credentials); ``shares`` are what it counts against (``Callers``): its public address (one
    share for every agent without one: a loopback or private address names nobody, ``addresses``) and
    its credentials, where it sends any; ``address`` is its address as uvicorn resolved it."""

    name: str
    shares: tuple[str, ...]
    address: str

    @property
    def credentials(self) -> str | None:
        """The share its credentials count in, where it sent any."""
        return next((s for s in self.shares if s.startswith("credentials:")), None)


def caller(request: Any) -> Agent:
    """The agent an MCP request comes from. The headers a caller chooses (``Authorization``,
    ``X-IP-Token``) tell its sessions apart only within its address's share: they never add places.
    Without a public address, two callers are one agent only where they send the same credentials; a
    call with neither is an agent by itself (its takes are that call's alone), but on this machine's
    loopback, whose callers are its owner (a page there is the owner's too)."""
    import addresses

    host = getattr(getattr(request, "client", None), "host", None) or ""
    headers = getattr(request, "headers", None) or {}
    credentials = "\n".join((headers.get("x-ip-token", ""), headers.get("authorization", "")))
    group = addresses.group(host)
    shares = (NO_ADDRESS + (group or ""),)
    if credentials.strip():
        shares += ("credentials:" + hashlib.sha256(credentials.encode()).hexdigest()[:24],)
    elif shares == (NO_ADDRESS,) and not addresses.loopback(host):
        # Nothing tells this caller from another: the call itself is the agent (kept on its HTTP request,
        # which every step of one tool call reads).
        scope = getattr(request, "scope", None)
        one_call = scope.setdefault("ace_studio_call", secrets.token_hex(16)) if isinstance(scope, dict) else ""
        return Agent("call:" + (one_call or secrets.token_hex(16)), shares, host)
    # Named by the address's group (an IPv6 caller's addresses rotate within its /64) or, without one, by
    # the credentials alone (a pool of proxy addresses must not split one agent's takes).
    return Agent("\n".join((group or "", credentials)), shares, host)


def kind_of(share: str) -> str:
    """A share's kind, as ``mcp_schema``'s messages name it."""
    if share in (NO_ADDRESS, NEWCOMERS):
        return "nameless" if share == NO_ADDRESS else "newcomers"
    if share.startswith(NO_ADDRESS) and "/" in share:
        return "network"  # an IPv6 caller's /64
    return share.split(":", 1)[0]


def shared_share() -> int:
    """Agents kept at once without a public address: half the table, so that they never shut out an
    agent that has one (else one stranger's credentials could shut out every agent)."""
    import admission

    return admission.all_places() // 2


class Callers:
    """One ``gradio_client`` per agent calling now, each with a session of its own, so its share of the
    queue and its takes are its alone, as a page's are. Each is built on the one client Gradio keeps (its config and
    API read once) and has no heartbeat; one idle for ``IDLE_S`` is forgotten, and its session is the
    same the next time it calls. At most ``AGENT_SHARE`` in each share (``Agent.shares``; those
    without a public address, ``shared_share``, and of them the ones not served yet, ``NEWCOMERS``) and
    ``admission.all_places()`` in all; a newcomer past any takes the place of the least recently used
    idle agent there, and is refused with a message true of that share where every one there has a call
    under way."""

    def __init__(self, made: Callable[[], type]) -> None:
        self._made = made  # the agents' client class, built when the first agent calls
        self._lock, self.making = threading.Lock(), threading.Lock()
        self._clients: dict[str, Any] = {}
        self._secret = secrets.token_bytes(32)
        self.known: collections.OrderedDict[str, None] = collections.OrderedDict()

    def session(self, who: str) -> str:
        import admission  # an agent's page, which admission counts (agents without an address: one crowd)

        return admission.AGENT_PAGE + hmac.new(self._secret, who.encode(), hashlib.sha256).hexdigest()[:32]

    def client(self, agent: Agent, template: Any) -> Any:
        import admission
        import mcp_schema

        session = self.session(agent.name)
        with self._lock:
            now = time.monotonic()
            self._learn_served()  # before the idle ones go: a served agent's credentials are known for good
            for name, known in list(self._clients.items()):
                if known.idle(now) and now - known.used > IDLE_S:
                    self._clients.pop(name).close()
            found = self._clients.get(session)
            if found is None:
                shares = self.shares_of(agent)
                limits = []  # (the agents kept in a share, the most it keeps, the refusal past it)
                for share in shares:
                    most = shared_share() if share == NO_ADDRESS else AGENT_SHARE
                    there = [c for c in self._clients.values() if share in c.shares]
                    limits.append((there, most, mcp_schema.agents_here(kind_of(share), most)))
                limits.append((list(self._clients.values()), admission.all_places(), mcp_schema.MCP_MANY_AGENTS))
                for there, most, refusal in limits:  # every share looked at before any agent makes way
                    if len(there) - most + 1 > sum(c.idle(now) for c in there):
                        raise RuntimeError(refusal)
                for there, most, _ in limits:
                    self._evict_idle([c for c in there if c.session_hash in self._clients], most, now)
                found = self._clients[session] = self._made()(template, session, agent._replace(shares=shares))
            found.used = found.handed = now
            return found

    def shares_of(self, agent: Agent) -> tuple[str, ...]:
        """What ``agent`` counts against: its shares, and without a public address, the newcomers'
        crowd until a call with its credentials has been served."""
        if agent.credentials:
            new = agent.shares[0] == NO_ADDRESS and agent.credentials not in self.known
        else:
            new = agent.name.startswith("call:")  # a loopback caller without credentials is one agent
        return (*agent.shares, NEWCOMERS) if new else agent.shares

    def _learn_served(self) -> None:
        """Credentials whose agent has had a call served are known from then on (under ``_lock``)."""
        for client in self._clients.values():
            credentials = Agent("", client.shares, "").credentials
            if client.served and credentials:
                self.known[credentials] = None
                self.known.move_to_end(credentials)
                client.shares = tuple(s for s in client.shares if s != NEWCOMERS)
        while len(self.known) > KNOWN_KEPT:
            self.known.popitem(last=False)

    def _evict_idle(self, there: list[Any], most: int, now: float) -> None:
        """A place for one more among ``there`` (at most ``most``): the least recently used idle ones go
        (the caller has seen that enough of them are idle)."""
        idle = sorted((c for c in there if c.idle(now)), key=lambda c: c.used)
        for gone in idle[: max(0, len(there) - most + 1)]:
            self._clients.pop(gone.session_hash).close()

    def shares(self, share: str) -> int:
        """How many agents are kept in ``share``."""
        return sum(share in c.shares for c in list(self._clients.values()))

    def __len__(self) -> int:
        return len(self._clients)
