"""The cost of one music request, its admission and its bounds, read from its shape
(``music_shape.MusicShape``).

The cost estimate is made once, at admission (the validator, before the request queues: ``admit``), and
carried on the job (``music_request.Admission``: the longest Think may choose, the disk bytes its takes
need, the GPU seconds declared), which the run reads instead of asking here again. The run estimates
again only where its full preparation costs more than admission saw (``as_admitted``: a song longer than
its header said, measured figures learnt meanwhile), and just before the GPU call looks at what may have
changed since (Think's plan on ZeroGPU: ``makes_way``).

Three costs are bounded, each by a setting a workstation's owner may raise:

- the GPU seconds the request declares (``duration_estimate.music_seconds``, what ``music_gpu`` declares):
  ``ACE_STUDIO_MAX_REQUEST_GPU_S``, default 300; on ZeroGPU never above 300, one call's limit, so
  no request starts as a call doomed to "GPU task aborted" (the retry's declaration is clamped
  there too: ``devices.clamp_duration``);
- the audio it holds at once, takes × seconds: ``ACE_STUDIO_MAX_REQUEST_AUDIO_S``, default 1200
  (four 600 s takes cost the server +4.29 GB: about 1.8 MB a second of audio);
- the bytes it writes: they must fit the output folder's quota (``output_folder.free_disk_space``,
  ``ACE_STUDIO_OUTPUT_QUOTA_MB``), the disk space reserved from the start of the run until the takes are
  written (``takes.reserving_disk``, by the bytes estimated here: ``bytes_written``).

A request over its budget is refused with a message that says what would fit. The length Think chooses
is bounded by the same rule (``longest``): a fixed length, a plan brought back (its length is the
song's) and Think's own choice meet one limit.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import gradio as gr

import audio
import checks
import devices
import duration_estimate
import error_messages
import messages
import output_folder
import take_latents
import warp
from music_request import Admission, Job
from music_shape import MusicShape

# Written bytes a second of a take may take, by format: 16-bit WAV, 24-bit FLAC at worst (noise
# does not compress), MP3 at its highest bit rate; and a record (its plan's codes as text included).
BYTES_PER_SECOND = {
    "wav": audio.SAMPLE_RATE * 2 * 2,
    "flac": audio.SAMPLE_RATE * 2 * 3,
    "mp3": audio.MP3_KBPS * 1000 // 8,
}
# The page's MP3 preview beside every WAV or FLAC take (``audio.save_preview``) at its constant bit rate;
# and what an MP3 file adds to its bit rate: the encoder's delay and padding (a few MPEG frames), a LAME
# header frame, the ID3 tags and their padding (2.0–4.7 KB measured, 10 s to 31 s; not by the length).
PREVIEW_BYTES_PER_SECOND = audio.PREVIEW_KBPS * 1000 // 8
MP3_EXTRA_BYTES = 8192
RECORD_BYTES = 16_384
RECORD_BYTES_PER_SECOND = audio.CODES_PER_SECOND * 24  # every code, ~24 characters each, per take in a record
LRC_BYTES_PER_LINE = 64  # "[mm:ss.xx]" in the .lrc, '{"time": …, "text": …}' and indentation in the record
# The grid on which Think's longest length and the lengths that would fit are found.
LENGTH_STEP = 10


def max_gpu_seconds() -> float:
    """GPU seconds one request may declare (``ACE_STUDIO_MAX_REQUEST_GPU_S``, default 300; at most
    300 on ZeroGPU, where one call may not last longer)."""
    limit = _setting("ACE_STUDIO_MAX_REQUEST_GPU_S", devices.GPU_MAX_SECONDS)
    return min(limit, devices.GPU_MAX_SECONDS) if devices.on_zero_gpu() else limit


def max_audio_seconds() -> float:
    """Seconds of audio (takes × length) one request may make (``ACE_STUDIO_MAX_REQUEST_AUDIO_S``)."""
    return _setting("ACE_STUDIO_MAX_REQUEST_AUDIO_S", 1200)


def _setting(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return float(default)
    return value if value > 0 else float(default)


def bytes_written(shape: MusicShape) -> int:
    """At most how many bytes the request's takes and records take in the output folder (bytes)."""
    n, seconds, fmt = shape.takes, shape.seconds, shape.audio_format
    # An Edit's or Extend's file at its source's rate and samples (``untouched``), else the format's at 48 kHz.
    per_second = shape.source_bytes_per_second or BYTES_PER_SECOND.get(fmt, BYTES_PER_SECOND["flac"])
    per_take = per_second * seconds + (MP3_EXTRA_BYTES if fmt == "mp3" else 0)
    if shape.alone:  # the part alone beside the take (``Job.part``)
        per_take *= 2
    elif shape.locked:  # the take as played beside the locked one, each stretched at most ``warp.MOST_PCT``
        per_take *= 2 * (1 + warp.MOST_PCT / 100)
    else:  # the take's final latents beside it (``take_latents``)
        per_take += take_latents.BYTES_PER_SECOND * seconds + take_latents.HEADER_BYTES
    if fmt != "mp3":  # the take's preview for the page's player (``takes``; a part alone has none)
        per_take += PREVIEW_BYTES_PER_SECOND * seconds + MP3_EXTRA_BYTES
    # A sung take's lyric lines twice (its .lrc, its record), each with a time: at most the lyrics' bytes
    # (a region Edit's: the whole song's, ``song_lyrics``, which its record holds once more).
    lyric_chars = shape.song_chars or shape.lyrics_chars
    synced = LRC_BYTES_PER_LINE * shape.lines + 2 * lyric_chars + shape.song_chars
    return int(n * (per_take + RECORD_BYTES + RECORD_BYTES_PER_SECOND * seconds * n + synced))


def over(shape: MusicShape, gpu_limit: float | None = None, gpu: float | None = None) -> list[str]:
    """What of the budget ``shape`` exceeds, as messages (empty when the request fits); ``gpu_limit``:
    the GPU seconds one request may take (``max_gpu_seconds()`` where not given); ``gpu``: the seconds
    it declares, where the caller read them already (``duration_estimate.music_seconds``)."""
    why = []
    gpu, most = duration_estimate.music_seconds(shape) if gpu is None else gpu, gpu_limit or max_gpu_seconds()
    if gpu > most:
        why.append(messages.OVER_GPU.format(gpu=gpu, most=most))
    held, limit = shape.takes * shape.seconds, max_audio_seconds()
    if held > limit:
        why.append(messages.OVER_AUDIO.format(held=span(held), most=span(limit)))
    return why


# Whether a request's shape fits: within the budget here, or (``quota``) within what ZeroGPU has left.
Fits = Callable[[MusicShape], bool]


def longest(shape: MusicShape, fits: Fits | None = None) -> int | None:
    """The longest song (on a 10 s grid) the request could make within its budget (or ``fits``), or None."""
    fits = fits or (lambda s: not over(s))
    lo, hi = int(audio.MIN_SECONDS), int(audio.MAX_SECONDS)
    return next((s for s in range(hi, lo - 1, -LENGTH_STEP) if fits(dataclasses.replace(shape, seconds=s))), None)


def bounded(job: Job, gpu_limit: float) -> Job:
    """``job`` with the length Think chooses bounded to the longest that fits ``gpu_limit`` GPU seconds
    (``admit``'s first step; the quota's text under a button too: ``handlers.reserves``)."""
    if not job.request.chooses:
        return job
    best = longest(MusicShape.of(job.request), lambda s: not over(s, gpu_limit))
    return job.with_longest(best) if best is not None and best < job.request.seconds else job


def admit(job: Job, gpu_limit: float | None = None, request: Any = None) -> Job:
    """Admission: the one place a request's length and cost are estimated, once, by the admission check
    (or where a request is made in this process without one, ``handlers.make``). A length Think chooses
    is bounded to the longest that fits ``gpu_limit`` GPU seconds (the caller's, else
    ``max_gpu_seconds()``: ZeroGPU's one-call limit included). A request over its budget raises
    ``checks.InputError`` with a message that says what would fit, on the field to change; a full output
    folder raises ``gr.Error``. The estimate is carried on the job returned (``Job.admission``) and left
    on the join's ``request``, where given, for the run of that join (``handlers.as_admitted``)."""
    gpu_limit = gpu_limit or max_gpu_seconds()
    job = bounded(job, gpu_limit)
    shape = MusicShape.of(job.request)
    seconds = duration_estimate.music_seconds(shape)
    why = over(shape, gpu_limit, seconds)
    if why:
        field, ways = _what_fits(shape, gpu_limit)
        fits = ways[0][0].upper() + ways[0][1:] + "".join(messages.FITS_OR.format(way=w) for w in ways[1:])
        raise checks.InputError(
            error_messages.TOO_COSTLY.format(asked=_asked(job), why="; ".join(why), fits=fits), field
        )
    if not output_folder.free_disk_space(bytes_written(shape), dry_run=True):
        raise no_disk_space(job)
    job = _carried(job, shape, seconds)
    if (state := _state(request)) is not None:
        setattr(state, ADMISSION, job.admission)
    return job


def _carried(job: Job, shape: MusicShape, seconds: float | None = None) -> Job:
    """``job`` with its cost estimate carried on it (``music_request.Admission``), read from its
    ``shape`` (and the GPU seconds it declares, where read already)."""
    longest = int(job.request.seconds) if job.request.chooses else None
    seconds = duration_estimate.music_seconds(shape) if seconds is None else seconds
    return job.with_admission(Admission(longest, bytes_written(shape), shape, seconds))


# The attribute under which the admission check leaves its cost estimate for the run of the same join, on
# the join's HTTP request's state, which Gradio hands both (the validator's and the queued event's
# ``gr.Request`` wrap that one request).
ADMISSION = "ace_studio_admission"


def _state(request: Any) -> Any:
    """The join's HTTP request's state (None for a call made in this process)."""
    return getattr(getattr(request, "request", None), "state", None)


def as_admitted(job: Job) -> Job:
    """In the run, ``job`` prepared in full where the estimate made at admission does not hold for it (it
    costs more than admission saw: ``handlers.as_admitted``) or where no admission check ran (a call made
    in this process, not through a join): admitted again here where it costs more than one request may,
    else taken as it is, what it costs now carried."""
    if job.admission is None:
        return admit(job)
    # The admission check read its files' headers; a song whose header understated its length decodes
    # longer (``audio.decode`` grows its buffer up to the longest song): admitted again, and refused with
    # a message, where so.
    shape = MusicShape.of(job.request)
    return admit(job) if over(shape) else _carried(job, shape)


def makes_way(job: Job, gpu_limit: float | None = None) -> Job:
    """On ZeroGPU, just before the GPU call, what may have changed since ``job``'s admission: Think's plan,
    once its planner is built and the duration estimate known. A length Think chooses is bounded again to
    what fits ``gpu_limit`` (the caller's, else ``max_gpu_seconds()``), and a request that fits only
    without Think is made without it, its records saying why; anything else stands as admitted. What
    changed is carried as a new cost estimate."""
    if job.request.plan is None:
        return job
    gpu_limit = gpu_limit or max_gpu_seconds()
    if job.request.chooses:
        best = longest(MusicShape.of(job.request), lambda s: not over(s, gpu_limit))
        if best is None:
            return _without_think(job, messages.NO_PLAN_FITS.format(most=gpu_limit))
        job = job.with_longest(best) if best < job.request.seconds else job
    shape = MusicShape.of(job.request)
    if over(shape, gpu_limit) and not over(dataclasses.replace(shape, think=False), gpu_limit):
        return _without_think(job, messages.PLAN_TOO_LONG.format(most=gpu_limit))
    return job if job.admission is not None else _carried(job, shape)


def _without_think(job: Job, reason: str) -> Job:
    job = dataclasses.replace(job, request=job.request.without_plan(reason))
    return _carried(job, MusicShape.of(job.request))


def no_disk_space(job: Job) -> gr.Error:
    """The error for an output folder that cannot free the disk space ``job``'s takes need: its message
    says whether the folder is too small or full."""
    size, quota = bytes_written(MusicShape.of(job.request)), output_folder.output_quota_bytes()
    if size > quota:
        message = messages.OUTPUT_TOO_SMALL.format(asked=_asked(job), mb=size / 2**20, quota=quota / 2**20)
        return gr.Error(message, title=messages.DISK_FULL_TITLE)
    return gr.Error(messages.OUTPUT_FULL, title=messages.DISK_FULL_TITLE)


def _what_fits(shape: MusicShape, gpu_limit: float) -> tuple[str, list[str]]:
    """(the field to mark, the ways that fit the budget here: fewer takes, a shorter song, fewer
    steps, no Think)."""
    ways = ways_that_fit(shape, lambda s: not over(s, gpu_limit))
    if not ways:  # a take's morph is as long as its take: only a shorter take would fit
        shorter = messages.FITS_SHORTER_MORPH if shape.mode == "morph" else messages.FITS_NONE
        return ("batch_size" if shape.mode == "generate" else "prompt"), [shorter]
    return ways[0][0], [w for _, w in ways]


def ways_that_fit(shape: MusicShape, fits: Fits) -> list[tuple[str, str]]:
    """What of a prepared request's ``shape`` would change for it to ``fits``: (field, message) for each
    way, none when nothing does."""
    ways: list[tuple[str, str]] = []
    n = shape.takes
    fewer = next((k for k in range(n - 1, 0, -1) if fits(dataclasses.replace(shape, takes=k))), None)
    if fewer is not None:
        fewer_takes = messages.FITS_FEWER_TAKES if fewer > 1 else messages.FITS_FEWER_TAKE
        ways.append(("batch_size", fewer_takes.format(n=fewer)))
    if shape.mode == "generate" and not shape.loop:  # a loop's length is its bars
        shorter = longest(shape, fits)
        if shorter is not None and shorter < shape.seconds:
            up_to = messages.FITS_SHORTER_TAKES if n > 1 else messages.FITS_SHORTER_TAKE
            ways.append(("audio_duration", up_to.format(length=span(shorter))))
    elif shape.mode == "extend":
        source, adds = shape.seconds - shape.added, range(int(shape.added) - 1, 0, -LENGTH_STEP)
        add = next((s for s in adds if fits(dataclasses.replace(shape, added=s, seconds=source + s))), None)
        if add is not None:
            ways.append(("extend_seconds", messages.FITS_LESS_ADDED.format(length=span(add))))
    fewer_steps = next((s for s in range(shape.asked - 1, 0, -1) if fits(shape.with_steps(s))), None)
    if fewer_steps is not None:
        ways.append(("inference_steps", messages.FITS_FEWER_STEPS.format(steps=fewer_steps)))
    if shape.think and fits(dataclasses.replace(shape, think=False)):
        ways.append(("think", messages.FITS_WITHOUT_THINK))
    return ways


def ways_within(shape: MusicShape, declared: int) -> list[str]:
    """What of a request's ``shape`` would change for it to declare at most ``declared`` GPU seconds
    (``duration_estimate.music_duration``), as messages: ``quota``'s ways into what is left of a visitor's
    day, asked with a number, so nothing here calls back up into ``quota``."""
    return [way for _, way in ways_that_fit(shape, lambda s: duration_estimate.music_duration(s) <= declared)]


def _asked(job: Job) -> str:
    """What ``job`` asks for, as a message: "A take of 45 s with Think", "2 takes of 3 minutes", "A 30 s cover"."""
    shape = MusicShape.of(job.request)
    n, length = shape.takes, span(shape.seconds)
    think = messages.ASKED_WITH_THINK if shape.think else ""
    if shape.mode == "generate" and job.request.chooses:
        return (messages.ASKED_CHOOSING if n > 1 else messages.ASKED_CHOOSING_ONE).format(n=n)
    if shape.mode == "generate":
        return (messages.ASKED_TAKES if n > 1 else messages.ASKED_TAKE).format(n=n, length=length, think=think)
    return messages.ASKED_OF_MODE.format(length=length, mode=shape.mode)


def span(seconds: float) -> str:
    """A length as a musician says it: "45 s", "10 minutes", "4 min 30 s"."""
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes == 0:
        return messages.SPAN_SECONDS.format(seconds=rest)
    if rest == 0:
        return (messages.SPAN_MINUTES if minutes > 1 else messages.SPAN_MINUTE).format(minutes=minutes)
    return messages.SPAN_BOTH.format(minutes=minutes, seconds=rest)
