"""*Describe my song*: ACE-Step's 5 Hz planner listens to an uploaded song and writes the studio's fields.

GPU side (``describe_song``, the body of ``describe_gpu``), as upstream's ``understand_music``
(``acestep/inference.py``) over the codes of ``convert_src_audio_to_codes`` (``acestep/handler.py``):
the song becomes its 5 Hz audio codes (``backend.Backend.song_codes``: VAE, then the audio tokenizer),
and the planner, told upstream's understanding instruction with the codes as the user message,
writes its notes (``bpm``, ``caption``, ``duration``, ``keyscale``, ``language``, ``timesignature``,
decoded under Think's constraints: the same field prefix trees and ranges) and, after ``</think>``,
the lyrics as free text. The notes are read and range-checked by Think's own code (``plan_format``).

Page side: ``check`` (the admission check: a song with sound in it, a planner, one request's GPU time) and
``fill``: the fields the visitor left empty get what the planner heard; the measured BPM and key
(``analysis``), and its beats per bar, win over the planner's, and the note says where they differ.

Where it differs from upstream, on purpose (docs/fidelity.md): the song's real length is written
in as its ``duration`` (upstream lets the model guess a number nobody uses); the lyrics are bounded
by the song's length (``lyric_budget``; upstream by 3,500 tokens for notes and lyrics together) and
may not contain chat markers either (upstream bans only audio codes there); the VAE's posterior is
sampled from a fixed seed and so is the planner, so one song is always described the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import gradio as gr
import numpy as np

import analysis
import audio
import backend
import budget
import checks
import devices
import duration_estimate
import error_messages
import generation
import gpu
import messages
import models
import parameters
import planner
import runs
import text_limits
import tooltips as tips
import uploads
from plan_constraints import MAX_CAPTION_TOKENS, ThinkingConstraint, sample
from plan_format import DURATION_RANGE, PlanUnusable, check_plan, cut, parse_lyrics, parse_plan, understand_prompt

# upstream's understand_music: temperature 0.85, no top-k, no top-p, no guidance (cfg 1.0)
TEMPERATURE = 0.85
SEED = 0
# The shortest song it listens to: under about 40 ms the VAE has nothing to encode (its kernel is longer
# than the clip), and under a second the planner hears fewer than five codes.
MIN_SECONDS = 1.0
# The notes' tokens at most: six fields, the caption bounded by the constraint's own cap.
NOTES_BUDGET = MAX_CAPTION_TOKENS + 128
# No song sings more than a few words a second: the lyrics' tokens are bounded by the song's length
# (a fast rap is ~6 tokens a second, section tags and line breaks included), and by what the music
# model reads (``text_limits.MAX_LYRIC_TOKENS``, less its "# Languages … # Lyric" header).
LYRIC_TOKENS_BASE = 64
LYRIC_TOKENS_PER_SECOND = 8
LYRIC_TOKENS_MAX = text_limits.MAX_LYRIC_TOKENS - 64
FORM = ("prompt", "lyrics", "vocal_language", "bpm", "key_scale", "time_signature")

ProgressFn = Callable[[str, int], None]


def available() -> bool:
    return planner.enabled()


def lyric_budget(seconds: float) -> int:
    """The most lyric tokens the planner may write for a song of ``seconds``."""
    return min(LYRIC_TOKENS_MAX, LYRIC_TOKENS_BASE + math.ceil(LYRIC_TOKENS_PER_SECOND * max(0.0, seconds)))


# ---------------------------------------------------------------- the admission check (page side)


def check(
    src_audio: str | None = None,
    prompt: str = "",
    lyrics: str = "",
    vocal_language: str = checks.UNKNOWN,
    bpm: float | None = 0,
    key_scale: str = checks.AUTO,
    time_signature: str = checks.AUTO,
) -> np.ndarray:
    """What *Describe* checks before it queues (``admission.validator``) and again when it runs: a
    planner, a song of at least ``MIN_SECONDS`` that decodes and is not silent (``uploads.load``
    refuses silence, as upstream's ``is_silence`` does), and GPU time one request may take. Returns
    the song. The form's fields are only filled where empty, so they are not checked here."""
    if not available():
        raise gr.Error(error_messages.DESCRIBE_OFF, title="Describe not available")
    if src_audio is None or not str(src_audio).strip():
        raise checks.InputError(error_messages.NO_SONG, "src_audio")
    with checks.about("src_audio"):
        song = uploads.load(src_audio)
    if (length := audio.seconds(song)) < MIN_SECONDS:
        said = f"{length * 1000:.0f} ms" if length >= 0.001 else "under a millisecond"
        raise checks.InputError(error_messages.DESCRIBE_TOO_SHORT.format(length=said, least=MIN_SECONDS), "src_audio")
    seconds, most = estimate_seconds(length), budget.max_gpu_seconds()
    if seconds > most:
        raise checks.InputError(error_messages.DESCRIBE_TOO_LONG.format(seconds=seconds, most=most), "src_audio")
    return song


def measure(src_audio: str) -> analysis.Analysis | None:
    """The song's measured tempo and key (``analysis``), or None where they cannot be had now."""
    try:
        return analysis.analyze(src_audio)
    except Exception:  # busy, or a song the analysis cannot read: the planner's values stand alone
        return None


# ---------------------------------------------------------------- GPU time


def estimate_seconds(seconds: float) -> float:
    """GPU seconds a *Describe* of a song of ``seconds`` may take (``duration_estimate``): the encode, reading its
    codes, and every token the planner may write (notes and lyrics at their bounds), with a margin."""
    return duration_estimate.estimate(duration_estimate.describe_phases(seconds, NOTES_BUDGET + lyric_budget(seconds)))[
        0
    ]


def estimate_duration(seconds: float, multiplier: float = 1.0, run_id: str | None = None) -> int:
    """Seconds ``describe_gpu`` declares, clamped to [60, 300]."""
    return duration_estimate.declare(
        duration_estimate.describe_phases(seconds, NOTES_BUDGET + lyric_budget(seconds)), multiplier, run_id
    )


# ---------------------------------------------------------------- GPU side


def describe_duration(song: Any, progress: Any = None, run_id: str | None = None, multiplier: float = 1.0) -> int:
    """Seconds of GPU time ``describe_gpu`` declares, from the song's length."""
    return estimate_duration(audio.seconds(song), multiplier, run_id)


@gpu.entry(duration=describe_duration)
def describe_gpu(song: Any, progress: Any = None, run_id: str | None = None, multiplier: float = 1.0) -> dict[str, Any]:
    """The GPU entry of *Describe*: a song (``[2, samples]`` at 48 kHz) in, the planner's notes and
    lyrics out (plain values); its own messages for a stop, an unusable description, a missing planner."""
    with generation.user_errors():
        return describe_song(song, reporter(progress), run_id)


def reporter(progress: Any) -> ProgressFn | None:
    """The page's progress line for ``describe_song``, a few times a second. Built inside the GPU
    call: a closure cannot be pickled into ZeroGPU's worker, ``gr.Progress`` can."""
    if progress is None:
        return None
    last = [0.0]

    def report(stage: str, done: int) -> None:
        now = time.monotonic()
        if stage != "listening" and now - last[0] < 0.25:
            return
        last[0] = now
        said = {
            "listening": messages.DESCRIBE_LISTENING,
            "notes": messages.DESCRIBE_NOTES.format(done=done),
            "lyrics": messages.DESCRIBE_LYRICS.format(done=done),
        }
        progress(None, desc=said[stage])

    return report


def describe_song(song: np.ndarray, progress: ProgressFn | None = None, run_id: str | None = None) -> dict[str, Any]:
    """The GPU-side work of *Describe*: the song's codes, then the planner's notes and lyrics, read
    and checked. Returns plain values (picklable); visitors' errors as ``gr.Error``."""
    started = time.perf_counter()
    should_stop = lambda: runs.is_stopped(run_id)  # noqa: E731
    try:
        if should_stop():
            raise runs.Cancelled("stopped")
        if progress is not None:
            progress("listening", 0)
        codes = backend.get_backend().song_codes(song, SEED)
        listened = time.perf_counter()
        if should_stop():
            raise runs.Cancelled("stopped")
        try:
            lm = planner.get_planner()
        except models.ModelLoadError as exc:
            raise gr.Error(
                error_messages.DESCRIBE_PLANNER_MISSING.format(error=exc), title="Model not available"
            ) from None
        seconds = audio.seconds(song)
        length = min(max(int(round(seconds)), DURATION_RANGE[0]), DURATION_RANGE[1])
        prompt = understand_prompt(lm.tokenizer, codes)
        written: dict[str, int] = {}
        notes, sung = understand(
            lm, prompt, {"duration": length}, lyric_budget(seconds), progress, should_stop, written=written
        )
        fields = check_plan(parse_plan(notes))
    except runs.Cancelled:
        raise runs.stopped(messages.DESCRIBE_STOPPED) from None
    except PlanUnusable as exc:
        raise gr.Error(error_messages.DESCRIBE_UNUSABLE.format(reason=exc)) from None
    return {
        "fields": {**fields, "caption": fields.get("caption", "")},
        "lyrics": cut(checks.printable(parse_lyrics(notes + sung)).strip(), checks.MAX_LYRICS_CHARS, "\n"),
        "codes": len(codes),
        "timings": {"codes_s": round(listened - started, 3), "planner_s": round(time.perf_counter() - listened, 3)},
        "measured": duration_estimate.report(
            "describe",
            {"seconds": seconds, "tokens": written["tokens"]},
            {"listen": time.perf_counter() - started},
            started,
            captured={"listen": duration_estimate.captured(lm.model.device)},
        ),
    }


def understand(
    lm: planner.Planner,
    prompt: str,
    fixed: dict[str, Any],
    lyric_tokens: int,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    seed: int = SEED,
    name: str = "Describe",
    written: dict[str, int] | None = None,
) -> tuple[str, str]:
    """One pass of the planner over ``prompt``: its notes (constrained as Think's, with the ``fixed``
    fields written in, closed by ``</think>``), then its lyrics (free text without audio codes or chat
    markers, up to ``lyric_tokens`` and ``lyric_budget`` of the notes' length, until it ends them; none
    where ``lyric_tokens`` is 0). Returns both as text. Upstream's ``understand`` phase, which serves
    *Describe* (a song's codes in) and *Write it* (an idea in). ``written`` gets the tokens written
    (``duration_estimate``)."""
    import torch

    vocab = lm.vocab
    constraint = ThinkingConstraint(vocab, fixed, end=vocab.encode("</think>"))
    generator = lm.generator(seed)
    notes: list[int] = []
    sung: list[int] = []
    with lm.lock, devices.holding_gpu("planner"), torch.inference_mode():
        step = lm.decoder([prompt], NOTES_BUDGET + lyric_tokens, name)
        try:
            logits = next(step)
            while not constraint.done:
                if len(notes) >= NOTES_BUDGET or should_stop():
                    if should_stop():
                        raise runs.Cancelled("stopped")
                    raise PlanUnusable(error_messages.PLAN_NOTES_ENDLESS)
                token = sample(constraint.mask(logits[0]), generator, TEMPERATURE, None)
                constraint.feed(token)
                notes.append(token)
                if progress is not None:
                    progress("notes", len(notes))
                logits = step.send(torch.tensor([token], device=logits.device))
            limit = lyric_tokens
            if "duration" not in fixed:  # the planner chose the length: the lyrics fit that
                limit = min(limit, _lyrics_for(lm.tokenizer.decode(notes, skip_special_tokens=False)))
            ends, banned = _lyric_rules(lm, logits[0])
            while len(sung) < limit:
                if should_stop():
                    raise runs.Cancelled("stopped")
                token = sample(logits[0] + banned, generator, TEMPERATURE, None)
                if token in ends:
                    break
                sung.append(token)
                if progress is not None:
                    progress("lyrics", len(sung))
                logits = step.send(torch.tensor([token], device=logits.device))
        finally:
            step.close()
    if written is not None:
        written["tokens"] = len(notes) + len(sung)
    text = lm.tokenizer.decode
    return text(notes, skip_special_tokens=False), text(sung, skip_special_tokens=True)


def _lyrics_for(notes: str) -> int:
    """The lyric tokens the notes' song length allows (``lyric_budget``; the most where it has none)."""
    found = parse_plan(notes).get("duration")
    return lyric_budget(found if isinstance(found, int) else DURATION_RANGE[1])


def _lyric_rules(lm: planner.Planner, row: Any) -> tuple[set[int], Any]:
    """What ends the lyrics (the end of the chat message or of the text), and a row of -inf over what may
    not be in them (audio codes, every other added token)."""
    import torch

    unk = getattr(lm.tokenizer, "unk_token_id", None)
    ends = {lm.vocab.eos}
    for name in ("<|im_end|>", "<|endoftext|>"):
        token = lm.tokenizer.convert_tokens_to_ids(name)
        if token is not None and token != unk:
            ends.add(int(token))
    banned = sorted({*lm.vocab.code_ids, *lm.vocab.markup} - ends)
    mask = torch.zeros_like(row)
    mask[torch.tensor([t for t in banned if t < row.shape[-1]], dtype=torch.long, device=row.device)] = float("-inf")
    return ends, mask


# ---------------------------------------------------------------- into the form (page side)


def _pitch(key: str | None) -> tuple[int, str] | None:
    """A key as (pitch class, mode), whatever its spelling ("D♭ major" = "C# major")."""
    try:
        name = checks.check_key(key)
    except gr.Error:
        return None
    if name is None:
        return None
    note, mode = name.split(" ")
    pc = "C D EF G A B".index(note[0]) + {"#": 1, "b": -1}.get(note[1:], 0)
    return pc % 12, mode


def key_name(key: str | None) -> str | None:
    """A key in the studio's spelling (the Key field's choices)."""
    found = _pitch(key)
    return None if found is None else f"{analysis.NOTES[found[0]]} {found[1]}"


def _yours(value: Any, read: Callable[[Any], Any]) -> tuple[Any, bool]:
    """(the form's value as read, whether the visitor set one): a value that cannot be read is kept
    as it is, the form's own check speaks for it when the song is made."""
    try:
        found = read(value)
    except gr.Error:
        return value, True
    return found, found is not None


def _chosen(name: str, yours: Any, measured: Any, heard: Any, shown: Callable[[Any], Any] = str) -> tuple[Any, str]:
    """BPM, key or metre: the visitor's value, else the measured one, else the planner's; and the note (each
    value as ``shown`` writes it: a metre as musicians write it)."""
    value = yours if yours is not None else measured if measured is not None else heard
    if measured is not None and heard == measured and value == measured:
        return value, messages.HEARD_AS_MEASURED.format(name=name, value=shown(value))
    said = [f"planner heard {shown(heard)}"] + ([f"measured {shown(measured)}"] if measured is not None else [])
    mine = " (yours)" if yours is not None and yours != measured else ""
    return value, f"{name}: {', '.join(said)} — kept {shown(value)}{mine}"


def fill(heard: dict[str, Any], form: dict[str, Any], measured: analysis.Analysis | None) -> tuple[list[Any], str]:
    """The form's fields (``FORM``'s order) with what the planner heard written where the visitor left
    them empty, and a note to read over: what was written, what was kept, and where the measured BPM
    and key won over the planner's."""
    fields, lines = heard["fields"], []
    out = {k: form.get(k) for k in FORM}
    for key, what, text in (("prompt", "Style", fields.get("caption", "")), ("lyrics", "Lyrics", heard["lyrics"])):
        if str(form.get(key) or "").strip():
            lines.append(f"{what}: kept yours")
        elif text:
            out[key] = text
            size = (
                f"{len(text.splitlines())} lines" if key == "lyrics" else f"“{checks.shown(text, 80).strip(chr(39))}”"
            )
            lines.append(f"{what}: written — {size}")
        else:
            lines.append(messages.HEARD_NONE.format(what=what))
    language = checks.language_code(form.get("vocal_language"))
    sung = fields.get("language") if fields.get("language") in checks.LANGUAGES else None
    if language not in (None, checks.UNKNOWN):
        lines.append(messages.LANGUAGE_KEPT.format(language=language, heard=fields.get("language")))
    elif sung:
        out["vocal_language"] = sung
        lines.append(f"Language: written — {sung} ({checks.LANGUAGES[sung]})")
    else:
        lines.append(messages.LANGUAGE_LEFT.format(heard=fields.get("language")))
    bpm, set_bpm = _yours(form.get("bpm"), checks.check_bpm)
    measured_bpm = None if measured is None or measured.bpm is None else int(round(measured.bpm))
    value, line = _chosen("BPM", bpm if set_bpm else None, measured_bpm, int(fields["bpm"]))
    out["bpm"] = value
    lines.append(line)
    key, set_key = _yours(form.get("key_scale"), key_name)
    measured_key = None if measured is None else key_name(measured.key)
    value, line = _chosen(
        parameters.PARAMS["key_scale"].label, key if set_key else None, measured_key, key_name(fields["keyscale"])
    )
    out["key_scale"] = value
    lines.append(line)
    # The metre too: the upload's measurement fills the field already, as it does BPM and key.
    meter, set_meter = _yours(form.get("time_signature"), checks.check_time_signature)
    measured_meter = None if measured is None or measured.beats_per_bar is None else str(measured.beats_per_bar)
    heard_meter, metre = str(fields["timesignature"]), lambda beats: tips.METRE_NAMES.get(str(beats), beats)
    said = parameters.PARAMS["time_signature"].label
    value, line = _chosen(said, meter if set_meter else None, measured_meter, heard_meter, metre)
    out["time_signature"] = value
    lines.append(line)
    # What the listening took, not the wait for the start-up build before it (``model_wait_s``).
    took = sum(v for k, v in heard.get("timings", {}).items() if k != "model_wait_s")
    head = messages.HEARD_HEAD.format(codes=heard["codes"], seconds=took)
    return [out[k] for k in FORM], "\n".join([head, *(f"- {line}" for line in lines)])
