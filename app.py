"""ACE Music Studio: the page assembled from its tabs, the queue, and the launch.

Importing this module builds the page description only: no torch, diffusers or transformers, no
model. The tabs are declared in ``tabs`` (built from ``widgets``); what their buttons do is in
``handlers``; the studio's own start-up (the Space's Hub-cache mirror, the models' warm-up) is
``startup``'s, and the one way to the GPU is ``gpu``'s.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import agents
import models
import startup


def _bootstrap() -> None:
    """Environment the rest of the studio relies on; runs before torch can be imported."""
    models.enable_mps_fallback()
    startup.bootstrap()


_bootstrap()

with agents.later():  # the MCP server is imported when it starts (``agents.launch_option``), not here
    import gradio as gr  # noqa: E402

import admission  # noqa: E402
import asgi_gate  # noqa: E402
import generate_page  # noqa: E402
import handlers  # noqa: E402
import instant  # noqa: E402
import messages  # noqa: E402
import my_takes  # noqa: E402
import output_folder  # noqa: E402
import page_answers  # noqa: E402
import records  # noqa: E402
import status  # noqa: E402
import streams  # noqa: E402
import tabs  # noqa: E402
import uploads  # noqa: E402
import voice_row  # noqa: E402
import widgets  # noqa: E402


def build_ui() -> gr.Blocks:
    """The page: header and status line, then Generate, Cover, Extend, Edit and Lyrics."""
    variant = models.active_variant()
    # Gradio keeps its own copy of every result and upload; without a bound that copy grew by every
    # take (164 MB after 51) and still served results the studio had deleted.
    age = int(output_folder.output_max_age_hours() * 3600)
    with gr.Blocks(title="ACE Music Studio", delete_cache=(min(600, max(age, 1)), age)) as demo:
        gr.Markdown(status.header(), elem_id="studio-header")
        line = gr.Markdown(messages.STATUS_CHECKING, elem_id="studio-status")
        timer = gr.Timer(3.0)
        stamp = widgets.estimate_stamp(timer, status.phase)  # before the tabs: their cost and duration lines follow it
        panel = my_takes.build()  # collapsed, above the tabs: a phone finds it without scrolling
        # "wrap": on a phone Gradio would hide the tabs that do not fit behind an unlabeled "…" menu.
        with gr.Tabs(elem_id="studio-tabs", overflow_behavior="wrap") as all_tabs:
            music = [build(variant) for build in (generate_page.build, tabs.cover_tab, tabs.extend_tab, tabs.edit_tab)]
            tabs.lyrics_tab(demo, music[0], all_tabs)
        shown = {"queue": False, "api_visibility": "private", "show_progress": "hidden"}
        for trigger in (demo.load, timer.tick, stamp.change):
            trigger(status.studio_status, None, [line, timer], **shown)
        for tab in music:
            tab.form.button.click(status.woken, None, timer, **shown)  # a click may start the build
            for name, run in tabs.wire_music(demo, tab).items():  # its own takes, then its variations
                my_takes.keep_after(run, tab.form.result.meta, panel, name)
        used = tabs.wire_across(music, all_tabs)
        receivers = {tab.name: tab.receives for tab in music if tab.receives}
        my_used = my_takes.wire(demo, panel, [music[0].fields[k] for k in records.FIELDS], receivers, all_tabs)
        voice_row.wire(music, panel, used, my_used, all_tabs)
    uploads.keep_page_files(demo)
    uploads.needed_by(admission.queued_files(demo))
    demo.get_api_info = handlers.model_defaults(demo.get_api_info)  # a part's steps are the base's
    return demo


demo = build_ui()


# Gradio's queue looks for work every 1 ms while it has none to start, and for progress to send every 10 ms:
# 0.43 s of CPU every 10 s for a studio left idle (``tools/soak.py --idle``, this project's 2-core machine),
# on a machine it shares. Every 20 and 50 ms: 0.06 s; a request starts at most 20 ms later.
QUEUE_POLL_S = 0.02
PROGRESS_POLL_S = 0.05


def configure_queue(blocks: gr.Blocks) -> gr.Blocks:
    """GPU events run ``ACE_STUDIO_CONCURRENCY`` at a time (default one), and every join passes the
    studio's admission (``admission.guard``: the queue limits, a share per visitor, a message for each
    refusal).

    Gradio's own cap counts every kind of event together and answers with a fixed "Queue is full";
    set above all the queue limits together, it only backs them up. ``api_open=False``: off a Space
    Gradio would otherwise run a queued event posted straight to ``/gradio_api/run/<name>``, past
    the queue and its admission (the page calls only ``queue=False`` events that way). A visitor whose
    event stream drops keeps their requests for ``streams.grace_s()``. A session Gradio keeps for a
    page costs it a few KB, not a copy of the page's config (``admission.light_sessions``). The queue's
    loops poll at ``QUEUE_POLL_S`` and ``PROGRESS_POLL_S``, not Gradio's 1 and 10 ms.
    """
    import gpu

    # The GPU events: the GPU queue's places, and one more preparing or finishing on the CPU meanwhile
    # (``gpu.in_gpu_queue`` keeps the GPU calls to the GPU queue's places, first come first served).
    for fn in blocks.fns.values():
        if fn.concurrency_id == admission.GPU:
            fn.concurrency_limit = gpu.requests_at_once()
    blocks.queue(
        default_concurrency_limit=int(os.environ.get("ACE_STUDIO_CONCURRENCY", "1")),
        max_size=2 * admission.all_places(),
        api_open=False,
    )
    queue = blocks._queue
    queue.sleep_when_free, queue.progress_update_sleep_when_free = QUEUE_POLL_S, PROGRESS_POLL_S
    streams.hold(blocks)
    admission.guard(blocks)
    admission.light_sessions()
    return blocks


def launch_options() -> dict[str, Any]:
    """What ``launch()`` needs besides the address: look, the gate in front of Gradio, the page's answers
    made once (``page_answers``), the upload cap, and the studio's tools for agents (``agents``: on unless
    ``ACE_STUDIO_MCP=off``)."""
    from starlette.middleware import Middleware

    import addresses
    import theme

    # Before uvicorn's config is made (in ``launch``), which reads the proxies it trusts from the variable.
    trusted = addresses.trust_space_proxy()
    if trusted:
        print(trusted, flush=True)
    return {
        "theme": theme.studio_theme(),
        "css": theme.CSS,
        "js": theme.JS,
        # English, the page's fallback for every language: one key, where this Gradio has none.
        "i18n": gr.I18n(en=messages.PAGE_KEYS),
        # Takes are served by ``asgi_gate.Gate`` at /takes/… straight from the output folder (no copy,
        # no server path in the URL); allowed here only so that a take returned as a plain path (no
        # page root to build its URL from) may be copied into Gradio's cache. "Send to" places one in
        # the uploads itself (``uploads.link_in``). The gate keeps Gradio's /file= route away from it.
        "allowed_paths": [str(output_folder.output_dir())],
        "max_file_size": os.environ.get("ACE_STUDIO_MAX_UPLOAD", "200mb"),
        "app_kwargs": {
            "middleware": [
                Middleware(asgi_gate.Gate),
                Middleware(page_answers.PageAnswers),
                Middleware(instant.Instant),
                Middleware(streams.Streams),
            ]
        },
        # A flood of new sessions evicts the oldest (each costs little: ``admission.light_sessions``).
        "state_session_capacity": admission.SESSIONS,
        "mcp_server": agents.launch_option(),
        **_no_self_check(),
    }


def _no_self_check() -> dict[str, Any]:
    """Gradio's launch asks its own page over HTTP once with a 3 s timeout and gives up on the first
    timeout ("When localhost is not accessible, a shareable link must be created"): on a loaded machine
    the page took longer and the studio did not start. The server is up when ``launch`` gets there (it
    waits for uvicorn), so the check is left out where this Gradio offers the switch."""
    import inspect

    import gradio as gr

    return {"_frontend": False} if "_frontend" in inspect.signature(gr.Blocks.launch).parameters else {}


def serve_here() -> tuple[str, gr.Blocks]:
    """A fresh page served from this process on a free local port without blocking (tests, bench):
    its address and the page, to ``close()`` when done."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page = build_ui()
    configure_queue(page)
    page.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    return f"http://127.0.0.1:{port}/", page


def _settle() -> None:
    # What start-up made lives as long as the server: out of the collector's way, a full collection
    # takes 27-59 ms of the event loop instead of 200-260 ms (measured beside a flood of MCP calls). No
    # full collection first: the server answers by now, and one held every request for up to 1.05 s
    # (tests/test_newcomer.py's probe, on the loaded suite machine); the imports' few cycles are kept.
    gc.freeze()


def main() -> None:
    configure_queue(demo)
    # File names only (no loading), and the Hub asked whether it answers: the header says the same.
    missing = status.weights_missing(wait_for_hub=True)
    if missing is not None:
        print(f"Model weights: {missing}", flush=True)
    startup.start_warmup()
    removed = output_folder.clean_outputs()
    if removed:
        print(f"Removed {removed} output files older than {output_folder.output_max_age_hours():g} h")
    # Imported once the first page is answered (before, the page came 13.6 s after start quiet, 29.5 s
    # loaded): no join imports any of them (``headers``, tests/test_join.py), so none waits on them; the
    # thread is known to the GPU calls (which wait for it) before the server answers.
    startup.import_later(then=_settle)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **launch_options(),
    )


if __name__ == "__main__":
    main()
