"""The page's small building blocks: lenient fields and file inputs, a tab's buttons, its result column
and the two columns of a music form (``music_form``); the ZeroGPU cost line under a GPU button
(``reserves_line``, ``wire_reserves``); and the duration estimate's measured figures for people
("Pace on this machine": ``duration_line``, ``duration_text``, ``at_sixty``), refreshed by the page's
estimate stamp (``estimate_stamp``).

Each helper returns the components it made; ``form_fields`` builds a tab's field groups from these
bricks and ``tabs`` composes both into the five tabs.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr

import audio
import checks
import duration_estimate
import error_messages
import gpu
import messages
import models
import player
import quota
import tooltips as tips
import uploads

STEM_NAMES = ("vocals", "drums", "bass", "other")  # stems.STEMS, without importing the separator's module


def start_at_defaults(fields: dict[str, Any], endpoint: Callable[..., Any]) -> None:
    """Each field's first value is ``endpoint``'s default for it (a field by its parameter's name): the
    page and the API start alike, and a default is spelled once, in that signature. A default of
    ``None`` (the model's default, no upload) is left to the field's builder, which shows it."""
    for name, parameter in inspect.signature(endpoint).parameters.items():
        default = parameter.default
        if name in fields and default is not None and default is not inspect.Parameter.empty:
            field = fields[name]
            field.value = field.postprocess(list(default) if isinstance(default, tuple) else default)


def lenient(component: Any) -> Any:
    """Let out-of-range or unknown API values through to the studio's own checks.

    Sliders and radios would otherwise answer "Value 900 is greater than maximum value 600.0", and
    numbers a bare "400 Bad Request" for "fast" or -1 below a minimum, or round 1.5 to 2 without a
    word; ``modes`` says what the value means and what to do instead.
    """
    component.preprocess = lambda payload: payload
    component.studio_lenient = True  # tests/test_hostile.py holds every public number, slider and radio to this
    return component


# A js-only event's answer that makes a text box editable again (no trip to the server).
EDITABLE_JS = "() => ({__type__: 'update', interactive: true})"
# ... and one that locks it while a switch is on.
LOCKED_WHILE_JS = "(on) => ({__type__: 'update', interactive: !on})"


def lenient_number(*args: Any, **kwargs: Any) -> gr.Number:
    """Every number a visitor or a script sends (seeds, BPM, regions, take numbers): one field, so
    "abc", NaN, inf and 1.5 reach the studio's own checks and get the same message everywhere."""
    return lenient(gr.Number(*args, **kwargs))


def lenient_slider(*args: Any, **kwargs: Any) -> gr.Slider:
    return lenient(gr.Slider(*args, **kwargs))


def lenient_radio(*args: Any, **kwargs: Any) -> gr.Radio:
    return lenient(gr.Radio(*args, **kwargs))


def _any_file() -> type:
    from gradio.data_classes import FileData
    from gradio_client.utils import is_file_obj_with_meta
    from pydantic import model_validator

    class AnyFile(FileData):
        @model_validator(mode="before")
        @classmethod
        def validate_model(cls, value: Any, info: Any) -> Any:  # replaces FileData's own check
            # Only a file object with Gradio's marker has been through Gradio's own check (it lies in
            # the upload folder); a bare {"path": …} has not, and names no upload of this visitor.
            if is_file_obj_with_meta(value):
                return value
            return {"path": _not_seen(value), "meta": {"_type": "gradio.FileData"}}

    return AnyFile


def _not_seen(value: Any) -> str:
    """What a value that is no upload becomes (``audio.unseen`` says why): a URL ``audio.URL_GIVEN``, any
    other ``audio.NOT_UPLOADED``, whatever lies there (pydantic's text in a bare 400 said nothing to a
    musician, and one answer for every path is no oracle)."""
    from gradio_client.utils import is_http_url_like

    named = [value.get("path"), value.get("url")] if isinstance(value, dict) else [value]
    return audio.URL_GIVEN if any(is_http_url_like(str(v)) for v in named if v) else audio.NOT_UPLOADED


def _upload_path(payload: Any) -> str | None:
    """The upload a file input names; ``audio.URL_GIVEN`` for a URL, ``audio.NOT_UPLOADED`` for anything
    else outside Gradio's upload folder."""
    if payload is None:
        return None
    if payload.path in (audio.URL_GIVEN, audio.NOT_UPLOADED):
        return payload.path
    return payload.path if uploads.in_upload_folder(payload.path) else audio.NOT_UPLOADED


# The example a file input's API documentation shows (``/gradio_api/info``, the page's *Use via API*), by
# the component: a file on the caller's computer, which ``gradio_client.handle_file`` uploads (Gradio's own
# example is a URL, which the studio never fetches).
EXAMPLE_FILES = {"audio": "song.wav", "file": "file.json"}


def any_file(component: Any, example: str | None = None) -> Any:
    """A file input that reads uploads only, and says so with the studio's error message.

    Any value reaches the studio's own checks, which say what a file must be (Gradio answered a value
    that is no file with pydantic's text in a bare 400); a path that is not in Gradio's upload folder
    (a bare ``{"path": …}``, a server file, another visitor's take) becomes ``audio.NOT_UPLOADED`` and is
    never opened; a URL, ``audio.URL_GIVEN``, is never fetched (Gradio would download any size into its
    upload folder, past the quota). The studio decodes audio itself (``uploads``), so nothing is converted.
    Its API example is ``example`` (a file name on the caller's computer), its help ``tooltips.FILE_INPUT``."""
    from gradio_client.utils import is_http_url_like

    component.data_model = _any_file()
    component.preprocess = _upload_path
    gradio_move = component.async_move_resource_to_block_cache

    async def move(path: Any) -> str | None:
        return audio.URL_GIVEN if is_http_url_like(str(path)) else await gradio_move(path)

    component.async_move_resource_to_block_cache = move
    name = example or EXAMPLE_FILES.get(component.get_block_name(), "file")
    shown = {"path": name, "url": name, "orig_name": name, "meta": {"_type": "gradio.FileData"}}
    component.example_payload = lambda: dict(shown)
    component.example_value = lambda: name
    gradio_info = component.api_info

    def api_info() -> dict[str, Any]:
        return {**gradio_info(), "additional_description": tips.FILE_INPUT}

    component.api_info = api_info
    return component


def take_slot(component: gr.Audio) -> gr.Audio:
    """A take slot: a take arrives as its public URL (``asgi_gate.take_url``) and is played and
    downloaded from there, so the page never learns a server folder and Gradio keeps no copy."""
    from gradio.data_classes import FileData
    from gradio_client.utils import is_http_url_like

    gradio_postprocess = component.postprocess

    def postprocess(value: Any) -> Any:
        if isinstance(value, str) and is_http_url_like(value):
            # With ``url`` set, Gradio hands the URL to the browser instead of fetching it.
            return FileData(path=value, url=value, orig_name=value.rsplit("/", 1)[-1])
        return gradio_postprocess(value)

    component.postprocess = postprocess
    return component


class StemSlot(NamedTuple):
    """*Split into stems* beneath one take: its button, the take's number (hidden), the box of the four
    players (hidden until stems arrive) and the players, vocals, drums, bass, other."""

    button: gr.Button
    take: gr.Number
    box: gr.Column
    players: list[gr.Audio]
    reserves: gr.Markdown  # what a click reserves, on a ZeroGPU Space


# Shows a take's stems box once its stems arrived (in the page: see ``takes_column``).
SHOW_JS = "() => ({__type__: 'update', visible: true})"


def stem_slot(prefix: str, i: int) -> StemSlot:
    button = gr.Button("Split into stems", size="sm", elem_id=f"{prefix}-stems-{i}", elem_classes=["stems-action"])
    take = lenient_number(value=i, precision=0, label="Take", visible=False, elem_id=f"{prefix}-stems-take-{i}")
    reserves = reserves_line(f"{prefix}-stems-{i}", "stems-action")
    with gr.Column(visible=False, elem_id=f"{prefix}-stems-box-{i}") as box:
        gr.Markdown(tips.STEMS_HINT, elem_classes=["hint"])
        players = [
            take_slot(
                gr.Audio(
                    label=name.capitalize(),
                    type="filepath",
                    interactive=False,
                    buttons=["download"],
                    elem_id=f"{prefix}-take-{i}-{name}",
                )
            )
            for name in STEM_NAMES
        ]
    return StemSlot(button, take, box, players, reserves)


def takes_column(
    prefix: str, n: int = checks.MAX_TAKES
) -> tuple[list[gr.Audio], list[gr.HTML], list[gr.Column], list[StemSlot]]:
    """``n`` take slots in boxes shown or hidden (``results.SHOW_TAKES_JS``; an update to a slot would
    lose its ``take_slot`` patch). A slot is the API's output, hidden: the visitor sees its player
    (``player``: the preview, the take to download) and *Split into stems* beneath it."""
    slots, players, boxes, stems = [], [], [], []
    for i in range(n):
        label = f"Take {i + 1}" if n > 1 else "Result"
        with gr.Column(visible=i == 0, min_width=0) as box:
            slots.append(
                take_slot(
                    gr.Audio(
                        label=label,
                        type="filepath",
                        interactive=False,
                        buttons=["download"],
                        visible=False,
                        elem_id=f"{prefix}-take-{i + 1}-file",
                    )
                )
            )
            players.append(
                gr.HTML(
                    "",
                    html_template=player.template(label),
                    js_on_load=player.JS,
                    elem_id=f"{prefix}-take-{i + 1}",
                    elem_classes=["take-player-box"],
                    min_height=120,
                )
            )
            stems.append(stem_slot(prefix, i + 1))
        boxes.append(box)
    return slots, players, boxes, stems


SEND_TARGETS = (("Cover", "cover"), ("Extend", "extend"), ("Edit", "edit"))


def scroll_js(elem_id: str, hidden: str = "") -> str:
    """Client-side only: bring ``elem_id`` into view unless it already is; while it is not shown (a
    result column before its first take), ``hidden`` instead, the element it will appear beside."""
    return (
        f"() => {{ let el = document.getElementById({elem_id!r}); if (el && !el.getClientRects().length)"
        f" el = document.getElementById({hidden!r}); if (!el) return; const r = el.getBoundingClientRect();"
        " if (r.top < 0 || r.bottom > window.innerHeight) el.scrollIntoView({block: 'center'}); }"
    )


def example_rows(rows: list[list[Any]], inputs: list[Any], **kwargs: Any) -> gr.Examples:
    """``gr.Examples`` whose loading event (``load_example_<tab>``, an example's number from 0) says
    with a message which numbers there are: Gradio's own answered 10⁹ or "x" with a bare "Error"."""
    made = gr.Examples(rows, inputs, **kwargs)
    dataset, gradio_preprocess = made.dataset, made.dataset.preprocess
    count = len(rows)

    def preprocess(payload: Any) -> Any:
        if payload is not None and not (type(payload) is int and 0 <= payload < count):
            raise gr.Error(error_messages.NO_SUCH_EXAMPLE.format(given=checks.shown(payload), last=count - 1))
        return gradio_preprocess(payload)

    dataset.preprocess = preprocess
    return made


class Result(NamedTuple):
    """A result column: takes, seed line, take to send, Send to (and ``"settings"``) buttons, record, stems."""

    takes: list[gr.Audio]  # the API's outputs, hidden in the page
    players: list[gr.HTML]  # what the page shows of each take (``player``)
    boxes: list[gr.Column]  # each take slot's box, shown or hidden
    seeds: gr.HTML
    pick: gr.Number
    sends: dict[str, gr.Button]
    meta: gr.JSON
    stems: list[StemSlot]
    voice: gr.Button  # *Use this voice* (``voice_row``)


# The seed line is plain text for API clients as for the page: the page shows it as text (never as
# markup, and never through the HTML template, which would evaluate a "${…}" in a planner's caption).
PLAIN_TEXT_JS = """
const show = () => { element.querySelector(".result-line").textContent = props.value ?? ""; };
watch("value", show);
show();
"""


def result_column(prefix: str, n: int = 1) -> Result:
    takes, players, boxes, stems = takes_column(prefix, n)
    seeds = gr.HTML(
        messages.RESULT_EMPTY,
        label="Result and seeds",
        html_template='<p class="result-line"></p>',
        js_on_load=PLAIN_TEXT_JS,
        elem_id=f"{prefix}-seeds",
        elem_classes=["result-note"],
        padding=False,
    )
    # Until a take exists the column shows "Nothing here yet" alone (theme.CSS: ``result-column``).
    with gr.Row(elem_classes=["result-actions"]):
        # Shown once Generate is set to more than one take (``results.SHOW_TAKES_JS``).
        pick = lenient_number(
            value=1, precision=0, label="Take to send", visible=False, minimum=1, maximum=n, elem_id=f"{prefix}-pick"
        )
        sends = {
            tab: gr.Button(f"Send to {label}", size="sm", elem_id=f"{prefix}-send-{tab}") for label, tab in SEND_TARGETS
        }
        sends["settings"] = gr.Button("Use these settings", size="sm", elem_id=f"{prefix}-use-settings")
        voice = gr.Button("Use this voice", size="sm", elem_id=f"{prefix}-use-voice")
    details = "Details: every setting, the model and the timings"
    with gr.Accordion(details, open=False, elem_id=f"{prefix}-details", elem_classes=["result-details"]):
        meta = gr.JSON(label="Metadata", open=False)
        duration_line(prefix)
    return Result(takes, players, boxes, seeds, pick, sends, meta, stems, voice)


def action_buttons(label: str, prefix: str) -> tuple[gr.Button, gr.Button]:
    """The tab's main action and its Stop, side by side."""
    with gr.Row(equal_height=True):
        action = gr.Button(
            label, variant="primary", size="lg", scale=4, elem_id=f"{prefix}-button", elem_classes=["main-action"]
        )
        stop_button = gr.Button(
            "Stop",
            variant="stop",
            size="lg",
            scale=1,
            min_width=90,
            elem_id=f"{prefix}-stop",
            elem_classes=["stop-action"],
        )
    return action, stop_button


def reserves_line(prefix: str, *classes: str) -> gr.Markdown:
    """Under a GPU button on a ZeroGPU Space: what a click will reserve of the visitor's daily quota
    (filled in by ``wire_reserves``); nowhere else."""
    shown = gpu.on_zero_gpu()
    return gr.Markdown(
        messages.RESERVES_NOT_YET, visible=shown, elem_id=f"{prefix}-reserves", elem_classes=["hint", *classes]
    )


def wire_reserves(
    demo: gr.Blocks,
    mode: str,
    line: gr.Markdown,
    fields: dict[str, Any],
    price: Callable[[dict[str, Any], Any], str] | None = None,
) -> None:
    """On a ZeroGPU Space, the line under a GPU button says what a click reserves, from the page's load
    on, as each of the button's inputs changes (``fields``, by their names) and as the duration estimate
    does (the start-up build ending, a call measured: ``estimate_stamp``): ``price`` (a music request's,
    ``handlers.reserves``: its request prepared as for the admission check) or ``quota.reserves_line``,
    given the inputs' values and the visitor's request; headers only, in an instant event, no queue."""
    if not gpu.on_zero_gpu():
        return
    names, inputs = list(fields), list(fields.values())
    price = price or (lambda values, request: quota.reserves_line(mode, values))

    def show(*given: Any) -> str:  # the inputs' values, then the request (Gradio passes it by annotation)
        return price(dict(zip(names, given[: len(names)], strict=True)), given[len(names)])

    show.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(f"v{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(len(names))]
        + [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)]
    )
    show.__annotations__ = {"request": gr.Request}
    # At the page's load only where the fields already say (the other buttons wait for a song or a take).
    loads = [demo.load] if mode in ("generate", "lyrics", "write_song") else []
    stamp = _page_stamp()
    estimated = [stamp.change] if stamp is not None else []
    for trigger in [*loads, *estimated, *(component.change for component in inputs)]:
        trigger(show, inputs, line, queue=False, api_visibility="private", show_progress="hidden")


# The page being built and its estimate stamp (``estimate_stamp``): the cost lines and duration lines built after
# it follow it.
_stamp: tuple[Any, gr.Textbox] | None = None
ESTIMATE_POLL_S = 30.0  # how soon (s) an open page sees a duration estimate another visitor's call changed


def _page_stamp() -> gr.Textbox | None:
    """The stamp of the page being built now, if it has one (a part built alone, as tests do, has none)."""
    from gradio.context import Context

    if _stamp is None or Context.root_block is None or _stamp[0] is not Context.root_block:
        return None
    return _stamp[1]


def _stamp_now(phase: Callable[[], str]) -> str:
    """What the cost lines depend on besides their fields: which models are built (a request may build one
    later), the duration estimate's changes, and ``phase``, the status line's (the build under way among it)."""
    built = "".join("1" if duration_estimate.built(kind) else "0" for kind in ("music", "planner", "lyrics"))
    return f"{built}:{duration_estimate.changes()}:{phase()}"


def estimate_stamp(starting: gr.Timer, phase: Callable[[], str]) -> gr.Textbox:
    """The page's estimate stamp (a hidden text box): it changes when the start-up build ends (asked at each
    tick of the status line's timer, ``starting``, which ticks while it runs), when the duration estimate
    changes or ``phase`` does (asked every ``ESTIMATE_POLL_S``); every cost line and duration line built
    after it is refreshed on its change, and the status line is asked again on it (``app``)."""
    from gradio.context import Context

    global _stamp
    # Drawn but hidden: the page fires a component's change only where it is drawn (a gr.State's
    # change, answered to an instant event, never reached the page).
    stamp = gr.Textbox(
        _stamp_now(phase), visible="hidden", interactive=False, elem_id="estimate-stamp", container=False
    )
    _stamp = (Context.root_block, stamp)
    polled = gr.Timer(ESTIMATE_POLL_S)

    def _stamp_asked() -> str:
        return _stamp_now(phase)

    for trigger in (starting.tick, polled.tick):
        trigger(_stamp_asked, None, stamp, queue=False, api_visibility="private", show_progress="hidden")
    return stamp


def duration_line(prefix: str) -> gr.Markdown:
    """The "Pace on this machine" line (``duration_text``), written at each page load and as the stamp
    changes: an instant event, no queue (a value Gradio computes itself would join the GPU queue)."""
    from gradio.context import Context

    line = gr.Markdown("", elem_id=f"{prefix}-estimate", elem_classes=["hint", "estimate-line"])
    stamp, page = _page_stamp(), Context.root_block
    triggers = [t for t in (stamp and stamp.change, page and page.load) if t is not None]
    if triggers:
        gr.on(triggers, duration_text, None, line, queue=False, api_visibility="private", show_progress="hidden")
    return line


@dataclass
class Form:
    """A music tab's two columns, filled in by ``music_form``: its main button, Stop and result."""

    label: str  # the main button's label
    prefix: str
    button: gr.Button | None = None
    stop: gr.Button | None = None
    result: Result | None = None
    reserves: gr.Markdown | None = None  # what a click reserves, on a ZeroGPU Space
    column: gr.Column | None = None  # the result's, entered again for what a tab adds beneath it

    def place_buttons(self) -> None:
        """The main button, its Stop and what it reserves, placed where this is called (once): Generate's
        right under the lyrics, so it is on the first screen; elsewhere at the form's end."""
        if self.button is None:
            self.button, self.stop = action_buttons(self.label, self.prefix)
            self.reserves = reserves_line(self.prefix)


@contextlib.contextmanager
def music_form(label: str, prefix: str, takes: int = 1) -> Iterator[Form]:
    """The form (left, wider) with its buttons, the result on the right (below it on a phone)."""
    form = Form(label, prefix)
    with gr.Row():
        with gr.Column(scale=3):
            yield form
            form.place_buttons()
        with gr.Column(scale=2, elem_id=f"{prefix}-result", elem_classes=["result-column"]) as form.column:
            form.result = result_column(prefix, takes)


def factor(feature: str, phase: str, shape: dict[str, Any]) -> tuple[float, int] | None:
    """The median factor of the newest bucket of ``feature.phase`` whose shape holds ``shape`` (captured
    or not), and its calls; None where none was measured."""
    found = [
        b
        for b in duration_estimate.table().snapshot()
        if b.feature == feature and b.phase == phase and all(b.shape.get(k) == v for k, v in shape.items())
    ]
    if not found:
        return None
    newest = max(found, key=lambda b: b.used)
    return duration_estimate.percentile(list(newest.factors), 0.5), len(newest.factors)


def at_sixty() -> dict[str, float | None]:
    """The figures a person asks for, at the shapes they know, measured here (None where not yet):
    the planner's ms a code (one take), the DiT's ms a step of one guided 60 s take, the lyrics
    writer's tokens a second."""
    guided = not models.active_variant().turbo
    code = factor("music", "blueprint", {"takes": 1})
    step = factor("music", "dit", {"len": 64, "takes": 1, "guided": int(guided), "mode": "generate"})
    tokens = factor("lyrics", "write", {})
    return {
        "planner_ms_a_code": code and 1000 * duration_estimate.PRIOR["planner_per_code"] * code[0],
        "dit_ms_a_step_60s": step and 1000 * (2 if guided else 1) * duration_estimate.per_forward(60) * step[0],
        "lyrics_tokens_a_second": tokens and duration_estimate.PRIOR["lyrics_tokens_per_second"] / tokens[0],
    }


def duration_text() -> str:
    """The duration estimate's measured figures in one line ("Pace on this machine"): the GPU, the three
    figures (``at_sixty``), from how many calls."""
    if not duration_estimate.learning():
        return messages.DURATION_PRIOR_ONLY[gpu.on_zero_gpu()]
    here = duration_estimate.table()
    if here.calls == 0 or not here.machine.get("gpu"):
        return messages.DURATION_NOT_YET[gpu.on_zero_gpu()]
    figures = at_sixty()
    said = [
        messages.DURATION_FIGURE[name].format(value=value) if value is not None else messages.DURATION_UNMEASURED[name]
        for name, value in figures.items()
    ]
    calls = f"{here.calls} call{'s' * (here.calls != 1)}"
    return messages.DURATION_LINE.format(gpu=as_text(here.machine["gpu"]), figures="; ".join(said), calls=calls)


def as_text(name: str) -> str:
    """``name`` read as plain text where the line is Markdown: every mark that can open Markdown or HTML
    escaped (a GPU's name comes from a worker or a file, and markup in it must not reach the page);
    parentheses, dots and dashes alone make none and stay as a GPU's name spells them."""
    return re.sub(r"([\\`*_{}\[\]<>#+!|~&])", r"\\\1", name)
