"""A take's voice kept (``voice``, ``voice_row``, ``/generate``'s ``reference_take``): the timbre
reference's windows placed where the take sings (its synced lines, its vocal stem; upstream's thirds
where neither is known), the record naming the take, a variation and *Use these settings* keeping it,
refusals with a message; through the API (gradio_client) and the page (Chromium)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError, ValidationError

import audio
import handlers
import job_record
import modes
import preparing
import records
import take_owners
import takes
import variations
import voice
import voice_row
from checks import InputError
from conftest import SHOTS, copy_in, leave, made_once, visit

SUNG = {"lyrics": "[verse]\nla la la\nla la la\nla la la", "inference_steps": 2, "think": False}
WINDOW = preparing.REFERENCE_WINDOW_SECONDS


def _take(out: Path, seconds: float = 40, **kw) -> tuple[str, Path, dict]:
    """A take made on the tiny models: its name as records give it, its file, its own record."""
    settings = {"prompt": "soft folk", "audio_duration": seconds, "seed": 3, **SUNG, **kw}
    _, record = handlers.make("generate", **settings)
    name = record["takes"][0]["audio"]
    return name, out / name, json.loads((out / name).with_suffix(".json").read_text())


def _own(path: Path, **changed) -> None:
    """The take's own record on disk with ``changed`` (None: left out)."""
    meta = path.with_suffix(".json")
    record = {**json.loads(meta.read_text()), **changed}
    meta.write_text(json.dumps({k: v for k, v in record.items() if v is not None}))


def _lent(job: modes.Job) -> np.ndarray:
    return job.request.render.pipeline.reference_audio


def _song(path: Path) -> np.ndarray:
    return np.clip(audio.load(path), -1.0, 1.0)


def _joined(song: np.ndarray, starts: list[float]) -> np.ndarray:
    n = WINDOW * audio.SAMPLE_RATE
    return np.concatenate([song[:, int(round(s * audio.SAMPLE_RATE)) :][:, :n] for s in starts], axis=1)


@pytest.fixture(scope="module")
def _sung_once(tiny_pipeline_dir, tiny_base_dir, tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("voice") / "outputs"
    name, _, _ = made_once(folder, tiny_pipeline_dir, tiny_base_dir, lambda: _take(folder))
    return folder, name


@pytest.fixture
def sung(studio_env, _sung_once) -> tuple[str, Path]:
    """``_take(studio_env)``, the 40 s sung take (seed 3), made once for the file and copied into this test's
    output folder: the windows' tests each change its record or stems, each on its own copy."""
    folder, name = _sung_once
    copy_in(folder, studio_env)
    return name, studio_env / name


# ---------------------------------------------------------------- the windows


def test_the_three_windows_hold_the_most_singing_in_time_order():
    sung = np.zeros(600)  # 60 s of cells
    sung[450:600] = 1.0  # 45–60 s
    sung[50:120] = 1.0  # 5–12 s
    assert voice.best_windows(sung) == [2.0, 40.0, 50.0]  # 7 + 5 + 10 s: more than 45–55 alone
    assert voice.best_windows(np.zeros(600)) is None  # nothing sung: nothing known
    assert voice.best_windows(np.ones(250)) is None  # shorter than three windows


def test_windows_from_the_takes_synced_lines_and_the_record_names_the_take(studio_env, sung):
    name, path = sung
    own = json.loads(path.with_suffix(".json").read_text())
    assert own.get("lyric_lines"), "a sung take of the tiny models has synced lines"
    # Sung from 20 s on: a long intro. Lines 4 s apart, so each is sung until the next.
    _own(path, lyric_lines=[{"time": t, "text": "la la la"} for t in (20.0, 24.0, 28.0, 32.0, 36.0)])
    job = modes.prepare_generate(prompt="a new song", lyrics="[verse]\nnew words", seed=11, reference_take=name)
    assert job_record.of(job)["reference"] == {
        "take": name,
        "by": "sung lines",
        "windows": [[0, 10], [20, 30], [30, 40]],
    }
    assert job_record.of(job)["reference_audio"] == path.name
    assert np.array_equal(_lent(job), _joined(_song(path), [0.0, 20.0, 30.0]))
    # The same take sent as the file (*Use this voice* links it in): the same windows, the same record.
    linked = handlers.uploads.link_in(path)
    by_file = modes.prepare_generate(prompt="a new song", seed=11, reference_audio=linked)
    assert job_record.of(by_file)["reference"] == job_record.of(job)["reference"] and np.array_equal(
        _lent(by_file), _lent(job)
    )
    # Any other file: upstream's thirds, drawn from the seed, and no take named.
    copy = studio_env / "someone.wav"
    copy.write_bytes(path.read_bytes()[:-4] + b"\x01\x00\x01\x00")
    upload = modes.prepare_generate(prompt="a new song", seed=11, reference_audio=str(copy))
    assert "reference" not in job_record.of(upload) and job_record.of(upload)["reference_audio"] == "someone.wav"
    starts = [s / audio.SAMPLE_RATE for s in preparing.reference_starts(_song(copy).shape[-1], 11)]
    assert np.array_equal(_lent(upload), _joined(_song(copy), starts))


def test_windows_from_the_vocal_stem_where_the_take_has_no_synced_lines(sung):
    name, path = sung
    _own(path, lyric_lines=None)
    n = _song(path).shape[-1]
    vocals = np.zeros((2, n), dtype=np.float32)
    sung = slice(25 * audio.SAMPLE_RATE, 40 * audio.SAMPLE_RATE)
    vocals[:, sung] = 0.3 * np.sin(np.arange(sung.stop - sung.start) * 0.05)
    quiet = np.zeros((2, n), dtype=np.float32)
    takes.write_stems(path, {"vocals": vocals, "drums": quiet, "bass": quiet, "other": quiet}, {})
    job = modes.prepare_generate(prompt="a new song", seed=11, reference_take=name)
    # 25–40 s sung: 20–30 and 30–40 hold all 15 s (25–35 would leave no space for another), the third
    # holds none: the earliest.
    assert job_record.of(job)["reference"] == {
        "take": name,
        "by": "vocal stem",
        "windows": [[0, 10], [20, 30], [30, 40]],
    }
    assert np.array_equal(_lent(job), _joined(_song(path), [0.0, 20.0, 30.0]))


def test_where_nothing_is_known_the_windows_are_upstreams_thirds_with_one_log_line(sung, capfd):
    name, path = sung
    _own(path, lyric_lines=None)
    capfd.readouterr()
    job = modes.prepare_generate(prompt="a new song", seed=11, reference_take=name)
    assert capfd.readouterr().out.count("shows no singing") == 1
    starts = [s / audio.SAMPLE_RATE for s in preparing.reference_starts(_song(path).shape[-1], 11)]
    assert job_record.of(job)["reference"]["by"] == "thirds"
    assert job_record.of(job)["reference"]["windows"] == [[round(s, 1), round(s + WINDOW, 1)] for s in starts]
    assert np.array_equal(_lent(job), _joined(_song(path), starts))


# ---------------------------------------------------------------- refusals


def test_a_take_that_is_gone_instrumental_or_anothers_is_refused_with_a_message(studio_env, sung):
    name, path = sung  # a sung take, the file's (its length is not what is refused)
    plain, _, _ = _take(studio_env, seconds=10, lyrics="")
    cases = (
        ({"reference_take": "2026-01-01/generate-nothing-seed1.wav"}, "There is no take of yours named"),
        ({"reference_take": "../../etc/passwd"}, "There is no take of yours named"),
        ({"reference_take": plain}, "is instrumental: it has no voice to lend"),
        ({"reference_take": name, "reference_audio": str(path)}, "not both"),
    )
    for given, message in cases:
        with pytest.raises(InputError, match=message) as refused:
            modes.prepare_generate(prompt="pop", **given)
        assert refused.value.param == "reference_take"
    # Another visitor's page did not make it: refused at the admission check with the same message (``handlers``).
    stranger = SimpleNamespace(session_hash="someone-else")
    with pytest.raises(InputError, match="There is no take of yours named"):
        handlers.check_voice_owner("generate", {"reference_take": name}, stranger)
    take_owners.remember_takes(stranger, {"takes": [{"audio": name}]})
    handlers.check_voice_owner("generate", {"reference_take": name}, stranger)
    # Its URL names it too, as the API returns it.
    assert job_record.of(modes.prepare_generate(prompt="pop", reference_take=f"http://x/takes/{name}"))["reference"]


def test_use_this_voice_is_offered_exactly_where_the_voice_check_takes_the_take():
    """*Use this voice* was offered on instrumental takes, then refused them: under a result it shows where the chosen
    take's voice would be taken (``voice.check_sung`` on the take's own record), for every mode's take, lyrics given,
    none or ``[Instrumental]``, with synced lines or without."""
    lines = [{"time": 0.5, "text": "la la la"}]
    cases = [
        (mode, lyrics, synced)
        for mode in modes.PREPARE
        for lyrics in ("", "[Instrumental]", SUNG["lyrics"])
        for synced in (None, lines)
    ]
    seen = set()
    for mode, lyrics, synced in cases:
        take = {"audio": "2026-01-01/x.wav", "seed": 3, **({"lyric_lines": synced} if synced else {})}
        batch = {"mode": mode, "params": {"lyrics": lyrics}, "takes": [take]}
        own = {"mode": mode, "params": {"lyrics": lyrics}, "take": 1, **take}
        try:
            voice.check_sung(voice.Voice("2026-01-01/x.wav", Path("x.wav"), own))
            taken = True
        except InputError:
            taken = False
        assert voice_row.offered(batch, 1)["visible"] is taken, (mode, lyrics, synced)
        seen.add(taken)
    assert seen == {True, False}
    assert voice_row.offered({"takes": []}, 1)["visible"] is False  # no take yet


# ---------------------------------------------------------------- kept by a variation and Use these settings


def test_a_variation_and_use_these_settings_keep_the_voice_and_refuse_once_it_is_gone(sung):
    name, path = sung
    made = {"prompt": "a new song", "audio_duration": 10, "inference_steps": 2, "think": False, "seed": 8}
    _, record = handlers.make("generate", **made, reference_take=name)
    assert record["params"]["reference"]["take"] == name
    again = variations.prepare(1, record, 0, 1)
    assert job_record.of(again)["reference"] == record["params"]["reference"]
    assert np.array_equal(_lent(again), _lent(modes.prepare_generate(**made, reference_take=name)))
    placed = voice_row.kept_voice(record, 1)
    assert Path(placed).name == path.name and os.path.samefile(placed, path)  # a link, not a copy
    assert records.settings(record)["files"] == {}  # nothing to upload again
    path.unlink()
    with pytest.raises(InputError, match="There is no take of yours named"):
        variations.prepare(1, record, 0, 1)
    assert voice_row.kept_voice(record, 1) == gr.skip()  # the rest of the settings come back, and a warning


# ---------------------------------------------------------------- the API (gradio_client)


def test_the_api_names_a_take_as_its_voice_and_refuses_anothers(studio_server):
    url, out = studio_server
    me, stranger = Client(url, verbose=False), Client(url, verbose=False)
    short = {"audio_duration": 10, "inference_steps": 1, "think": False}
    sung = me.predict(prompt="soft folk", lyrics=SUNG["lyrics"], seed=4, **short, api_name="/generate")[-1]
    name = sung["takes"][0]["audio"]
    made = me.predict(prompt="a new song", reference_take=name, seed=5, **short, api_name="/generate")[-1]
    assert made["params"]["reference"]["take"] == name and made["params"]["reference_audio"] == Path(name).name
    own = json.loads((out / made["takes"][0]["metadata"]).read_text())
    assert own["params"]["reference"] == made["params"]["reference"]  # the take's own record says it too
    # A variation of it through /variations keeps the voice: no file given again.
    varied = me.predict(1, made, 0.3, 1, -1, None, None, api_name="/variations")[-1]
    assert varied["params"]["reference"] == made["params"]["reference"]
    plain = me.predict(prompt="drums only", lyrics="", seed=6, **short, api_name="/generate")[-1]
    for client, given, message in (
        (stranger, name, "There is no take of yours named"),
        (me, "2026-01-01/generate-gone-seed1.wav", "There is no take of yours named"),
        (me, plain["takes"][0]["audio"], "is instrumental"),
    ):
        with pytest.raises((ValidationError, AppError), match=message):
            client.predict(prompt="pop", reference_take=given, **short, api_name="/generate")
    assert me.predict(prompt="still serving", **short, api_name="/generate")[-1]["takes"]


# ---------------------------------------------------------------- the page (Chromium)


@pytest.fixture
def page(browser, studio_server, request):
    """A new visitor's page (conftest's ``visit``), pictured afterwards where it failed or where asked."""
    opened = visit(browser, studio_server[0], viewport={"width": 1280, "height": 1000})
    opened.page.wait_for_selector("#studio-tabs")
    yield opened.page
    leave(opened, SHOTS / f"{request.node.name}.png", True)


def _fill(page, selector: str, value: str) -> None:
    box = page.locator(f"{selector} input[type=number]").first
    box.fill(value)
    box.press("Tab")
    page.wait_for_function("([el, v]) => el.value === v", arg=[box.element_handle(), value])


def test_use_this_voice_fills_generates_reference_and_the_next_take_names_it(page, studio_server):
    out = studio_server[1]
    page.locator("#gen-think input[type=checkbox]").uncheck()
    page.locator("#gen-prompt textarea").fill("soft folk, a warm voice")
    page.locator("#gen-lyrics textarea").fill(SUNG["lyrics"])
    page.locator("#gen-advanced").get_by_text("Advanced settings").click()
    _fill(page, "#gen-duration", "10")
    _fill(page, "#gen-steps", "1")
    page.locator("#gen-button").click()
    page.locator("#gen-seeds").get_by_text("take 1").wait_for()
    href = page.locator("#gen-take-1 a.download-link").get_attribute("href")
    voice_take = href.split("/takes/")[1]
    reference = page.locator("#gen-reference")
    reference.locator("button.upload-container").wait_for()  # empty before
    page.locator("#gen-use-voice").click()
    # Generate's timbre reference holds the take (its player shows its 10 s), placed as a link (no copy).
    reference.get_by_text("0:10").wait_for()
    placed = list(handlers.uploads.upload_folder().glob(f"take-*/{Path(voice_take).name}"))
    assert len(placed) == 1 and placed[0].samefile(out / voice_take)
    page.locator("#gen-prompt textarea").fill("a new song in that voice")
    page.locator("#gen-button").click()
    page.locator("#gen-seeds").get_by_text("take 1").wait_for()
    page.wait_for_function(
        "h => document.querySelector('#gen-take-1 a.download-link')?.getAttribute('href') !== h", arg=href
    )
    made = page.locator("#gen-take-1 a.download-link").get_attribute("href").split("/takes/")[1]
    own = json.loads((out / made).with_suffix(".json").read_text())
    assert own["params"]["reference"]["take"] == voice_take
    # In My takes, the first take's *Use this voice* fills it too.
    page.locator("#my-takes").get_by_text("My takes").first.click()
    page.locator('#my-takes-list [data-count="2"]').wait_for()
    reference.get_by_label("Clear").click()
    reference.locator("button.upload-container").wait_for()
    page.locator("#my-takes-list li.my-take").nth(1).get_by_role("button", name="Use this voice").click()
    reference.get_by_text("0:10").wait_for()
    assert len(list(handlers.uploads.upload_folder().glob(f"take-*/{Path(voice_take).name}"))) == 1
