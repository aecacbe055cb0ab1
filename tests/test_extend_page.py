"""Extend's *Where* on the page, in Chromium against the served studio: at the end needs no field; *From a point*
shows the point's field and the point on the waveform with the bar lines, set by a click after *Extend from here*
(on the nearest bar line) or typed; the take is made from there and its record says so; *Before the start* makes an
intro; a point outside the song is refused with a message on the point's field. The page's listeners are
in-page JavaScript (``waveform.PLACE_JS`` …), waited on through the waveform's ``data-*`` marks."""

from __future__ import annotations

import json

import pytest

from test_bar_marks import mapped, page  # noqa: F401 (fixtures: a 14 s take with bar lines every 2 s, bar 3 at 4 s)
from test_browser import POLL_MS, _fill_number, _playable, _tab, site  # noqa: F401 (fixtures)
from test_edit_lines import client  # noqa: F401 (fixtures)


def _song(desk, song: str) -> None:
    _tab(desk, "Extend")
    desk.locator("#extend-src input[type=file]").set_input_files(song)
    desk.locator('#extend-wave .song-wave[data-ready="1"]:not([data-bars="0"])').wait_for(timeout=60_000)


def _place(desk, label: str) -> None:
    desk.locator("#extend-place").get_by_text(label, exact=True).click()


def _record(desk, outputs) -> dict:
    href = desk.locator("#extend-take-1 a.download-link").get_attribute("href").split("/takes/")[1]
    return json.loads((outputs / href).with_suffix(".json").read_text())


def test_from_a_point_set_on_the_waveform_keeps_the_song_to_it_the_record_says_where_and_outside_it_is_refused(
    page,  # noqa: F811
    mapped,  # noqa: F811
    studio_server,
):
    _song(page, mapped)
    # At the end (the default): no field to fill, the seam at the song's end.
    assert not page.locator("#extend-where").is_visible()
    page.locator('#extend-wave .song-wave[data-where="end"]').wait_for()
    _place(page, "From a point")
    # A first point at once: the bar line nearest the middle (bar 4 at 6 s), shown on the waveform.
    box = page.locator("#extend-where textarea, #extend-where input").first
    box.wait_for(state="visible")
    page.locator('#extend-wave .song-wave[data-where="point"][data-point="6"]').wait_for()
    assert box.input_value() == "bar 4"
    _fill_number(page, "#extend-seconds", 5)
    # *Extend from here*, then a click near 4.1 s: the point on bar 3's line (4 s), the field says so.
    page.locator("#extend-wave .ace-point").click()
    canvas = page.locator("#extend-wave canvas").bounding_box()
    total = 14.0  # the take drawn: the song kept to 6 s and 5 s new lie within the song's 14 s
    page.mouse.click(canvas["x"] + canvas["width"] * 4.1 / total, canvas["y"] + canvas["height"] / 2)
    page.locator('#extend-wave .song-wave[data-point="4"]').wait_for()
    page.wait_for_function(
        "() => document.querySelector('#extend-where textarea, #extend-where input').value === 'bar 3'"
    )
    page.locator("#extend-button").click()
    assert _playable(page, "#extend-take-1") == pytest.approx(9.0, abs=0.1)  # 4 s kept, 5 s new
    made = _record(page, studio_server[1])
    assert made["params"]["where"] == "bar 3"
    # Typed: the waveform follows.
    box.fill("0:10")
    box.press("Tab")
    page.locator('#extend-wave .song-wave[data-point="10"]').wait_for()
    # A point outside the song: refused with a message on the point's field, and no take made.
    made = page.locator("#extend-take-1 a.download-link").get_attribute("href")
    box.fill("0:30")
    box.press("Tab")
    page.locator("#extend-button").click()
    page.wait_for_function(
        "() => (document.querySelector('#extend-where').dataset.studioNote || '').includes('outside the song')",
        polling=POLL_MS,
    )
    assert page.locator("#extend-take-1 a.download-link").get_attribute("href") == made


def test_before_the_start_makes_an_intro_and_the_point_field_stays_hidden(page, mapped, studio_server):  # noqa: F811
    _song(page, mapped)
    _place(page, "Before the start")
    page.locator('#extend-wave .song-wave[data-where="start"]').wait_for()
    assert not page.locator("#extend-where").is_visible()
    _fill_number(page, "#extend-seconds", 6)
    page.locator("#extend-button").click()
    seconds = _playable(page, "#extend-take-1")
    made = _record(page, studio_server[1])
    assert made["params"]["where"] == "start"
    assert seconds == pytest.approx(14.0 + made["params"]["extend_seconds"], abs=0.1)
