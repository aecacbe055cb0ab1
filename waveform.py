"""The waveform under an uploaded song: peaks computed here, drawn by a few lines of the studio's own
JavaScript (no library, no CDN), with a region to drag in Edit and the seam marked in Extend.

The widget is a ``gr.HTML`` whose value is a JSON state ``{"peaks", "seconds", "extra", "start",
"end", "select"}`` (and ``"message"``: why a refused upload has no waveform, shown in its place). The server fills the peaks; a drag updates ``start``/``end`` in the page and
fires the component's ``input`` event, which the page itself turns into the region's numbers
(``REGION_JS``); typed numbers and seconds to add become a new state in the page too and move the
selection or the seam (``WITH_REGION_JS``, ``WITH_EXTRA_JS``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

import audio

BUCKETS = 600

# Runs once per widget (Gradio's ``js_on_load``: ``element``, ``props``, ``trigger``, ``watch``).
# The canvas lies absolutely in a box of fixed height, so its drawn width never reaches the layout:
# on a phone a canvas in the flow widened its column, which widened the canvas (75–89 redraws in 15 s,
# the page jumping sideways). It is redrawn when the box's width changes, never in answer to itself.
# Pointer events (touch-action: none) serve mouse, pen and touch alike, and every position is read
# against the canvas's rectangle at that moment.
JS = """
const read = () => { try { return JSON.parse(props.value || "{}"); } catch (e) { return {}; } };
const canvas = () => element.querySelector("canvas");
let drawnWidth = 0;
function draw() {
  const c = canvas(); if (!c) return;
  const s = read(), peaks = s.peaks || [];
  // Before a song (or a refused upload's words) the box is not shown (theme.CSS: ``song-wave``), so
  // this comes first: the width is read once it is.
  element.dataset.shown = peaks.length || s.message ? "1" : "0";
  const w = Math.round(c.getBoundingClientRect().width) || 600, h = 90;
  drawnWidth = w; c.width = w; c.height = h;
  const ctx = c.getContext("2d"); ctx.clearRect(0, 0, w, h);
  const total = (s.seconds || 0) + (s.extra || 0);
  element.dataset.start = s.start ?? ""; element.dataset.end = s.end ?? "";
  element.dataset.seam = s.extra ? s.seconds : ""; element.dataset.select = s.select ? "1" : "0";
  element.dataset.ready = peaks.length && total ? "1" : "0";
  const note = element.querySelector(".ace-wave-note");
  if (note) note.textContent = s.message || "";
  if (element.dataset.ready !== "1") return;
  const x = (t) => (t / total) * w, seam = x(s.seconds);
  if (s.select && s.end > s.start) {
    ctx.fillStyle = "rgba(99, 102, 241, 0.28)"; ctx.fillRect(x(s.start), 0, x(s.end) - x(s.start), h);
  }
  if (s.extra) {
    ctx.fillStyle = "rgba(244, 63, 94, 0.14)"; ctx.fillRect(seam, 0, w - seam, h);
    ctx.fillStyle = "rgb(244, 63, 94)"; ctx.fillRect(seam - 1, 0, 2, h);
  }
  ctx.fillStyle = "rgb(79, 70, 229)";
  const bar = seam / peaks.length;
  peaks.forEach((p, i) => { const ph = Math.max(1, p * (h - 4)); ctx.fillRect(i * bar, (h - ph) / 2, Math.max(1, bar - 0.3), ph); });
}
let from = null;
const at = (ev) => {
  const r = canvas().getBoundingClientRect(), s = read(), total = (s.seconds || 0) + (s.extra || 0);
  return Math.max(0, Math.min(s.seconds || 0, ((ev.clientX - r.left) / r.width) * total));
};
function update(to, done) {
  const s = read(), a = Math.min(from, to), b = Math.max(from, to);
  s.start = Math.round(a * 10) / 10; s.end = Math.round(b * 10) / 10;
  props.value = JSON.stringify(s); draw();
  if (done) trigger("input");
}
element.addEventListener("pointerdown", (ev) => {
  if (!read().select || ev.target !== canvas() || !ev.isPrimary) return;
  from = at(ev); ev.target.setPointerCapture(ev.pointerId); ev.preventDefault();
});
element.addEventListener("pointermove", (ev) => { if (from !== null) update(at(ev), false); });
element.addEventListener("pointerup", (ev) => { if (from !== null) { update(at(ev), true); from = null; } });
element.addEventListener("pointercancel", () => { if (from !== null) { trigger("input"); from = null; } });
watch("value", draw);
new ResizeObserver(() => {
  const c = canvas();
  if (c && Math.round(c.getBoundingClientRect().width) !== drawnWidth) draw();
}).observe(element);
draw();
"""

TEMPLATE = (
    '<div class="ace-wave-box" style="position: relative; height: 90px; contain: strict;">'
    '<canvas class="ace-wave" style="position: absolute; inset: 0; width: 100%; height: 100%; touch-action: none;">'
    "</canvas>"
    # Why there is no waveform (a refused upload), as text: the page shows it where the waveform would be.
    '<p class="ace-wave-note" role="status" style="position: absolute; inset: 0; margin: 0; display: flex; pointer-events: none; '
    "align-items: center; justify-content: center; text-align: center; padding: 0 12px; font-size: 0.9em; "
    'overflow: hidden;"></p></div>'
)

# The three events between the waveform and its numbers run in the page only (js-only events):
# instant, and no server event takes the numbers as inputs. Gradio clears the marks of a refused press
# on the inputs of any event that runs afterwards, so a server event on a typed number wiped the
# message the number had just got (issue 22).
# A drag's region into the start and end numbers (or the numbers as they were, if the state is unreadable).
REGION_JS = """(state, start, end) => {
  try { const s = JSON.parse(state || "{}"); return [s.start ?? start, s.end ?? end]; } catch (e) { return [start, end]; }
}"""
# Typed region numbers (Edit) or seconds to add (Extend) into the waveform's state: what it draws.
_FINITE = "const n = (v) => { const x = Number(v); return Number.isFinite(x) ? x : 0; };"
WITH_REGION_JS = f"""(state, start, end) => {{
  {_FINITE}
  try {{ const s = JSON.parse(state); s.start = n(start); s.end = n(end); return JSON.stringify(s); }} catch (e) {{ return state; }}
}}"""
# Edit's choice into the waveform's state: a region to show and drag, or none (a part is the whole song).
# Run when the choice changes and when the waveform does (a song read while the choice was a region);
# the state is given back as it was where it already agrees, so the second run changes nothing.
FOR_CHOICE_JS = """(state, change) => {
  try {
    const s = JSON.parse(state), select = change === "region";
    if (Boolean(s.select) === select) return state;
    s.select = select; return JSON.stringify(s);
  } catch (e) { return state; }
}"""
WITH_EXTRA_JS = f"""(state, extra) => {{
  {_FINITE}
  try {{ const s = JSON.parse(state); s.extra = n(extra); return JSON.stringify(s); }} catch (e) {{ return state; }}
}}"""


def peaks(song: np.ndarray, buckets: int = BUCKETS) -> list[float]:
    """Loudest sample of each of ``buckets`` equal stretches of ``[channels, samples]`` audio, 0–1."""
    return audio.peaks(song, buckets)


def draw(song: np.ndarray, extra: Any = 0.0, start: Any = None, end: Any = None, select: bool = False) -> str:
    """The widget's JSON for decoded audio."""
    return json.dumps(
        {
            "peaks": peaks(song),
            "seconds": round(audio.seconds(song), 3),
            "extra": _number(extra),
            "start": _number(start),
            "end": _number(end),
            "select": select,
        }
    )


def refused(message: str) -> str:
    """The widget's JSON for an upload that cannot be used: no peaks, and why (shown in its place)."""
    return json.dumps(
        {"peaks": [], "seconds": 0, "extra": 0, "start": 0, "end": 0, "select": False, "message": f"⚠️ {message}"}
    )


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if np.isfinite(number) else 0.0
