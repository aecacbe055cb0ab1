"""Tests of ``preparing.check_unused``, ``part_tasks.check_unused`` and the page's resets (``edit_fields.showing``,
``form_fields.morph_controls``, Generate's caption switch): an argument the chosen way of a mode does not use is
refused in words naming it, never passed over; one it uses changes what is made. Derived from the declaration of
which ways use which fields (``parameters.USED_BY``, the parts' own: ``part_tasks.USED_BY``), over every mode's
arguments (``parameters.names``) and ways; a page that leaves a way sends nothing that way refuses (in Chromium)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import checks
import edit_fields
import error_messages
import examples
import handlers
import models
import parameters
import part_tasks
import preparing
from test_browser import POLL_MS, TIMEOUT_MS, _fill_number, _number_shown, _open, _tab, site  # noqa: F401 (fixtures)


def _print(value: object) -> object:
    """A prepared request as plain data, its arrays by their shape and hash, to compare two requests."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _print(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return [value.shape, hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest()]
    if isinstance(value, dict):
        return {str(k): _print(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_print(v) for v in value]
    return "a function" if callable(value) else repr(value)


def _prepared(values: dict) -> str:
    job = handlers.prepare_for_admission("edit", values)
    return json.dumps([_print(job.request), _print(job.finishing), job.region, job.part is not None], sort_keys=True)


def _other(name: str) -> object:
    """A value of a part's field other than its default: parts the model knows, in the order a musician reads them."""
    default = parameters.PARAMS[name].default
    if isinstance(default, str):
        return next(t for t in part_tasks.SHOWN if t != default)
    return next(
        list(part_tasks.SHOWN[i : i + 3])
        for i in range(len(part_tasks.SHOWN))
        if set(part_tasks.SHOWN[i : i + 3]) != set(default)
    )


CASES = [(change, name) for change in part_tasks.CHANGES for name in part_tasks.USED_BY]


def _caption(mode: str, way: str) -> dict:
    """The base request's caption, where the way takes one (a part taken out is told only its name)."""
    return {"prompt": "a song"} if way in parameters.USED_BY.get(mode, {}).get("prompt", (way,)) else {}


def _tone(tmp_path_factory, name: str, seconds: int, hz: float) -> str:
    """A sine of ``hz`` written as a 48 kHz WAV of ``seconds``: a song to upload."""
    path = Path(tmp_path_factory.mktemp("unused")) / name
    t = np.arange(seconds * 48000) / 48000
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 48000)
    return str(path)


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> str:
    return _tone(tmp_path_factory, "song.wav", 12, 220)


@pytest.mark.parametrize(("change", "name"), CASES)
def test_a_parts_field_is_used_by_its_changes_and_refused_in_words_by_the_others(studio_env, song, change, name):
    """``/edit`` with ``change="add"`` and ``add_parts=["bass", "drums", "percussion"]`` made a take with vocals
    added (``part`` at its default) and said nothing; its record said part "vocals". Each part's field, set to a
    value other than its default: a change that uses it makes something else; any other refuses it, naming it."""
    base = {"src_audio": song, **_caption("edit", change), "change": change, "seed": 7}
    other = _other(name)
    if change in part_tasks.USED_BY[name]:
        assert _prepared({**base, name: other}) != _prepared(base), (change, name, other)
        return
    with pytest.raises(checks.InputError) as refused:
        handlers.prepare_for_admission("edit", {**base, name: other})
    print(f"\n{change}, {name}={other}: {refused.value}")
    assert refused.value.param == name and f"({name}:" in str(refused.value)


def test_the_page_sets_a_hidden_parts_field_back_to_its_default():
    """The page sends every field whatever the change: a part's field the change does not use is hidden at its
    default (so a click is never refused for a value the visitor no longer sees), and one it uses is shown."""
    show = edit_fields.showing(models.active_variant())
    for change in part_tasks.CHANGES:
        updates = show(change, _other("part"), _other("add_parts"))[1 : 1 + len(part_tasks.USED_BY)]
        for name, update in zip(part_tasks.USED_BY, updates, strict=True):
            used = change in part_tasks.USED_BY[name]
            assert update["visible"] == used, (change, name, update)
            if not used:
                default = parameters.PARAMS[name].default
                assert update["value"] == (default if isinstance(default, str) else list(default)), (change, name)
                assert not part_tasks._given(update["value"], default)


# Each mode's ways of working that use different fields (``parameters.USED_BY``), as the base request each case
# changes one field of: Generate (Think off: no planner here), Cover with and without Morph, Extend, each Edit change.
WAYS = {
    ("generate", "plain"): {},
    ("cover", "cover"): {},
    ("cover", "morph"): {"morph": True, "morph_prompt": "a sine drone"},
    ("extend", "end"): {},
    **{("edit", change): {"change": change} for change in part_tasks.CHANGES},
}
# A value for each field that is no declared parameter (no ``Param.label``) and needs one of its own to be valid.
VALUES = {
    "prompt": "another song",
    "lyrics": "[Verse]\nla la la",
    "audio_duration": 20.0,
    "bpm": 120,
    "batch_size": 2,
    "auto_length": True,
    "plan": "bpm: 90",
    "loudness": -10,
    "reference_take": "a-take.wav",
    "loop_bars": 4,
    "morph_prompt": "an old tune",
    "morph_lyrics": "[Verse]\nold words",
    "extend_seconds": 20.0,
    "bars": "1-2",
    "first_downbeat": 0.5,
    "repainting_start": 1.0,
    "repainting_end": 8.0,
    "section": "Verse",
    "lines": [1],
    "repaint_mode": next(m for m in preparing.REPAINT_MODES if m != parameters.PARAMS["repaint_mode"].default),
}
# What a field needs beside it to be used at all (a loop's tempo, a morph's song as it is now).
WITH = {"loop_bars": {"bpm": 120}, "lock_to_grid": {"bpm": 120}, "morph": {"morph_prompt": "a sine drone"}}
# A switch refused on the field it belongs to: *Length: auto* is the Length field's.
REFUSED_ON = {"auto_length": "audio_duration"}
# Fields whose use the prepared request cannot show, each with why; nothing else is exempt.
EXEMPT = {
    # Nothing sung, the model is told "unknown" whatever is picked, as upstream's page sets the language of an
    # instrumental (tests/test_generate.py and test_upstream.py hold it): kept, not refused.
    "vocal_language": "the language of a song with nothing sung",
}


def _value(name: str, base: dict, song: str, other: str) -> object:
    """A valid value of ``name`` other than the one the base request sends (its default, where it sends none)."""
    p = parameters.PARAMS[name]
    sent = base.get(name, p.default)
    if name in ("src_audio", "reference_audio"):
        return other
    if name in part_tasks.USED_BY:
        return _other(name)
    if name.startswith("lora") and not name.endswith("scale"):  # an adapter's file or preset: one it lacks
        return f"{name}.safetensors" if not name.endswith("preset") else "no-such-preset"
    if name in VALUES and VALUES[name] != sent:
        return VALUES[name]
    if p.choices:
        values = [c[1] if isinstance(c, tuple) else c for c in p.choices]
        return next(v for v in values if v != sent)
    if p.span:
        low, high = p.span
        model = getattr(models.active_variant(), p.model_default) if p.model_default else None
        middle = low + round((high - low) / 2 / p.step) * p.step
        found = [round(v, 4) for v in (middle, low, high) if round(v, 4) not in (sent, model)]
        return int(found[0]) if p.kind.startswith("int") else found[0]
    if isinstance(sent, bool) or "bool" in p.kind:
        model = getattr(models.active_variant(), p.model_default) if p.model_default else sent
        return not model
    if isinstance(sent, str):
        return sent + " and more" if sent else "something"
    raise AssertionError(f"no value for {name}: give it one in VALUES")


def _job(mode: str, values: dict) -> str:
    return _printed(handlers.prepare_for_admission(mode, values))


def _printed(job) -> str:
    return json.dumps([_print(job.request), _print(job.finishing), job.region, job.part is not None], sort_keys=True)


ARGUMENTS = [
    (mode, way, name)
    for (mode, way) in WAYS
    for name in parameters.names(mode)
    if name not in ("change", *EXEMPT)
    and name not in WAYS[(mode, way)]
    or (mode, way, name) == ("cover", "morph", "morph_prompt")
]


@pytest.fixture(scope="module")
def other_song(tmp_path_factory) -> str:
    return _tone(tmp_path_factory, "other.wav", 11, 330)


@pytest.mark.parametrize(("mode", "way", "name"), ARGUMENTS)
def test_every_argument_is_honoured_or_refused_in_words_in_every_way_of_every_mode(
    studio_env, song, other_song, mode, way, name
):
    """Each argument of each mode's declaration (``parameters.names``), set to a valid value other than the one sent,
    in each way of the mode (Edit's changes, Cover with Morph and without): the prepared job differs (honoured), or
    the request is refused in words naming the field; one the way does not use (``parameters.USED_BY``) is refused.
    Found passed over: Cover's song's own words without Morph, its strength and start with Morph, Edit's key, tempo,
    metre, region, repaint mode and bar 1 with a part, the style and lyrics of a part taken out, lyrics with a part
    that sings nothing, Generate's caption switch with Think off, every adapter slot's strength with a part, DCW with
    Morph (its call held it, and the morph ran without it)."""
    song_of = {} if mode == "generate" else {"src_audio": song}
    base = {**_caption(mode, way), "seed": 7, **song_of, **WAYS[(mode, way)]}
    value = _value(name, base, song, other_song)
    unused = way not in parameters.USED_BY.get(mode, {}).get(name, (way,))
    try:
        job = handlers.prepare_for_admission(mode, {**WITH.get(name, {}), **base, name: value})
    except checks.InputError as refused:
        print(f"\n{mode} ({way}), {name}={value!r}: {refused}")
        assert refused.param == REFUSED_ON.get(name, name), (refused.param, str(refused))
        return
    assert not unused, f"{name} is not used by {way}, yet it was not refused"
    assert _printed(job) != _job(mode, base), f"{mode} ({way}) passed over {name}={value!r} without a word"
    # What the run reads is what the take's record keeps (``Param.held``): a call field the run leaves out (DCW in
    # a morph: ``flow_edit``) is one the way does not use, however the prepared call holds it.
    held = parameters.PARAMS[name].held
    call = job.request.render.pipeline
    assert held is None or held(mode, call), f"{mode} ({way}) runs without {name}={value!r}, yet took it"


MODEL_DEFAULTS = [
    (mode, way, name)
    for (mode, way) in WAYS
    for name, used in parameters.USED_BY.get(mode, {}).items()
    if parameters.PARAMS[name].model_default and way not in used
]


@pytest.mark.parametrize(("mode", "way", "name"), MODEL_DEFAULTS)
def test_a_field_at_the_models_own_default_is_no_value_asked(studio_env, song, mode, way, name):
    """A field whose default is the model's (``Param.model_default``: DCW, on for turbo only) is sent by the page as
    the model's own value (a checkbox sends True or False, never "the model's"): a way that does not use it takes
    that value as none asked, and refuses the other, naming the field."""
    p = parameters.PARAMS[name]
    makes = models.VARIANTS[models.BASE_VARIANT] if mode == "edit" and way != "region" else models.active_variant()
    own = getattr(makes, p.model_default)
    base = {**_caption(mode, way), "seed": 7, "src_audio": song, **WAYS[(mode, way)]}
    assert _job(mode, {**base, name: own}) == _job(mode, base)
    with pytest.raises(checks.InputError) as refused:
        handlers.prepare_for_admission(mode, {**base, name: not own if isinstance(own, bool) else own + p.step})
    assert refused.value.param == name and f"({name}:" in str(refused.value)


def test_the_page_sets_each_field_a_change_does_not_use_back_to_its_default():
    """The page sends every field whatever the change: each field Edit's change does not use (``parameters.USED_BY``)
    is set back to its default as the change is chosen, so a click is never refused for a value the visitor left
    on a field the change hides; one the change uses is left as the visitor set it. The lyrics of a part that sings
    nothing (``part_tasks.check_unsung``) are emptied too, and kept for a sung one."""
    fields = edit_fields.SHOWN_PARAMS.values()
    resets = tuple(n for n in parameters.USED_BY["edit"] if n not in part_tasks.USED_BY and n not in fields)
    show = edit_fields.showing(models.active_variant(), resets)
    for change, (part, adding) in itertools.product(part_tasks.CHANGES, (("drums", ["bass"]), ("vocals", ["vocals"]))):
        updates = show(change, part, adding)
        after = dict(zip(edit_fields.Shown._fields, updates[3 : 3 + len(edit_fields.Shown._fields)], strict=True))
        after.update(zip(resets, updates[3 + len(edit_fields.Shown._fields) :], strict=True))
        after.update({name: after.pop(field) for field, name in edit_fields.SHOWN_PARAMS.items()})
        sings = change == "region" or part_tasks.sung(change, part, adding)
        for name, used in parameters.USED_BY["edit"].items():
            if name in part_tasks.USED_BY:
                continue
            if change in used and (sings or name != "lyrics"):
                assert "value" not in after[name], (change, name)
            else:
                assert not parameters.given(name, after[name]["value"]), (change, name, after[name])


@pytest.mark.parametrize(
    ("settings", "told"),
    [
        ({"change": "extract", "part": "drums"}, ("drums", "")),
        ({"change": "complete", "add_parts": ["drums", "bass"], "prompt": "rock"}, ("rock", "")),
        ({"change": "add", "part": "guitar", "prompt": "jangly"}, ("jangly", "")),
    ],
)
def test_a_parts_take_that_sings_nothing_is_made_again_from_its_record(studio_env, song, settings, told):
    """A part taken out is told only its name, which its record keeps as its caption (as upstream's page writes it);
    a part that sings nothing keeps no lyrics: a variation sends the record's caption and lyrics again, and they
    are taken, not refused as a caption or lyrics the part does not use."""
    import variations

    _, record = handlers.make("edit", src_audio=song, inference_steps=1, seed=3, **settings)
    assert (record["params"]["prompt"], record["params"]["lyrics"]) == told
    again = variations.prepare(1, record, 0.3, 1, seed=5, src_audio=song)
    call = again.request.render.pipeline
    assert (call.prompt, call.lyrics, again.request.render.seeds) == (told[0], checks.INSTRUMENTAL_TAG, (3,))


# ---------------------------------------------------------------- the page: a way left leaves nothing refused


@pytest.fixture
def page(browser, site, request):  # noqa: F811
    yield from _open(browser, site, f"unused/{request.node.name}", True, viewport={"width": 1280, "height": 1000})


# The tab's next take, or the words of a refusal (a field's validation error, an error toast), whichever comes first.
MADE_OR_REFUSED = """([tab, before]) => {
  const link = document.querySelector(`#${tab}-take-1 a.download-link`);
  if (link && link.href.includes('/takes/') && link.href !== before) return 'made';
  const refused = document.querySelector('.validation-error, [data-testid=toast-body].error');
  return refused ? refused.innerText || 'refused' : false;
}"""


def _click_and_made(page, tab: str, button: str) -> None:
    """Click the tab's button and wait for its take; a refusal instead fails with its words."""
    link = page.locator(f"#{tab}-take-1 a.download-link").first
    before = link.get_attribute("href") if link.count() else None
    page.locator(button).click()
    said = page.wait_for_function(MADE_OR_REFUSED, arg=[tab, before], timeout=TIMEOUT_MS, polling=POLL_MS)
    assert said.json_value() == "made", said.json_value()


def test_a_cover_after_morph_is_made_with_nothing_the_morph_left_refused(page):
    """Cover's strength and start set, Morph ticked (they go back to their defaults: a morph refuses others, and an
    example's strength while it is on goes back too) and its fields filled: the morph is made; Morph unticked (its
    fields emptied: a cover refuses them): the cover is made."""
    _tab(page, "Cover")
    page.locator(".tabitem:visible table tbody tr, .tabitem:visible button.gallery-item").first.click()
    page.locator("#cover-src-info").get_by_text("0:12.0 long").wait_for()
    page.locator("#cover-advanced").get_by_text("Advanced settings").click()
    _fill_number(page, "#cover-steps", 1)
    _fill_number(page, "#cover-start", 0.3)
    assert float(page.locator("#cover-strength input[type=number]").first.input_value()) != 0.6  # the example's
    page.locator("#cover-morph").get_by_text("Morph the song (flow edit)").click()
    for field, default in (("#cover-strength", 0.6), ("#cover-start", 0.0)):
        _number_shown(page, field, default)
    page.locator("#cover-morph-prompt textarea").fill("a sine drone")
    page.locator("#cover-morph-lyrics textarea").fill("[Verse]\nold words")
    # The example again, while Morph is on: its strength goes back to the default as well.
    page.locator("#cover-prompt textarea").fill("")
    page.locator(".tabitem:visible table tbody tr, .tabitem:visible button.gallery-item").first.click()
    caption = examples.COVER[0][0]
    page.wait_for_function("c => document.querySelector('#cover-prompt textarea').value === c", arg=caption)
    _number_shown(page, "#cover-strength", 0.6)
    _click_and_made(page, "cover", "#cover-button")
    page.locator("#cover-morph").get_by_text("Morph the song (flow edit)").click()
    page.locator("#cover-morph-prompt").wait_for(state="hidden")
    _click_and_made(page, "cover", "#cover-button")


def test_a_song_after_think_is_made_with_nothing_think_left_refused(page):
    """Generate with Think on and *Let Think rewrite the caption* unticked, then Think off (the switch goes back on,
    its default: a song made without Think refuses it off): the song is made."""
    think = page.locator("#gen-think input[type=checkbox]")
    assert think.is_checked()  # on where a planner is set up
    page.locator("#gen-prompt textarea").fill("dusty soul ballad")
    _fill_number(page, "#gen-duration", 10)
    page.locator("#gen-advanced").get_by_text("Advanced settings").click()
    _fill_number(page, "#gen-steps", 1)
    rewrite = page.locator("#gen-think-caption input[type=checkbox]")
    rewrite.uncheck()
    think.uncheck()
    page.wait_for_function("s => document.querySelector(s).checked", arg="#gen-think-caption input", polling=POLL_MS)
    _click_and_made(page, "gen", "#gen-button")


# The join's value of the field ``elemId`` set to ``value`` whatever the page holds, as a page whose field is hidden
# with a value in it sends it (a hidden field is not mounted: nothing on the page can be typed into).
SENDS = """([elemId, value]) => {
  const config = window.gradio_config;
  const id = config.components.find((c) => c.props && c.props.elem_id === elemId).id;
  const inner = window.fetch;
  window.fetch = (url, init) => {
    if (String(url).includes('/queue/join') && init && init.body) {
      const body = JSON.parse(init.body);
      const at = config.dependencies.find((d) => d.id === body.fn_index).inputs.indexOf(id);
      if (at >= 0) { body.data[at] = value; init = {...init, body: JSON.stringify(body)}; }
    }
    return inner(url, init);
  };
}"""
# Whether ``words`` are shown in the viewport: an element's own text, or the note drawn after it (``theme.CSS``).
IN_VIEW = """(words) => [...document.querySelectorAll('body *')].some((el) => {
  const after = getComputedStyle(el, '::after').content || '';
  const said = after.includes(words) || [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.includes(words));
  if (!said || getComputedStyle(el).visibility === 'hidden') return false;
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < window.innerHeight;
})"""


def test_a_refusal_of_a_field_the_visitor_cannot_see_is_said_at_the_button_clicked(page):
    """A click refused on a hidden field (not mounted: its row hidden) showed nothing at all: the validator's mark
    landed on the hidden field and no take came. The words are said under the button clicked, in view, and go with
    the next click; nothing runs."""
    _tab(page, "Edit")
    page.locator(".tabitem:visible table tbody tr, .tabitem:visible button.gallery-item").first.click()
    page.locator("#edit-src-info").get_by_text("0:12.0 long").wait_for()
    page.locator("#edit-advanced").get_by_text("Advanced settings").click()  # open: no folded field to open
    page.locator("#edit-lora-scale").wait_for()
    assert page.locator("#edit-lora-2-scale").count() == 0  # the second adapter's row is hidden
    page.evaluate(SENDS, ["edit-lora-2-scale", 0.5])
    page.locator("#edit-button").click()
    page.wait_for_function("() => Number(document.body.dataset.studioChecked || 0) >= 1", polling=POLL_MS)
    label = parameters.PARAMS["lora_2_scale"].label
    words = error_messages.ADAPTER_STRENGTH_ALONE.format(label=label, value=0.5)[:60]
    assert page.evaluate(IN_VIEW, words), f"{words!r} is nowhere in view"
    assert page.locator("#edit-take-1 a.download-link").count() == 0  # nothing ran
    page.locator("#edit-button").click()  # the next click takes the words away (and is refused again here)
    page.wait_for_function("() => Number(document.body.dataset.studioChecked || 0) >= 2", polling=POLL_MS)
    assert page.evaluate(IN_VIEW, words)


def test_a_part_after_adapters_is_made_with_nothing_the_part_left_refused(page):
    """Every adapter slot's strength set (the second's row shown), then *Add a part* (the adapters hidden: every slot
    set back, its rows folded; a part refuses them): the part is made; the region again shows one slot, at 1."""
    _tab(page, "Edit")
    page.locator(".tabitem:visible table tbody tr, .tabitem:visible button.gallery-item").first.click()
    page.locator("#edit-src-info").get_by_text("0:12.0 long").wait_for()
    page.locator("#edit-advanced").get_by_text("Advanced settings").click()
    page.locator("#edit-add-adapter").click()
    for field in ("#edit-lora-scale", "#edit-lora-2-scale"):
        _fill_number(page, field, 0.5)
    page.locator("#edit-change").get_by_text("Add a part", exact=True).click()
    page.locator("#edit-lora-box").wait_for(state="hidden")
    _fill_number(page, "#edit-steps", 1)
    _click_and_made(page, "edit", "#edit-button")
    page.locator("#edit-change").get_by_text("A region", exact=True).click()
    page.locator("#edit-lora-box").wait_for(state="visible")
    _number_shown(page, "#edit-lora-scale", 1.0)
    assert page.locator("#edit-adapter-2").count() == 0 or page.locator("#edit-adapter-2").is_hidden()
    page.locator("#edit-add-adapter").click()
    _number_shown(page, "#edit-lora-2-scale", 1.0)
