"""The typed music request: what crosses to the GPU (``MusicRequest``, its pipeline part ``Render``,
Think's part ``PlanArgs``) and what comes back from the planner (``Plan``).

Every one is a frozen, picklable dataclass (ZeroGPU pickles a call's arguments into its worker), and
nothing rewrites one in place: each change is a new value (``dataclasses.replace`` underneath), so
the request the admission check checked is the request that runs unless a named step says otherwise.
The models are nano-vllm's ``SamplingParams`` / ``Sequence`` and upstream's ``GenerationParams``: plain
fields a reader finds in one place, not a dictionary five modules may rewrite. A prepared request with
what the CPU does with its takes is a ``Job``; the cost estimate made at admission is its ``Admission``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import audio
import mastering
import warp


def pipeline_seconds(seconds: float) -> float:
    """``seconds`` as whole latent frames the pipeline computes back (``audio.good_frames``); the take
    is trimmed to the asked length after."""
    return audio.good_frames(math.ceil(seconds * audio.LATENT_RATE)) / audio.LATENT_RATE


@dataclass(frozen=True, kw_only=True)
class Call:
    """One model call, every argument named once with its default once: what the preparers decide, the
    planner changes (``Plan.pipeline``), the backend checks and the sampler (``sampler.run``,
    ``flow_edit.run``) runs. Audio is numpy ``[2, samples]`` as prepared (torch tensors and the texts one
    per take once ``backend`` hands the call to the sampler). The sampling settings have no default
    here: the preparers resolve them for the model that runs (``parameters.to_call``), so no reader
    falls back to a number of its own."""

    prompt: str | list[str]
    num_inference_steps: int
    guidance_scale: float
    shift: float
    lyrics: str | list[str] = ""
    vocal_language: str | list[str] = "en"
    # The length the model is told (the pipeline's own default where none is given).
    audio_duration: float = 60.0
    # text2music, cover, repaint, or an Edit part's lego / extract / complete (``part_tasks``).
    task_type: str = "text2music"
    bpm: int | None = None
    keyscale: str | None = None
    timesignature: str | None = None
    # None: as upstream decides for the model (``dcw.resolve``); the preparers always resolve it.
    dcw: bool | None = None
    # Upstream's guidance interval: guidance applies at the steps whose time t (1 at noise, 0 at the
    # song) lies within it; the others run the song's condition alone (``sampler._denoise``).
    cfg_interval_start: float = 0.0
    cfg_interval_end: float = 1.0
    # Upstream's velocity norm clamp (``sampler.clamped``): 0 off.
    velocity_norm_threshold: float = 0.0
    reference_audio: Any = None
    src_audio: Any = None
    # A source take's final latents (``take_latents``): no VAE round trip.
    src_latents: Any = None
    # Think's blueprints, one per take (``planner``).
    audio_codes: list[str] | str | None = None
    audio_cover_strength: float = 1.0
    cover_noise_strength: float = 0.0
    repainting_start: float | None = None
    repainting_end: float | None = None  # -1 or None: to the song's end
    repaint_mode: str = "balanced"
    repaint_strength: float = 0.5
    # Cover's morph (``morph``): the song as it is now, its style and lyrics.
    morph: bool = False
    morph_prompt: str = ""
    morph_lyrics: str = ""
    # An Edit part's instruction (``part_tasks.task_arguments``): the part, or the parts to complete with.
    track_name: str | None = None
    complete_track_classes: list[str] | None = None
    # A part added is decoded at its own level (its take is mixed into the song).
    natural_level: bool = False
    # Where the lyrics are sung, in seconds: a region Edit given the region's lyrics alone (the lyric
    # alignment reads those frames, ``lrc.sync_take``); None: over the whole song. The sampler never reads it.
    sung_within: tuple[float, float] | None = None


@dataclass(frozen=True)
class Render:
    """One pipeline call: its arguments (``Call``), one seed per take, the adapters in the order asked
    (``preparing.check_adapters``; each ``{"path", "scale", "alpha", "kind": "lora" | "lokr", "name"}``, a
    preset's also ``preset`` and ``repo``; empty: none) and, for variations, each take's noise chain (``retake``)."""

    pipeline: Call
    seeds: tuple[int, ...]
    adapters: tuple[dict[str, Any], ...] = ()
    noise: tuple[tuple[tuple[int, float], ...], ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.pipeline, Call):
            raise TypeError(f"a render's pipeline is a Call, not {type(self.pipeline).__name__}")
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "adapters", tuple(self.adapters))
        if self.noise is not None:
            object.__setattr__(self, "noise", tuple(tuple(tuple(m) for m in chain) for chain in self.noise))

    @classmethod
    def flat(cls, mapping: dict[str, Any]) -> Render:
        """A render from one flat mapping, the call's arguments with ``seeds``, ``adapters`` and ``noise`` beside
        them, as the tests write one (an unknown argument is a ``TypeError``)."""
        call = Call(**{k: v for k, v in mapping.items() if k not in ("seeds", "adapters", "noise")})
        return cls(call, mapping["seeds"], mapping.get("adapters", ()), mapping.get("noise"))

    @property
    def takes(self) -> int:
        return len(self.seeds)

    def with_pipeline(self, **changes: Any) -> Render:
        """This render with some of its call's arguments changed."""
        return dataclasses.replace(self, pipeline=dataclasses.replace(self.pipeline, **changes))

    def planned(self, plan: Plan) -> Render:
        """This render with what the plan decided (blueprints, length, caption, musical fields)."""
        return self.with_pipeline(**plan.pipeline)


@dataclass(frozen=True)
class PlanArgs:
    """What Think is given: the visitor's caption and lyrics (``[Instrumental]`` for none), the length
    (``seconds``; None: Think chooses, up to ``longest``), the musical fields the visitor fixed,
    whether it may rewrite the caption, and a plan brought back from a take (``given``) with that
    take's place in its batch (``layout``), to remake it as it was made."""

    caption: str
    lyrics: str
    seconds: float | None
    fixed: dict[str, Any]
    rewrite_caption: bool = True
    given: dict[str, Any] | None = None
    layout: Any = None
    longest: int | None = None
    # A loop whose tempo or metre Think chooses: its length is these bars at them (``Loop.of``).
    loop_bars: int | None = None


@dataclass(frozen=True)
class Plan:
    """What the planner hands back: each take's entry for its record (``takes``: the plan, or why
    there is none) and the pipeline arguments the plan decides (``audio_codes``, ``audio_duration``,
    the caption, BPM, key, time signature where the visitor left them to the model)."""

    takes: tuple[dict[str, Any], ...]
    pipeline: dict[str, Any] = dataclasses.field(default_factory=dict)
    # What the planner measured (``duration_estimate``): per phase ("think", "blueprint") its seconds, its tokens
    # or codes, and whether its steps were replayed from graphs.
    measured: dict[str, tuple[float, int, bool]] = dataclasses.field(default_factory=dict)

    def chosen_seconds(self, fallback: float) -> float:
        """The length Think chose (``fallback`` where it chose none)."""
        return self.takes[0].get("fields", {}).get("duration") or fallback


@dataclass(frozen=True)
class Loop:
    """A loop (Generate's ``loop_bars``, ``loops``): its bars of ``beats_per_bar`` beats at ``bpm``, one cycle
    ``samples`` long, made as ``cycles`` cycles of one song where one cycle is shorter than the shortest song."""

    bars: int
    beats_per_bar: int
    bpm: int
    samples: int
    cycles: int = 1
    # Think chooses the tempo or metre: at admission the longest loop it may choose (what is declared),
    # made exact once the plan holds them (GPU side: ``loop_takes.planned``).
    chosen_by_think: bool = False

    @classmethod
    def of(cls, bars: int, beats_per_bar: int, bpm: float, chosen_by_think: bool = False) -> Loop:
        """``bars`` of ``beats_per_bar`` beats at ``bpm``: one cycle's samples, rounded once, and as many
        cycles as make the studio's shortest song."""
        n = int(round(bars * beats_per_bar * 60.0 / bpm * audio.SAMPLE_RATE))
        cycles = max(1, math.ceil(audio.MIN_SECONDS * audio.SAMPLE_RATE / n))
        return cls(bars, beats_per_bar, int(bpm), n, cycles, chosen_by_think)

    @property
    def made_samples(self) -> int:
        """How long the song it is made in lasts: every cycle, and where the kept cycle is the song's only one,
        as much again as its bars may be played too slow to fit (``warp.MOST_PCT``) and a bar for its first
        downbeat to fall in: the bars as played are found in it and warped onto its grid (``loop_takes.in_time``)."""
        if self.cycles > 1:
            return self.cycles * self.samples
        return self.samples + math.ceil(self.samples * warp.MOST_PCT / 100.0) + self.samples // self.bars

    @property
    def seconds(self) -> float:
        """How long the song it is made in lasts (``made_samples``), in seconds."""
        return self.made_samples / audio.SAMPLE_RATE


@dataclass(frozen=True)
class Variation:
    """Where a request's variations come from (``variations.prepare``): the take varied (``take``: its number,
    from 1; its ``seed``; ``audio``: its file as its record names it, None where that name is long or not
    printable), how far each variation's noise moves from the take's (``amount``, 0–1: upstream's
    ``retake_variance``) and each variation's new noise seed (``seeds``, one per variation)."""

    take: int
    seed: int
    audio: str | None
    amount: float
    seeds: tuple[int, ...]

    def of(self) -> dict[str, Any]:
        """The take varied as a record names it: ``{"take", "seed", "audio"}``."""
        return {"take": self.take, "seed": self.seed, "audio": self.audio}

    def as_record(self) -> dict[str, Any]:
        """The request's ``variation`` as its record's settings keep it: ``{"of", "amount", "seeds"}``."""
        return {"of": self.of(), "amount": self.amount, "seeds": list(self.seeds)}

    def entry(self, seed: int) -> dict[str, Any]:
        """One variation's entry in its take's record (``records.VariationEntry`` reads it back): ``{"of",
        "amount", "seed"}``."""
        return {"of": self.of(), "amount": self.amount, "seed": seed}


@dataclass(frozen=True, kw_only=True)
class Notes:
    """What a take's record says that no model call holds (``job_record.of`` writes it beside the call): the
    files' names and the source song's length, how an Extend or Edit was asked (its seconds or bars, the
    lyric lines chosen), the seed a repaint drew instead of the take's seed, the take whose voice was lent, and
    where a variation or a morph came from."""

    src_audio: str | None = None
    source_seconds: float | None = None
    # A whole new take (Generate, Cover, a morph) names its timbre reference's file, None for none.
    reference_audio: str | None = None
    # A take's voice lent (``voice.timbre``): the take, how its windows were chosen, the windows.
    voice: dict[str, Any] | None = None
    extend_seconds: float | None = None
    extend_bars: int | None = None
    edited_lines: tuple[int, int] | None = None
    edited_bars: tuple[int, int] | None = None
    # Where the musician set bar 1 (``first_downbeat``, seconds): Edit's and Extend's bars counted from there.
    first_downbeat: float | None = None
    # Where an Extend's new music went, where not at the end (``extend_where.Where.said``: "start", "92.5", "bar 9").
    where: str | None = None
    # An Extend asked to end the song (``extend_lyrics``); None: not asked.
    ending: bool | None = None
    # The take's seed, which a repaint may not draw again (``preparing.from_take_latents``).
    seed_redrawn: int | None = None
    # A variation's origin (the take), how far it moves, and each take's fresh seed (``variations``).
    variation: Variation | None = None
    # The take a morph came from (``take_morph``).
    morph_of: dict[str, Any] | None = None
    # Think's part as it was asked, where the song is made without it (``MusicRequest.without_plan``): the
    # record says what was asked (Rewrite caption, a plan brought back, the length Think was to choose).
    plan_asked: PlanArgs | None = None


@dataclass(frozen=True)
class MusicRequest:
    """What one music request sends to the GPU: its ``mode``, the ``render``, each take's length (``seconds``:
    its one form, which the cost reads and the rest follow; Extend's the source and what it adds, where the
    call is told the source's length; Think's longest where it chooses), the takes' file format, and Think's
    part: ``plan`` to plan first, or ``plan_skipped``, the message saying why the song is made without the
    plan it asked for; for a region Edit sung among a song's lyric lines, that whole song's lyrics (``song_lyrics``, which
    its takes' files hold); and what its record says that no call holds (``notes``). The record is read
    off all of it once, from the finished job (``job_record.of``)."""

    mode: str
    render: Render
    seconds: float
    audio_format: str
    plan: PlanArgs | None = None
    plan_skipped: str | None = None
    song_lyrics: str = ""
    # Where the source song is read from: the take's final latents, or why the VAE reads it (None: no
    # source, or not yet looked at: the admission check reads no latents).
    source_latents: str | None = None
    # A loop: its wrap repainted after the render, in the same GPU call (``loops``).
    loop: Loop | None = None
    # Generate's *Lock to the grid*: each take's bars warped onto its tempo as it is finished (``grid_lock``),
    # the take as played written beside it.
    lock: bool = False
    notes: Notes = Notes()
    # Bytes a second of each take's file where an Edit or Extend writes it at its source's rate and
    # samples (``untouched.Kept.bytes_per_second``); 0: the format's rate at 48 kHz (``budget``).
    source_bytes_per_second: int = 0

    def with_notes(self, **changes: Any) -> MusicRequest:
        """This request with some of its notes changed."""
        return dataclasses.replace(self, notes=dataclasses.replace(self.notes, **changes))

    def without_plan(self, reason: str) -> MusicRequest:
        """The same song made without Think's plan, its records saying ``reason`` beside what was asked."""
        asked = self.notes.plan_asked or self.plan
        return dataclasses.replace(self, plan=None, plan_skipped=reason).with_notes(plan_asked=asked)

    def with_longest(self, seconds: int) -> MusicRequest:
        """Think chooses the length, at most ``seconds``: the length, the plan and the pipeline agree (the
        record reads it off the plan)."""
        assert self.plan is not None, "only Think chooses a length"
        return dataclasses.replace(
            self,
            seconds=float(seconds),
            render=self.render.with_pipeline(audio_duration=pipeline_seconds(seconds)),
            plan=dataclasses.replace(self.plan, longest=int(seconds)),
        )

    @property
    def chooses(self) -> bool:
        """Whether Think chooses the length (no length asked, no plan brought back that says it; a loop's
        is its bars at the tempo Think chooses, never shortened)."""
        return self.plan is not None and self.plan.seconds is None and self.plan.given is None and self.loop is None


def trimmed(seconds: float) -> Callable[[np.ndarray], np.ndarray]:
    """Each take ``[2, samples]`` cut to ``seconds`` (the pipeline makes whole latent frames)."""
    n = int(round(seconds * audio.SAMPLE_RATE))
    return lambda take: take[:, :n]


@dataclass(frozen=True)
class Admission:
    """The cost estimate made of a request once, at admission (``budget.admit``): carried on its ``Job``
    (and to the run of the same join on the join's HTTP request, under ``budget.ADMISSION``), so that
    later readers read it instead of asking ``budget`` again, as long as the request costs what was
    estimated (``holds``)."""

    longest: int | None  # the longest Think may choose, in seconds; None where Think does not choose the length
    disk_bytes: int  # the bytes its takes need in the output folder (``budget.bytes_written``)
    shape: Any  # the shape it was estimated from (``music_shape.MusicShape``, a module above this one: compared only)
    seconds: float  # the GPU seconds that shape was declared at (``duration_estimate.music_seconds``)

    def holds(self, shape: Any, seconds: float) -> bool:
        """Whether a request of ``shape``, declared at ``seconds`` now, costs what was estimated: the same
        shape (a file's header told its length), no more seconds (measured figures learnt meanwhile may
        ask more)."""
        return shape == self.shape and seconds <= self.seconds


@dataclass(frozen=True)
class Job:
    """One prepared request: the typed request the GPU runs, and what the CPU does with its takes."""

    request: MusicRequest
    # Runs on each returned take ``[2, samples]`` before it is written.
    post: Callable[[np.ndarray], np.ndarray]
    # Fades and loudness (``mastering``); ``region`` (samples) is the new part of an Edit or Extend,
    # the only part whose level the finish may touch there.
    finishing: mastering.Finish = mastering.Finish()
    region: tuple[int, int] | None = None
    # Where a take is a song with a part added: the part alone from each returned take, written beside it.
    part: Callable[[np.ndarray], np.ndarray] | None = None
    # A region Edit of a song whose synced lyric lines the studio knows: each take's synced lines (the region's,
    # as aligned) made the whole song's (``edit_lines.Around``).
    synced: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
    # The cost estimate made at admission (``budget.admit``); None until it is admitted, and again once
    # its length changes.
    admission: Admission | None = None
    # An Edit's or Extend's source as its takes keep it, at its source rate (``untouched.Kept``); None: 48 kHz.
    kept: Any = None

    @property
    def mode(self) -> str:
        return self.request.mode

    def with_longest(self, seconds: int) -> Job:
        """Think chooses the length, at most ``seconds``: the request's (``MusicRequest.with_longest``), the
        trim; an admission made for another length is not carried."""
        request = self.request.with_longest(seconds)
        return dataclasses.replace(self, request=request, post=trimmed(seconds), admission=None)

    def with_admission(self, admission: Admission) -> Job:
        """This job with ``admission`` carried (the admission check's, in the run): the length Think
        chooses at most ``admission.longest``."""
        job = self
        if admission.longest is not None and self.request.chooses and admission.longest < self.request.seconds:
            job = self.with_longest(admission.longest)
        return dataclasses.replace(job, admission=admission)

    @property
    def seeds(self) -> list[int]:
        return list(self.request.render.seeds)
