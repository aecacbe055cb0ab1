"""The morph of a take (*Morph this take* under Generate's result, ``/morph``): upstream ACE-Step's flow
edit on text2music (PRs #1156 and #1169, merged as 8b0d17d), the take's own song moved toward a new
caption and lyrics, its structure kept.

The song is a take the studio made in Generate (or a morph of one) for this visitor, found by the
result's record and read from its own files: its final latents (``take_latents``, bound to its file by
hash; where they are gone or the file changed, the VAE reads the file, with one log line) are where the
morph starts, and at every step the song noised to that step is given to the DiT twice, described as it
was made (its caption and lyrics as the model read them: Think's caption where Think rewrote it, and
Think's BPM, key and metre where the visitor left them to it; ``heard``) and as it should become (the
new caption and lyrics); the song moves by the difference (``flow_edit.run``). As upstream's text2music
overlay does (``service_generate_flow_edit.py``, ``inference.py``): both sides on a silence context
(``sampler``), no blueprint codes and no Think (codes decoded to latents start the edit off the VAE's
distribution), guidance 1.0 on turbo models (distilled), DCW off inside, the length the song's own.
The record says what ran, and only that (as a Cover morph's, ``job_record.of``): the take it came
from, both descriptions, the steps and the guidance applied; no DCW, which a morph never runs, and no
cover strength or start. The morph keeps its own latents, so it can be edited or morphed again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gradio as gr

import audio
import backend
import checks
import error_messages
import models
import output_folder
import parameters
import preparing
import records
import take_owners
from checks import INSTRUMENTAL_TAG, InputError, about
from music_request import Call, Job, MusicRequest, Notes, Render

# The records a take's morph starts from: Generate's takes, and morphs of them.
MORPHABLE = ("generate", "morph")


def prepare(
    take: Any = 1,
    record: Any = None,
    prompt: str | None = None,
    lyrics: str | None = None,
    seed: int = -1,
    inference_steps: int | None = None,
    guidance_scale: float | None = None,
    vocal_language: str | None = None,
    reference_audio: str | None = None,
    request: Any = None,
) -> Job:
    """Take number ``take`` of ``record`` (a Generate result's metadata, or a take's own ``.json``) moved
    toward the caption ``prompt`` and the ``lyrics`` (at least one of them new; one left out, None, is the
    take's, as ``fields_of_take`` fills them), from its own song (upstream's text2music flow edit).
    ``inference_steps``, ``guidance_scale`` and ``vocal_language`` left out are the take's; ``seed`` draws
    the noise each step adds (-1: random). A take made with a timbre reference needs that file again
    (``reference_audio``). Returns a job of mode ``morph``; ``InputError`` names the field at fault."""
    path, take_record = _the_take(take, record, request)
    how_made = records.Record.of(take_record)
    this_take = how_made.this_take  # the take its record was written for (``_the_take``: one with a seed)
    variant, as_heard = models.active_variant(), heard(how_made, take_record)
    with about("record"):
        values = records.settings(take_record, 1)  # every setting checked as the form checks it
    caption, lyrics_as_made = _as_typed(as_heard)
    new_prompt, new_lyrics = preparing.text(
        caption if prompt is None else prompt, lyrics_as_made if lyrics is None else lyrics, "morph"
    )
    if (new_prompt, new_lyrics or INSTRUMENTAL_TAG) == (as_heard["prompt"], as_heard["lyrics"]):
        raise InputError(error_messages.MORPH_SAME, "prompt")
    language = parameters.PARAMS["vocal_language"].check(vocal_language or values["vocal_language"])
    language = checks.sung_language(language, new_lyrics)
    # The new lyrics and the take's, where the text encoder would cut them short (the take's were read
    # when it was made, but a caption Think rewrote was never counted).
    try:
        preparing.check_tokens({"morph_prompt": as_heard["prompt"], "morph_lyrics": as_heard["lyrics"]}, language)
    except InputError as exc:  # the take's, not a field of the row's
        raise InputError(exc.message, "record") from None
    preparing.check_tokens({"lyrics": new_lyrics}, language)
    asked = {"inference_steps": inference_steps, "guidance_scale": guidance_scale, "shift": None}
    # The row's steps and guidance, the take's where left out, each checked by its declaration.
    steps, guidance, shift = (
        parameters.PARAMS[k].check(values[k] if v is None else v, variant) for k, v in asked.items()
    )
    applied = 1.0 if variant.turbo else guidance  # upstream forces a turbo model's morph to 1.0 (distilled)
    seeds = checks.seeds_for(parameters.check_seed(seed), 1)
    adapters = _adapters(values)
    reference = _reference(how_made, reference_audio, this_take.seed)
    finishing = parameters.finish(parameters.Asked("generate", values))  # the take's, as the form checks it
    music = {k: as_heard[k] for k in ("bpm", "keyscale", "timesignature")}
    pipeline = {"prompt": new_prompt, "lyrics": new_lyrics or INSTRUMENTAL_TAG, "vocal_language": language}
    pipeline |= {"num_inference_steps": steps, "guidance_scale": applied, "shift": shift, "dcw": False, **music}
    pipeline |= {"task_type": "text2music", "reference_audio": reference, "morph": True}
    pipeline |= {"morph_prompt": as_heard["prompt"], "morph_lyrics": as_heard["lyrics"]}
    notes = Notes(
        reference_audio=Path(str(reference_audio)).name if reference is not None else None,
        morph_of={"take": this_take.number, "audio": this_take.audio, "seed": this_take.seed},
    )
    request = MusicRequest("morph", Render(Call(**pipeline), seeds, adapters), 0.0, values["audio_format"], notes=notes)
    return _song_in(path, request, finishing)


def _song_in(path: Path, request: MusicRequest, finishing: Any) -> Job:
    """The job with the take's song in it: its own latents where they are this very file's, else its
    samples for the VAE (``preparing.from_take_latents`` says which in the record); as long as the take."""
    request = preparing.from_take_latents(path, request)
    render = request.render
    # Before the model is built their width is the run's to check: the song goes too, for the VAE.
    if render.pipeline.src_latents is not None and backend.latent_width() is not None:
        n = audio.probe(path, "take").frames
    else:
        song = preparing.source(path, "take", "record")
        n = song.shape[-1]
        render = render.with_pipeline(src_audio=preparing.model_input(song))
    # The model is told the song's own length, as upstream locks a morph's to its source.
    render = render.with_pipeline(audio_duration=n / audio.SAMPLE_RATE)
    request = dataclasses.replace(request, render=render, seconds=round(n / audio.SAMPLE_RATE, 3))
    return Job(request, lambda take: audio.fit(take, n), finishing)


def heard(how_made: records.Record, entry: records.Take | dict[str, Any]) -> dict[str, Any]:
    """What the model was told when it made a take (its record, ``Record.told``, and the take's entry): the
    caption (Think's where Think rewrote it), the lyrics as the pipeline took them, and BPM, key and
    metre as the pipeline takes them (Think's where the visitor left them to it)."""
    told = how_made.told(entry)
    caption, lyrics = told.caption, told.lyrics
    if caption is None or lyrics is None:
        raise InputError(error_messages.MORPH_UNREADABLE, "record")
    try:
        music = preparing.musical(told.bpm, told.key_scale, told.time_signature)
    except gr.Error as exc:
        raise InputError(error_messages.MORPH_UNREADABLE_BECAUSE.format(why=exc.message), "record") from None
    return {"prompt": caption.strip(), "lyrics": lyrics.strip() or INSTRUMENTAL_TAG, **music}


def fields_of_take(take: Any = 1, record: Any = None) -> tuple[Any, Any, Any]:
    """The row's caption, lyrics and steps filled with the chosen take's, as the model read them
    (what a morph changes from); left as they are where the result holds no take of Generate's."""
    how_made = records.Record.of(record)
    if not how_made.takes or how_made.mode not in MORPHABLE:
        return gr.skip(), gr.skip(), gr.skip()
    try:
        records.check(record)
        as_heard = heard(how_made, records.chosen(record, take, error_messages.MORPH_NO_TAKE))
    except gr.Error:
        return gr.skip(), gr.skip(), gr.skip()
    return *_as_typed(as_heard), gr.skip() if how_made.steps is None else how_made.steps


def _as_typed(as_heard: dict[str, Any]) -> tuple[str, str]:
    """A take's caption and lyrics as a visitor types them (``heard``'s; no lyrics: empty, not the tag)."""
    return as_heard["prompt"], "" if as_heard["lyrics"] == INSTRUMENTAL_TAG else as_heard["lyrics"]


def _the_take(take: Any, record: Any, request: Any) -> tuple[Path, dict[str, Any]]:
    """The take's file and its record as the studio wrote it: a take of a result (or a take's
    own ``.json``) this visitor's page made, still kept, made in Generate or by a morph."""
    if not records.Record.of(record).takes:
        raise InputError(error_messages.MORPH_NO_TAKE, "record")
    with about("record"):
        records.check(record)
    with about("take"):
        chosen = records.take_of(record, take)  # a take's own .json: the take it holds
    relative, index = chosen.audio, chosen.number - 1
    path = output_folder.studio_take_audio(relative) if isinstance(relative, str) else None
    # Another visitor's take gets the same message as one that is gone: nothing tells which it was.
    if path is None or not take_owners.made_by(request, relative):
        raise InputError(error_messages.TAKE_GONE.format(n=index + 1), "record")
    try:
        take_record = records.check(records.read(path.with_suffix(".json")))
    except gr.Error:
        raise InputError(error_messages.TAKE_GONE.format(n=index + 1), "record") from None
    how_made = records.Record.of(take_record)
    if how_made.mode not in MORPHABLE:
        raise InputError(error_messages.MORPH_NOT_GENERATE, "record")
    if how_made.this_take is None or how_made.this_take.seed is None:
        raise InputError(error_messages.MORPH_UNREADABLE, "record")
    return path, take_record


def _adapters(values: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The take's adapters (presets this studio offers), slot by slot; an adapter file, which a record cannot
    carry, refused."""
    files = values["files"]
    if missing := {k: v for k, v in files.items() if k in records.ADAPTER_NAMES}:
        raise InputError(error_messages.MORPH_LORA.format(note=records.files_brought_back(missing)), "record")
    return preparing.check_adapters(parameters.Asked("generate", values))


def _reference(how_made: records.Record, given: Any, seed: int) -> Any:
    """The take's timbre reference, given again (a record names it, it cannot carry it), read as the
    take read it; None for a take made without one."""
    wanted = how_made.files.get("reference_audio")
    if not wanted:
        return None
    name = Path(str(wanted)).name
    if not given:
        raise InputError(error_messages.MORPH_REFERENCE.format(name=records.quoted_safely(name)), "reference_audio")
    if Path(str(given)).name != name:
        raise InputError(error_messages.MORPH_REFERENCE.format(name=records.quoted_safely(name)), "reference_audio")
    return preparing.reference(given, seed)
