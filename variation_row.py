"""*Variations* under Generate's result (``variations`` prepares them): the page's part.

A folded row beneath the takes: the amount, how many, the seed of the new noise and the button, which
varies the take chosen in *Take to send*. The press is GPU work, admitted and queued as a song is, and
its takes fill the same result column, so *Send to*, *Use these settings* and the stems work on them.
"""

from __future__ import annotations

from typing import NamedTuple

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
        seed = widgets.lenient(
            gr.Number(
                -1,
                precision=0,
                label="Seed of the new noise",
                info=tips.VARIATION_SEED,
                elem_id=f"{prefix}-variation-seed",
            )
        )
        button = gr.Button("Make variations", size="sm", elem_id=f"{prefix}-variations-button")
        reserves = widgets.reserves_line(f"{prefix}-variations")
    return Row(amount, count, seed, button, reserves)


def wire(row: Row, result: widgets.Result) -> tuple[str, ...]:
    """The press: as many take slots shown as variations asked for, then ``/variations`` into the
    result column and its players. Returns its api name, which Generate's Stop stops too."""
    inputs = [result.pick, result.meta, row.amount, row.count, row.seed]
    row.button.click(None, row.count, [*result.boxes, result.pick], js=results.SHOW_TAKES_JS, api_visibility="private")
    row.button.click(
        handlers.variations_endpoint,
        inputs=inputs,
        outputs=[*result.takes, result.seeds, result.meta],
        api_name="variations",
        concurrency_id="gpu",
        show_progress_on=[result.players[0]],
        validator=admission.validator(
            handlers.door("variations"), ["take", "record", "amount", "count", "seed"], "record"
        ),
    ).success(None, [result.meta, *result.takes], result.players, js=player.FROM_RESULT_JS, api_visibility="private")
    return ("variations",)
