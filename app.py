"""ACE Music Studio: the page assembled from its tabs, the queue, and the launch.

Importing this module builds the page description only: no torch, diffusers or transformers, no
model. The tabs are declared in ``tabs`` (built from ``widgets``); what their buttons do is in
``handlers``; everything that exists only for Spaces and ZeroGPU lives in ``zerogpu``.
"""

from __future__ import annotations

import os
from typing import Any

import models
import zerogpu


def _bootstrap() -> None:
    """Environment the rest of the studio relies on; runs before torch can be imported."""
    models.enable_mps_fallback()
    zerogpu.bootstrap()


_bootstrap()

import gradio as gr  # noqa: E402

import admission  # noqa: E402
import serving  # noqa: E402
import status  # noqa: E402
import tabs  # noqa: E402
import takes  # noqa: E402
import tooltips as tips  # noqa: E402
import uploads  # noqa: E402


def build_ui() -> gr.Blocks:
    """The page: header and status line, then Generate, Cover, Extend, Edit and Lyrics."""
    variant = models.active_variant()
    # Gradio keeps its own copy of every result and upload; without a bound that copy grew by every
    # take (164 MB after 51) and still served results the studio had deleted.
    age = int(takes.output_max_age_hours() * 3600)
    with gr.Blocks(title="ACE Music Studio", delete_cache=(min(600, max(age, 1)), age)) as demo:
        gr.Markdown(status.header(), elem_id="studio-header")
        line = gr.Markdown(tips.STATUS_CHECKING, elem_id="studio-status")
        timer = gr.Timer(3.0)
        # "wrap": on a phone Gradio would hide the tabs that do not fit behind an unlabeled "…" menu.
        with gr.Tabs(elem_id="studio-tabs", overflow_behavior="wrap") as all_tabs:
            music = [tabs.generate_tab(variant), tabs.cover_tab(variant), tabs.extend_tab(variant),
                     tabs.edit_tab(variant)]  # fmt: skip
            tabs.lyrics_tab(demo, music[0], all_tabs)
        for trigger in (demo.load, timer.tick):
            trigger(status.studio_status, None, [line, timer], queue=False, api_visibility="private",
                    show_progress="hidden")  # fmt: skip
        for tab in music:
            tabs.wire_music(demo, tab)
        tabs.wire_across(music, all_tabs)
    uploads.keep_page_files(demo)
    return demo


demo = build_ui()


def configure_queue(blocks: gr.Blocks) -> gr.Blocks:
    """GPU events run ``ACE_STUDIO_CONCURRENCY`` at a time (default one).

    The studio's validators turn requests away with a "busy, try again in a minute" once
    ``queue_size()`` are waiting; Gradio's own cap, twice that, only backs it up (its message is
    fixed and says nothing useful).
    """
    return blocks.queue(
        default_concurrency_limit=int(os.environ.get("ACE_STUDIO_CONCURRENCY", "1")),
        max_size=2 * admission.queue_size(),
    )


def launch_options() -> dict[str, Any]:
    """What ``launch()`` needs besides the address: look, the gate in front of Gradio, the upload cap."""
    from starlette.middleware import Middleware

    import theme

    return {
        "theme": theme.studio_theme(),
        "css": theme.CSS,
        "js": theme.JS,
        # Takes are served by ``serving.Gate`` at /takes/… straight from the output folder (no copy,
        # no server path in the URL); allowed here only so that "Send to" may copy one into
        # Gradio's cache for another tab. The gate keeps Gradio's /file= route away from it.
        "allowed_paths": [str(takes.output_dir())],
        "max_file_size": os.environ.get("ACE_STUDIO_MAX_UPLOAD", "200mb"),
        "app_kwargs": {"middleware": [Middleware(serving.Gate)]},
    }


def main() -> None:
    configure_queue(demo)
    # File names only (no loading): the header says the same from the page's first view.
    missing = status.weights_missing()
    if missing is not None:
        print(f"Model weights: {missing}", flush=True)
    zerogpu.start_warmup()
    removed = takes.clean_outputs()
    if removed:
        print(f"Removed {removed} output files older than {takes.output_max_age_hours():g} h")
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **launch_options(),
    )


if __name__ == "__main__":
    main()
