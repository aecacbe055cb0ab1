"""Clear words everywhere, through what a visitor uses: gradio_client against a served
studio for the API (a plan taken back as it is returned, the lyrics' seed, Edit's region), Debian's
Chromium for the page (a refusal noted on its own field only, Send to Edit, a refused upload's
Clear button, a LoRA checked on arrival, the instrumental example) and a studio started without
its weights. Screenshots, where asked for (conftest's ``picture``), go to ``test-screenshots/issue32/``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError

import checks
import lyrics
import lyrics_page
import random_models
from conftest import endpoint_names, picture, studio_process
from test_browser import SHOTS, TIMEOUT_MS, _fill_number, _open, site  # noqa: F401 (fixtures)

SR = 48000
ISSUE_SHOTS = SHOTS / "issue32"


@pytest.fixture(scope="module")
def client(studio_server):
    return Client(studio_server[0], verbose=False)


@pytest.fixture
def desk(browser, site, request):  # noqa: F811
    yield from _open(browser, site, f"issue32/{request.node.name}", True, viewport={"width": 1280, "height": 900})


def _song(path: Path, seconds: float = 12.0) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.1 * np.sin(2 * np.pi * 220 * t)
    sf.write(str(path), np.stack([tone, tone], axis=1).astype(np.float32), SR)
    return path


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def _shot(page, name: str) -> None:
    picture(page, ISSUE_SHOTS / f"{name}.png")


# ---------------------------------------------------------------- 3: the API takes what it returns


def test_generate_takes_back_the_plan_its_metadata_holds(client, studio_server):
    out = studio_server[1]
    base = {"prompt": "dusty soul", "audio_duration": 10, "inference_steps": 2, "seed": 12, "think": True}
    first = client.predict(**base, api_name="/generate")
    record = first[-1]
    planner = record["takes"][0]["planner"]
    assert planner["fields"] and planner["take"] == 1 and planner["of"] == 1
    # README: kept under ``planner`` in the take's own .json, and under takes[i].planner here.
    assert json.loads((out / record["takes"][0]["metadata"]).read_text())["planner"] == planner
    reference = sf.read(first[0])[0]
    for given in (planner, json.dumps(planner)):  # the dict as returned, and its JSON
        again = client.predict(**base, plan=given, api_name="/generate")
        remade = again[-1]["takes"][0]["planner"]
        assert remade["thought"] is False and remade["fields"] == planner["fields"], remade
        np.testing.assert_allclose(sf.read(again[0])[0], reference, atol=2e-4)
    with pytest.raises(ValidationError, match="plan: The plan is not readable"):
        client.predict(**base, plan="[1, 2]", api_name="/generate")
    with pytest.raises(ValidationError, match="plan: This take was made without a plan"):
        client.predict(**base, plan={"skipped": "no planner"}, api_name="/generate")


# ---------------------------------------------------------------- 6: the lyrics' seed, clean words


@pytest.fixture(scope="module")
def lyrics_lm(tiny_lyrics_dir):
    lm = tiny_lyrics_dir
    mp = pytest.MonkeyPatch()
    mp.setenv("ACE_STUDIO_LYRICS_MODEL", str(lm))
    mp.setattr(lyrics, "_mlx_available", lambda: False)
    lyrics.reset_writer()
    yield lm
    lyrics.reset_writer()
    mp.undo()


def test_lyrics_return_the_seed_they_were_written_with(client, lyrics_lm):
    text, caption, seed = client.predict(theme="night train", structure="short-loop", seed=-1, api_name="/lyrics")
    assert isinstance(seed, int) and 0 <= seed < 2**32 and text.startswith("[")
    # The seed shown writes the same lyrics again, as the Seed help promises.
    again = client.predict(theme="night train", structure="short-loop", seed=seed, api_name="/lyrics")
    assert tuple(again) == (text, caption, seed)
    assert not any(ch in text + caption for ch in "\x00\x1b\x7f\u202e")


def test_control_characters_never_reach_generate():
    raw = "[Verse]\nneon\x1b[31m rain\x00\x07\r\nbright\u202e lights\tfall\x85[Chorus]\nhold\x7f on\u2028Caption: city\x1b pop\x0b"
    text, caption = lyrics_page.clean(raw, ["Verse", "Chorus"])
    assert text == "[Verse]\nneon[31m rain\nbright lights fall\n\n[Chorus]\nhold on", repr(text)
    assert caption == "city pop"
    assert checks.printable("a\x1bb\tc\r\nd") == "ab c\nd"


def test_use_in_generate_passes_no_control_character(client):
    filled = client.predict(text="[Verse]\nhalf\x1b a\x00 line\x7f", caption="lo-fi\x07", api_name="/use_in_generate")
    assert filled[0] == "[Verse]\nhalf a line" and filled[1] == "lo-fi"


# ---------------------------------------------------------------- 2 and 7: words that name the tab's fields


def test_regions_past_the_song_say_which_part_lies_outside(client, tmp_path):
    song = handle_file(str(_song(tmp_path / "twelve.wav")))
    cases = [
        (-5, 4, r"repainting_start: The region -5–4 s starts 5 s before the song does: only 0–4 s of it lies in "
                r"the song\. Start it at 0 s or later\."),
        (10, 20, r"repainting_end: The region 10–20 s ends 8\.0 s after the song does \(the song is 12\.0 s long\): "
                 r"only 10–12\.0 s of it lies in the song\. End it at 12\.0 s or sooner\."),
        (14, 20, r"repainting_end: The region 14–20 s lies wholly after the song's end"),
        (-2, 15, r"repainting_start: The region -2–15 s reaches past both ends of the song"),
    ]  # fmt: skip
    for start, end, words in cases:
        with pytest.raises(ValidationError, match=words):
            client.predict(
                src_audio=song,
                prompt="dub",
                repainting_start=start,
                repainting_end=end,
                inference_steps=1,
                api_name="/edit",
            )


def test_an_empty_style_is_named_with_the_tabs_field_labels(client, tmp_path):
    song = handle_file(str(_song(tmp_path / "twelve.wav")))
    with pytest.raises(ValidationError, match="prompt: Describe the New style the song should take"):
        client.predict(src_audio=song, prompt="", lyrics="", api_name="/cover")
    with pytest.raises(ValidationError, match="prompt: Describe the Style for the region or write New words"):
        client.predict(src_audio=song, prompt=" ", lyrics="", repainting_start=1, repainting_end=3, api_name="/edit")
    with pytest.raises(ValidationError, match="prompt: Describe the music in the Style caption or write some Lyrics"):
        client.predict(prompt="", lyrics="", think=False, api_name="/generate")


NOTED = "() => [...document.querySelectorAll('[data-studio-note]')].map((el) => el.id || el.className)"


@pytest.mark.parametrize(
    "tab, prefix, button", [("Cover", "cover", "Make cover"), ("Edit", "edit", "Regenerate region")]
)
def test_an_empty_style_is_noted_on_the_style_field_alone(desk, tmp_path, tab, prefix, button):
    _tab(desk, tab)
    desk.locator(f"#{prefix}-src input[type=file]").set_input_files(str(_song(tmp_path / "twelve.wav")))
    desk.locator(f"#{prefix}-src-info").get_by_text("Source: 0:12.0").wait_for()
    checked = desk.evaluate("() => Number(document.body.dataset.studioChecked || 0)")
    desk.get_by_role("button", name=button).click()
    desk.wait_for_function(f"() => Number(document.body.dataset.studioChecked || 0) > {checked}")
    # One place: the style field, in its own words; no accordion header carries them, none opens.
    assert desk.evaluate(NOTED) == [f"{prefix}-prompt"]
    note = desk.locator(f"#{prefix}-prompt").get_attribute("data-studio-note")
    assert note.startswith("Describe the New style" if tab == "Cover" else "Describe the Style for the region")
    assert "caption" not in note
    assert desk.locator(".tabitem:visible button.label-wrap.open").count() == 0
    _shot(desk, f"item2-{prefix}-empty-style")


def test_send_to_edit_brings_the_takes_style_and_a_region_inside_it(desk):
    desk.locator("#gen-prompt textarea").fill("dub techno, deep chords")
    desk.locator("#gen-think input[type=checkbox]").uncheck()
    _fill_number(desk, "#gen-duration", 12)
    desk.locator("#gen-advanced").get_by_text("Advanced settings").click()
    _fill_number(desk, "#gen-steps", 1)
    desk.locator("#gen-button").click()
    desk.locator("#gen-seeds").get_by_text(re.compile(r"Seeds — take 1: \d+")).wait_for()
    desk.locator("#gen-send-edit").click()
    desk.locator("#edit-prompt textarea").wait_for()
    assert desk.locator("#edit-prompt textarea").input_value() == "dub techno, deep chords"
    start, end = desk.locator("#edit-start input").first, desk.locator("#edit-end input").first
    assert (float(start.input_value()), float(end.input_value())) == (4.0, 8.0)  # the middle third of 12 s
    # The take arrives as the song, its waveform showing that region (read in the uploads' own queue,
    # which earlier tests' uploads may still hold on a loaded machine: a longer wait).
    desk.locator("#edit-src-info").get_by_text("0:12.0 long").wait_for(timeout=3 * TIMEOUT_MS)
    desk.locator('#edit-wave [data-start="4"][data-end="8"]').wait_for(timeout=3 * TIMEOUT_MS)
    _shot(desk, "item7-send-to-edit")


# ---------------------------------------------------------------- 8: uploads refused, and checked on arrival


# Where a refused upload's banner and the upload's own Clear button are, and whether that button is
# the topmost thing at its centre (nothing covers it).
BANNER_AND_CLEAR = """() => {
  const banner = document.querySelector('#cover-src div.validation-error');
  if (!banner) return null;
  const clear = [...document.querySelectorAll('#cover-src button[aria-label=Clear]')].find((b) => !b.closest('div.validation-error'));
  const c = clear.getBoundingClientRect(), b = banner.getBoundingClientRect();
  const top = document.elementFromPoint(c.x + c.width / 2, c.y + c.height / 2);
  return {banner: [b.top, b.bottom], clear: [c.top, c.bottom],
          free: Boolean(top && top.closest('button[aria-label=Clear]') && !top.closest('div.validation-error'))};
}"""


def test_a_refused_uploads_banner_leaves_its_clear_button_free(desk, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all " * 200)
    _tab(desk, "Cover")
    desk.locator("#cover-src input[type=file]").set_input_files(str(bad))
    desk.locator("#cover-src-info").get_by_text("not an audio file").wait_for()
    desk.locator("#cover-prompt textarea").fill("folk")
    desk.get_by_role("button", name="Make cover").click()
    # Measured the moment the banner shows (Gradio takes it away at the page's next event).
    seen = desk.wait_for_function(BANNER_AND_CLEAR).json_value()
    print(f"banner {seen['banner']} px, the upload's Clear {seen['clear']} px (top, bottom)")
    assert seen["free"] and seen["banner"][0] >= seen["clear"][1], seen
    _shot(desk, "item8-banner-and-clear")
    desk.locator("#cover-src button[aria-label=Clear]:not(div.validation-error *)").first.click()
    desk.locator("#cover-src input[type=file]").wait_for(state="attached")
    desk.wait_for_function("() => !document.querySelector('#cover-src audio')")


# ---------------------------------------------------------------- 9: the instrumental example


def test_the_idea_help_reads_as_a_sentence_and_the_instrumental_examples_tick_instrumental(desk):
    """Two checks of a new visitor's Generate tab on one page load (a load is ~1.3 CPU s of
    Chromium and a session of the studio): the idea's help as the page first shows it, then the examples."""
    info = desk.locator("#gen-idea").get_by_text("One line about the song")
    info.wait_for()
    assert info.inner_text().startswith(
        "One line about the song. Press Write it and ACE-Step's planner writes the caption, lyrics, tempo, key, "
    ), info.inner_text()
    box, lyrics_box = desk.locator("#gen-instrumental input[type=checkbox]"), desk.locator("#gen-lyrics textarea")
    desk.get_by_text("Lo-fi · instrumental", exact=True).click()
    desk.wait_for_function("() => document.querySelector('#gen-lyrics textarea').value === '[Instrumental]'")
    desk.wait_for_function("() => document.querySelector('#gen-instrumental input').checked")
    desk.wait_for_function("() => document.querySelector('#gen-lyrics textarea').disabled")
    _shot(desk, "item9-lofi-example")
    desk.get_by_text("Synth-pop · English", exact=True).click()
    desk.wait_for_function("() => !document.querySelector('#gen-instrumental input').checked")
    assert lyrics_box.input_value().startswith("[Verse]") and not box.is_checked()
    desk.wait_for_function("() => !document.querySelector('#gen-lyrics textarea').disabled")


# ---------------------------------------------------------------- words a musician reads


# (a song's seconds, Extend's words for 20 s more)
LONG_SONGS = [
    (
        599.6,
        r"extend_seconds: The song is 599\.6 s, at or within 5 s of the longest the studio makes "
        r"\(10 minutes\), and Extend adds at least 5 s: there is no room to extend it\.",
    ),
    (594.5, r"extend_seconds: The song is 594 s; adding 20 s would make it longer than 10 minutes\. Add at most 5 s\."),
]


def test_extend_never_says_add_at_most_0_s(client, tmp_path):
    """A song at the longest the studio makes, or within Extend's least of it, is told there is no room to
    extend it (never "Add at most 0 s"); a song with room is told the whole seconds it may add."""
    for seconds, words in LONG_SONGS:
        path = tmp_path / f"long-{seconds:g}.wav"
        t = np.arange(int(seconds * 8000)) / 8000
        sf.write(str(path), (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 8000, subtype="PCM_16")
        with pytest.raises(ValidationError, match=words) as refused:
            client.predict(src_audio=handle_file(str(path)), prompt="more", extend_seconds=20, api_name="/extend")
        assert "at most 0 s" not in str(refused.value)


def test_a_lora_is_checked_as_it_arrives_and_time_signatures_are_offered_and_said_as_musicians_write_them(
    desk, client, tmp_path, warm_backend
):
    """Two checks of Generate's Advanced settings on one page load (a load is ~1.3 CPU s of Chromium
    and a session of the studio). A LoRA is checked as it arrives. The page offers 2/4, 3/4,
    4/4 and 6/8 (and auto); the API takes them, or the beats a bar as before, and the model is told the beats a
    bar as ever (the record's ``time_signature``)."""
    fake = tmp_path / "style.safetensors"
    fake.write_bytes(b"\x00" * 4096)
    good = random_models.save_lora(tmp_path / "good" / "mine.safetensors", warm_backend.pipe.transformer)
    desk.locator("#gen-advanced").get_by_text("Advanced settings").click()
    note = desk.locator("#gen-lora-note")
    desk.locator("#gen-lora input[type=file]").set_input_files(str(fake))
    note.get_by_text("⚠️ style.safetensors cannot be read as a .safetensors file").wait_for()
    _shot(desk, "item8-fake-lora")
    desk.locator("#gen-lora button[aria-label=Clear]").first.click()
    note.get_by_text("A LoRA (.safetensors) trained on this model").wait_for()
    desk.locator("#gen-lora input[type=file]").set_input_files(str(good))
    note.get_by_text("✓ mine.safetensors is a LoRA the studio can read").wait_for()
    # The time signature, on the same open Advanced settings.
    field = desk.locator("#gen-meter input")
    field.click()
    options = desk.locator("[role=listbox] [role=option]")
    options.first.wait_for()
    assert [o.get_attribute("aria-label") for o in options.all()] == ["auto", "2/4", "3/4", "4/4", "6/8"]
    options.nth(2).click()
    desk.wait_for_function("() => document.querySelector('#gen-meter input').value === '3/4'")
    assert "3/4 for waltzes" in desk.locator("#gen-meter").inner_text()
    for sent, told in (("3/4", "3"), ("3", "3"), ("6/8", "6")):
        *_, record = client.predict(
            prompt="waltz", audio_duration=10, time_signature=sent, inference_steps=1, think=False, api_name="/generate"
        )
        assert record["params"]["time_signature"] == told, (sent, record["params"])
    with pytest.raises(ValidationError, match=r"Unknown time signature '5/4'\. Use 2/4, 3/4, 4/4, 6/8, or auto\."):
        client.predict(prompt="odd", time_signature="5/4", think=False, api_name="/generate")


# ---------------------------------------------------------------- 5: no weights on this machine

MISSING = [
    # Offline and not in the (empty) cache: said from the start.
    ({"HF_HUB_OFFLINE": "1"}, "⚠️ The weights of the music model (ACE-Step/acestep-v15-xl-sft) are not on this "
     "machine and HF_HUB_OFFLINE is set. What to do:",
     "The weights of the music model (ACE-Step/acestep-v15-xl-sft) are not on this machine and HF_HUB_OFFLINE is "
     "set. What to do:"),
    # Online, but the Hub cannot be reached (a closed port on this machine: nothing is downloaded): said from
    # the start too (it said so only after a click), and what to do is not to unset what was never set.
    ({"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"},
     "⚠️ The weights of the music model (ACE-Step/acestep-v15-xl-sft) are not on this machine and the Hugging "
     "Face Hub cannot be reached from here. What to do: connect this machine to the internet so",
     "The weights of the music model (ACE-Step/acestep-v15-xl-sft) are not on this machine and the Hugging Face "
     "Hub cannot be reached from here. What to do: connect this machine to the internet so"),
]  # fmt: skip


def _says_so_first(browser, url: str, offline: bool, header: str, error: str) -> None:  # noqa: F811
    """A page of the studio at ``url`` says ``header`` before anyone clicks anything, and a click is
    refused with ``error``'s words, never a library's."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:  # closed whatever happens: the browser outlives this file (conftest's ``_chromium``)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        line = page.locator("#studio-status")
        line.get_by_text(header).wait_for()  # before anyone clicked anything
        assert "loads on first use" not in line.inner_text()
        assert ("HF_HUB_OFFLINE" in line.inner_text()) == offline
        _shot(page, f"item5-header-{'offline' if offline else 'unreachable'}")
    finally:
        context.close()
    with pytest.raises(AppError) as refused:
        Client(url, verbose=False).predict(prompt="pop", audio_duration=10, think=False, api_name="/generate")
    words = str(refused.value)
    assert words.startswith(error) and ("HF_HUB_OFFLINE" in words) == offline, words
    for raw in ("ConnectError", "LocalEntryNotFound", "snapshot folder", "internet connection and try again"):
        assert raw not in words


@pytest.fixture
def no_weights(studio_server, tmp_path, monkeypatch):
    """The module's studio (served in this process) as one started without its weights: the default
    model, and an empty Hub cache (``huggingface_hub`` reads ``HF_HUB_CACHE`` at its import: its
    constant is the setting from then on). This process is offline as a studio is: conftest sets
    ``HF_HUB_OFFLINE`` before ``huggingface_hub`` is imported. Nothing built is kept (``reset_backend``)."""
    from huggingface_hub import constants

    import backend

    assert constants.HF_HUB_OFFLINE
    monkeypatch.setenv("ACE_STUDIO_MODEL", "")
    monkeypatch.setenv("ACE_STUDIO_VARIANT", "xl-sft")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-home" / "hub"))
    backend.reset_backend()
    yield studio_server[0]
    backend.reset_backend()  # the failed build's words off the header of the next test's page


def test_a_studio_without_its_weights_says_so_first_and_leads_with_what_to_do(browser, no_weights, capfd):  # noqa: F811
    """Offline (``HF_HUB_OFFLINE``) and not in the cache: the header says so, and what to do, before any
    click, and the request says the same; start-up's log line is the header's words (``status``)."""
    import status

    env, header, error = MISSING[0]
    _says_so_first(browser, no_weights, True, header, error)
    assert status.weights_missing(wait_for_hub=True).startswith(header.removeprefix("⚠️ "))  # what start-up prints
    assert "Traceback" not in "".join(capfd.readouterr())


def test_a_studio_started_where_the_hub_cannot_be_reached_says_so_first(browser, tmp_path):  # noqa: F811
    """Online, but the Hub not reached (``HF_ENDPOINT``, like ``HF_HUB_OFFLINE``, is read when
    ``huggingface_hub`` is imported: a studio process of its own, README's command): the header and the
    click say so from the start, and start-up's log line says it too, its Hub asked before it serves."""
    env, header, error = MISSING[1]
    hub = tmp_path / "empty-hf-home"
    env = {
        **env,
        "HF_HOME": str(hub),
        "HF_HUB_CACHE": str(hub / "hub"),
        "ACE_STUDIO_MODEL": "",
        "ACE_STUDIO_VARIANT": "xl-sft",
        "ACE_STUDIO_OUTPUT_DIR": str(tmp_path / "out"),
    }
    with studio_process(env, tmp_path) as (url, proc):
        _says_so_first(browser, url, False, header, error)
    log = next(tmp_path.glob("studio-*.log")).read_text()
    assert "Traceback" not in log and f"Model weights: {header.removeprefix('⚠️ ')}" in log


def test_a_progress_the_studio_hides_is_not_read_out(browser, site):  # noqa: F811
    """The status line's request held at the page's load (``show_progress="hidden"``): Gradio draws its
    running timer transparent, and a screen reader read it ("1.6s", then "Checking the model…") as a CI run's
    text of the duration line did ("0.0s\\n\\nPace on this machine…"). The timer is there; the words alone are read."""
    import messages

    names = endpoint_names(site)
    held = []

    def status(request) -> bool:
        if not request.url.endswith("/run/predict"):
            return False
        return names.get(json.loads(request.post_data or "{}").get("fn_index")) == "studio_status"

    def hold(route) -> None:
        if status(route.request):
            held.append(route)  # answered below, once the page has been read
        else:
            route.continue_()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.route("**/run/predict", hold)
        # Playwright tells a request before it hands its route to ``hold``; the wait after it lets that through.
        with page.expect_request(status):
            page.goto(site)
        tracker = page.locator("#studio-status [data-testid=status-tracker]")
        page.wait_for_function("el => /\\d\\.\\ds/.test(el.textContent)", arg=tracker.element_handle())
        assert held and page.locator("#studio-status").inner_text() == messages.STATUS_CHECKING
        assert page.locator("#studio-status").aria_snapshot() == f"- paragraph: {messages.STATUS_CHECKING}"
        held.pop().continue_()
        page.locator("#studio-status").filter(has_not_text=messages.STATUS_CHECKING).wait_for()
    finally:
        context.close()
