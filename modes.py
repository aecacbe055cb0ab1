"""The preparers of the four music modes (``prepare_generate``, ``prepare_cover``, ``prepare_extend``,
``prepare_edit``; their table ``PREPARE``) and the finish every mode shares (``finish``); all of it runs
on the CPU.

A request goes through these steps: ``prepare_<mode>(...)`` checks the visitor's settings
(``checks``) and returns a ``Job``: the typed request the GPU runs (``music_request.MusicRequest``:
what was asked, the render, Think's part) and what the CPU does with its takes. ``budget.admit``
estimates its length and cost at admission, the GPU entry (``generation.music_gpu``) runs ``job.request``, and
``finish(job, result)`` fits, gain-matches, splices and finishes (``mastering``) the takes, then
``takes`` writes the files. Nothing here takes a GPU slot.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import audio
import edit_bars
import edit_lines
import error_messages
import extend_lyrics
import extend_where
import grid_lock
import job_record
import loop_takes
import loops
import mastering
import models
import parameters
import part_tasks
import preparing
import runs
import takes
import untouched
import voice
from checks import (
    EXTEND_RANGE,
    InputError,
    about,
    as_number,
    check_length,
    check_takes,
    in_range,
)
from music_request import Job, Loop, MusicRequest, Notes, pipeline_seconds, trimmed
from parameters import REGION, Asked
from preparing import check_think
from run_result import Finished, Rendered

# Equal-power crossfade at each seam between kept and new audio.
SEAM_SECONDS = 0.05


def finish(job: Job, result: Rendered, stop: runs.Stop = runs.NEVER) -> tuple[list[str], dict[str, Any]]:
    """Post-process, finish (a take at a time) and write the takes; returns paths and the record. ``stop()``: Stop."""
    started, loop, seam = time.perf_counter(), result.loop or job.request.loop, result.seam
    pairs = () if seam is None else zip(seam.audio, seam.songs, strict=True)
    made = result.audio if seam is None else [_looped(job, loop, *pair) for pair in pairs]
    posted = made if job.kept is not None else [job.post(take) for take in runs.until(stop, made)]
    # A loop is on its grid already (``loop_takes.in_time``).
    locked = grid_lock.locked(job, posted, result) if job.request.lock and loop is None else None
    if job.kept is not None:  # an Edit's or Extend's: at its source's rate (``untouched``)
        kept = [untouched.finish(job.kept, take, job.finishing) for take in runs.until(stop, made)]
        done = [(take, info) for take, info, _ in kept]
        at_source_rate = untouched.written(job.kept, [mine for *_, mine in kept], job.request.audio_format)
    else:
        posted, at_source_rate = posted if locked is None else locked.takes, None
        done = [mastering.finish(take, job.finishing, job.region) for take in runs.until(stop, posted)]
    lyrics = result.lyrics if locked is None else locked.lyrics
    if job.synced is not None and lyrics:  # a region Edit's lyric lines: the whole song's
        lyrics = [found and {**found, "lines": job.synced(found["lines"])} for found in lyrics]
    made_of = {"lyrics": lyrics, "at_source_rate": at_source_rate, "per_take": job_record.variation_entries(job)}
    made_of["parts"] = None if job.part is None else [job.part(take) for take in made]
    made_of["loop"] = None if loop is None else loops.record(loop)  # as made: at the tempo and metre Think chose
    ready = Finished.of(result, locked, done, round(time.perf_counter() - started, 3), **made_of)
    params = job_record.of(preparing.adapters_measured(job), result.source_latents)
    return takes.write_takes(job.mode, ready, params, job.seeds, job.request.audio_format, stop)


def _looped(job: Job, loop: Loop, repainted: np.ndarray, song: np.ndarray) -> np.ndarray:
    """A loop's take: its seam's repaint spliced into the song it was repainted in as an Edit's region is
    (``_region_job``: the rest bit-exact), and the kept cycle rotated back (``loops``)."""
    a, b = loop_takes.window(loop)
    edit = _region_job(job.request, song, a / audio.SAMPLE_RATE, b / audio.SAMPLE_RATE, job.finishing)
    return loops.back(edit.post(repainted), loop)


@parameters.preparer("generate")
def prepare_generate(a: Asked) -> Job:
    """Text to music (``reference_audio`` lends a timbre; ``reference_take``, a take of yours by the
    name its record gives, ``takes[i].audio``, lends its voice, read where it sings). ``think``: the 5 Hz planner plans first (its
    length with ``auto_length``, its caption with ``rewrite_caption``; a take's ``plan`` skips the
    thinking). Every take is finished at ``loudness`` LUFS under ``ceiling`` dBTP, after its fades. Guidance
    applies while the time t (1 at noise, 0 at the song) lies from ``cfg_interval_start`` to
    ``cfg_interval_end`` (upstream's), the other steps costing half. ``loop_bars`` (2, 4, 8, 16 or 32;
    0: off) makes each take a loop of that many bars at ``bpm`` (``loops``), seamless round its wrap.
    ``lock_to_grid`` warps each take's bars onto ``bpm`` (or Think's) as it is finished (``grid_lock``), the
    take as played kept beside it."""
    variant = models.active_variant()
    prompt, lyrics = preparing.text(a.prompt, a.lyrics)
    with about("think"):
        thinking = check_think(a.think)
    preparing.check_unused(a, "think" if thinking else "plain")  # the caption switch is Think's
    with about("audio_duration"):
        duration = check_length(a.audio_duration, a.auto_length, thinking)
    with about("batch_size"):
        n_takes = check_takes(a.batch_size)
    render, fmt = preparing.render(a, prompt, lyrics, n_takes, variant)
    reference, lent = voice.timbre(a.reference_audio, a.reference_take, render.seeds[0])
    finishing = parameters.finish(a)
    locking = _lock(a.lock_to_grid, render.pipeline.bpm, thinking)
    longest = duration if duration is not None else audio.MAX_SECONDS
    render = render.with_pipeline(audio_duration=pipeline_seconds(longest), reference_audio=reference)
    request = MusicRequest("generate", render, longest, fmt, lock=locking, notes=lent)
    request = preparing.with_think(request, thinking, duration, a.rewrite_caption, a.plan)
    return loops.made(Job(request, trimmed(request.seconds), finishing), a.loop_bars, a.auto_length)


def _lock(value: Any, bpm: int | None, thinking: bool) -> bool:
    """*Lock to the grid*, checked: it needs a tempo, the one asked or the one Think plans."""
    on = parameters.PARAMS["lock_to_grid"].check(value)
    if on and bpm is None and not thinking:
        raise InputError(error_messages.LOCK_NEEDS_BPM, "lock_to_grid")
    return on


@parameters.preparer("cover")
def prepare_cover(a: Asked) -> Job:
    """A new rendition of ``src_audio`` in the style of ``prompt``, as long as the source;
    ``cover_noise_strength`` (upstream's) starts it from the song itself, noised that far less than
    pure noise (0: from noise, as upstream's API defaults). ``morph`` (upstream's flow-edit overlay)
    edits the song itself from what it is (``morph_prompt``, ``morph_lyrics``: its style and lyrics
    now; left out: a take's record's) toward ``prompt`` and ``lyrics``, keeping its structure (cover
    strength and start unused)."""
    render, fmt = preparing.common(a, need_text="cover")
    finishing = parameters.finish(a)
    morphing = preparing.check_morph(a.morph, a.morph_prompt, a.morph_lyrics, a.src_audio)
    preparing.check_unused(a, "morph" if morphing else "cover")  # the song's own words are the morph's
    source = preparing.source(a.src_audio)
    reference = preparing.reference(a.reference_audio, render.seeds[0]) if a.reference_audio else None
    n, seconds = source.shape[-1], round(audio.seconds(source), 3)
    # The model is told the real length ("duration: N seconds" in its prompt), as upstream does;
    # the pipeline's default would say 60 s whatever the song.
    render = render.with_pipeline(
        task_type="cover",
        audio_duration=audio.seconds(source),
        src_audio=preparing.model_input(source),
        reference_audio=reference,
        **morphing,
    )
    reference_name = Path(str(a.reference_audio)).name if reference is not None else None
    notes = Notes(src_audio=Path(str(a.src_audio)).name, source_seconds=seconds, reference_audio=reference_name)
    request = preparing.from_take_latents(a.src_audio, MusicRequest("cover", render, seconds, fmt, notes=notes))
    return Job(request, lambda take: audio.fit(take, n), finishing)


@parameters.preparer("extend")
def prepare_extend(a: Asked) -> Job:
    """``src_audio`` with ``extend_seconds`` of new music, or ``bars`` whole bars at its tempo (counted from bar 1 at
    ``first_downbeat``, seconds, where the musician set it), where ``where`` puts it (``extend_where``): after the
    song (the new part ends on a bar line: ``edit_bars.extension``), before it (an intro, the song's bar 1 still on
    a bar line: ``edit_bars.extension``) or from a point inside it (what followed replaced); the song's part kept is
    kept as is."""
    render, fmt = preparing.common(a, need_text=None)
    with about("extend_seconds"):
        more = in_range(a.extend_seconds, "Seconds to add", *EXTEND_RANGE, " s")
    where = extend_where.read(a.where)
    finishing = parameters.finish(a, whole=False)
    source, bars = preparing.source(a.src_audio), a.bars
    n, first = source.shape[-1], edit_bars.bar_one_at(a.first_downbeat, source)
    ending = extend_lyrics.check_ending(a.ending, where.kind == extend_where.START)
    if ending and not edit_bars.given(bars):  # an ending asked in seconds: whole bars, its last line the song's end
        bars = extend_lyrics.ending_bars(a.src_audio, source, more, render.pipeline, first) or bars
    where, lay = extend_where.layout(where, a.src_audio, source, bars, more, render.pipeline, first)
    more, fade = lay.lead or lay.added, int(SEAM_SECONDS * audio.SAMPLE_RATE)
    laid, start, end = lay.laid(source, audio.SAMPLE_RATE, fade)
    total = max(end, laid.shape[-1])
    if total > audio.MAX_SECONDS * audio.SAMPLE_RATE:  # a point's is refused by ``extend_where``
        raise InputError(_too_long(n / audio.SAMPLE_RATE, more), "bars" if edit_bars.given(bars) else "extend_seconds")
    reads = n if lay.upto is None else start  # the song's samples the model reads
    seam, seconds = reads / audio.SAMPLE_RATE, round(total / audio.SAMPLE_RATE, 3)
    # Pad the song kept with silence where the new music goes and repaint that; the prompt says the song's length,
    # as upstream's does for a repaint outside the song (``extend_where``).
    render = render.with_pipeline(
        task_type="repaint",
        audio_duration=seam,
        src_audio=preparing.model_input(laid if lay.lead else source[:, :reads], total),
        repainting_start=0.0 if lay.lead else seam,
        repainting_end=round(end / audio.SAMPLE_RATE, 6) if lay.lead else -1,
    )
    notes = Notes(
        src_audio=Path(str(a.src_audio)).name,
        source_seconds=round(seam, 3),
        extend_seconds=more,
        extend_bars=edit_bars.count(bars) if edit_bars.given(bars) else None,
        first_downbeat=first,
        where=None if where.kind == extend_where.END else where.said,
        ending=ending or None,
    )
    request = MusicRequest("extend", render, seconds, fmt, notes=notes)
    # A take's own latents: all of them at the end, those before a point; an intro moves the song off their frames.
    frames = None if lay.upto is None else reads // audio.HOP
    request = preparing.from_take_latents(a.src_audio, request, repaint=True, frames=frames, moved=bool(lay.lead))
    rendition = lay.rendition(n, audio.SAMPLE_RATE, fade)

    def matched(take: np.ndarray) -> np.ndarray:
        heard = take[:, rendition[0] : rendition[1]]
        return audio.gain_match(audio.fit(take, total), heard, source[:, : rendition[1] - rendition[0]])

    def post(take: np.ndarray) -> np.ndarray:
        # Outside the new part, the song's own samples; the seam's crossfade lies inside it (at the end, over the
        # last few ms of the song, where the model's rendition of it overlaps it).
        return audio.splice(laid, matched(take), start, end, fade)

    # The take is written at the source's rate, the song's part kept the source's samples.
    at_end = lay.upto is None and not lay.lead
    kept = untouched.of(a.src_audio, seam, None, matched, more, SEAM_SECONDS, None if at_end else lay)
    request = dataclasses.replace(request, source_bytes_per_second=kept.bytes_per_second(fmt))
    job = Job(request, post, finishing, (start, total if at_end else end), kept=kept)
    # What the new part sings (the whole song's lyrics where the studio knows them) and an ending (``[Outro]``).
    return extend_lyrics.sung(job, a.src_audio, a.lyrics, ending)


def _too_long(song: float, more: float) -> str:
    """Why Extend cannot add ``more`` seconds to a ``song`` that long: the whole seconds it may add, or, where
    fewer than Extend's least are left, that the song is at the longest the studio makes."""
    most_added, most = math.floor(audio.MAX_SECONDS - song), f"{audio.MAX_SECONDS / 60:g} minutes"
    if most_added < EXTEND_RANGE[0]:
        return error_messages.EXTEND_AT_LONGEST.format(song=song, most=most, least=EXTEND_RANGE[0])
    return error_messages.EXTEND_TOO_LONG.format(song=song, more=more, most=most, most_added=most_added)


@parameters.preparer("edit")
def prepare_edit(a: Asked) -> Job:
    """Change ``src_audio``: by default (``change="region"``) regenerate ``[repainting_start,
    repainting_end)``, the rest the original, kept to the song around it as upstream's
    ``repaint_mode`` and ``repaint_strength`` say; ``change="add"`` adds the ``part`` (lyrics for a
    sung one), ``"extract"`` takes the ``part`` out, ``"complete"`` completes the song with
    ``add_parts``, each on the XL base model (``prompt``: the style of what is made). ``lines`` (lyric line
    numbers from 1) or a ``section`` (name or number) of a take the studio made with synced lyrics set the
    region instead (``edit_lines``; ``lyrics``: their new lyrics, empty: kept as sung), as ``bars`` do (``edit_bars``:
    counted from bar 1 at ``first_downbeat``, seconds, where the musician set it)."""
    with about("change"):
        task = part_tasks.check_change(a.change)
    # The region's choosers first, in their own words (a part is made over the whole song), then the song and its
    # words, then the fields the change does not use (``part_tasks.check_unused``), in ``preparing.render``'s order.
    src_audio, lines, section, bars = a.src_audio, a.lines, a.section, a.bars
    if task is not None and edit_lines.given(lines, section):
        raise InputError(error_messages.LINES_WITH_PART, "lines" if edit_lines.given(lines, None) else "section")
    edit_bars.check_alone(bars, task is not None, edit_lines.given(lines, section))
    chosen = edit_lines.resolve(src_audio, lines, section, a.lyrics)
    a = a.but(lyrics=chosen.lyrics) if chosen is not None else a
    if task is not None:
        return part_tasks.prepare(task, a)
    prompt, lyrics = preparing.song_words(a, need_text="edit")
    part_tasks.check_unused(a.change, a)
    way = preparing.check_repaint_mode(a.repaint_mode)  # Edit's field, in render's order: after the lyrics
    render, fmt = preparing.render(a, prompt, lyrics, 1, models.active_variant())
    music = (render.pipeline.bpm, render.pipeline.timesignature, a.first_downbeat)
    start, end, source, finishing = _region(a, chosen or bars, music)
    length = source.shape[-1] / audio.SAMPLE_RATE
    render = render.with_pipeline(
        task_type="repaint",
        audio_duration=length,
        src_audio=preparing.model_input(source),
        repainting_start=start,
        repainting_end=end,
        repaint_mode=way,
    )
    notes = Notes(
        src_audio=Path(str(src_audio)).name,
        source_seconds=round(length, 3),
        edited_lines=(chosen.first, chosen.last) if chosen is not None else None,
        edited_bars=edit_bars.edited_bars(bars) if chosen is None else None,
        first_downbeat=edit_bars.bar_one_at(a.first_downbeat, source),
    )
    request = MusicRequest("edit", render, round(length, 3), fmt, notes=notes)
    request = preparing.from_take_latents(src_audio, request, repaint=True)
    job = _region_job(request, source, start, end, finishing, src_audio)
    return _sung_in_region(job, src_audio, str(a.lyrics or "").strip() if chosen is None else "")


def _sung_in_region(job: Job, src_audio: Any, sung: str) -> Job:
    """A region Edit of a song whose lyrics the studio knows, given the region's lyrics alone (not the whole
    song's, as lyric lines chosen send them): sung there (the alignment reads those frames), and set among
    the song's lyric lines (``edit_lines.around``: the whole song's lyrics in its record, its synced lines).
    The model reads ``sung`` as ever."""
    call = job.request.render.pipeline
    start, end = float(call.repainting_start or 0.0), float(call.repainting_end or 0.0)
    around = edit_lines.around(src_audio, start, end, sung) if sung else None
    if around is None:
        return job
    render = job.request.render.with_pipeline(sung_within=(start, end))
    request = dataclasses.replace(job.request, render=render, song_lyrics=around.lyrics)
    return dataclasses.replace(job, request=request, synced=around.lines)


def _region(a: Asked, chosen: edit_lines.Chosen | Any, music: tuple) -> tuple[float, float, np.ndarray, Any]:
    """Edit's region and finish checked, in the order the form names them, and its song loaded:
    (start, end, the song, ``parameters.finish``). The region is the one the chosen lyric lines span
    (``edit_lines``), or the chosen bars (``edit_bars``: counted at the BPM typed, from the musician's bar 1,
    where ``music``, (BPM, time signature, ``first_downbeat``), says them), else the one asked."""
    src_audio, start, end = a.src_audio, a.repainting_start, a.repainting_end
    if isinstance(chosen, edit_lines.Chosen):
        finish = parameters.finish(a, whole=False)
        source = preparing.source(src_audio)
        return (*chosen.span(source), source, finish)
    if edit_bars.given(chosen):
        preparing.need_source(src_audio)
        finish = parameters.finish(a, whole=False)
        source = preparing.source(src_audio)
        typed = None if (start, end) == REGION else (start, end)
        bpm, metre, first = music
        first = edit_bars.bar_one_at(first, source)
        found = edit_bars.region(src_audio, chosen, typed, source, bpm, None if first is None else (first, metre))
        # At admission a song the studio did not map stands whole for its region until the run reads its bars.
        return (*(found or (0.0, source.shape[-1] / audio.SAMPLE_RATE)), source, finish)
    with about("repainting_start"):
        start = as_number(start, "Region start")
    with about("repainting_end"):
        end = as_number(end, "Region end")
    finish = parameters.finish(a, whole=False)
    source = preparing.source(src_audio)
    preparing.check_region(start, end, source.shape[-1] / audio.SAMPLE_RATE)
    return start, end, source, finish


def _region_job(
    request: MusicRequest, source: np.ndarray, start: float, end: float, finishing: Any, src_audio: Any = None
) -> Job:
    """An Edit's job: the new region gain-matched to the song outside it and spliced in; written at the
    source's rate, the song outside the region the source's samples (``untouched``), where it is an upload
    (``src_audio``; a loop's seam is spliced into the loop's 48 kHz song)."""
    n = source.shape[-1]
    a, b = int(round(start * audio.SAMPLE_RATE)), min(n, int(round(end * audio.SAMPLE_RATE)))
    fade = int(SEAM_SECONDS * audio.SAMPLE_RATE)

    def matched(take: np.ndarray) -> np.ndarray:
        take = audio.fit(take, n)
        outside = np.concatenate([np.arange(0, a), np.arange(b, n)])  # made when it runs, not at admission
        return audio.gain_match(take, take[:, outside], source[:, outside]) if outside.size else take

    def post(take: np.ndarray) -> np.ndarray:
        return audio.splice(source, matched(take), a, b, fade)

    if src_audio is None:
        return Job(request, post, finishing, (max(0, a - fade), min(n, b + fade)))
    kept = untouched.of(src_audio, start, end, matched, seam=SEAM_SECONDS)
    request = dataclasses.replace(request, source_bytes_per_second=kept.bytes_per_second(request.audio_format))
    return Job(request, post, finishing, (a, b), kept=kept)


# The tabs' preparers, by mode: each tab's form reads its preparer's parameters, and a variation is remade by its take's mode
# (``variations``); every music endpoint's, these and the two that are no tab's, is ``handlers.PREPARERS``.
PREPARE: dict[str, Callable[..., Job]] = {
    "generate": prepare_generate,
    "cover": prepare_cover,
    "extend": prepare_extend,
    "edit": prepare_edit,
}
