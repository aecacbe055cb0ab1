"""Variations of a take (*Variations* under every result, ``/variations``), as upstream's retake.

A variation keeps everything the take's record holds (caption, lyrics, length, the musical fields,
sampling, finish, its seed, and its plan with its place in its batch, so Think writes the same
blueprint again) and starts from the take's noise mixed with new noise by ``amount`` (upstream's
``retake_variance``: 0 is the take itself, 1 all new noise; ``retake`` mixes on the GPU side). The
new noise comes from the variation's own seed (``seed``, one more per variation), so the same request
with the same seed makes the same variations, and each variation's record says what it came from,
by how much and from which seed (``of``, ``amount``, ``seed``) and keeps its whole noise (``noise``:
the ``[seed, amount]`` mixes since the take's seed), so a variation of a variation is exact too.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import checks
import error_messages
import modes
import parameters
import records
from music_request import Variation

AMOUNT_RANGE = (0.0, 1.0)
# Variations of variations: a take's record keeps at most this many mixes (each costs one more draw).
LONGEST_CHAIN = 16
DEFAULT_AMOUNT = 0.3
DEFAULT_COUNT = 2


def prepare(
    take: Any = 1,
    record: Any = None,
    amount: Any = DEFAULT_AMOUNT,
    count: Any = DEFAULT_COUNT,
    seed: Any = -1,
    src_audio: str | None = None,
    reference_audio: str | None = None,
) -> modes.Job:
    """``count`` variations (1–4) of take number ``take`` of ``record`` (the metadata a music endpoint
    returned), each its noise mixed with new noise by ``amount`` (0–1); ``seed`` is the first
    variation's new noise (-1: random), the next ones count on from it. A record names the files it
    was made with but cannot carry them: a cover, extension or edit needs its song again
    (``src_audio``), a take made with a timbre reference that file (``reference_audio``), each the file
    of the name the record gives. Returns a job of the take's own mode."""
    chosen = _take(record, take)
    with checks.about("amount"):
        mixed = checks.in_range(amount, "Amount", *AMOUNT_RANGE)
    with checks.about("count"):
        n = checks.in_range(DEFAULT_COUNT if count is None else count, "How many", 1, checks.MAX_TAKES)
        if n != int(n):
            raise checks.InputError(error_messages.VARIATIONS_COUNT.format(most=checks.MAX_TAKES), "count")
        n = int(n)
    fresh = checks.seeds_for(parameters.check_seed(seed), n)
    chain = _chain(chosen.noise)
    if mixed > 0 and len(chain) >= LONGEST_CHAIN:
        raise checks.InputError(error_messages.VARIATIONS_TOO_DEEP.format(most=LONGEST_CHAIN), "record")
    how_made = records.Record.of(record)
    files = _files(how_made, src_audio, reference_audio)
    if how_made.mode == "generate":
        job = _remade(record, take, files.get("reference_audio"), voice_of(how_made, files))
    else:
        job = _remade_audio(how_made, chosen, files)
    seeds = job.seeds * n
    audio = chosen.audio
    audio = audio if audio is not None and len(audio) <= 200 and audio.isprintable() else None
    noise = [chain + ([(s, mixed)] if mixed > 0 else []) for s in fresh]
    render = dataclasses.replace(job.request.render, seeds=seeds, noise=noise)
    varied = Variation(chosen.number, job.seeds[0], audio, mixed, tuple(fresh))
    request = dataclasses.replace(job.request, render=render).with_notes(variation=varied)
    return dataclasses.replace(job, request=request)


def _take(record: Any, take: Any) -> records.Take:
    if not records.Record.of(record).takes:
        raise checks.InputError(error_messages.VARIATIONS_NO_TAKE, "record")
    records.check(record)
    mode = records.Record.of(record).mode
    if mode == "morph":  # ``take_morph``: its song's, not a noise of its own
        raise checks.InputError(error_messages.VARIATIONS_OF_A_MORPH, "record")
    if not isinstance(mode, str) or mode not in modes.PREPARE:
        raise checks.InputError(error_messages.RECORD_MODE_UNKNOWN.format(given=checks.shown(mode)), "record")
    with checks.about("take"):
        chosen = records.take_of(record, take)  # a take's own .json: the take it holds
    if chosen.seed is None or not 0 <= chosen.seed <= checks.MAX_SEED:
        raise checks.InputError(error_messages.RECORD_TAKE_NO_SEED.format(n=chosen.number), "record")
    return chosen


def _files(how_made: records.Record, src_audio: Any, reference_audio: Any) -> dict[str, Any]:
    """The files the take was made with, given again: each the one its record names, by name."""
    for file, _, preset in parameters.ADAPTER_SLOTS:  # an uploaded adapter is not kept, in any slot
        if (lora := how_made.files.get(file)) and not how_made.files.get(preset):
            raise checks.InputError(
                error_messages.VARIATIONS_LORA_FILE.format(name=checks.shown(Path(str(lora)).name)), "record"
            )
    given = {}
    for name, path, what in (
        ("src_audio", src_audio, "song"),
        ("reference_audio", reference_audio, "timbre reference"),
    ):
        wanted = how_made.files.get(name)
        # A take's voice needs no file again: it is resolved again from that take (``voice``).
        if not wanted or (name == "reference_audio" and not path and voice_of(how_made, {})):
            continue
        if not path:
            raise checks.InputError(
                error_messages.VARIATIONS_FILE_MISSING.format(what=what, name=checks.shown(str(wanted))), name
            )
        if Path(str(path)).name != Path(str(wanted)).name:
            raise checks.InputError(
                error_messages.VARIATIONS_FILE_OTHER.format(
                    what=what, name=checks.shown(str(wanted)), given=checks.shown(Path(str(path)).name)
                ),
                name,
            )
        given[name] = path
    return given


def _chain(value: Any) -> list[tuple[int, float]]:
    """A take's ``noise`` from its record, every mix checked: a seed and an amount from 0 to 1."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > LONGEST_CHAIN:
        raise checks.InputError(
            error_messages.NOISE_TOO_LONG.format(given=checks.shown(value), most=LONGEST_CHAIN), "record"
        )
    chain = []
    for step in value:
        try:
            seed, amount = step
            chain.append((parameters.check_seed(seed), checks.in_range(amount, "Amount", *AMOUNT_RANGE)))
        except (TypeError, ValueError, checks.gr.Error):
            raise checks.InputError(error_messages.NOISE_NOT_PAIR.format(given=checks.shown(step)), "record") from None
        if chain[-1][0] < 0:
            raise checks.InputError(error_messages.NOISE_NO_SEED.format(given=checks.shown(step)), "record")
    return chain


def voice_of(how_made: records.Record, files: dict[str, Any]) -> str | None:
    """The take whose voice a Generate take was made with (its record's ``voice``), unless the variation is
    given the reference file itself."""
    lent = how_made.voice.get("take")
    return None if files.get("reference_audio") or not isinstance(lent, str) else lent


def _remade(record: dict[str, Any], take: Any, reference: str | None = None, voice: str | None = None) -> modes.Job:
    """A Generate take made again, alone, from its record (``records.settings``, every value checked as
    the form checks it): its seed, its plan in its place, its length as it came out (Think's choice), and
    the voice it was lent (``voice``: that take, resolved again)."""
    values = records.settings(record, take)
    if not values["plan"]:  # its plan was skipped (or Think was off): it was rendered without a blueprint
        values["think"] = False
    missing = {k: v for k, v in values["files"].items() if k in records.ADAPTER_PRESETS}
    if missing:
        raise checks.InputError(records.files_note(missing), "record")
    fields = {name: values[name] for name in records.FIELDS if name != "instrumental"}
    return modes.prepare_generate(**fields, reference_audio=reference, reference_take=voice)


def _remade_audio(how_made: records.Record, chosen: records.Take, files: dict[str, Any]) -> modes.Job:
    """A Cover, Extend or Edit take made again from its record: its song and reference given again,
    every other setting the record's, checked by the mode's own preparer, and the take's seed."""
    prepare = modes.PREPARE[how_made.mode]
    given = {"src_audio", "reference_audio", "seed", *(file for file, _, _ in parameters.ADAPTER_SLOTS)}
    names = set(inspect.signature(prepare).parameters) - given
    return prepare(**how_made.asked(names), **files, seed=chosen.seed)
