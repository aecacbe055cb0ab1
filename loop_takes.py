"""A loop's takes on the GPU (Generate's *Loop*, ``loops``): made exact at the tempo Think planned, each
take's kept cycle put in time between its renders, and its seam closed, all in one GPU call.

The first render makes the song as long as the loop's cycles (``Loop.samples``, ``Loop.cycles``); once Think
has planned, a loop whose tempo or metre it chose is made exact at the plan's (``planned``). One cycle of
the first render is kept (``kept``) and put in time (``in_time``: its bars as played, warped onto its grid
where they lie off it). Then its wrap is closed: the cycle is rotated by half its length (its end now runs
into its start in the middle), repeated as often as the first render was long (``song``), and a window
around the middle seam (``window``) is repainted with the same lyrics and style (``close``:
Edit's repaint, ``seam_render``); the CPU splices it and rotates it back (``loops.back``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import audio
import error_messages
import song_map
import warp
from checks import InputError
from music_request import Loop, MusicRequest, Plan, Render, pipeline_seconds
from run_result import Seam

# A metre left to the model without Think is ``song_map``'s assumed one for a loop (its length must be known
# before it is made), and a Think loop whose plan failed (made without one) takes its assumed tempo.
DEFAULT_BEATS, FALLBACK_BPM = song_map.ASSUMED_BEATS, song_map.ASSUMED_BPM


def planned(request: MusicRequest, render: Render, plan: Plan) -> tuple[MusicRequest, Render]:
    """GPU side, once Think has planned: a loop whose tempo or metre Think chose made exact at the plan's
    (``Loop.of``, the formula admission and the planner use; a plan that gave none: 4/4 at 120 BPM) and
    the render told them, as long as the loop's cycles where no blueprint set its length."""
    loop = request.loop
    if loop is None or not loop.chosen_by_think:
        return request, render
    fields = plan.takes[0].get("fields", {})
    beats = int(fields.get("timesignature") or render.pipeline.timesignature or DEFAULT_BEATS)
    loop = Loop.of(loop.bars, beats, fields.get("bpm") or render.pipeline.bpm or FALLBACK_BPM, True)
    render = render.with_pipeline(bpm=loop.bpm, timesignature=str(beats))
    if not render.pipeline.audio_codes:
        render = render.with_pipeline(audio_duration=pipeline_seconds(loop.seconds))
    return dataclasses.replace(request, loop=loop), render


def window(loop: Loop) -> tuple[int, int]:
    """The samples repainted around the seam of the song ``song`` makes: a bar either side of it, at most
    a quarter of a cycle (so the kept cycle's ends, the loop's middle, stay as made)."""
    seam = kept(loop) * loop.samples + loop.samples - loop.samples // 2
    half = min(loop.samples // loop.bars, loop.samples // 4)
    return seam - half, seam + half


def kept(loop: Loop) -> int:
    """Which cycle of the first render is kept, counting from 0: the middle one, of an even number the earlier
    (of two, the first; past the first, where an intro may be, from three cycles on)."""
    return (loop.cycles - 1) // 2


def rotate(x: np.ndarray, by: int) -> np.ndarray:
    """``x`` ``[channels, samples]`` rotated by ``by`` samples: it starts where it was ``by`` in."""
    return np.concatenate([x[..., by:], x[..., :by]], axis=-1)


def song(one: np.ndarray, loop: Loop) -> np.ndarray:
    """What the seam is repainted in: the kept cycle ``one`` (``in_time``), rotated by half its length (its wrap
    in the middle) and repeated ``loop.cycles`` times."""
    return np.tile(rotate(audio.fit(one, loop.samples), loop.samples // 2), (1, loop.cycles))


# A loop whose bar lines all lie within this of its grid is cut as it was played; one further off (a tempo
# missed, bars that wander) is warped onto its grid (``warp``). The tracker finds a bar line within 1-3 ms.
GRID_MS = 3.0


def _played(first: np.ndarray, loop: Loop) -> tuple[np.ndarray, float] | None:
    """The kept cycle's bars as played in the first render: its ``bars`` + 1 bar lines (seconds) from the first
    downbeat at or after the kept cycle's start, those past the render's end carried on at its median bar; with
    their tempo. None where no steady beat is heard."""
    lines, _, tempo = song_map.grid_of(first, audio.SAMPLE_RATE, loop.beats_per_bar, loop.bpm)
    if tempo is None or len(lines) < 2:
        return None
    found, bar = np.asarray(lines), float(np.median(np.diff(lines)))
    start = kept(loop) * loop.samples / audio.SAMPLE_RATE
    first_line = int(np.searchsorted(found, start - 0.25 * bar))
    wanted = found[first_line : first_line + loop.bars + 1]
    if not wanted.size:
        return None
    more = loop.bars + 1 - wanted.size
    return np.concatenate([wanted, wanted[-1] + bar * np.arange(1, more + 1)]), tempo.bpm


def _as_made(first: np.ndarray, loop: Loop) -> np.ndarray:
    """The kept cycle of the first render as it was made: from its start, a cycle long."""
    return audio.fit(first[..., kept(loop) * loop.samples :], loop.samples)


def in_time(first: np.ndarray, loop: Loop) -> tuple[np.ndarray, dict[str, Any]]:
    """GPU side, between the renders: the loop's cycle from the first render (``first``), exactly its bars of
    the music as played, warped onto its grid at the tempo asked where its bar lines lie off it by more than
    ``GRID_MS`` (``warp.onto``), and what was done, for its record. ``InputError`` where a bar would be
    stretched more than ``warp.MOST_PCT``; where no beat is heard, or its bars start too late to fit in the
    render, the cycle as made, from the kept cycle's start."""
    played = _played(first, loop)
    if played is None:
        return _as_made(first, loop), {"heard": False}
    lines, bpm = played
    rate = audio.SAMPLE_RATE
    targets = np.round(np.arange(loop.bars + 1) * loop.samples / loop.bars).astype(np.int64)
    off_ms = float(np.abs((lines - lines[0]) * rate - targets).max() / rate * 1000.0)
    most = warp.most_pct(lines * rate, targets)
    said = {"heard": True, "played_bpm": bpm, "off_grid_ms": round(off_ms, 1), "most_pct": round(most, 2)}
    if warp.too_far(most):
        message = error_messages.LOOP_OFF_TEMPO.format(bpm=bpm, asked=loop.bpm, pct=most, most=warp.MOST_PCT)
        raise InputError(message, "loop_bars")
    if lines[-1] * rate > first.shape[-1]:  # its first downbeat too late for its bars to fit: as made
        return _as_made(first, loop), {**said, "stretched": False, "fits": False}
    if off_ms <= GRID_MS:
        a = int(round(lines[0] * rate))
        return audio.fit(first[..., a:], loop.samples), {**said, "stretched": False}
    one = warp.onto(first, lines * rate, targets, rate)
    return one, {**said, "stretched": True, "stretcher": warp.stretcher()}


def seam_render(render: Render, made: np.ndarray, seed: int, loop: Loop) -> Render:
    """The repaint of one take's seam: its ``song`` as the source, the window around the middle seam
    repainted with the same lyrics and style (no blueprint: it was the unrotated song's)."""
    a, b = window(loop)
    n = made.shape[-1]
    frames = audio.good_frames(-(-n // audio.HOP)) * audio.HOP  # whole latent frames, as Edit's source is read
    return dataclasses.replace(render, seeds=(seed,), noise=None).with_pipeline(
        task_type="repaint",
        audio_duration=n / audio.SAMPLE_RATE,
        src_audio=audio.fit(np.clip(made, -1.0, 1.0), frames),
        src_latents=None,
        audio_codes=None,
        repainting_start=a / audio.SAMPLE_RATE,
        repainting_end=b / audio.SAMPLE_RATE,
    )


def close(run: Callable[..., dict[str, Any]], request: MusicRequest, render: Render, made: Any, **how: Any) -> Seam:
    """GPU side, after the first render (``made``: its takes): each take's seam repainted (``run``: the
    backend's, with ``how``, its progress and run id): the repainted songs, the songs they were repainted in
    (spliced on the CPU by ``modes``), how each was put in time and the seam's seconds. The run keeps no
    latents or synced lines of a loop (it is neither one render's song nor sung where the first render sang)."""
    loop = request.loop
    started, songs, repainted, timed = time.perf_counter(), [], [], []
    for take, seed in zip(made, render.seeds, strict=True):
        one, said = in_time(take, loop)
        timed.append(said)
        song_made = song(one, loop)
        songs.append(song_made)
        again = run(seam_render(render, song_made, seed, loop), **how)["audio"][0]
        repainted.append(audio.fit(again, song_made.shape[-1]))
    return Seam(np.stack(repainted), np.stack(songs), timed, round(time.perf_counter() - started, 3))
