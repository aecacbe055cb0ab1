"""The XL base's DiT beside the loaded (SFT) pipeline: what Edit's parts run on.

ACE-Step 1.5 trained its ``lego``, ``extract`` and ``complete`` tasks into the base model only, so
the studio keeps the SFT pipeline for everything else and builds the base's own parts beside it: its
transformer, and its condition encoder where the base's differs from SFT's (the two were trained
with their DiTs; one equal to SFT's, tensor for tensor, is not kept twice). The VAE, the text
encoder, the tokenizer and the scheduler are the SFT pipeline's own objects, not copies: the base
adds only what differs. Only those two folders of the base's repo are read (or downloaded).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import error_messages
import hub
import messages
import models
import tooltips as tips
import xl_model

# Edit's changes that run on the XL base's DiT, and upstream's task for each: the tasks only the base
# model was trained for. ``part_tasks`` offers them, ``backend`` runs their tasks here, the duration estimate
# and the budget cost them as such.
CHANGES = {"add": "lego", "extract": "extract", "complete": "complete"}
TASKS = tuple(CHANGES.values())

ENV = "ACE_STUDIO_BASE_MODEL"
# The base's folders of its own in its diffusers-layout repo; the rest of it is SFT's too.
BASE_PARTS = ("transformer", "condition_encoder")
PATTERNS = ("model_index.json", *(f"{name}/*" for name in BASE_PARTS))


def source() -> str:
    """Where the base's DiT comes from: ``ACE_STUDIO_BASE_MODEL`` (a repo id or a folder in diffusers
    layout), else the registry's XL base repo."""
    return os.environ.get(ENV, "").strip() or models.VARIANTS[models.BASE_VARIANT].repo


def missing() -> str | None:
    """Why the base cannot be had on this machine, as a message (None where it can: a folder that holds
    it, a repo in the Hub cache, or one the first part may download). Reads no weights."""
    where = source()
    path = Path(where).expanduser()
    if path.is_dir():
        if all((path / name / "config.json").is_file() for name in BASE_PARTS):
            return None
        return error_messages.BASE_FOLDER_LACKS.format(folder=path.name)
    if where.startswith((".", "/", "~")):
        return error_messages.BASE_NO_FOLDER.format(folder=where, env=ENV)
    if all(hub.cached(where, f"{name}/config.json") for name in BASE_PARTS):
        return None
    closed = models.hub_closed(where)
    return None if closed is None else _not_here(closed)


def _not_here(closed: tuple[str, str]) -> str:
    why, fix = closed
    return error_messages.BASE_NOT_HERE.format(why=why, fix=fix, env=ENV)


class Unavailable(models.ModelLoadError):
    """The base could not be built; its message says why (``error_messages.PARTS_MISSING``), as the note then does."""


# Why the last try to build the base failed in this process (None: it has not, or the last one
# succeeded): the note under *What to change* says it from then on, not how parts are made.
_failed: dict[str, str | None] = {"why": None}


def trouble() -> str | None:
    """Why parts cannot be made here, as a message: the base missing (``missing``), else why its last build
    in this process failed; None where nothing is known against it."""
    return missing() or _failed["why"]


def note() -> str:
    """What Edit says beside its parts' choices: how they are made, or why they cannot be."""
    why = trouble()
    return tips.PARTS_NOTE if why is None else error_messages.PARTS_MISSING.format(source=source(), why=why)


def load(pipe: Any, dtype: Any = None) -> Any:
    """An ``AceStepPipeline`` of the base's transformer and condition encoder (``dtype``: one dtype, or
    ``{component: dtype}`` as ``models.pipeline_dtypes`` gives it) around ``pipe``'s own VAE, text
    encoder, tokenizer and scheduler, on the CPU."""
    from diffusers import AceStepPipeline, AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import AceStepConditionEncoder

    why = missing()
    if why is not None:
        raise Unavailable(error_messages.PARTS_MISSING.format(source=source(), why=why))
    where = source()
    path = Path(where).expanduser()
    dtypes = dtype if isinstance(dtype, dict) else dict.fromkeys(BASE_PARTS, dtype)
    try:
        folder = path if path.is_dir() else models.download(where, PATTERNS, messages.XL_BASE_MODEL, ENV)
        transformer = AceStepTransformer1DModel.from_pretrained(
            folder, subfolder="transformer", torch_dtype=dtypes.get("transformer")
        )
        encoder = AceStepConditionEncoder.from_pretrained(
            folder, subfolder="condition_encoder", torch_dtype=dtypes.get("condition_encoder")
        )
    except Exception as exc:  # not there, not downloadable, not a model: the note and the request say why
        _failed["why"] = failure(exc)
        raise Unavailable(error_messages.PARTS_MISSING.format(source=source(), why=_failed["why"])) from exc
    _failed["why"] = None
    if same_weights(encoder, pipe.condition_encoder):
        encoder = pipe.condition_encoder
    base = AceStepPipeline(
        vae=pipe.vae,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        transformer=transformer.eval(),
        condition_encoder=encoder.eval(),
        scheduler=pipe.scheduler,
        audio_tokenizer=None,
        audio_token_detokenizer=None,
    )
    base.set_progress_bar_config(disable=True)
    xl_model.match_upstream(base)  # the timbre encoder as upstream's XL computes it, as for every model
    return base


def failure(exc: BaseException) -> str:
    """Why building the base failed, in a clause: the studio's message where it has one (weights
    not here, a download refused), else what the loader could not read, in its first line."""
    closed = models.hub_closed(source(), exc) if isinstance(exc, models.WeightsMissing) else None
    if closed is not None:
        return _not_here(closed)
    if isinstance(exc, models.ModelLoadError):
        return str(exc).rstrip(".")
    said = (str(exc).strip().splitlines() or [""])[0][:200]
    return (error_messages.BASE_UNREADABLE_SAYING if said else error_messages.BASE_UNREADABLE).format(
        kind=type(exc).__name__, said=said
    )


def same_weights(one: Any, other: Any) -> bool:
    """Whether two modules hold equal tensors under equal names (then one is enough)."""
    import torch

    mine, theirs = one.state_dict(), other.state_dict()
    if mine.keys() != theirs.keys():
        return False
    return all(
        a.shape == b.shape and torch.equal(a.to(b.device, b.dtype), b) for a, b in ((mine[k], theirs[k]) for k in mine)
    )


def base_parts(base: Any, pipe: Any) -> list[Any]:
    """The base's modules that are not ``pipe``'s (what it adds to memory and must move with it)."""
    return [m for name in BASE_PARTS if (m := getattr(base, name)) is not getattr(pipe, name)]


class Both:
    """The SFT pipeline and the base's own parts as one resident of the device (``devices``): moved
    together, their weights counted together (``components``), since a part needs both."""

    def __init__(self, pipe: Any, base: Any) -> None:
        self.pipe, self.base = pipe, base

    @property
    def components(self) -> dict[str, Any]:
        parts = base_parts(self.base, self.pipe)
        return {
            **self.pipe.components,
            **{f"base_{name}": getattr(self.base, name) for name in BASE_PARTS if getattr(self.base, name) in parts},
        }

    def to(self, device: Any) -> Both:
        self.pipe.to(device)
        for module in base_parts(self.base, self.pipe):
            module.to(device)
        return self
