"""Variations of a take (*Variations* under Generate's result, ``/variations``), as upstream's retake.

A variation keeps everything the take's record holds (caption, lyrics, length, the musical fields,
sampling, finish, its seed, and its plan with its place in its batch, so Think writes the same
blueprint again) and starts from the take's noise mixed with new noise by ``amount`` (upstream's
``retake_variance``: 0 is the take itself, 1 all new noise; ``retake`` mixes on the GPU side). The
new noise comes from the variation's own seed (``seed``, one more per variation), so the same press
with the same seed makes the same variations, and each variation's record says what it came from,
by how much and from which seed (``of``, ``amount``, ``seed``) and keeps its whole noise (``noise``:
the ``[seed, amount]`` mixes since the take's seed), so a variation of a variation is exact too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import checks
import modes
import records

AMOUNT_RANGE = (0.0, 1.0)
# Variations of variations: a take's record keeps at most this many mixes (each costs one more draw).
LONGEST_CHAIN = 16
DEFAULT_AMOUNT = 0.3
DEFAULT_COUNT = 2


def prepare(
    take: Any = 1, record: Any = None, amount: Any = DEFAULT_AMOUNT, count: Any = DEFAULT_COUNT, seed: Any = -1
) -> modes.Job:
    """``count`` variations (1–4) of take number ``take`` of ``record`` (the metadata a music endpoint
    returned), each its noise mixed with new noise by ``amount`` (0–1); ``seed`` is the first
    variation's new noise (-1: random), the next ones count on from it. Returns like a Generate job."""
    entry, index = _take(record, take)
    values = records.settings(record, take)
    if values["files"]:
        raise checks.InputError(
            f"{records.files_note(values['files']).replace('Settings brought back. ', '')} Variations are "
            "made from a take's record alone: make it in Generate with the file instead.",
            "record",
        )
    with checks.about("amount"):
        mixed = checks.in_range(amount, "Amount", *AMOUNT_RANGE)
    with checks.about("count"):
        n = checks.in_range(DEFAULT_COUNT if count is None else count, "How many", 1, checks.MAX_TAKES)
        if n != int(n):
            raise checks.InputError(f"How many must be a whole number from 1 to {checks.MAX_TAKES}.", "count")
        n = int(n)
    with checks.about("seed"):
        fresh = checks.seeds_for(seed, n)
    chain = _chain(entry.get("noise"))
    if mixed > 0 and len(chain) >= LONGEST_CHAIN:
        raise checks.InputError(
            f"This take is already a variation {LONGEST_CHAIN} times over; make variations of an earlier one.",
            "record",
        )
    job = _remade(values)
    seeds = job.seeds * n
    params = {
        **job.params,
        "batch_size": n,
        "variation": {
            "of": {"take": index + 1, "seed": job.seeds[0], "audio": entry.get("audio")},
            "amount": mixed,
            "seeds": fresh,
            "noise": [list(step) for step in chain],
        },
    }
    noise = [chain + ([(s, mixed)] if mixed > 0 else []) for s in fresh]
    return dataclasses.replace(job, params=params, request={**job.request, "seeds": seeds, "noise": noise}, seeds=seeds)


def entries(job: modes.Job) -> list[dict[str, Any]]:
    """What each variation's own record adds: where it came from, by how much, its seed, its noise."""
    made = job.params["variation"]
    return [
        {
            "variation": {"of": made["of"], "amount": made["amount"], "seed": seed},
            "noise": [list(step) for step in noise],
        }
        for seed, noise in zip(made["seeds"], job.request["noise"], strict=True)
    ]


def _take(record: Any, take: Any) -> tuple[dict[str, Any], int]:
    made = record.get("takes") if isinstance(record, dict) else None
    if not isinstance(made, list) or not made:
        raise checks.InputError("There is no take yet: make one first, then its variations.", "record")
    if record.get("mode") != "generate":
        raise checks.InputError(
            "Variations are made of Generate's takes. For this one, press its own button again with another seed.",
            "record",
        )
    with checks.about("take"):
        index = records.take_index(take, len(made))
    entry = made[index]
    if not isinstance(entry, dict):
        raise checks.InputError(f"This record's take {index + 1} is not a take's entry.", "record")
    return entry, index


def _chain(value: Any) -> list[tuple[int, float]]:
    """A take's ``noise`` from its record, every mix checked: a seed and an amount from 0 to 1."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > LONGEST_CHAIN:
        raise checks.InputError(
            f"This record's noise ({checks.shown(value)}) cannot be used: it lists at most {LONGEST_CHAIN} "
            "[seed, amount] pairs.",
            "record",
        )
    chain = []
    for step in value:
        try:
            seed, amount = step
            chain.append((checks.check_seed(seed), checks.in_range(amount, "Amount", *AMOUNT_RANGE)))
        except (TypeError, ValueError, checks.gr.Error):
            raise checks.InputError(
                f"This record's noise has a step ({checks.shown(step)}) that is not a [seed, amount] pair.", "record"
            ) from None
        if chain[-1][0] < 0:
            raise checks.InputError(f"This record's noise has a step with no seed ({checks.shown(step)}).", "record")
    return chain


def _remade(values: dict[str, Any]) -> modes.Job:
    """The take made again, alone, from its record's values (``records.settings``): its seed, its plan
    in its place, its length as it came out (Think's choice kept)."""
    return modes.prepare_generate(
        prompt=values["prompt"],
        lyrics=values["lyrics"],
        audio_duration=values["duration"],
        bpm=values["bpm"],
        key_scale=values["key"],
        time_signature=values["time_signature"],
        vocal_language=values["language"],
        seed=values["seed"],
        inference_steps=values["steps"],
        guidance_scale=values["guidance"],
        shift=values["shift"],
        batch_size=1,
        audio_format=values["format"],
        think=values["think"],
        auto_length=False,
        rewrite_caption=values["rewrite_caption"],
        plan=values["plan"],
        loudness=values["loudness"],
        fade_in=values["fade_in"],
        fade_out=values["fade_out"],
        lora_preset=values["lora_preset"] or None,
        lora_scale=values["lora_scale"],
    )
