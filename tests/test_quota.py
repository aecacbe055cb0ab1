"""Tests of ``quota``: a visitor on a ZeroGPU Space knows what a click costs them. Under the ZeroGPU
harness (``zerogpu_harness.py``: the real ``spaces`` wrappers against a fake device API), the text under
each GPU button says what a click reserves and agrees with what the call declares; ZeroGPU's two
refusals (``FakeDeviceAPI.refusals``, answered as its ``/schedule`` answers them) reach the page and
``gradio_client`` with the studio's messages. Screenshots go to ``test-screenshots/quota/`` (where asked
for: ``conftest.picture``).
"""

from __future__ import annotations

import re

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from conftest import picture
from test_audio_modes import tone
from test_browser import SHOTS, _fill_number, _open

# ZeroGPU's proxy gives each visitor a token; without one its quota refusal is the Space's own limit.
TOKEN = {"X-IP-Token": "a-visitor"}
LONG = {"prompt": "long", "audio_duration": 240, "batch_size": 4, "think": False, "api_name": "/generate"}
RESERVES = re.compile(r"reserves about (\d+):(\d\d) of your daily ZeroGPU time")


@pytest.fixture(scope="module")
def space(zerogpu_space):
    """The studio served under the harness (conftest's ``zerogpu_space``, shared with test_zerogpu:
    Think on as a visitor finds it, stems served too); (url, fake API)."""
    # A first song with Think waits for the whole start-up build (gpu.wait_for_models): a model
    # still loading counts in what a click declares, so the quota text would change under the tests.
    Client(zerogpu_space.url, verbose=False).predict(
        prompt="warm", audio_duration=10, inference_steps=1, api_name="/generate"
    )
    return zerogpu_space.url, zerogpu_space.api


_PAGES: dict[tuple[str, str | None], Client] = {}


def _page(url: str, headers: dict | None) -> Client:
    """One page a visitor (a token, or none): a refusal ends its request, so the next one may use it."""
    key = (url, (headers or {}).get("X-IP-Token"))
    if key not in _PAGES:
        _PAGES[key] = Client(url, verbose=False, headers=headers)
    return _PAGES[key]


def _refused(space, refusal: dict, headers: dict | None = None, **request) -> str:
    url, api = space
    api.refusals = [refusal]
    seen = len(api.durations)
    with pytest.raises(AppError) as refused:
        _page(url, headers).predict(**request)
    assert len(api.durations) == seen and not api.refusals  # asked once, refused, nothing ran
    return str(refused.value)


def test_a_quota_refusal_says_when_it_comes_back_and_what_fits_now(space):
    """ZeroGPU's "You have exceeded your free ZeroGPU quota (135s requested vs. 100s left). Try again
    in 2:05:11." as the studio's message: the request, what is left, when it comes back, signing in, and the
    ways that fit (each of them declaring no more than is left)."""
    message = _refused(space, {"left": 100, "wait": 7511}, TOKEN, **LONG)
    asked = space[1].refused[-1]
    print(f"\n{asked} s asked, 100 s left: {message}")
    assert f"This press would reserve {asked // 60}:{asked % 60:02d} of GPU time" in message and asked > 100
    assert "your daily ZeroGPU quota has 1:40 left" in message and "comes back in 2:05:11" in message
    assert "Signed in to Hugging Face you get more time a day" in message
    ways = re.search(
        r"What fits now: at most (\d) takes? of that length, takes up to ([\w ]+) or up to (\d+) steps", message
    )
    assert ways, message
    # Each way declares no more than is left (asked again, refused again: ZeroGPU saw each declaration).
    length = re.fullmatch(r"(?:(\d+) min(?:utes?)?)? ?(?:(\d+) s)?", ways.group(2))
    shorter = 60 * int(length.group(1) or 0) + int(length.group(2) or 0)
    assert 10 <= shorter < LONG["audio_duration"], ways.group(2)
    for change in (
        {"batch_size": int(ways.group(1))},
        {"audio_duration": shorter},
        {"inference_steps": int(ways.group(3))},
    ):
        _refused(space, {"left": 100, "wait": 7511}, TOKEN, **{**LONG, **change})
        assert space[1].refused[-1] <= 100, (change, space[1].refused[-1])
    assert "ZeroGPU quota" not in message.replace("daily ZeroGPU quota", "") and "requested vs." not in message
    # Less than the least any click reserves: nothing fits until the quota comes back.
    short = {"prompt": "short", "audio_duration": 10, "think": False, "api_name": "/generate"}
    message = _refused(space, {"left": 45, "wait": 60}, TOKEN, **short)
    assert "has 0:45 left" in message and "comes back in 0:01:00" in message
    assert "Nothing fits until then: every press here reserves at least 1:00" in message


def test_a_tiers_limit_and_the_spaces_limit_are_said_with_a_message(space):
    """ "ZeroGPU illegal duration" (a declaration over the visitor's largest), the quota of a Space
    whose visitors have no token and a visitor's runs limit, each with a message; the lyrics writer's too."""
    message = _refused(space, {"left": 0, "wait": -1}, TOKEN, **LONG)
    assert "more than ZeroGPU lets your account reserve in one press" in message
    assert "the largest request here reserves 5:00" in message and "What reserves less: at most" in message
    assert "illegal" not in message
    message = _refused(space, {"left": 30, "wait": 600}, None, **{**LONG, "audio_duration": 10, "batch_size": 1})
    assert "The GPU time ZeroGPU gives this Space has run out for now" in message and "Try again later." in message
    message = _refused(space, {"left": 0, "wait": 0}, TOKEN, **{**LONG, "audio_duration": 10, "batch_size": 1})
    assert "You have started as many GPU runs as ZeroGPU allows your account for now" in message
    message = _refused(space, {"left": 20, "wait": 600}, TOKEN, theme="rain", api_name="/lyrics")
    assert "has 0:20 left" in message and "Nothing fits until then" in message


def test_under_a_minute_left_every_click_says_nothing_fits_until_the_quota_comes_back(space, tmp_path):
    """Every click declares at least a minute, so with 0:45 left nothing fits. Every
    GPU entry (Write it, Describe, stems, variations; songs and lyrics above) says so, with when the quota
    comes back as ZeroGPU says it, under the studio's title (gradio_client reads it as the page would)."""
    from gradio_client import handle_file

    url, api = space
    page = Client(url, verbose=False, headers=TOKEN)  # one page: its own take is split and varied
    record = page.predict(prompt="x", audio_duration=10, inference_steps=1, think=False, api_name="/generate")[-1]
    song = handle_file(str(tone(tmp_path / "song.wav", seconds=10)))
    for asked in (
        {"idea": "a song about the sea", "api_name": "/write_song"},
        {"src_audio": song, "api_name": "/describe"},
        {"take": 1, "record": record, "api_name": "/stems"},
        {"take": 1, "record": record, "api_name": "/variations"},
    ):
        api.refusals, seen = [{"left": 45, "wait": 5400}], len(api.durations)
        with pytest.raises(AppError) as refused:
            page.predict(**asked)
        message = str(refused.value)
        assert "has 0:45 left" in message and "comes back in 1:30:00" in message, (asked["api_name"], message)
        assert "Nothing fits until then: every press here reserves at least 1:00" in message, message
        assert refused.value.title == "Out of GPU time" and len(api.durations) == seen and not api.refusals


def _reserved(page, prefix: str) -> int:
    """The seconds the text under ``prefix``'s button says a click reserves, once it says so."""
    reserves = page.locator(f"#{prefix}-reserves")
    reserves.get_by_text(RESERVES).wait_for()
    minutes, seconds = RESERVES.search(reserves.inner_text()).groups()
    return int(minutes) * 60 + int(seconds)


def _after(page, changes: list[tuple[str, float]]) -> int:
    """What the quota text says once each change has had its answer (the page's instant event per field)."""
    for selector, value in changes:
        with page.expect_response(lambda r: "/run/predict" in r.url) as answer:
            _fill_number(page, selector, value)
    said = RESERVES.search(str(answer.value.json()["data"][0])).group(0)
    page.locator("#gen-reserves").get_by_text(said).wait_for()  # drawn once the last answer is in
    return _reserved(page, "gen")


def test_the_text_under_the_button_is_what_the_click_declares(browser, space, request, tmp_path):
    """The quota text follows the fields (arithmetic in the page's instant events), equals the duration
    the click then declares to ZeroGPU (Generate, Split into stems, Describe, Cover), and a refusal
    reaches the page with a message."""
    url, api = space
    desk = {"viewport": {"width": 1280, "height": 1000}, "extra_http_headers": TOKEN}
    for page in _open(browser, url, f"quota/{request.node.name}", True, **desk):
        before = _reserved(page, "gen")  # 30 s with Think, as the page opens
        page.locator("#gen-prompt textarea").fill("night drive")
        page.locator("#gen-advanced").get_by_text("Advanced settings").click()
        longer = _after(page, [("#gen-takes", 4), ("#gen-duration", 240)])
        assert longer > before, (before, longer)
        api.refusals = [{"left": 90, "wait": 3600}]
        page.locator("#gen-button").click()
        toast = page.locator("[data-testid=toast-body]").get_by_text("your daily ZeroGPU quota has 1:30 left")
        toast.wait_for()
        assert api.refused[-1] == longer and "comes back in 1:00:00" in toast.inner_text()
        # Headed with the studio's title, not Gradio's "Error".
        heading = page.locator("[data-testid=toast-body].error .toast-title")
        heading.get_by_text("Out of GPU time", exact=True).wait_for()
        picture(page, SHOTS / "quota" / "refused.png")
        shown, seen = _after(page, [("#gen-takes", 1), ("#gen-duration", 10), ("#gen-steps", 3)]), len(api.durations)
        page.locator("#gen-button").click()
        page.locator("#gen-take-1 a.download-link").wait_for()
        assert api.durations[seen:] == [shown], (shown, api.durations[seen:])
        _agrees(page, api, "gen-stems-1", "#gen-stems-1", "#gen-take-1-vocals audio")
        page.get_by_role("tab", name="Cover", exact=True).click()
        assert "how much shows once a song is here" in page.locator("#cover-reserves").inner_text()
        # One step, not the model's 50: what the click reserves is the point, not the music. Set (and its
        # answer in) before the song, so the first quota text a song draws already counts it.
        page.locator("#cover-advanced").get_by_text("Advanced settings").click()
        with page.expect_response(lambda r: "/run/predict" in r.url):
            _fill_number(page, "#cover-steps", 1)
        assert "how much shows once a song is here" in page.locator("#cover-reserves").inner_text()
        # The shortest song (10 s): what each click reserves is the point, not how long the song is.
        page.locator("#cover-src input[type=file]").set_input_files(str(tone(tmp_path / "song.wav", seconds=10)))
        _agrees(page, api, "cover-describe", "#cover-describe", "#cover-describe-note >> text=the planner heard none")
        _agrees(page, api, "cover", "#cover-button", "#cover-take-1 a.download-link")
        page.get_by_role("tab", name="Lyrics", exact=True).click()
        assert 60 <= _reserved(page, "ly") <= 300


def _agrees(page, api, prefix: str, button: str, done: str) -> None:
    """A click of ``button`` declares what the text ``prefix``-reserves said, and its work is ``done``."""
    shown, seen = _reserved(page, prefix), len(api.durations)
    page.locator(button).click()
    page.locator(done).first.wait_for(state="attached")
    assert api.durations[seen:] == [shown], (prefix, shown, api.durations[seen:])


def test_the_quota_text_counts_the_factor_spaces_applies_at_the_size_in_force(studio_env, monkeypatch):
    """On each card ``spaces`` publishes (``zero/configs.json``) a click is counted at that
    card's ``duration_factor`` on a slice and at twice its declaration on a whole card (``xlarge``, where
    a Space packs past the card's threshold), and where ``spaces`` is absent at the RTX Pro 6000's
    published factor: the text under the button, and its "more than a day" message, say so."""
    import sys

    import spaces.zero  # before SPACES_ZERO_GPU is set: imported with it, spaces would patch torch
    from spaces.zero import config

    import audio
    import duration_estimate
    import handlers
    import messages
    import quota
    from test_offload import published_configs

    fields = {"prompt": "x", "audio_duration": 60, "inference_steps": 50, "batch_size": 1, "think": False}
    declared = duration_estimate.music_duration(
        duration_estimate.MusicShape.of(handlers.prepare_for_admission("generate", fields).request)
    )
    over_day = messages.RESERVES_OVER_DAY.format(day=audio.clock(quota.FREE_DAY))
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")

    def said(factor: float) -> None:
        text, counted = handlers.reserves("generate")(fields), round(declared * factor)
        assert text.startswith(messages.RESERVES.format(time=audio.clock(counted))), (factor, declared, text)
        assert (over_day in text) == (counted > quota.FREE_DAY), text

    cards = published_configs()
    for card in cards:
        monkeypatch.setattr(config, "get_config", lambda card=card: card)
        monkeypatch.setattr(spaces.zero, "_default_gpu_size", None)
        said(card["duration_factor"])
        if card["xlarge_threshold"] is not None:
            monkeypatch.setattr(spaces.zero, "_default_gpu_size", "xlarge")
            said(2)
    assert {c["model"]: c["duration_factor"] for c in cards}[quota.PUBLISHED_CARD] == quota.PUBLISHED_FACTOR
    for module in ("spaces", "spaces.zero", "spaces.zero.config"):
        monkeypatch.setitem(sys.modules, module, None)  # spaces absent
    said(quota.PUBLISHED_FACTOR)


def test_a_music_buttons_quota_text_follows_every_input_of_its_button(monkeypatch):
    """The quota text under each music button (``handlers.reserves``) prices the request the button's
    preparer makes of its inputs, so it follows what the page wires to the button, not a list of fields
    kept by hand: its events take the button's inputs, and a change to any one of them draws it again."""
    import app
    import gpu

    monkeypatch.setattr(gpu, "on_zero_gpu", lambda: True)  # the quota texts are wired on a Space only
    fns = list(app.build_ui().fns.values())
    for api in ("generate", "cover", "extend", "edit", "variations", "morph"):
        button = next(fn for fn in fns if fn.api_name == api)
        wanted = [block._id for block in button.inputs]
        drawn = [
            fn
            for fn in fns
            if [block._id for block in fn.inputs] == wanted
            and any(str(getattr(out, "elem_id", "")).endswith("-reserves") for out in fn.outputs)
        ]
        changed = {block for fn in drawn for block, event in fn.targets if event == "change"}
        assert drawn and set(wanted) <= changed, api
