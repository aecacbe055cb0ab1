"""The page's header and status line: which model runs where, whether it is ready or its weights are
missing (``weights_missing``), and whether the status line's timer should keep polling (``moving``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

import backend
import duration_estimate
import generation
import gpu
import hub
import messages
import models
import runs
import tooltips as tips


def model_label() -> str:
    """What runs, as the page names it (``backend.model_identity``): the variant and its repo id, a
    repo id, or "a local model (folder)"."""
    who = backend.model_identity()
    if who["folder"] is not None:
        return messages.MODEL_FROM_FOLDER.format(folder=who["folder"])
    if who["variant"] is not None:
        return f"**{models.VARIANTS[who['variant']].label}** ({who['repo']})"
    return f"**{who['repo']}**"


def header() -> str:
    return messages.HEADER.format(model=model_label(), tagline=tips.TAGLINE)


def device_label(device: str | None = None) -> str:
    """What the music runs on, as a visitor names it ("this computer's GPU", "ZeroGPU" …)."""
    if gpu.on_zero_gpu():
        return messages.ON_ZERO_GPU
    device = device or models.pick_device()
    return messages.DEVICES.get(device, device)


def weights_missing(variant: models.Variant | None = None, wait_for_hub: bool = False) -> str | None:
    """Why the music model's weights are not on this machine, or None when they are: the folder
    ``ACE_STUDIO_MODEL`` names, or the Hub cache's entries of the files the studio loads first
    (``try_to_load_from_cache``: file names only, nothing is read, loaded or downloaded); with
    ``wait_for_hub`` (start-up's log line), waiting for the Hub's answer where it is being asked
    (``hub.reachable``)."""
    variant = variant or models.active_variant()
    source = models.model_source(variant)
    path = Path(source).expanduser()
    if path.is_dir():
        return None
    if source.startswith((".", "/", "~")):
        return messages.WEIGHTS_NO_FOLDER.format(folder=source)
    files = [(source, "model_index.json")] if variant.layout == "diffusers" else [(source, "config.json")]
    if source != variant.repo:  # another repo: its layout is known only once it is here
        files = [(source, "model_index.json" if hub.cached(source, "model_index.json") else "config.json")]
    elif variant.shared_repo is not None:
        files += [
            (variant.shared_repo, f"{folders[0]}/config.json")
            for folders in (models.VAE_DIRS, models.TEXT_ENCODER_DIRS)
        ]
    if all(hub.cached(repo, name) for repo, name in files):
        return None
    # Downloads off, or the Hub not answering from here (asked in the background: until it answers, the
    # first song is said to download them; the status timer's next tick brings the answer).
    closed = models.hub_closed(source, wait=hub.PROBE_TIMEOUT_S if wait_for_hub else 0.0)
    if closed is not None:
        return models.weights_missing(messages.MUSIC_MODEL, source, "ACE_STUDIO_MODEL", closed)
    return messages.WEIGHTS_TO_DOWNLOAD.format(repo=source)


def studio_status() -> tuple[str, Any]:
    """The header's status line, and whether its timer should keep polling (until start-up is over)."""
    state = backend.load_state()
    warmup = gpu.warmup_state()
    if state["state"] == "ready":
        text = messages.STATUS_READY.format(
            label=model_label(), device=device_label(state["device"]), seconds=state["load_seconds"]
        )
        if state["device"] == "cuda" and not gpu.on_zero_gpu():
            text += messages.OFFLOAD[state["offload"]]
        if warmup["running"]:
            text += messages.STATUS_WARMING.format(elapsed=warmup["elapsed"])
    elif state["state"] == "loading":
        text = messages.STATUS_LOADING.format(
            label=model_label(),
            device=device_label(),
            elapsed=state["elapsed"],
            usual=duration_estimate.load_seconds("music"),
        )
    elif state["state"] == "failed":
        # Until a build succeeds, also after a reload: the same message as the error a click gets.
        text = generation.model_missing(state["error"])
    elif (missing := weights_missing()) is not None:
        # Said before anyone clicks a button (file names only, nothing loads).
        text = f"⚠️ {missing}" if missing.startswith(messages.WEIGHTS_LEADS) else missing
    else:
        label = model_label()
        text = messages.STATUS_COLD.format(
            label=label[:1].upper() + label[1:], device=device_label(), usual=duration_estimate.load_seconds("music")
        )
    for kind, error in warmup["errors"].items():
        if not (kind == "music" and state["state"] == "failed"):  # said above already
            text += messages.STATUS_WARM_FAILED.format(what=f"{kind} model", error=error)
    return text, gr.Timer(active=moving(state, warmup))


def moving(state: dict[str, Any], warmup: dict[str, Any]) -> bool:
    """Whether the status line changes by itself soon, so its timer ticks: a build or the warm-up under way,
    the Hub being asked, a run that may start a build. Otherwise nothing changes until someone acts: an idle
    page polled every 3 s would cost the server 40 requests a minute (``tools/bench_idle.py``); the page's
    stamp (``phase``) and its own clicks (``woken``) start the timer again."""
    if state["state"] == "loading" or warmup["running"]:
        return True
    return state["state"] != "ready" and (runs.active() > 0 or hub.asking())


def woken() -> Any:
    """A click on this page: the timer ticks until the click's request is answered (``moving``)."""
    return gr.Timer(active=True)


def phase() -> str:
    """What the status line says, less its clocks: the page asks for the line again when this changes (its
    estimate stamp, ``widgets.estimate_stamp``), so a build another visitor started is said without a timer ticking."""
    state, warmup = backend.load_state(), gpu.warmup_state()
    return ":".join([state["state"], str(warmup["running"]), *sorted(warmup["errors"])])
