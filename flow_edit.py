"""The flow edit, GPU side: upstream ACE-Step's overlay (``flow_edit_morph``) that runs the page's morphs, on
a cover (Cover's *Morph*, prepared in ``modes``) and on text2music (*Morph this take*, ``take_morph``).

Upstream (``acestep/models/common/flow_edit.py``, 2026-04-30, a port of ACE-Step 1.0's
``flowedit_diffusion_process``) edits the song itself toward the new style instead of drawing a new
rendition from noise: the working copy starts as the song's latents, and at every step the song
noised to that step's time is given to the DiT twice, once described as it is (the *source* caption
and lyrics) and once as it should become (the new caption and lyrics), both on one context: a cover's
blueprint of the song, or for text2music (a take's morph) silence, as upstream's text2music overlay
gives both sides (``service_generate_flow_edit.py``: the source's latents as the context sent the
model off what it was trained on); the working copy moves by the difference of the two velocities
only. What both descriptions share cancels, so the song's structure stays and what the captions change moves.

With upstream's defaults (the window over every step, one draw a step) the loop is as below; each
branch keeps its own APG momentum, DCW is off (upstream's overlay runs without it), and cover
strength and *Start from the song* do not apply (every step is on the cover's condition, from the
song). It keeps the sampler's step-callback contract, so Stop, progress and the lyric alignment
pass work through it; the first step's noise comes from ``pipe.prepare_latents``, so a variation's
noise (``retake``) reaches it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sampler
from music_request import Call


def run(pipe: Any, call: Call, generators: list[Any], on_step: sampler.StepCallback | None = None) -> Any:
    """The morph of ``call`` (a cover, or text2music with the song as ``src_latents`` or ``src_audio``;
    ``morph_prompt`` and ``morph_lyrics``: the song as it is); the final latents ``[takes, frames, channels]``."""
    import torch
    from diffusers.guiders.adaptive_projected_guidance import MomentumBuffer

    pipe._interrupt = False
    with torch.no_grad():
        device, dtype = pipe._execution_device, pipe.transformer.dtype
        call = dataclasses.replace(call, audio_cover_strength=1.0, cover_noise_strength=0.0)
        inputs = sampler.prepare(pipe, call, device, dtype)
        takes = inputs.takes
        source = dataclasses.replace(call, prompt=[call.morph_prompt] * takes, lyrics=[call.morph_lyrics] * takes)
        described = sampler.condition_of(pipe, source, inputs, device)
        # Upstream's flow-edit schedule is the shifted linspace for every variant, turbo's too.
        times = sampler.shifted_times(int(call.num_inference_steps), float(call.shift), dtype, device)
        values = times.tolist()
        guidance = sampler.guidance_of(pipe, call)
        song = inputs.raw
        edit = song.clone()
        momenta = (MomentumBuffer(momentum=sampler.MOMENTUM), MomentumBuffer(momentum=sampler.MOMENTUM))
        for i in range(len(values) - 1):
            t_now, t_next = times[i], times[i + 1]
            noise = (
                _noise(pipe, inputs, generators, device, dtype)
                if i
                else sampler.starting_noise(pipe, inputs, generators, dtype)
            )
            noised = (1.0 - values[i]) * song + values[i] * noise  # upstream noises with the time as a float
            towards = edit + noised - song
            v_song = sampler.velocity(pipe, noised, t_now, described, inputs.context, guidance, momenta[0])
            v_new = sampler.velocity(pipe, towards, t_now, inputs.condition, inputs.context, guidance, momenta[1])
            edit = edit + (t_next - t_now) * (v_new - v_song)
            if on_step is not None:
                out = on_step(pipe, i, values[i], {"latents": edit})
                edit = (out or {}).get("latents", edit)
                if getattr(pipe, "_interrupt", False):
                    break
        return edit


def _noise(pipe: Any, inputs: sampler.Inputs, generators: list[Any], device: Any, dtype: Any) -> Any:
    """A fresh draw for the next step, each take from its own generator (upstream draws one a step)."""
    import torch

    shape = (inputs.length, inputs.raw.shape[-1])
    rows = [torch.randn(shape, generator=g, device=g.device, dtype=torch.float32) for g in generators]
    return torch.stack(rows).to(device=device, dtype=dtype)
