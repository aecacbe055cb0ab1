"""What a music request costs, read once from the typed request (``duration_estimate`` declares and learns by it,
``budget`` bounds it, ``quota`` says it): ``MusicShape`` (``of``), the steps that really run
(``steps_run``: a cover's start, turbo's cap), and the sung word count the lyric alignment's DTW grows with."""

from __future__ import annotations

import dataclasses
import re

import base_model
import lrc
import models
import sampler
from checks import INSTRUMENTAL_TAG
from music_request import MusicRequest


@dataclasses.dataclass(frozen=True, kw_only=True)
class MusicShape:
    """What a music request costs: the GPU's work (what the duration estimate declares and the worker
    reports, its ``steps`` those the worker ran) and what its takes write (the disk space the budget holds). Read from
    the typed request alone (``of``): the model call as the preparer resolved it, the takes, Think's part
    and each take's length, with no number of its own. What would fit is this shape changed
    (``dataclasses.replace``; fewer steps through ``with_steps``)."""

    mode: str
    seconds: float  # each take's length (``MusicRequest.seconds``): the one the budget and the estimate read
    steps: int  # the steps that run: a cover's start skips some, turbo stops at its cap
    takes: int
    guided: bool
    # Upstream's guidance interval (``Call.cfg_interval_start``, ``_end``) and the steps that run within it.
    interval: tuple[float, float]
    guided_steps: int
    sung: bool
    think: bool
    varied: bool  # variations of a take: they share its one blueprint
    reference: bool  # a timbre reference encoded (any mode)
    part: bool  # Edit's parts run on the XL base, guided whatever the studio's own model is
    morph: bool  # a morph (Cover's, a take's): the song's two descriptions, every step
    words: int  # the sung word count: the alignment's DTW grows with it
    loop: bool  # a loop: its seam is one more repaint of the song's length in the same call (``loops``)
    # What the steps that run follow (``with_steps``): the steps asked, the schedule's shift, a cover's
    # start, turbo's cap.
    asked: int
    shift: float
    start: float
    turbo: bool
    # What the takes write (``budget.bytes_written``): the format, a part alone beside each take, Extend's
    # seconds added, the lines and characters of the lyrics written (a region Edit's whole song's too).
    audio_format: str
    alone: bool
    added: float
    lines: int
    lyrics_chars: int
    song_chars: int
    locked: bool = False  # each take locked to the grid, the take as played beside it (``grid_lock``)
    source_bytes_per_second: int = 0  # a second of an Edit's or Extend's file at its source's rate (``untouched``)

    @property
    def forwards(self) -> float:
        """The DiT's forward passes a step and take, over the steps that run: two where guided (the
        null condition's beside the song's), twice that for a morph (the song's two descriptions)."""
        guided = self.guided_steps / max(1, self.steps) if self.guided else 0.0
        return (1.0 + guided) * (2.0 if self.morph else 1.0)

    @property
    def plan_takes(self) -> int:
        """The takes Think writes a blueprint for: variations share their take's."""
        return 1 if self.varied else self.takes

    def with_steps(self, asked: int) -> MusicShape:
        """This request with ``asked`` steps, as many running as the sampler would run."""
        steps = steps_run(asked, self.shift, self.start, self.turbo)
        # The last ``steps`` of the schedule run; a morph's overlay guides every step (``flow_edit``).
        within = [
            t for t in times(asked, self.shift)[-steps:] if self.morph or self.interval[0] <= t <= self.interval[1]
        ]
        return dataclasses.replace(self, asked=asked, steps=steps, guided_steps=len(within) if self.guided else 0)

    @classmethod
    def of(cls, request: MusicRequest) -> MusicShape:
        call = request.render.pipeline
        part = call.task_type in base_model.TASKS
        variant = models.VARIANTS[models.BASE_VARIANT] if part else models.active_variant()
        sung = lrc.sung_lines(call.lyrics)
        lyrics = "" if call.lyrics == INSTRUMENTAL_TAG else str(call.lyrics)
        # Extend is told the source's own length; its takes are the source and what it adds.
        added = round(request.seconds - round(call.audio_duration, 3), 3) if request.mode == "extend" else 0.0
        shape = cls(
            mode=request.mode,
            seconds=float(request.seconds),
            steps=0,
            takes=request.render.takes,
            guided=call.guidance_scale > 1.0 and not variant.turbo,
            interval=(call.cfg_interval_start, call.cfg_interval_end),
            guided_steps=0,
            sung=bool(sung),
            think=request.plan is not None,
            varied=request.render.noise is not None,
            reference=call.reference_audio is not None,
            part=part,
            morph=call.morph,
            words=len(_WORD.findall("\n".join(sung))),
            loop=request.loop is not None,
            asked=0,
            shift=call.shift,
            # A morph's schedule is its own: neither a cover's start nor turbo's cap.
            start=0.0 if call.morph else call.cover_noise_strength,
            turbo=variant.turbo and not call.morph,
            audio_format=request.audio_format,
            alone=call.task_type == base_model.CHANGES["add"],
            locked=request.lock and request.loop is None,
            source_bytes_per_second=request.source_bytes_per_second,
            added=added,
            lines=len(lrc.sung_lines(request.song_lyrics or lyrics)),
            lyrics_chars=len(lyrics),
            song_chars=len(request.song_lyrics),
        )
        return shape.with_steps(call.num_inference_steps)


# A sung word: a run of letters, or one character of a script written without spaces.
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+")


def steps_run(asked: int, shift: float, start: float, turbo: bool) -> int:
    """The steps a call of ``asked`` steps runs, as the sampler runs them: turbo stops at its cap, and a
    cover that starts from the song noised to the schedule's time nearest 1 - ``start`` runs only the
    steps after it (``sampler._start``). Read at admission, so without torch: the schedule in Python's
    floats, where the sampler's float32 times may pick a neighbouring step (about 2 in 1,000 choices of
    steps, shift and start: one step more or less declared; the worker reports the steps it ran)."""
    steps = max(1, int(asked))
    steps = min(steps, sampler.TURBO_MAX_STEPS) if turbo else steps
    if start <= 0.0:
        return steps
    picks = times(steps, shift)
    return steps - min(range(steps), key=lambda i: abs(picks[i] - (1.0 - start)))


def times(steps: int, shift: float) -> list[float]:
    """The time t of each of ``steps`` steps, from 1 (noise) down, shifted as the sampler's schedule is
    (``sampler.shifted_times``), in Python's floats."""
    steps = max(1, int(steps))
    picks = [1.0 - i / steps for i in range(steps)]
    return [shift * t / (1.0 + (shift - 1.0) * t) for t in picks] if shift != 1.0 else picks
