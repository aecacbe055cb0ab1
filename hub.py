"""The Hugging Face Hub as the studio meets it: whether it may be asked, whether a failure means it
could not be reached, and whether a file is in its cache (file names only: nothing is read or loaded)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


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


# ---------------------------------------------------------------- the Hub cache on a Space


def mirror_hub_cache(src: Path, dst: Path) -> int:
    """Mirror a read-only Hub cache into a writable one without copying weights.

    Blobs are hard-linked (a symlink where the link would cross file systems), snapshot entries
    stay relative symlinks so they resolve inside the mirror, and ``refs/`` files are copied (the
    Hub client rewrites them). Returns how many entries were created; a second run creates none.
    """
    created = 0
    for repo in sorted(p for p in src.iterdir() if p.is_dir()) if src.is_dir() else []:
        for path in sorted(repo.rglob("*")):
            rel = path.relative_to(src)
            target = dst / rel
            if path.is_symlink():
                if not target.is_symlink():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.symlink_to(os.readlink(path))
                    created += 1
            elif path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif rel.parts[1] == "refs":
                if not target.exists() or target.read_bytes() != path.read_bytes():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
                    created += 1
            elif not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, target)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                        raise
                    target.symlink_to(path)
                created += 1
    return created


def bootstrap() -> None:
    """On a Space, point the Hub client at a writable mirror of the build-time cache.

    ``preload_from_hub`` downloads while the Space is built, into a cache that belongs to another
    user and is read only at run time; the Hub client needs to write (locks, refs).
    """
    if not os.environ.get("SPACE_ID"):  # not on a Space
        return
    home = Path.home()
    rw = home / "hf-cache-rw"
    mirror_hub_cache(home / ".cache" / "huggingface" / "hub", rw / "hub")
    os.environ["HF_HOME"] = str(rw)
    os.environ["HF_HUB_CACHE"] = str(rw / "hub")
