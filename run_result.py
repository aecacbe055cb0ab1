"""A music run's result, typed: what the GPU call returns (``Rendered``: it crosses ZeroGPU's process
boundary, so it holds numpy arrays and plain values only, and pickles), what a loop's seam adds inside that
call (``Seam``), what the finish makes of it on the CPU (``Finished``), which ``takes`` writes, and what the
stems GPU call returns (``Separated``). Each is
read by attribute: a key misspelt is an ``AttributeError`` where it is read, not a take written without it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from music_request import Loop
from untouched import Written

# Synced lyrics of one take as ``lrc`` measures them (``{"lines", "score"}``), None for an instrumental.
Lyrics = dict[str, Any] | None


@dataclasses.dataclass(frozen=True)
class Seam:
    """A loop's seams repainted in its GPU call (``loop_takes.close``): each take's repaint (``audio``), the
    songs they were repainted in (``songs``, spliced on the CPU by ``modes.finish``), how each was put in time
    (``in_time``) and the seconds it took."""

    audio: Any
    songs: Any
    in_time: list[dict[str, Any]]
    seconds: float


@dataclasses.dataclass(frozen=True)
class Rendered:
    """What the music GPU call returns (``generation.run_music``): the takes (``audio``, ``[takes, 2,
    samples]``), each take's own latents (None: a loop, or a part added), the model that ran, the seconds
    of its phases (``timings``: named as the record names them), and where the run made them: each take's
    synced lyrics, Think's plan of each take (``planners``), a loop's seam (``seam``) and the loop as made,
    the reason the VAE read the source where a take's own latents misfit (``source_latents``), and what the
    call measured for the duration estimate (``measured``, a ``duration_estimate.Report``: taken off by
    ``gpu.call`` once learned)."""

    audio: Any
    latents: Any
    model: dict[str, Any]
    timings: dict[str, float]
    lyrics: list[Lyrics] | None = None
    planners: list[dict[str, Any]] | None = None
    seam: Seam | None = None
    loop: Loop | None = None
    source_latents: str | None = None
    measured: Any = None

    def waited(self, seconds: float) -> Rendered:
        """The result with the seconds waited for the models before the call (``gpu.call``)."""
        return dataclasses.replace(self, timings={**self.timings, "model_wait_s": round(seconds, 3)})


@dataclasses.dataclass(frozen=True)
class Separated:
    """What the stems GPU call returns (``stems.separate``): vocals, drums and bass (``stems``: by name, each
    float32 ``[2, samples]`` at 48 kHz, as long as the take), the device that split them, the seconds of its
    phases (``timings``: ``separate_s``, ``model_load_s``) and what the call measured for the duration
    estimate (``measured``: taken off by ``gpu.call`` once learned)."""

    stems: dict[str, np.ndarray]
    device: str
    timings: dict[str, float]
    measured: Any = None

    def waited(self, seconds: float) -> Separated:
        """The result with the seconds waited for the models before the call (``gpu.call``)."""
        return dataclasses.replace(self, timings={**self.timings, "model_wait_s": round(seconds, 3)})


@dataclasses.dataclass(frozen=True)
class Locked:
    """What *Lock to the grid* makes of a run's takes (``grid_lock.locked``): the takes (each locked, or as
    played where it was kept so), the latents left (None for a locked take: it is not their decode), the
    synced lines moved with each take, each locked take as played, finished (``unlocked``), and each lock."""

    takes: list[Any]
    latents: Any
    lyrics: list[Lyrics]
    unlocked: list[Any]
    locks: list[dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Finished:
    """A run's takes as the finish leaves them for ``takes`` to write (``modes.finish``): each take finished
    (``audio``: an array, or a list where takes locked to the grid differ in length) with what its finish
    did (``finishes``), and, where the run made them, each take's latents, synced lyrics and plan, a loop's
    record (``loop``: ``loops.record``) and how each of its takes was put in time (``in_time``), what *Lock to
    the grid* did (``locked``), a part added alone (``parts``), a variation's own entries (``per_take``), an
    Edit's or Extend's takes at its source's rate (``at_source_rate``)."""

    audio: Any
    model: dict[str, Any]
    timings: dict[str, float]
    finishes: list[dict[str, Any]]
    latents: Any = None
    lyrics: list[Lyrics] | None = None
    planners: list[dict[str, Any]] | None = None
    loop: dict[str, Any] | None = None
    in_time: list[dict[str, Any]] | None = None
    locked: Locked | None = None
    parts: list[Any] | None = None
    per_take: list[dict[str, Any]] | None = None
    at_source_rate: Written | None = None
    source_latents: str | None = None

    @classmethod
    def of(
        cls, rendered: Rendered, locked: Locked | None, done: list[tuple[Any, dict]], seconds: float, **finish: Any
    ) -> Finished:
        """The finish's takes (``done``: each take finished, and what its finish did, in ``seconds``; ``finish``:
        what else it made) of ``rendered``, with what it carries on (the model, Think's plans, the latents read,
        how a loop's takes were put in time), and ``locked`` where *Lock to the grid* locked them (its latents:
        none for a locked take)."""
        finished, seam = [take for take, _ in done], rendered.seam
        return cls(
            # Takes locked to the grid may differ in length (``grid_lock``): a list of them, not one array.
            audio=np.stack(finished) if len({take.shape for take in finished}) == 1 else finished,
            model=rendered.model,
            timings={**rendered.timings, "finish_s": seconds},
            finishes=[info for _, info in done],
            latents=rendered.latents if locked is None else locked.latents,
            planners=rendered.planners,
            in_time=None if seam is None else seam.in_time,
            locked=locked,
            source_latents=rendered.source_latents,
            **finish,
        )
