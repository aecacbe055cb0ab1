"""Tests of ``part_tasks.check_unused`` and ``edit_fields.showing``: an argument the chosen Edit change does not
use is refused in words naming it, never passed over; one it uses changes what is made. Derived from the
declaration of which changes use which of the parts' fields (``part_tasks.USED_BY``), over every change
(``part_tasks.CHANGES``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import checks
import edit_fields
import handlers
import models
import parameters
import part_tasks


def _print(value: object) -> object:
    """A prepared request as plain data, its arrays by their shape and hash, to compare two requests."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _print(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return [value.shape, hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest()]
    if isinstance(value, dict):
        return {str(k): _print(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_print(v) for v in value]
    return "a function" if callable(value) else repr(value)


def _prepared(values: dict) -> str:
    job = handlers.prepare_for_admission("edit", values)
    return json.dumps([_print(job.request), _print(job.finishing), job.region, job.part is not None], sort_keys=True)


def _other(name: str) -> object:
    """A value of a part's field other than its default: parts the model knows, in the order a musician reads them."""
    default = parameters.PARAMS[name].default
    if isinstance(default, str):
        return next(t for t in part_tasks.SHOWN if t != default)
    return next(
        list(part_tasks.SHOWN[i : i + 3])
        for i in range(len(part_tasks.SHOWN))
        if set(part_tasks.SHOWN[i : i + 3]) != set(default)
    )


CASES = [(change, name) for change in part_tasks.CHANGES for name in part_tasks.USED_BY]


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> str:
    path = Path(tmp_path_factory.mktemp("unused")) / "song.wav"
    t = np.arange(12 * 48000) / 48000
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48000)
    return str(path)


@pytest.mark.parametrize(("change", "name"), CASES)
def test_a_parts_field_is_used_by_its_changes_and_refused_in_words_by_the_others(studio_env, song, change, name):
    """``/edit`` with ``change="add"`` and ``add_parts=["bass", "drums", "percussion"]`` made a take with vocals
    added (``part`` at its default) and said nothing; its record said part "vocals". Each part's field, set to a
    value other than its default: a change that uses it makes something else; any other refuses it, naming it."""
    base = {"src_audio": song, "prompt": "a song", "change": change, "seed": 7}
    other = _other(name)
    if change in part_tasks.USED_BY[name]:
        assert _prepared({**base, name: other}) != _prepared(base), (change, name, other)
        return
    with pytest.raises(checks.InputError) as refused:
        handlers.prepare_for_admission("edit", {**base, name: other})
    print(f"\n{change}, {name}={other}: {refused.value}")
    assert refused.value.param == name and f"({name}:" in str(refused.value)


def test_the_page_sets_a_hidden_parts_field_back_to_its_default():
    """The page sends every field whatever the change: a part's field the change does not use is hidden at its
    default (so a click is never refused for a value the visitor no longer sees), and one it uses is shown."""
    show = edit_fields.showing(models.active_variant())
    for change in part_tasks.CHANGES:
        updates = show(change, _other("part"), _other("add_parts"))[1 : 1 + len(part_tasks.USED_BY)]
        for name, update in zip(part_tasks.USED_BY, updates, strict=True):
            used = change in part_tasks.USED_BY[name]
            assert update["visible"] == used, (change, name, update)
            if not used:
                default = parameters.PARAMS[name].default
                assert update["value"] == (default if isinstance(default, str) else list(default)), (change, name)
                assert not part_tasks._given(update["value"], default)
