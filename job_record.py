"""A take's record as its finished job writes it, once (``of``): the settings read off the model call the
preparer resolved, the takes, the length, the format, Think's part, the finish, and what the request notes
beside the call (``music_request.Notes``); nothing else writes a record's settings. ``records`` reads it
back."""

from __future__ import annotations

from typing import Any

import base_model
import checks
import parameters
from music_request import Job, MusicRequest, PlanArgs


def of(job: Job, source_latents: str | None = None) -> dict[str, Any]:
    """The settings a take's record writes (its ``params``), read once off the finished ``job``: the model
    call, the takes, the length, the format, Think's part, the finish and what the request notes beside the
    call (``music_request.Notes``); ``source_latents``: which latents the run read, where it says (the GPU side
    may find a take's own latents misfit)."""
    request = job.request
    latents = request.source_latents if source_latents is None else source_latents
    return {**_common(request, latents), **_of_mode(request), **_noted(job)}


def _common(request: MusicRequest, latents: str | None) -> dict[str, Any]:
    """The settings every mode records, as the call holds them."""
    call, render = request.render.pipeline, request.render
    plan = think_asked(request)
    chooses = plan is not None and plan.seconds is None
    return {
        "prompt": call.prompt,
        "lyrics": "" if call.lyrics == checks.INSTRUMENTAL_TAG else call.lyrics,
        "audio_duration": checks.THINK_CHOOSES_LENGTH if chooses else request.seconds,
        "bpm": call.bpm,
        "batch_size": render.takes,
        "audio_format": request.audio_format,
        **lora_record(render.adapters),
        "seed": render.seeds[0],
        **({"song_lyrics": request.song_lyrics} if request.song_lyrics else {}),
        **({"source_latents": latents} if latents is not None else {}),
    }


def _of_mode(request: MusicRequest) -> dict[str, Any]:
    """What a mode records of its own call: Think's part (Generate), whether a cover is a morph, an Edit's
    region or part, a take's morph (the declared parameters: ``parameters.recorded``)."""
    call, plan = request.render.pipeline, think_asked(request)
    if request.mode == "generate":
        thought = (
            {} if plan is None else {"rewrite_caption": plan.rewrite_caption, "plan_given": plan.given is not None}
        )
        looped = {} if request.loop is None else {"loop_bars": request.loop.bars}
        return {"think": plan is not None or request.plan_skipped is not None, **thought, **looped}
    if request.mode == "cover" and call.morph:
        return {"morph": True, "morph_prompt": call.morph_prompt, "morph_lyrics": call.morph_lyrics}
    if request.mode == "cover":
        return {"morph": False}
    if request.mode == "edit" and call.task_type in base_model.TASKS:
        change = next(key for key, task in base_model.CHANGES.items() if task == call.task_type)
        return {"change": change, "part": call.track_name, "add_parts": call.complete_track_classes}
    if request.mode == "edit":
        region = {"repainting_start": call.repainting_start, "repainting_end": call.repainting_end}
        return {"change": "region", **region, "repaint_mode": call.repaint_mode}
    if request.mode == "morph":  # upstream skips its planner for a text2music morph: the song is the take's
        described = {"prompt": call.morph_prompt, "lyrics": call.morph_lyrics}
        return {"think": False, "morph": {"of": request.notes.morph_of, **described}}
    return {}


def _noted(job: Job) -> dict[str, Any]:
    """What the record says beside the call: the request's notes, the finish, Lock to the grid, and the
    longest Think could choose. Only a whole new take (no region: Edit and Extend keep the source's level and
    voice) has a loudness target and names its timbre reference."""
    notes, request, finish = job.request.notes, job.request, job.finishing
    whole = job.region is None
    asked = {
        "seed_redrawn": notes.seed_redrawn,
        "extend_seconds": notes.extend_seconds,
        "extend_bars": notes.extend_bars,
        "edited_lines": notes.edited_lines and list(notes.edited_lines),
        "edited_bars": notes.edited_bars and list(notes.edited_bars),
        "first_downbeat": notes.first_downbeat,
        "where": notes.where,
        "ending": notes.ending,
        "source_seconds": notes.source_seconds,
        "src_audio": notes.src_audio,
    }
    recorded = {name: value for name, value in asked.items() if value is not None}
    recorded |= {"reference_audio": notes.reference_audio} if whole else {}
    recorded |= {} if notes.voice is None else {"reference": notes.voice}
    recorded |= {"loudness": finish.lufs or checks.LOUDNESS_OFF} if whole else {}
    recorded |= parameters.recorded(request.mode, request.render.pipeline, finish)  # each where not its default
    recorded |= {"lock_to_grid": True} if request.lock else {}
    longest = (plan := think_asked(request)) and plan.longest
    recorded |= {} if longest is None else {"longest": longest}
    return recorded | ({} if notes.variation is None else {"variation": notes.variation.as_record()})


def think_asked(request: MusicRequest) -> PlanArgs | None:
    """Think's part as the visitor asked it: the plan, or where the song is made without it, what it was."""
    return request.plan or request.notes.plan_asked


def lora_record(adapters: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """The adapters as a record names them, each slot's fields by ``parameters.ADAPTER_SLOTS`` (``lora``,
    ``lora_scale``, ``lora_preset`` …, a preset's Hub repo as ``lora_repo`` …): a preset by its repo (what the
    take was made with) and its name (what brings it back), a file by its name; a LoKr's kind (``lora_kind`` …,
    a LoRA's unsaid) and the layers an adapter that changes only some of the model's changes (``lora_layers`` …,
    ``[changed, named]``). ``{"lora": None}`` for none: a record of one LoRA reads as it always did."""
    said: dict[str, Any] = {"lora": None}
    for (file, strength, preset), adapter in zip(parameters.ADAPTER_SLOTS, adapters, strict=False):
        said |= {file: adapter["name"], strength: adapter["scale"]}
        if adapter.get("preset"):
            said |= {preset: adapter["preset"], parameters.ADAPTER_REPOS[preset]: adapter["repo"]}
        if adapter.get("kind", "lora") != "lora":
            said[f"{file}_kind"] = adapter["kind"]
        if adapter.get("layers") and adapter["layers"][0] < adapter["layers"][1]:
            said[f"{file}_layers"] = list(adapter["layers"])
    return said


def variation_entries(job: Job) -> list[dict[str, Any]] | None:
    """What each variation's own record adds (None: the job makes no variations): where it came from, by
    how much, its seed, its noise."""
    made = job.request.notes.variation
    if made is None:
        return None
    return [
        {"variation": made.entry(seed), "noise": [list(step) for step in noise]}
        for seed, noise in zip(made.seeds, job.request.render.noise, strict=True)
    ]
