"""A song's part tasks, on the CPU: Edit's *Add a part*, *Take a part out* and *Complete the song*
(the page's side is ``edit_fields``).

They are ACE-Step 1.5's ``lego``, ``extract`` and ``complete`` tasks, which only the base model was
trained for (upstream's UI offers them with a base checkpoint alone; ``backend`` runs them on the XL
base's DiT beside the SFT one). The model hears the whole song as its context and is told the task
in its instruction, upstream's wording with the track names in capitals (``TRACKS``: upstream's
``TRACK_NAMES``, its order). ``lego`` makes the named part alone: the studio hands back the song
with the part mixed in as the take and the part alone beside it; ``extract`` makes the part taken
out of the mix; ``complete`` makes the whole arrangement around the song.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import audio
import backend
import base_model
import error_messages
import models
import parameters
import preparing
from checks import AUTO, INSTRUMENTAL_TAG, InputError
from music_request import Job, MusicRequest, Notes
from parameters import Asked

# Upstream's track classes (``acestep/constants.py`` ``TRACK_NAMES``), in its order: the names the
# base model was trained on, capitalised into its instruction.
TRACKS = (
    "woodwinds",
    "brass",
    "fx",
    "synth",
    "strings",
    "percussion",
    "keyboard",
    "guitar",
    "bass",
    "drums",
    "backing_vocals",
    "vocals",
)
LABELS = {
    "vocals": "Vocals",
    "backing_vocals": "Backing vocals",
    "drums": "Drums",
    "bass": "Bass",
    "guitar": "Guitar",
    "keyboard": "Keyboard",
    "strings": "Strings",
    "synth": "Synth",
    "percussion": "Percussion",
    "brass": "Brass",
    "woodwinds": "Woodwinds",
    "fx": "FX (effects)",
}
# The order a musician reads them in: the ones asked for most first.
SHOWN = tuple(sorted(TRACKS, key=list(LABELS).index))
SUNG = ("vocals", "backing_vocals")

# Edit's first choice: what to change, and the task each runs (None: today's region repaint).
CHANGES = {"region": None, **base_model.CHANGES}
CHOICES = [
    ("A region", "region"),
    ("Add a part", "add"),
    ("Take a part out", "extract"),
    ("Complete the song", "complete"),
]
# Each change's label, as a refusal names it ("Take a part out").
CHOICE_LABELS = {change: label for label, change in CHOICES}
# Upstream pads a source under 128 latent frames (5.12 s) with silence, which the model would hear
# as part of the song; a part is made over the whole song, so it must be at least that long.
MIN_SECONDS = 6.0


def check_change(value: Any) -> str | None:
    """The task Edit's *What to change* runs (``lego``, ``extract``, ``complete``) or None for a region."""
    key = "region" if value is None or value == "" else value
    if not isinstance(key, str) or key not in CHANGES:
        named = ", ".join(f"{v} ({label})" for label, v in CHOICES)
        raise InputError(error_messages.PART_CHANGE.format(named=named, got=str(value)[:40]), "change")
    return CHANGES[key]


# The parts' own fields, each with the changes that use it (``parameters.USED_BY``, where Edit's other fields a change
# does not use are declared too): sent (not at its default) with another change, it is refused, never passed over
# (the page sets a hidden one back to its default: ``edit_fields.showing``).
USED_BY = {name: parameters.USED_BY["edit"][name] for name in ("part", "add_parts")}


def check_unused(change: Any, asked: Asked) -> None:
    """Refuse a field (``parameters.USED_BY``) sent with a change that does not use it: *Add a part* with the
    parts *Complete the song* adds made vocals, the default part, and said nothing; a key with *Take a part out*
    was passed over as upstream's page sets it to auto. The parts' own fields first, in their own words."""
    key = "region" if change is None or change == "" else change
    label = CHOICE_LABELS.get(key, str(key))
    for name, used in USED_BY.items():
        value = getattr(asked, name)
        if key not in used and _given(value, parameters.PARAMS[name].default):
            message = error_messages.PART_UNUSED if name == "part" else error_messages.ADD_PARTS_UNUSED
            given = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
            raise InputError(message.format(given=given[:80], change=label), name)
    if key not in parameters.USED_BY["edit"]["repaint_mode"]:  # a bad way is refused as one, with a part too
        preparing.check_repaint_mode(asked.repaint_mode)
    makes = models.active_variant() if key == "region" else models.VARIANTS[models.BASE_VARIANT]
    preparing.check_unused(_as_told(key, asked), key, label, CHOICE_LABELS, own=tuple(USED_BY), variant=makes)


def _as_told(change: str, asked: Asked) -> Asked:
    """``asked`` with a caption and lyrics the model is told whatever is sent read as none: an extracted part's
    caption that names the part (upstream's page writes the part's name there, and an extract take's record keeps
    it, so a variation sends it again), and lyrics of "[Instrumental]" (what a part with nothing sung is told)."""
    named = change == "extract" and _track(asked.prompt) is not None and _track(asked.prompt) == _track(asked.part)
    bare = isinstance(asked.lyrics, str) and asked.lyrics.strip().lower() == INSTRUMENTAL_TAG.lower()
    return asked.but(**({"prompt": ""} if named else {}), **({"lyrics": ""} if bare else {}))


def check_unsung(change: str, asked: Asked, parts: list[str]) -> None:
    """Refuse lyrics sent with a part added or a song completed with nothing sung (``parts``: checked track
    classes, none of them ``SUNG``): the model is told "[Instrumental]" (upstream's model would be handed words no
    part sings); "[Instrumental]" itself is what it is told, and taken. Raises ``InputError`` on ``lyrics``."""
    if not parameters.given("lyrics", _as_told(change, asked).lyrics):
        return
    label = CHOICE_LABELS[change]
    named = " and ".join(", ".join(LABELS[part] for part in parts).rsplit(", ", 1))
    words = error_messages.PART_LYRICS_UNSUNG.format(given=str(asked.lyrics)[:80], change=label, parts=named)
    raise InputError(words, "lyrics")


def _given(value: Any, default: Any) -> bool:
    """Whether a part's field holds other parts than its default (empty: none given)."""
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else [value]
    named = {_track(item) if isinstance(item, str) else repr(item) for item in items if item not in (None, "")}
    wanted = {_track(item) for item in ([default] if isinstance(default, str) else default)}
    return bool(named) and named != wanted


def check_part(value: Any) -> str:
    """One of upstream's track classes (the label a musician reads is taken too)."""
    found = _track(value)
    if found is None:
        raise InputError(error_messages.PART_UNKNOWN.format(named=_named()), "part")
    return found


def check_parts(value: Any) -> list[str]:
    """*Complete the song*'s parts to add: one or more track classes, each once, in the order given (upstream's
    handler names them in its instruction in the order it is handed them)."""
    items = [value] if isinstance(value, str) else list(value or []) if isinstance(value, list | tuple) else None
    if not items:
        raise InputError(error_messages.PARTS_NONE.format(named=_named()), "add_parts")
    found = [_track(item) for item in items[: len(TRACKS) + 1]]
    if None in found or len(items) > len(TRACKS):
        raise InputError(error_messages.PARTS_UNKNOWN.format(named=_named()), "add_parts")
    return list(dict.fromkeys(found))


def sung(change: Any, part: Any, adding: Any) -> bool:
    """Whether the change makes a sung part, which takes lyrics: a vocal part added, or the song
    completed with one (upstream's page keeps the lyrics for both; its model sings what it is given)."""
    if change == "add":
        return _track(part) in SUNG
    if change == "complete" and isinstance(adding, list | tuple):
        return any(_track(item) in SUNG for item in adding[: len(TRACKS)])
    return False


def _track(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    key = value.strip().lower()
    by_label = {label.lower(): name for name, label in LABELS.items()}
    return key if key in TRACKS else by_label.get(key)


def _named() -> str:
    return ", ".join(LABELS[t] for t in SHOWN)


def check_length(seconds: float) -> None:
    """A song a part is made over: at least ``MIN_SECONDS``, at most the studio's longest."""
    if seconds < MIN_SECONDS:
        raise InputError(error_messages.PARTS_SONG_SHORT.format(seconds=seconds, least=MIN_SECONDS), "src_audio")
    if seconds > audio.MAX_SECONDS:
        most = audio.MAX_SECONDS / 60
        raise InputError(error_messages.PARTS_SONG_LONG.format(minutes=seconds / 60, most=most), "src_audio")


def task_arguments(task: str, part: str | None, parts: list[str] | None) -> dict[str, Any]:
    """What the instruction names: ``track_name`` (lego, extract) or ``complete_track_classes``."""
    if task == "complete":
        return {"task_type": task, "complete_track_classes": list(parts or [])}
    return {"task_type": task, "track_name": part}


def mix(song: np.ndarray, part: np.ndarray) -> np.ndarray:
    """The song with the part in it: the part as the model made it, at the level it has in the song's
    VAE latent space (``sampler.decode`` leaves a lego take unnormalised), added to the song's own
    samples; the finish's limiter keeps the sum under the ceiling."""
    return (song + part).astype(np.float32)


def alone(part: np.ndarray) -> np.ndarray:
    """The part by itself, at -1 dBFS peak like every take the model makes."""
    peak = float(np.max(np.abs(part))) if part.size else 0.0
    return (part * (10.0 ** (-1.0 / 20.0) / max(peak, 1e-6))).astype(np.float32)


def prepare(task: str, asked: Asked) -> Job:
    """Edit's parts: a part added (``lego``), taken out (``extract``) or the song completed
    (``complete``), over the whole song, on the XL base model with its sampling defaults."""
    why = base_model.missing()
    if why is not None:
        raise InputError(error_messages.PARTS_MISSING.format(source=base_model.source(), why=why), "change")
    if backend.is_warm() and backend.get_backend().offload != "none":
        raise InputError(error_messages.PARTS_OFFLOADED, "change")
    track = check_part(asked.part) if task != "complete" else None
    classes = check_parts(asked.add_parts) if task == "complete" else None
    change = next(key for key, made in CHANGES.items() if made == task)
    # ``preparing.render``'s order: the song, then its caption and lyrics as sent, then the fields the change does
    # not use (``check_unused``), before the declared fields of the model call.
    prompt, lyrics = preparing.song_words(asked, need_text=None)
    check_unused(change, asked)
    if task == "extract":  # upstream's page writes the part's name as the caption (any other refused: check_unused)
        prompt, lyrics = track, ""
    elif not any(name in SUNG for name in classes or [track]):  # lyrics only for a sung part, else refused
        check_unsung(change, asked, classes or [track])
        lyrics = ""
    asked = asked.but(prompt=prompt, lyrics=lyrics)
    # Upstream's page sets tempo, key and metre to auto for a part added or taken out.
    if task != "complete":
        asked = asked.but(bpm=None, key_scale=AUTO, time_signature=AUTO)
    # No adapter on the base (every slot's fields refused with a part: ``check_unused``), and its sampling defaults.
    base = asked.but(**{strength: 1.0 for _, strength, _ in parameters.ADAPTER_SLOTS})
    render, fmt = preparing.render(base, prompt, lyrics, 1, models.VARIANTS[models.BASE_VARIANT])
    finishing = parameters.finish(asked, whole=False)
    src_audio = asked.src_audio
    source = preparing.source(src_audio)
    n = source.shape[-1]
    length = n / audio.SAMPLE_RATE
    check_length(length)
    render = render.with_pipeline(
        **task_arguments(task, track, classes),
        audio_duration=length,
        src_audio=preparing.model_input(source),
        natural_level=task == "lego",
    )
    seconds = round(length, 3)
    notes = Notes(src_audio=Path(str(src_audio)).name, source_seconds=seconds)
    request = preparing.from_take_latents(src_audio, MusicRequest("edit", render, seconds, fmt, notes=notes))
    if task != "lego":
        return Job(request, lambda take: audio.fit(take, n), finishing, (0, n))
    return Job(
        request,
        lambda take: mix(source, audio.fit(take, n)),
        finishing,
        (0, n),
        part=lambda take: alone(audio.fit(take, n)),
    )
