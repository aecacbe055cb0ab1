"""A take's voice lent to a new song: Generate's timbre reference taken from a take the studio made
(*Use this voice* links it in, as *Send to* does; ``/generate``'s ``reference_take`` names it as a
record names its takes), all on the CPU.

Upstream reads a reference as three 10 s windows, a random point in each third
(``process_reference_audio``; ``preparing.reference``), blind to where anyone sings: a take with a
long intro or a solo lends the timbre encoder bars without the voice. For a take the studio knows, the
three windows are placed where the voice sings instead, 30 s in all as upstream's encoder reads:

- its synced lines (``lyric_lines``: when each sung line starts, fixed when the take was written, so a
  variation or *Use these settings* chooses the same windows again), each sung until the next line
  starts or ``LINE_SECONDS`` at most (a line's end is not recorded);
- else its vocal stem, where it was split (``<take>-vocals``): where the stem is louder than
  ``STEM_FLOOR`` of its loud parts;
- else upstream's blind thirds, with a log line.

The windows are the three that together hold the most singing, none overlapping, joined in time order. The
record says whose voice it was and where (``reference``), so a variation or *Use these settings*
resolves the same take again, and refuses with a message once it is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import numpy as np

import audio
import checks
import error_messages
import headers
import output_folder
import preparing
import records
import take_latents
import uploads
from checks import InputError
from music_request import Notes

CELL = 0.1  # seconds: the grid the windows are placed on
LINE_SECONDS = 8.0  # a synced line sung at most this long where the next starts later (a break)
STEM_FLOOR = 0.1  # a vocal stem sings where its RMS (per cell) is above this share of its 95th percentile


class Voice(NamedTuple):
    take: str  # as records name takes: "2026-11-25/generate-….wav"
    path: Path  # the take's audio file
    record: dict[str, Any]  # its record (``record_of``)


def relative_name(name: Any) -> str:
    """A take's name as a record gives it, from that name or from the take's URL (``/takes/…``)."""
    text = str(name or "").strip()
    if len(text) > checks.MAX_TAKE_NAME_CHARS or not text.isprintable():
        return ""
    path = unquote(urlsplit(text).path) if "://" in text else text
    head, found, tail = path.rpartition("/takes/")
    return tail if found else path.lstrip("/")


def named(name: Any) -> Voice:
    """The take ``name`` names (``reference_take``), still kept, with a voice; ``InputError`` on
    ``reference_take`` otherwise. Whose it is, the admission check asks (``handlers``): another visitor's
    take gets the message a take that is gone gets (``gone``), so nothing tells which."""
    relative = relative_name(name)
    path = output_folder.studio_take_audio(relative)
    if path is None:
        raise InputError(gone(name), "reference_take")
    found = Voice(relative, path, record_of(path))
    check_sung(found, "reference_take")
    return found


def gone(name: Any) -> str:
    """What a take named as a voice that is not kept (or not the visitor's) is told."""
    return error_messages.VOICE_GONE.format(name=checks.shown(name), hours=f"{output_folder.output_max_age_hours():g}")


def record_of(path: Path) -> dict[str, Any]:
    """A take's record (the ``.json`` beside its audio ``path``), or {} where it cannot be read."""
    return _read(path.with_suffix(".json"))


def _read(path: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(record, dict):
            return record
    return {}


def check_sung(found: Voice, param: str = "reference_audio") -> None:
    """``InputError`` on ``param`` where the take's record says it has no voice (``sings``)."""
    if not sings(found.record):
        raise InputError(error_messages.VOICE_INSTRUMENTAL.format(name=checks.shown(Path(found.take).name)), param)


def sings(record: Any, take: records.Take | None = None) -> bool:
    """Whether a take has a voice to lend, as ``record`` says: its synced lines (``take``, else the take its own
    ``.json`` was written for), or lyrics other than ``[Instrumental]``; a Generate take without lyrics does not
    sing, a cover that kept its song's lyrics (none given) may. *Use this voice* is offered where it does."""
    how_made = records.Record.of(record)
    this = take if take is not None else how_made.this_take
    if this is not None and this.lyric_lines:
        return True
    lyrics = how_made.lyrics.strip()
    return not (lyrics.lower() == checks.INSTRUMENTAL_TAG.lower() or (how_made.mode == "generate" and not lyrics))


def of_file(path: Any) -> Voice | None:
    """The take a reference file is, byte for byte (*Use this voice* links a take in under its own
    name), while the studio keeps it; None for any other file."""
    file = Path(str(path or ""))
    if file.suffix not in output_folder.TAKE_SUFFIXES or not file.is_file():
        return None
    days = sorted((d.name for d in output_folder.output_dir().iterdir() if d.is_dir()), reverse=True)
    for day in days:
        found = output_folder.studio_take_audio(f"{day}/{file.name}")
        if found is None:
            continue
        same = False
        with contextlib.suppress(OSError):
            same = os.path.samefile(found, file) or take_latents.same(found, file)
        return Voice(f"{day}/{file.name}", found, record_of(found)) if same else None
    return None


def timbre(reference_audio: Any, reference_take: Any, seed: int) -> tuple[np.ndarray | None, Notes]:
    """Generate's timbre reference (``reference_audio``, a file, or ``reference_take``, a take's name;
    one or the other) as the pipeline takes it, and what the record notes of it."""
    if reference_take not in (None, ""):
        if reference_audio:
            raise InputError(error_messages.VOICE_BOTH, "reference_take")
        found = named(reference_take)
        path = found.path
    elif reference_audio:
        found, path = of_file(reference_audio), reference_audio
    else:
        return None, Notes()
    if found is None:  # an upload: upstream's windows
        return preparing.reference(path, seed), Notes(reference_audio=Path(str(path)).name)
    # Decoded once: ``preparing.reference`` reads the same file from the uploads' cache.
    samples = preparing.source(path, "timbre reference", "reference_audio").shape[-1]
    starts, by = windows(found, samples / audio.SAMPLE_RATE)
    made = preparing.reference(path, seed, starts)
    if starts is None:
        print(
            f"Timbre reference: take {found.take} shows no singing (synced lines, vocal stem); upstream's thirds are read"
        )
        window = preparing.REFERENCE_WINDOW_SECONDS * audio.SAMPLE_RATE
        starts = [s / audio.SAMPLE_RATE for s in preparing.reference_starts(max(samples, 3 * window), seed)]
    shown = [[round(s, 1), round(s + preparing.REFERENCE_WINDOW_SECONDS, 1)] for s in starts]
    return made, Notes(reference_audio=found.path.name, voice={"take": found.take, "by": by, "windows": shown})


def windows(found: Voice, seconds: float) -> tuple[list[float] | None, str]:
    """Where the three windows of the take ``found`` (``seconds`` long) start, in seconds, and what
    placed them: its synced lines, else its vocal stem; ``(None, "thirds")`` where neither is known,
    where the take is shorter than the three windows, or where neither shows any singing."""
    if seconds < 3 * preparing.REFERENCE_WINDOW_SECONDS or headers.reading():  # the admission check reads no stem
        return None, "thirds"
    for by, sung in (("sung lines", _lines_sung(found.record, seconds)), ("vocal stem", _stem_sung(found))):
        starts = best_windows(sung) if sung is not None else None
        if starts is not None:
            return starts, by
    return None, "thirds"


def best_windows(sung: np.ndarray) -> list[float] | None:
    """The starts (seconds) of the three non-overlapping windows that together hold the most singing
    (``sung``: one weight a ``CELL``), in time order, the earliest where choices tie; None where the
    song is shorter than three windows or none holds any."""
    width = int(round(preparing.REFERENCE_WINDOW_SECONDS / CELL))
    if sung.shape[0] < 3 * width:
        return None
    sums = np.cumsum(np.concatenate([[0.0], sung]))
    held = (sums[width:] - sums[:-width]).tolist()  # singing in the window from each cell
    n = len(held)
    # most[k][i]: the most k windows starting at cell i or later hold (an exact choice, not a greedy one).
    most = [[0.0] * (n + width + 1)] + [[-1.0] * (n + width + 1) for _ in range(3)]
    for k in (1, 2, 3):
        for i in range(n - 1, -1, -1):
            rest = most[k - 1][i + width]
            most[k][i] = max(most[k][i + 1], held[i] + rest if rest >= 0 else -1.0)
    if most[3][0] <= 0:
        return None
    starts, i = [], 0
    for k in (3, 2, 1):
        while most[k][i] != held[i] + most[k - 1][i + width] or most[k - 1][i + width] < 0:
            i += 1
        starts.append(round(i * CELL, 1))
        i += width
    return starts


def _lines_sung(record: dict[str, Any], seconds: float) -> np.ndarray | None:
    """Each cell's share sung by the take's synced lines (None where it has none)."""
    this_take = records.Record.of(record).this_take
    lines = this_take.lyric_lines if this_take is not None else None
    if lines is None:
        return None
    times = sorted(
        float(line["time"])
        for line in lines
        if isinstance(line, dict) and isinstance(line.get("time"), int | float) and 0 <= line["time"] < seconds
    )
    if not times:
        return None
    sung = np.zeros(int(seconds / CELL))
    for start, end in zip(times, [*times[1:], seconds], strict=True):
        sung[int(start / CELL) : int(min(end, start + LINE_SECONDS) / CELL)] = 1.0
    return sung


def _stem_sung(found: Voice) -> np.ndarray | None:
    """Each cell's singing by the take's vocal stem, where it was split (None where it was not)."""
    record = _read(found.path.with_name(f"{found.path.stem}-stems.json"))
    stems = record.get("stems") if isinstance(record.get("stems"), dict) else {}
    path = output_folder.studio_file(stems.get("vocals"))
    if path is None:
        return None
    try:
        vocals = uploads.load(path, "vocal stem")
    except (audio.AudioError, OSError):
        return None
    cell = int(CELL * audio.SAMPLE_RATE)
    frames = vocals.shape[-1] // cell
    if frames == 0:
        return None
    power = np.square(vocals[:, : frames * cell], dtype=np.float32).mean(axis=0).reshape(frames, cell).mean(axis=1)
    loud = float(np.percentile(power, 95))
    return (power > loud * STEM_FLOOR**2).astype(np.float64) if loud > 0 else None
