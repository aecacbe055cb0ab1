"""Writing takes, their previews, ``.lrc`` files, stems and JSON records into the output folder
(``output_folder``: where they are kept, its quota and clean-up), and reserving the disk space a run's
takes need (``reserving_disk``).

Each take is written under a temporary name and renamed once complete, with a JSON record beside
it; the clean-up deletes only files named as the studio names its takes, in its day folders.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gradio as gr

import audio
import bar_one
import error_messages
import grid_lock
import lrc
import messages
import output_folder
import records
import runs
import song_map
import take_latents
import untouched
from run_result import Finished


class SaveError(gr.Error):
    """The takes could not be written; nothing of them is left on disk."""


# Below this much free space a failed write is put down to a full disk: libsndfile reports one as
# its own "System error" without the OS's error number.
FULL_DISK_BYTES = 64 * 2**20


def _why_not_saved(exc: BaseException, folder: Path) -> str:
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "No space" in str(exc) or _free_bytes(folder) < FULL_DISK_BYTES:
        return error_messages.SAVE_DISK_FULL
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return error_messages.SAVE_READ_ONLY
    return error_messages.SAVE_FAILED.format(kind=type(exc).__name__)


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder if folder.exists() else folder.parent).free
    except OSError:
        return FULL_DISK_BYTES  # unknown: not a reason to blame the disk


# The player's waveform: this many bars a take, computed here from the audio in hand (the page never
# decodes a take to draw it).
PEAKS = 200
PREVIEW_SUFFIX = "-preview.mp3"
TITLE_CHARS = 80


def encoding(fmt: str, subtype: str | None = None) -> dict[str, Any]:
    """What a take's file is, as its record says: the format and its bitrate or bit depth (``subtype``: an
    Edit's or Extend's source's, ``untouched``)."""
    if fmt == "mp3":
        return {"format": "mp3", "bitrate_kbps": audio.MP3_KBPS, "bitrate_mode": "constant"}
    kind = subtype or audio.FORMATS[fmt][1]
    return {"format": fmt, "bits": 32, "float": True} if kind == "FLOAT" else {"format": fmt, "bits": int(kind[4:])}


def title(how_made: records.Record, take: int, of: int) -> str:
    """A take's title in its tags (``how_made``: its record): the first lyric line, else the caption, else
    the mode; numbered when the request made several."""
    base = ""
    for lyric_line in (how_made.song_lyrics or "").splitlines():  # a region Edit's: the song's
        lyric_line = "".join(c for c in lyric_line if c.isprintable()).strip()
        if lyric_line and not lyric_line.startswith(("[", "(")):
            base = lyric_line
            break
    base = base or " ".join("".join(c for c in how_made.caption if c.isprintable()).split())
    if len(base) > TITLE_CHARS:
        base = base[: TITLE_CHARS - 1].rstrip() + "…"
    base = base or "Untitled"
    return f"{base} (take {take} of {of})" if of > 1 else base


def _tags(mode: str, how_made: records.Record, take: int, of: int, seed: int) -> dict[str, str]:
    return {
        "title": title(how_made, take, of),
        "artist": audio.STUDIO,
        "comment": messages.TAKE_COMMENT.format(mode=mode.title(), take=take, of=of, seed=seed, studio=audio.STUDIO),
    }


def _write_one(
    take: Any, path: Path, preview: Path, fmt: str, tags: dict[str, str], at_source_rate: Any = None
) -> None:
    """A take and, for WAV or FLAC, its MP3 preview for the page's player, each complete or absent;
    ``at_source_rate``: an Edit's or Extend's file at its source's rate (samples, rate, sample format:
    ``untouched``), the preview from ``take`` (48 kHz)."""
    partial = path.with_name(f".partial-{path.name}")
    if at_source_rate is None:
        audio.save(take, partial, fmt, tags)
    else:
        samples, rate, subtype = at_source_rate
        audio.save(samples, partial, fmt, tags, rate=rate, subtype=subtype)
    os.replace(partial, path)
    if preview != path:
        partial = preview.with_name(f".partial-{preview.name}")
        audio.save_preview(take, partial, tags)
        os.replace(partial, preview)


@contextlib.contextmanager
def reserving_disk(size: int, refused: Callable[[], Exception]) -> Iterator[None]:
    """The disk space ``size`` bytes of takes need in the output folder (what ``budget`` estimated at
    admission they may write: ``music_request.Admission.disk_bytes``), freed (oldest takes first) and
    reserved while they are made and until they are written, so that runs under way do not promise the
    same space twice; ``refused()`` raised, before they are made, where the folder cannot free it."""
    with output_folder.reserve(size) as made:
        if not made:
            raise refused()
        yield


def write_takes(
    mode: str, result: Finished, params: dict[str, Any], seeds: list[int], fmt: str, stop: runs.Stop = runs.NEVER
) -> tuple[list[str], dict[str, Any]]:
    """Save every take (in the format ``fmt``), its preview and a JSON record beside it (``params``: its
    settings, ``job_record.of``); return the audio paths and the call's record.

    Each file is written under a temporary name and renamed once complete (a full or read-only disk
    leaves no partial or empty file, and the visitor is told why nothing was saved); the takes are
    encoded side by side; records name files relative to the output folder, never server paths. A Stop
    (``stop()``) asked before the last is written removes every file of them (``runs.unless``).
    """
    started = time.perf_counter()
    output_folder.clean_now_and_then()
    day = datetime.now(UTC)
    root = output_folder.output_dir()
    folder = root / day.strftime("%Y-%m-%d")
    stamp = day.strftime("%H%M%S") + "-" + secrets.token_hex(3)
    names = [f"{mode}-{stamp}-take{i}-seed{seed}" for i, seed in enumerate(seeds, start=1)]
    paths = [folder / f"{name}.{fmt}" for name in names]
    previews = [
        path if fmt == "mp3" else folder / f"{name}{PREVIEW_SUFFIX}" for name, path in zip(names, paths, strict=True)
    ]
    source = result.at_source_rate or untouched.Written({})
    entries = [
        _entry(result, i, seed, path, preview, root, take)
        for i, (path, preview, seed, take) in enumerate(zip(paths, previews, seeds, result.audio, strict=True), 1)
    ]
    record = {
        "mode": mode,
        "created": day.isoformat(timespec="seconds"),
        "params": params,
        "model": result.model,
        "timings": (timings := dict(result.timings)),
        "sample_rate": source.rate,
        "channels": 2,
        "encoding": encoding(fmt, source.subtype),
        **({"untouched": source.said} if source.said else {}),  # an Edit's or Extend's (``untouched``)
        "preview": encoding("mp3") if fmt == "mp3" else {**encoding("mp3"), "bitrate_kbps": audio.PREVIEW_KBPS},
        **({"loop": result.loop} if result.loop is not None else {}),  # a loop's bars and length (``loops``)
        "takes": entries,
    }
    # Every name this call may leave behind, partial or finished: all go if any write fails or a Stop comes.
    written = [*paths, *previews, *(p.with_suffix(suffix) for p in paths for suffix in (".json", ".lrc"))]
    written += [take_latents.file_of(p) for p in paths]
    alone = [p.with_name(f"{p.stem}-part{p.suffix}") for p in paths] if result.parts is not None else []
    for entry, part in zip(entries, alone, strict=False):
        entry["part"] = part.relative_to(root).as_posix()
    how_made = records.Record.of(record)
    played = _as_played(result, entries, paths, root)
    written += alone + [path for _, path in played]
    written += [p.with_name(f".partial-{p.name}") for p in written]
    with _all_or_none(written, folder):
        runs.unless(stop)
        folder.mkdir(parents=True, exist_ok=True)
        kept = (
            [(t, source.rate, source.subtype) for t in source.takes]
            if source.takes is not None
            else [None] * len(seeds)
        )
        jobs = [
            (take, path, preview, fmt, _tags(mode, how_made, i, len(seeds), seed), mine)
            for i, (take, path, preview, seed, mine) in enumerate(
                zip(result.audio, paths, previews, seeds, kept, strict=True), 1
            )
        ]
        parts = [(part, p, p, fmt, {}) for part, p in zip(result.parts or (), alone, strict=True)]
        _write_all(jobs + parts + [(take, p, p, fmt, {}) for take, p in played])
        runs.unless(stop)
        _write_lrcs(entries, paths, how_made)
        timings["map_s"] = _mapped(entries, result, how_made, stop)
        take_latents.write_all(result.latents, entries, result.audio, paths, root)
        _bound(result, entries, paths)
        timings["write_s"] = round(time.perf_counter() - started, 3)
        _write_records(record, entries, paths, params)
        runs.unless(stop)  # the last moment a Stop keeps nothing: from here the takes are the visitor's
    for entry, take in zip(entries, result.audio, strict=True):
        entry["peaks"] = audio.peaks(take, PEAKS)  # for the page's player; not kept in the files
    return [str(p) for p in paths], record


@contextlib.contextmanager
def _all_or_none(written: list[Path], folder: Path) -> Iterator[None]:
    """Every file in ``written`` removed if the writing fails (the visitor told why, ``SaveError``) or is
    stopped."""
    try:
        yield
    except Exception as exc:  # a full disk shows up as OSError or as soundfile's own error type
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        if isinstance(exc, runs.Cancelled):
            raise
        raise SaveError(
            error_messages.SONG_NOT_SAVED.format(why=_why_not_saved(exc, folder)),
            title="Not saved",
        ) from None


def _mapped(
    entries: list[dict[str, Any]], result: Finished, how_made: records.Record, stop: runs.Stop = runs.NEVER
) -> float:
    """Each take's map in its entry (``song_map``: a loop's its grid, a locked take's its lock's); its seconds."""
    mapping = time.perf_counter()
    locks = result.locked.locks if result.locked is not None else [{}] * len(entries)
    for number, (entry, take, locked) in enumerate(runs.until(stop, zip(entries, result.audio, locks, strict=True)), 1):
        seconds = round(audio.seconds(take), 3)  # as its entry says (``_entry``)
        grid = grid_lock.grid(locked, seconds) if locked.get("locked") else None
        loop = records.LoopEntry.of(result.loop)  # the run's loop as its record says it (``loops.record``)
        mapped = song_map.of_take(take, records.Take.of(entry, number), how_made, loop, grid)
        # Counted from the musician's bar 1 where an Edit or Extend set it (``bar_one``).
        counted = bar_one.of_take(mapped, how_made.first_downbeat, how_made.bpm, how_made.time_signature, seconds)
        if counted is not None:
            entry.update(counted.as_record())
    return round(time.perf_counter() - mapping, 3)


def _bound(result: Finished, entries: list[dict[str, Any]], paths: list[Path]) -> None:
    """A loop, or a take locked to the grid, keeps no latents to bind it by: its audio's digest says a song sent back
    is this take (``take_latents.belongs``: Edit and Extend by the bar read its record's grid)."""
    locks = result.locked.locks if result.locked is not None else [{}] * len(entries)
    for entry, path, locked in zip(entries, paths, locks, strict=True):
        if records.Take.of(entry, 1).latents is None and (result.loop is not None or locked.get("locked")):
            entry["audio_sha256"] = take_latents.digest(path)


def _as_played(result: Finished, entries: list[dict[str, Any]], paths: list[Path], root: Path) -> list[tuple]:
    """A take locked to the grid (``grid_lock``): the take as played, and where it is written beside it
    (``<take>-unlocked``), named in its entry."""
    played = []
    unlocked = result.locked.unlocked if result.locked is not None else ()
    for entry, take, path in zip(entries, unlocked, paths, strict=False):
        if take is not None:
            played.append((take, path.with_name(f"{path.stem}-unlocked{path.suffix}")))
            entry["unlocked"] = played[-1][1].relative_to(root).as_posix()
    return played


def _entry(result: Finished, i: int, seed: int, path: Path, preview: Path, root: Path, take: Any) -> dict:
    """Take number ``i``'s entry in the record (a part added, alone beside it, is added as ``part``)."""
    return {
        "take": i,
        "seed": seed,
        "audio": path.relative_to(root).as_posix(),
        "preview": preview.relative_to(root).as_posix(),
        "metadata": path.with_suffix(".json").relative_to(root).as_posix(),
        "seconds": round(audio.seconds(take), 3),
        **({"planner": result.planners[i - 1]} if result.planners is not None else {}),
        "finish": result.finishes[i - 1],
        **(result.per_take[i - 1] if result.per_take is not None else {}),  # a variation's: ``variations``
        # A loop's: ``loop_takes.in_time``.
        **({"stretch": result.in_time[i - 1]} if result.in_time is not None else {}),
        # Locked to the grid: ``grid_lock``.
        **({"lock": result.locked.locks[i - 1]} if result.locked is not None else {}),
        **_synced(result, i - 1, path, root, audio.seconds(take)),
    }


# A sung take's synced lyrics in its record: its ``.lrc`` file, the lyric-alignment score and the lines.
SYNCED = ("lrc", "lyric_score", "lyric_lines")
# What else of a take's entry the take's record (its ``.json``) keeps (``latents``: ``take_latents``).
PER_TAKE_FIELDS = (
    "planner",
    "finish",
    "variation",
    "noise",
    "part",
    "latents",
    "bars",
    "sections",
    "tempo",
    "stretch",
    "lock",
    "unlocked",
    "audio_sha256",
)


def _synced(result: Finished, index: int, path: Path, root: Path, seconds: float) -> dict[str, Any]:
    """The record's synced-lyrics fields of one take (none for an instrumental), its lyric lines' times
    fitted to the take as written (Generate trims the render, Think may have cut it)."""
    found = (result.lyrics or [None] * (index + 1))[index]
    if not found:
        return {}
    return {
        "lrc": path.with_suffix(".lrc").relative_to(root).as_posix(),
        "lyric_score": found["score"],
        "lyric_lines": lrc.fit(found["lines"], seconds),
    }


def _write_lrcs(entries: list[dict[str, Any]], paths: list[Path], how_made: records.Record) -> None:
    """A sung take's ``.lrc`` beside it, written as the takes are (complete or absent)."""
    for number, (path, entry) in enumerate(zip(paths, entries, strict=True), 1):
        take = records.Take.of(entry, number)
        if take.lyric_lines is not None:
            text = lrc.lrc_text(take.lyric_lines, title(how_made, number, len(paths)), take.seconds)
            partial = path.with_name(f".partial-{path.stem}.lrc")
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, path.with_suffix(".lrc"))


def _write_all(jobs: list[tuple[Any, ...]]) -> None:
    """``_write_one`` for every take, side by side on the CPU's cores; the first failure is raised."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        for done in [pool.submit(_write_one, *job) for job in jobs]:
            done.result()


def _write_records(
    record: dict[str, Any], entries: list[dict[str, Any]], paths: list[Path], params: dict[str, Any]
) -> None:
    """Each take's record beside it (its seed, its file, its plan), written as the takes are."""
    for number, (path, entry) in enumerate(zip(paths, entries, strict=True), 1):
        take = records.Take.of(entry, number)
        # The take's settings: its seed, made alone (the key keeps its place in the record).
        alone = {"params": {**params, "seed": take.seed, "batch_size": 1}}
        take_record = {**record, "take": number, "seed": take.seed, "audio": take.audio} | alone
        take_record.update({k: entry[k] for k in (*PER_TAKE_FIELDS, *SYNCED) if k in entry})
        meta, partial_meta = path.with_suffix(".json"), path.with_name(f".partial-{path.stem}.json")
        partial_meta.write_text(json.dumps(take_record, indent=2, ensure_ascii=False))
        os.replace(partial_meta, meta)


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
    """Save a take's four stems beside it, named after it (``<take>-vocals.wav`` … in the take's
    format), and their record ``<take>-stems.json``; return the stems' paths (in ``output_folder.STEM_NAMES``
    order) and the record. Written as the takes are: complete files or none."""
    started = time.perf_counter()
    output_folder.clean_now_and_then()
    root = output_folder.output_dir()
    fmt = take.suffix.lstrip(".")
    paths = [take.with_name(f"{take.stem}-{name}.{fmt}") for name in output_folder.STEM_NAMES]
    meta = take.with_name(f"{take.stem}-stems.json")
    record = {
        "take": take.relative_to(root).as_posix(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **info,
        "timings": dict(info.get("timings", {})),
        "sample_rate": audio.SAMPLE_RATE,
        "channels": 2,
        "format": "wav (32-bit float)" if fmt == "wav" else fmt,
        "stems": {
            name: path.relative_to(root).as_posix() for name, path in zip(output_folder.STEM_NAMES, paths, strict=True)
        },
    }
    done: list[Path] = []
    try:
        with _stems_lock:  # two splits of one take at once would share the partial files
            for name, path in zip(output_folder.STEM_NAMES, paths, strict=True):
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
            error_messages.STEMS_NOT_SAVED.format(why=_why_not_saved(exc, take.parent)),
            title="Not saved",
        ) from None
    return [str(p) for p in paths], record
