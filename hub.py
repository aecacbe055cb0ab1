"""The Hugging Face Hub as the studio meets it: whether it may be asked, whether a failure means it
could not be reached, and whether a file is in its cache (file names only: nothing is read or loaded)."""

from __future__ import annotations


def offline() -> bool:
    """Whether Hub downloads are switched off (``HF_HUB_OFFLINE``, as huggingface_hub reads it)."""
    from huggingface_hub import constants

    return constants.is_offline_mode() if hasattr(constants, "is_offline_mode") else bool(constants.HF_HUB_OFFLINE)


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


def why_not(repo: str, exc: BaseException) -> str:
    """Why ``repo`` could not be downloaded, in words (never the client's own text)."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(exc, GatedRepoError):
        return f"{repo} is gated on the Hugging Face Hub: accept its terms there and log in."
    if isinstance(exc, RepositoryNotFoundError):
        return f"The Hugging Face Hub has no model {repo} (or it is private): check the name."
    return f"Could not download {repo} ({type(exc).__name__})."
