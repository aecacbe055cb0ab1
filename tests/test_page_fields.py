"""A new visitor's page in Chromium: Extend's bars to add shown as the seconds they add and the seam
(item 7), Edit's bars followed however they arrive (a paste too) and placed under the waveform they set (items
7 and 13), a sung take's sections chosen on Edit where no beat is heard (item 8), the loop's length on Duration's
line (item 13), and Advanced settings on a phone (item 10). The tempo at the front, a shorter phone page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import audio
import checks
import edit_bars
import error_messages
import tooltips as tips
import uploads
from music_request import Loop
from test_bar_marks import _region, _take_with_map, _type, sung_on_page
from test_browser import _fill_number, _no_think, _number_shown, _open, _playable, _tab, site  # noqa: F401 (fixtures)
from test_edit_lines import LYRICS, client  # noqa: F401 (fixtures)
from test_page import FIRST_SCREENS, first_screen

DESK = {"viewport": {"width": 1280, "height": 1000}}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def page(browser, site, request):  # noqa: F811
    yield from _open(browser, site, request.node.name, True, **DESK)


@pytest.fixture
def pasting(browser, site, request):  # noqa: F811
    """A desk's page whose visitor may paste (the clipboard's permissions granted)."""
    yield from _open(browser, site, request.node.name, True, **DESK, permissions=["clipboard-read", "clipboard-write"])


@pytest.fixture
def phone(browser, site, request):  # noqa: F811
    yield from _open(browser, site, request.node.name, True, viewport=PHONE, is_mobile=True, has_touch=True)


def test_bars_to_add_show_their_seconds_and_seam_and_go_back_when_emptied(page, client, studio_server):  # noqa: F811
    """A 13 s take with 2 s bars ends 1 s into its last bar: 4 bars to add are 9 s (the bar it ends in filled,
    then four), as the click counts them; the seconds and the drawn extension say so, and the visitor's own
    30 s come back once the bars are emptied (a key that types nothing: Backspace)."""
    song = _take_with_map(client, studio_server[1], seconds=13.0)
    assert edit_bars.extension(song, 4, uploads.load(song), checks.EXTEND_RANGE) == 9.0  # what the click adds
    _tab(page, "Extend")
    page.locator("#extend-src input[type=file]").set_input_files(song)
    page.locator('#extend-wave [data-ready="1"][data-bars="7"][data-extra="30"]').wait_for()
    bars = page.locator("#extend-bars textarea, #extend-bars input").first  # under the waveform, as Edit's
    _type(bars, "4")
    _number_shown(page, "#extend-seconds", 9.0)
    page.locator('#extend-wave [data-extra="9"]').wait_for()
    bars.press("Backspace")
    _number_shown(page, "#extend-seconds", 30.0)
    page.locator('#extend-wave [data-extra="30"]').wait_for()


def test_edits_bars_sit_under_the_waveform_and_follow_a_paste(pasting, client, studio_server):  # noqa: F811
    """Bars right under the waveform they set (not a scroll away in Advanced settings); pasted with Ctrl+V the
    region and its highlight follow, as they follow typing, and so does a Backspace."""
    page = pasting
    song = _take_with_map(client, studio_server[1])
    _tab(page, "Edit")
    page.locator("#edit-src input[type=file]").set_input_files(song)
    page.locator('#edit-wave [data-ready="1"][data-bars="7"]').wait_for()
    wave = page.locator("#edit-wave .ace-wave-box").bounding_box()
    field = page.locator("#edit-bars").bounding_box()
    assert 0 <= field["y"] - (wave["y"] + wave["height"]) <= 150, (wave, field)
    bars = page.locator("#edit-bars textarea, #edit-bars input").first
    page.evaluate("() => navigator.clipboard.writeText('2-3')")
    bars.click()
    bars.press("Control+v")
    assert bars.input_value() == "2-3"
    page.locator('#edit-wave [data-start="2"][data-end="6"]').wait_for()
    page.wait_for_function("() => Number(document.querySelector('#edit-end input').value) === 6")
    assert _region(page) == (2.0, 6.0)
    bars.press("End")
    bars.press("Backspace")
    bars.press("Backspace")  # "2": bar 2 alone
    page.locator('#edit-wave [data-start="2"][data-end="4"]').wait_for()
    page.wait_for_function("() => Number(document.querySelector('#edit-end input').value) === 4")
    assert _region(page) == (2.0, 4.0)


def test_a_sung_takes_sections_with_no_beat_are_chosen_on_edit(page, studio_server):
    """A take of the tiny model (noise: no beat, so no bars) sung with [Verse]/[Chorus] sections, sent to Edit:
    its sections are drawn over the waveform, and one clicked is the region."""
    own = sung_on_page(page, studio_server[1])
    assert own["sections"] and own.get("bars") == [], own  # sections from its words, no bars in its noise
    page.locator("#gen-send-edit").click()
    blocks = page.locator("#edit-wave .ace-section")
    expect(blocks).to_have_text([s["name"] for s in own["sections"]], timeout=120_000)  # the upload read first
    assert page.locator("#edit-wave .song-wave").get_attribute("data-bars") == "0"
    chosen = blocks.last
    start, end = float(chosen.get_attribute("data-from")), float(chosen.get_attribute("data-to"))
    assert (start, end) == pytest.approx((own["sections"][-1]["start"], own["sections"][-1]["end"]), abs=0.001)
    chosen.click()
    page.wait_for_function("(v) => Number(document.querySelector('#edit-end input').value) === v", arg=end)
    assert _region(page) == (start, end)
    expect(chosen).to_have_attribute("aria-pressed", "true")  # drawn again once the region reaches the waveform


def _loop_words(bars: int, beats: int, bpm: int) -> str:
    """Duration's line for a loop, its length as the studio makes it (``Loop.of``: one cycle)."""
    seconds = Loop.of(bars, beats, bpm).samples / audio.SAMPLE_RATE
    return tips.LOOP_LENGTH.format(bars=bars, metre=tips.METRE_NAMES[str(beats)], bpm=bpm, seconds=seconds)


def _duration_says(page, words: str) -> None:
    page.wait_for_function("(w) => document.querySelector('#gen-duration').innerText.includes(w)", arg=words)


def test_loop_sits_in_the_tempo_row_and_durations_help_says_the_loops_length(page):
    """Loop on the first screen in the tempo row beside BPM and time signature (it sat last in
    Advanced settings, under DCW, then beside Duration); while it is on, Duration's line says how long the
    loop is, following the BPM and metre, or what it still needs. The tempo on a desk's first screen
    (``_tempo_first``), its help whole."""
    _tempo_first(page, DESK["viewport"])
    loop, duration = page.locator("#gen-loop"), page.locator("#gen-duration")
    assert loop.is_visible()  # Advanced settings still folded
    here, bpm = loop.bounding_box(), page.locator("#gen-bpm").bounding_box()
    assert abs(here["y"] - bpm["y"]) < 10 and here["x"] > bpm["x"], (here, bpm)
    _no_think(page)
    page.locator("#gen-loop input").click()
    page.get_by_role("option", name="8 bars").click()
    _duration_says(page, error_messages.LOOP_NEEDS_BPM)  # no tempo, no Think: none to count the bars at
    _fill_number(page, "#gen-bpm", 120)
    _duration_says(page, _loop_words(8, 4, 120))  # "A loop of 8 bars of 4/4 at 120 BPM: 16.0 s"
    assert "16.0 s" in _loop_words(8, 4, 120)
    _fill_number(page, "#gen-bpm", 100)
    _duration_says(page, _loop_words(8, 4, 100))
    page.locator("#gen-meter input").click()
    page.get_by_role("option", name=re.compile(r"^3(.4)?$")).click()  # "3/4" (its value "3", the beats a bar)
    _duration_says(page, _loop_words(8, 3, 100))
    assert duration.locator("input[type=number]").is_disabled()
    page.locator("#gen-loop input").click()
    page.get_by_role("option", name="Off").click()
    _duration_says(page, tips.DURATION)
    assert not duration.locator("input[type=number]").is_disabled()
    lock = page.locator("#gen-lock .info-text")  # whole on a desk, in words short enough for the row
    assert lock.inner_text() == tips.TEMPO_ROW["lock_to_grid"]
    assert lock.evaluate("h => h.scrollHeight <= h.clientHeight && h.scrollWidth <= h.clientWidth")


def _inside(inner: dict, outer: dict) -> bool:
    return (
        inner["x"] >= outer["x"] - 0.5
        and inner["y"] >= outer["y"] - 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


# Each slider shown (Generate's: the other tabs are hidden), its card, track and number box; each dropdown
# shown, its text box's right edge and its arrow's left.
SLIDERS = """() => [...document.querySelectorAll('.block:has(input[type=range])')].filter((b) => b.offsetParent)
  .map((b) => [b.id, ...[b, b.querySelector('input[type=range]'), b.querySelector('input[type=number]')]
    .map((e) => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; })])"""
DROPDOWNS = """() => [...document.querySelectorAll('.secondary-wrap:has(> .icon-wrap)')].filter((w) => w.offsetParent)
  .map((w) => [w.closest('.block').id, w.querySelector('input').getBoundingClientRect().right,
    w.querySelector('.icon-wrap').getBoundingClientRect().left])"""
# A button's height, and its words' (their lines' box).
HEIGHTS = """(b) => { const r = document.createRange(); r.selectNodeContents(b);
  return [b.getBoundingClientRect().height, r.getBoundingClientRect().height]; }"""


def test_advanced_settings_and_write_it_fit_a_phone(phone):
    """At 390 px: no slider runs past its card (Fade out did), no dropdown's arrow lies over its words
    (Loudness's over "-14 LU"), and Write it is as tall as its words, not a tall empty box. The tempo on the
    phone's first screen (``_tempo_first``), the page with Advanced open shorter than ``PHONE_OPEN_MOST_PX``,
    a field's help one line until tapped. The first screen on a phone (test_page's ``first_screen``)."""
    _tempo_first(phone, PHONE)
    assert FIRST_SCREENS["phone"] == (PHONE, "")  # the screen test_page's ``first_screen`` names the phone's
    first_screen(phone, "phone")
    _tab(phone, "Generate")
    button, words = phone.locator("#gen-write").evaluate(HEIGHTS)
    assert button <= words + 24, (button, words)
    phone.locator("#gen-advanced").get_by_text("Advanced settings").click()
    phone.locator("#gen-fade-out input[type=range]").wait_for()
    phone.locator("#gen-dcw").wait_for()
    tall = phone.evaluate("document.documentElement.scrollHeight")
    print(f"\nGenerate at 390 px, Advanced settings open: {tall} px")
    assert tall < PHONE_OPEN_MOST_PX, tall
    sliders = phone.evaluate(SLIDERS)
    assert {"gen-fade-out", "gen-duration", "gen-steps"} <= {name for name, *_ in sliders}, sliders
    for name, card, track, number in sliders:
        assert _inside(track, card) and _inside(number, card), (name, card, track, number)
    dropdowns = phone.evaluate(DROPDOWNS)
    assert "gen-loudness" in {name for name, *_ in dropdowns}, dropdowns
    for name, text_right, arrow_left in dropdowns:
        assert text_right <= arrow_left + 0.5, (name, text_right, arrow_left)
    _help_opens(phone, "#gen-think")  # the tempo row's, on a phone, while the field is in use


# ---------------------------------------------------------------- the tempo at the front

TEMPO = ("gen-bpm", "gen-meter", "gen-loop", "gen-lock")
# Generate's page with Advanced settings open on a phone (390 × 844), measured: 4,171 px with the
# tempo row unfolded and every field's help one line until tapped (5,965 px with every help in full; 19 px more
# where the status line wraps). The bound leaves 10 % for fonts and Chromium's versions and stays 1,350 px under
# the page before.
PHONE_OPEN_MOST_PX = 4600


def _tempo_first(page, size: dict) -> None:
    """A producer looks for BPM, metre, Loop and Lock to the grid first; BPM was folded in Advanced
    settings and the lock its 20th control. Now all four are on a new visitor's first screen (``size``) with
    Generate, Advanced settings still folded (the key in it)."""
    page.locator("#gen-button").wait_for()
    assert not page.locator("#gen-key").is_visible()  # the rest stays folded
    for name in (*TEMPO, "gen-button"):
        assert page.locator(f"#{name}").is_visible(), name
        box = page.locator(f"#{name}").bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= size["height"], (name, box)


def _help_opens(page, field: str) -> None:
    """The field's help is one line until tapped, then whole."""
    help_ = page.locator(f"{field} .info-text")
    closed = help_.bounding_box()["height"]
    help_.click()
    expect(help_).to_have_attribute("data-open", "")
    assert help_.bounding_box()["height"] > 1.5 * closed, closed


# ---------------------------------------------------------------- the tempo at the front

TEMPO = ("gen-bpm", "gen-meter", "gen-loop", "gen-lock")
# Generate's page with Advanced settings open on a phone (390 × 844), measured: 4,171 px with the
# tempo row unfolded and every field's help one line until tapped (5,965 px with every help in full; 19 px more
# where the status line wraps). The bound leaves 10 % for fonts and Chromium's versions and stays 1,350 px under
# the page before.
PHONE_OPEN_MOST_PX = 4600
