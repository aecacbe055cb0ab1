"""Loops that play seamlessly: Generate's *Loop* (``loop_bars``), exactly that many bars at the take's tempo.

A loop is made in two renders in one GPU call. First the song, as long as the loop (``Loop.samples``: the
bars at the BPM and metre, in samples, rounded once) or, where the loop is shorter than the studio's
shortest song, as several cycles of it made as one song (``Loop.cycles``); one cycle of it is kept. Then its
wrap is closed: the cycle is rotated by half its length (its end now runs into its start in the middle),
repeated as often as the first render was long, and a window around the middle seam is repainted with
the same lyrics and style (Edit's repaint, ``modes._region_job``'s splice, everything outside the window
bit-exact); that cycle is rotated back (``back``). The seam is one more repaint of the song's length: the
cost shape says so (``music_shape.MusicShape.loop``) and the duration estimate declares it as a phase of its
own. A loop is finished as a cycle (``mastering.Finish.cycle``), with no fades.

This module checks a loop at admission (``check``, ``made``: a loop's job) and finishes it (``back``,
``record``); what runs in the GPU call, between and after its renders, is in ``loop_takes`` (``planned``,
``in_time``, ``close``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

import audio
import error_messages
import messages
import tooltips as tips
from checks import InputError, check_loop_bars, check_switch
from loop_takes import DEFAULT_BEATS, kept, rotate
from music_request import Job, Loop, MusicRequest, pipeline_seconds
from plan_format import BPM_RANGE, TIME_SIGNATURES


def check(bars: int | None, bpm: int | None, timesignature: str | None, think: bool = False) -> Loop | None:
    """The loop asked: its bars at the tempo and metre the song is told (a metre left to the model without
    Think: 4/4), as many cycles as make the studio's shortest song; where Think chooses the tempo or metre,
    the longest loop it may choose (``chosen_by_think``, made exact after the plan: ``planned``); None
    where no loop is asked."""
    if bars is None:
        return None
    if bpm is None and not think:
        raise InputError(error_messages.LOOP_NEEDS_BPM, "bpm")
    if think and (bpm is None or not timesignature):
        tempos = [bpm] if bpm is not None else range(BPM_RANGE[0], BPM_RANGE[1] + 1)
        metres = [timesignature] if timesignature else TIME_SIGNATURES
        # The slowest tempo Think may choose is the longest loop, unless more cycles make a faster one longer.
        loop = max((Loop.of(bars, int(m), t, True) for m in metres for t in tempos), key=lambda one: one.seconds)
    else:
        loop = Loop.of(bars, int(timesignature) if timesignature else DEFAULT_BEATS, bpm)
    if loop.seconds > audio.MAX_SECONDS:
        seconds = loop.samples / audio.SAMPLE_RATE
        metre = tips.METRE_NAMES[str(loop.beats_per_bar)]
        message = error_messages.LOOP_TOO_LONG.format(
            bars=bars, metre=metre, bpm=loop.bpm, seconds=seconds, longest=f"{audio.MAX_SECONDS / 60:g} minutes"
        )
        raise InputError(message, "loop_bars")
    return loop


def made(job: Job, loop_bars: Any, auto_length: bool) -> Job:
    """A Generate job made a loop where ``loop_bars`` asks for one: its song as long as the loop's cycles,
    its metre told to the model, Think told that length, no fades, finished as a cycle; else ``job``."""
    with_bars = check_loop_bars(loop_bars)
    if with_bars is None:
        return job
    request, finishing = job.request, job.finishing
    call = request.render.pipeline
    loop = check(with_bars, call.bpm, call.timesignature, request.plan is not None)
    assert loop is not None
    if check_switch(auto_length, "Length: auto"):
        raise InputError(error_messages.LOOP_AUTO_LENGTH, "auto_length")
    if finishing.fade_in or finishing.fade_out:
        field = "fade_in" if finishing.fade_in else "fade_out"
        raise InputError(error_messages.LOOP_FADES, field)
    request = dataclasses.replace(request, seconds=loop.seconds, loop=loop)
    request = _thinks(request, loop) if loop.chosen_by_think else _told(request, loop)
    return dataclasses.replace(
        job, request=request, post=lambda take: take, finishing=dataclasses.replace(finishing, cycle=True)
    )


def _told(request: MusicRequest, loop: Loop) -> MusicRequest:
    """A loop of a known tempo and metre: the song as long as its cycles, the metre told to the model and Think."""
    seconds, meter = loop.seconds, str(loop.beats_per_bar)
    render = request.render.with_pipeline(audio_duration=pipeline_seconds(seconds), timesignature=meter)
    plan = request.plan and dataclasses.replace(
        request.plan, seconds=seconds, fixed={**request.plan.fixed, "timesignature": meter}
    )
    return dataclasses.replace(request, render=render, plan=plan)


def _thinks(request: MusicRequest, loop: Loop) -> MusicRequest:
    """A loop whose tempo or metre Think chooses: the song as long as the longest loop it may choose (what
    admission declares), Think told to make the length its bars at the tempo and metre it plans."""
    assert request.plan is not None
    longest = math.ceil(round(loop.seconds, 6))
    plan = dataclasses.replace(request.plan, seconds=None, longest=longest, loop_bars=loop.bars)
    render = request.render.with_pipeline(audio_duration=pipeline_seconds(loop.seconds))
    return dataclasses.replace(request, render=render, plan=plan)


def back(spliced: np.ndarray, loop: Loop) -> np.ndarray:
    """The kept cycle of the repainted ``spliced`` song, rotated back: the loop, its wrap where it was made."""
    start = kept(loop) * loop.samples
    one = spliced[..., start : start + loop.samples]
    return np.ascontiguousarray(rotate(one, loop.samples - loop.samples // 2))


def record(loop: Loop) -> dict[str, Any]:
    """A loop's entry in its record; where several cycles were made as one song, a message that says how."""
    entry: dict[str, Any] = dataclasses.asdict(loop)
    del entry["cycles"], entry["chosen_by_think"]
    if loop.chosen_by_think:
        entry["chosen_by"] = "think"  # its tempo or metre, and so its length
    if loop.cycles > 1:
        # Counted from 1, as a musician counts; of an even number the earlier middle one (``kept``).
        which = messages.LOOP_CYCLE.format(n=kept(loop) + 1, cycles=loop.cycles)
        which += messages.LOOP_EARLIER if loop.cycles % 2 == 0 else ""
        seconds = loop.cycles * loop.samples / audio.SAMPLE_RATE
        entry["made"] = messages.LOOP_MADE.format(
            cycles=loop.cycles, seconds=seconds, shortest=audio.MIN_SECONDS, which=which
        )
    return entry
