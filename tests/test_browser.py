"""The page as a person uses it: real headless Chromium (Debian's, never a downloaded one) via Playwright.

The studio runs with tiny random models. Each test leaves a screenshot of its page in
``test-screenshots/`` where it failed, or where ``ACE_STUDIO_SCREENSHOTS`` names a folder for every
test's (``conftest.picture``). Each test's page is loaded anew for a new visitor, in a tab kept from
test to test (``conftest.visit``). Chromium comes from ``conftest``'s ``browser`` fixture:
without it every browser test (here and in every file that uses it) is skipped, with one line in the
run's summary, unless ``ACE_STUDIO_REQUIRE_BROWSER=1`` (set by ``.ci/run``), where it stops the run.
"""

from __future__ import annotations

import re
import threading

import pytest

import backend
import conftest
import lyrics
import uploads
from conftest import SHOTS, TIMEOUT_MS, leave, visit

# A wait for a take or a run (seconds on a loaded machine) asks the page every POLL_MS, not every frame
# (``wait_for_function``'s default): a frame-by-frame poll keeps Chromium drawing for as long as the wait
# lasts (a still page waited on for 8 s: 0.33-0.46 CPU s of its renderer polled every frame, 0.07 every
# 100 ms). What is waited for stays once it is there, so it is not missed between two polls.
POLL_MS = 100


@pytest.fixture(scope="module")
def site(studio_server, tiny_lyrics_dir):
    lm = tiny_lyrics_dir
    mp = pytest.MonkeyPatch()
    mp.setenv("ACE_STUDIO_LYRICS_MODEL", str(lm))
    mp.setattr(lyrics, "_mlx_available", lambda: False)
    lyrics.reset_writer()
    yield studio_server[0]
    lyrics.reset_writer()
    mp.undo()


def _open(browser, site: str, name: str, full_page: bool, **context_options):
    """The studio loaded anew for a new visitor (conftest's ``visit``: nothing stored, a new session);
    a screenshot of how the test left it where it failed, or where every one is asked for."""
    opened = visit(browser, site, **context_options)
    opened.page.wait_for_selector("#studio-tabs")
    yield opened.page
    leave(opened, SHOTS / f"{name}.png", full_page)


@pytest.fixture
def page(browser, site, request):
    yield from _open(browser, site, request.node.name, True, viewport={"width": 1280, "height": 1000})


STORED = """async () => [localStorage.length, sessionStorage.length, document.cookie,
  (await indexedDB.databases()).length]"""


def test_the_next_visit_in_a_kept_tab_finds_nothing_the_last_one_stored(browser, site):
    """conftest's ``visit``: the tab is kept from test to test, and what one visit stored (cookies,
    localStorage, sessionStorage, IndexedDB) is gone at the next; a tab taken to a second site is not kept."""
    small, text = {"viewport": {"width": 320, "height": 480}}, site + "robots.txt"  # a page of the studio's site
    first = visit(browser, text, **small)
    first.page.evaluate("""() => new Promise((done) => {
      localStorage.setItem('k', 'v'); sessionStorage.setItem('k', 'v'); document.cookie = 'k=v; max-age=3600';
      indexedDB.open('k').onsuccess = (e) => { e.target.result.close(); done(); };
    })""")
    assert first.page.evaluate(STORED) == [1, 1, "k=v", 1]
    leave(first, SHOTS / "kept-tab.png", False)
    again = visit(browser, text, **small)
    assert again.page is first.page and again.page.evaluate(STORED) == [0, 0, "", 0]
    again.page.goto(text.replace("127.0.0.1", "localhost"))  # another site, as far as the browser knows
    again.page.goto(text)  # and back: what it stored there would still be there
    leave(again, SHOTS / "kept-tab.png", False)
    other = visit(browser, text, **small)
    assert other.page is not first.page
    leave(other, SHOTS / "kept-tab.png", False)


def test_a_failed_tests_stuck_page_is_said_stuck_and_not_waited_on_twice(browser, site, monkeypatch, capsys):
    """conftest's ``leave`` after a failure: a page whose renderer is stuck in a script is said to be stuck, with
    the function its script is stuck in (the debugger each tab has on pauses it; a stuck page
    otherwise costs a 120 s wait and says no more than that the page did not answer), its picture is given up after ``ANSWER_MS`` (not
    the whole ``TIMEOUT_MS`` again) and its tab is not kept."""
    monkeypatch.setattr(conftest, "ANSWER_MS", 1000)
    stuck = visit(browser, site + "robots.txt", viewport={"width": 320, "height": 480})
    assert conftest._answers(stuck.page)
    # Stuck in a listener of an event a ``dispatch`` was given, as a stuck page is.
    stuck.page.evaluate("""() => { window.spinning = () => { for (;;) {} };
      window.dispatch = function dispatch(event) { spinning(); };
      setTimeout(() => dispatch({ type: "event", event_name: "change", target_id: 7 }), 0); }""")
    assert not conftest._answers(stuck.page)
    stuck.failed = True
    leave(stuck, SHOTS / "stuck.png", False)
    said = capsys.readouterr().out
    assert "The page did not answer in 1 s: its renderer was busy or stuck" in said
    assert "its script was at window.spinning (" in said, said  # where it is stuck, from the paused stack
    dispatched = '{"type":"event","event_name":"change","target_id":7}'
    assert f"dispatching, over {conftest.PAUSES} pauses: {dispatched}." in said, said  # the event, once
    assert stuck.page.is_closed() and stuck not in conftest._KEPT_TABS.values()


def _tab(page, name: str):
    """Select a tab (all five are in view at any width: no "More tabs" menu)."""
    page.get_by_role("tab", name=name, exact=True).click()


def _playable(page, selector: str) -> float:
    """Wait for the player under ``selector`` to show a take (served at /takes/…), load that file into
    a browser ``Audio`` element as a visitor's player would, and return the duration it decoded."""
    link = page.locator(f"{selector} a.download-link").first
    page.wait_for_function(
        "el => Boolean(el.href) && el.href.includes('/takes/')",
        arg=link.element_handle(),
        timeout=TIMEOUT_MS,
        polling=POLL_MS,
    )
    return page.evaluate(
        """href => new Promise(done => {
            const audio = new Audio(href);
            audio.onloadedmetadata = () => done(audio.duration);
            audio.onerror = () => done(-1);
        })""",
        link.get_attribute("href"),
    )


def _sings_along(page, player: str, lines: list[str]) -> None:
    """The take's synced lines under its player, its score beside its label, its .lrc served as text,
    and the line at the player's time highlighted (the last line at the end of the take)."""
    page.locator(f"{player} .take-lyrics li").first.wait_for()
    assert page.locator(f"{player} .take-lyrics li").all_inner_texts() == lines
    assert re.fullmatch(r"· words sung clearly: [01]\.\d\d of 1", page.locator(f"{player} .take-score").inner_text())
    href = page.locator(f"{player} a.lrc-link").get_attribute("href")
    lrc_text = page.evaluate(
        "href => fetch(href).then(r => r.ok && r.headers.get('content-type').startsWith('text/plain') ? r.text() : '')",
        href,
    )
    assert lrc_text.startswith("[ti:") and lrc_text.rstrip().endswith(lines[-1])
    audio = page.locator(f"{player} audio")
    # The player knows its length once the preview's header has arrived (on a loaded machine,
    # after the lines are drawn): before that its duration is NaN.
    page.wait_for_function(
        "a => Number.isFinite(a.duration) && a.duration > 0", arg=audio.element_handle(), polling=POLL_MS
    )
    audio.evaluate("a => { a.currentTime = Math.max(0, a.duration - 0.2); }")
    page.locator(f"{player} .take-lyrics li.now").get_by_text(lines[-1]).wait_for()


# Whether the field's number box (found again: the one on the page now) holds ``value`` once the page
# has drawn the frame after the typing and the one after it (Gradio's updates are drawn by then).
KEPT = """([sel, value]) => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => {
  const box = document.querySelector(sel + ' input[type=number]');
  done(Boolean(box) && box.value !== '' && Number(box.value) === value);
})))"""


def _number_shown(page, selector: str, value: float) -> None:
    """Wait until the field's number box holds ``value``; a box drawn a frame after a click is waited for."""
    page.wait_for_function(
        "([sel, v]) => Number(document.querySelector(sel + ' input[type=number]')?.value ?? NaN) === v",
        arg=[selector, value],
        polling=POLL_MS,
    )


def _fill_number(page, selector: str, value: float) -> None:
    """Type a number and leave the field; again if Gradio mounted the field anew (with its default)
    after the typing, as it did while mounting a just-opened accordion (Gradio 5)."""
    for _ in range(5):
        box = page.locator(f"{selector} input[type=number]").first
        box.fill(str(value))
        box.press("Tab")
        if page.evaluate(KEPT, [selector, float(value)]):
            return
    raise AssertionError(f"{selector} did not keep {value}")


def test_page_loads_with_the_five_tabs_in_order_and_advanced_settings_open(page):
    """A new visitor's page, read without a click (one load for both: a load is 2.5-4 s of Chromium's CPU)."""
    assert [t.inner_text() for t in page.get_by_role("tab").all()] == ["Generate", "Cover", "Extend", "Edit", "Lyrics"]
    page.get_by_text("runs on", exact=False).first.wait_for()
    # ACE_STUDIO_MODEL is a folder here: the page names it instead of claiming XL SFT.
    assert "tiny-diffusers" in page.locator("#studio-status").inner_text()
    assert "XL SFT" not in page.locator("#studio-header").inner_text()
    # Advanced settings folded, and they open.
    seed = page.locator("#gen-seed input")
    assert not seed.is_visible()
    page.locator("#gen-advanced").get_by_text("Advanced settings").click()
    seed.wait_for(state="visible")
    assert seed.input_value() == "-1"


def _no_think(page) -> None:
    """Think off, for a test that is not about it: the planner would write the song's plan first."""
    page.locator("#gen-think input[type=checkbox]").uncheck()


def test_generate_gives_a_playable_take_that_extends(page, studio_server):
    _no_think(page)
    page.locator("#gen-prompt textarea").fill("bright synth-pop, punchy drums")
    page.locator("#gen-lyrics textarea").fill("[Chorus]\nwe run into the night\nneon in our eyes")
    _fill_number(page, "#gen-duration", 10)
    page.locator("#gen-button").click()
    assert _playable(page, "#gen-take-1") == pytest.approx(10.0, abs=0.1)
    _sings_along(page, "#gen-take-1", ["we run into the night", "neon in our eyes"])
    page.locator("#gen-seeds").get_by_text("take 1").wait_for()
    # Sent three times to two tabs: one place in the uploads for the take, a link to it (a copy
    # per click would fill the disk space every visitor's uploads share).
    for target in ("cover", "extend", "extend"):
        _tab(page, "Generate")
        page.locator(f"#gen-send-{target}").click()
        page.locator(f"#{target}-src-info").get_by_text("0:10.0 long").wait_for()
    take = studio_server[1] / page.locator("#gen-take-1 a.download-link").get_attribute("href").split("/takes/")[1]
    placed = list(uploads.upload_folder().glob(f"take-*/{take.name}"))
    assert len(placed) == 1 and placed[0].samefile(take), placed
    _fill_number(page, "#extend-seconds", 5)
    # The waveform marks where the new part begins: at the end of the 10 s source.
    page.locator('#extend-wave [data-seam="10"]').wait_for()
    page.locator("#extend-button").click()
    assert _playable(page, "#extend-take-1") == pytest.approx(15.0, abs=0.1)


def test_think_plans_the_song_and_shows_the_plan(page, monkeypatch):
    # The blueprint's last line stands until the render's first step replaces it: on a quick moment
    # of the tiny planner, too briefly for the page to be seen showing it (CI, once). The render (the
    # pipeline's call) waits here until the page has shown it.
    shown, render = threading.Event(), backend.Backend.run

    def after_the_blueprint_is_shown(self, request, progress=None, run_id=None):
        shown.wait(TIMEOUT_MS / 1000)
        return render(self, request, progress, run_id)

    monkeypatch.setattr(backend.Backend, "run", after_the_blueprint_is_shown)
    think = page.locator("#gen-think input[type=checkbox]")
    assert think.is_checked()  # on by default where a planner is set up
    page.locator("#gen-prompt textarea").fill("dusty soul ballad")
    _fill_number(page, "#gen-duration", 10)
    page.locator("#gen-button").click()
    try:
        page.get_by_text(re.compile(r"Sketching the song: \d+ of 50")).first.wait_for()
    finally:
        shown.set()
    assert _playable(page, "#gen-take-1") == pytest.approx(10.0, abs=0.1)
    page.locator("#gen-seeds").get_by_text(re.compile(r"Planned in [\d.]+ s: \d+ BPM")).wait_for()
    assert "blueprint" not in page.locator("#gen-seeds").inner_text()  # a musician's words
    think.uncheck()
    page.locator("#gen-button").click()
    page.wait_for_function(
        "() => !document.querySelector('#gen-seeds').innerText.includes('Planned')",
        timeout=TIMEOUT_MS,
        polling=POLL_MS,
    )
    page.locator("#gen-seeds").get_by_text("take 1").wait_for()


def test_lyrics_use_in_generate_fills_generate(page):
    page.locator("#gen-instrumental input[type=checkbox]").check()  # locks Generate's lyrics box
    page.locator("#gen-lyrics textarea").and_(page.locator("[disabled]")).wait_for()
    _tab(page, "Lyrics")
    page.locator("#ly-theme textarea").fill("a night drive by the sea")
    assert not page.locator("#ly-seed-used").is_visible()  # nothing written yet: no seed
    page.locator("#ly-button").click()
    caption = page.locator("#ly-caption textarea")
    page.wait_for_function(
        "el => el.value.length > 0", arg=caption.element_handle(), timeout=TIMEOUT_MS, polling=POLL_MS
    )
    assert int(page.locator("#ly-seed-used input").input_value()) >= 0  # the seed it was written with, shown
    written = page.locator("#ly-text textarea").input_value()
    assert written.startswith("[")
    page.locator("#ly-use").click()
    generate_lyrics = page.locator("#gen-lyrics textarea")
    generate_lyrics.wait_for(state="visible")
    assert generate_lyrics.input_value() == written
    page.locator("#gen-lyrics textarea:not([disabled])").wait_for()  # editable again
    assert not page.locator("#gen-instrumental input[type=checkbox]").is_checked()
    assert page.locator("#gen-prompt textarea").input_value() == caption.input_value()


def test_an_invalid_input_shows_its_message_in_the_page(page):
    _no_think(page)
    page.locator("#gen-prompt textarea").fill("jazz trio")
    _fill_number(page, "#gen-duration", 10)  # the last click makes a take: the shortest (its length is not the point)
    advanced = page.locator("#gen-advanced").get_by_text("Advanced settings")
    advanced.click()
    _fill_number(page, "#gen-steps", 500)  # a folded field (BPM is unfolded)
    page.locator("#gen-button").click()
    # The page's own handling of the verdict (theme.JS) is over before the accordion is folded again;
    # the field keeps the words (Gradio's own mark goes with the page's next event, a timer tick).
    page.wait_for_function("() => Number(document.body.dataset.studioChecked || 0) >= 1", polling=POLL_MS)
    field = page.locator("#gen-steps")
    assert field.get_attribute("data-studio-note").startswith("Steps must be between 1 and 200")
    # Folded again: the click opens the accordion, marks the field, notes the message on the
    # accordion's label, and leaves the caption as it is.
    advanced.click()
    page.locator("#gen-advanced [data-testid='accordion-content']").wait_for(state="hidden")
    page.locator("#gen-button").click()
    page.wait_for_function("() => Number(document.body.dataset.studioChecked || 0) >= 2", polling=POLL_MS)
    assert field.get_attribute("data-studio-note").startswith("Steps must be between 1 and 200")
    label = page.locator("#gen-advanced button.label-wrap")
    assert label.get_attribute("data-studio-note").startswith("Steps must be between 1 and 200")
    assert page.locator("#gen-prompt .validation-error").count() == 0
    assert page.locator("#gen-prompt").get_attribute("data-studio-note") is None
    box = field.locator("input[type=number]").bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= page.viewport_size["height"]
    # Nothing ran: no take was made.
    assert page.locator("#gen-take-1 a.download-link").count() == 0
    # A good value and the note goes with the next click.
    _fill_number(page, "#gen-steps", 2)
    page.locator("#gen-button").click()
    page.wait_for_function("() => !document.querySelector('[data-studio-note]')", timeout=TIMEOUT_MS, polling=POLL_MS)


def test_write_it_fills_generate_from_one_line(page):
    # An empty idea is marked on its field before anything queues.
    page.locator("#gen-write").click()
    page.wait_for_function("() => Number(document.body.dataset.studioChecked || 0) >= 1", polling=POLL_MS)
    assert page.locator("#gen-idea").get_attribute("data-studio-note").startswith("Write an idea for the song first")
    page.locator("#gen-lyrics textarea").fill("[Verse]\nmy own words")
    # 300 characters: the box takes up to 500, and so does the admission check (it refused past 64).
    idea = ("a rainy-day bossa nova about missing the last train, " * 6)[:300]
    page.locator("#gen-idea textarea").fill(idea)
    assert page.locator("#gen-idea textarea").input_value() == idea
    page.locator("#gen-write").click()
    note = page.locator("#gen-write-note")
    note.get_by_text("Written").wait_for()
    assert "Kept yours: Lyrics." in note.inner_text()
    assert page.locator("#gen-idea").get_attribute("data-studio-note") is None  # the refusal's words went
    assert page.locator("#gen-lyrics textarea").input_value() == "[Verse]\nmy own words"
    # The length the planner chose is on the slider, as the note says it.
    seconds = int(float(page.locator("#gen-duration input[type='number']").input_value()))
    assert f"{seconds // 60}:{seconds % 60:02d}" in note.inner_text() and 10 <= seconds <= 240


@pytest.fixture
def phone(browser, site, request):
    yield from _open(
        browser, site, request.node.name, False, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
    )


def _in_view(page, selector: str) -> bool:
    return page.evaluate(
        """sel => { const r = document.querySelector(sel).getBoundingClientRect();
                   return r.bottom > 0 && r.top < window.innerHeight && r.height > 0; }""",
        selector,
    )


def test_a_phone_shows_the_progress_in_view_and_the_synced_lines_of_a_take(phone):
    """On a phone (one page for both presses: a load is 1.3 s of Chromium's CPU and a session).
    The first click on the new page: its progress and result in view (a desk's: test_page's
    ``test_stop_is_shown_as_a_stop_not_as_an_error``, the same click). Then a take: its lines wrap inside the
    player, nothing widens the page, the sung line is marked."""
    phone.locator("#gen-prompt textarea").fill("slow ambient drone")
    _no_think(phone)
    phone.locator("#gen-advanced").get_by_text("Advanced settings").click()
    # 200 steps: with 60, a loaded machine's Stop could land after the last one (the take is
    # then kept, and said so: tests/test_page.py), and this test waited for "Nothing was saved".
    _fill_number(phone, "#gen-steps", 200)
    phone.locator("#gen-button").click()
    phone.locator("#gen-take-1").get_by_text(re.compile(r"Step \d+/200")).first.wait_for()
    assert _in_view(phone, "#gen-take-1")
    # One progress display: none over the seed line.
    assert phone.locator("#gen-seeds").get_by_text(re.compile(r"Step \d+")).count() == 0
    phone.locator("#gen-stop").click()
    # The seed line keeps the stop's words (a toast goes after a while, and might be gone already).
    phone.locator("#gen-seeds").get_by_text("Nothing was saved.").wait_for()
    phone.locator("#gen-prompt textarea").fill("dream pop")
    long_line = "a very long line that a phone has to wrap because it will not fit on one row of the screen"
    phone.locator("#gen-lyrics textarea").fill(f"[Verse]\nfirst light\n{long_line}")
    _fill_number(phone, "#gen-duration", 10)  # the shortest: the take's length is not the point
    _fill_number(phone, "#gen-steps", 1)
    phone.locator("#gen-button").click()
    _sings_along(phone, "#gen-take-1", ["first light", long_line])
    width = phone.viewport_size["width"]
    assert phone.evaluate("document.documentElement.scrollWidth") <= width
    box = phone.locator("#gen-take-1 .take-lyrics").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width


def drag_region(page, a: float, b: float) -> None:
    """Drag on Edit's waveform from ``a`` to ``b`` of its width, as a visitor's pointer does."""
    page.locator("#edit-wave canvas").scroll_into_view_if_needed()
    box = page.locator("#edit-wave canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * a, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * b, box["y"] + box["height"] / 2, steps=6)
    page.mouse.up()


def test_the_demo_song_fills_edit_and_its_region_follows_the_waveform_and_the_numbers(page):
    """Edit's example: the demo song and what the analyzer read of it (100 BPM, C major) fill the tab, and the
    region follows a drag on its waveform and the typed numbers."""
    _tab(page, "Edit")
    page.locator(".tabitem:visible").get_by_text("Try the demo song").first.wait_for()
    page.locator(".tabitem:visible table tbody tr, .tabitem:visible button.gallery-item").first.click()
    page.locator("#edit-src-info").get_by_text("0:12.0 long").wait_for()
    page.locator("#edit-src-info").get_by_text("C major").wait_for()
    # Once its bars are read (the demo song's clicks), the drag's own times: snapping is test_bar_marks'.
    page.locator('#edit-wave .song-wave[data-ready="1"]:not([data-bars="0"])').wait_for()
    page.locator("#edit-wave").get_by_label("Snap the drag to bar lines").uncheck()
    # The example's click scrolled down to the examples (below Edit's choices): the drag needs the waveform in view.
    drag_region(page, 0.2, 0.6)
    start, end = page.locator("#edit-start input").first, page.locator("#edit-end input").first
    page.wait_for_function("el => Math.abs(Number(el.value) - 7.2) < 0.3", arg=end.element_handle(), polling=POLL_MS)
    assert abs(float(start.input_value()) - 2.4) < 0.3  # 20 % and 60 % of the 12 s demo song
    _fill_number(page, "#edit-start", 1)
    _fill_number(page, "#edit-end", 3)
    page.locator('#edit-wave [data-start="1"][data-end="3"]').wait_for()
    page.locator("#edit-advanced").get_by_text("Advanced settings").click()
    assert abs(float(page.locator("#edit-bpm input").first.input_value()) - 100) <= 2


def _a_take(page, caption: str, seed: int, steps: int, rows: tuple[str, ...]) -> None:
    """A 10 s take made on Generate's page (Think off); the result's ``rows`` are not shown before it."""
    _no_think(page)
    page.locator("#gen-prompt textarea").fill(caption)
    _fill_number(page, "#gen-duration", 10)
    page.locator("#gen-advanced").get_by_text("Advanced settings").click()
    _fill_number(page, "#gen-seed", seed)
    _fill_number(page, "#gen-steps", steps)
    for row in rows:
        assert not page.locator(row).is_visible()  # nothing to vary or morph before a take
    page.locator("#gen-button").click()
    assert _playable(page, "#gen-take-1") == pytest.approx(10.0, abs=0.1)


def test_a_take_is_varied_and_morphed_from_its_rows(page, monkeypatch):
    """One take, its two rows (one page and one take for both). *Morph this take*: the row starts
    with the take's own caption (unchanged words are refused on the field), the run shows its steps in the
    take's player and the tab's Stop ends it (the take stays in view). *Variations of this take* fill the
    result column and join My takes; a refused amount is told on its field. A morph run to its end (of the
    variation now in the column: the row took its words) fills the result column with a new take of the
    take's length."""
    import flow_edit

    gate, real = threading.Event(), flow_edit.run

    def held(pipe, call, generators, on_step=None):  # after its first step, until the page has seen it
        def step(*args):
            out = on_step(*args)
            gate.wait(TIMEOUT_MS / 1000)
            return out

        return real(pipe, call, generators, step)

    monkeypatch.setattr(flow_edit, "run", held)
    _a_take(page, "glass and strings", 30, 2, ("#gen-variations", "#gen-morph"))
    page.locator("#gen-morph").get_by_text("Morph this take").click()
    caption = page.locator("#gen-morph-prompt textarea")
    page.wait_for_function("el => el.value === 'glass and strings'", arg=caption.element_handle(), polling=POLL_MS)
    assert page.locator("#gen-morph-steps input[type=number]").input_value() == "2"  # the take's own
    page.locator("#gen-morph-button").click()
    page.wait_for_function("() => document.querySelector('#gen-morph-prompt')?.dataset.studioNote", polling=POLL_MS)
    assert "are the take's own" in page.locator("#gen-morph-prompt").get_attribute("data-studio-note")
    caption.fill("dark techno, distorted bass")
    _fill_number(page, "#gen-morph-seed", 4)
    page.locator("#gen-morph-button").click()
    try:
        page.locator("#gen-take-1").get_by_text(re.compile(r"Step 1/2")).first.wait_for()
        page.locator("#gen-stop").click()
    finally:
        gate.set()
    page.locator("#gen-seeds").get_by_text("Stopped at step 2 of 2. Nothing was saved.").wait_for()
    assert page.locator("#gen-take-1 a.download-link").count() == 1  # the take is still there to morph

    page.locator("#gen-variations").get_by_text("Variations of this take").click()
    _fill_number(page, "#gen-variation-amount", 0.5)
    _fill_number(page, "#gen-variation-count", 2)
    _fill_number(page, "#gen-variation-seed", 7)
    page.locator("#gen-variations-button").click()
    page.locator("#gen-seeds").get_by_text("take 2: 30 (take 1 varied 0.5, new noise 8)").wait_for()
    assert _playable(page, "#gen-take-2") == pytest.approx(10.0, abs=0.1)
    # The variations join My takes beside the take they came from (the stopped morph saved nothing).
    page.locator("#my-takes").get_by_text("My takes").first.click()
    page.locator('#my-takes-list [data-count="3"]').wait_for()
    # A refused amount is told on its field, and nothing runs.
    _fill_number(page, "#gen-variation-amount", 3)
    page.locator("#gen-variations-button").click()
    page.wait_for_function("() => document.querySelector('#gen-variation-amount')?.dataset.studioNote", polling=POLL_MS)
    assert "Amount must be between 0 and 1" in page.locator("#gen-variation-amount").get_attribute("data-studio-note")

    # The morph row took the new take's own words: the visitor's again, and the morph runs to its end.
    page.wait_for_function("el => el.value === 'glass and strings'", arg=caption.element_handle(), polling=POLL_MS)
    caption.fill("dark techno, distorted bass")
    _fill_number(page, "#gen-morph-seed", 4)
    page.locator("#gen-morph-button").click()
    page.locator("#gen-seeds").get_by_text(re.compile(r"take 1: 4 ")).wait_for()
    assert _playable(page, "#gen-take-1") == pytest.approx(10.0, abs=0.1)
    assert "/morph-" in page.locator("#gen-take-1 a.download-link").get_attribute("href")
    page.wait_for_function(
        "el => el.value === 'dark techno, distorted bass'", arg=caption.element_handle(), polling=POLL_MS
    )


def test_describe_fills_a_covers_empty_fields_and_its_variations_use_the_song_in_the_tab(page):
    """Cover's example: Describe fills the empty fields and says what it wrote (the measured BPM stays); the
    cover of it, then variations of that take, are of the song in the tab."""
    _tab(page, "Cover")
    page.locator(".tabitem:visible table tbody tr, .tabitem:visible button.gallery-item").first.click()
    page.locator("#cover-src-info").get_by_text("C major").wait_for()  # measured on upload
    page.locator("#cover-prompt textarea").fill("")
    page.locator("#cover-describe").click()
    note = page.locator("#cover-describe-note")
    note.get_by_text("What the planner heard").wait_for()
    assert page.locator("#cover-prompt textarea").input_value().strip()  # the empty style was written
    assert "measured C major — kept C major" in note.inner_text() or "C major (the planner hears" in note.inner_text()
    page.locator("#cover-advanced").get_by_text("Advanced settings").click()
    assert abs(float(page.locator("#cover-bpm input").first.input_value()) - 100) <= 2  # the measured BPM stays
    _fill_number(page, "#cover-seed", 12)
    _fill_number(page, "#cover-steps", 1)
    page.locator("#cover-button").click()
    _playable(page, "#cover-take-1")
    page.locator("#cover-variations").get_by_text("Variations of this take").click()
    _fill_number(page, "#cover-variation-count", 2)
    _fill_number(page, "#cover-variation-seed", 4)
    page.locator("#cover-variations-button").click()
    page.locator("#cover-seeds").get_by_text("take 2: 12 (take 1 varied 0.3, new noise 5)").wait_for()
    assert _playable(page, "#cover-take-2") > 0
    # The tab's next click makes one take again, and shows one.
    page.locator("#cover-button").click()
    page.locator("#cover-seeds").get_by_text("take 1: 12 ·").wait_for()
    page.locator("#cover-take-2").wait_for(state="hidden")


def test_a_take_of_a_thought_batch_comes_back_with_its_plan(page):
    page.locator("#gen-prompt textarea").fill("dusty soul ballad")
    _fill_number(page, "#gen-duration", 10)
    page.locator("#gen-advanced").get_by_text("Advanced settings").click()
    _fill_number(page, "#gen-seed", 40)
    _fill_number(page, "#gen-steps", 3)
    _fill_number(page, "#gen-takes", 2)
    page.locator("#gen-button").click()
    assert _playable(page, "#gen-take-2") == pytest.approx(10.0, abs=0.1)
    page.locator("#gen-seeds").get_by_text(re.compile(r"Planned in [\d.]+ s")).wait_for()
    _fill_number(page, "#gen-pick", 2)
    page.locator("#gen-use-settings").click()
    plan = page.locator("#gen-plan textarea")
    page.wait_for_function(
        "() => document.querySelector('#gen-plan textarea').value.includes('\"take\": 2')", polling=POLL_MS
    )
    assert '"of": 2' in plan.input_value()
    assert page.locator("#gen-seed input[type=number]").input_value() == "41"
    # Made again alone: no thinking this time, the same plan.
    page.locator("#gen-button").click()
    page.locator("#gen-seeds").get_by_text("take 1: 41").wait_for()
    # Length: auto leaves the slider's value unused, and the slider says so.
    page.locator("#gen-auto-length input[type=checkbox]").check()
    page.wait_for_function("() => document.querySelector('#gen-duration input[type=number]').disabled", polling=POLL_MS)


def test_every_take_of_a_batch_plays_from_its_preview_with_the_servers_waveform(page):
    """Several takes at once: each player has its duration at once (the preview streams; the browser
    decodes nothing to draw), plays, seeks from its waveform, and downloads the WAV. The shortest takes (10 s):
    none of this grows with the length, and each second is rendered, encoded and mastered three times.
    *Take to send* shows only once there are takes to send (before any take the result column shows
    "Nothing here yet" alone), and only when Generate is set to more than one (the same batch)."""
    pick = page.get_by_label("Take to send")
    assert pick.count() == 0 or not pick.first.is_visible()
    _no_think(page)
    page.locator("#gen-prompt textarea").fill("slow ambient swell")
    _fill_number(page, "#gen-duration", 10)
    page.locator("#gen-advanced").get_by_text("Advanced settings").click()
    _fill_number(page, "#gen-steps", 1)
    _fill_number(page, "#gen-takes", 3)
    assert not pick.first.is_visible()  # three takes asked for, none made yet: nothing to send
    page.locator("#gen-button").click()
    for i in (1, 2, 3):
        player = f"#gen-take-{i}"
        page.wait_for_function(
            "sel => { const a = document.querySelector(sel + ' audio'); return a && a.duration > 0; }",
            arg=player,
            timeout=3 * TIMEOUT_MS,  # three takes rendered and encoded on a loaded CPU
            polling=POLL_MS,
        )
        audio = page.locator(f"{player} audio")
        assert audio.get_attribute("src").endswith("-preview.mp3") and "/takes/" in audio.get_attribute("src")
        assert audio.evaluate("a => a.duration") == pytest.approx(10.0, abs=0.05)
        link = page.locator(f"{player} a.download-link")
        assert link.get_attribute("href").endswith(".wav") and link.inner_text() == "Download WAV"
        assert link.get_attribute("download").endswith(
            f"-take{i}-seed" + link.get_attribute("download").split("seed")[1]
        )
        # The waveform is drawn from the record's peaks: bars on the canvas.
        painted = page.locator(f"{player} canvas").evaluate(
            "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((v, k) => k % 4 === 3 && v).length"
        )
        assert painted > 500
        # It plays (muted: no gesture needed), and a click on the waveform seeks.
        played = audio.evaluate(
            """a => new Promise(done => { a.muted = true; a.addEventListener('timeupdate', function on() {
                   if (a.currentTime > 0) { a.removeEventListener('timeupdate', on); a.pause(); done(a.currentTime); } });
                 a.play().catch(() => done(-1)); })"""
        )
        assert played > 0
        box = page.locator(f"{player} canvas").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
        assert audio.evaluate("a => a.currentTime") == pytest.approx(5.0, abs=1.0)  # the middle
    # The hidden API slots never load a take into Gradio's own player.
    assert page.locator("#gen-take-1-file").count() == 0 or not page.locator("#gen-take-1-file").is_visible()
    pick.first.wait_for(state="visible")
    _fill_number(page, "#gen-takes", 1)
    pick.first.wait_for(state="hidden")
