"""What a newcomer meets on the page in Chromium: every field's help shown whole on a desk; Extend's bars to add
under the waveform whose seam they set, as Edit's bars are; Think's plan gone with Think; *Split into stems*' progress
drawn where it shows; *Use this voice* offered on a sung take alone; the MCP view's count of tools; and the log's
lines, each a whole sentence."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from test_bar_marks import _take_with_map
from test_browser import _fill_number, _open, _tab, site  # noqa: F401 (fixtures)
from test_edit_lines import client  # noqa: F401 (fixtures)

DESK = {"viewport": {"width": 1280, "height": 1000}}


@pytest.fixture
def page(browser, site, request):  # noqa: F811
    yield from _open(browser, site, request.node.name, True, **DESK)


# Each shown field's help under its label: its words, and whether its box cuts them (clamped to fewer lines
# than they need, an ellipsis, or wider than the box).
HELPS = """() => [...document.querySelectorAll('.info-text, [data-testid="block-info"] + .info-text')]
  .filter((h) => h.offsetParent && h.textContent.trim())
  .map((h) => { const s = getComputedStyle(h);
    return [(h.closest('.block[id]') || h.closest('[id]'))?.id || '', h.textContent.trim(), h.scrollHeight - h.clientHeight,
      h.scrollWidth - h.clientWidth, s.webkitLineClamp, s.textOverflow, h.getBoundingClientRect().height]; })"""


def _cut(page) -> list:
    return [h for h in page.evaluate(HELPS) if h[2] > 1 or h[3] > 1 or h[4] not in ("none", "") or h[5] == "ellipsis"]


def test_every_generate_fields_help_is_shown_whole_on_a_desk(page):
    page.locator("#gen-button").wait_for()
    shown = page.evaluate(HELPS)
    assert {"gen-bpm", "gen-loop", "gen-lock"} <= {h[0] for h in shown}, shown
    assert _cut(page) == []
    page.locator("#gen-advanced").get_by_text("Advanced settings").click()
    page.locator("#gen-dcw").wait_for()
    assert _cut(page) == []


def test_the_bars_sit_right_under_the_waveform_once_a_song_is_there(page, client, studio_server):  # noqa: F811
    """Edit's bars and Extend's bars to add sit under the waveform whose bars they count, Advanced settings folded
    (not at the bottom of Advanced settings); before a song, with no bars to count, they are not shown. One song,
    one page, both tabs."""
    song = _take_with_map(client, studio_server[1])
    for prefix in ("edit", "extend"):
        _tab(page, prefix.capitalize())
        page.locator(f"#{prefix}-describe").wait_for()
        assert not page.locator(f"#{prefix}-bars").is_visible()
        page.locator(f"#{prefix}-src input[type=file]").set_input_files(song)
        page.locator(f'#{prefix}-wave [data-ready="1"][data-bars="7"]').wait_for()
        assert page.locator(f"#{prefix}-advanced button.label-wrap.open").count() == 0  # Advanced settings folded
        wave = page.locator(f"#{prefix}-wave .ace-wave-box").bounding_box()
        field = page.locator(f"#{prefix}-bars").bounding_box()
        assert 0 <= field["y"] - (wave["y"] + wave["height"]) <= 150, (prefix, wave, field)


def _generate(page, caption: str, **numbers: float) -> None:
    """A 10 s take of one step with ``caption`` (and Advanced settings' ``numbers``, by their ids' ends), clicked."""
    page.locator("#gen-prompt textarea").fill(caption)
    page.locator("#gen-advanced").get_by_text("Advanced settings").click()
    for name, value in {"duration": 10, "steps": 1, **numbers}.items():
        _fill_number(page, f"#gen-{name}", value)
    page.locator("#gen-button").click()


def test_think_turned_off_after_use_these_settings_takes_the_plan_and_generate_runs(page):
    """*Use these settings* on a take made with Think brings its plan back; Think then unticked takes the plan away
    with it (kept, the next click was refused 2,000 px down: "A plan is what Think follows …"), and Generate makes
    the take."""
    _generate(page, "dusty soul ballad", seed=40)
    page.locator("#gen-seeds").get_by_text(re.compile(r"Planned in [\d.]+ s")).wait_for()
    page.locator("#gen-use-settings").click()
    page.wait_for_function("() => document.querySelector('#gen-plan textarea').value.includes('\"take\"')")
    page.locator("#gen-think input[type=checkbox]").uncheck()
    page.wait_for_function("() => document.querySelector('#gen-plan textarea').value === ''")
    _fill_number(page, "#gen-seed", 7)
    page.locator("#gen-button").click()
    page.locator("#gen-seeds").get_by_text("take 1: 7").wait_for()
    assert page.locator("[data-testid=toast-body].error").count() == 0


def test_every_gpu_click_shows_its_progress_on_something_the_page_shows():
    """Each GPU event a button the page shows starts draws its progress on a component the page shows: *Split into
    stems* drew it on the take's hidden audio (the API's output), so nothing moved for minutes and a visitor clicked
    twice. Read from the page's own config (each event's ``show_progress_on``, else its outputs)."""
    import app

    config = app.demo.get_config_file()
    shown = {c["id"]: c["props"].get("visible", True) is not False for c in config["components"]}
    events = {d["id"]: d for d in config["dependencies"]}
    checked = []
    for fn_id, fn in app.demo.fns.items():
        event = events[fn_id]
        started = [target for target, _ in event["targets"] if shown.get(target)]
        if fn.concurrency_id != "gpu" or not started:
            continue  # not GPU work, or an endpoint for API clients alone (a button no page shows)
        drawn_on = event["show_progress_on"] or event["outputs"]
        checked.append(event["api_name"])
        assert any(shown[c] for c in drawn_on), (event["api_name"], drawn_on)
    assert {"generate", "stems", "stems_edit_4", "describe"} <= set(checked), checked


def test_use_this_voice_is_offered_on_a_take_that_sings_alone(page):
    """An instrumental take was offered *Use this voice*, whose click then refused it ("… is instrumental"): under the
    result and in My takes the button is there for a sung take alone."""
    page.locator("#gen-think input[type=checkbox]").uncheck()
    page.locator("#gen-instrumental input[type=checkbox]").check()
    _generate(page, "soft folk")
    page.locator("#gen-seeds").get_by_text("take 1").wait_for()
    href = page.locator("#gen-take-1 a.download-link").get_attribute("href")
    expect(page.locator("#gen-use-voice")).to_be_hidden()
    page.locator("#gen-instrumental input[type=checkbox]").uncheck()
    page.locator("#gen-lyrics textarea").fill("[verse]\nla la la\nla la la")
    page.locator("#gen-button").click()
    page.wait_for_function(
        "h => document.querySelector('#gen-take-1 a.download-link')?.getAttribute('href') !== h", arg=href
    )
    expect(page.locator("#gen-use-voice")).to_be_visible()
    page.locator("#my-takes").get_by_text("My takes").first.click()
    page.locator('#my-takes-list [data-count="2"]').wait_for()
    sung, instrumental = page.locator("#my-takes-list li.my-take").all()
    expect(sung.get_by_role("button", name="Use this voice")).to_have_count(1)
    expect(instrumental.get_by_role("button", name="Use this voice")).to_have_count(0)
    expect(instrumental.get_by_role("button", name="Use these settings")).to_have_count(1)


def test_the_mcp_view_counts_the_tools_the_studio_serves(page, site):  # noqa: F811
    """*Use via API or MCP*'s MCP view said "30 MCP Tools" (Gradio counts the page's API endpoints) above "10 Available
    MCP Tools": its head says the tools the MCP server lists, and the API views the endpoints, as before."""
    import json
    import urllib.request

    import agents
    from conftest import CLIENT_TIMEOUT_S

    with urllib.request.urlopen(site + "gradio_api/mcp/schema", timeout=CLIENT_TIMEOUT_S) as answer:
        served = json.load(answer)
    tools = len(served if isinstance(served, list) else served.get("tools", served))
    assert tools == len(agents.TOOLS), served
    endpoints = page.evaluate(
        "() => window.gradio_config.dependencies.filter((d) => d.api_visibility === 'public').length"
    )
    assert endpoints != tools  # the two counts the view confused
    count = page.locator(".api-docs h2 .counts .url")
    page.get_by_text("Use via API or MCP").click()
    page.locator(".api-docs li").get_by_text("Python", exact=True).click()
    expect(count).to_have_text(str(endpoints))
    page.locator(".api-docs li").get_by_text("MCP", exact=True).click()
    page.get_by_text(f"{tools} Available MCP Tools").wait_for()
    expect(count).to_have_text(str(tools))
    expect(page.locator(".api-docs h2 .counts")).to_contain_text("MCP Tools")
    page.locator(".api-docs li").get_by_text("Python", exact=True).click()
    expect(count).to_have_text(str(endpoints))


# Words a whole sentence does not end on: a line that stops on one was cut mid-phrase ("… by the studio's own").
DANGLING = {"a", "an", "the", "its", "their", "own", "of", "by", "to", "and", "or", "from", "with", "for", "in", "on"}


def test_the_log_lines_of_an_upload_and_an_edit_of_a_take_end_as_sentences(
    client,  # noqa: F811
    studio_server,
    capfd,
    monkeypatch,
    tmp_path,
):
    """What the served studio prints while it reads an upload (its beat tracker's word, said once a process) and
    makes an Edit of a take (where the song's latents came from): no line stops mid-phrase, as "uploads are mapped by
    the studio's own" and "edit: the song the take's own latents (…)" did."""
    import shutil

    from gradio_client import handle_file

    import beat_network
    import examples
    import messages

    monkeypatch.setattr(beat_network, "_state", {"network": None, "why": None, "tried": False})  # said again here
    song = _take_with_map(client, studio_server[1])
    upload = shutil.copyfile(examples.demo_song(), tmp_path / "an-upload.wav")  # a file the studio has not read
    capfd.readouterr()
    client.predict(src_audio=handle_file(str(upload)), api_name="/edit_analyze")
    region = {"repainting_start": 2, "repainting_end": 4}
    client.predict(src_audio=handle_file(song), prompt="x", **region, inference_steps=1, api_name="/edit")
    said = capfd.readouterr()
    lines = [line.strip() for line in (said.out + said.err).splitlines() if line.strip()]
    latents = messages.SONG_LATENTS.format(mode="edit", how=messages.LATENTS_OF_TAKE.format(name=""))[:-3]
    assert any(line.startswith(latents) for line in lines), lines
    assert any(line.startswith("Beat network: ") for line in lines) or beat_network.REPO, lines
    for line in lines:
        last = line.rstrip(".)…:;, ").rsplit(" ", 1)[-1].lower()
        assert last not in DANGLING and not last.endswith("'s"), line
