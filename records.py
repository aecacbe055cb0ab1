"""A take's record: its settings written once from the finished job (``of``: read off the model call the
preparer resolved, with what the request notes beside it), and read back only through its type
(``Record``, ``Take``; ``read`` and ``check`` first): ``settings`` are Generate's fields, every value
checked as the form checks it, so *Use these settings*, a variation or a morph never runs a value the
form would refuse. A record is bounded in size and depth: none costs more than a glance.
"""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path
from typing import Any, TypedDict

import gradio as gr

import asgi_gate
import checks
import error_messages
import lora_presets
import models
import parameters
import planner

MAX_BYTES = 200_000
MAX_DEPTH = 32
# Each adapter slot's file and preset as a record names them (``job_record.lora_record``).
ADAPTER_PRESETS = tuple(preset for _, _, preset in parameters.ADAPTER_SLOTS)
ADAPTER_NAMES = tuple(name for file, _, preset in parameters.ADAPTER_SLOTS for name in (file, preset))
# What *Use these settings* fills on Generate, in the order its endpoints return it, by
# ``modes.prepare_generate``'s own names: every field but the files (a record names them, it cannot
# carry them), and the page's *Instrumental* switch (tests/test_layout.py holds it to the signature).
FIELDS = (
    "prompt",
    "lyrics",
    "instrumental",
    "audio_duration",
    "bpm",
    "key_scale",
    "time_signature",
    "vocal_language",
    "seed",
    "inference_steps",
    "guidance_scale",
    "shift",
    "batch_size",
    "audio_format",
    "think",
    "auto_length",
    "rewrite_caption",
    "plan",
    "loop_bars",
    "cfg_interval_start",
    "cfg_interval_end",
    "dcw",
    "loudness",
    "fade_in",
    "fade_out",
    "lock_to_grid",
    *parameters.added("generate"),
    # The other adapters' slots: a preset and a strength each (a file is named in ``files``: ``_lora``).
    *(name for _, strength, preset in parameters.ADAPTER_SLOTS[1:] for name in (preset, strength)),
    "lora_preset",
    "lora_scale",
)


# A value of a record's JSON, as ``json.loads`` gives it.
Json = str | int | float | bool | None | list["Json"] | dict[str, "Json"]


class PlanEntry(TypedDict, total=False):
    """A take's ``planner`` entry (``planner.Plan.record``): Think's ``fields`` (``bpm``, ``caption``,
    ``duration`` in seconds, ``keyscale``, ``language``, ``timesignature``), the take's blueprint length in
    codes, the seconds Think took, whether it thought (False: a plan given), the planner's name, the take's
    place in its batch (``take`` of ``of``), the caption as the model read it where it had to be made to fit
    and how (``caption_read``, ``caption_fit``: ``generation``), or why Think was skipped (``skipped``)."""

    fields: dict[str, Json]
    codes: int
    seconds: float
    thought: bool
    model: str
    take: int
    of: int
    caption_read: str
    caption_fit: dict[str, Json]
    skipped: str


class SectionEntry(TypedDict):
    """A section of a take's map (``song_map.Section.as_record``): its name, start and end in seconds."""

    name: str
    start: float
    end: float


class LyricLine(TypedDict):
    """A synced lyric line of a take (``lrc``): when it starts (seconds) and its text."""

    time: float
    text: str


class LatentsEntry(TypedDict):
    """Where a take's latents lie (``take_latents.write_all``): the file, relative to the output folder, and
    the SHA-256 of the take's audio file they belong to."""

    file: str
    audio_sha256: str


class LockEntry(TypedDict, total=False):
    """What *Lock to the grid* did to a take (``grid_lock.lock``): whether it was locked, else why not; the
    tempo asked and played (BPM), the most any stretch moved (percent), the grid (its first bar line and bar
    length in seconds, beats per bar), the locked take's length (seconds) and the stretcher that ran."""

    locked: bool
    why: str
    bpm: float
    played_bpm: float
    most_pct: float
    first: float
    bar: float
    beats_per_bar: int
    seconds: float
    stretcher: str


class TempoEntry(TypedDict, total=False):
    """A take's tempo as played (``song_map.Tempo.as_record``): BPM, how far its bars wander (percent),
    whether it is steady, the BPM asked and how far off it is (percent), the tempo it is felt as, and the
    line said beside it (``said``)."""

    bpm: float
    wander_pct: float
    steady: bool
    asked: float
    off_pct: float
    felt_as: float
    said: str


class VoiceEntry(TypedDict):
    """The take whose voice a take was lent (``voice.timbre``): its name as records name takes, what placed
    the reference windows (synced lines, vocal stem, thirds) and each window's start and end in seconds."""

    take: str
    by: str
    windows: list[list[float]]


class ModelEntry(TypedDict, total=False):
    """The model that made a take (``backend.model_identity``) and the device it ran on."""

    label: str
    repo: str | None
    folder: str | None
    variant: str | None
    device: str


class EncodingEntry(TypedDict, total=False):
    """A take's file as its record says it (``takes.encoding``): format and bit depth (float or not), or an
    MP3's bitrate in kbit/s and its mode."""

    format: str
    bits: int
    float: bool
    bitrate_kbps: int
    bitrate_mode: str


def _seconds(value: Any) -> float | None:
    """A time a record gives in seconds, or a score (0 or more, finite), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value < float("inf") else None


def _dicts(value: Any) -> list[dict[str, Any]] | None:
    """The dicts of a list a record gives (what else it holds left out), or None where it gives no list."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else None


def _floats(value: Any) -> list[float] | None:
    """A list of times a record gives, as numbers; None where it gives none, or one that is not a number."""
    try:
        return [float(item) for item in value] if isinstance(value, list) else None
    except (TypeError, ValueError, OverflowError):
        return None


def _typed(kind: type) -> Any:
    """A reader of a value of ``kind`` (None where the record gives another; True is no number to a musician)."""
    return lambda value: value if isinstance(value, kind) and not isinstance(value, bool) else None


_text_of = _typed(str)
_whole = _typed(int)


@dataclasses.dataclass(frozen=True)
class VariationEntry:
    """A variation's entry in its take's record (``music_request.Variation.entry``): the take it came from
    (``take``, from 1, with its ``of_seed`` and its file, ``of_audio``), how far its noise moved from that
    take's (``amount``, 0–1) and its new noise's ``seed``; a value of another type reads as none, and is kept as the
    record gives it in ``given`` (take, amount, seed) for a note that quotes it."""

    take: int | None
    of_seed: int | None
    of_audio: str | None
    amount: float | None
    seed: int | None
    given: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, entry: Any) -> VariationEntry | None:
        """A take's ``variation`` entry read; None where it is no dict."""
        if not isinstance(entry, dict):
            return None
        of = entry.get("of") if isinstance(entry.get("of"), dict) else {}
        amount = _typed(int | float)(entry.get("amount"))
        return cls(
            take=_whole(of.get("take")),
            of_seed=_whole(of.get("seed")),
            of_audio=_text_of(of.get("audio")),
            amount=None if amount is None else float(amount),
            seed=_whole(entry.get("seed")),
            given={"take": of.get("take"), "amount": entry.get("amount"), "seed": entry.get("seed")},
        )


# How a take's entry is read, field by field (``Take``): a value of another type reads as none.
_TAKE_READ = {
    "planner": _typed(dict),
    "variation": VariationEntry.of,
    "latents": _typed(dict),
    "lock": _typed(dict),
    "tempo": _typed(dict),
    "seconds": _seconds,
    "lyric_score": _seconds,
    "audio": _text_of,
    "preview": _text_of,
    "seed": _whole,
    "noise": _typed(list),
    "bars": _floats,
    "sections": _dicts,
    "audio_sha256": _text_of,
    "lyric_lines": lambda value: _dicts(value) or None,
}


@dataclasses.dataclass(frozen=True)
class Take:
    """A take of a record read back (``_TAKE_READ``): number (from 1), seed, file, length, plan, variation, noise,
    synced lines (``{"time", …}``) and their score, latents, lock to the grid, its map where it has one (``bars``:
    each bar's start in seconds; ``sections``: ``{"name", "start", "end"}``); ``entry``: all it holds."""

    number: int
    seed: int | None
    audio: str | None
    planner: PlanEntry | None
    variation: VariationEntry | None
    noise: list[Json] | None  # ``[seed, amount]`` pairs, checked where a variation reads them (``variations``)
    bars: list[float] | None
    sections: list[SectionEntry] | None
    entry: dict[str, Json]
    seconds: float | None = None
    lyric_lines: list[LyricLine] | None = None
    lyric_score: float | None = None
    latents: LatentsEntry | None = None
    lock: LockEntry | None = None
    tempo: TempoEntry | None = None  # as played (``song_map.Tempo``)
    preview: str | None = None
    audio_sha256: str | None = None  # a take that keeps no latents (a loop, a locked take): its file's digest

    @property
    def bound_to(self) -> str | None:
        """The digest a song sent back must have to be this take (``take_latents.belongs``): its latents' where
        it keeps them, else its file's; None where it names none."""
        return _text_of(self.latents.get("audio_sha256")) if self.latents is not None else self.audio_sha256

    @classmethod
    def of(cls, entry: Any, number: int) -> Take:
        entry = entry if isinstance(entry, dict) else {}
        return cls(number=number, entry=entry, **{name: read(entry.get(name)) for name, read in _TAKE_READ.items()})


@dataclasses.dataclass(frozen=True)
class Told:
    """What the model was told when it made a take (``Record.told``; caption or lyrics None: not text)."""

    caption: str | None
    lyrics: str | None
    bpm: int | None
    key_scale: str | None
    time_signature: str | None


@dataclasses.dataclass(frozen=True)
class LoopEntry:
    """A loop's entry in its record or run (``loops.record``): its bars of ``beats_per_bar`` beats, one cycle
    ``samples`` long, at ``bpm``, and who chose them (``chosen_by``: "think", or None: the visitor)."""

    bars: int
    beats_per_bar: int
    samples: int
    bpm: float | None = None
    chosen_by: str | None = None

    @classmethod
    def of(cls, entry: Any) -> LoopEntry | None:
        """A loop's entry read; None where there is none, or its bars, beats or length are no whole numbers."""
        entry = entry if isinstance(entry, dict) else {}
        whole = [_whole(entry.get(name)) for name in ("bars", "beats_per_bar", "samples")]
        if any(value is None or value <= 0 for value in whole):
            return None
        return cls(*whole, bpm=_typed(int | float)(entry.get("bpm")), chosen_by=_text_of(entry.get("chosen_by")))


@dataclasses.dataclass(frozen=True)
class Record:
    """A record as its readers see it (any dict: a part it lacks, or holds in another shape, reads as none): its
    mode, caption and lyrics, the whole song's lyrics (a region Edit's ``song_lyrics``), metre, tempo and key asked
    (as the form reads them), steps, the source's length (Extend's: the part kept), the files it names, the voice
    lent, its loop, takes, model and each phase's seconds; ``settings``: as written, to make a take again."""

    mode: str | None
    caption: str
    lyrics: str
    song_lyrics: str | None
    bpm: int | None
    key_scale: str | None
    time_signature: str | None
    steps: int | None
    # Whether Think chose the length (a record says -1 for it).
    chose_length: bool
    think: bool
    rewrite_caption: bool
    source_seconds: float | None
    extended: bool
    seed_redrawn: int | None
    files: dict[str, str]
    voice: VoiceEntry | dict[str, Json]  # {} where no take's voice was lent
    loop: LoopEntry | None
    settings: dict[str, Json]
    # Where the musician set bar 1 (``first_downbeat``, seconds): the take's bars are counted from there.
    first_downbeat: float | None = None
    # Where an Extend's new music went (``extend_where``: "end", "start", "92.5", "bar 9"); a record without it: "end".
    where: str = "end"
    takes: tuple[Take, ...] = ()
    model: ModelEntry = dataclasses.field(default_factory=lambda: ModelEntry())
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    this_take: Take | None = None  # the take a take's own ``.json`` was written for (its ``take`` and ``seed``)
    created: str | None = None
    encoding: EncodingEntry = dataclasses.field(default_factory=lambda: EncodingEntry())  # ``takes.encoding``

    @classmethod
    def of(cls, record: Any) -> Record:
        record = record if isinstance(record, dict) else {}
        said = record.get("params") if isinstance(record.get("params"), dict) else {}
        song_lyrics = said.get("song_lyrics") or said.get("lyrics")
        named = {key: str(said[key]) for key in ("src_audio", "reference_audio", *ADAPTER_NAMES) if said.get(key)}
        bpm, key, metre = _music(said.get("bpm"), said.get("key_scale"), said.get("time_signature"))
        timings = {name: value for name, value in _dict(record.get("timings")).items() if _seconds(value) is not None}
        return cls(
            mode=_text_of(record.get("mode")),
            caption=said.get("prompt") if isinstance(said.get("prompt"), str) else "",
            lyrics=str(said.get("lyrics") or ""),
            song_lyrics=song_lyrics if isinstance(song_lyrics, str) else None,
            bpm=bpm,
            key_scale=key,
            time_signature=metre,
            steps=_whole(said.get("inference_steps")),
            chose_length=checks.reads_as(said.get("audio_duration"), checks.THINK_CHOOSES_LENGTH),
            think=bool(said.get("think")),
            rewrite_caption=bool(said.get("rewrite_caption", True)),
            source_seconds=_seconds(said.get("source_seconds")),
            extended="extend_seconds" in said,
            seed_redrawn=_whole(said.get("seed_redrawn")),
            files=named,
            voice=said.get("reference") if isinstance(said.get("reference"), dict) else {},
            loop=LoopEntry.of(loop_of(record)),
            settings=dict(said),
            first_downbeat=_seconds(said.get("first_downbeat")),
            where=str(said["where"]) if isinstance(said.get("where"), str | int | float) else "end",
            takes=tuple(Take.of(entry, n) for n, entry in enumerate(_typed(list)(record.get("takes")) or [], 1)),
            model=_dict(record.get("model")),
            timings=timings,
            this_take=Take.of(record, number) if (number := _whole(record.get("take"))) and "seed" in record else None,
            created=_text_of(record.get("created")),
            encoding=_dict(record.get("encoding")),
        )

    def captions(self, take: Take | dict[str, Any] | None) -> list[str]:
        """The captions a take can be named by, best first: as written, then the planner's (a take made from
        lyrics alone); text only."""
        found = [self.caption, _fields(take).get("caption")]
        return [caption for caption in found if isinstance(caption, str) and caption]

    def told(self, take: Take | dict[str, Any]) -> Told:
        """What the model was told when it made ``take`` (a ``Take`` or its entry)."""
        plan = take.planner if isinstance(take, Take) else _dict(take.get("planner"))
        fields = _fields(take)
        rewritten = self.think and self.rewrite_caption and fields.get("caption")
        # Think's caption as the model read it where it had to be made to fit (``generation``), else as written.
        caption = (plan or {}).get("caption_read", fields.get("caption")) if rewritten else self.caption
        planned = _music(fields.get("bpm"), fields.get("keyscale"), fields.get("timesignature"))
        asked = (self.bpm, self.key_scale, self.time_signature)
        music = (p if g is None else g for g, p in zip(asked, planned, strict=True))
        return Told(_text_of(caption), _text_of(self.settings.get("lyrics") or ""), *music)

    def kept(self) -> dict[str, Any]:
        """Its settings as *My takes* keeps them in the browser: a given plan's codes left out (the take's own
        plan is in its entry)."""
        return {key: value for key, value in self.settings.items() if key != "plan"}

    def asked(self, names: set[str] | frozenset[str]) -> dict[str, Any]:
        """Its settings of these ``names`` (a preparer's), as written: the preparer checks each."""
        return {name: value for name, value in self.settings.items() if name in names}


def _music(*values: Any) -> tuple[int | None, str | None, str | None]:
    """BPM, key and metre as the form reads them; None (the model chooses) where the form would refuse one."""
    read: list[Any] = []
    for name, value in zip(checks.MUSICAL, values, strict=True):
        try:
            read.append(checks.check_musical(name, value))
        except (gr.Error, TypeError, ValueError, OverflowError):
            read.append(None)
    return tuple(read)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _fields(take: Take | dict[str, Any] | None) -> dict[str, Any]:
    """The fields of the plan a take was made from (``{}``: none)."""
    plan = take.planner if isinstance(take, Take) else _dict(take).get("planner")
    return _dict(_dict(plan).get("fields"))


def kept_record(entry: Any) -> dict[str, Any] | None:
    """The record a *My takes* entry keeps (its settings, ``Record.kept``, beside its take), for *Use these
    settings* and *Send to*; None where it keeps none (an entry too large to keep them)."""
    kept, take = (entry.get(key) for key in ("params", "take")) if isinstance(entry, dict) else (None, None)
    return {"params": kept, "takes": [take] if isinstance(take, dict) else []} if isinstance(kept, dict) else None


def take_of(record: dict[str, Any], take: Any) -> Take:
    """The take a checked ``record`` holds: a take's own ``.json`` the one it was written for, else take
    number ``take`` of its takes (``gr.Error`` with a message for a number outside them)."""
    how_made = Record.of(record)
    if how_made.this_take is not None and 1 <= how_made.this_take.number <= max(1, len(how_made.takes)):
        return how_made.this_take
    return chosen(record, take, error_messages.NO_TAKE_YET)


def loop_of(record: dict[str, Any]) -> dict[str, Any] | None:
    """A loop's entry (``{"bars", "beats_per_bar", "bpm", "samples"}``) where the record has one."""
    return record.get("loop") if isinstance(record.get("loop"), dict) else None


def read(path: Any) -> dict[str, Any]:
    """A record file a visitor uploaded, as a dict; ``gr.Error`` with a message for anything else."""
    if not path:
        raise gr.Error(error_messages.RECORD_UPLOAD)
    try:
        with open(str(path), "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError:
        raise gr.Error(error_messages.RECORD_UNREADABLE) from None
    if len(data) > MAX_BYTES:
        raise gr.Error(error_messages.RECORD_TOO_LARGE.format(most=MAX_BYTES // 1000))
    if asgi_gate.json_depth(data) > MAX_DEPTH:
        raise gr.Error(error_messages.RECORD_FILE_TOO_DEEP)
    try:
        record = json.loads(data.decode("utf-8-sig"))  # a BOM, as some editors save it, is fine
    except (ValueError, UnicodeDecodeError):
        raise gr.Error(error_messages.RECORD_NOT_JSON) from None
    return record


def check(record: Any) -> dict[str, Any]:
    """``record`` if it has a take's record's shape (its settings, nested no deeper than a record);
    ``gr.Error`` with a message otherwise."""
    if not isinstance(record, dict) or not isinstance(record.get("params"), dict):
        raise gr.Error(error_messages.RECORD_NOT_ONE)
    if _nesting(record) > MAX_DEPTH:
        raise gr.Error(error_messages.RECORD_TOO_DEEP)
    return record


def settings(record: Any, take: Any = 1) -> dict[str, Any]:
    """Generate's form values from a record (a result's metadata or a take's ``.json``) by the
    preparer's names (``FIELDS``), seed included, and the ``files`` the record names but cannot
    carry; every value checked as the form checks it. ``gr.Error`` names the value at fault."""
    check(record)
    params, variant = record["params"], models.active_variant()
    if not isinstance(record.get("takes") or [], list):
        raise gr.Error(error_messages.RECORD_TAKES.format(given=quoted_safely(record["takes"])))
    made = [t for t in record.get("takes") or [] if isinstance(t, dict) and "seed" in t]
    index = take_index(take, len(made)) if made else 0
    seed = record["seed"] if "take" in record and "seed" in record else made[index]["seed"] if made else -1
    prompt, lyrics = _text(params, "prompt"), _text(params, "lyrics")
    entry = record if "take" in record and "seed" in record else made[index] if made else {}
    plan = _plan(entry.get("planner"))
    length = params.get("audio_duration", parameters.PARAMS["audio_duration"].default)
    # Think chose it: bring back what it chose, with the plan that holds it.
    if checks.reads_as(length, checks.THINK_CHOOSES_LENGTH):
        length = json.loads(plan)["duration"] if plan else planner.FALLBACK_SECONDS
    duration = _checked("audio_duration", length, checks.check_duration)
    return {
        "prompt": prompt,
        "lyrics": lyrics,
        "instrumental": not lyrics,
        "audio_duration": duration,
        "bpm": _checked("bpm", params.get("bpm"), checks.check_bpm) or 0,
        "batch_size": 1,  # the take, made again alone
        "think": _checked("think", params.get("think", False), checks.check_switch) and planner.enabled(),
        "auto_length": False,  # the length comes back as it was chosen, with the plan that holds it
        "rewrite_caption": _checked("rewrite_caption", params.get("rewrite_caption", True), checks.check_switch),
        "plan": plan if planner.enabled() else "",
        # A record without a loudness target was made as rendered (no finish).
        "loudness": _loudness(params.get("loudness", checks.LOUDNESS_OFF)),
        **_lora(params, variant),
        "variation": VariationEntry.of(entry.get("variation")),
        "loop_bars": _checked("loop_bars", params.get("loop_bars"), checks.check_loop_bars) or 0,  # a loop stays one
        **_declared({**params, "seed": seed}, variant),  # the take's seed, made again alone
    }


def _declared(params: dict[str, Any], variant: models.Variant) -> dict[str, Any]:
    """Generate's declared parameters (``parameters.DECLARED``) as the record holds them (one it leaves out: its
    default), each checked as the form does. A record without ``dcw`` was written by a studio without DCW: such a
    take came from diffusers' own run, which the studio no longer makes, so the model's default applies
    (``Param.model_default``); one that says true or
    false was made so, and is made so again."""
    read = {p.name: _field(p, params, variant) for p in parameters.declared("generate")}
    try:
        return parameters.in_order(read)
    except checks.InputError as exc:  # the end at fault (the guidance interval's), named as the record names it
        return _checked(exc.param, read[exc.param], lambda _: parameters.in_order(read))


def _field(p: parameters.Param, params: dict[str, Any], variant: models.Variant) -> Any:
    """A declared parameter's field value from the record, checked as the form does. A choice left to the model
    (a key or metre recorded as null: ``Param.check`` gives None) or never said (a language null or empty, as
    records written while ``vocal_language`` went unchecked may hold) is the field's first choice (auto, unknown)."""
    value = params.get(p.name, p.default)
    value = p.default if p.choices and value in (None, "") else value
    checked = _checked(p.name, value, lambda v: p.check(v, variant))
    return p.default if p.choices and checked is None else checked


def _loudness(value: Any) -> str:
    """The Loudness field's value (its choices are text) for a record's target."""
    lufs = _checked("loudness", value, checks.check_loudness)
    return checks.LOUDNESS_OFF if lufs is None else f"{lufs:g}"


def _lora(params: dict[str, Any], variant: models.Variant) -> dict[str, Any]:
    """The record's adapter presets, slot by slot (``parameters.ADAPTER_SLOTS``; each "" where it has none or this
    studio does not offer it), and the files it names (the strengths: ``_declared``). A record of one LoRA names
    it in the first slot's fields, as every record before it."""
    files, presets = {}, {}
    here = {p.name: p for p in lora_presets.offered(variant.name)}
    for file, _, preset_field in parameters.ADAPTER_SLOTS:
        name, repo = params.get(preset_field), params.get(parameters.ADAPTER_REPOS[preset_field])
        presets[preset_field] = ""
        if not (name or repo):
            if params.get(file):
                files[file] = params[file]
            continue
        # A preset's file is the preset, not an upload.
        found = here.get(name) if isinstance(name, str) else None
        if found is not None and (not repo or found.repo == repo):
            presets[preset_field] = found.name
        else:  # made with a preset this studio does not hold: named, like a file, for the visitor to bring
            files[preset_field] = repo if isinstance(repo, str) and repo else name
    files |= {key: params[key] for key in ("reference_audio", "src_audio") if params.get(key)}
    if isinstance(params.get("reference"), dict):  # a take's voice comes back from that take (``voice_row``)
        files.pop("reference_audio", None)
    return {"files": files, **presets}


def adapters_of(record: Any) -> list[dict[str, Any]]:
    """The adapters a record names, slot by slot (``job_record.lora_record``): each ``{"name", "scale", "kind",
    "layers"}`` (``layers``: ``[changed, named]`` where it changes only some, else None); a record of one LoRA
    gives one. Values a record holds as something else are left out, never guessed."""
    said = record.get("params") if isinstance(record, dict) and isinstance(record.get("params"), dict) else {}
    found = []
    for file, strength, preset in parameters.ADAPTER_SLOTS:
        name = said.get(parameters.ADAPTER_REPOS[preset]) or said.get(preset) or said.get(file)
        scale = said.get(strength, parameters.PARAMS[strength].default)
        if not isinstance(name, str) or not name or isinstance(scale, bool) or not isinstance(scale, int | float):
            continue
        layers = said.get(f"{file}_layers")
        partial = isinstance(layers, list) and len(layers) == 2 and all(isinstance(n, int) for n in layers)
        kind = said.get(f"{file}_kind", "lora")
        found.append({"name": name, "scale": float(scale), "kind": kind, "layers": layers if partial else None})
    return found


def adapters_used(record: Any) -> int:
    """How many adapter slots a record's take used (the last slot holding a file or a preset; 1 for none),
    the rows *Use these settings* shows (``form_fields.rows_shown``)."""
    said = record.get("params") if isinstance(record, dict) and isinstance(record.get("params"), dict) else {}
    used = [n for n, (file, _, preset) in enumerate(parameters.ADAPTER_SLOTS, 1) if said.get(file) or said.get(preset)]
    return max(used, default=1)


def _plan(entry: Any) -> str:
    """The plan a take's record holds, as the Plan field takes it (JSON, with the take's place in
    its batch), checked as the field checks it; "" where the take had none."""
    if not isinstance(entry, dict) or not isinstance(entry.get("fields"), dict):
        return ""
    text = json.dumps({**entry["fields"], "take": entry.get("take"), "of": entry.get("of")}, ensure_ascii=False)
    _checked("planner", text, checks.check_plan)
    return text


def _nesting(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts, without recursion (stops past ``MAX_DEPTH``)."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_DEPTH:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def take_index(take: Any, count: int) -> int:
    """The 0-based index of take number ``take`` (1 … ``count``); ``gr.Error`` with a message otherwise."""
    if take is None or take == "":
        return 0
    # A result of one take has nothing to choose: "a whole number from 1 to 1" would read as a riddle.
    message = error_messages.TAKE_ONLY_ONE if count == 1 else error_messages.TAKE_NUMBER
    if isinstance(take, bool):  # True is 1 to Python, not a take number to a musician
        raise gr.Error(message.format(count=count, given=take))
    try:
        number = float(take)
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if not (number == number and number.is_integer() and 1 <= number <= count):
        raise gr.Error(message.format(count=count, given=checks.shown(take)))
    return int(number) - 1


def chosen(record: Any, take: Any, no_take: str) -> Take:
    """Take number ``take`` (from 1) of a result's ``record`` (its entry empty where the record's entry is
    not one); ``no_take`` is what a record with no takes is told."""
    made = Record.of(record).takes
    if not made:
        raise gr.Error(no_take)
    return made[take_index(take, len(made))]


def take_entry(record: Any, take: Any, no_take: str) -> tuple[dict[str, Any], int]:
    """``chosen``'s take as its entry and its index."""
    return (found := chosen(record, take, no_take)).entry, found.number - 1


def files_note(files: dict[str, Any]) -> str:
    """The files a record names but cannot carry, quoted short and escaped for a toast (``error_messages.RECORD_FILES``;
    told with the settings brought back: ``error_messages.SETTINGS_BACK``)."""
    # A preset is named by its Hub repo (organisation included), a file by its name alone.
    shown = {key: str(value) if key in ADAPTER_PRESETS else Path(str(value)).name for key, value in files.items()}
    kinds = error_messages.RECORD_FILE_KINDS
    names = [
        error_messages.RECORD_FILE.format(kind=kinds[key], name=quoted_safely(value)) for key, value in shown.items()
    ]
    return error_messages.RECORD_FILES.format(files=", ".join(names))


def files_brought_back(files: dict[str, Any]) -> str:
    """``files_note`` told as the settings come back with it (``error_messages.SETTINGS_BACK``)."""
    return error_messages.SETTINGS_BACK.format(note=files_note(files))


def _text(params: dict[str, Any], name: str) -> str:
    value = params.get(name) or ""
    if not isinstance(value, str):
        raise gr.Error(error_messages.RECORD_NOT_TEXT.format(name=name, given=quoted_safely(value)))
    return _checked(name, value, lambda text: checks.check_text_lengths({name: text}) or text)


def _checked(name: str, value: Any, check: Any) -> Any:
    try:
        return check(value)
    except gr.Error as exc:
        why = html.escape(str(exc.message), quote=False)  # it may quote the value too
        raise gr.Error(error_messages.RECORD_UNUSABLE.format(name=name, given=quoted_safely(value), why=why)) from None


def quoted_safely(value: Any) -> str:
    """A value a record brings, quoted short (``checks.shown``) and escaped: Gradio renders a toast as
    HTML, so a shared record's ``<img src=…>`` would otherwise be a tracking pixel in the visitor's page."""
    return html.escape(checks.shown(value), quote=False)
