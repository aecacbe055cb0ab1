"""A visitor's daily ZeroGPU quota as the studio meets it: what a press will reserve, and ZeroGPU's
refusals in the studio's words.

Before a call starts, ZeroGPU compares its declared duration with the visitor's remaining daily quota
(Hugging Face's ZeroGPU docs: 2 minutes a day for a visitor who is not signed in, 5 signed in, more
with PRO) and refuses a declaration larger than what is left, even where the work would fit; each kind
of account also has a largest duration one call may declare. ``reserves`` is the line beside a GPU
button: the estimate the call declares (the pace room's answer, ``pace``, through each feature's
``estimate_duration``) counted as ZeroGPU counts it (``charged``), from the fields as the page holds
them: arithmetic only (a song's length from its header), no GPU and no queue; where that is more than
a visitor who is not signed in gets in a day (``FREE_DAY``), the line says so and what fits in it.
``in_words`` turns either refusal, which ``spaces`` raises in its own words, into what happened, when
the quota comes back, that signing in gives more, and what would fit now.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import gradio as gr

import audio
import budget
import describe
import devices
import lyrics
import modes
import pace
import preparing
import songwriter
import stems
import take_morph
import tooltips as tips
import variations

# The titles ``spaces`` gives its two refusals (``spaces.zero.client.schedule``), and its figures.
QUOTA_TITLE = "ZeroGPU quota exceeded"
TOO_LONG_TITLE = "ZeroGPU illegal duration"
_ASKED_LEFT = re.compile(r"\((\d+)s requested vs\. (\d+)s left\)")
_BACK_IN = re.compile(r"Try again in ((?:\d+ days?, )?\d+:\d{2}:\d{2})")
_ASKED = re.compile(r"duration \((\d+)s\)")
# A visitor who is not signed in gets 2 minutes of ZeroGPU time a day (Hugging Face's ZeroGPU docs),
# counted against what a call declares times ZeroGPU's duration factor (``charged``).
FREE_DAY = 120

# The fields each estimate reads (as the preparers, the lyrics writer and the buttons' events name them).
MUSIC_READS = frozenset(
    ("audio_duration", "inference_steps", "guidance_scale", "batch_size", "lyrics", "reference_audio", "think")
    + ("auto_length", "plan", "src_audio", "extend_seconds", "change", "morph")
)
READS = {
    "lyrics": frozenset(("structure", "length")),
    "describe": frozenset(("src_audio",)),
    "stems": frozenset(("take", "record")),
    "write_song": frozenset(),  # the same for every idea: the bounds'
    "variations": frozenset(("take", "record", "count")),
    "morph": frozenset(("take", "record", "lyrics")),
}


def reads(mode: str) -> frozenset[str]:
    """The fields ``mode``'s estimate reads: a change to any of them changes the line."""
    return READS.get(mode, MUSIC_READS)


# What a refused request could change to fit what is left: given the seconds left, the ways in words.
Ways = Callable[[int], list[str]]


# What ZeroGPU counts of a declaration, by the size a call runs at (``spaces`` 0.51.3): on a slice of its
# card (``large``, the default) the declaration times the card's ``duration_factor`` (``spaces/zero/
# configs.json``: 1.5 on the RTX Pro 6000, 1.0 on an H200); on a whole card (``xlarge``, every call of a
# Space that packs more than the card's ``xlarge_threshold``: ``offload.PACKED_GIB``) twice the
# declaration (``spaces.zero.client``: no factor, "requested *= 2"). Without ``spaces``, the card
# ZeroGPU runs today (Hugging Face's ZeroGPU docs): the RTX Pro 6000's published factor.
PUBLISHED_CARD, PUBLISHED_FACTOR = "NVIDIA RTX PRO 6000 Blackwell Server Edition", 1.5
WHOLE_CARD_FACTOR = 2.0


def charge_factor() -> float:
    """The factor ``spaces`` applies to a declaration here: its card's configuration and the size in
    force (``spaces.zero.default_gpu_size``: ``xlarge`` once start-up packed more than the threshold)."""
    try:
        from spaces.zero import default_gpu_size
        from spaces.zero.config import get_config
    except ImportError:
        return PUBLISHED_FACTOR
    return WHOLE_CARD_FACTOR if default_gpu_size() == "xlarge" else float(get_config()["duration_factor"])


def charged(declared: int) -> int:
    """The seconds ZeroGPU counts against the quota for a call declaring ``declared`` (``charge_factor``)."""
    if not devices.on_zero_gpu():
        return int(declared)
    return round(int(declared) * charge_factor())


def music_params(mode: str, fields: dict[str, Any]) -> dict[str, Any]:
    """What the estimate reads of a music request, from its tab's fields as the page holds them
    (named as the preparers name them); a field that cannot say yet raises ``ValueError`` (or
    ``audio.AudioError``: no song uploaded). As the preparers and the door set them: Think only where
    the planner is there, Think's longest song within the budget here, the song's length from its header."""
    steps, guidance = float(fields.get("inference_steps") or 0), float(fields.get("guidance_scale") or 0)
    params = {
        "inference_steps": int(steps) or None,
        "guidance_scale": guidance or None,
        "batch_size": max(1, int(float(fields.get("batch_size") or 1))),
        "lyrics": str(fields.get("lyrics") or ""),
        "reference_audio": fields.get("reference_audio") or None,
    }
    if mode == "generate":
        params["think"] = preparing.thinks(fields.get("think"))
        auto = params["think"] and bool(fields.get("auto_length")) and not str(fields.get("plan") or "").strip()
        params["audio_duration"] = -1 if auto else float(fields.get("audio_duration"))
        if auto:
            params["longest"] = budget.longest(mode, params) or int(audio.MAX_SECONDS)
        return params
    # Edit's part runs on the XL base (guided, its own build) and a morph twice the passes: both declare more.
    if mode == "edit":
        params["change"] = str(
            fields.get("change") or inspect.signature(modes.prepare_edit).parameters["change"].default
        )
    if mode == "cover":
        params["morph"] = bool(fields.get("morph"))
    header = audio.probe(fields.get("src_audio"))
    added = float(fields.get("extend_seconds") or 0) if mode == "extend" else 0.0
    params.update(audio_duration=header.frames / header.rate + added, extend_seconds=added, batch_size=1)
    return params


def declares(mode: str, fields: dict[str, Any]) -> int:
    """Seconds a press of ``mode``'s button declares with ``fields``: a music mode, ``lyrics``,
    ``describe`` (the song's length from its header), ``write_song`` or ``stems`` (the take's length in its record)."""
    if mode == "lyrics":
        return lyrics.estimate_duration(fields)
    if mode == "describe":
        header = audio.probe(fields.get("src_audio"))
        return describe.estimate_duration(header.frames / header.rate)
    if mode == "write_song":
        return songwriter.estimate_duration()
    if mode == "stems":
        take = fields["record"]["takes"][int(fields["take"]) - 1]
        return stems.estimate_duration(float(take["seconds"]))
    if mode == "morph":  # the take's length and steps (its record's), two descriptions a step
        try:
            return pace.music_duration(
                "morph", take_morph.estimate(fields.get("take"), fields.get("record"), fields.get("lyrics"))
            )
        except gr.Error as exc:
            raise ValueError(exc.message) from None
    if mode == "variations":  # as the take's own mode declares its settings, as many takes as asked for
        record = fields.get("record")
        if isinstance(record, dict) and record.get("mode") in ("cover", "extend", "edit"):
            count = max(1, int(float(fields.get("count") or 1)))  # the song's length is in the record
            return pace.music_duration(record["mode"], {**record["params"], "batch_size": count})
        try:
            job = variations.prepare(fields.get("take"), record, 0, fields.get("count"))
        except gr.Error as exc:
            raise ValueError(exc.message) from None
        return pace.music_duration(job.mode, job.params)
    return pace.music_duration(mode, music_params(mode, fields))


def reserves_line(mode: str, fields: dict[str, Any]) -> str:
    """The line beside a GPU button on a Space: what the press reserves, or what it waits for; past a
    not-signed-in visitor's day, that too, and for a song what fits in that day (``budget``'s words)."""
    try:
        seconds = charged(declares(mode, fields))
    except (ValueError, TypeError, OverflowError, KeyError, IndexError, audio.AudioError):
        return tips.RESERVES_NOT_YET
    line = tips.RESERVES.format(time=audio.clock(seconds))
    if seconds <= FREE_DAY:
        return line
    line += tips.RESERVES_OVER_DAY.format(day=audio.clock(FREE_DAY))
    if mode in ("generate", "cover", "extend", "edit"):
        ways = music_ways(mode, music_params(mode, fields))(FREE_DAY)
        line += tips.RESERVES_FITS_DAY.format(ways=_joined(ways)) if ways else ""
    return line


def music_ways(mode: str, params: dict[str, Any]) -> Ways:
    """For a prepared music request: what of it would fit in ``left`` seconds of the quota."""

    def ways(left: int) -> list[str]:
        return budget.ways_within(mode, params, most_declared(left))

    return ways


def most_declared(left: int) -> int:
    """The most seconds a call may declare for ZeroGPU to charge at most ``left`` (``charged`` grows
    with what is declared, and no call declares more than ``devices.GPU_MAX_SECONDS``); -1 for none."""
    return next((d for d in range(devices.GPU_MAX_SECONDS, -1, -1) if charged(d) <= left), -1)


def in_words(exc: gr.Error, ways: Ways | None = None) -> gr.Error:
    """``exc`` in the studio's words where it is one of ZeroGPU's two refusals, else ``exc`` itself."""
    text = str(exc.message)
    if exc.title == TOO_LONG_TITLE:
        found = _ASKED.search(text)
        asked = int(found.group(1)) if found else None
        largest = charged(min(budget.max_gpu_seconds(), devices.GPU_MAX_SECONDS))
        less = (ways(asked - 1) if ways and asked else []) or [tips.QUOTA_LESS]
        return gr.Error(
            tips.QUOTA_TOO_LONG.format(
                asked=audio.clock(asked) if asked else tips.QUOTA_THIS_MUCH,
                largest=audio.clock(largest),
                ways=_joined(less),
            ),
            title="Too long for one press",
            print_exception=False,
        )
    if exc.title != QUOTA_TITLE:
        return exc
    found, back = _ASKED_LEFT.search(text), _BACK_IN.search(text)
    when = tips.QUOTA_BACK_IN.format(wait=back.group(1)) if back else tips.QUOTA_BACK_LATER
    if found is None:  # too many runs of the visitor's, or the Space's own limit: no figures to go by
        words = tips.QUOTA_RUNS if "runs limit" in text else tips.QUOTA_SPACE
        return gr.Error(words.format(when=when), title="Out of GPU time", print_exception=False)
    asked, left = int(found.group(1)), int(found.group(2))
    if left < charged(devices.GPU_MIN_SECONDS):
        fit = tips.QUOTA_NOTHING_FITS.format(least=audio.clock(charged(devices.GPU_MIN_SECONDS)))
    else:
        fit = tips.QUOTA_FITS.format(ways=_joined((ways(left) if ways else []) or [tips.QUOTA_LESS]))
    words = tips.QUOTA_EXCEEDED.format(asked=audio.clock(asked), left=audio.clock(left), when=when, fit=fit)
    return gr.Error(words, title="Out of GPU time", print_exception=False)


def _joined(ways: list[str]) -> str:
    return ways[0] if len(ways) == 1 else ", ".join(ways[:-1]) + " or " + ways[-1]
