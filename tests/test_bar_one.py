"""A musician's correction of the map. *Bar 1 here* (``first_downbeat``) and the BPM typed count
a song's bars from the musician's bar 1: on the beats the map heard (a real song's drift kept), or at the BPM typed
where it heard none or the BPM is not its tempo (``bar_one.rephased``); Edit and Extend by the bar, the take's
record and the upload's reading follow, through ``gradio_client``, and the page (Chromium) counts the same."""

from __future__ import annotations

import inspect
import json
import re

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError

import analysis
import audio
import bar_one
import edit_bars
import error_messages
import form_fields
import records
import song_map
import uploads
import variations
import waveform
from checks import InputError
from test_browser import _open, _tab, site  # noqa: F401 (fixtures)

# The stand-in band 2 % slow, drifting 1 %: its beats are a real song's, not a grid's.
SLOW = {"error": -0.02, "drift": 0.01}
SECONDS = 10.0  # the band's song: five bars, enough to count from its second beat


def _slow():
    import band

    return band.Band(**SLOW)


def _played():
    import band

    return band.play(120, 4, SECONDS, _slow())


def _counted(lines: list[float], first: float, bpm=None, per_bar=4, seconds=16.0, heard=4) -> list[float]:
    return bar_one.rephased(lines, first, bpm, per_bar, seconds, heard)


def test_bar_1_starts_at_the_click_and_the_maps_beats_are_moved_onto_it():
    heard = [0.0, 2.1, 4.1, 6.0, 8.2, 10.2, 12.1, 14.0]  # a bar is 2 s, each a little off: a real song's
    # A click 25 ms after the second beat of bar 1 (0.525 s): bar 1 starts at the click, and every bar a quarter of
    # the map's later, moved by as much (each bar's length, its drift, kept).
    found = _counted(heard, 0.55)
    assert found[0] == 0.55 and found[1] == 2.625 and found[-1] == 14.5
    # The BPM typed at the map's tempo (or at twice it: the tracker's octave) keeps its beats too.
    assert _counted(heard, 0.55, 120) == found
    assert _counted(heard, 0.55, 240)[:3] == [0.55, 1.6, 2.625]
    # Typed far from its tempo: a steady grid at the BPM typed from the click itself.
    steady = _counted(heard, 0.55, 90)
    assert steady[:3] == [0.55, 3.217, 5.883] and np.diff(steady) == pytest.approx(8 / 3, abs=0.001)
    # 3/4 typed on the same beats: three of them a bar. Nothing before bar 1 is counted.
    assert _counted(heard, 4.1, per_bar=3)[:3] == [4.1, 5.525, 7.1]
    # No map and no BPM: nothing to count from; a map's beats carried on before its first bar line.
    assert _counted([], 1.0) == [] and _counted([], 1.0, 60)[:2] == [1.0, 5.0]
    assert _counted([2.0, 4.0, 6.0], 0.4, seconds=8.0)[:2] == [0.4, 2.4]


# Where a bar line counted from the musician's bar 1 may lie from the band's true one: the band's beats as heard.
ON_BAR_S = 0.03


def _half_a_beat_early(lines: list[float], per_bar: int) -> list[float]:
    """A map whose bar lines all fall half a beat early (a track whose off-beats are louder than its beats)."""
    bars = np.asarray(lines)
    return [round(float(t), 3) for t in bars - np.gradient(bars) / per_bar / 2]


@pytest.mark.parametrize("record", [None, "real_groove"], ids=["band", "real-record"])
def test_bar_1_set_on_a_map_half_a_beat_off_puts_every_bar_on_the_true_downbeats(record, tmp_path):
    """The band (its drums, and the real record) 2 % slow drifting 1 %, its map half a beat early: the musician
    sets bar 1 on its second true downbeat. Bar 1 lies where they set it (to the millisecond) and every later bar
    line on the band's true ones, in the request (Edit's bars, ``edit_bars.region``) as in the count."""
    import band

    played = band.play(120, 4, 24.0, band.Band(error=-0.02, drift=0.01, record=record))
    heard, per_bar, _ = song_map.grid_of(played.audio, audio.SAMPLE_RATE, 4, 120)
    assert per_bar == 4 and np.abs(np.asarray(heard[:10]) - played.bars[:10]).max() <= ON_BAR_S  # the map is right
    wrong = _half_a_beat_early(heard, 4)
    first = round(float(played.bars[1]), 3)  # the musician's click on the true downbeat
    counted = bar_one.rephased(wrong, first, None, None, 24.0, 4)
    assert abs(counted[0] - first) <= 0.001, counted[:2]
    truth = played.bars[1 : 1 + len(counted)]
    assert len(counted) >= len(played.bars) - 2 and np.abs(np.asarray(counted) - truth).max() <= ON_BAR_S, counted
    # The request counts the same: Edit's bars 2-3 from that bar 1 are the band's bars 3-4, on the map half a beat off.
    path = tmp_path / "half-a-beat.wav"
    audio.save(played.audio, path, "wav")
    edit_bars._read.get(path, lambda: song_map.Map(wrong, [], 4, 117.6, 24.0), None)
    start, end = edit_bars.region(str(path), "2-3", None, played.audio, None, (first, None))
    assert start == pytest.approx(played.bars[2], abs=ON_BAR_S) and end == pytest.approx(played.bars[4], abs=ON_BAR_S)
    line = edit_bars.map_line(edit_bars.corrected(song_map.Map(wrong, [], 4, None, 24.0), first, None, None), first)
    assert line.endswith(f"counted from Bar 1 at {first:g} s"), line


def test_bar_1_is_a_time_inside_the_song_else_refused_with_a_message():
    song = np.zeros((2, int(10 * audio.SAMPLE_RATE)), np.float32)
    assert edit_bars.bar_one_at(None, song) is None and edit_bars.bar_one_at(" ", song) is None
    assert edit_bars.bar_one_at(0, song) == 0.0 and edit_bars.bar_one_at("2.3456", song) == 2.346
    for given, words in ((10.0, "outside the song"), (-1, "outside the song"), ("soon", "is not one"), (True, "not")):
        with pytest.raises(InputError, match=words) as refused:
            edit_bars.bar_one_at(given, song)
        assert refused.value.param == "first_downbeat"  # noqa: PT017 (the field it is marked on)
    unheard = song_map.Map(seconds=10.0)
    with pytest.raises(InputError, match="type the song's BPM too"):
        edit_bars.corrected(unheard, 1.0, None, None)
    assert edit_bars.corrected(unheard, 1.0, "4", 120).bars == [1.0, 3.0, 5.0, 7.0, 9.0]


def test_the_maps_line_says_how_sure_it_is():
    steady = song_map.Map([0.0, 2.0, 4.0], [], 4, 120.0, 6.0, song_map.Tempo(120.0, 0.4))
    wandering = song_map.Map([0.0, 2.0, 4.3], [], 3, 90.0, 6.0, song_map.Tempo(90.1, 7.5))
    assert edit_bars.map_line(steady) == "3 bars: ≈ 120 BPM in 4/4, steady"
    assert edit_bars.map_line(wandering) == "3 bars: ≈ 90.1 BPM in 3/4, its bars wander up to 7 %"
    # Counted from a Bar 1: the tempo of its bars as counted (2.15 s of three beats).
    counted = "3 bars: ≈ 83.7 BPM in 3/4, its bars wander up to 7 %, counted from Bar 1 at 0.5 s"
    assert edit_bars.map_line(wandering, 0.5) == counted
    assert "set Bar 1" in edit_bars.map_line(song_map.Map(seconds=6.0)) and edit_bars.map_line(None) == ""


@pytest.fixture(scope="module")
def drifting(tmp_path_factory) -> tuple[str, np.ndarray]:
    """The band's drifting song as an upload, measured once in this process (the served studio's: the first
    measurement compiles librosa's tracker), and its true beats."""
    played = _played()
    path = tmp_path_factory.mktemp("bar-one") / "drifting.wav"
    audio.save(played.audio, path, "wav")
    found = analysis.analyze(path)
    for bpm in {None, 120, int(round(found.bpm or 0)) or None}:
        edit_bars.of_song(str(path), None, bpm)
    return str(path), played.beats


def test_edit_and_extend_by_the_bar_count_from_the_musicians_bar_1(studio_server, band, drifting):
    """The map's bar 1 is the band's first downbeat; the musician says bar 1 is its second beat: Edit's bars 2-3
    are the band's beats 5 to 13 (its drift kept), the take's record counts from there, and Extend by 3 bars ends
    on that grid carried on; a bar 1 outside the song is refused at admission, on its field."""
    path, beats = drifting
    band(_slow())
    client = Client(studio_server[0], verbose=False)
    given = round(float(beats[1]), 3)  # a click on the band's second beat: bar 1 is where it is set
    asked = {"src_audio": handle_file(path), "prompt": "dnb", "bpm": 120, "inference_steps": 1}
    edited = client.predict(**asked, bars="2-3", first_downbeat=given, api_name="/edit")[-1]
    params = edited["params"]
    assert params["repainting_start"] == pytest.approx(beats[5], abs=0.03), params
    assert params["repainting_end"] == pytest.approx(beats[13], abs=0.03), params
    assert params["first_downbeat"] == given and params["edited_bars"] == [2, 3]
    assert edited["takes"][0]["bars"][0] == pytest.approx(beats[1], abs=0.03), edited["takes"][0]["bars"]
    # A variation of the take counts from the same bar 1; Use these settings brings Generate's fields back.
    varied = variations.prepare(1, edited, 0.3, 1, 5, src_audio=path)
    assert varied.request.notes.first_downbeat == given
    assert varied.request.render.pipeline.repainting_start == params["repainting_start"]
    assert records.settings(edited)["bpm"] == 120
    longer = client.predict(**asked, bars="3", first_downbeat=given, api_name="/extend")[-1]["params"]
    lines = edit_bars.corrected(edit_bars.of_song(path, None, 120), given, None, 120).bars
    bar = float(np.median(np.diff(lines[-9:])))
    after = (longer["source_seconds"] + longer["extend_seconds"] - lines[-1]) / bar
    assert after == pytest.approx(round(after), abs=0.01) and longer["first_downbeat"] == given, (after, longer)
    unmoved = (longer["source_seconds"] + longer["extend_seconds"] - beats[::4][-1]) / bar
    assert abs(unmoved - round(unmoved)) > 0.2, unmoved  # a quarter bar off the map as heard
    with pytest.raises(ValidationError, match=r"first_downbeat: Bar 1 at 99 s is outside the song, which is 10\.0 s"):
        client.predict(**asked, bars="2-3", first_downbeat=99, api_name="/edit")


def test_an_uploads_reading_counts_from_bar_1_where_one_is_given(studio_server, drifting):
    path, beats = drifting
    client = Client(studio_server[0], verbose=False)
    line, *_, wave = client.predict(src_audio=handle_file(path), extend_seconds=30, api_name="/extend_analyze")
    assert " bars: ≈ " in line and "steady" in line and "Bar 1" not in line, line
    given = round(float(beats[1]), 3)
    line, *_, wave = client.predict(
        src_audio=handle_file(path), extend_seconds=30, first_downbeat=given, api_name="/extend_analyze"
    )
    state = json.loads(wave)
    assert line.endswith(f"counted from Bar 1 at {given:g} s"), line
    assert state["bars"][0] == pytest.approx(given, abs=0.03) and state["heard"][0] == pytest.approx(0.0, abs=0.03)


# Markdown's emphasis, which a field's help and placeholder, and a refusal, show as it is typed (plain text).
EMPHASIS = re.compile(r"(?<![\w*])\*[^*\s][^*]*\*(?![\w*])")


def test_plain_text_names_the_bar_1_button_in_quotes_and_its_field_asks_for_seconds(studio_server):
    """Every field's help and placeholder on the page, and every refusal, are plain text: no Markdown emphasis
    shown as asterisks (the button is named in quotes). The Bar 1 field's placeholder says what to put there,
    where a number read like a time the studio found."""
    from conftest import SERVED

    demo = SERVED[studio_server[0]]
    shown = {
        f"{type(block).__name__} {getattr(block, 'elem_id', None)}.{what}": text
        for block in demo.blocks.values()
        for what in ("info", "placeholder")
        if isinstance(text := getattr(block, what, None), str)
    }
    shown |= {f"error_messages.{name}": text for name, text in vars(error_messages).items() if isinstance(text, str)}
    assert len(shown) > 100 and not {k: v for k, v in shown.items() if EMPHASIS.search(v)}
    for tab in ("edit", "extend"):
        box = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == f"{tab}-bar-one")
        assert "Bar 1 here" in box.placeholder and not re.search(r"\d[.,]\d", box.placeholder), box.placeholder


def _readers_with_bar_one() -> list[str]:
    """The readings that take a Bar 1 (``form_fields.READERS`` whose signature has ``first_downbeat``)."""
    return [
        name for name, read in form_fields.READERS.items() if "first_downbeat" in inspect.signature(read).parameters
    ]


@pytest.mark.parametrize("given", ["50", "abc", "-3"])
def test_the_readings_refuse_a_bar_1_as_edit_and_extend_do(studio_server, drifting, given):
    """A Bar 1 past the song's end, not a number, or before its start: ``/edit_analyze`` and ``/extend_analyze``
    refuse it with the words Edit and Extend refuse it in, on ``first_downbeat`` (the map as heard is not
    returned as if it had been counted from it)."""
    path, _ = drifting
    client = Client(studio_server[0], verbose=False)
    with pytest.raises(InputError) as expected:
        edit_bars.bar_one_at(given, uploads.load(path))
    words = expected.value.message
    assert _readers_with_bar_one() == ["extend", "edit"]
    for name in _readers_with_bar_one():
        with pytest.raises(ValidationError, match=re.escape(f"first_downbeat: {words}")):
            client.predict(
                src_audio=handle_file(path), prompt="dnb", first_downbeat=given, bpm=120, api_name=f"/{name}"
            )
        with pytest.raises(AppError) as refused:
            client.predict(src_audio=handle_file(path), first_downbeat=given, api_name=f"/{name}_analyze")
        assert refused.value.message == words, (name, refused.value.message)


@pytest.fixture
def page(browser, site, request):  # noqa: F811
    yield from _open(browser, site, request.node.name, True, viewport={"width": 1280, "height": 1000})


def test_bar_1_here_moves_the_ticks_fills_the_field_and_counts_as_the_request_does(page, drifting):
    """A click on the waveform after *Bar 1 here*, on the band's second beat: the first tick moves there, the field
    and the song's line say where, and Edit's typed bars set the region the request would (``edit_bars.region``)."""
    path, beats = drifting
    _tab(page, "Edit")
    page.locator("#edit-src input[type=file]").set_input_files(path)
    wave = page.locator('#edit-wave .song-wave[data-ready="1"][data-first="0"]:not([data-bars="0"])')
    wave.wait_for()
    page.locator("#edit-src-info").get_by_text("steady").wait_for()  # the map read: nothing comes after
    assert "Bar 1" not in page.locator("#edit-src-info").inner_text()  # none set: the map as heard
    assert page.locator("#edit-bar-one textarea, #edit-bar-one input").first.input_value() == ""
    page.locator("#edit-wave .ace-bar-one").click()
    page.locator('#edit-wave [data-arming="1"]').wait_for()
    box = page.locator("#edit-wave canvas").bounding_box()
    page.mouse.click(box["x"] + box["width"] * beats[1] / SECONDS, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "t => Math.abs(Number(document.querySelector('#edit-wave .song-wave').dataset.first) - t) < 0.03",
        arg=float(beats[1]),
    )
    first = float(page.locator("#edit-bar-one textarea, #edit-bar-one input").first.input_value())
    assert first == pytest.approx(beats[1], abs=0.03)
    assert first == float(page.locator("#edit-wave .song-wave").get_attribute("data-first"))
    page.locator("#edit-src-info").get_by_text(f"counted from Bar 1 at {first:g} s").wait_for()
    page.locator("#edit-bars textarea, #edit-bars input").first.fill("2-3")
    bpm = int(round(analysis.analyze(path).bpm))  # the BPM the reading filled in (folded away)
    expected = edit_bars.region(path, "2-3", None, None, bpm, (first, None))
    page.wait_for_function(
        "end => Math.abs(Number(document.querySelector('#edit-end input').value) - end) < 0.0015", arg=expected[1]
    )
    start = float(page.locator("#edit-start input").first.input_value())
    assert start == pytest.approx(expected[0], abs=0.0015) and expected[0] == pytest.approx(beats[5], abs=0.03)
    # The page's count (``waveform.REPHASE_JS``) is the request's (``bar_one.rephased``), case by case.
    heard = [0.0, 2.1, 4.1, 6.0, 8.2, 10.2, 12.1, 14.0]
    cases = [(heard, 0.55, 0, 4, 16.0, 4), (heard, 0.55, 240, 4, 16.0, 4), (heard, 0.55, 90, 4, 16.0, 4)]
    cases += [(heard, 5.3, 60, 3, 16.0, 4), (heard, 7.9, 0, 0, 15.2, 3), ([], 1.0, 100, 0, 16.0, 0)]
    cases += [([2.0, 4.0, 6.0], 0.4, 0, 4, 8.0, 4), ([0.0, 2.0], 1.2, 40, 4, 4.0, 4)]
    cases += [(_half_a_beat_early(heard, 4), 2.1, 0, 4, 16.0, 4), (heard, 1.37, 60, 0, 16.0, 4)]  # moved onto bar 1
    # A line met twice, and a BPM typed past the studio's range (a request refuses it): unbounded, the page's
    # count of these would never end (the page would hang), the request's would divide by zero or ask for 10^9
    # bar lines.
    cases += [
        ([2.0, 2.0, 4.0, 4.0, 6.0], 0.4, 0, 4, 8.0, 4),
        ([], 1.0, 1e8, 4, 600.0, 0),
        (heard, 0.55, 1e8, 4, 16.0, 4),
    ]
    script = "(cases) => { " + waveform.REPHASE_JS + "; return cases.map((c) => rephase(...c)); }"
    nulls = [(c[0], c[1], c[2], c[3] or None, c[4], c[5] or None) for c in cases]
    page_count = page.evaluate(script, [[c[0], c[1], c[2], c[3] or None, c[4], c[5] or None] for c in cases])
    assert page_count == [bar_one.rephased(*c) for c in nulls]
