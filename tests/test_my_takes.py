"""*My takes*: the takes this browser made, kept by the browser, sent on only when the
studio signed them and still keeps their files.

Through ``gradio_client`` (each ``Client`` is a page of its own: a new one is a reload) and through
the page in Debian's Chromium (Playwright): the list survives a reload, a cleaned take says so, *Use
these settings* fills Generate and *Send to* fills a tab; another browser sees none of it.
"""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import my_takes
import output_folder
import takes
from conftest import CLIENT_TIMEOUT_S, SHOTS, TIMEOUT_MS, leave, picture, visit

GONE = "no longer kept by the studio"


@pytest.fixture(scope="module")
def made(studio_server):
    """A page (client) that made two takes and kept them: (client, record, entries). The tests that read
    them come first in the file; the last that uses them cleans the first take away (a take is its render,
    preview, mastering and map: one made for that test alone was one more)."""
    url, _ = studio_server
    page = Client(url, verbose=False)
    result = page.predict(
        prompt="glassy synth arpeggios over a slow pulse",
        lyrics="[Verse]\nlights on the river",
        audio_duration=10,
        inference_steps=1,
        seed=11,
        batch_size=2,
        think=False,
        api_name="/generate",
    )
    record = result[-1]
    entries = page.predict(record, api_name="/keep_takes")
    return page, record, entries


def test_my_takes_keep_signs_only_this_pages_takes_small_and_without_peaks(made, studio_server):
    url, out = studio_server
    page, record, entries = made
    assert [e["take"]["audio"] for e in entries] == [t["audio"] for t in record["takes"]]
    for entry, take in zip(entries, record["takes"], strict=True):
        assert entry["id"] == my_takes.sign(take["audio"]) and len(entry["id"]) == 32
        assert entry["title"] == "glassy synth arpeggios over a slow pulse" and entry["mode"] == "generate"
        assert entry["seconds"] == pytest.approx(10.0, abs=0.05) and entry["format"] == "WAV"
        assert entry["url"] == f"{url}takes/{take['audio']}" and entry["preview"] == f"{url}takes/{take['preview']}"
        assert "peaks" not in entry["take"] and "lyric_lines" not in entry["take"] and "plan" not in entry["params"]
        assert entry["take"]["seed"] == take["seed"] and entry["created"] == record["created"]
        print(f"\nan entry: {my_takes.size(entry)} bytes")
        assert my_takes.size(entry) < 4_000
    named = page.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in named["/keep_takes"]["parameters"]] == ["record"]
    for api in ("/my_take_settings", "/send_my_take_to_cover", "/send_my_take_to_extend", "/send_my_take_to_edit"):
        assert [p["parameter_name"] for p in named[api]["parameters"]] == ["entry"], api
    assert not {"/keep_takes_cover", "/my_takes_kept"} & set(named)  # the page's own
    # Another page (another visitor, or this one reloaded) cannot have this page's takes signed.
    assert Client(url, verbose=False).predict(record, api_name="/keep_takes") == []
    assert page.predict({"stopped": "Stopped at step 1 of 2."}, api_name="/keep_takes") == []


def test_my_takes_send_and_settings_work_after_a_reload_and_refuse_a_forged_entry(made, studio_server, tmp_path):
    url, out = studio_server
    _, record, entries = made
    reloaded = Client(url, verbose=False)  # a new session: results.send_take would refuse it
    song, style, start, end = reloaded.predict(entries[1], api_name="/send_my_take_to_edit")
    assert Path(song).read_bytes() == (out / record["takes"][1]["audio"]).read_bytes()
    assert style == "glassy synth arpeggios over a slow pulse" and (start, end) == (3.3, 6.7)
    fields = reloaded.predict(entries[1], api_name="/my_take_settings")
    assert fields[0] == "glassy synth arpeggios over a slow pulse" and fields[8] == record["takes"][1]["seed"]
    assert fields[1]["value"] == "[Verse]\nlights on the river" and fields[12] == 1
    forged = [
        {**entries[0], "id": entries[1]["id"]},  # another take's signature
        {**entries[0], "take": {**entries[0]["take"], "audio": record["takes"][1]["audio"]}},
        {**entries[0], "id": "é" * 32},
        {**entries[0], "take": {"audio": "../../etc/hostname"}},
        {"id": entries[0]["id"]},
    ]
    for entry in forged:
        with pytest.raises(AppError, match=GONE) as refused:
            reloaded.predict(entry, api_name="/send_my_take_to_cover")
        assert refused.value.title == "Send to Cover"  # what was clicked, not Gradio's "Error"
    with pytest.raises(AppError, match="Pick a take from My takes first") as refused:
        reloaded.predict(None, api_name="/send_my_take_to_extend")
    assert refused.value.title == "Send to Extend"
    with pytest.raises(AppError, match="Pick a take from My takes first") as refused:
        reloaded.predict(None, api_name="/my_take_settings")
    assert refused.value.title == "Use these settings"


def test_my_takes_a_cleaned_take_is_not_sent_but_its_settings_still_come_back(made, studio_server):
    url, out = studio_server
    page, record, entries = made
    entry = entries[0]
    assert my_takes.kept([{"id": entry["id"], "audio": entry["take"]["audio"]}]) == [entry["id"]]
    take = out / record["takes"][0]["audio"]
    os.utime(take, (0, 0))
    output_folder.clean_outputs(max_age_hours=1)  # as the studio's own clean-up removes a day-old take
    assert not take.exists()
    assert my_takes.kept([{"id": entry["id"], "audio": entry["take"]["audio"]}, {"id": 5}, "x"]) == []
    with pytest.raises(AppError, match=GONE):
        page.predict(entry, api_name="/send_my_take_to_extend")
    assert page.predict(entry, api_name="/my_take_settings")[0] == "glassy synth arpeggios over a slow pulse"


PIXEL = "<img src=//x.io/p.gif>"
# A record as a stranger could share it (or forge in My takes): a variation whose values are markup.
VARIED = {"take": 2, "seed": 5, "variation": {"of": {"take": PIXEL}, "amount": "<b>much</b>", "seed": "<a href=x>"}}


def test_my_takes_a_records_values_reach_messages_escaped_and_named(studio_server, tmp_path):
    """A record's values reached a toast as markup (Gradio renders a toast as HTML: a tracking
    pixel); every value a record brings is escaped. A 10 KB caption names the field it cannot go into."""
    from gradio_client import handle_file

    page = Client(studio_server[0], verbose=False)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({"params": {"prompt": "pop", "bpm": PIXEL}}))
    with pytest.raises(AppError) as refused:
        page.predict(handle_file(str(forged)), api_name="/settings_from_file")
    words = str(refused.value)
    assert "This record's bpm ('&lt;img src=//x.io/p.gif&gt;')" in words and "<" not in words, words
    long = {"params": {"prompt": "x" * 10_000}, "take": {"take": 1, "seed": 1}, "id": "0" * 32}
    with pytest.raises(AppError, match=r"This record's prompt \('x+…'\) cannot be used: This field takes up to 512"):
        page.predict(long, api_name="/my_take_settings")
    fields = page.predict({"params": {"prompt": "pop"}, "take": VARIED}, api_name="/my_take_settings")
    assert fields[0] == "pop" and fields[8] == 5  # the settings came back; the note is the page's (below)


def test_my_takes_key_is_private_and_kept_across_processes(studio_server):
    url, out = studio_server
    key = out / my_takes.KEY_FILE
    my_takes.sign("x")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == my_takes.KEY_BYTES
    # Another process (a restarted studio) reads the same key, so the browser's entries still count.
    assert my_takes._read_or_make_key(key) == key.read_bytes()
    for path in (f"gradio_api/file={key}", "takes/.my-takes.key", f"takes/{key.name}", "file=" + str(key)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + path, timeout=CLIENT_TIMEOUT_S)
        assert refused.value.code in (403, 404), path


def test_my_takes_an_entry_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_STUDIO_OUTPUT_DIR", str(tmp_path))
    day = tmp_path / "2026-01-02"
    day.mkdir()
    path = day / "generate-101010-abcdef-take1-seed1.wav"
    path.write_bytes(b"RIFF")
    relative = path.relative_to(tmp_path).as_posix()
    lyrics = "[Verse]\n" + "歌" * 4000
    record = {
        "mode": "generate",
        "params": {"prompt": "x" * 512, "lyrics": lyrics, "plan": "<|audio_code_1|>" * 9000},
        "takes": [
            {
                "take": 1,
                "seed": 1,
                "audio": relative,
                "seconds": 10,
                "peaks": [0.5] * 200,
                "lyric_lines": [{"time": 0, "text": "歌" * 100}] * 40,
            }
        ],
    }
    found = my_takes.entry(record, path)
    print(f"\nthe longest caption and lyrics: {my_takes.size(found)} bytes")
    assert my_takes.size(found) <= my_takes.ENTRY_BYTES and found["params"]["lyrics"] == lyrics
    found = my_takes.entry({**record, "params": {**record["params"], "lyrics": "🎵" * 4096}}, path)
    print(f"the same in emoji: {my_takes.size(found)} bytes")
    assert my_takes.size(found) <= my_takes.ENTRY_BYTES and found["params"]["lyrics"] == "🎵" * 4096
    found = my_takes.entry({**record, "params": {**record["params"], "lyrics": "🎵" * 6000}}, path)
    assert my_takes.size(found) <= my_takes.ENTRY_BYTES and found["params"] is None
    assert found["title"] == "x" * 47 + "…"


# ---------------------------------------------------------------- the page, in Chromium


@pytest.fixture
def page(browser, studio_server, request):
    """A new visitor's page, its localStorage empty (conftest's ``visit``); pictured afterwards where the
    test failed or where asked for."""
    opened = visit(browser, studio_server[0], viewport={"width": 1280, "height": 1000})
    opened.page.wait_for_selector("#studio-tabs")
    yield opened.page
    leave(opened, SHOTS / f"{request.node.name}.png", True)


def _panel(page):
    """Open My takes (closed by default); its rows."""
    if not page.locator("#my-takes-list").is_visible():
        page.locator("#my-takes").get_by_text("My takes").first.click()
    return page.locator("#my-takes-list li.my-take")


def _rows(page, count: int, checked: bool = True):
    """My takes open, once it lists ``count`` takes (and, with ``checked``, the studio has said which
    it still keeps)."""
    rows = _panel(page)
    mark = '[data-checked="1"]' if checked else ""
    page.locator(f'#my-takes-list [data-count="{count}"]{mark}').wait_for()
    return rows


def _make_a_take(page, caption: str, count: int) -> str:
    """Generate one 10 s take without Think, the panel open until the list has ``count`` takes; returns
    the take's file name relative to the output folder (from the newest row's preview)."""
    page.locator("#gen-think input[type=checkbox]").uncheck()
    page.locator("#gen-prompt textarea").fill(caption)
    steps = page.locator("#gen-steps input[type=number]").first
    if not steps.is_visible():
        page.locator("#gen-advanced").get_by_text("Advanced settings").click()
    for box, value in ((page.locator("#gen-duration input[type=number]").first, "10"), (steps, "2")):
        box.fill(value)
        box.press("Tab")
        page.wait_for_function("([el, v]) => el.value === v", arg=[box.element_handle(), value])
    _panel(page)
    page.locator("#gen-button").click()
    newest = _rows(page, count, checked=False).first
    assert newest.locator(".my-take-title").inner_text().startswith(caption.split()[0])
    preview = newest.locator("audio").get_attribute("src").split("/takes/", 1)[1]
    return preview.removesuffix(takes.PREVIEW_SUFFIX) + ".wav"


def test_my_takes_survive_a_reload_newest_first_a_cleaned_take_says_so_and_they_fill_a_tab(
    page, browser, studio_server
):
    """The list survives a reload, newest first; a take whose files were cleaned says so (and offers only
    its settings); a kept one fills Generate and is sent to a tab. One page and one reload for all of it
    (two tests did this with three takes and two pages)."""
    url, out = studio_server
    assert not page.locator("#my-takes-list").is_visible()  # collapsed by default
    assert _rows(page, 0).count() == 0 and page.locator(".my-takes-empty").is_visible()
    old = _make_a_take(page, "first take, to be cleaned", 1)
    _make_a_take(page, "warm dusty boom bap with a lonely trumpet line", 2)
    for path in (out / old, (out / old).with_name((out / old).stem + takes.PREVIEW_SUFFIX)):
        path.unlink()
    page.reload()
    page.wait_for_selector("#studio-tabs")
    rows = _rows(page, 2)
    titles = ["warm dusty boom bap with a lonely trumpet…", "first take, to be cleaned"]
    assert rows.locator(".my-take-title").all_inner_texts() == titles
    cleaned = rows.nth(1)
    assert cleaned.get_attribute("data-gone") == "1" and cleaned.locator("audio").count() == 0
    assert "no longer keeps this take's files" in cleaned.locator(".my-take-gone").inner_text()
    assert cleaned.get_by_role("button").all_inner_texts() == ["Use these settings"]
    first = rows.first
    assert first.get_attribute("data-gone") == "0"
    assert first.locator(".my-take-meta").inner_text().startswith("Generate · 0:10 · ")
    assert first.locator("audio").get_attribute("preload") == "none"
    assert "-preview.mp3" in first.locator("audio").get_attribute("src")
    stored = page.evaluate(f"() => localStorage.getItem({json.dumps(my_takes.STORAGE_KEY)})")
    print(f"\ntwo entries in localStorage (encrypted): {len(stored)} characters")
    assert "warm dusty" not in stored and "first take" not in stored  # kept encrypted, as Gradio keeps it
    page.locator("#gen-prompt textarea").fill("something else entirely")
    first.get_by_role("button", name="Use these settings").click()
    prompt = page.locator("#gen-prompt textarea")
    page.wait_for_function("el => el.value.startsWith('warm dusty')", arg=prompt.element_handle())
    assert prompt.input_value() == "warm dusty boom bap with a lonely trumpet line"
    first.get_by_role("button", name="Send to Extend").click()
    page.locator("#extend-src-info").get_by_text("0:10.0 long").wait_for()
    assert page.locator("#extend-prompt textarea").input_value() == "warm dusty boom bap with a lonely trumpet line"
    # Another browser has a list of its own: nothing of this one's.
    other = browser.new_context()
    try:
        stranger = other.new_page()
        stranger.set_default_timeout(TIMEOUT_MS)
        stranger.goto(url)
        stranger.wait_for_selector("#studio-tabs")
        assert _rows(stranger, 0).count() == 0 and stranger.locator(".my-takes-empty").is_visible()
    finally:
        other.close()


def test_my_takes_on_a_phone(browser, studio_server):
    url, _ = studio_server
    phone = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True)
    try:
        page = phone.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.wait_for_selector("#studio-tabs")
        _make_a_take(page, "a long caption that keeps going with many words so that it wraps on a narrow phone", 1)
        rows = _rows(page, 1)
        rows.first.get_by_role("button", name="Send to Cover").wait_for()
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
        box = rows.first.locator(".my-take-actions").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375
        picture(page.locator("#my-takes"), SHOTS / "my_takes_phone.png")
    finally:
        phone.close()


def test_my_takes_a_shared_records_markup_is_text_in_the_toasts(page, tmp_path):
    """The page's toasts for a shared record (Generate's record upload): a variation's note and a value
    the form refuses show the record's markup as text; no element of it reaches the page. The refusal's
    heading is what was clicked, not Gradio's "Error"."""
    page.locator("#gen-advanced").get_by_text("Advanced settings").click()  # the record's upload is in it
    for name, record, said in (
        ("varied.json", {"params": {"prompt": "pop"}, "takes": [VARIED]}, "This take is a variation (of take"),
        ("forged.json", {"params": {"prompt": "pop", "key_scale": PIXEL}}, "This record's key_scale"),
    ):
        (tmp_path / name).write_text(json.dumps(record))
        clear = page.locator("#gen-record").get_by_role("button", name="Clear")
        if clear.count():  # the file before it: the upload's drop zone comes back once it is cleared
            clear.click()
        page.locator("#gen-record input[type=file]").set_input_files(str(tmp_path / name))
        toast = page.locator("[data-testid=toast-body]").filter(has_text=said)
        toast.first.wait_for()
        assert PIXEL in toast.first.inner_text()
        assert toast.first.locator("img, a, b").count() == 0 and page.locator("img[src*='x.io']").count() == 0
    toast.first.locator(".toast-title").get_by_text("Use these settings", exact=True).wait_for(timeout=10_000)


def test_my_takes_an_odd_id_or_name_is_just_not_kept():
    import my_takes

    odd = [{"id": "\ud800", "audio": "2026-11-24/a.wav"}, {"id": "0" * 32, "audio": "\ud800.wav"}, {"id": 5}]
    assert my_takes.kept(odd) == []
