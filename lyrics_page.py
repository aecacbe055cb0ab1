"""The Lyrics tab: the song idea in, the writer's lyrics streamed out, then handed to Generate.

Its form asks what ``lyrics.make_request`` takes (the idea up front; structure, length, creativity and
seed folded away); *Write lyrics* is the queued ``/lyrics`` (``write_lyrics``) with its Stop, *Use in
Generate* the public ``/use_in_generate``. ``tabs.lyrics_tab`` places it among the five tabs. The
writer's text is made singable here too (``clean``: text in, text out, no model).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import gradio as gr

import admission
import checks
import error_messages
import event_errors
import examples
import gpu
import lyrics
import messages
import parameters
import quota
import runs
import tooltips as tips
import widgets


def build(demo: gr.Blocks, generate: dict[str, Any], tabs: gr.Tabs) -> None:
    """The tab and its events; ``generate`` is Generate's form by the preparer's names (what *Use in
    Generate* fills)."""
    with gr.Tab("Lyrics", id="lyrics"):
        with gr.Row():
            with gr.Column(scale=3):
                asked = _asked()
                button, stop = widgets.action_buttons("Write lyrics", "ly")
                reserves = widgets.reserves_line("ly")
            with gr.Column(scale=3):
                text = gr.Textbox("", label="Lyrics", lines=18, elem_id="ly-text")
                caption = gr.Textbox("", label="Suggested style caption", elem_id="ly-caption")
                used = gr.Number(
                    None,
                    precision=0,
                    label="Seed used",
                    info=tips.LYRICS_SEED_USED,
                    interactive=False,
                    visible="hidden",  # drawn, so its change reaches the page: shown once lyrics are written
                    elem_id="ly-seed-used",
                )
                used.change(None, None, used, js=widgets.SHOW_JS, api_visibility="private")
                use = gr.Button("Use in Generate", elem_id="ly-use")
        widgets.example_rows(
            [list(e) for e in examples.LYRICS],
            [asked["theme"], asked["genre"], asked["mood"], asked["vocal_language"]],
            label="Try one of these",
            api_name="load_example_lyrics",
        )
    _wire_writing(demo, asked, button, stop, reserves, [text, caption, used])
    g = generate
    # Public, as README documents it: in view_api() and callable by keyword (text, caption, vocal_language).
    use.click(
        use_in_generate,
        [text, caption, asked["vocal_language"]],
        [g["lyrics"], g["prompt"], g["instrumental"], g["vocal_language"], tabs],
        api_name="use_in_generate",
        queue=False,
    ).then(None, None, g["lyrics"], js=widgets.EDITABLE_JS, api_visibility="private")


def _asked() -> dict[str, Any]:
    """What the writer is asked, by ``lyrics.make_request``'s names: the idea and its language up
    front, the song's form, length, creativity and seed folded away."""
    choices = [(f"{name} ({code})", code) for code, name in checks.LANGUAGES.items()]
    theme = gr.Textbox("", label="What is the song about?", info=tips.LYRICS_THEME, lines=2, elem_id="ly-theme")
    with gr.Row():
        genre = gr.Textbox("", label="Genre / style", info=tips.LYRICS_GENRE, elem_id="ly-genre")
        mood = gr.Textbox("", label="Mood", info=tips.LYRICS_MOOD, elem_id="ly-mood")
    language = gr.Dropdown(
        choices,
        label="Language",
        info=tips.LYRICS_LANGUAGE,
        allow_custom_value=True,
        elem_id="ly-language",
    )
    with gr.Accordion("Advanced settings", open=False, elem_id="ly-advanced"):
        structure = gr.Dropdown(
            list(lyrics.STRUCTURES),
            label="Structure",
            info=tips.LYRICS_STRUCTURE,
            allow_custom_value=True,
            elem_id="ly-structure",
        )
        custom = gr.Textbox("", label="Custom sections", info=tips.LYRICS_CUSTOM, elem_id="ly-custom")
        with gr.Row():
            length = widgets.lenient_radio(
                list(lyrics.LENGTHS),
                label="Length",
                info=tips.LYRICS_LENGTH,
                elem_id="ly-length",
            )
            temperature = widgets.lenient_slider(
                *lyrics.TEMPERATURE_RANGE,
                step=0.05,
                label="Creativity",
                info=tips.LYRICS_TEMPERATURE,
                elem_id="ly-temperature",
            )
            # The seed's words are every seed's in the studio (``parameters.check_seed``).
            said = parameters.PARAMS["seed"]
            seed = widgets.lenient_number(precision=0, label=said.label, info=said.help, elem_id="ly-seed")
    asked = {
        "theme": theme,
        "genre": genre,
        "mood": mood,
        "vocal_language": language,
        "structure": structure,
        "temperature": temperature,
        "seed": seed,
        "custom_sections": custom,
        "length": length,
    }
    widgets.start_at_defaults(asked, lyrics.make_request)
    return asked


def _wire_writing(
    demo: gr.Blocks, asked: dict[str, Any], button: gr.Button, stop: gr.Button, reserves: Any, written: list[Any]
) -> None:
    """*Write lyrics*: the lyrics box brought into view, the request's admission check, the writer in
    the GPU queue (``written``: the lyrics, the caption, the seed used); Stop; what a click reserves."""
    button.click(None, None, None, js=widgets.scroll_js("ly-text"), api_visibility="private")
    names = list(inspect.signature(lyrics.make_request).parameters)
    button.click(
        write_lyrics,
        [asked[name] for name in names],
        written,
        api_name="lyrics",
        concurrency_id="gpu",
        show_progress_on=[written[0]],
        validator=admission.validator(lyrics.make_request, names, "theme"),
    )
    stop.click(runs.stopper(demo, "lyrics"), None, None, api_name="stop_lyrics", queue=False)
    # What a request costs reads its form and length (``lyrics.max_new_tokens``), not its text.
    widgets.wire_reserves(demo, "lyrics", reserves, {k: asked[k] for k in ("structure", "custom_sections", "length")})


# ---------------------------------------------------------------- what its buttons do


def _writes_as_asked() -> inspect.Signature:
    """``write_lyrics``' parameters: ``lyrics.make_request``'s, with their defaults (the page's and the
    API's; an empty theme is refused there), then the request and progress Gradio hands in."""
    asked = [
        p.replace(default="") if p.default is inspect.Parameter.empty else p
        for p in inspect.signature(lyrics.make_request).parameters.values()
    ]
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    given = [
        inspect.Parameter("request", keyword, default=None, annotation=gr.Request),
        inspect.Parameter("progress", keyword, default=gr.Progress(), annotation=gr.Progress),
    ]
    return inspect.Signature(asked + given)


_WRITES = _writes_as_asked()


def _write_lyrics(*args: Any, **kwargs: Any):
    """Stream lyrics into the box, then replace them with the cleaned version and a caption; the
    seed used comes with every update (the same seed and settings write the same lyrics)."""
    bound = _WRITES.bind(*args, **kwargs)
    bound.apply_defaults()
    asked = dict(bound.arguments)
    request, progress = asked.pop("request"), asked.pop("progress")
    try:
        req = lyrics.make_request(**asked)
    except lyrics.LyricsError as exc:
        raise gr.Error(str(exc)) from None
    # Drawn here, so a retry after a GPU abort writes the same song.
    req.seed = lyrics.draw_seed(req.seed)
    lyrics.check_weights()  # weights that cannot be had: said at once, before the GPU queue
    if not lyrics.is_loaded():
        progress(0, desc=messages.LOADING_LYRICS)
    text = ""
    try:
        with runs.tab_run("lyrics", request) as run_id:
            # Whatever was streamed stays in the box on an error: Gradio keeps the last yielded value.
            for text in gpu.stream(
                lyrics.lyrics_gpu,
                req,
                checks.LANGUAGES[req.vocal_language],
                needs=("lyrics",),
                progress=progress,
                run_id=run_id,
                stop_message=messages.LYRICS_NOT_STARTED,
                refused=quota.refusal,
            ):
                yield text, "", req.seed
    except gr.Error as exc:
        if not runs.is_stop(exc):
            raise
        # What was written so far stays, with no caption: the song is not finished.
        runs.said_stopped("lyrics", exc.message)
        yield text, "", req.seed
        return
    cleaned, caption = clean(text, req.sections())
    if not cleaned:
        raise gr.Error(error_messages.LYRICS_UNUSABLE)
    yield cleaned, caption or lyrics.fallback_caption(req), req.seed


# Gradio reads the parameters (their names, and the request and progress it passes) from these.
_write_lyrics.__signature__ = _WRITES  # type: ignore[attr-defined]
_write_lyrics.__annotations__ = {"request": gr.Request, "progress": gr.Progress}
_write_lyrics.__name__ = "write_lyrics"
write_lyrics = event_errors.expected_errors(_write_lyrics)


@event_errors.expected_errors
def use_in_generate(
    text: str = "", caption: str = "", vocal_language: str = lyrics.Request.vocal_language
) -> tuple[Any, ...]:
    """Lyrics, caption and their language (an ISO code or English name, default English) into
    Generate, and switch to it."""
    # What a stopped run left in the box was never cleaned up: no control character goes on.
    text, caption = checks.printable(str(text or "")), checks.printable(str(caption or ""))
    if not text.strip():
        raise gr.Error(error_messages.NO_LYRICS_YET)
    # Generate's own limits, here too: a 1.8 MB text was echoed back whole (+175 MB on the server).
    lyrics_chars, caption_chars = len(str(text)), len(str(caption or ""))
    if lyrics_chars > checks.MAX_LYRICS_CHARS:
        raise gr.Error(error_messages.LYRICS_TOO_LONG_TO_USE.format(n=lyrics_chars, most=checks.MAX_LYRICS_CHARS))
    if caption_chars > checks.MAX_CAPTION_CHARS:
        raise gr.Error(error_messages.CAPTION_TOO_LONG_TO_USE.format(n=caption_chars, most=checks.MAX_CAPTION_CHARS))
    # Plain values, as API clients read them; the page makes the lyrics box editable again itself
    # (tabs.lyrics_tab), should Instrumental have locked it.
    return (
        text,
        caption,
        False,
        checks.language_code(vocal_language) or lyrics.Request.vocal_language,
        gr.Tabs(selected="generate"),
    )


# ---------------------------------------------------------------- the writer's text made singable


MAX_LYRICS_CHARS = 4096
SECTION_NAMES = (
    "intro",
    "verse",
    "pre-chorus",
    "prechorus",
    "chorus",
    "post-chorus",
    "hook",
    "bridge",
    "breakdown",
    "drop",
    "interlude",
    "solo",
    "instrumental",
    "refrain",
    "outro",
    "coda",
    "rap",
)

_PREAMBLE = re.compile(
    r"^(sure|certainly|of course|here('s| is| are)|okay|ok|absolutely|i('ve| have) written|below)\b.*", re.IGNORECASE
)
_COMMENTARY = re.compile(
    r"^(note|notes|explanation|i hope|hope you|this song|these lyrics|feel free|let me know|enjoy)\b.*", re.IGNORECASE
)
_TITLE = re.compile(r"^(title|song title)\s*[:：-].*", re.IGNORECASE)
_CAPTION = re.compile(r"^\W*(caption|style|style caption|music style)\s*[:：]\s*(.+)$", re.IGNORECASE)
_NUMBERING = re.compile(r"^\s*(\d+[.)]|[-*•])\s+")
_HEADER = re.compile(
    r"^\s*(?:#+\s*|\*\*|__|\(|\[)?\s*(" + "|".join(re.escape(n) for n in SECTION_NAMES) + r")\b\s*(\d*)\s*"
    r"(?:\([^)]*\))?\s*(?:\*\*|__|\)|\])?\s*:?\s*$",
    re.IGNORECASE,
)


def _section_tag(line: str) -> str | None:
    match = _HEADER.match(line)
    if not match:
        return None
    name, number = match.group(1), match.group(2)
    canon = {"prechorus": "Pre-Chorus", "pre-chorus": "Pre-Chorus", "post-chorus": "Post-Chorus"}.get(
        name.lower(), name.capitalize()
    )
    return f"[{canon}{' ' + number if number else ''}]"


def clean(raw: str, sections: list[str] | None = None, limit: int = MAX_LYRICS_CHARS) -> tuple[str, str]:
    """Model output to ``(lyrics, caption)``: tags, no chatter, no control characters, within
    ``limit`` characters."""
    caption = ""
    body: list[str] = []
    for original in checks.printable(raw).split("\n"):
        line = original.strip().strip("`").strip()
        if not line:
            body.append("")
            continue
        cap = _CAPTION.match(line.replace("*", ""))
        if cap:
            caption = cap.group(2).strip().strip('"').strip()
            continue
        tag = _section_tag(line.replace("*", "").replace("_", " ").strip())
        if tag:
            body.append(tag)
            continue
        if _PREAMBLE.match(line) or _TITLE.match(line.replace("*", "")) or line.startswith("#"):
            continue
        if _COMMENTARY.match(line.replace("*", "")):
            break  # commentary closes the song; nothing after it is lyrics
        line = _NUMBERING.sub("", line)
        line = re.sub(r"[*_]{1,3}([^*_]+)[*_]{1,3}", r"\1", line).strip().strip('"').strip()
        if line:
            body.append(line)
    lyrics = _assemble(body, sections or [])
    return _trim(lyrics, limit), caption


def _assemble(body: list[str], sections: list[str]) -> str:
    """One tag per section; untagged text is split into the requested sections by blank lines."""
    blocks: list[tuple[str | None, list[str]]] = []
    tag: str | None = None
    lines: list[str] = []
    for line in [*body, ""]:
        if line.startswith("[") and line.endswith("]"):
            if tag or lines:
                blocks.append((tag, lines))
            tag, lines = line, []
        elif line == "":
            if lines and tag is None:
                blocks.append((None, lines))
                lines = []
        else:
            lines.append(line)
    if tag or lines:
        blocks.append((tag, lines))
    names = iter(sections or [])
    out: list[str] = []
    last_tag = None
    for block_tag, block_lines in blocks:
        if block_tag is None:
            block_tag = f"[{next(names, 'Verse')}]"
        if not block_lines and block_tag == last_tag:
            continue
        if block_tag == last_tag and out:
            out.extend(block_lines)  # a repeated tag with no new section between: one section
            continue
        if out:
            out.append("")
        out.append(block_tag)
        out.extend(block_lines)
        last_tag = block_tag
    return "\n".join(out).strip()


def _trim(lyrics: str, limit: int) -> str:
    if len(lyrics) <= limit:
        return lyrics
    cut = lyrics[:limit]
    boundary = cut.rfind("\n\n[")
    return (cut[:boundary] if boundary > 0 else cut[: cut.rfind("\n")]).strip()
