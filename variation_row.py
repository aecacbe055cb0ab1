"""*Variations* under each tab's result (``variations`` prepares them): the page's part.

A folded row beneath the takes: the amount, how many, the seed of the new noise and the button, which
varies the take chosen in *Take to send*. The click is GPU work, admitted and queued as a song is, and
its takes fill the same result column, so *Send to*, *Use these settings* and the stems work on them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gradio as gr

import admission
import checks
import handlers
import player
import results
import tooltips as tips
import variations
import widgets


class Row(NamedTuple):
    amount: gr.Slider
    count: gr.Slider
    seed: gr.Number
    button: gr.Button
    reserves: gr.Markdown
    # Stand-ins for a file the tab has no field for (a song on Generate, a reference on Extend and Edit):
    # never shown, never set by the page; on Generate the public ``/variations`` takes them.
    src_audio: gr.Audio
    reference_audio: gr.Audio


def build(prefix: str) -> Row:
    """The folded *Variations* row (hidden until a take exists, like the rest of the result's actions)."""
    with gr.Accordion(
        "Variations of this take", open=False, elem_id=f"{prefix}-variations", elem_classes=["result-variations"]
    ):
        gr.Markdown(tips.VARIATIONS, elem_classes=["hint"])
        amount = widgets.lenient_slider(
            *variations.AMOUNT_RANGE,
            value=variations.DEFAULT_AMOUNT,
            step=0.05,
            label="Amount",
            info=tips.VARIATION_AMOUNT,
            elem_id=f"{prefix}-variation-amount",
        )
        count = widgets.lenient_slider(
            1,
            checks.MAX_TAKES,
            value=variations.DEFAULT_COUNT,
            step=1,
            label="How many",
            info=tips.VARIATION_COUNT,
            elem_id=f"{prefix}-variation-count",
        )
        seed = widgets.lenient_number(
            -1, precision=0, label="Seed of the new noise", info=tips.VARIATION_SEED, elem_id=f"{prefix}-variation-seed"
        )
        button = gr.Button("Make variations", size="sm", elem_id=f"{prefix}-variations-button")
        reserves = widgets.reserves_line(f"{prefix}-variations")
        files = [
            widgets.any_file(gr.Audio(type="filepath", visible=False, label=label)) for label in ("Song", "Timbre")
        ]
    return Row(amount, count, seed, button, reserves, *files)


def wire(demo: gr.Blocks, row: Row, result: widgets.Result, tab: str, fields: dict[str, Any]) -> tuple[str, Any]:
    """The button on ``tab`` (``fields``: its inputs by the preparer's names; its song and timbre
    reference go with the take's record): as many take slots shown as variations asked for, then the
    variations into the result column and its players; Generate's is the public ``/variations``; the
    line under it follows its inputs. Returns its api name (the tab's Stop stops it too) and its run's event."""
    files = [fields.get("src_audio", row.src_audio), fields.get("reference_audio", row.reference_audio)]
    name = "variations" if tab == "generate" else f"variations_{tab}"
    row.button.click(None, row.count, [*result.boxes, result.pick], js=results.SHOW_TAKES_JS, api_visibility="private")
    inputs = [result.pick, result.meta, row.amount, row.count, row.seed, *files]
    widgets.wire_reserves(
        demo, "variations", row.reserves, dict(zip(NAMES, inputs, strict=True)), handlers.reserves("variations")
    )
    run = row.button.click(
        handlers.VARIATIONS[tab],
        inputs=inputs,
        outputs=[*result.takes, result.seeds, result.meta],
        api_name=name,
        api_visibility="public" if tab == "generate" else "private",
        concurrency_id="gpu",
        show_progress_on=[result.players[0]],
        validator=admission.validator(handlers.admission_check("variations"), NAMES, "record"),
    )
    run.success(None, [result.meta, *result.takes], result.players, js=player.FROM_RESULT_JS, api_visibility="private")
    return name, run


NAMES = ["take", "record", "amount", "count", "seed", "src_audio", "reference_audio"]
