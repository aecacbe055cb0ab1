"""Every numeric field of every endpoint takes its value as 8, 8.0 or "8" alike, its special values included
(-1: Think chooses the length, a random seed; 0: the BPM left to the model, no loop): a value is compared as a
number, never by its text. The fields are read off the declarations: each music mode's preparer signature
(``parameters``: a kind that says ``int`` or ``float``) and, for every other endpoint, the types the served
studio's API gives its parameters; each value is sent in every form through what the endpoint runs (its
preparer, or the checks it runs before anything else) and must be prepared alike, or refused alike."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
import soundfile as sf

import audio
import checks
import describe
import edit_lines
import form_fields
import job_record
import lyrics
import models
import modes
import parameters
import records
import songwriter
import variations
from bench_bars import clicks
from conftest import ROOT

RECORD = json.loads((ROOT / "tests" / "records" / "generate-401856c.json").read_text())
# A song's words as the studio knows them where it made the take (``edit_lines.known``): Edit's lines and sections.
SUNG = edit_lines.parse("[Verse]\none\ntwo\n[Chorus]\nthree\nfour", [1.0, 3.0, 6.0, 8.0], 12.0)
SPECIAL = (-1, 0)  # the studio's special values: every field is tried at both


def _numeric(kind: str) -> bool:
    """Whether a declared kind ("float | None", "list[int] | str | None") takes a number."""
    return re.search(r"\b(int|float)\b", kind) is not None


MUSIC = [
    (mode, name) for mode in modes.PREPARE for name in parameters.names(mode) if _numeric(parameters.PARAMS[name].kind)
]


def _values(name: str) -> list[float]:
    """The values a field is tried at: the special ones, one that is not whole, a few whole ones (a bar count, a
    take, a tempo), its default and its range's ends where it declares them."""
    p = parameters.PARAMS.get(name)
    declared = [] if p is None else [*(p.span or ()), p.default]
    numbers = [_number(str(v)) for v in declared if not isinstance(v, bool)]  # the loudness's default is "-14"
    numbers = [v for v in numbers if v is not None]
    return sorted({*SPECIAL, 0.5, 1, 2, 8, 120, *numbers})


def _forms(value: float) -> list[Any]:
    """``value`` as a client may send it: 8, 8.0, "8", "8.0" (2.5 and "2.5" where it is not whole)."""
    if float(value).is_integer():
        return [int(value), float(value), str(int(value)), str(float(value))]
    return [float(value), str(float(value))]


def _said(message: str, form: Any) -> str:
    """A refusal's words with the value as sent put back as one (a refusal may quote it as it came: '8.0')."""
    number = float(form)
    for spelling in sorted({repr(str(form)), str(form), f"{number:g}"}, key=len, reverse=True):
        message = message.replace(spelling, "‹value›")
    return message


def _outcome(make, form: Any) -> tuple:
    """What the endpoint makes of ``form``: the prepared request (pickled whole: 8 and 8.0 differ there) and
    its record, or the refusal: its field and words."""
    try:
        made = make(form)
    except (gr.Error, lyrics.LyricsError) as exc:
        return ("refused", getattr(exc, "param", None), _said(getattr(exc, "message", str(exc)), form))
    if isinstance(made, modes.Job):
        return ("made", pickle.dumps((made.request, made.finishing, made.region)), repr(job_record.of(made)))
    return ("made", pickle.dumps(_echoed(made, form)))


def _echoed(made: Any, form: Any) -> Any:
    """An answer other than a prepared request, each number in it read as one (Describe hands back a BPM it cannot
    read as it came, for Generate's check to speak about)."""
    if isinstance(made, str) and made.startswith("{"):  # a waveform's state
        return _echoed(json.loads(made), form)
    if isinstance(made, str):
        return made if _number(made) is None else _number(made)
    if isinstance(made, list | tuple):
        return [_echoed(item, form) for item in made]
    if isinstance(made, dict):
        return {key: _echoed(item, form) for key, item in made.items()}
    return float(made) if isinstance(made, int | float) and not isinstance(made, bool) else made


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number else None  # "nan" is no number a field is tried at


def _alike(make, values: list[float]) -> dict[str, dict[str, tuple]]:
    """For each value whose forms are not made alike, what each form made."""
    differing = {}
    for value in values:
        made = {repr(form): _outcome(make, form) for form in _forms(value)}
        if len(set(made.values())) > 1:
            differing[repr(value)] = {form: outcome[:1] + outcome[-1:] for form, outcome in made.items()}
    return differing


@pytest.fixture
def song(studio_env, with_planner, tmp_path, monkeypatch) -> str:
    """A 12 s song with a beat (its bars counted), Think on, seeds drawn alike (-1), and the song's words known for
    Edit's lines and sections."""
    monkeypatch.setattr(checks.secrets, "randbelow", lambda n: 12345)
    monkeypatch.setattr(edit_lines, "known", lambda src_audio: SUNG)
    path = tmp_path / "song.wav"
    sf.write(path, clicks(120, 4, seconds=12.0)[0].T, audio.SAMPLE_RATE)
    return str(path)


@pytest.mark.parametrize(("mode", "name"), MUSIC, ids=[f"{m}-{n}" for m, n in MUSIC])
def test_every_numeric_field_of_every_music_mode_reads_a_number_in_any_form(song, mode, name):
    asked = {"prompt": "funk", "lyrics": "[Verse]\nla la", "inference_steps": 2}
    asked |= {"think": name == "audio_duration"} if mode == "generate" else {"src_audio": song}
    prepare = modes.PREPARE[mode]
    assert _alike(lambda form: prepare(**{**asked, name: form}), _values(name)) == {}
    # Not refused whatever it is: some value of the field's is prepared.
    assert any(_outcome(lambda form: prepare(**{**asked, name: form}), v)[0] == "made" for v in _values(name))


def _morph_check(name: str):
    """The checks ``/morph`` runs on its numbers (``take_morph.prepare``) before it reads the take's song."""
    if name == "take":
        return lambda form: records.chosen(RECORD, form, "no take").number
    if name == "seed":
        return parameters.check_seed
    return lambda form: parameters.PARAMS[name].check(form, models.active_variant())


def _heard() -> dict[str, Any]:
    fields = {"caption": "funk", "bpm": 100, "keyscale": "C major", "timesignature": 4, "language": "en"}
    return {"fields": fields, "lyrics": "", "codes": 10, "timings": {}}


# Every other endpoint's numeric parameters (by the served API's names), each to what the endpoint runs with it.
OTHERS = {
    "variations": lambda name, song: lambda form: variations.prepare(**{"take": 1, "record": RECORD, name: form}),
    "morph": lambda name, song: _morph_check(name),
    "lyrics": lambda name, song: lambda form: lyrics.make_request("rain", **{name: form}),
    "write_song": lambda name, song: lambda form: songwriter.check("rain", False, "en", form),
    "stems": lambda name, song: lambda form: records.chosen(RECORD, form, "no take").number,
    # Describe's fields as it fills them (its note says what it kept as it came).
    "describe": lambda name, song: lambda form: describe.fill(_heard(), {name: form}, None)[0],
    **{
        f"settings_from_{mode}": lambda name, song: lambda form: records.settings(RECORD, form)
        for mode in modes.PREPARE
    },
    # An upload's reading: its first answer, the waveform that draws the seconds to add or the region.
    "extend_analyze": lambda name, song: lambda form: next(form_fields.read_extend_song(song, **{name: form})),
    "edit_analyze": lambda name, song: lambda form: next(form_fields.read_edit_song(song, **{name: form})),
}
OTHER_FIELDS = {
    "variations": ("take", "amount", "count", "seed"),
    "morph": ("take", "seed", "inference_steps", "guidance_scale"),
    "lyrics": ("temperature", "seed"),
    "write_song": ("seed",),
    "stems": ("take",),
    "describe": ("bpm",),
    **{f"settings_from_{mode}": ("take",) for mode in modes.PREPARE},
    "extend_analyze": ("extend_seconds",),
    "edit_analyze": ("repainting_start", "repainting_end"),
}
OTHER = [(endpoint, name) for endpoint, names in OTHER_FIELDS.items() for name in names]


@pytest.mark.parametrize(("endpoint", "name"), OTHER, ids=[f"{e}-{n}" for e, n in OTHER])
def test_every_numeric_field_of_every_other_endpoint_reads_a_number_in_any_form(song, monkeypatch, endpoint, name):
    monkeypatch.setattr(songwriter, "available", lambda: True)  # *Write it*'s checks, with or without a planner
    assert _alike(OTHERS[endpoint](name, song), _values(name)) == {}
    assert any(_outcome(OTHERS[endpoint](name, song), v)[0] == "made" for v in _values(name))


@pytest.fixture(scope="module")
def client(studio_server):
    from gradio_client import Client

    url, _ = studio_server
    return Client(url, verbose=False)


def test_the_served_api_types_no_number_these_tests_do_not_send_in_every_form(client):
    """Every parameter the API types as a number, of every named endpoint, is one of the fields tried above."""
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    typed = {
        (endpoint.lstrip("/"), p["parameter_name"])
        for endpoint, info in api.items()
        for p in info["parameters"]
        if p["python_type"]["type"] in ("int", "float")
    }
    tried = set(MUSIC) | set(OTHER)
    assert typed and typed - tried == set(), sorted(typed - tried)


def test_think_chooses_the_length_asked_as_a_float_through_the_api(client, monkeypatch):
    """``audio_duration=-1.0`` (a Python client's -1 for a field the API types as a float) lets Think choose
    the length, as -1 does."""
    monkeypatch.setenv("ACE_STUDIO_MAX_REQUEST_AUDIO_S", "10")  # a random planner may choose up to 10 minutes
    result = client.predict(
        prompt="a cappella choir", audio_duration=-1.0, inference_steps=1, seed=4, think=True, api_name="/generate"
    )
    record = result[-1]
    chosen = record["takes"][0]["planner"]["fields"]["duration"]
    assert record["params"]["audio_duration"] == -1 and Path(result[0]).is_file()
    assert "Think chose a length of" in result[-2] and chosen <= 10
