"""A visitor's daily ZeroGPU quota as the studio meets it: what a click will reserve (the text beside
each GPU button), and ZeroGPU's refusals turned into the studio's messages.

Before a call starts, ZeroGPU compares its declared duration with the visitor's remaining daily quota
(Hugging Face's ZeroGPU docs: 2 minutes a day for a visitor who is not signed in, 5 signed in, more
with PRO) and refuses a declaration larger than what is left, even where the work would fit; each kind
of account also has a largest duration one call may declare. ``reserves_line`` is the text beside a
GPU button: the duration estimate the call declares (``duration_estimate``) counted as ZeroGPU counts
it (``charged``): a music request's from its shape (``music_line``: the request its fields make,
prepared as the admission check prepares it, ``handlers.reserves``), another's through its feature's
``estimate_duration``; headers only, no GPU and no queue. Where that is more than a visitor who is not
signed in gets in a day (``FREE_DAY``), the text says so and what fits in it.
``refusal`` turns either refusal, which ``spaces`` raises with its own message, into a message saying
what happened, when the quota comes back, that signing in gives more, and what would fit now.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import gradio as gr

import audio
import budget
import describe
import devices
import duration_estimate
import lyrics
import messages
import records
import songwriter
import stems
from music_shape import MusicShape

# The titles ``spaces`` gives its two refusals (``spaces.zero.client.schedule``), and its figures.
QUOTA_TITLE = "ZeroGPU quota exceeded"
TOO_LONG_TITLE = "ZeroGPU illegal duration"
_ASKED_LEFT = re.compile(r"\((\d+)s requested vs\. (\d+)s left\)")
_BACK_IN = re.compile(r"Try again in ((?:\d+ days?, )?\d+:\d{2}:\d{2})")
_ASKED = re.compile(r"duration \((\d+)s\)")
# A visitor who is not signed in gets 2 minutes of ZeroGPU time a day (Hugging Face's ZeroGPU docs),
# counted against what a call declares times ZeroGPU's duration factor (``charged``).
FREE_DAY = 120

# What a refused request could change to fit what is left: given the seconds left, the ways as messages.
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


def declares(mode: str, fields: dict[str, Any]) -> int:
    """Seconds a click of ``mode``'s button declares with ``fields``: ``lyrics`` (the request they make,
    checked as the admission check checks it), ``describe`` (the song's length from its header),
    ``write_song`` or ``stems`` (the take's length in its record); a music request's is its shape's
    (``music_line``)."""
    if mode == "lyrics":  # a stand-in theme: what a song is about costs nothing (``lyrics.max_new_tokens``)
        return lyrics.estimate_duration(lyrics.make_request("-", **fields))
    if mode == "describe":
        header = audio.probe(fields.get("src_audio"))
        return describe.estimate_duration(header.frames / header.rate)
    if mode == "write_song":
        return songwriter.estimate_duration()
    if mode == "stems":
        take = records.Record.of(fields["record"]).takes[int(fields["take"]) - 1]
        return stems.estimate_duration(float(take.seconds))
    raise ValueError(f"no estimate for {mode!r}")


def reserves_line(mode: str, fields: dict[str, Any]) -> str:
    """The text beside a GPU button on a Space other than a music button: what a click reserves, or
    what it waits for; past a not-signed-in visitor's day, that too."""
    try:
        return _reserves_text(declares(mode, fields))
    except lyrics.LyricsError:  # a form admission would refuse (a custom structure with no sections yet)
        return messages.RESERVES_LATER
    except (ValueError, TypeError, OverflowError, KeyError, IndexError, audio.AudioError):
        return messages.RESERVES_NOT_YET


def music_line(shape: MusicShape, fits_day: bool = True) -> str:
    """The text beside a music button on a Space: what a request of ``shape`` reserves (as admission
    prepared and bounded it); past a not-signed-in visitor's day, that too, and with ``fits_day`` (a
    tab's Generate, Cover, Extend or Edit button) what of it fits in that day (``budget``'s messages)."""
    return _reserves_text(duration_estimate.music_duration(shape), music_ways(shape) if fits_day else None)


def _reserves_text(declared: int, ways: Ways | None = None) -> str:
    seconds = charged(declared)
    text = messages.RESERVES.format(time=audio.clock(seconds))
    if seconds <= FREE_DAY:
        return text
    text += messages.RESERVES_OVER_DAY.format(day=audio.clock(FREE_DAY))
    fitting = ways(FREE_DAY) if ways is not None else []
    return text + (messages.RESERVES_FITS_DAY.format(ways=_joined(fitting)) if fitting else "")


def music_ways(shape: MusicShape) -> Ways:
    """For a prepared music request's shape: what of it would fit in ``left`` seconds of the quota."""

    def ways(left: int) -> list[str]:
        return budget.ways_within(shape, most_declared(left))

    return ways


def most_declared(left: int) -> int:
    """The most seconds a call may declare for ZeroGPU to charge at most ``left`` (``charged`` grows
    with what is declared, and no call declares more than ``devices.GPU_MAX_SECONDS``); -1 for none."""
    return next((d for d in range(devices.GPU_MAX_SECONDS, -1, -1) if charged(d) <= left), -1)


def refusal(exc: gr.Error, ways: Ways | None = None) -> gr.Error:
    """``exc`` as the studio's ``gr.Error`` (its message and title) where it is one of ZeroGPU's two
    refusals (titled ``QUOTA_TITLE`` or ``TOO_LONG_TITLE`` by ``spaces``), else ``exc`` itself; ``ways``:
    what of the request would fit a given number of seconds."""
    text = str(exc.message)
    if exc.title == TOO_LONG_TITLE:
        found = _ASKED.search(text)
        asked = int(found.group(1)) if found else None
        largest = charged(min(budget.max_gpu_seconds(), devices.GPU_MAX_SECONDS))
        less = (ways(asked - 1) if ways and asked else []) or [messages.QUOTA_LESS]
        return gr.Error(
            messages.QUOTA_TOO_LONG.format(
                asked=audio.clock(asked) if asked else messages.QUOTA_THIS_MUCH,
                largest=audio.clock(largest),
                ways=_joined(less),
            ),
            title=messages.TOO_LONG_TITLE,
            print_exception=False,
        )
    if exc.title != QUOTA_TITLE:
        return exc
    found, back = _ASKED_LEFT.search(text), _BACK_IN.search(text)
    when = messages.QUOTA_BACK_IN.format(wait=back.group(1)) if back else messages.QUOTA_BACK_LATER
    if found is None:  # too many runs of the visitor's, or the Space's own limit: no figures to go by
        message = messages.QUOTA_RUNS if "runs limit" in text else messages.QUOTA_SPACE
        return gr.Error(message.format(when=when), title=messages.OUT_OF_GPU_TIME_TITLE, print_exception=False)
    asked, left = int(found.group(1)), int(found.group(2))
    if left < charged(devices.GPU_MIN_SECONDS):
        fit = messages.QUOTA_NOTHING_FITS.format(least=audio.clock(charged(devices.GPU_MIN_SECONDS)))
    else:
        fit = messages.QUOTA_FITS.format(ways=_joined((ways(left) if ways else []) or [messages.QUOTA_LESS]))
    message = messages.QUOTA_EXCEEDED.format(asked=audio.clock(asked), left=audio.clock(left), when=when, fit=fit)
    return gr.Error(message, title=messages.OUT_OF_GPU_TIME_TITLE, print_exception=False)


def _joined(ways: list[str]) -> str:
    return ways[0] if len(ways) == 1 else messages.WAYS_OR.format(some=", ".join(ways[:-1]), last=ways[-1])
