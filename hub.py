"""The Hugging Face Hub as the studio meets it: whether it may be asked, whether it answers from here,
whether a failure means it could not be reached, and whether a file is in its cache (file names only:
nothing is read or loaded)."""

from __future__ import annotations

import threading
import time

# How long the Hub's last answer (it answered, or it could not be reached) is believed, and how long
# one question may take: a machine that gets its internet back is told so within a minute.
REACH_TTL_S = 60.0
PROBE_TIMEOUT_S = 5.0
_reach: dict = {"ok": None, "at": None, "probing": False, "done": None}
_reach_lock = threading.Lock()


def offline() -> bool:
    """Whether Hub downloads are switched off (``HF_HUB_OFFLINE``, as huggingface_hub reads it)."""
    from huggingface_hub import constants

    return constants.is_offline_mode() if hasattr(constants, "is_offline_mode") else bool(constants.HF_HUB_OFFLINE)


def reachable(repo: str, wait: float = 0.0) -> bool | None:
    """Whether the Hugging Face Hub answers from here (False where downloads are switched off; None
    until the first answer). The Hub is asked about ``repo`` (its model card's metadata, no file) in the
    background and its answer kept for ``REACH_TTL_S``, so a caller (the page's status line, a request's
    admission check) never waits on the network: it gets the last answer meanwhile, or waits up to ``wait``
    seconds for one being asked (start-up's log line)."""
    if offline():
        return False
    with _reach_lock:
        stale = _reach["at"] is None or time.monotonic() - _reach["at"] > REACH_TTL_S
        if stale and not _reach["probing"]:
            _reach.update(probing=True, done=threading.Event())
            threading.Thread(
                target=_probe, args=(repo, _reach["done"]), name="ace-studio-hub-probe", daemon=True
            ).start()
        asking = _reach["done"] if _reach["probing"] else None
    if asking is not None and wait > 0:
        asking.wait(wait)
    with _reach_lock:
        return _reach["ok"]


def asking() -> bool:
    """Whether the Hub is being asked now (``reachable``'s answer may change in a moment)."""
    with _reach_lock:
        return bool(_reach["probing"])


def _probe(repo: str, done: threading.Event) -> None:
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(repo, timeout=PROBE_TIMEOUT_S)
        ok = True
    except Exception as exc:  # it answered (a missing or gated repo says so) unless it could not be reached
        ok = not unreachable(exc)
    with _reach_lock:
        _reach.update(ok=ok, at=time.monotonic(), probing=False)
    done.set()


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the Hub could not be reached or may not be asked."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    seen: BaseException | None = exc
    for _ in range(8):  # the cause chain, bounded
        if seen is None:
            return False
        if isinstance(seen, LocalEntryNotFoundError | OfflineModeIsEnabled | ConnectionError | TimeoutError):
            return True
        if type(seen).__name__ in ("ConnectError", "ConnectTimeout", "ReadTimeout", "ProxyError"):
            return True  # httpx's, which huggingface_hub does not re-export
        seen = seen.__cause__ or seen.__context__
    return False


def cached(repo: str, filename: str) -> bool:
    """Whether ``filename`` of ``repo`` is in the Hub cache (``try_to_load_from_cache``)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, filename), str)


def cached_file(repo: str, filename: str) -> str | None:
    """The path of ``filename`` of ``repo`` in the Hub cache the environment names now (``HF_HUB_CACHE``,
    which huggingface_hub reads once, at import), or None: a lookup on disk, never a download."""
    import os
    from pathlib import Path

    from huggingface_hub import constants, try_to_load_from_cache

    where = os.environ.get("HF_HUB_CACHE") or (os.environ.get("HF_HOME") and str(Path(os.environ["HF_HOME"]) / "hub"))
    found = try_to_load_from_cache(repo, filename, cache_dir=where or constants.HF_HUB_CACHE)
    return found if isinstance(found, str) and Path(found).is_file() else None


def why_not(exc: BaseException) -> str:
    """Why the Hub would not give a repo, by what ``exc`` is: "gated" (its terms not accepted), "missing" (no
    such repo, or a private one), else "failed" (``error_messages.HUB_REFUSED`` has a message for each)."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(exc, GatedRepoError):  # a subclass of RepositoryNotFoundError: asked first
        return "gated"
    return "missing" if isinstance(exc, RepositoryNotFoundError) else "failed"
