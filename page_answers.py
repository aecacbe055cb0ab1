"""The page and its config, answered from memory (``PageAnswers``, ASGI, in front of Gradio).

Gradio makes its answer to ``GET /`` (the page with its config, 1.4 MB) and ``GET /config`` (1.2 MB: every
``gradio_client.Client`` reads it) anew for every request, a deep copy of the whole config with its URLs
rewritten for the request's root: 0.054 and 0.040 s of the studio's CPU each on the 2-core test machine
(about 1 ms once kept), so every page load and every client cost the machine a twentieth of a second, and a
burst of reloads kept it busy. (The API's description, ``/gradio_api/info``, Gradio keeps itself.) Nothing
in them changes while the studio serves (no sign-in, one page for everyone), so each is made once for each
way of asking for it: its path and query, what Gradio builds the root URL from (the scope's scheme, server
and root path; ``Host``, ``X-Forwarded-Host``, ``X-Forwarded-Proto``, ``X-Gradio-Server``) and the config it
was made from. ``KEPT`` of them at most, the least recently asked for leaving first: a caller who varies
those headers gets Gradio's own answer each time, never more memory. A deep link (a page opened at another
visitor's shared results) is made for its request, as Gradio makes it.
"""

from __future__ import annotations

import collections
import threading
from typing import Any
from urllib.parse import parse_qsl

PATHS = frozenset({"/", "/config", "/config/"})
# About 1.4 MB each at most: every root and query a few proxies and pages ask with, and no more.
KEPT = 8
ROOT_HEADERS = frozenset({b"host", b"x-forwarded-host", b"x-forwarded-proto", b"x-gradio-server"})
# Set once a page or its config has been answered (made, not kept): start-up's libraries wait for it.
ANSWERED = threading.Event()


class PageAnswers:
    """ASGI middleware: Gradio's answers to ``PATHS`` kept by the way they were asked (module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        # Each answer with the config it was made from (kept, not its id: a config Gradio replaced could
        # leave its address to the next).
        self.kept: collections.OrderedDict[tuple, tuple[object, dict[str, Any], bytes]] = collections.OrderedDict()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        key, config = _key(scope)
        found = self.kept.get(key) if key is not None else None
        if found is not None and found[0] is config:
            self.kept.move_to_end(key)
            _, start, body = found
            await send({**start, "headers": list(start["headers"])})
            await send({"type": "http.response.body", "body": body})
            return
        if key is None:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        parts: list[bytes] = []
        whole = False

        async def noted(message: dict) -> None:
            nonlocal whole
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                whole = not message.get("more_body", False)
            await send(message)

        await self.app(scope, receive, noted)
        if whole and start.get("status") == 200:
            ANSWERED.set()
            self.kept[key] = (config, {**start, "headers": list(start.get("headers", []))}, b"".join(parts))
            self.kept.move_to_end(key)
            while len(self.kept) > KEPT:
                self.kept.popitem(last=False)


def _key(scope: dict) -> tuple[tuple | None, object]:
    """How a request asked for one of ``PATHS``, all that Gradio's answer depends on, and the config it is made
    from; no key for any other request, or where the answer is the request's own (a deep link, a studio
    behind a sign-in)."""
    if scope.get("type") != "http" or scope.get("method") != "GET" or scope.get("path") not in PATHS:
        return None, None
    query = scope.get("query_string", b"")
    if any(name == "deep_link" for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)):
        return None, None
    app = scope.get("app")
    if (
        not hasattr(app, "get_blocks")
        or getattr(app, "auth", None) is not None
        or getattr(app, "auth_dependency", None)
    ):
        return None, None
    # In the order they came: Gradio reads a header's first line, so two orders are two roots.
    root = tuple((name, value) for name, value in scope.get("headers", ()) if name in ROOT_HEADERS)
    where = (scope.get("scheme"), tuple(scope.get("server") or ()), scope.get("root_path", ""))
    return (scope["path"], query, where, root), app.get_blocks().config
