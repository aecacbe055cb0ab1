"""What the mode preparers (``modes``) share, all on the CPU: the caption and lyrics checked as a pair,
the musical fields, an uploaded song loaded and padded to whole
latent frames, the settings Cover, Extend and Edit share (``common``), Edit's region, and what Think
is given (``plan_args``); and the checks that ask the loaded models, or what the studio has installed
for them (``check_lyric_tokens``, ``check_lora``, ``check_think``). Every model-free field check lives
in ``checks``, below the models."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import random
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

import audio
import backend
import error_messages
import headers
import lora
import lora_presets
import models
import output_folder
import parameters
import planner
import records
import take_latents
import text_limits
import uploads
from checks import (
    INSTRUMENTAL_TAG,
    MAX_LYRICS_CHARS,
    MIN_REGION_SECONDS,
    MUSICAL,
    InputError,
    about,
    check_musical,
    check_plan,
    check_switch,
    check_text,
    seeds_for,
    shown,
    sung_language,
)
from music_request import Call, Job, MusicRequest, PlanArgs, Render
from parameters import Asked

# Upstream reads a timbre reference as three windows of this many seconds (30 s in all).
REFERENCE_WINDOW_SECONDS = 10


def with_think(request: MusicRequest, thinking: bool, seconds: float | None, rewrite: Any, plan: Any) -> MusicRequest:
    """``request`` with Think's part where Think is on (and the longest it may choose where it chooses
    the length, ``seconds`` None; BPM, key and metre as the call holds them, None the planner's to choose); a
    plan given with Think off is refused."""
    if not thinking:
        if str(plan or "").strip():
            raise InputError(error_messages.PLAN_WITHOUT_THINK, "plan")
        return request
    call = request.render.pipeline
    music = {name: getattr(call, name) for name in ("bpm", "keyscale", "timesignature")}
    args = plan_args(call.prompt, call.lyrics, seconds, music, rewrite, plan, request.render.takes)
    request = dataclasses.replace(request, plan=args)
    # Where Think chooses, each take is as long as it may choose: the request's one length says so.
    return request.with_longest(args.longest) if seconds is None else request


def plan_args(
    caption: str, lyrics: str, seconds: float | None, music: dict[str, Any], rewrite: Any, plan: Any, takes: int
) -> PlanArgs:
    """What the planner is given (``PlanArgs``); a plan brought back from a take keeps that take's
    place in its batch only when it is remade alone, as it was made."""
    with about("rewrite_caption"):
        rewrite = check_switch(rewrite, "Let Think rewrite the caption")
    with about("plan"):
        given = check_plan(plan)
    # Where Think chooses the length, a plan brought back has chosen it: the song's length, bounded as
    # any other (``budget``); else Think may choose up to the longest (bounded there too).
    longest = int(given[0]["duration"] if given else audio.MAX_SECONDS) if seconds is None else None
    return PlanArgs(
        caption=caption,
        lyrics=lyrics or INSTRUMENTAL_TAG,
        seconds=seconds,
        fixed=dict(music),
        rewrite_caption=rewrite,
        given=given[0] if given else None,
        layout=given[1] if given and takes == 1 else None,
        longest=longest,
    )


def text(prompt: Any, lyrics: Any, mode: str = "generate") -> tuple[str, str]:
    # Too long lyrics are the lyrics' fault; an empty pair or a long caption is the caption's.
    with about("lyrics" if len(str(lyrics or "").strip()) > MAX_LYRICS_CHARS else "prompt"):
        prompt, lyrics = check_text(prompt, lyrics, mode)
    check_tokens({"prompt": prompt})
    return prompt, lyrics


def musical(bpm: Any, key_scale: Any, time_signature: Any) -> dict[str, Any]:
    """BPM, key and time signature as the pipeline takes them (``None`` = the model chooses): a record's, as
    a request's are checked (``checks.check_musical``)."""
    read = (check_musical(name, value) for name, value in zip(MUSICAL, (bpm, key_scale, time_signature), strict=True))
    return dict(zip(("bpm", "keyscale", "timesignature"), read, strict=True))


def need_source(path: Any) -> None:
    # Before any other check: with no song, "upload a song" is the first thing to do.
    if path is None or str(path).strip() == "":
        raise InputError(error_messages.NO_SONG, "src_audio")


def source(path: Any, what: str = "song", param: str = "src_audio") -> np.ndarray:
    with about(param):
        return uploads.load(path, what)


def model_input(x: np.ndarray, n: int | None = None) -> np.ndarray:
    """A song as the model reads it: clamped to [-1, 1] as upstream's loader clamps every song it
    encodes (the take keeps the original samples), padded with silence to ``n`` samples (default:
    its own length) and on to whole latent frames."""
    n = x.shape[-1] if n is None else n
    frames = audio.good_frames(-(-n // audio.HOP)) * audio.HOP
    if headers.reading():  # the admission check: its length is all it needs (``headers``)
        return headers.stand_in(frames)
    return audio.fit(np.clip(x, -1.0, 1.0), frames)


def take_record(src_audio: Any) -> dict[str, Any] | None:
    """The own record (``.json``) of the take a source song is named after, where the studio still keeps
    one; not yet bound to the file's bytes (``take_latents.belongs``)."""
    path = Path(str(src_audio or ""))
    if path.suffix not in output_folder.TAKE_SUFFIXES:
        return None
    days = sorted((d.name for d in output_folder.output_dir().iterdir() if d.is_dir()), reverse=True)
    found = next(filter(None, (output_folder.studio_file(f"{day}/{path.stem}.json") for day in days)), None)
    try:
        record = json.loads(found.read_text(encoding="utf-8")) if found is not None else None
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def take_words(src_audio: Any) -> str:
    """The words a source song was sung with, where it is a take this studio made and keeps, byte for byte
    as written (an upload of a take's name tells nothing of it: ``take_latents.belongs``): the whole
    song's (a region Edit's ``song_lyrics``); "" for an instrumental, or a song the studio does not know."""
    how_made = records.Record.of(take_record(src_audio))
    if not take_latents.belongs(Path(str(src_audio)), how_made.this_take):
        return ""
    words = (how_made.song_lyrics or "").strip()
    return "" if words == INSTRUMENTAL_TAG else words


def source_latents(src_audio: Any) -> take_latents.SourceLatents:
    """A source song's own final latents where it is a take this studio made and still keeps, byte for
    byte as written (sent with *Send to*, chosen from *My takes*, named by a variation: a link or copy
    of the take under its own name); else why the VAE reads it (``take_latents``). Their width is
    checked against the model's once it is built; before, the run checks it (``generation``)."""
    record = take_record(src_audio)
    if record is None:
        return take_latents.SourceLatents(None, None, take_latents.UPLOAD)
    own = records.Record.of(record).this_take
    kept = (own.latents if own is not None else None) or {}
    latents = output_folder.studio_file(kept.get("file")) if kept else None
    return take_latents.check(Path(str(src_audio)), own, latents, backend.latent_width())


def latents_of(src_audio: Any) -> np.ndarray | None:
    """A take's own final latents if they belong to this very file, else None (``source_latents``)."""
    return source_latents(src_audio).latents


def from_take_latents(
    src_audio: Any, request: MusicRequest, repaint: bool = False, frames: int | None = None, moved: bool = False
) -> MusicRequest:
    """``request`` starting from the source take's own latents where it has them, saying which
    (``source_latents``): their first ``frames`` (None: all; an Extend from a point keeps the song's frames
    before it, silence after them: ``sampler``), or none where the song is ``moved`` off their frames (an
    intro before it: the VAE reads the song where it now lies, and the record says so); a repaint asked with the
    take's own seed draws another, as upstream's (PR #1177: the same seed would draw the same noise the take was
    made from), its record noting the seed it was not (``seed_redrawn``)."""
    if headers.reading():  # the admission check reads no latents (the run finds them, and says which)
        return request
    own = source_latents(src_audio)
    if moved and own.used:
        return dataclasses.replace(request, source_latents=take_latents.MOVED)
    request = dataclasses.replace(request, source_latents=own.why)
    if not own.used:
        return request
    render = request.render.with_pipeline(src_latents=own.latents if frames is None else own.latents[:frames])
    if repaint and render.seeds[0] == own.seed:
        fresh = own.seed
        while fresh == own.seed:
            fresh = seeds_for(-1, 1)[0]
        render = dataclasses.replace(render, seeds=(fresh,))
        request = request.with_notes(seed_redrawn=own.seed)
    return dataclasses.replace(request, render=render)


def reference(path: Any, seed: int, starts: list[float] | None = None) -> np.ndarray:
    """A timbre reference as upstream's XL reads it (``process_reference_audio``): clamped to
    [-1, 1], repeated up to 30 s, then 10 s from a random point of each third, the three joined.
    The points come from ``seed`` (the request's first), so a request is made again exactly; upstream
    draws them from Python's global ``random``, once a request. ``starts`` (seconds, three): the
    windows chosen instead, where a take's voice sings (``voice``). A silent file is refused by the
    decode (``uploads.load``), as upstream refuses one."""
    song = source(path, "timbre reference", "reference_audio")
    window = REFERENCE_WINDOW_SECONDS * audio.SAMPLE_RATE
    if headers.reading():  # the admission check: the windows' shape is all it needs (``headers``)
        return headers.stand_in(3 * window)
    song = np.clip(song, -1.0, 1.0)
    if starts is not None and song.shape[-1] >= 3 * window:
        first = [min(int(round(s * audio.SAMPLE_RATE)), song.shape[-1] - window) for s in starts]
        return np.concatenate([song[:, s : s + window] for s in first], axis=1)
    if song.shape[-1] < 3 * window:
        song = np.tile(song, (1, -(-3 * window // song.shape[-1])))
    return np.concatenate([song[:, s : s + window] for s in reference_starts(song.shape[-1], seed)], axis=1)


def reference_starts(samples: int, seed: int) -> tuple[int, int, int]:
    """Upstream's three windows of a reference ``samples`` long (repeated up to 30 s first): a point
    drawn from ``seed`` in each third, with Python's randint, bounds included, in this order."""
    window = REFERENCE_WINDOW_SECONDS * audio.SAMPLE_RATE
    third = samples // 3
    draw = random.Random(seed)
    return (
        draw.randint(0, max(0, third - window)),
        third + draw.randint(0, max(0, third - window)),
        2 * third + draw.randint(0, max(0, samples - 2 * third - window)),
    )


def common(asked: Asked, need_text: str | None, variant: models.Variant | None = None) -> tuple[Render, str]:
    """The checks and settings Cover, Extend and Edit share (``parameters.SONG`` and ``SAMPLING``; the song
    itself is loaded by each), in ``render``'s order: the render each mode adds its own to, and the takes' file
    format; ``need_text``: the mode whose caption or lyrics must not both be empty, or None (either may be, each
    still held to its length); ``variant``: the model whose sampling defaults apply (the one loaded, unless a part
    runs on the base). A mode with fields of its own (Edit's ``repaint_mode``) checks them between ``song_words``
    and ``render``, as the order has them."""
    return render(asked, *song_words(asked, need_text), 1, variant or models.active_variant())


def song_words(asked: Asked, need_text: str | None) -> tuple[str, str]:
    """The first two steps of ``render``'s order for Cover, Extend and Edit: the song given, then its caption and
    lyrics checked (``need_text``: as ``common``'s), as the render takes them."""
    need_source(asked.src_audio)
    prompt, lyrics = str(asked.prompt or "").strip(), str(asked.lyrics or "").strip()
    if need_text:
        return text(prompt, lyrics, need_text)
    text(prompt or "-", lyrics)  # both may be empty: ``text``'s lengths and tokens, its "both empty" never reached
    return prompt, lyrics


def render(asked: Asked, prompt: str, lyrics: str, takes: int, variant: models.Variant) -> tuple[Render, str]:
    """The render every music mode starts from (its call with the caption and ``lyrics`` as checked, each take's
    seed, the LoRA) and the takes' file format, checked in the one order every mode refuses in, the field a
    musician reads first refused first: the song (Cover, Extend, Edit), the caption and lyrics (``text``), a mode's
    own (Generate's Think, length and takes), then here: the declared fields of the model call
    (``parameters.to_call``: the key, metre and language, the steps, guidance, strengths …), the BPM, the language
    as sung and the lyrics' tokens in it, the format, the LoRA, the seeds."""
    sampled = parameters.to_call(asked, variant)
    sampled["bpm"] = check_musical("bpm", asked.bpm)
    language = sampled["vocal_language"] = sung_language(sampled["vocal_language"], lyrics)
    check_lyric_tokens(lyrics, language)
    fmt = parameters.PARAMS["audio_format"].check(asked.audio_format)
    adapters = check_adapters(asked)
    seeds = parameters.seeds(asked, takes)
    return Render(Call(prompt=prompt, lyrics=lyrics or INSTRUMENTAL_TAG, **sampled), seeds, adapters), fmt


# Upstream's ways of repainting (``repaint_mode``; its strength, ``parameters``'); its default is the model call's.
REPAINT_MODES = ("conservative", "balanced", "aggressive")


def check_repaint_mode(mode: Any) -> str:
    """How a region keeps to the song around it: upstream's mode (for ``balanced``, ``repaint_strength`` says
    how far)."""
    with about("repaint_mode"):
        way = Call.repaint_mode if mode is None or mode == "" else mode
        if way not in REPAINT_MODES:
            raise gr.Error(error_messages.REPAINT_MODE.format(modes=", ".join(REPAINT_MODES), got=str(mode)[:40]))
    return way


def check_unused(
    asked: Asked,
    way: str,
    said: str = "",
    ways: dict[str, str] | None = None,
    own: tuple = (),
    variant: models.Variant | None = None,
) -> None:
    """Refuse a field the ``way`` of ``asked.mode`` does not use (``parameters.USED_BY``: Edit's change, Cover's
    "morph" or "cover", Generate's "think" or "plain") sent at another value than its default (``parameters.given``;
    where the model decides it, ``variant``'s own, else the studio's model's), in words naming the field, the value
    sent, the way (``said``, else ``error_messages.UNUSED_WAY``'s, by the way or else the mode) and what would use it
    (``ways``: each way's name, for Edit's "choose …"); ``own``: fields the caller refuses in words of its own.
    Raises ``checks.InputError`` on the field."""
    variant = variant or models.active_variant()
    for name, used in parameters.USED_BY.get(asked.mode, {}).items():
        value = getattr(asked, name)
        if way in used or name in own or not parameters.given(name, value, variant):
            continue
        param = parameters.PARAMS[name]
        if param.label:  # a bad value is refused as the bad value it is, first
            param.check(value)
        users = " or ".join((ways or {}).get(w, w) for w in used)
        message = error_messages.UNUSED_FIELD.format(
            field=param.label or error_messages.FIELD_NAMES.get(name, name),
            name=name,
            given=str(value)[:80],
            way=said or error_messages.UNUSED_WAY.get(way, error_messages.UNUSED_WAY.get(asked.mode, way)),
            because=f", {error_messages.UNUSED_BECAUSE[name]}" if name in error_messages.UNUSED_BECAUSE else "",
            empty=_left_at(getattr(variant, param.model_default) if param.model_default else param.default),
            remedy=error_messages.UNUSED_REMEDY.get(way, error_messages.UNUSED_REMEDY[asked.mode]).format(ways=users),
        )
        raise InputError(message, name)


def _left_at(default: Any) -> str:
    """A field's default as a refusal says to leave it: "empty", "on", "at 0", "at auto"."""
    if default is None or default == "":
        return error_messages.LEFT_EMPTY
    if isinstance(default, bool):
        return error_messages.LEFT_ON if default else error_messages.LEFT_OFF
    return error_messages.LEFT_AT.format(value=f"{default:g}" if isinstance(default, int | float) else default)


def check_morph(morph: Any, prompt: Any, lyrics: Any, src_audio: Any = None) -> dict[str, Any]:
    """Cover's *Morph* (upstream's ``flow_edit_morph``, off by default): the song as it is now, its
    style and words (the overlay's source side), which it needs, one of them at least. Words left out
    are the source's own where it is a sung take of the studio's (``take_words``)."""
    with about("morph"):
        on = check_switch(False if morph is None else morph, "Morph")
    if not on:
        return {}
    prompt, lyrics = str(prompt or "").strip(), str(lyrics or "").strip() or take_words(src_audio)
    if not prompt and not lyrics:
        raise InputError(error_messages.MORPH_NEEDS_SOURCE_TEXT, "morph_prompt")
    with about("morph_lyrics" if len(lyrics) > MAX_LYRICS_CHARS else "morph_prompt"):
        check_text(prompt or "-", lyrics, "cover")
    check_tokens({"morph_prompt": prompt, "morph_lyrics": lyrics})
    return {"morph": True, "morph_prompt": prompt, "morph_lyrics": lyrics or INSTRUMENTAL_TAG}


def check_region(start: float, end: float, length: float) -> None:
    """Refuse (not clip: nobody chose a stretch cut short) a region past the song, saying what lies
    outside, and one that ends before it starts or is shorter than ``MIN_REGION_SECONDS``."""
    before, after = start < 0, end > length + 1e-6
    if before and after:
        words = error_messages.REGION_PAST_BOTH_ENDS
    elif before and end <= 0:
        words = error_messages.REGION_BEFORE_SONG
    elif before:
        words = error_messages.REGION_STARTS_BEFORE
    elif after and start >= length:
        words = error_messages.REGION_AFTER_SONG
    elif after:
        words = error_messages.REGION_ENDS_AFTER
    elif start >= end:
        words = error_messages.REGION_BACKWARDS
    elif end - start < MIN_REGION_SECONDS:
        words = error_messages.REGION_TOO_SHORT
    else:
        return
    told = {"start": start, "end": end, "length": length, "before": -start, "after": end - length}
    message = words.format(**told, seconds=end - start, least=MIN_REGION_SECONDS)
    raise InputError(message, "repainting_start" if before else "repainting_end")


# ---------------------------------------------------------------- the checks that ask the loaded models


def check_lyric_tokens(lyrics: str, language: str) -> None:
    """Lyrics the text encoder would cut short are refused before the queue (``check_tokens``)."""
    check_tokens({"lyrics": lyrics}, language)


def check_tokens(texts: dict[str, str], language: str = "en") -> None:
    """Words the text encoder would cut short (``text_limits``: the lyrics, a caption, the morph's) are
    refused on their field before the queue once the model is built (its tokenizer is small and runs on
    the CPU); the run checks again, with the request's own template, in any case."""
    if not any(texts.values()) or not backend.is_warm():
        return
    try:
        text_limits.check(backend.get_backend().pipe, texts, language)
    except text_limits.TooLong as exc:
        raise InputError(str(exc), exc.param) from None


def check_adapters(asked: Asked) -> tuple[dict[str, Any], ...]:
    """The adapters a request combines, in the order of its slots (``parameters.ADAPTER_SLOTS``), each as
    ``check_lora`` gives it; empty where no slot holds one. A slot's strength set (not 1) with no adapter in
    it is refused in words naming that strength (``ADAPTER_STRENGTH_ALONE``), as is the same adapter (a preset,
    or a file by its bytes) in two slots (``ADAPTER_TWICE``). Raises ``checks.InputError``."""
    made: list[dict[str, Any]] = []
    for number, slot in enumerate(parameters.ADAPTER_SLOTS, 1):
        file, strength, preset = slot
        adapter = check_lora(getattr(asked, file), getattr(asked, strength), getattr(asked, preset), slot)
        if adapter is None:  # its strength checked by ``check_lora``: a number in range, however it was sent
            declared, value = parameters.PARAMS[strength], getattr(asked, strength)
            if parameters.given(strength, value):
                told = error_messages.ADAPTER_STRENGTH_ALONE.format(label=declared.label, value=float(value))
                raise InputError(told, strength)
            continue
        for earlier, before in enumerate(made, 1):
            # The same adapter uploaded twice lands at two paths: the bytes compared, up to the first that differs.
            if before["path"] == adapter["path"] or filecmp.cmp(before["path"], adapter["path"], shallow=False):
                field = preset if adapter.get("preset") else file
                told = error_messages.ADAPTER_TWICE.format(name=shown(adapter["name"]), first=earlier, second=number)
                raise InputError(told, field)
        made.append(adapter)
    return tuple(made)


def check_lora(
    path: Any, scale: Any, preset: Any = None, slot: tuple[str, str, str] = parameters.ADAPTER_SLOTS[0]
) -> dict[str, Any] | None:
    """``{"path", "scale", "alpha", "kind", "name"}`` for an uploaded adapter file (a LoRA or a LoKr:
    ``kind``) or a preset (plus ``preset`` and ``repo``), or None when there is neither. ``slot`` names
    the fields (file, strength, preset) a refusal names: the first adapter's unless told.

    The file itself is always checked, from its header and once per file (``lora.check_file``);
    whether it fits the model is checked here once the model is loaded, and in any case again
    inside the run. A preset is a cached Hub file going through the same checks.
    """
    file, strength, preset_field = slot
    # Checked with or without a file: a strength typed out of range is a slip the page must name too.
    weight = parameters.PARAMS[strength].check(scale)
    why = audio.unseen(path, error_messages.ADAPTER_FILE)  # a URL, a path that is no upload: never opened
    if why is not None:
        raise InputError(why, file)
    chosen = _preset(preset, preset_field)
    uploaded = path is not None and str(path).strip() != ""
    if chosen and uploaded:
        raise InputError(error_messages.LORA_BOTH, preset_field)
    if not chosen and not uploaded:
        return None
    extra: dict[str, Any] = {"alpha": 1.0}  # a preset's PEFT alpha / rank (``lora_presets.alpha_ratio``)
    if chosen:
        with about(preset_field):
            try:
                found, path = lora_presets.resolve(chosen, models.active_variant().name)
            except lora_presets.UnknownPreset as exc:
                raise gr.Error(str(exc)) from None
        extra = {"preset": found.name, "repo": found.repo, "alpha": lora_presets.alpha_ratio(found)}
    with about(preset_field if chosen else file):
        # The admission check reads the header only (``headers``); the run reads the whole file.
        if backend.is_warm():
            # Cheap once the model is in memory, and it saves the visitor a GPU call for a misfit.
            backend.get_backend().check_lora(str(path), whole=not headers.reading())
        else:
            lora.check_file(str(path), whole=not headers.reading())
        kind = lora.adapter_kind(str(path))
    return _measured({"path": str(path), "scale": weight, "name": Path(str(path)).name, "kind": kind, **extra})


def _measured(adapter: dict[str, Any]) -> dict[str, Any]:
    """``adapter`` with the layers it changes of those it names (``layers``: ``(changed, named)``, from its header
    against the loaded model, ``lora.layers_changed``), where the model is loaded and they are not said yet."""
    if "layers" in adapter or not backend.is_warm():
        return adapter
    loaded = backend.get_backend()
    return {**adapter, "layers": tuple(lora.layers_changed(adapter["path"], loaded.layer_sizes, loaded.variant.label))}


def adapters_measured(job: Job) -> Job:
    """``job`` with each adapter's layers said (``_measured``): a job prepared before the model was loaded
    (the first request's) gets them once its run has loaded it, for its record."""
    render = job.request.render
    measured = tuple(_measured(adapter) for adapter in render.adapters)
    if measured == render.adapters:
        return job
    request = dataclasses.replace(job.request, render=dataclasses.replace(render, adapters=measured))
    return dataclasses.replace(job, request=request)


def _preset(value: Any, field: str = "lora_preset") -> str | None:
    """A preset name as sent in ``field`` (None, "" and "none" mean no preset)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(error_messages.LORA_PRESET_NAME.format(value=shown(value)), field)
    name = value.strip()
    return None if name.lower() in ("", "none") else name


def thinks(value: Any) -> bool:
    """Whether the planner would run for Think's switch as sent, refusing nothing (what a request costs
    is read from this; ``check_think`` refuses at admission): ``None`` means "when one is set up"."""
    return planner.enabled() and (value is None or bool(value))


def check_think(value: Any) -> bool:
    """Whether the planner runs: ``None`` means "when one is set up"."""
    if value is None:
        return thinks(value)
    if check_switch(value) and not planner.enabled():
        raise gr.Error(error_messages.THINK_UNAVAILABLE)
    return check_switch(value)
