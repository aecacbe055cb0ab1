"""The lyrics writer's text made into what ACE-Step sings well: one ``[Section]`` tag per section, no
chat preamble, markdown, numbering or commentary, no control characters, within the music model's lyric
limit; the writer's ``Caption:`` line read apart, as the style for Generate.

Text in, text out, no model: ``clean`` is all there is to call (``handlers.write_lyrics`` calls it).
"""

from __future__ import annotations

import re

import checks

MAX_LYRICS_CHARS = 4096
SECTION_NAMES = (
    "intro", "verse", "pre-chorus", "prechorus", "chorus", "post-chorus", "hook", "bridge", "breakdown",
    "drop", "interlude", "solo", "instrumental", "refrain", "outro", "coda", "rap",
)  # fmt: skip

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
