"""One preparer per mode, and the finish every mode shares; all of it runs on the CPU.

A request reads as one straight line: ``prepare_<mode>(...)`` validates the visitor's settings and
returns a ``Job`` (the record of what was asked, the picklable pipeline request and the
post-processing); the GPU entry (``zerogpu.run_music``) runs ``job.request``; ``finish(job, result)``
fits, gain-matches and splices the takes and writes the files. Nothing here takes a GPU slot.
Every problem a visitor can fix is raised as ``gr.Error`` in words a musician understands.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import secrets
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

import audio
import backend
import models
import tooltips as tips

MIN_SECONDS = 10.0
MAX_SECONDS = 600.0
BPM_RANGE = (30, 300)
STEPS_RANGE = (1, 200)
GUIDANCE_RANGE = (1.0, 20.0)
SHIFT_RANGE = (1.0, 5.0)
MAX_TAKES = 4
MAX_CAPTION_CHARS = 512
MAX_LYRICS_CHARS = 4096
EXTEND_RANGE = (5.0, 240.0)
MIN_REGION_SECONDS = 1.0
# Equal-power crossfade at each seam between kept and new audio.
SEAM_SECONDS = 0.05
# Samples per latent frame (VAE hop): sources are padded to whole frames before encoding.
HOP = 1920
AUTO = "auto"
INSTRUMENTAL_TAG = "[Instrumental]"

_NOTES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
KEYS = [f"{n} {m}" for m in ("major", "minor") for n in _NOTES]
TIME_SIGNATURES = ["2", "3", "4", "6"]
# ACE-Step 1.5's vocal languages (ISO codes as the model was trained on them).
LANGUAGES = {
    "en": "English", "zh": "Chinese (Mandarin)", "yue": "Cantonese", "ja": "Japanese", "ko": "Korean",
    "es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese",
    "ru": "Russian", "ar": "Arabic", "az": "Azerbaijani", "bg": "Bulgarian", "bn": "Bengali",
    "ca": "Catalan", "cs": "Czech", "da": "Danish", "el": "Greek", "fa": "Persian",
    "fi": "Finnish", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "ht": "Haitian Creole",
    "hu": "Hungarian", "id": "Indonesian", "is": "Icelandic", "la": "Latin", "lt": "Lithuanian",
    "ms": "Malay", "ne": "Nepali", "nl": "Dutch", "no": "Norwegian", "pa": "Punjabi",
    "pl": "Polish", "ro": "Romanian", "sa": "Sanskrit", "sk": "Slovak", "sr": "Serbian",
    "sv": "Swedish", "sw": "Swahili", "ta": "Tamil", "te": "Telugu", "th": "Thai",
    "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese",
}  # fmt: skip
FORMATS = ["wav", "flac", "mp3"]


def output_dir() -> Path:
    """The one folder the studio writes to and serves (``ACE_STUDIO_OUTPUT_DIR``)."""
    default = Path(__file__).resolve().parent / "outputs"
    path = Path(os.environ.get("ACE_STUDIO_OUTPUT_DIR", default)).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def output_max_age_hours() -> float:
    return float(os.environ.get("ACE_STUDIO_OUTPUT_MAX_AGE_HOURS", "24"))


# What the studio writes, and nothing else: only these are ever deleted by the clean-up.
_DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OWN_FILE = re.compile(
    r"^(?:\.partial-)?(?:generate|cover|extend|edit)-\d{6}-[0-9a-f]{6}-take\d+-seed\d+\.(?:wav|flac|mp3|json)$"
)


def clean_outputs(max_age_hours: float | None = None, now: float | None = None) -> int:
    """Delete the studio's own files older than the age limit so the disk never fills; returns the count.

    Only files named as the studio names its takes, in its day folders, are touched; anything else
    in the output folder is left alone. Today's folder is never removed, so a take being written now
    always has its folder.
    """
    limit = (output_max_age_hours() if max_age_hours is None else max_age_hours) * 3600
    now = time.time() if now is None else now
    root = output_dir()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    removed = 0
    for folder in (p for p in root.iterdir() if p.is_dir() and _DAY_FOLDER.match(p.name)):
        for path in folder.iterdir():
            if _OWN_FILE.match(path.name) and path.is_file() and now - path.stat().st_mtime > limit:
                path.unlink(missing_ok=True)
                removed += 1
        if folder.name != today:
            with contextlib.suppress(OSError):  # not empty, or removed by a concurrent clean-up
                folder.rmdir()
    return removed


# A long-running studio must also drop old files, not only at start-up; walking the whole output
# tree on every write would be wasted I/O when the age limit is hours.
_CLEAN_EVERY_S = 600.0
_last_clean = 0.0


def _clean_now_and_then() -> None:
    global _last_clean
    if time.time() - _last_clean >= _CLEAN_EVERY_S:
        _last_clean = time.time()
        clean_outputs()


# ---------------------------------------------------------------- validation

# The longest text each endpoint parameter takes, checked before a request joins the queue; a
# parameter not named here takes at most SHORT_TEXT characters (keys, languages, formats, numbers
# sent as text). Without a limit a 1 MB field became a million-token prompt on the only GPU.
TEXT_LIMITS = {"prompt": MAX_CAPTION_CHARS, "lyrics": MAX_LYRICS_CHARS, "theme": 1000, "genre": 200, "mood": 200,
               "custom_sections": 500}  # fmt: skip
SHORT_TEXT = 64
# File parameters arrive as server paths, not text a visitor typed.
FILE_PARAMS = {"src_audio", "reference_audio", "lora"}


def check_text_lengths(values: dict[str, Any]) -> None:
    """Refuse any text parameter longer than its limit, naming the parameter."""
    for name, value in values.items():
        if name in FILE_PARAMS or not isinstance(value, str):
            continue
        limit = TEXT_LIMITS.get(name, SHORT_TEXT)
        if len(value) > limit:
            raise InputError(f"This field takes up to {limit} characters; it has {len(value)}. Shorten it.", name)


def shown(value: Any, limit: int = 40) -> str:
    """``value`` quoted for a message, cut short: a message never echoes a huge input back."""
    text = repr(value) if isinstance(value, str) else repr(str(value))
    return text if len(text) <= limit else text[: limit - 2] + "…'"


class InputError(gr.Error):
    """A ``gr.Error`` that knows which endpoint parameter is at fault, so the page can mark that field."""

    def __init__(self, message: str, param: str, title: str = "Error") -> None:
        super().__init__(message, title=title)
        self.param = param

    def __reduce__(self) -> tuple[Any, ...]:
        # ZeroGPU pickles a worker's exception back to the page; the default reduce would call
        # ``InputError(message)`` and lose the parameter (or fail on the missing argument).
        return (type(self), (self.message, self.param, self.title))


@contextlib.contextmanager
def about(param: str) -> Iterator[None]:
    """Tag any visitor error raised inside with the parameter it concerns."""
    try:
        yield
    except InputError:
        raise
    except gr.Error as exc:
        raise InputError(exc.message, param, exc.title) from None
    except (audio.AudioError, backend.BadLora) as exc:
        raise InputError(str(exc), param) from None


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a number.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise gr.Error(f"{name} must be a number.")
    return number


def _in_range(value: Any, name: str, lo: float, hi: float, unit: str = "") -> float:
    number = _number(value, name)
    if not lo <= number <= hi:
        raise gr.Error(f"{name} must be between {lo:g}{unit} and {hi:g}{unit} (you asked for {number:g}{unit}).")
    return number


def check_duration(value: Any) -> float:
    return _in_range(value, "Duration", MIN_SECONDS, MAX_SECONDS, " s")


def check_bpm(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", AUTO)):
        return None
    bpm = _number(value, "BPM")
    if bpm == 0:
        return None
    if not BPM_RANGE[0] <= bpm <= BPM_RANGE[1]:
        raise gr.Error(f"BPM must be between {BPM_RANGE[0]} and {BPM_RANGE[1]}, or 0 for auto (you asked for {bpm:g}).")
    return int(round(bpm))


_KEY_RE = re.compile(r"^\s*([A-Ga-g])\s*([#♯b♭]?)\s*(major|minor|maj|min|m)?\s*$", re.IGNORECASE)


def check_key(value: Any) -> str | None:
    """``None`` for auto, else the key as ``"F# minor"``; accepts ♯/♭ and maj/min/m spellings."""
    text = str(value or "").strip()
    if text.lower() in ("", AUTO):
        return None
    match = _KEY_RE.match(text)
    if not match or (match.group(3) is None):
        raise gr.Error(f"Unknown key {shown(text)}. Pick one like “C major” or “F# minor”, or auto.")
    note, accidental, mode = match.groups()
    accidental = {"♯": "#", "♭": "b"}.get(accidental, accidental)
    mode = "major" if mode.lower() in ("major", "maj") else "minor"
    return f"{note.upper()}{accidental} {mode}"


def check_time_signature(value: Any) -> str | None:
    text = str(value or "").strip().lower()
    if text in ("", AUTO):
        return None
    text = {"2/4": "2", "3/4": "3", "4/4": "4", "6/8": "6"}.get(text, text)
    if text.endswith(".0"):
        text = text[:-2]
    if text not in TIME_SIGNATURES:
        raise gr.Error(f"Unknown time signature {shown(value)}. Use 2, 3, 4 or 6 beats per bar, or auto.")
    return text


def language_code(value: Any) -> str | None:
    """The ISO code for a language given as code or English name ("ja", "Japanese"), or None."""
    text = str(value or "").strip().lower()
    if text in LANGUAGES or text == "unknown":
        return text
    return next((code for code, name in LANGUAGES.items() if name.lower() == text), None)


def check_language(value: Any) -> str:
    code = language_code(value)
    if code is not None:
        return code
    raise gr.Error(f"Unknown vocal language {shown(value)}. Pick one of the studio's {len(LANGUAGES)} languages.")


def check_text(prompt: Any, lyrics: Any) -> tuple[str, str]:
    prompt = str(prompt or "").strip()
    lyrics = str(lyrics or "").strip()
    if not prompt and not lyrics:
        raise gr.Error("Describe the music in the caption or write some lyrics — both are empty.")
    if len(prompt) > MAX_CAPTION_CHARS:
        raise gr.Error(f"The caption is {len(prompt)} characters; keep it under {MAX_CAPTION_CHARS}.")
    if len(lyrics) > MAX_LYRICS_CHARS:
        raise gr.Error(
            f"The lyrics are {len(lyrics)} characters; the model takes up to {MAX_LYRICS_CHARS}. Shorten them."
        )
    return prompt, lyrics


def check_sampling(steps: Any, guidance: Any, shift: Any, variant: models.Variant) -> tuple[int, float, float]:
    """Steps, guidance and shift (``None`` = the variant's default); an error names its parameter."""
    with about("inference_steps"):
        n = _in_range(variant.steps if steps is None else steps, "Steps", *STEPS_RANGE)
        if n != int(n):
            raise gr.Error(f"Steps must be a whole number (you asked for {n:g}).")
    with about("guidance_scale"):
        guidance_value = _in_range(variant.guidance if guidance is None else guidance, "Guidance", *GUIDANCE_RANGE)
    with about("shift"):
        shift_value = _in_range(variant.shift if shift is None else shift, "Shift", *SHIFT_RANGE)
    return int(n), guidance_value, shift_value


def sung_language(language: str, lyrics: str) -> str:
    """The language the model is told: upstream's ``"unknown"`` when nothing is sung."""
    words = lyrics.strip()
    return "unknown" if not words or words.lower() == INSTRUMENTAL_TAG.lower() else language


def check_lyric_tokens(lyrics: str, language: str) -> None:
    """Lyrics the text encoder would cut short are refused before the queue once the model is loaded
    (its tokenizer is small and runs on the CPU); the run checks again in any case."""
    if not lyrics or not backend.is_warm():
        return
    n = backend.get_backend().lyric_tokens(lyrics, language)
    if n > backend.MAX_LYRIC_TOKENS:
        raise InputError(
            f"The lyrics are {n} tokens long; the model reads at most {backend.MAX_LYRIC_TOKENS}. Shorten them.",
            "lyrics",
        )


def check_takes(value: Any) -> int:
    n = _in_range(value if value is not None else 1, "Takes", 1, MAX_TAKES)
    if n != int(n):
        raise gr.Error("Takes must be a whole number from 1 to 4.")
    return int(n)


def check_format(value: Any) -> str:
    fmt = str(value or "wav").strip().lower().lstrip(".")
    if fmt not in FORMATS:
        raise gr.Error(f"Unknown output format {shown(value)}; choose WAV, FLAC or MP3.")
    return fmt


LORA_SCALE_RANGE = (0.0, 2.0)


def check_lora(path: Any, scale: Any) -> dict[str, Any] | None:
    """``{"path", "scale", "name"}`` for an uploaded LoRA file, or None when there is none.

    The file itself is always checked; whether it fits the model is checked here once the model is
    loaded, and in any case again inside the run (``backend.check_lora_fits``).
    """
    if path is None or str(path).strip() == "":
        return None
    with about("lora_scale"):
        weight = _in_range(1.0 if scale is None else scale, "LoRA strength", *LORA_SCALE_RANGE)
    with about("lora"):
        if backend.is_warm():
            # Cheap once the model is in memory, and it saves the visitor a GPU turn for a misfit.
            backend.get_backend().lora_state_dict(str(path))
        else:
            backend.read_lora_header(str(path))
    return {"path": str(path), "scale": weight, "name": Path(str(path)).name}


def seeds_for(seed: Any, takes: int) -> list[int]:
    """One seed per take: ``seed``, ``seed + 1`` …; -1 (or empty) draws a random starting seed."""
    base = -1 if seed is None or seed == "" else _number(seed, "Seed")
    if base != int(base) or base < -1 or base >= 2**32:
        raise gr.Error("Seed must be a whole number from 0 to 4294967295, or -1 for random.")
    start = secrets.randbelow(2**31) if base == -1 else int(base)
    return [(start + i) % 2**32 for i in range(takes)]


# ---------------------------------------------------------------- running


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the backend's own exceptions into picklable ``gr.Error``s a musician can act on.

    Used inside the GPU call, so the words survive ZeroGPU's trip back from the worker (which
    replaces any other exception by its class name).
    """
    try:
        yield
    except gr.Error:
        raise
    except backend.Cancelled as exc:
        raise gr.Error(f"{exc} Nothing was saved.", title="Stopped") from None
    except backend.BadLora as exc:
        raise InputError(str(exc), "lora") from None
    except backend.LyricsTooLong as exc:
        raise InputError(str(exc), "lyrics") from None
    except (audio.AudioError, backend.ModeUnavailable, backend.BrokenOutput) as exc:
        raise gr.Error(str(exc)) from None
    except models.ModelLoadError as exc:
        # Stays on the page until dismissed (duration=None): it says what to do next.
        raise gr.Error(tips.MODEL_MISSING.format(error=exc), title="Model not available", duration=None) from None
    except Exception as exc:
        # Anything else (out of GPU memory, a pipeline error) would reach the page as a bare class
        # name from a ZeroGPU worker; the log keeps the traceback.
        traceback.print_exc()
        raise gr.Error(
            f"The model stopped with an error ({type(exc).__name__}). Nothing was saved; try a shorter song, "
            "fewer steps or fewer takes.",
            title="Generation failed",
        ) from None


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


def finish(job: Job, result: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Post-process the pipeline's takes and write them; returns the paths and the call's record."""
    result = {**result, "audio": np.stack([job.post(take) for take in result["audio"]])}
    return write_takes(job.mode, result, job.params, job.seeds)


class SaveError(gr.Error):
    """The takes could not be written; nothing of them is left on disk."""


def _why_not_saved(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "No space" in str(exc):
        return "the disk of the studio's output folder is full"
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "the studio may not write to its output folder (it is read-only)"
    return f"writing to the output folder failed ({type(exc).__name__})"


def write_takes(
    mode: str,
    result: dict[str, Any],
    params: dict[str, Any],
    seeds: list[int],
) -> tuple[list[str], dict[str, Any]]:
    """Save every take with a JSON record beside it; return the audio paths and the call's record.

    Each file is written under a temporary name and renamed once complete, so a full or read-only
    disk leaves neither partial nor empty files; then the visitor is told why nothing was saved.
    Records name files relative to the output folder (no server paths in what a visitor downloads).
    """
    started = time.perf_counter()
    _clean_now_and_then()
    day = datetime.now(UTC)
    root = output_dir()
    folder = root / day.strftime("%Y-%m-%d")
    stamp = day.strftime("%H%M%S") + "-" + secrets.token_hex(3)
    fmt = params["audio_format"]
    names = [f"{mode}-{stamp}-take{i}-seed{seed}" for i, seed in enumerate(seeds, start=1)]
    paths = [folder / f"{name}.{fmt}" for name in names]
    record = {
        "mode": mode,
        "created": day.isoformat(timespec="seconds"),
        "params": params,
        "model": result["model"],
        "timings": dict(result["timings"]),
        "sample_rate": audio.SAMPLE_RATE,
        "channels": 2,
        "takes": [
            {
                "take": i,
                "seed": seed,
                "audio": path.relative_to(root).as_posix(),
                "metadata": path.with_suffix(".json").relative_to(root).as_posix(),
                "seconds": round(audio.seconds(take), 3),
                **({"planner": result["planners"][i - 1]} if "planners" in result else {}),
            }
            for i, (path, seed, take) in enumerate(zip(paths, seeds, result["audio"], strict=True), start=1)
        ],
    }
    done: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for take, path in zip(result["audio"], paths, strict=True):
            partial = folder / f".partial-{path.name}"
            done.append(partial)  # before writing: a write that fails halfway leaves this behind
            audio.save(take, partial, fmt)
            os.replace(partial, path)
            done[-1] = path
        record["timings"]["write_s"] = round(time.perf_counter() - started, 3)
        for path, entry in zip(paths, record["takes"], strict=True):
            own = {**record, "take": entry["take"], "seed": entry["seed"], "audio": entry["audio"]}
            if "planner" in entry:
                own["planner"] = entry["planner"]
            own["params"] = {**params, "seed": entry["seed"], "batch_size": 1}
            meta, partial_meta = path.with_suffix(".json"), folder / f".partial-{path.stem}.json"
            done.append(partial_meta)
            partial_meta.write_text(json.dumps(own, indent=2, ensure_ascii=False))
            os.replace(partial_meta, meta)
            done[-1] = meta
    except Exception as exc:  # a full disk shows up as OSError or as soundfile's own error type
        for path in done:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        raise SaveError(
            f"Your song was made but could not be saved: {_why_not_saved(exc)}. Nothing was kept; "
            "please tell whoever runs this studio, then try again.",
            title="Not saved",
        ) from None
    return [str(p) for p in paths], record


def prepare_generate(
    prompt: str = "",
    lyrics: str = "",
    audio_duration: float = 30.0,
    bpm: float | None = None,
    key_scale: str = AUTO,
    time_signature: str = AUTO,
    vocal_language: str = "en",
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
) -> Job:
    """Text to music; ``reference_audio`` optionally lends its voice or instrument timbre. With
    ``think`` (on by default where a planner is set up) ACE-Step's 5 Hz planner first writes the
    song's plan and blueprint."""
    variant = models.active_variant()
    prompt, lyrics = _text(prompt, lyrics)
    with about("audio_duration"):
        duration = check_duration(audio_duration)
    steps, guidance, shift_value = check_sampling(inference_steps, guidance_scale, shift, variant)
    with about("batch_size"):
        takes = check_takes(batch_size)
    music = _musical(bpm, key_scale, time_signature)
    bpm_value, key, meter = music["bpm"], music["keyscale"], music["timesignature"]
    with about("vocal_language"):
        language = sung_language(check_language(vocal_language), lyrics)
    check_lyric_tokens(lyrics, language)
    with about("audio_format"):
        fmt = check_format(audio_format)
    reference = _source(reference_audio, "timbre reference", "reference_audio") if reference_audio else None
    adapter = check_lora(lora, lora_scale)
    with about("seed"):
        seeds = seeds_for(seed, takes)
    with about("think"):
        thinking = check_think(think)
    params = {
        "prompt": prompt,
        "lyrics": lyrics,
        "think": thinking,
        "audio_duration": duration,
        "bpm": bpm_value,
        "key_scale": key,
        "time_signature": meter,
        "vocal_language": language,
        "inference_steps": steps,
        "guidance_scale": guidance,
        "shift": shift_value,
        "batch_size": takes,
        "audio_format": fmt,
        "reference_audio": Path(str(reference_audio)).name if reference is not None else None,
        **_lora_params(adapter),
        "seed": seeds[0],
    }
    request = {
        "prompt": prompt,
        "lyrics": lyrics or INSTRUMENTAL_TAG,
        # The length in whole latent frames the pipeline can compute back (see ``good_frames``);
        # the take is trimmed to the exact duration afterwards.
        "audio_duration": good_frames(math.ceil(duration * LATENT_RATE)) / LATENT_RATE,
        "reference_audio": reference,
        "vocal_language": language,
        "num_inference_steps": steps,
        "guidance_scale": guidance,
        "shift": shift_value,
        "bpm": bpm_value,
        "keyscale": key,
        "timesignature": meter,
        "task_type": "text2music",
        "seeds": seeds,
        "lora": adapter,
    }
    if thinking:
        request["plan"] = {
            "caption": prompt,
            "lyrics": lyrics,  # as typed (upstream's planner sees empty lyrics as empty)
            "seconds": duration,
            "fixed": {"bpm": bpm_value, "keyscale": key, "timesignature": meter},
        }
    n = int(round(duration * audio.SAMPLE_RATE))
    return Job("generate", params, request, seeds, lambda take: take[:, :n])


def check_think(value: Any) -> bool:
    """Whether the planner runs: ``None`` means "when one is set up"."""
    import planner

    if value is None:
        return planner.enabled()
    if isinstance(value, str):
        if value.strip().lower() not in ("true", "false", "1", "0", ""):
            raise gr.Error(f"Think is a switch: true or false (you sent {shown(value)}).")
        value = value.strip().lower() in ("true", "1")
    if value and not planner.enabled():
        raise gr.Error(
            "Think is not available here: this studio runs without ACE-Step's planner "
            "(ACE_STUDIO_PLANNER_MODEL=none). Turn Think off."
        )
    return bool(value)


def _text(prompt: Any, lyrics: Any) -> tuple[str, str]:
    # Too long lyrics are the lyrics' fault; an empty pair or a long caption is the caption's.
    with about("lyrics" if len(str(lyrics or "").strip()) > MAX_LYRICS_CHARS else "prompt"):
        return check_text(prompt, lyrics)


def _lora_params(adapter: dict[str, Any] | None) -> dict[str, Any]:
    return {"lora": adapter["name"], "lora_scale": adapter["scale"]} if adapter else {"lora": None}


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
        return audio.load(path, what)


LATENT_RATE = 25  # latent frames per second (48 kHz / HOP)


def good_frames(frames: int) -> int:
    """The first latent frame count from ``frames`` up that the pipeline computes back exactly.

    diffusers turns a frame count into seconds and back (``ceil(seconds × 25)``); for about 6 % of
    counts (7, 14, 28, …, 411, 415, …) float rounding adds a frame, which then no longer matches
    the source's latents and the call fails. Padding a frame or two more avoids them.
    """
    while math.ceil((frames / LATENT_RATE) * LATENT_RATE) != frames:
        frames += 1
    return frames


def blueprint_codes(seconds: float) -> int:
    """How many planner codes (five a second, five latent frames each) cover ``seconds``: the
    first count from there whose frames the pipeline computes back exactly (``good_frames``)."""
    codes = math.ceil(round(seconds * 5, 6))
    while good_frames(5 * codes) != 5 * codes:
        codes += 1
    return codes


def _pad_to_frames(x: np.ndarray, n: int | None = None) -> np.ndarray:
    n = x.shape[-1] if n is None else n
    return audio.fit(x, good_frames(-(-n // HOP)) * HOP)


def _common(src_audio: Any, prompt: Any, lyrics: Any, vocal_language: Any, bpm: Any, key_scale: Any,
            time_signature: Any, seed: Any, steps: Any, guidance: Any, fmt: Any, lora: Any, lora_scale: Any,
            need_text: bool):  # fmt: skip
    """The checks and settings Cover, Extend and Edit share (the song itself is loaded by each)."""
    _need_source(src_audio)
    music = _musical(bpm, key_scale, time_signature)
    variant = models.active_variant()
    prompt = str(prompt or "").strip()
    lyrics = str(lyrics or "").strip()
    if need_text:
        prompt, lyrics = _text(prompt, lyrics)
    elif len(prompt) > MAX_CAPTION_CHARS or len(lyrics) > MAX_LYRICS_CHARS:
        _text(prompt or "-", lyrics)
    with about("vocal_language"):
        language = sung_language(check_language(vocal_language), lyrics)
    check_lyric_tokens(lyrics, language)
    n_steps, guidance_value, shift_value = check_sampling(steps, guidance, None, variant)
    with about("audio_format"):
        audio_format = check_format(fmt)
    adapter = check_lora(lora, lora_scale)
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
    vocal_language: str = "en",
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
) -> Job:
    """A new rendition of ``src_audio`` in the style of ``prompt``, as long as the source."""
    params, request, seeds = _common(
        src_audio, prompt, lyrics, vocal_language, bpm, key_scale, time_signature, seed, inference_steps,
        guidance_scale, audio_format, lora, lora_scale, True,
    )  # fmt: skip
    with about("audio_cover_strength"):
        strength = _in_range(audio_cover_strength, "Cover strength", 0.0, 1.0)
    source = _source(src_audio)
    reference = _source(reference_audio, "timbre reference", "reference_audio") if reference_audio else None
    n = source.shape[-1]
    params.update(
        audio_cover_strength=strength,
        source_seconds=round(audio.seconds(source), 3),
        audio_duration=round(audio.seconds(source), 3),
        src_audio=Path(str(src_audio)).name,
        reference_audio=Path(str(reference_audio)).name if reference is not None else None,
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
    return Job("cover", params, request, seeds, lambda take: audio.fit(take, n))


def prepare_extend(
    src_audio: str | None = None,
    prompt: str = "",
    lyrics: str = "",
    vocal_language: str = "en",
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
) -> Job:
    """``src_audio`` followed by ``extend_seconds`` of new music; the original part is kept as is."""
    params, request, seeds = _common(
        src_audio, prompt, lyrics, vocal_language, bpm, key_scale, time_signature, seed, inference_steps,
        guidance_scale, audio_format, lora, lora_scale, False,
    )  # fmt: skip
    with about("extend_seconds"):
        more = _in_range(extend_seconds, "Seconds to add", *EXTEND_RANGE, " s")
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

    return Job("extend", params, request, seeds, post)


def prepare_edit(
    src_audio: str | None = None,
    prompt: str = "",
    lyrics: str = "",
    vocal_language: str = "en",
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
) -> Job:
    """Regenerate ``[repainting_start, repainting_end)`` of ``src_audio``; the rest is the original."""
    params, request, seeds = _common(
        src_audio, prompt, lyrics, vocal_language, bpm, key_scale, time_signature, seed, inference_steps,
        guidance_scale, audio_format, lora, lora_scale, True,
    )  # fmt: skip
    with about("repainting_start"):
        start = _number(repainting_start, "Region start")
    with about("repainting_end"):
        end = _number(repainting_end, "Region end")
    source = _source(src_audio)
    n = source.shape[-1]
    length = n / audio.SAMPLE_RATE
    if start < 0 or end > length + 1e-6:
        raise InputError(
            f"The region {start:g}–{end:g} s lies outside the song, which is {length:.1f} s long. "
            f"Pick a region between 0 and {length:.1f} s.",
            "repainting_start" if start < 0 else "repainting_end",
        )
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

    return Job("edit", params, request, seeds, post)


PREPARE: dict[str, Callable[..., Job]] = {
    "generate": prepare_generate,
    "cover": prepare_cover,
    "extend": prepare_extend,
    "edit": prepare_edit,
}
