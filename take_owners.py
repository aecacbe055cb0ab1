"""Whose takes: which takes each visitor's page made (``remember_takes``), so that *Send to*, a voice or a
morph hands on a visitor's own takes and no other's (``made_by``)."""

from __future__ import annotations

import collections
import threading
from typing import Any

import records

# The takes each visitor's page (its Gradio session) made, newest last: "Send to" hands on these and
# no other, whatever a record sent with the request names. In memory, bounded: a page reloaded or
# long gone makes its takes again.
_made: collections.OrderedDict[str, collections.deque[str]] = collections.OrderedDict()
_made_lock = threading.Lock()
SESSIONS_KEPT, TAKES_KEPT = 4096, 64


def remember_takes(request: Any, record: dict[str, Any]) -> None:
    """Note the takes of ``record`` as made by ``request``'s session."""
    session = getattr(request, "session_hash", None)
    if not session:
        return
    with _made_lock:
        made = _made.setdefault(session, collections.deque(maxlen=TAKES_KEPT))
        made.extend(str(t.audio) for t in records.Record.of(record).takes if t.entry)
        _made.move_to_end(session)
        while len(_made) > SESSIONS_KEPT:
            _made.popitem(last=False)


def made_by(request: Any, relative: Any) -> bool:
    """Whether ``request``'s page (its Gradio session) made the take ``relative`` names."""
    session = getattr(request, "session_hash", None)
    if request is None:  # called in the studio's own process, not by a visitor
        return True
    with _made_lock:
        return bool(session) and str(relative) in _made.get(session, ())
