"""Synced lyrics from the lyric cross-attention: which token sings which line, the alignment (DTW),
each sung line's start, the lyric-alignment score, and the ``.lrc`` text.

The attention itself is captured on the GPU side (``alignment``); what arrives here is, per take,
two small matrices over the lyric tokens × the DiT's frames, already reduced as upstream ACE-Step
reduces them (``acestep/dit_alignment_score.py``): one for the timestamps, one (the energy) for the
score. Everything here is numpy and plain Python; no model, no torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

# The pipeline's lyric string (diffusers' ``_format_prompt``, upstream's ``_format_lyrics``).
HEADER = "# Languages\n{language}\n\n# Lyric\n"
END = "<|endoftext|>"
MAX_TOKENS = 2048
# A line that is only a section marker: "[Verse]", "[Chorus 2]", "[Instrumental]".
_TAG_LINE = re.compile(r"^\s*\[[^\]]*\]\s*$")
# Upstream's scorer: an attention row "sings" when its peak energy passes this; its centroid may step
# back this many frames and still count as moving forward; energy below this is noise.
COVERAGE_ENERGY = 0.1
OVERLAP_FRAMES = 9.0
NOISE_ENERGY = 0.01
SCORE_RANGE = (0.0, 1.0)


def sung_lines(lyrics: Any) -> list[str]:
    """The lines a take sings, in order: not empty, not only a section marker (``[Verse]``)."""
    return [line.strip() for line in str(lyrics or "").splitlines() if line.strip() and not _TAG_LINE.match(line)]


@dataclass(frozen=True)
class Rows:
    """The lyric tokens as the DiT sees them: the body's first column in the packed condition
    sequence (the lyric tokens come first there), then per body token its sung line (an index into
    ``texts``, or -1: a section marker, a blank) and whether it lies outside a ``[tag]``."""

    start: int
    lines: tuple[int, ...]
    sung: tuple[bool, ...]
    texts: tuple[str, ...]

    @property
    def columns(self) -> slice:
        return slice(self.start, self.start + len(self.lines))


def _line_of_chars(lyrics: str) -> tuple[list[int], list[bool], list[str]]:
    """Per character of ``lyrics``: its sung line (or -1) and whether it lies inside ``[...]``."""
    line_of, tagged, texts = [], [], []
    inside = False
    for line in lyrics.splitlines(keepends=True):
        sung = bool(line.strip()) and not _TAG_LINE.match(line)
        index = len(texts) if sung else -1
        if sung:
            texts.append(line.strip())
        for char in line:
            inside = inside or char == "["
            line_of.append(index if not char.isspace() else -1)
            tagged.append(inside)
            inside = inside and char != "]"
    return line_of, tagged, texts


def lyric_rows(tokenizer: Any, lyrics: str, language: str) -> Rows | None:
    """Map the pipeline's lyric tokens back to the lyric lines (by the tokenizer's character
    offsets), or None when nothing is sung. Tokenised exactly as the pipeline does it."""
    header = HEADER.format(language=language)
    line_of, tagged, texts = _line_of_chars(lyrics)
    if not texts:
        return None
    encoded = tokenizer(f"{header}{lyrics}{END}", truncation=True, max_length=MAX_TOKENS, return_offsets_mapping=True)
    first, lines, sung = None, [], []
    lo, hi = len(header), len(header) + len(lyrics)
    for index, (a, b) in enumerate(encoded["offset_mapping"]):
        if b <= lo or a >= hi or b <= a:  # the header, the end marker
            continue
        first = index if first is None else first
        chars = range(max(a, lo) - lo, min(b, hi) - lo)
        lines.append(next((line_of[c] for c in chars if line_of[c] >= 0), -1))
        sung.append(not any(tagged[c] for c in chars))
    if first is None or all(line < 0 for line in lines):
        return None  # every sung line was cut off by the token limit
    return Rows(first, tuple(lines), tuple(sung), tuple(texts))


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest monotone path through ``cost`` [rows, frames] from its first cell to its last
    (steps: diagonal, down, right; ties as upstream's ``dtw_cpu`` breaks them). Filled one
    anti-diagonal at a time, whose cells depend only on the two before it."""
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    total[0, 0] = 0.0
    step = np.full((n + 1, m + 1), 2, dtype=np.int8)
    step[1:, 0] = 1
    for d in range(2, n + m + 1):
        i = np.arange(max(1, d - m), min(n, d - 1) + 1)
        j = d - i
        diag, down, right = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
        choice = np.where((diag < down) & (diag < right), 0, np.where((down < diag) & (down < right), 1, 2))
        total[i, j] = cost[i - 1, j - 1] + np.choose(choice, [diag, down, right])
        step[i, j] = choice
    rows, cols = [], []
    i, j = n, m
    while i > 0 or j > 0:
        rows.append(i - 1)
        cols.append(j - 1)
        move = step[i, j]
        i, j = i - (move != 2), j - (move != 1)
    return np.array(rows[::-1]), np.array(cols[::-1])


def line_times(stamps: np.ndarray, rows: Rows, seconds: float) -> list[float]:
    """Each sung line's start in seconds: the first frame the alignment path gives its first token."""
    path_rows, path_cols = dtw(-stamps.astype(np.float64))
    first = np.full(len(rows.lines), -1)
    for r, c in zip(path_rows[::-1], path_cols[::-1], strict=True):
        first[r] = c  # walked backwards, so the earliest frame wins
    per_frame = seconds / stamps.shape[1]
    starts: dict[int, float] = {}
    for token, line in enumerate(rows.lines):
        if line >= 0 and line not in starts:
            starts[line] = round(float(first[token]) * per_frame, 3)
    # A line cut off by the token limit has no token: it starts where the last one did.
    out, last = [], 0.0
    for line in range(len(rows.texts)):
        last = starts.get(line, last)
        out.append(last)
    return out


def lyric_score(energy: np.ndarray, rows: Rows) -> float:
    """Upstream's DiT lyric-alignment score in [0, 1]: coverage² × monotonicity² × path confidence
    over the energy matrix (``MusicLyricScorer``): are the lyrics sung, in order, and clearly."""
    energy = energy.astype(np.float64)
    sung = np.asarray(rows.sung, dtype=bool)
    path_rows, path_cols = dtw(-(energy**2))
    peaks = energy.max(axis=1)
    coverage = float((sung & (peaks > COVERAGE_ENERGY)).sum() / sung.sum()) if sung.any() else 1.0
    weights = np.where(energy > NOISE_ENERGY, energy, 0.0)
    mass = weights.sum(axis=1)
    centroids = np.full(len(energy), -1.0)
    heavy = mass > 1e-9
    centroids[heavy] = (weights[heavy] * np.arange(energy.shape[1])).sum(axis=1) / mass[heavy]
    seen = centroids[sung & (centroids >= 0)]
    monotony = float((seen[1:] >= seen[:-1] - OVERLAP_FRAMES).mean()) if len(seen) > 1 else 1.0
    confidence = float(energy[path_rows, path_cols].mean()) if len(path_rows) else 0.0
    return round(float(np.clip(coverage**2 * monotony**2 * confidence, *SCORE_RANGE)), 4)


def sync_take(
    stamps: np.ndarray, energy: np.ndarray, rows: Rows, seconds: float, within: tuple[float, float] | None = None
) -> dict[str, Any]:
    """One take's synced lyrics: ``lines`` (``{"time", "text"}``, non-decreasing) and ``score``; ``within``
    (seconds): the lyrics are sung there alone (a region Edit's lyrics), so only its frames are read."""
    if within is not None:  # the path would otherwise spread the region's lyrics over the whole song
        per_second = stamps.shape[1] / seconds
        a = min(stamps.shape[1] - 1, max(0, math.ceil(within[0] * per_second)))  # its frames, ends included
        b = max(a + 1, min(stamps.shape[1], math.floor(within[1] * per_second)))
        found = sync_take(stamps[:, a:b], energy[:, a:b], rows, (b - a) / per_second)
        found["lines"] = [{**line, "time": round(line["time"] + a / per_second, 3)} for line in found["lines"]]
        return found
    times = line_times(stamps, rows, seconds)
    lines = [{"time": t, "text": text} for t, text in zip(times, rows.texts, strict=True)]
    return {"lines": lines, "score": lyric_score(energy, rows)}


# A time a visitor typed into a line, as an LRC reader would take it: "[01:02.03]" (a line's time) or
# "<01:02.03>" (a word's, enhanced LRC). In a line of the .lrc it would be a second time for that line.
_TYPED_TIME = re.compile(
    r"\[\s*\d{1,3}\s*:\s*\d{1,2}(?:[.:]\d{1,3})?\s*\]|<\s*\d{1,3}\s*:\s*\d{1,2}(?:[.:]\d{1,3})?\s*>"
)


def plain_line(text: Any) -> str:
    """A sung line as the .lrc and the record carry it: no typed times, no control characters (a
    karaoke screen or a terminal would act on BEL or ESC), one line of single spaces."""
    text = _TYPED_TIME.sub(" ", str(text))
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def fit(lines: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    """``lines`` inside a take of ``seconds`` (it may have been trimmed after the render), their text
    plain (``plain_line``)."""
    last = max(0.0, round(seconds - 0.01, 3))
    return [{**line, "time": min(float(line["time"]), last), "text": plain_line(line["text"])} for line in lines]


def stamp(seconds: float) -> str:
    """An LRC time tag, ``[mm:ss.xx]``."""
    centis = int(round(max(0.0, seconds) * 100))
    return f"[{centis // 6000:02d}:{centis // 100 % 60:02d}.{centis % 100:02d}]"


def lrc_text(lines: list[dict[str, Any]], title: str = "", seconds: float | None = None) -> str:
    """The ``.lrc`` file: ID tags, then one timed line per sung line."""
    # One tag a header line: a "]" would end the title's tag early and a "[" open another ("[ar:…]" in a
    # caption became an artist tag), so both are parentheses; each line's own time is the only one it carries.
    title = plain_line(title).replace("[", "(").replace("]", ")")
    head = [f"[ti:{title}]"] if title else []
    if seconds is not None:
        head.append(f"[length:{int(seconds) // 60:02d}:{int(seconds) % 60:02d}]")
    body = [f"{stamp(line['time'])}{plain_line(line['text'])}" for line in lines]
    return "\n".join([*head, *body]) + "\n"
