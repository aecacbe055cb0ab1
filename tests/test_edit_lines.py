"""Edit by lyric lines. The span of a choice of lines or a section (a breath each side, snapped to the
nearest quiet frame), the whole song's lyrics with the chosen lines' new lyrics, the refusals with a
message; then ``/edit`` by lines through gradio_client against the served studio (a take it
made with synced lyrics, its refusals, the edited take's own synced lyrics) and, in Chromium, lines
chosen in the Edit tab setting the region on the waveform."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import ValidationError

import audio
import edit_lines
import handlers
import lrc
import music_shape
import uploads
from checks import InputError
from test_browser import _open, _tab, drag_region, site  # noqa: F401 (fixtures)

LYRICS = "[Verse 1]\nneon lights\nburning bright\n\n[Chorus]\nhold on tight\nnever let go\n[Verse 2]\nmorning comes"
TIMES = [1.0, 3.0, 6.0, 8.0, 11.0]
SR = audio.SAMPLE_RATE


def _sung_lines(seconds: float = 15.0, times=TIMES) -> edit_lines.SungLines:
    return edit_lines.parse(LYRICS, list(times), seconds)


def _loud(seconds: float, quiet: list[tuple[float, float]] = ()) -> np.ndarray:
    """Loud noise for ``seconds``, silent in each ``quiet`` stretch."""
    song = np.random.default_rng(0).uniform(-0.5, 0.5, (2, int(seconds * SR))).astype(np.float32)
    for a, b in quiet:
        song[:, int(a * SR) : int(b * SR)] = 0.0
    return song


def _refused(field: str, pattern: str, call, *args) -> None:
    with pytest.raises(InputError) as caught:
        call(*args)
    assert caught.value.param == field and re.search(pattern, caught.value.message), (caught.value.param, caught.value)


def test_lines_carry_their_times_sections_and_the_next_lines_start():
    sung = _sung_lines()
    assert [(line.number, line.text, line.section, line.section_number) for line in sung.lines] == [
        (1, "neon lights", "Verse 1", 1),
        (2, "burning bright", "Verse 1", 1),
        (3, "hold on tight", "Chorus", 2),
        (4, "never let go", "Chorus", 2),
        (5, "morning comes", "Verse 2", 3),
    ]
    assert [(line.start, line.until) for line in sung.lines] == [(1, 3), (3, 6), (6, 8), (8, 11), (11, 15)]
    assert sung.sections == ("Verse 1", "Chorus", "Verse 2")
    assert edit_lines.parse(LYRICS, TIMES[:4], 15.0) is None  # a record whose times are not these lyrics'


def test_a_span_keeps_a_breath_each_side_and_stops_after_the_last_line():
    sung = _sung_lines(30.0)
    b = edit_lines.BREATH_SECONDS
    assert edit_lines.span(sung, 2, 2) == (3 - b, 6 - b)
    assert edit_lines.span(sung, 3, 4) == (6 - b, 11 - b)
    assert edit_lines.span(sung, 1, 1) == (1 - b, 3 - b)
    # The last line: to at most MAX_LINE_SECONDS after it starts, not through a 19 s outro.
    assert edit_lines.span(sung, 5, 5) == (11 - b, 11 + edit_lines.MAX_LINE_SECONDS)
    assert edit_lines.span(_sung_lines(15.0), 5, 5) == (11 - b, 15.0)  # or the song's end, sooner


def test_a_span_snaps_each_edge_to_the_nearest_quiet_frame_but_never_past_a_lines_start():
    sung = _sung_lines(15.0)
    start, end = edit_lines.span(sung, 2, 2, _loud(15.0, [(2.40, 2.44), (5.50, 5.54)]))
    assert start == pytest.approx(2.42, abs=0.011) and end == pytest.approx(5.52, abs=0.011)
    # Nearer silence inside the line itself (past its start) or past the next line's start is not taken.
    start, end = edit_lines.span(sung, 2, 2, _loud(15.0, [(3.05, 3.10), (6.02, 6.06)]))
    assert (start, end) == (3 - edit_lines.BREATH_SECONDS, 6 - edit_lines.BREATH_SECONDS)
    # None within reach: the breath's edges as they are; a silent song is all quiet, so the target itself.
    assert edit_lines.span(sung, 2, 2, _loud(15.0)) == edit_lines.span(sung, 2, 2)
    assert edit_lines.span(sung, 2, 2, _loud(15.0, [(0.0, 15.0)])) == pytest.approx((2.75, 5.75), abs=0.011)


def test_a_choice_of_lines_or_a_section_covers_the_first_to_the_last():
    sung = _sung_lines()
    assert edit_lines.choose(sung, [2], None) == (2, 2)
    assert edit_lines.choose(sung, [4, 2], None) == (2, 4)
    assert edit_lines.choose(sung, "2-3", "") == (2, 3) and edit_lines.choose(sung, "1, 4", None) == (1, 4)
    assert edit_lines.choose(sung, None, "chorus") == (3, 4) == edit_lines.choose(sung, [], "[Chorus]")
    assert edit_lines.choose(sung, None, 3) == (5, 5) and edit_lines.choose(sung, [1], "Chorus") == (1, 4)
    assert edit_lines.choose(sung, [], "") is None and edit_lines.choose(None, None, None) is None


def test_a_choice_is_refused_with_a_message_on_its_field():
    sung = _sung_lines()
    _refused("lines", r"5 sung lines; there is no line 9", edit_lines.choose, sung, [2, 9], None)
    _refused("lines", r"“two” is not a line number", edit_lines.choose, sung, "two", None)
    _refused(
        "section",
        r"no section “Bridge”. Its sections are: 1 Verse 1, 2 Chorus, 3 Verse 2",
        edit_lines.choose,
        sung,
        None,
        "Bridge",
    )
    _refused("section", r"no section “4”", edit_lines.choose, sung, None, 4)
    twice = edit_lines.parse("[Chorus]\na\n[Verse]\nb\n[Chorus]\nc", [1, 4, 8], 12.0)
    _refused(
        "section",
        r"More than one section is called “chorus” \(sections \[1, 3\]\)",
        edit_lines.choose,
        twice,
        None,
        "chorus",
    )
    _refused("lines", r"does not know when this song's words are sung", edit_lines.choose, None, [1], None)
    _refused("section", r"does not know when this song's words are sung", edit_lines.choose, None, None, "Chorus")
    close = edit_lines.parse("a\nb\nc", [1.0, 1.6, 5.0], 8.0)
    too_short = edit_lines.Chosen(close, 1, 1, "", "lines").span
    _refused("lines", r"Line 1 last only 0\.6\d s \(0\.75–1\.35 s\); Edit changes at least 1 s", too_short, None)
    _refused("lines", r"“1e400” is not a line number", edit_lines.choose, sung, ["1e400"], None)
    # 100,000 numbers (0.1 s of CPU an instant event) refused before any is read; a page of digits as a
    # section refused with a message (``int`` raises ValueError past Python's 4,300 digits).
    many = r"more line numbers than a song can have lines \(1024 at most\)"
    _refused("lines", many, edit_lines.choose, sung, ["3"] * 100_000, None)
    _refused("lines", many, edit_lines.choose, sung, ", ".join(["3"] * 100_000), None)
    _refused("section", r"no section “9{40}”", edit_lines.choose, sung, None, "9" * 5000)
    assert edit_lines.choose(sung, [str(n) for n in range(1, 6)] * 200, None) == (1, 5)  # a page's ticks


def test_new_lyrics_replace_the_chosen_lines_and_nothing_else():
    sung = _sung_lines()
    assert edit_lines.block(sung, 2, 3) == "burning bright\n\n[Chorus]\nhold on tight"
    changed = edit_lines.with_new_lyrics(sung, 3, 4, "let it go\nfar away\nand back")
    assert lrc.sung_lines(changed) == [
        "neon lights",
        "burning bright",
        "let it go",
        "far away",
        "and back",
        "morning comes",
    ]
    assert "[Chorus]\nlet it go" in changed and "[Verse 2]\nmorning comes" in changed
    assert edit_lines.with_new_lyrics(sung, 3, 4, "  ") == LYRICS  # none written: sung as they were


# ---------------------------------------------------------------- through the API, on the served studio


@pytest.fixture(scope="module")
def client(studio_server):
    return Client(studio_server[0], verbose=False)


def sung_take(client, out: Path, seed: int, rewrite, seconds: float = 14.0) -> tuple[str, dict]:
    """A sung take the studio made (``LYRICS``), its own record rewritten by ``rewrite`` (given the record
    as a dict, changed in place): facts the tiny model cannot make (its alignment and beat are random), set
    where the studio keeps them. Returns the take's audio path and the request's record."""
    record = client.predict(
        prompt="synth pop",
        lyrics=LYRICS,
        audio_duration=seconds,
        inference_steps=1,
        think=False,
        seed=seed,
        api_name="/generate",
    )[-1]
    take = record["takes"][0]
    own = out / take["metadata"]
    kept = json.loads(own.read_text())
    rewrite(kept)
    own.write_text(json.dumps(kept))
    return str(out / take["audio"]), record


def _take_with_times(client, out: Path, times=TIMES, seconds: float = 14.0) -> tuple[str, dict]:
    """A sung take whose own record's line times are ``times``: the lyric times the studio knows, at times a
    test can reason about."""

    def timed(kept: dict) -> None:
        kept["lyric_lines"] = [
            {"time": t, "text": line["text"]} for t, line in zip(times, kept["lyric_lines"], strict=True)
        ]

    return sung_take(client, out, 5, timed, seconds)


@pytest.fixture(scope="module")
def timed_song(client, studio_server) -> str:
    """One take with the line times ``TIMES`` for the tests that only read it (edit it into new takes, upload
    it), not one each: a sung 14 s take is its render, preview, mastering and map. The test that
    holds the upload's reading makes its own, a song the studio has not read yet."""
    return _take_with_times(client, studio_server[1])[0]


def test_edit_by_lines_sets_the_region_sends_the_whole_songs_lyrics_and_the_take_sings_them(
    client, studio_server, timed_song
):
    song = timed_song
    sung = edit_lines.known(song)
    assert sung is not None and [line.start for line in sung.lines] == TIMES
    new = "let it go\nfar away"
    made = client.predict(
        src_audio=handle_file(song),
        prompt="synth pop",
        lyrics=new,
        lines=[3, 4],
        inference_steps=1,
        seed=9,
        api_name="/edit",
    )[-1]
    params = made["params"]
    expected = edit_lines.span(sung, 3, 4, uploads.load(song))
    assert (params["repainting_start"], params["repainting_end"]) == expected
    assert 3.0 <= expected[0] <= 6.0 and 8.0 <= expected[1] <= 11.0  # between the neighbours' starts
    assert params["edited_lines"] == [3, 4]
    assert params["lyrics"] == edit_lines.with_new_lyrics(sung, 3, 4, new)  # the whole song, those lines new
    # Its GPU time is declared as any Edit's (``duration_estimate``, by ``MusicShape``): the whole song's sung word count.
    asked = {"src_audio": song, "prompt": "synth pop", "lyrics": new, "lines": [3, 4], "inference_steps": 1}
    shape = music_shape.MusicShape.of(handlers.prepare_for_admission("edit", asked).request)
    assert shape.sung and shape.words == len(" ".join(lrc.sung_lines(params["lyrics"])).split()) == 11
    # The edited take's own synced lyrics sing the new lyrics, in order, at times inside the take.
    take = made["takes"][0]
    sung = ["neon lights", "burning bright", "let it go", "far away", "morning comes"]
    assert [line["text"] for line in take["lyric_lines"]] == sung
    times = [line["time"] for line in take["lyric_lines"]]
    assert times == sorted(times) and times[0] >= 0 and times[-1] < take["seconds"]
    lrc_text = (studio_server[1] / take["lrc"]).read_text()
    assert "let it go" in lrc_text and "hold on tight" not in lrc_text
    # A whole section the same way; no new lyrics keep its lines as sung.
    made = client.predict(
        src_audio=handle_file(song), prompt="synth pop", section="Verse 2", inference_steps=1, api_name="/edit"
    )[-1]
    assert made["params"]["edited_lines"] == [5, 5] and made["params"]["lyrics"] == LYRICS
    assert made["params"]["repainting_start"] < 11.0 <= made["params"]["repainting_end"]


def test_a_region_edits_lrc_holds_the_whole_songs_lines_the_region_its_new_lyrics(client, studio_server, timed_song):
    """A plain region Edit of a sung take, given the region's lyrics alone, sings those lyrics alone
    (the model reads them), found within the region; its .lrc, synced lines and
    record hold the whole song's: the lines outside the region at the song's own times, the region's new
    lyrics in place of the lines that started there (or after the line before it), so the edited take can
    be edited by its lines again."""
    song = timed_song
    out = studio_server[1]
    for (start, end), new, sung in (
        ((5.5, 9.0), "let it go", ["neon lights", "burning bright", "let it go", "morning comes"]),
        ((4.0, 5.5), "la di da", ["neon lights", "burning bright", "la di da", *lrc.sung_lines(LYRICS)[2:]]),
    ):
        made = client.predict(
            src_audio=handle_file(song),
            prompt="synth pop",
            lyrics=new,
            repainting_start=start,
            repainting_end=end,
            inference_steps=1,
            api_name="/edit",
        )[-1]
        params, take = made["params"], made["takes"][0]
        assert params["lyrics"] == new and lrc.sung_lines(params["song_lyrics"]) == sung  # the model read `new`
        assert [line["text"] for line in take["lyric_lines"]] == sung
        times = {line["text"]: line["time"] for line in take["lyric_lines"]}
        assert start <= times[new] < end, times  # the region's lyrics, found where they are sung
        kept = {t: at for t, at in zip(lrc.sung_lines(LYRICS), TIMES, strict=True) if at < start or at >= end}
        assert {t: times[t] for t in kept} == kept  # the rest at the song's own times
        written = (out / take["lrc"]).read_text()
        assert [row.split("]", 1)[1] for row in written.splitlines()[2:]] == sung and "[ti:neon lights]" in written
    again = edit_lines.known(str(out / take["audio"]))  # the edited take: its lines known, to edit again
    assert again is not None and [line.text for line in again.lines] == sung
    # The whole song's lyrics (upstream's way; what a variation of an Edit by lyric lines sends) stay as sent.
    whole = edit_lines.with_new_lyrics(edit_lines.known(song), 3, 3, "let it go")
    made = client.predict(
        src_audio=handle_file(song),
        prompt="x",
        lyrics=whole,
        repainting_start=5.5,
        repainting_end=7.5,
        inference_steps=1,  # the lyrics sent are the point, not the model's default steps' music
        api_name="/edit",
    )[-1]
    assert "song_lyrics" not in made["params"] and made["params"]["lyrics"] == whole
    assert [line["text"] for line in made["takes"][0]["lyric_lines"]] == lrc.sung_lines(whole)


def test_edit_by_lines_is_refused_with_a_message_on_its_field(client, studio_server, tmp_path):
    # The shortest song (10 s): its lines' times are the point, not its length.
    song, _ = _take_with_times(client, studio_server[1], times=[1.0, 3.0, 6.0, 6.2, 9.0], seconds=10.0)
    upload = tmp_path / "mine.wav"
    audio.save(uploads.load(song), upload, "wav")  # the same sound, not the studio's take
    cases = [
        (upload, {"lines": [1]}, r"lines: The studio does not know when this song's words are sung"),
        (song, {"lines": [12]}, r"lines: The song has 5 sung lines; there is no line 12"),
        (song, {"lines": list(range(1, 2001))}, r"lines: That is more line numbers than a song can have lines"),
        (song, {"section": "Bridge"}, r"section: The song has no section “Bridge”"),
        (song, {"lines": [3]}, r"lines: Line 3 last only 0\.\d+ s"),
        (song, {"lines": [1], "change": "extract"}, r"lines: Lines and sections choose a region of the song"),
    ]
    for path, settings, message in cases:
        with pytest.raises(ValidationError, match=message):
            client.predict(
                src_audio=handle_file(str(path)), prompt="dub", inference_steps=1, api_name="/edit", **settings
            )


# ---------------------------------------------------------------- the page


@pytest.fixture
def page(browser, site, request):  # noqa: F811
    yield from _open(browser, site, request.node.name, True, viewport={"width": 1280, "height": 1000})


def test_choosing_lines_in_edit_sets_the_region_on_the_waveform(page, timed_song):
    song = timed_song
    _tab(page, "Edit")
    page.locator("#edit-src input[type=file]").set_input_files(song)
    page.locator('#edit-wave [data-ready="1"]').wait_for()
    page.locator("#edit-words").get_by_text("Choose by the words").click()
    page.locator("#edit-lines").get_by_text("hold on tight").click()
    page.locator("#edit-lines").get_by_text("never let go").click()
    sung = edit_lines.known(song)
    start, end = edit_lines.span(sung, 3, 4, uploads.load(song))
    page.locator(f'#edit-wave [data-start="{start:g}"][data-end="{end:g}"]').wait_for()
    assert float(page.locator("#edit-start input").first.input_value()) == start
    assert float(page.locator("#edit-end input").first.input_value()) == end
    assert page.locator("#edit-lyrics textarea").input_value() == "hold on tight\nnever let go"
    # A whole section ticks its lines, and the region follows.
    page.locator("#edit-section input").fill("Verse 1")
    page.locator("#edit-section input").press("Enter")
    start, end = edit_lines.span(sung, 1, 2, uploads.load(song))
    page.locator(f'#edit-wave [data-start="{start:g}"][data-end="{end:g}"]').wait_for()
    assert page.locator("#edit-lyrics textarea").input_value() == "neon lights\nburning bright"
    # A region of one's own, dragged on the waveform, unticks the lines (they would set another).
    drag_region(page, 0.5, 0.8)
    page.wait_for_function("() => !document.querySelector('#edit-lines input:checked')")
    assert float(page.locator("#edit-start input").first.input_value()) == pytest.approx(7.0, abs=0.3)


# The waveform's own deferred set of a state the reading sent (``waveform.JS``'s ``watch``) held until the test
# lets it go: a tick landing in that moment, as under load, made to land there every time.
HOLD_SETS = """() => {
  const later = window.setTimeout;
  window.held = [];
  window.setTimeout = (f, ms, ...more) => typeof f === "function" && String(f).includes("props.value = JSON.stringify(s)")
    ? (window.held.push(() => f(...more)), 0) : later(f, ms, ...more);
  window.releaseSets = () => { window.setTimeout = later; window.held.splice(0).forEach((f) => f()); };
}"""


def test_lines_ticked_while_the_song_is_read_keep_their_region_and_the_map_read_meanwhile(
    page, client, studio_server, monkeypatch
):
    """Lines ticked while the upload's tempo and map are being read. A tick's region can land between the
    map's state arriving and the page setting it with the region kept, which would put back the first tick's
    region; and a tick's state, sent whole from the server as it was at the tick, would drop the map read
    meanwhile. Both the second tick's region and the map read meanwhile are kept."""
    import threading

    import analysis

    song, _ = _take_with_times(client, studio_server[1])
    reading, entered = threading.Event(), threading.Event()
    analyze = analysis.analyze

    def held(path):
        entered.set()
        assert reading.wait(120)
        return analyze(path)

    monkeypatch.setattr(analysis, "analyze", held)
    sung, loaded = edit_lines.known(song), uploads.load(song)
    _tab(page, "Edit")
    page.locator("#edit-src input[type=file]").set_input_files(song)
    page.locator('#edit-wave [data-ready="1"]').wait_for()
    assert entered.wait(60)
    page.evaluate(HOLD_SETS)
    page.locator("#edit-words").get_by_text("Choose by the words").click()
    page.locator("#edit-lines").get_by_text("hold on tight").click()
    start, end = edit_lines.span(sung, 3, 3, loaded)
    page.locator(f'#edit-wave [data-start="{start:g}"][data-end="{end:g}"]').wait_for()
    reading.set()  # the tempo, then the map: each state held before the page sets it with the region kept
    page.wait_for_function("() => window.held.length >= 2")
    page.locator("#edit-lines").get_by_text("never let go").click()
    start, end = edit_lines.span(sung, 3, 4, loaded)
    page.wait_for_function(
        "end => Number(document.querySelector('#edit-end input').value) === end"
        " && (window.held.length >= 3 || document.querySelector('#edit-wave [data-ready]').dataset.end === String(end))",
        arg=end,
    )
    page.evaluate("() => window.releaseSets()")
    wave = page.locator('#edit-wave [data-ready="1"]')
    assert (wave.get_attribute("data-start"), wave.get_attribute("data-end")) == (f"{start:g}", f"{end:g}")
    assert page.locator("#edit-wave .ace-section").count() >= 1  # the map read meanwhile, drawn
