"""A song from one line (*Write it* on Generate, ``/write_song``): ACE-Step's 5 Hz planner expands an
idea into a caption, lyrics, BPM, key, time signature and length.

GPU side (``write``, the body of ``songwriter_gpu``), as upstream's ``create_sample``
(``acestep/inference.py`` → ``LLMHandler.create_sample_from_query``): upstream's inspiration
instruction, the idea and ``instrumental: true|false`` as the user message, no guidance,
temperature 0.85 with no top-k or top-p, the notes decoded under Think's constraints (the vocal
language written in where the visitor chose one, as upstream's ``user_metadata``), then after
``</think>`` the lyrics as free text (``describe.understand``, the generation *Describe* uses too).

Where it differs from upstream, on purpose (docs/fidelity.md): the planner is seeded (the same idea
and seed write the same song); the length it may choose is at most ``LONGEST`` and the lyrics are
bounded by that length (``describe.lyric_budget``) and by ``LYRIC_TOKENS`` (upstream: 3,500 tokens
for notes and lyrics together), so a request declares less than two minutes of GPU time once the
planner is loaded; with *Instrumental* no lyrics are decoded at all and the lyrics are
``[Instrumental]`` (upstream decodes them and keeps whatever the model wrote).

Page side: ``fill`` writes what the planner wrote into Generate's fields the visitor left empty, and
the note says what it wrote and what it kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gradio as gr

import audio
import checks
import describe
import duration_estimate
import error_messages
import generation
import gpu
import messages
import models
import parameters
import planner
import runs
import tooltips as tips
from plan_format import PlanUnusable, check_plan, cut, inspiration_prompt, parse_lyrics, parse_plan

LONGEST = 240  # seconds: the longest song the planner may choose here
LYRIC_TOKENS = 768  # a four-minute song's lyrics, section tags and line breaks
EXAMPLE = "a rainy-day bossa nova about missing the last train"
# The fields of Generate it writes, as ``/write_song`` returns them and the page's event takes them.
FORM = ("prompt", "lyrics", "bpm", "key_scale", "time_signature", "audio_duration", "vocal_language")

ProgressFn = Callable[[str, int], None]


def available() -> bool:
    return planner.enabled()


def check(
    idea: str | None = "", instrumental: Any = False, vocal_language: Any = checks.UNKNOWN, seed: Any = -1
) -> tuple[str, bool, str, int]:
    """What *Write it* checks before it queues and again when it runs: a planner, an idea of one
    line or a few (at most ``checks.MAX_IDEA_CHARS``), a known language and a seed. Returns them read."""
    if not available():
        raise gr.Error(error_messages.WRITE_IT_OFF, title=error_messages.WRITE_IT_OFF_TITLE)
    text = checks.printable(str(idea or "")).strip()
    if not text:
        raise checks.InputError(error_messages.NO_IDEA.format(example=EXAMPLE), "idea")
    if len(text) > checks.MAX_IDEA_CHARS:
        raise checks.InputError(
            error_messages.IDEA_TOO_LONG.format(most=checks.MAX_IDEA_CHARS, n=len(text)),
            "idea",
        )
    with checks.about("instrumental"):
        switch = checks.check_switch(instrumental, "Instrumental")
    with checks.about("vocal_language"):
        language = checks.check_language(vocal_language)
    number = parameters.check_seed(seed)
    return text, switch, language, number


# ---------------------------------------------------------------- GPU time


def estimate_seconds() -> float:
    """GPU seconds a request may take (``duration_estimate``): every token the planner may write (notes and lyrics at
    their bounds), a cold planner's load, with a margin."""
    return duration_estimate.estimate(duration_estimate.write_phases(describe.NOTES_BUDGET + LYRIC_TOKENS))[0]


def estimate_duration(multiplier: float = 1.0, run_id: str | None = None) -> int:
    """Seconds ``songwriter_gpu`` declares, clamped to [60, 300]."""
    return duration_estimate.declare(
        duration_estimate.write_phases(describe.NOTES_BUDGET + LYRIC_TOKENS), multiplier, run_id
    )


# ---------------------------------------------------------------- GPU side


def songwriter_duration(
    idea: str, instrumental: bool, language: str, seed: int, progress: Any, run_id: str | None, multiplier: float
) -> int:
    """Seconds of GPU time ``songwriter_gpu`` declares: the same for every idea (the bounds')."""
    return estimate_duration(multiplier, run_id)


@gpu.entry(duration=songwriter_duration)
def songwriter_gpu(
    idea: str, instrumental: bool, language: str, seed: int, progress: Any, run_id: str | None, multiplier: float
) -> dict[str, Any]:
    """The GPU entry of *Write it*: an idea in, the planner's fields and lyrics out (plain values)."""
    with generation.user_errors():
        return write(idea, instrumental, language, seed, reporter(progress), run_id)


def reporter(progress: Any) -> ProgressFn | None:
    """The page's progress line for ``write``, a few times a second (built inside the GPU call, as
    ``describe.reporter``: ``gr.Progress`` pickles, a closure does not)."""
    if progress is None:
        return None
    last = [0.0]

    def report(stage: str, done: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.25:
            return
        last[0] = now
        progress(None, desc=messages.WRITE_IT_STAGE.format(stage=messages.WRITE_IT_STAGES[stage], done=done))

    return report


def write(
    idea: str,
    instrumental: bool,
    language: str,
    seed: int,
    progress: ProgressFn | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The GPU-side work of *Write it*: the planner's notes and lyrics for ``idea``, read and
    checked. ``seed`` -1 draws one. Returns plain values (picklable); visitors' errors as ``gr.Error``."""
    started = time.perf_counter()
    seed = checks.seeds_for(seed, 1)[0]
    should_stop = lambda: runs.is_stopped(run_id)  # noqa: E731
    try:
        if should_stop():
            raise runs.Cancelled("stopped")
        try:
            lm = planner.get_planner()
        except models.ModelLoadError as exc:
            raise gr.Error(
                error_messages.DESCRIBE_PLANNER_MISSING.format(error=exc), title="Model not available"
            ) from None
        fixed = {} if language == checks.UNKNOWN else {"language": language}
        prompt = inspiration_prompt(lm.tokenizer, idea, instrumental)
        budget = 0 if instrumental else LYRIC_TOKENS
        written: dict[str, int] = {}
        notes, sung = describe.understand(lm, prompt, fixed, budget, progress, should_stop, seed, "Write it", written)
        fields = check_plan(parse_plan(notes))
    except runs.Cancelled:
        raise runs.stopped(messages.WRITE_IT_STOPPED) from None
    except PlanUnusable as exc:
        raise gr.Error(error_messages.WRITE_IT_UNUSABLE.format(reason=exc)) from None
    if fields["duration"] > LONGEST:
        fields["duration"] = LONGEST
    lyrics = checks.INSTRUMENTAL_TAG if instrumental else checks.printable(parse_lyrics(notes + sung)).strip()
    # Within what the music model reads: the visitor never wrote these texts, so Generate must take them.
    wrote = {"prompt": fields.get("caption", ""), "lyrics": cut(lyrics, checks.MAX_LYRICS_CHARS, "\n")}
    read, said = generation.fitted(wrote, str(fields.get("language") or "en"))
    return {
        "fields": {**fields, "caption": read["prompt"]},
        "lyrics": read["lyrics"],
        **({"fitted": said} if said else {}),
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 3),
        "measured": duration_estimate.report(
            "write",
            {"tokens": written["tokens"]},
            {"write": time.perf_counter() - started},
            started,
            captured={"write": duration_estimate.captured(lm.model.device)},
        ),
    }


# ---------------------------------------------------------------- into the form (page side)


def values(written: dict[str, Any]) -> list[Any]:
    """What the planner wrote, in ``FORM``'s order (the studio's spelling of each field)."""
    fields = written["fields"]
    key = describe.key_name(fields["keyscale"]) or fields["keyscale"]
    return [
        fields["caption"],
        written["lyrics"],
        int(fields["bpm"]),
        key,
        str(fields["timesignature"]),
        int(fields["duration"]),
        fields["language"],
    ]


def note(written: dict[str, Any], kept: list[str]) -> str:
    """The note under the idea: what was written (and its seed, to write it again), what was kept."""
    fields = written["fields"]
    bits = [
        f"{fields['bpm']} BPM",
        describe.key_name(fields["keyscale"]) or fields["keyscale"],
        tips.METRE_NAMES.get(str(fields["timesignature"]), f"{fields['timesignature']} beats a bar"),
        audio.clock(fields["duration"]),
        checks.LANGUAGES.get(fields["language"], fields["language"]),
    ]
    lines = [f"**Written** (seed {written['seed']}, {written['seconds']:.1f} s): " + ", ".join(map(str, bits))]
    if not written["lyrics"] and NAMES["lyrics"] not in kept:
        lines.append(messages.WROTE_NO_LYRICS)
    for field, said in written.get("fitted", {}).items():
        lines.append(messages.WRITTEN_FIT.format(what=NAMES[field].lower(), **said))
    if kept:
        lines.append("Kept yours: " + ", ".join(kept) + ".")
    return "\n\n".join(lines)


NAMES = {
    "prompt": "Style caption",
    "lyrics": "Lyrics",
    "bpm": "BPM",
    **{name: parameters.PARAMS[name].label for name in ("key_scale", "time_signature")},
    "audio_duration": "Duration",
    "vocal_language": parameters.PARAMS["vocal_language"].label,
}


def fill(written: dict[str, Any], form: dict[str, Any]) -> tuple[list[Any], str]:
    """Generate's fields (``FORM``'s order) with what the planner wrote where the visitor left them
    empty (the length always: the slider is never empty), and the note."""
    empty = {
        "prompt": not str(form.get("prompt") or "").strip(),
        "lyrics": not str(form.get("lyrics") or "").strip(),
        "bpm": _unset(form.get("bpm"), checks.check_bpm),
        "key_scale": _unset(form.get("key_scale"), checks.check_key),
        "time_signature": _unset(form.get("time_signature"), checks.check_time_signature),
        "audio_duration": True,
        "vocal_language": checks.language_code(form.get("vocal_language")) in (None, checks.UNKNOWN),
    }
    kept = [NAMES[name] for name in FORM if not empty[name]]
    empty["lyrics"] = empty["lyrics"] and bool(written["lyrics"])  # no lyrics written: nothing to fill
    out = [value if empty[name] else form.get(name) for name, value in zip(FORM, values(written), strict=True)]
    return out, note(written, kept)


def _unset(value: Any, read: Callable[[Any], Any]) -> bool:
    """Whether a field holds no value of the visitor's (0, auto, empty); one that cannot be read is
    the visitor's and stays, for Generate's own check to speak about."""
    try:
        return read(value) is None
    except gr.Error:
        return False
