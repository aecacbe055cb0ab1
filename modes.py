"""One preparer per mode, and the finish every mode shares; all of it runs on the CPU.

A request reads as one straight line: ``prepare_<mode>(...)`` checks the visitor's settings
(``checks``) and returns a ``Job`` (the record of what was asked, the picklable pipeline request and
the post-processing); the GPU entry (``zerogpu.run_music``) runs ``job.request``;
``finish(job, result)`` fits, gain-matches, splices and finishes (``mastering``) the takes, then
``takes`` writes the files. Nothing here takes a GPU slot.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import audio
import mastering
import models
import takes
import uploads
from checks import (
    AUTO,
    EXTEND_RANGE,
    INSTRUMENTAL_TAG,
    MAX_CAPTION_CHARS,
    MAX_LYRICS_CHARS,
    MAX_SECONDS,
    MIN_REGION_SECONDS,
    UNKNOWN,
    InputError,
    about,
    as_number,
    check_bpm,
    check_finish,
    check_format,
    check_key,
    check_language,
    check_length,
    check_plan,
    check_sampling,
    check_switch,
    check_takes,
    check_text,
    check_time_signature,
    in_range,
    seeds_for,
    sung_language,
)
from model_checks import check_lora, check_lyric_tokens, check_think

# Equal-power crossfade at each seam between kept and new audio.
SEAM_SECONDS = 0.05


@dataclass
class Job:
    """One prepared request: what the visitor asked for and what the pipeline will be asked."""

    mode: str
    # The settings as recorded beside every take (plain values; also the GPU estimate's input).
    params: dict[str, Any]
    # Pipeline keyword arguments plus ``seeds`` and ``lora``: numpy and plain values, picklable.
    request: dict[str, Any]
    seeds: list[int]
    # Runs on each returned take ``[2, samples]`` before it is written.
    post: Callable[[np.ndarray], np.ndarray]
    # Fades and loudness (``mastering``); ``region`` (samples) is the new part of an Edit or Extend,
    # the only part whose level the finish may touch there.
    finishing: mastering.Finish = mastering.Finish()
    region: tuple[int, int] | None = None


def finish(job: Job, result: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Post-process, finish (one take at a time) and write the takes; returns paths and the record."""
    started = time.perf_counter()
    done = [mastering.finish(job.post(take), job.finishing, job.region) for take in result["audio"]]
    result = {**result, "audio": np.stack([take for take, _ in done]), "finishes": [info for _, info in done],
              "timings": {**result["timings"], "finish_s": round(time.perf_counter() - started, 3)}}  # fmt: skip
    return takes.write_takes(job.mode, result, job.params, job.seeds)


def prepare_generate(
    prompt: str = "",
    lyrics: str = "",
    audio_duration: float = 30.0,
    bpm: float | None = None,
    key_scale: str = AUTO,
    time_signature: str = AUTO,
    vocal_language: str = UNKNOWN,
    seed: int = -1,
    inference_steps: int | None = None,
    guidance_scale: float | None = None,
    shift: float | None = None,
    batch_size: int = 1,
    audio_format: str = "wav",
    reference_audio: str | None = None,
    lora: str | None = None,
    lora_scale: float = 1.0,
    think: bool | None = None,
    auto_length: bool = False,
    rewrite_caption: bool = True,
    plan: str | dict[str, Any] = "",
    loudness: float | str = mastering.DEFAULT_LUFS,
    fade_in: float = 0.0,
    fade_out: float = 0.0,
    lora_preset: str | None = None,
) -> Job:
    """Text to music (``reference_audio`` lends a timbre). ``think``: the 5 Hz planner plans first (its
    length with ``auto_length``, its caption with ``rewrite_caption``; a take's ``plan`` skips the
    thinking). Every take is finished at ``loudness`` LUFS under -1 dBTP, after its fades."""
    variant = models.active_variant()
    prompt, lyrics = _text(prompt, lyrics)
    with about("think"):
        thinking = check_think(think)
    with about("audio_duration"):
        duration = check_length(audio_duration, auto_length, thinking)
    steps, guidance, shift_value = check_sampling(inference_steps, guidance_scale, shift, variant)
    with about("batch_size"):
        n_takes = check_takes(batch_size)
    music = _musical(bpm, key_scale, time_signature)
    with about("vocal_language"):
        language = sung_language(check_language(vocal_language), lyrics)
    check_lyric_tokens(lyrics, language)
    with about("audio_format"):
        fmt = check_format(audio_format)
    reference = _source(reference_audio, "timbre reference", "reference_audio") if reference_audio else None
    adapter = check_lora(lora, lora_scale, lora_preset)
    with about("seed"):
        seeds = seeds_for(seed, n_takes)
    finishing, finish_params = check_finish(loudness, fade_in, fade_out)
    params = {"prompt": prompt, "lyrics": lyrics, "think": thinking, "audio_duration": -1 if duration is None else duration,
              "bpm": music["bpm"], "key_scale": music["keyscale"], "time_signature": music["timesignature"],
              "vocal_language": language, "inference_steps": steps, "guidance_scale": guidance, "shift": shift_value,
              "batch_size": n_takes, "audio_format": fmt,
              "reference_audio": Path(str(reference_audio)).name if reference is not None else None,
              **_lora_params(adapter), **finish_params, "seed": seeds[0]}  # fmt: skip
    longest = duration if duration is not None else MAX_SECONDS
    request = {
        "prompt": prompt,
        "lyrics": lyrics or INSTRUMENTAL_TAG,
        # Whole latent frames the pipeline computes back (``good_frames``); the take is trimmed after.
        "audio_duration": audio.good_frames(math.ceil(longest * audio.LATENT_RATE)) / audio.LATENT_RATE,
        "reference_audio": reference,
        "vocal_language": language,
        "num_inference_steps": steps,
        "guidance_scale": guidance,
        "shift": shift_value,
        **music,
        "task_type": "text2music",
        "seeds": seeds,
        "lora": adapter,
    }
    if thinking:
        request["plan"] = _plan_args(prompt, lyrics, duration, music, rewrite_caption, plan, n_takes)
        params.update(rewrite_caption=request["plan"]["rewrite_caption"], plan_given=bool(request["plan"]["given"]))
        if duration is None:
            params["longest"] = request["plan"]["longest"]
    elif str(plan or "").strip():
        raise InputError("A plan is what Think follows: turn Think on, or clear the plan.", "plan")
    n = int(round(longest * audio.SAMPLE_RATE))
    return Job("generate", params, request, seeds, lambda take: take[:, :n], finishing)


def _plan_args(caption: str, lyrics: str, seconds: float | None, music: dict[str, Any], rewrite: Any, plan: Any,
               takes: int) -> dict[str, Any]:  # fmt: skip
    """What the planner is given: the visitor's caption and lyrics (``[Instrumental]`` for none, as
    upstream's planner and DiT both see it), the length (None: Think chooses), the metadata the
    visitor fixed, whether Think may rewrite the caption, and a plan brought back from a take
    (with that take's place in its batch, to remake it alone as it was made)."""
    with about("rewrite_caption"):
        rewrite = check_switch(rewrite, "Let Think rewrite the caption")
    with about("plan"):
        given = check_plan(plan)
    # Where Think chooses the length, a plan brought back has chosen it: the song's length, bounded as
    # any other (``budget``); else Think may choose up to the longest (bounded there too).
    longest = {"longest": int(given[0]["duration"] if given else MAX_SECONDS)} if seconds is None else {}
    return {
        **longest,
        "caption": caption,
        "lyrics": lyrics or INSTRUMENTAL_TAG,
        "seconds": seconds,
        "fixed": dict(music),
        "rewrite_caption": rewrite,
        "given": given[0] if given else None,
        "layout": given[1] if given and takes == 1 else None,
    }


def _text(prompt: Any, lyrics: Any, mode: str = "generate") -> tuple[str, str]:
    # Too long lyrics are the lyrics' fault; an empty pair or a long caption is the caption's.
    with about("lyrics" if len(str(lyrics or "").strip()) > MAX_LYRICS_CHARS else "prompt"):
        return check_text(prompt, lyrics, mode)


def _lora_params(adapter: dict[str, Any] | None) -> dict[str, Any]:
    if not adapter:
        return {"lora": None}
    # A preset is recorded by its Hub repo (what the take was made with) and its name (what brings it back).
    preset = {"lora_preset": adapter["preset"], "lora_repo": adapter["repo"]} if adapter.get("preset") else {}
    return {"lora": adapter["name"], "lora_scale": adapter["scale"], **preset}


def _musical(bpm: Any, key_scale: Any, time_signature: Any) -> dict[str, Any]:
    """BPM, key and time signature as the pipeline takes them (``None`` = the model chooses)."""
    with about("bpm"):
        bpm_value = check_bpm(bpm)
    with about("key_scale"):
        key = check_key(key_scale)
    with about("time_signature"):
        meter = check_time_signature(time_signature)
    return {"bpm": bpm_value, "keyscale": key, "timesignature": meter}


def _need_source(path: Any) -> None:
    # Before any other check: with no song, "upload a song" is the first thing to do.
    if path is None or str(path).strip() == "":
        raise InputError("Please upload a song first.", "src_audio")


def _source(path: Any, what: str = "song", param: str = "src_audio") -> np.ndarray:
    with about(param):
        return uploads.load(path, what)


def _pad_to_frames(x: np.ndarray, n: int | None = None) -> np.ndarray:
    n = x.shape[-1] if n is None else n
    return audio.fit(x, audio.good_frames(-(-n // audio.HOP)) * audio.HOP)


def _common(src_audio: Any, prompt: Any, lyrics: Any, vocal_language: Any, bpm: Any, key_scale: Any,
            time_signature: Any, seed: Any, steps: Any, guidance: Any, fmt: Any, lora: Any, lora_scale: Any,
            need_text: str | None, lora_preset: Any = None):  # fmt: skip
    """The checks and settings Cover, Extend and Edit share (the song itself is loaded by each);
    ``need_text``: the mode whose caption or lyrics must not both be empty, or None."""
    _need_source(src_audio)
    music = _musical(bpm, key_scale, time_signature)
    variant = models.active_variant()
    prompt = str(prompt or "").strip()
    lyrics = str(lyrics or "").strip()
    if need_text:
        prompt, lyrics = _text(prompt, lyrics, need_text)
    elif len(prompt) > MAX_CAPTION_CHARS or len(lyrics) > MAX_LYRICS_CHARS:
        _text(prompt or "-", lyrics)
    with about("vocal_language"):
        language = sung_language(check_language(vocal_language), lyrics)
    check_lyric_tokens(lyrics, language)
    n_steps, guidance_value, shift_value = check_sampling(steps, guidance, None, variant)
    with about("audio_format"):
        audio_format = check_format(fmt)
    adapter = check_lora(lora, lora_scale, lora_preset)
    with about("seed"):
        seeds = seeds_for(seed, 1)
    params = {
        "prompt": prompt,
        "lyrics": lyrics,
        "vocal_language": language,
        "inference_steps": n_steps,
        "guidance_scale": guidance_value,
        "shift": shift_value,
        "batch_size": 1,
        "audio_format": audio_format,
        "bpm": music["bpm"],
        "key_scale": music["keyscale"],
        "time_signature": music["timesignature"],
        **_lora_params(adapter),
        "seed": seeds[0],
    }
    request = {
        "prompt": prompt,
        "lyrics": lyrics or INSTRUMENTAL_TAG,
        "vocal_language": language,
        "num_inference_steps": n_steps,
        "guidance_scale": guidance_value,
        "shift": shift_value,
        **music,
        "seeds": seeds,
        "lora": adapter,
    }
    return params, request, seeds


def prepare_cover(
    src_audio: str | None = None,
    prompt: str = "",
    lyrics: str = "",
    vocal_language: str = UNKNOWN,
    bpm: float | None = None,
    key_scale: str = AUTO,
    time_signature: str = AUTO,
    audio_cover_strength: float = 0.6,
    reference_audio: str | None = None,
    seed: int = -1,
    inference_steps: int | None = None,
    guidance_scale: float | None = None,
    audio_format: str = "wav",
    lora: str | None = None,
    lora_scale: float = 1.0,
    loudness: float | str = mastering.DEFAULT_LUFS,
    fade_in: float = 0.0,
    fade_out: float = 0.0,
    lora_preset: str | None = None,
) -> Job:
    """A new rendition of ``src_audio`` in the style of ``prompt``, as long as the source."""
    params, request, seeds = _common(
        src_audio, prompt, lyrics, vocal_language, bpm, key_scale, time_signature, seed, inference_steps,
        guidance_scale, audio_format, lora, lora_scale, "cover", lora_preset,
    )  # fmt: skip
    with about("audio_cover_strength"):
        strength = in_range(audio_cover_strength, "Cover strength", 0.0, 1.0)
    finishing, finish_params = check_finish(loudness, fade_in, fade_out)
    source = _source(src_audio)
    reference = _source(reference_audio, "timbre reference", "reference_audio") if reference_audio else None
    n = source.shape[-1]
    params.update(
        audio_cover_strength=strength,
        source_seconds=round(audio.seconds(source), 3),
        audio_duration=round(audio.seconds(source), 3),
        src_audio=Path(str(src_audio)).name,
        reference_audio=Path(str(reference_audio)).name if reference is not None else None,
        **finish_params,
    )
    # The model is told the real length ("duration: N seconds" in its prompt), as upstream does;
    # the pipeline's own default would say 60 s whatever the song.
    request.update(
        task_type="cover",
        audio_duration=audio.seconds(source),
        src_audio=_pad_to_frames(source),
        reference_audio=reference,
        audio_cover_strength=strength,
    )
    return Job("cover", params, request, seeds, lambda take: audio.fit(take, n), finishing)


def prepare_extend(
    src_audio: str | None = None,
    prompt: str = "",
    lyrics: str = "",
    vocal_language: str = UNKNOWN,
    bpm: float | None = None,
    key_scale: str = AUTO,
    time_signature: str = AUTO,
    extend_seconds: float = 30.0,
    seed: int = -1,
    inference_steps: int | None = None,
    guidance_scale: float | None = None,
    audio_format: str = "wav",
    lora: str | None = None,
    lora_scale: float = 1.0,
    fade_in: float = 0.0,
    fade_out: float = 0.0,
    lora_preset: str | None = None,
) -> Job:
    """``src_audio`` followed by ``extend_seconds`` of new music; the original part is kept as is."""
    params, request, seeds = _common(
        src_audio, prompt, lyrics, vocal_language, bpm, key_scale, time_signature, seed, inference_steps,
        guidance_scale, audio_format, lora, lora_scale, None, lora_preset,
    )  # fmt: skip
    with about("extend_seconds"):
        more = in_range(extend_seconds, "Seconds to add", *EXTEND_RANGE, " s")
    finishing, finish_params = check_finish(None, fade_in, fade_out, whole=False)
    source = _source(src_audio)
    n = source.shape[-1]
    total = n + int(round(more * audio.SAMPLE_RATE))
    if total > MAX_SECONDS * audio.SAMPLE_RATE:
        raise InputError(
            f"The song is {n / audio.SAMPLE_RATE:.0f} s; adding {more:g} s would make it longer than "
            f"{MAX_SECONDS / 60:.0f} minutes. Add at most {MAX_SECONDS - n / audio.SAMPLE_RATE:.0f} s.",
            "extend_seconds",
        )
    seam = n / audio.SAMPLE_RATE
    params.update(
        extend_seconds=more,
        source_seconds=round(seam, 3),
        audio_duration=round(total / audio.SAMPLE_RATE, 3),
        src_audio=Path(str(src_audio)).name,
        **finish_params,
    )
    # Pad with silence to the new length and repaint everything after the original.
    request.update(
        task_type="repaint",
        audio_duration=total / audio.SAMPLE_RATE,
        src_audio=_pad_to_frames(source, total),
        repainting_start=seam,
        repainting_end=-1,
    )
    fade = int(SEAM_SECONDS * audio.SAMPLE_RATE)

    def post(take: np.ndarray) -> np.ndarray:
        take = audio.gain_match(audio.fit(take, total), take[:, : n - fade], source[:, : n - fade])
        # The seam crossfade sits in the last few ms of the original, where the model's
        # rendition of the source overlaps it; everything before that is the source itself.
        return audio.splice(source, take, max(0, n - fade), total, fade)

    return Job("extend", params, request, seeds, post, finishing, (max(0, n - fade), total))


def prepare_edit(
    src_audio: str | None = None,
    prompt: str = "",
    lyrics: str = "",
    vocal_language: str = UNKNOWN,
    bpm: float | None = None,
    key_scale: str = AUTO,
    time_signature: str = AUTO,
    repainting_start: float = 0.0,
    repainting_end: float = 10.0,
    seed: int = -1,
    inference_steps: int | None = None,
    guidance_scale: float | None = None,
    audio_format: str = "wav",
    lora: str | None = None,
    lora_scale: float = 1.0,
    fade_in: float = 0.0,
    fade_out: float = 0.0,
    lora_preset: str | None = None,
) -> Job:
    """Regenerate ``[repainting_start, repainting_end)`` of ``src_audio``; the rest is the original."""
    params, request, seeds = _common(
        src_audio, prompt, lyrics, vocal_language, bpm, key_scale, time_signature, seed, inference_steps,
        guidance_scale, audio_format, lora, lora_scale, "edit", lora_preset,
    )  # fmt: skip
    with about("repainting_start"):
        start = as_number(repainting_start, "Region start")
    with about("repainting_end"):
        end = as_number(repainting_end, "Region end")
    finishing, finish_params = check_finish(None, fade_in, fade_out, whole=False)
    source = _source(src_audio)
    n = source.shape[-1]
    length = n / audio.SAMPLE_RATE
    _check_region(start, end, length)
    if start >= end:
        raise InputError(f"The region must start before it ends (start {start:g} s, end {end:g} s).", "repainting_end")
    if end - start < MIN_REGION_SECONDS:
        raise InputError(
            f"The region is {end - start:.2f} s; make it at least {MIN_REGION_SECONDS:g} s long.", "repainting_end"
        )
    params.update(
        repainting_start=start,
        repainting_end=end,
        source_seconds=round(length, 3),
        audio_duration=round(length, 3),
        src_audio=Path(str(src_audio)).name,
        **finish_params,
    )
    request.update(
        task_type="repaint",
        audio_duration=length,
        src_audio=_pad_to_frames(source),
        repainting_start=start,
        repainting_end=end,
    )
    a, b = int(round(start * audio.SAMPLE_RATE)), min(n, int(round(end * audio.SAMPLE_RATE)))
    fade = int(SEAM_SECONDS * audio.SAMPLE_RATE)
    outside = np.concatenate([np.arange(0, a), np.arange(b, n)])

    def post(take: np.ndarray) -> np.ndarray:
        take = audio.fit(take, n)
        if outside.size:
            take = audio.gain_match(take, take[:, outside], source[:, outside])
        return audio.splice(source, take, a, b, fade)

    return Job("edit", params, request, seeds, post, finishing, (max(0, a - fade), min(n, b + fade)))


def _check_region(start: float, end: float, length: float) -> None:
    """Refuse (not clip: nobody chose a stretch cut short) a region past the song, saying what lies outside."""
    region, song, pick = (
        f"The region {start:g}–{end:g} s",
        f"the song is {length:.1f} s long",
        f"Pick a region between 0 and {length:.1f} s.",
    )
    before, after = start < 0, end > length + 1e-6
    if before and after:
        message = f"{region} reaches past both ends of the song: it starts {-start:g} s before it and ends {end - length:.1f} s after it ({song}). {pick}"
    elif before and end <= 0:
        message = f"{region} lies wholly before the song's start. {pick}"
    elif before:
        message = f"{region} starts {-start:g} s before the song does: only 0–{end:g} s of it lies in the song. Start it at 0 s or later."
    elif after and start >= length:
        message = f"{region} lies wholly after the song's end ({song}). {pick}"
    elif after:
        message = f"{region} ends {end - length:.1f} s after the song does ({song}): only {start:g}–{length:.1f} s of it lies in the song. End it at {length:.1f} s or sooner."
    else:
        return
    raise InputError(message, "repainting_start" if before else "repainting_end")


PREPARE: dict[str, Callable[..., Job]] = {
    "generate": prepare_generate,
    "cover": prepare_cover,
    "extend": prepare_extend,
    "edit": prepare_edit,
}
