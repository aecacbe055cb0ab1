"""An uploaded song as the page shows it: the line under it, its waveform, its tempo and key.

One event per upload reads the song once (``uploads.load``) and first shows its length and
waveform, then its tempo, key, beats per bar and loudness, filling the tab's BPM, key and time
signature. It runs in its own small queue (``concurrency_id="uploads"``), never behind the GPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

import analysis
import audio
import checks
import uploads
import waveform

UNCHANGED = gr.update()


def describe_source(path: str | None) -> str:
    """A line under an upload: its length, or why it cannot be used (read from its header)."""
    if not path:
        return ""
    try:
        header = audio.probe(path)
    except audio.AudioError as exc:
        return f"⚠️ {exc}"
    minutes, secs = divmod(header.frames / header.rate, 60)
    return f"Source: {int(minutes)}:{secs:04.1f} long · {header.rate} Hz · {header.channels} channel(s)"


def read_song(path: str | None, wave: dict[str, Any] | None = None) -> Iterator[tuple[Any, ...]]:
    """``(line, bpm, key, time signature, waveform)`` as they become known: the length and the
    waveform first, then the analysis. ``wave`` holds the waveform's extras (Extend's seconds to
    add, Edit's region) or is None where the tab has no waveform."""
    text = describe_source(path)
    if not path:
        yield text, UNCHANGED, UNCHANGED, UNCHANGED, "" if wave is not None else UNCHANGED
        return
    if text.startswith("⚠️"):  # refused from its header: the waveform's place says why too
        why = waveform.refused(text.removeprefix("⚠️ "))
        yield text, UNCHANGED, UNCHANGED, UNCHANGED, why if wave is not None else UNCHANGED
        return
    try:
        song = uploads.load(path)
    except audio.AudioError as exc:
        why = waveform.refused(str(exc))
        yield f"{text}\n\n⚠️ {exc}", UNCHANGED, UNCHANGED, UNCHANGED, why if wave is not None else UNCHANGED
        return
    drawn = waveform.draw(song, **wave) if wave is not None else UNCHANGED
    yield text, UNCHANGED, UNCHANGED, UNCHANGED, drawn
    try:
        found = analysis.analyze(path)
    except uploads.Busy as exc:
        yield f"{text}\n\n⚠️ {exc}", UNCHANGED, UNCHANGED, UNCHANGED, drawn
        return
    except Exception:  # an analysis that fails must not cost the upload
        yield f"{text} · (tempo and key could not be measured)", UNCHANGED, UNCHANGED, UNCHANGED, drawn
        return
    # No steady beat: BPM and metre go (back) to auto, and the line says why.
    yield (
        f"{text} · {analysis.describe(found).split(' · ', 1)[1]}",
        0 if found.bpm is None else int(round(found.bpm)),
        found.key,
        checks.AUTO if found.beats_per_bar is None else str(found.beats_per_bar),
        drawn,
    )


def read_cover_song(src_audio: str | None) -> Iterator[tuple[Any, ...]]:
    """Cover's upload: its line, tempo, key and metre."""
    for line, bpm, key, meter, _ in read_song(src_audio):
        yield line, bpm, key, meter


def read_extend_song(src_audio: str | None, extend_seconds: Any = 30) -> Iterator[tuple[Any, ...]]:
    """Extend's upload: as Cover's, with the waveform marking the seam."""
    yield from read_song(src_audio, {"extra": extend_seconds})


def read_edit_song(
    src_audio: str | None, repainting_start: Any = 0, repainting_end: Any = 10
) -> Iterator[tuple[Any, ...]]:
    """Edit's upload: as Cover's, with the waveform showing the region to drag."""
    yield from read_song(src_audio, {"start": repainting_start, "end": repainting_end, "select": True})


READERS = {"cover": read_cover_song, "extend": read_extend_song, "edit": read_edit_song}


def scale_tempo(bpm: Any, factor: float) -> Any:
    """Half or double the BPM field: beat trackers often find twice or half the felt tempo."""
    try:
        value = float(bpm)
    except (TypeError, ValueError, OverflowError):
        return gr.update()
    if not 0 < value < float("inf"):
        return gr.update()
    return int(round(min(checks.BPM_RANGE[1], max(checks.BPM_RANGE[0], value * factor))))
