"""Upstream ACE-Step's sampling loop over diffusers' modules: every music mode's diffusion, GPU side.

The XL weights were trained with upstream's own code, and its sampler does what diffusers'
``AceStepPipeline.__call__`` has no place for: DCW after every step (``dcw``), repaint's noised
source put back outside the region for the first steps and blended into it at the edges, one APG
momentum carried through cover's switch from the cover condition to the text-only one, cover's
start from the noised source (``cover_noise_strength``), and the chunk mask its page sends (``chunk_mask``:
a repaint's region, ones for every other task). So the studio runs upstream's loop itself (``acestep/models/xl_sft/
modeling_acestep_v15_xl_base.py``, ``generate_audio``, and the handler that feeds it), step for step
and in the same dtype arithmetic, over diffusers' modules and the parts of its pipeline that compute
what upstream computes (the prompts and their encoding, the source latents, the blueprint's
latents, the noise, the VAE): ``run`` returns the final latents, ``decode`` the audio.

It keeps diffusers' step-callback contract (``callback(pipe, step, t, {"latents": …})``, a returned ``latents``
replacing the step's, ``pipe._interrupt`` ending the loop), so Stop, progress, the lyric alignment pass, the
captured DiT step (``graphs``) and the variations' noise (``retake``) work through it unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dcw
from audio import HOP, SAMPLE_RATE
from music_request import Call

StepCallback = Callable[[Any, int, float, dict[str, Any]], dict[str, Any] | None]

# Upstream's guidance (APG): momentum -0.75, update norm capped at 2.5, no parallel part.
MOMENTUM = -0.75
NORM_THRESHOLD = 2.5
# The turbo DiT was distilled for at most 20 steps (upstream clamps there).
TURBO_MAX_STEPS = 20
# The timbre encoder's input without a reference: this many frames of the silence latent (30 s).
TIMBRE_FRAMES = 750
# Upstream pads a source's latents with silence to at least this many frames (5.12 s) before it runs.
MIN_FRAMES = 128


@dataclass(frozen=True)
class Repaint:
    """How a repaint keeps to its source (upstream's ``repaint_mode`` and ``repaint_strength``):
    the share of the steps after which the noised source is put back outside the region, and the
    latent frames blended from the source into the region at each edge after the last step."""

    injection: float = 0.5
    blend_frames: int = 12


def repainting(mode: str = "balanced", strength: float = 0.5) -> Repaint:
    """Upstream's ways of repainting as numbers: ``aggressive`` is plain diffusion, ``conservative``
    puts the source back at every step and blends 25 frames, ``balanced`` (its default) goes between
    by ``strength`` (0: conservative … 1: aggressive)."""
    strength = max(0.0, min(1.0, float(strength)))
    if mode == "aggressive":
        return Repaint(0.0, 0)
    if mode == "conservative":
        return Repaint(1.0, 25)
    return Repaint(1.0 - strength, round(25 * (1.0 - strength)))


@dataclass
class Inputs:
    """What one run's loop reads: the condition and context (with guidance already doubled with the
    null condition), cover's text-only pair where the cover switches, the source's VAE latents
    (``raw``), and a repaint's region (``True`` where new music goes)."""

    condition: Any
    context: Any
    length: int
    takes: int
    plain_condition: Any = None
    plain_context: Any = None
    raw: Any = None
    region: Any = None
    timbre: Any = None
    instruction: str = ""


@dataclass(frozen=True)
class Schedule:
    """The timesteps from 1 down to 0: ``times`` each as upstream's loop holds it (for SFT and base a
    0-d tensor of the model's dtype, since upstream computes the shifted schedule in that dtype; for
    turbo a Python float of the dtype-rounded value, since its schedule is a Python list cast once),
    ``values`` the same as Python floats (read once, not a device sync a step), and ``picks`` what a
    cover's start chooses among and mixes with (SFT: the rounded values; turbo: its list before the
    cast, as upstream's turbo picks from it)."""

    times: list[Any]
    values: list[float]
    picks: list[float]

    def after(self, first: int) -> Schedule:
        return Schedule(self.times[first:], self.values[first:], self.picks[first:])


def schedule(pipe: Any, steps: int, shift: float, dtype: Any, device: Any) -> Schedule:
    """Upstream's schedule for ``steps`` (turbo at most ``TURBO_MAX_STEPS``) and ``shift``; the loop's
    arithmetic is written once and gives each variant's times their own rounding, as upstream's two
    loops do."""
    import torch

    if not pipe.is_turbo:
        t = shifted_times(steps, shift, dtype, device)
        values = t.tolist()
        return Schedule(list(t), values, values[:-1])
    n = min(int(steps), TURBO_MAX_STEPS)
    raw = [1.0 - i / n for i in range(n)]
    if shift != 1.0:
        raw = [shift * t / (1.0 + (shift - 1.0) * t) for t in raw]
    rounded = [*torch.tensor(raw, device=device, dtype=dtype).tolist(), 0.0]
    return Schedule(rounded, rounded, raw)


def shifted_times(steps: int, shift: float, dtype: Any, device: Any) -> Any:
    """Upstream's shifted linspace from 1 to 0 in the model's dtype (SFT and base; the morph's too)."""
    import torch

    t = torch.linspace(1.0, 0.0, steps + 1, device=device, dtype=dtype)
    return shift * t / (1 + (shift - 1) * t) if shift != 1.0 else t


def starting_noise(pipe: Any, inputs: Inputs, generators: list[Any], dtype: Any) -> Any:
    """A run's starting noise, each take from its own generator (a variation's mix included: ``retake``)."""
    asked = {"batch_size": inputs.takes, "audio_duration": inputs.length / pipe.latents_per_second, "dtype": dtype}
    return pipe.prepare_latents(**asked, device=pipe._execution_device, generator=generators, latents=None)


def steps_run(pipe: Any, steps: int) -> int:
    """How many steps a run of ``steps`` makes (turbo stops at ``TURBO_MAX_STEPS``)."""
    return min(int(steps), TURBO_MAX_STEPS) if pipe.is_turbo else int(steps)


def run(pipe: Any, call: Call, generators: list[Any], on_step: StepCallback | None = None) -> Any:
    """One request's diffusion (``call``: the pipeline keyword arguments the studio prepares, audio
    as ``[2, samples]`` tensors); the final latents ``[takes, frames, channels]``."""
    import torch

    pipe._interrupt = False
    with torch.no_grad():
        device, dtype = pipe._execution_device, pipe.transformer.dtype
        inputs = prepare(pipe, call, device, dtype)
        noise = starting_noise(pipe, inputs, generators, dtype)
        steps = int(call.num_inference_steps)
        plan = schedule(pipe, steps, float(call.shift), dtype, device)
        return _denoise(pipe, call, inputs, noise, plan, on_step)


def prepare(pipe: Any, call: Call, device: Any, dtype: Any) -> Inputs:
    """The condition and context of ``call`` as upstream's handler builds them."""
    import torch

    batch = len(call.prompt)
    task, codes = _task(call)
    instruction = pipe._get_task_instruction(task, call.track_name, call.complete_track_classes)
    texts = _texts(pipe, call, instruction, device)
    raw, source, length = _source(pipe, call, task, codes, batch, device, dtype)
    timbre = _timbre(pipe, call.reference_audio, batch, device, dtype)
    region = _region(call, length, batch, device) if task == "repaint" and raw is not None else None
    if region is not None:  # the source with silence where the new music goes
        silence, _ = pipe.prepare_src_latents(device=device, dtype=dtype, batch_size=batch, latent_length=length)
        source = torch.where(region[..., None], silence, raw)
    chunk = chunk_mask(region, batch, length, pipe.transformer.config.audio_acoustic_hidden_dim, device, dtype)
    guided = float(call.guidance_scale) > 1.0 and not pipe.is_turbo
    condition = _condition(pipe, texts, timbre, guided)
    inputs = Inputs(condition, _doubled(torch.cat([source, chunk], dim=-1), guided), length, batch, raw=raw)
    inputs.region, inputs.timbre, inputs.instruction = region, timbre, instruction
    if task == "cover" and raw is not None and float(call.audio_cover_strength) < 1.0:
        plain = _plain_text(pipe, call, texts[0].shape[1], device)
        inputs.plain_condition = _condition(pipe, (*plain, *texts[2:]), timbre, guided)
        silence = pipe.condition_encoder.silence_latent[:, :length, :].to(device=device, dtype=dtype)
        inputs.plain_context = _doubled(torch.cat([silence.expand(batch, -1, -1), chunk], dim=-1), guided)
    return inputs


def chunk_mask(region: Any, batch: int, length: int, channels: int, device: Any, dtype: Any) -> Any:
    """The chunk mask the context carries beside the source, as upstream's page sends it: for a repaint
    (Edit's region, lines and bars; Extend; a loop's seam) its region, 1 where new music goes and 0 where the song is kept
    (upstream's ``explicit`` mode, which its page's Repaint passes); for every other task, and a repaint
    without a region, ones everywhere (its ``auto`` mode, its API's default, reaches the model as ones)."""
    import torch

    if region is None:
        return torch.ones(batch, length, channels, device=device, dtype=dtype)
    return region.to(dtype)[..., None].expand(-1, -1, channels)


def condition_of(pipe: Any, call: Call, inputs: Inputs, device: Any) -> Any:
    """The condition of ``call``'s caption and lyrics with ``inputs``' instruction and timbre (another
    text on the same song: the morph's source side)."""
    guided = float(call.guidance_scale) > 1.0 and not pipe.is_turbo
    return _condition(pipe, _texts(pipe, call, inputs.instruction, device), inputs.timbre, guided)


def guidance_of(pipe: Any, call: Call) -> float | None:
    """The guidance scale the loop applies (None: unguided, as turbo always is)."""
    scale = float(call.guidance_scale)
    return scale if scale > 1.0 and not pipe.is_turbo else None


def _condition(pipe: Any, texts: tuple[Any, ...], timbre: tuple[Any, Any], guided: bool) -> Any:
    """The condition encoder's output for the texts and timbre; with guidance, the null condition's
    rows after it (upstream batches the two through one DiT call)."""
    import torch

    text, text_mask, lyrics, lyrics_mask = texts
    states, _ = pipe.condition_encoder(
        text_hidden_states=text,
        text_attention_mask=text_mask,
        lyric_hidden_states=lyrics,
        lyric_attention_mask=lyrics_mask,
        refer_audio_acoustic_hidden_states_packed=timbre[0],
        refer_audio_order_mask=timbre[1],
    )
    if not guided:
        return states
    null = pipe.condition_encoder.null_condition_emb.to(device=states.device, dtype=states.dtype)
    return torch.cat([states, null.expand_as(states)], dim=0)


def _doubled(context: Any, guided: bool) -> Any:
    import torch

    return torch.cat([context, context], dim=0) if guided else context


def _task(call: Call) -> tuple[str, bool]:
    """The task the model runs and whether blueprint codes are given (they make text2music a cover)."""
    codes = call.audio_codes
    given = bool(codes) and (any(c.strip() for c in codes) if isinstance(codes, list) else bool(str(codes).strip()))
    task = call.task_type
    return ("cover" if given and task == "text2music" else task), given


def _texts(pipe: Any, call: Call, instruction: str, device: Any) -> tuple[Any, Any, Any, Any]:
    """Caption and lyrics encoded as upstream's handler does (diffusers' ``encode_prompt`` is its
    equal): ``(text states, text mask, lyric embeddings, lyric mask)``."""
    music = {"bpm": call.bpm, "keyscale": call.keyscale, "timesignature": call.timesignature}
    texts = {"prompt": call.prompt, "lyrics": call.lyrics, "vocal_language": call.vocal_language}
    return pipe.encode_prompt(
        **texts, **music, device=device, audio_duration=call.audio_duration, instruction=instruction
    )


def _plain_text(pipe: Any, call: Call, tokens: int, device: Any) -> tuple[Any, Any]:
    """Cover's text-only caption (the text2music instruction) as upstream builds it: tokenised alone,
    then padded with the pad token, or cut, to the cover caption's token count (upstream pads it to
    that length whatever its own; the DiT attends to every position, the mask orders them)."""
    import torch

    instruction = pipe._get_task_instruction("text2music")
    language = call.vocal_language
    rows, masks = [], []
    for i, prompt in enumerate(call.prompt):
        text, _ = pipe._format_prompt(
            prompt=prompt,
            lyrics="",
            vocal_language=language[i] if isinstance(language, list) else language,
            audio_duration=call.audio_duration,
            instruction=instruction,
            bpm=call.bpm,
            keyscale=call.keyscale,
            timesignature=call.timesignature,
        )
        ids = pipe.tokenizer(text, truncation=True, max_length=256, return_tensors="pt").input_ids[0]
        rows.append(torch.nn.functional.pad(ids, (0, tokens - len(ids)), value=pipe.tokenizer.pad_token_id))
        masks.append(torch.arange(tokens) < len(ids))
    ids = torch.stack(rows).to(device)
    return pipe.text_encoder(input_ids=ids).last_hidden_state, torch.stack(masks).to(device)


def _source(pipe: Any, call: Call, task: str, codes: bool, batch: int, device: Any, dtype: Any) -> tuple:
    """``(raw, source, frames)``: the source song's VAE latents (None without one; at least
    ``MIN_FRAMES``, as upstream pads them), the latents the context carries (cover: the source's
    blueprint read back, as upstream's tokenizer and detokenizer make it; the planner's blueprint;
    or silence, also under a text2music song: a take's morph), and the frame count."""
    import torch

    length = math.ceil(float(call.audio_duration) * pipe.latents_per_second)
    if codes:
        source, length = pipe.prepare_src_latents(
            device=device, dtype=dtype, batch_size=batch, audio_codes=call.audio_codes, task_type=task
        )
        return None, source, length
    audio, kept = call.src_audio, call.src_latents
    if audio is None and kept is None:
        source, length = pipe.prepare_src_latents(device=device, dtype=dtype, batch_size=batch, latent_length=length)
        return None, source, length
    if kept is not None:  # a take's own (``take_latents``): no VAE round trip (a take's morph sends no audio)
        frames = len(kept) if audio is None else audio.shape[-1] // HOP
        raw, length = _take_latents(pipe, kept, frames, batch, device, dtype)
    else:
        raw, length = pipe.prepare_src_latents(
            device=device, dtype=dtype, batch_size=batch, src_audio=audio, task_type="repaint"
        )
    silence = pipe.condition_encoder.silence_latent.to(device=device, dtype=dtype)
    if length < MIN_FRAMES:  # upstream's padding: the silence latent from its start
        raw = torch.cat([raw, silence[:, : MIN_FRAMES - length].expand(batch, -1, -1)], dim=1)
        length = MIN_FRAMES
    if task == "text2music":  # a take's morph: the song to move, on a silence context (upstream's flow edit)
        silence, _ = pipe.prepare_src_latents(device=device, dtype=dtype, batch_size=batch, latent_length=length)
        return raw, silence, length
    if task != "cover":
        return raw, raw, length
    hints, _ = pipe.audio_tokenizer.tokenize(raw, silence)
    source = pipe.audio_token_detokenizer(hints.to(device=device, dtype=dtype))[:, :length, :].contiguous()
    return raw, source, length


def _take_latents(pipe: Any, latents: Any, frames: int, batch: int, device: Any, dtype: Any) -> tuple[Any, int]:
    """A take's own final latents as its song's VAE latents would be: its first ``frames`` (the song's
    as the model reads it), or, where the song is longer (Extend's padding), the silence latent after
    them, as upstream's repaint of a generated take aligns them (``_align_source_repaint_latent``)."""
    import torch

    kept = latents.to(device=device, dtype=dtype)[:frames]
    if kept.shape[0] < frames:
        pad, _ = pipe.prepare_src_latents(device=device, dtype=dtype, batch_size=1, latent_length=frames - len(kept))
        kept = torch.cat([kept, pad[0]], dim=0)
    return kept[None].expand(batch, -1, -1), frames


def _timbre(pipe: Any, reference: Any, batch: int, device: Any, dtype: Any) -> tuple[Any, Any]:
    """The timbre encoder's input: the reference's VAE latents (``preparing.reference`` chose its
    30 s), or without one the silence latent's first 30 s, once per take, and their takes' order."""
    import torch

    order = torch.arange(batch, device=device, dtype=torch.long)
    if reference is None:
        silence = pipe.condition_encoder.silence_latent[:, :TIMBRE_FRAMES, :].to(device=device, dtype=dtype)
        return silence.expand(batch, -1, -1).contiguous(), order
    wave = reference.unsqueeze(0).to(device=device, dtype=pipe.vae.dtype)
    latents = pipe.vae.encode(wave).latent_dist.sample().transpose(1, 2).to(dtype=dtype)
    return latents.expand(batch, -1, -1), order


def _region(call: Call, length: int, batch: int, device: Any) -> Any:
    """The repaint region as upstream marks it in latent frames (``int(seconds × SAMPLE_RATE // HOP)``,
    at least one frame, within the song; an end of -1 or past the song is the song's end)."""
    import torch

    start = float(call.repainting_start or 0.0)
    end = call.repainting_end
    first = max(0, min(int(start * SAMPLE_RATE // HOP), length - 1))
    last = length if end is None or float(end) < 0 else int(float(end) * SAMPLE_RATE // HOP)
    last = max(first + 1, min(last, length))
    region = torch.zeros(batch, length, dtype=torch.bool, device=device)
    region[:, first:last] = True
    return region


def _denoise(pipe: Any, call: Call, inputs: Inputs, noise: Any, plan: Schedule, on_step: StepCallback | None) -> Any:
    """Upstream's loop: the DiT (with guidance), the Euler step, DCW, a repaint's source put back;
    a cover's switch to the text-only condition; the edges blended after the last step."""
    from diffusers.guiders.adaptive_projected_guidance import MomentumBuffer

    guidance = guidance_of(pipe, call)
    low, high = interval(call, inputs.context.dtype)  # guided where low <= t <= high, as upstream's
    correction = dcw.Dcw(on=dcw.resolve(call.dcw, pipe.is_turbo))  # as the preparers resolved it
    way = repainting(call.repaint_mode, float(call.repaint_strength))
    xt, skipped, plan = _start(call, inputs, noise, plan)
    times, values, steps = plan.times, plan.values, len(plan.times) - 1
    plain = inputs.plain_condition is not None
    cover_steps = int(steps * float(call.audio_cover_strength)) if plain else steps
    put_back = round(way.injection * steps) if inputs.region is not None else 0
    momentum = MomentumBuffer(momentum=MOMENTUM)  # one for the whole run, through cover's switch
    condition, context = inputs.condition, inputs.context
    for i in range(steps):
        if i == cover_steps:  # the rest as text to music (upstream's switch)
            condition, context = inputs.plain_condition, inputs.plain_context
        t_now, t_next = times[i], times[i + 1]
        vt = velocity(pipe, xt, t_now, condition, context, guidance if low <= values[i] <= high else None, momentum)
        vt = clamped(vt, xt, float(call.velocity_norm_threshold))
        before, xt = xt, xt - vt * ((t_now - t_next) * _ones(xt))
        if correction.on:
            xt = correction.correct(xt, before - vt * (values[i] * _ones(xt)), values[i])
        # Upstream's turbo loop ends its last step before the source is put back; SFT's does not.
        if i < put_back and not (pipe.is_turbo and i == steps - 1):
            xt = where(inputs.region, xt, t_next * noise + (1.0 - t_next) * inputs.raw)
        if on_step is not None:
            out = on_step(pipe, skipped + i, values[i], {"latents": xt})
            xt = (out or {}).get("latents", xt)
            if getattr(pipe, "_interrupt", False):
                break
    if inputs.region is not None and way.blend_frames > 0:
        xt = _blend_edges(xt, inputs.raw, inputs.region, way.blend_frames)
    return xt


def clamped(vt: Any, xt: Any, threshold: float) -> Any:
    """Upstream's velocity norm clamp (PR #978, #987): each take's velocity scaled to at most ``threshold`` times
    its latents' norm, as its loop does after guidance and before the step; 0: unchanged."""
    import torch

    if threshold <= 0.0:
        return vt
    most = threshold * (torch.norm(xt, dim=(1, 2), keepdim=True) + 1e-10)
    return vt * torch.clamp(most / (torch.norm(vt, dim=(1, 2), keepdim=True) + 1e-10), max=1.0)


def interval(call: Call, dtype: Any) -> tuple[float, float]:
    """Upstream's guidance interval in the model's dtype, as its ``t_curr`` (a tensor) meets each bound; steps
    outside it keep the song's rows alone (``velocity``), the values upstream keeps of both rows there."""
    import torch

    return tuple(torch.tensor(float(v), dtype=dtype).item() for v in (call.cfg_interval_start, call.cfg_interval_end))


def _start(call: Call, inputs: Inputs, noise: Any, plan: Schedule) -> tuple[Any, int, Schedule]:
    """Where the loop starts: pure noise, or for a cover with ``cover_noise_strength`` the source's
    latents noised to the schedule's time nearest 1 − strength, the loop going on from there
    (upstream's cover start); also how many steps that skips, and the rest of the schedule."""
    strength = float(call.cover_noise_strength or 0.0)
    if strength <= 0.0 or inputs.raw is None or inputs.region is not None:
        return noise, 0, plan
    level = 1.0 - strength
    nearest = min(plan.picks, key=lambda t: abs(t - level))
    first = plan.picks.index(nearest)
    return nearest * noise + (1 - nearest) * inputs.raw, first, plan.after(first)


def velocity(pipe: Any, xt: Any, t: Any, condition: Any, context: Any, guidance: float | None, momentum: Any) -> Any:
    """The DiT's velocity at ``t``; with guidance the conditioned and null-conditioned rows in one
    batch (``condition`` and ``context`` come doubled), combined by APG (diffusers'
    ``normalized_guidance`` computes upstream's ``apg_forward``)."""
    import torch
    from diffusers.guiders.adaptive_projected_guidance import normalized_guidance

    x = torch.cat([xt, xt], dim=0) if guidance is not None else xt
    condition, context = condition[: len(x)], context[: len(x)]  # unguided: the song's rows alone
    timestep = t * torch.ones((x.shape[0],), device=xt.device, dtype=xt.dtype)
    out = pipe.transformer(
        hidden_states=x,
        timestep=timestep,
        timestep_r=timestep,
        encoder_hidden_states=condition,
        context_latents=context,
        attention_kwargs=None,
        return_dict=False,
    )[0]
    if guidance is None:
        return out
    cond, uncond = out.chunk(2, dim=0)
    return normalized_guidance(
        pred_cond=cond,
        pred_uncond=uncond,
        guidance_scale=guidance - 1.0,
        momentum_buffer=momentum,
        eta=0.0,
        norm_threshold=NORM_THRESHOLD,
        use_original_formulation=True,
        norm_dim=(1,),
    )


def _ones(xt: Any) -> Any:
    import torch

    return torch.ones((xt.shape[0],), device=xt.device, dtype=xt.dtype)[:, None, None]


def where(region: Any, inside: Any, outside: Any) -> Any:
    """``inside`` in the region's frames, ``outside`` elsewhere (``region``: ``[batch, frames]``)."""
    import torch

    return torch.where(region[..., None].expand_as(inside), inside, outside)


def _blend_edges(latents: Any, clean: Any, region: Any, frames: int) -> Any:
    """The source outside the region, the new latents inside, and ``frames`` at each edge outside
    the region going linearly from one to the other (upstream's boundary blend)."""
    import torch

    soft = region.to(torch.float32)
    for row in range(region.shape[0]):
        inside = torch.nonzero(region[row]).squeeze(-1)
        if inside.numel() in (0, region.shape[1]):
            continue
        left, right = int(inside[0]), int(inside[-1]) + 1
        start, end = max(left - frames, 0), min(right + frames, region.shape[1])
        if left > start:
            soft[row, start:left] = torch.linspace(0, 1, left - start + 2, device=soft.device)[1:-1]
        if end > right:
            soft[row, right:end] = torch.linspace(1, 0, end - right + 2, device=soft.device)[1:-1]
    weight = soft[..., None].expand_as(latents)
    return weight * latents + (1.0 - weight) * clean


def decode(pipe: Any, latents: Any, normalize: bool = True) -> Any:
    """The takes' audio (float32 numpy ``[takes, 2, samples]``) from the final latents, as the
    pipeline decodes them: the VAE, any peak over full scale divided out, then every take at -1 dBFS
    peak (upstream's ``normalize_audio``). Without ``normalize`` the VAE's output as it is: a part
    made to go into a song (lego) keeps the level it has beside the song's own latents."""
    import torch

    with torch.no_grad():
        # In the VAE's dtype, as upstream decodes: a repaint's edge blend comes out in float32.
        audio = pipe.vae.decode(latents.transpose(1, 2).to(pipe.vae.dtype)).sample.float()
    peak = audio.abs().amax(dim=[1, 2], keepdim=True)
    if not normalize:
        pipe.maybe_free_model_hooks()
        return audio.cpu().numpy()
    if bool((peak > 1.0).any()):
        audio = audio / peak.clamp(min=1.0)
    peak = audio.abs().amax(dim=[1, 2], keepdim=True).clamp(min=1e-6)
    audio = audio * (10.0 ** (-1.0 / 20.0) / peak)
    pipe.maybe_free_model_hooks()
    return audio.cpu().numpy()
