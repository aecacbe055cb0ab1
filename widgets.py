"""The page's small building blocks: a tab's fields, its buttons and its result column.

Each helper returns the components it made (and wires only what lives inside it, such as the ½ and
2× tempo buttons); ``tabs`` composes them into the five tabs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr

import admission
import checks
import gpu
import handlers
import models
import planner
import player
import presets
import songs
import tooltips as tips
import uploads
import waveform

STEM_NAMES = ("vocals", "drums", "bass", "other")  # stems.STEMS, without importing the separator's room


def lenient(component: Any) -> Any:
    """Let out-of-range or unknown API values through to the studio's own checks.

    Sliders and radios would otherwise answer "Value 900 is greater than maximum value 600.0", and
    numbers a bare "400 Bad Request" for "fast" or -1 below a minimum, or round 1.5 to 2 without a
    word; ``modes`` says what the value means and what to do instead.
    """
    component.preprocess = lambda payload: payload
    return component


# A js-only event's answer that makes a text box editable again (no trip to the server).
EDITABLE_JS = "() => ({__type__: 'update', interactive: true})"
# ... and one that locks it while a switch is on.
LOCKED_WHILE_JS = "(on) => ({__type__: 'update', interactive: !on})"


def lenient_slider(*args: Any, **kwargs: Any) -> gr.Slider:
    return lenient(gr.Slider(*args, **kwargs))


def lenient_radio(*args: Any, **kwargs: Any) -> gr.Radio:
    return lenient(gr.Radio(*args, **kwargs))


# What a file parameter becomes when the value sent is no upload: the studio's own checks then say
# that the file cannot be found (pydantic's text in a bare 400 said nothing to a musician). Every path
# that is not an upload becomes this, whatever lies there, and is never opened: no oracle.
NOT_A_FILE = ":not-an-uploaded-file:"


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
            return {"path": NOT_A_FILE, "meta": {"_type": "gradio.FileData"}}

    return AnyFile


def _upload_path(payload: Any) -> str | None:
    """The upload a file input names, or ``NOT_A_FILE`` for anything outside Gradio's upload folder."""
    if payload is None:
        return None
    return payload.path if uploads.in_upload_folder(payload.path) else NOT_A_FILE


def any_file(component: Any) -> Any:
    """A file input that reads uploads only, and says so in the studio's words.

    Any value reaches the studio's own checks, which say what a file must be (Gradio answered a value
    that is no file with pydantic's text in a bare 400); a path that is not in Gradio's upload folder
    (a bare ``{"path": …}``, a server file, another visitor's take) becomes ``NOT_A_FILE`` and is
    never opened; a URL is never fetched (Gradio would download any size into its upload folder,
    past the quota). The studio decodes audio itself (``uploads``), so nothing is converted."""
    from gradio_client.utils import is_http_url_like

    component.data_model = _any_file()
    component.preprocess = _upload_path
    own_move = component.async_move_resource_to_block_cache

    async def move(path: Any) -> str | None:
        return NOT_A_FILE if is_http_url_like(str(path)) else await own_move(path)

    component.async_move_resource_to_block_cache = move
    return component


def take_slot(component: gr.Audio) -> gr.Audio:
    """A take slot: a take arrives as its public URL (``serving.take_url``) and is played and
    downloaded from there, so the page never learns a server folder and Gradio keeps no copy."""
    from gradio.data_classes import FileData
    from gradio_client.utils import is_http_url_like

    own = component.postprocess

    def postprocess(value: Any) -> Any:
        if isinstance(value, str) and is_http_url_like(value):
            # With ``url`` set, Gradio hands the URL to the browser instead of fetching it.
            return FileData(path=value, url=value, orig_name=value.rsplit("/", 1)[-1])
        return own(value)

    component.postprocess = postprocess
    return component


class StemSlot(NamedTuple):
    """*Split into stems* beneath one take: its button, the take's number (hidden), the box of the four
    players (hidden until stems arrive) and the players, vocals, drums, bass, other."""

    button: gr.Button
    take: gr.Number
    box: gr.Column
    players: list[gr.Audio]
    reserves: gr.Markdown  # what a press reserves, on a ZeroGPU Space


# Shows a take's stems box once its stems arrived (in the page: see ``takes_column``).
SHOW_JS = "() => ({__type__: 'update', visible: true})"


def stem_slot(prefix: str, i: int) -> StemSlot:
    button = gr.Button("Split into stems", size="sm", elem_id=f"{prefix}-stems-{i}", elem_classes=["stems-action"])
    take = lenient(gr.Number(value=i, precision=0, visible=False, elem_id=f"{prefix}-stems-take-{i}"))
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
            )  # fmt: skip
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
                    gr.Audio(label=label, type="filepath", interactive=False, buttons=["download"], visible=False,
                             elem_id=f"{prefix}-take-{i + 1}-file")
                )
            )  # fmt: skip
            players.append(
                gr.HTML("", html_template=player.template(label), js_on_load=player.JS,
                        elem_id=f"{prefix}-take-{i + 1}", elem_classes=["take-player-box"], min_height=120)
            )  # fmt: skip
            stems.append(stem_slot(prefix, i + 1))
        boxes.append(box)
    return slots, players, boxes, stems


SEND_TARGETS = (("Cover", "cover"), ("Extend", "extend"), ("Edit", "edit"))


def sampling_controls(variant: models.Variant, prefix: str):
    with gr.Row():
        seed = lenient(gr.Number(label="Seed", value=-1, precision=0, info=tips.SEED, elem_id=f"{prefix}-seed"))
        steps = lenient_slider(
            *checks.STEPS_RANGE, value=variant.steps, step=1, label="Steps", info=tips.STEPS, elem_id=f"{prefix}-steps"
        )
    with gr.Row():
        guidance = lenient_slider(
            *checks.GUIDANCE_RANGE, value=variant.guidance, step=0.5, label="Guidance", info=tips.GUIDANCE,
            elem_id=f"{prefix}-guidance",
        )  # fmt: skip
        fmt = lenient_radio(
            checks.FORMATS, value="wav", label="Output format", info=tips.FORMAT, elem_id=f"{prefix}-format"
        )
    return seed, steps, guidance, fmt


def scroll_js(elem_id: str, hidden: str = "") -> str:
    """Client-side only: bring ``elem_id`` into view unless it already is; while it is not shown (a
    result column before its first take), ``hidden`` instead, the element it will appear beside."""
    return (
        f"() => {{ let el = document.getElementById({elem_id!r}); if (el && !el.getClientRects().length)"
        f" el = document.getElementById({hidden!r}); if (!el) return; const r = el.getBoundingClientRect();"
        " if (r.top < 0 || r.bottom > window.innerHeight) el.scrollIntoView({block: 'center'}); }"
    )


def language_dropdown(prefix: str) -> gr.Dropdown:
    """The sung language; "unknown" (the model tells from the lyrics) first and chosen, as upstream's UI."""
    languages = [(tips.LANGUAGE_UNKNOWN, checks.UNKNOWN)]
    languages += [(f"{name} ({code})", code) for code, name in checks.LANGUAGES.items()]
    return gr.Dropdown(
        languages, value=checks.UNKNOWN, label="Vocal language", info=tips.LANGUAGE, allow_custom_value=True,
        elem_id=f"{prefix}-language",
    )  # fmt: skip


def think_controls() -> tuple[gr.Checkbox, gr.Checkbox]:
    """Generate's Think switch and, beside it, upstream's *Length: auto* (the planner chooses it)."""
    ready = planner.enabled()
    with gr.Row():
        think = gr.Checkbox(
            label="Think", value=ready, interactive=ready, info=tips.THINK if ready else tips.THINK_OFF,
            elem_id="gen-think",
        )  # fmt: skip
        auto = gr.Checkbox(
            label="Length: auto", value=False, interactive=ready, info=tips.THINK_LENGTH, elem_id="gen-auto-length"
        )
    return think, auto


def rewrite_caption_switch() -> gr.Checkbox:
    """Upstream's ``use_cot_caption``, on as upstream: off keeps the visitor's caption for the music
    model while the plan still sets BPM, key and metre. Folded away: few change it."""
    return gr.Checkbox(
        label="Let Think rewrite the caption", value=True, interactive=planner.enabled(), info=tips.THINK_CAPTION,
        elem_id="gen-think-caption",
    )  # fmt: skip


def plan_box() -> gr.Textbox:
    """A plan brought back from a take ("Use these settings"): with it, Think skips its thinking and
    the take comes out again from its seed; empty, Think plans anew."""
    box = gr.Textbox("", label="Plan (from a take)", info=tips.PLAN, lines=2, max_lines=6, elem_id="gen-plan")
    # The API takes back what it returns: a take's ``planner`` dict arrives as JSON text (a text box
    # would make it Python's repr), so the field's length limit and ``checks.check_plan`` read it.
    box.preprocess = lambda payload: (
        json.dumps(payload, ensure_ascii=False)
        if isinstance(payload, dict)
        else None
        if payload is None
        else str(payload)
    )
    box.api_info = lambda: {"anyOf": [{"type": "string"}, {"type": "object"}]}
    return box


def reference_input(prefix: str) -> gr.Audio:
    """An optional voice or instrument whose timbre the take borrows (the pipeline's ``reference_audio``)."""
    reference = any_file(
        gr.Audio(
            label="Timbre reference (optional)",
            type="filepath",
            sources=["upload"],
            elem_id=f"{prefix}-reference",
            elem_classes=["compact-drop"],
        )
    )
    gr.Markdown(tips.REFERENCE, elem_classes=["hint"])
    return reference


def lora_controls(prefix: str, variant: str | None = None) -> tuple[gr.File, gr.Slider, gr.Dropdown]:
    """A visitor's own LoRA, or a preset from the Hub, for this request only."""
    offered = presets.offered(variant or models.active_variant().name)
    # Hidden where none is installed for this model; unknown names still reach the studio's check.
    preset = gr.Dropdown(
        [(tips.LORA_PRESET_NONE, ""), *[(p.label, p.name) for p in offered]], value="", label="LoRA preset",
        info=tips.LORA_PRESET, allow_custom_value=True, visible=bool(offered), elem_id=f"{prefix}-lora-preset",
    )  # fmt: skip
    with gr.Row():
        # No ``file_types``: Gradio would refuse another suffix with a bare "400 Bad Request"; the
        # studio's own check says what a LoRA file must be.
        lora = any_file(
            gr.File(
                label="LoRA (optional)",
                type="filepath",
                height=120,
                elem_id=f"{prefix}-lora",
                elem_classes=["compact-drop"],
            )
        )
        scale = lenient_slider(
            *checks.LORA_SCALE_RANGE, value=1.0, step=0.05, label="LoRA strength", info=tips.LORA_SCALE,
            elem_id=f"{prefix}-lora-scale",
        )  # fmt: skip
    note = gr.Markdown(tips.LORA, elem_classes=["hint"], elem_id=f"{prefix}-lora-note")
    # Checked on arrival, as every upload is: a file that is no LoRA is named now, not at the press.
    lora.change(
        handlers.describe_lora, lora, note, api_name=f"{prefix}_lora_check", api_visibility="private",
        concurrency_id=admission.UPLOADS, concurrency_limit=uploads.decodes_at_once(), show_progress="minimal",
    )  # fmt: skip
    return lora, scale, preset


def finish_controls(prefix: str, loudness: bool = True) -> tuple[Any, ...]:
    """A take's loudness (a new take's; Edit and Extend keep the source's) and its fades."""
    with gr.Row():
        level = (
            [
                lenient(
                    gr.Dropdown(
                        checks.LOUDNESS_CHOICES, value="-14", label="Loudness", info=tips.LOUDNESS,
                        allow_custom_value=True, elem_id=f"{prefix}-loudness",
                    )
                )
            ]
            if loudness
            else []
        )  # fmt: skip
        fades = [
            lenient_slider(*checks.FADE_RANGE, value=0, step=0.5, label=label, info=info, elem_id=f"{prefix}-{name}")
            for label, info, name in (("Fade in (s)", tips.FADE_IN, "fade-in"), ("Fade out (s)", tips.FADE_OUT, "fade-out"))
        ]  # fmt: skip
    return (*level, *fades)


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


# The seed line is plain text for API clients as for the page: the page shows it as text (never as
# markup, and never through the HTML template, which would evaluate a "${…}" in a planner's caption).
PLAIN_TEXT_JS = """
const show = () => { element.querySelector(".result-line").textContent = props.value ?? ""; };
watch("value", show);
show();
"""


def result_column(prefix: str, n: int = 1) -> Result:
    takes, players, boxes, stems = takes_column(prefix, n)
    seeds = gr.HTML(tips.RESULT_EMPTY, html_template='<p class="result-line"></p>', js_on_load=PLAIN_TEXT_JS,
                    elem_id=f"{prefix}-seeds", elem_classes=["result-note"], padding=False)  # fmt: skip
    # Until a take exists the column shows "Nothing here yet" alone (theme.CSS: ``result-column``).
    with gr.Row(elem_classes=["result-actions"]):
        # Shown once Generate is set to more than one take (``results.SHOW_TAKES_JS``).
        pick = lenient(
            gr.Number(value=1, precision=0, label="Take to send", visible=False, minimum=1, maximum=n,
                      elem_id=f"{prefix}-pick")
        )  # fmt: skip
        sends = {
            tab: gr.Button(f"Send to {label}", size="sm", elem_id=f"{prefix}-send-{tab}") for label, tab in SEND_TARGETS
        }
        sends["settings"] = gr.Button("Use these settings", size="sm", elem_id=f"{prefix}-use-settings")
    details = "Details: every setting, the model and the timings"
    with gr.Accordion(details, open=False, elem_id=f"{prefix}-details", elem_classes=["result-details"]):
        meta = gr.JSON(label="Metadata", open=False)
    return Result(takes, players, boxes, seeds, pick, sends, meta, stems)


def action_buttons(label: str, prefix: str) -> tuple[gr.Button, gr.Button]:
    """The tab's main action and its Stop, side by side."""
    with gr.Row(equal_height=True):
        action = gr.Button(
            label, variant="primary", size="lg", scale=4, elem_id=f"{prefix}-button", elem_classes=["main-action"]
        )
        stop_button = gr.Button(
            "Stop", variant="stop", size="lg", scale=1, min_width=90, elem_id=f"{prefix}-stop",
            elem_classes=["stop-action"],
        )  # fmt: skip
    return action, stop_button


def reserves_line(prefix: str, *classes: str) -> gr.Markdown:
    """Under a GPU button on a ZeroGPU Space: what a press will reserve of the visitor's daily quota
    (filled in by ``tabs.wire_reserves``); nowhere else."""
    shown = gpu.on_zero_gpu()
    return gr.Markdown(
        tips.RESERVES_NOT_YET, visible=shown, elem_id=f"{prefix}-reserves", elem_classes=["hint", *classes]
    )


def song_input(prefix: str, wave: bool = False) -> tuple[gr.Audio, gr.Markdown, gr.HTML | None]:
    """The song upload, the line under it (filled by ``musical_controls``' analysis) and, where the
    tab works on a stretch of the song, its waveform (``waveform.py``): a region to drag in Edit,
    the seam in Extend."""
    src = any_file(
        gr.Audio(
            label="Song", type="filepath", sources=["upload"], elem_id=f"{prefix}-src", elem_classes=["compact-drop"]
        )
    )
    info = gr.Markdown("", elem_id=f"{prefix}-src-info")
    if not wave:
        return src, info, None
    wave = gr.HTML("", html_template=waveform.TEMPLATE, js_on_load=waveform.JS, elem_id=f"{prefix}-wave",
                   padding=False)  # fmt: skip
    return src, info, wave


def musical_fields(prefix: str, bpm_info: str) -> tuple[Any, Any, Any]:
    """BPM, key and time signature fields, "auto" by default."""
    with gr.Row():
        bpm = lenient(gr.Number(label="BPM (0 = auto)", value=0, info=bpm_info, precision=0,
                                 elem_id=f"{prefix}-bpm"))  # fmt: skip
        key = gr.Dropdown([checks.AUTO, *checks.KEYS], value=checks.AUTO, label="Key", info=tips.KEY,
                          allow_custom_value=True, elem_id=f"{prefix}-key")  # fmt: skip
        meter = gr.Dropdown([checks.AUTO, *checks.TIME_SIGNATURES], value=checks.AUTO, label="Time signature",
                            info=tips.TIME_SIGNATURE, allow_custom_value=True, elem_id=f"{prefix}-meter")  # fmt: skip
    return bpm, key, meter


def musical_controls(prefix: str) -> tuple[Any, Any, Any]:
    """An audio tab's BPM, key and time signature, prefilled from the upload's analysis (``songs``)."""
    bpm, key, meter = musical_fields(prefix, tips.BPM_DETECTED)
    with gr.Row():
        half = gr.Button("½ tempo", size="sm", elem_id=f"{prefix}-half-tempo")
        double = gr.Button("2× tempo", size="sm", elem_id=f"{prefix}-double-tempo")
    half.click(lambda b: songs.scale_tempo(b, 0.5), bpm, bpm, api_visibility="private", queue=False)
    double.click(lambda b: songs.scale_tempo(b, 2.0), bpm, bpm, api_visibility="private", queue=False)
    return bpm, key, meter


class SongSettings(NamedTuple):
    """An audio tab's folded settings."""

    language: gr.Dropdown
    music: tuple[Any, Any, Any]  # BPM, key, time signature
    reference: gr.Audio | None
    sampling: tuple[Any, Any, Any, Any]  # seed, steps, guidance, output format
    lora: tuple[gr.File, gr.Slider]
    lora_preset: gr.Dropdown
    finish: tuple[Any, ...]  # loudness (Cover only), fade in, fade out


def song_settings(prefix: str, variant: models.Variant, reference: bool = False) -> SongSettings:
    """Cover's, Extend's and Edit's advanced settings (BPM, key and metre filled in from the upload)."""
    return SongSettings(
        language_dropdown(prefix),
        musical_controls(prefix),
        reference_input(prefix) if reference else None,
        sampling_controls(variant, prefix),
        *_lora_split(lora_controls(prefix, variant.name)),
        # Cover makes a whole new take; Extend and Edit keep the source, whose loudness rules.
        finish_controls(prefix, loudness=reference),
    )


def _lora_split(controls: tuple[gr.File, gr.Slider, gr.Dropdown]) -> tuple[tuple[gr.File, gr.Slider], gr.Dropdown]:
    # The preset is the preparers' last parameter; the file and strength sit where they always did.
    return controls[:2], controls[2]


@dataclass
class Form:
    """A music tab's two columns, filled in by ``music_form``: its press, Stop and result."""

    button: gr.Button | None = None
    stop: gr.Button | None = None
    result: Result | None = None
    reserves: gr.Markdown | None = None  # what a press reserves, on a ZeroGPU Space
    column: gr.Column | None = None  # the result's, entered again for what a tab adds beneath it


@contextlib.contextmanager
def music_form(label: str, prefix: str, takes: int = 1) -> Iterator[Form]:
    """The form (left, wider) with its buttons, the result on the right (below it on a phone)."""
    form = Form()
    with gr.Row():
        with gr.Column(scale=3):
            yield form
            form.button, form.stop = action_buttons(label, prefix)
            form.reserves = reserves_line(prefix)
        with gr.Column(scale=2, elem_id=f"{prefix}-result", elem_classes=["result-column"]) as form.column:
            form.result = result_column(prefix, takes)
