"""Writing takes and their records, and clearing out old ones: the only room that writes files.

Each take is written under a temporary name and renamed once complete, with a JSON record beside
it; the clean-up deletes only files named as the studio names its takes, in its day folders.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gradio as gr

import audio


def output_dir() -> Path:
    """The one folder the studio writes to and serves (``ACE_STUDIO_OUTPUT_DIR``)."""
    default = Path(__file__).resolve().parent / "outputs"
    path = Path(os.environ.get("ACE_STUDIO_OUTPUT_DIR", default)).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def output_max_age_hours() -> float:
    return float(os.environ.get("ACE_STUDIO_OUTPUT_MAX_AGE_HOURS", "24"))


# What the studio writes, and nothing else: only these are ever deleted by the clean-up.
_DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OWN_FILE = re.compile(
    r"^(?:\.partial-)?(?P<take>(?:generate|cover|extend|edit)-\d{6}-[0-9a-f]{6}-take\d+-seed\d+)"
    r"(?:\.(?:wav|flac|mp3|json)|-(?P<stem>vocals|drums|bass|other)\.(?:wav|flac|mp3)|(?P<stems>-stems)\.json)$"
)
STEM_NAMES = ("vocals", "drums", "bass", "other")
TAKE_SUFFIXES = (".wav", ".flac", ".mp3")


def own_take(relative: Any) -> Path | None:
    """The finished take or record ``relative`` names (``"2026-11-22/generate-….wav"``, as records
    name them), or None: anything but a complete file the studio wrote in one of its day folders."""
    parts = str(relative or "").split("/")
    if len(parts) != 2 or not _DAY_FOLDER.match(parts[0]) or not _OWN_FILE.match(parts[1]):
        return None
    if parts[1].startswith(".partial-"):
        return None
    path = output_dir() / parts[0] / parts[1]
    return path if path.is_file() else None


def own_take_audio(relative: Any) -> Path | None:
    """``own_take``, but only a take's own audio: not its record, not one of its stems."""
    path = own_take(relative)
    if path is None or path.suffix not in TAKE_SUFFIXES:
        return None
    found = _OWN_FILE.match(path.name)
    return path if found is not None and not (found["stem"] or found["stems"]) else None


def clean_outputs(max_age_hours: float | None = None, now: float | None = None) -> int:
    """Delete the studio's own files older than the age limit so the disk never fills; returns the count.

    Only files named as the studio names its takes, in its day folders, are touched; anything else
    in the output folder is left alone. Today's folder is never removed, so a take being written now
    always has its folder.
    """
    limit = (output_max_age_hours() if max_age_hours is None else max_age_hours) * 3600
    now = time.time() if now is None else now
    root = output_dir()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    removed = 0
    for folder in (p for p in root.iterdir() if p.is_dir() and _DAY_FOLDER.match(p.name)):
        for path in folder.iterdir():
            if _OWN_FILE.match(path.name) and path.is_file() and now - path.stat().st_mtime > limit:
                path.unlink(missing_ok=True)
                removed += 1
        removed += _clean_orphan_stems(folder)
        if folder.name != today:
            with contextlib.suppress(OSError):  # not empty, or removed by a concurrent clean-up
                folder.rmdir()
    return removed


def _clean_orphan_stems(folder: Path) -> int:
    """Stems go with their take: made later, they would outlive it by as much; removed once it is gone."""
    removed = 0
    for path in list(folder.iterdir()):
        found = _OWN_FILE.match(path.name)
        if found is None or not (found["stem"] or found["stems"]) or path.name.startswith(".partial-"):
            continue
        if not any((folder / f"{found['take']}{suffix}").exists() for suffix in TAKE_SUFFIXES):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


# A long-running studio must also drop old files, not only at start-up; walking the whole output
# tree on every write would be wasted I/O when the age limit is hours.
_CLEAN_EVERY_S = 600.0
_last_clean = 0.0


def _clean_now_and_then() -> None:
    global _last_clean
    if time.time() - _last_clean >= _CLEAN_EVERY_S:
        _last_clean = time.time()
        clean_outputs()


class SaveError(gr.Error):
    """The takes could not be written; nothing of them is left on disk."""


# Below this much free space a failed write is put down to a full disk: libsndfile reports one as
# its own "System error" without the OS's error number.
FULL_DISK_BYTES = 64 * 2**20


def _why_not_saved(exc: BaseException, folder: Path) -> str:
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "No space" in str(exc) or _free_bytes(folder) < FULL_DISK_BYTES:
        return "the disk of the studio's output folder is full"
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "the studio may not write to its output folder (it is read-only)"
    return f"writing to the output folder failed ({type(exc).__name__})"


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder if folder.exists() else folder.parent).free
    except OSError:
        return FULL_DISK_BYTES  # unknown: not a reason to blame the disk


def write_takes(
    mode: str,
    result: dict[str, Any],
    params: dict[str, Any],
    seeds: list[int],
) -> tuple[list[str], dict[str, Any]]:
    """Save every take with a JSON record beside it; return the audio paths and the call's record.

    Each file is written under a temporary name and renamed once complete, so a full or read-only
    disk leaves neither partial nor empty files; then the visitor is told why nothing was saved.
    Records name files relative to the output folder (no server paths in what a visitor downloads).
    """
    started = time.perf_counter()
    _clean_now_and_then()
    day = datetime.now(UTC)
    root = output_dir()
    folder = root / day.strftime("%Y-%m-%d")
    stamp = day.strftime("%H%M%S") + "-" + secrets.token_hex(3)
    fmt = params["audio_format"]
    names = [f"{mode}-{stamp}-take{i}-seed{seed}" for i, seed in enumerate(seeds, start=1)]
    paths = [folder / f"{name}.{fmt}" for name in names]
    record = {
        "mode": mode,
        "created": day.isoformat(timespec="seconds"),
        "params": params,
        "model": result["model"],
        "timings": dict(result["timings"]),
        "sample_rate": audio.SAMPLE_RATE,
        "channels": 2,
        "takes": [
            {
                "take": i,
                "seed": seed,
                "audio": path.relative_to(root).as_posix(),
                "metadata": path.with_suffix(".json").relative_to(root).as_posix(),
                "seconds": round(audio.seconds(take), 3),
                **({"planner": result["planners"][i - 1]} if "planners" in result else {}),
            }
            for i, (path, seed, take) in enumerate(zip(paths, seeds, result["audio"], strict=True), start=1)
        ],
    }
    done: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for take, path in zip(result["audio"], paths, strict=True):
            partial = folder / f".partial-{path.name}"
            done.append(partial)  # before writing: a write that fails halfway leaves this behind
            audio.save(take, partial, fmt)
            os.replace(partial, path)
            done[-1] = path
        record["timings"]["write_s"] = round(time.perf_counter() - started, 3)
        for path, entry in zip(paths, record["takes"], strict=True):
            own = {**record, "take": entry["take"], "seed": entry["seed"], "audio": entry["audio"]}
            if "planner" in entry:
                own["planner"] = entry["planner"]
            own["params"] = {**params, "seed": entry["seed"], "batch_size": 1}
            meta, partial_meta = path.with_suffix(".json"), folder / f".partial-{path.stem}.json"
            done.append(partial_meta)
            partial_meta.write_text(json.dumps(own, indent=2, ensure_ascii=False))
            os.replace(partial_meta, meta)
            done[-1] = meta
    except Exception as exc:  # a full disk shows up as OSError or as soundfile's own error type
        for path in done:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        raise SaveError(
            f"Your song was made but could not be saved: {_why_not_saved(exc, folder)}. Nothing was kept; "
            "please tell whoever runs this studio, then try again.",
            title="Not saved",
        ) from None
    return [str(p) for p in paths], record


_stems_lock = threading.Lock()


def _save_stem(part: Any, path: Path, fmt: str) -> None:
    """A WAV take's stems are 32-bit float WAV: a stem may peak above full scale where the take does
    not (sources cancel in the mix), and 16-bit would clip it and break the stems' sum."""
    if fmt != "wav":
        audio.save(part, path, fmt)
        return
    import numpy as np
    import soundfile as sf

    sf.write(str(path), np.asarray(part, dtype=np.float32).T, audio.SAMPLE_RATE, format="WAV", subtype="FLOAT")


def write_stems(take: Path, parts: dict[str, Any], info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Save a take's four stems beside it, named after it (``<take>-vocals.wav`` … in the take's own
    format), and their record ``<take>-stems.json``; return the stems' paths (in ``STEM_NAMES``
    order) and the record. Written as the takes are: complete files or none."""
    started = time.perf_counter()
    _clean_now_and_then()
    root = output_dir()
    fmt = take.suffix.lstrip(".")
    paths = [take.with_name(f"{take.stem}-{name}.{fmt}") for name in STEM_NAMES]
    meta = take.with_name(f"{take.stem}-stems.json")
    record = {
        "take": take.relative_to(root).as_posix(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **info,
        "timings": dict(info.get("timings", {})),
        "sample_rate": audio.SAMPLE_RATE,
        "channels": 2,
        "format": "wav (32-bit float)" if fmt == "wav" else fmt,
        "stems": {name: path.relative_to(root).as_posix() for name, path in zip(STEM_NAMES, paths, strict=True)},
    }
    done: list[Path] = []
    try:
        with _stems_lock:  # two splits of one take at once would share the partial files
            for name, path in zip(STEM_NAMES, paths, strict=True):
                partial = path.with_name(f".partial-{path.name}")
                done.append(partial)
                _save_stem(parts[name], partial, fmt)
                os.replace(partial, path)
                done[-1] = path
            record["timings"]["write_s"] = round(time.perf_counter() - started, 3)
            partial_meta = meta.with_name(f".partial-{meta.name}")
            done.append(partial_meta)
            partial_meta.write_text(json.dumps(record, indent=2, ensure_ascii=False))
            os.replace(partial_meta, meta)
    except Exception as exc:
        for path in done:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        raise SaveError(
            f"The stems were made but could not be saved: {_why_not_saved(exc, take.parent)}. Nothing was kept; "
            "please tell whoever runs this studio, then try again.",
            title="Not saved",
        ) from None
    return [str(p) for p in paths], record
