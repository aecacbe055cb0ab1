"""The waveform under an uploaded song: peaks computed here, drawn by a few lines of the studio's own
JavaScript (no library, no CDN), with a region to drag in Edit and the seam marked in Extend.

The widget is a ``gr.HTML`` whose value is a JSON state ``{"peaks", "seconds", "extra", "start",
"end", "select", "bars", "sections", "snap"}`` (and ``"message"``: why a refused upload has no waveform, shown in
its place). The song's map (``bars``, ``sections``: a take's record's, or its upload's) is drawn over the peaks
(``MARKS_JS``, the take player's too): in Edit a section block chosen is the region, and a drag snaps to bar
lines while ``snap`` is on (the switch under the waveform; on for a song with bars). The server fills the peaks; a drag updates ``start``/``end`` in the page and
fires the component's ``input`` event, which the page itself converts into the region's numbers
(``REGION_JS``); typed numbers and seconds to add become a new state in the page too and move the
selection or the seam (``WITH_REGION_JS``, ``WITH_EXTRA_JS``); Edit's typed bars set the region from the map
(``WITH_BARS_JS``), and Extend's bars to add the seconds to add and the seam (``WITH_BARS_ADDED_JS``, which keeps
the visitor's own seconds in the state as ``asked_extra`` while the bars rule).
"""

from __future__ import annotations

import html
import json
import secrets
from typing import TYPE_CHECKING, Any

import numpy as np

import audio
import plan_format
import tooltips as tips

if TYPE_CHECKING:
    from song_map import Map

BUCKETS = 600

# What of a song's map reaches the page, at most: the densest grid the studio's tempi allow (300 BPM,
# two beats a bar) over its longest song is 1,500 bars. A bar line costs 6–8 bytes of the widget's state:
# ten minutes at 120 BPM in 4/4 with 12 sections add 2.9 kB, the densest grid 12.3 kB (docs/features.md).
MOST_BARS = 1536
MOST_SECTIONS = 64
NAME_CHARS = 40

# A musician's correction in the page, as ``bar_one.rephased`` counts it for a request: the bar lines from bar 1 at
# ``first`` (seconds), on the map's beats (each bar split into ``heardPerBar``) moved so one falls on it, or, where
# it has none or the BPM typed is not its tempo within an octave, at ``bpm`` from ``first`` itself; [] where neither
# is known.
# A BPM typed outside the studio's range (refused with a message when the request is made) lays no bars, and a bar line met twice is
# one: without these bounds, at 10^8 BPM or on two equal lines, the count's loops would never end and the page would hang.
REPHASE_JS = (
    f"const BPM_RANGE = {json.dumps(plan_format.BPM_RANGE)};"
    + """function rephase(lines, first, bpm, perBar, seconds, heardPerBar) {
  const per = perBar || heardPerBar || 4, tempo = bpm >= BPM_RANGE[0] && bpm <= BPM_RANGE[1] ? bpm : null;
  const inside = lines.map(Number).filter((t) => Number.isFinite(t) && t >= 0 && t < seconds).sort((a, b) => a - b)
    .filter((t, i, xs) => i === 0 || t > xs[i - 1]);
  const median = (xs) => { const v = [...xs].sort((a, b) => a - b), m = v.length >> 1; return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2; };
  const diffs = (xs) => xs.slice(1).map((x, i) => x - xs[i]);
  const nearest = (xs) => xs.reduce((best, x, i) => (Math.abs(x - first) < Math.abs(xs[best] - first) ? i : best), 0);
  const split = (xs, n) => { const out = []; for (let j = 0; j + 1 < xs.length; j++) for (let i = 0; i < n; i++) out.push(xs[j] + ((xs[j + 1] - xs[j]) * i) / n); return out; };
  let beats = null;
  if (inside.length >= 2) {
    const n = heardPerBar || per, head = (inside[1] - inside[0]) / n, last = inside[inside.length - 1];
    const tail = (last - inside[inside.length - 2]) / n;
    beats = [];
    for (let k = Math.trunc(inside[0] / head + 0.5); k > 0; k--) beats.push(inside[0] - head * k);
    beats.push(...split(inside, n));
    for (let k = 0; k <= Math.trunc((seconds - last) / tail); k++) beats.push(last + tail * k);
    if (tempo) {
      const ratio = (median(diffs(beats)) * tempo) / 60, off = (f) => Math.abs(Math.log(ratio / f));
      const factor = [1 / 3, 1 / 2, 1, 2, 3].reduce((b, f) => (off(f) < off(b) ? f : b));
      if (off(factor) > Math.log(1.12)) beats = null;
      else if (factor >= 1) beats = [...split(beats, Math.round(factor)), beats[beats.length - 1]];
      else { const step = Math.round(1 / factor), k = nearest(beats) % step; beats = beats.filter((_, i) => i >= k && (i - k) % step === 0); }
    }
  }
  let found = [], bar;
  if (beats === null) {
    if (!tempo) return [];
    bar = (per * 60) / tempo;
    for (let i = 0; i < Math.trunc(Math.max(0, seconds - first) / bar) + 2; i++) found.push(first + bar * i);
  } else {
    const k = nearest(beats), shift = first - beats[k];
    found = beats.filter((_, i) => i >= k && (i - k) % per === 0).map((t) => t + shift);
    bar = found.length > 1 ? median(diffs(found)) : per * median(diffs(beats));
  }
  return found.filter((t) => t < seconds - 0.25 * bar).map((t) => Math.round(Math.max(0, t) * 1000) / 1000);
}"""
)

# The song's map on a waveform (Edit's and Extend's, and each take player's): bar ticks on the canvas,
# thinned to at least 4 px apart with a bar number where there is space, and the sections as buttons
# across the top of the box (their names as text, never markup: a take's lyrics name them), rebuilt
# only when the map changes. ``snapped``: a drag's ends on the nearest bar lines (the song's end closes
# the last bar); a drag within one bar takes that bar.
MARKS_JS = (
    f"const MOST_BARS = {MOST_BARS}, MOST_SECTIONS = {MOST_SECTIONS}, CHOOSE_TITLE = {json.dumps(tips.SECTION_CHOOSE)};"
    + """
const clock = (t) => { const v = Math.max(0, Number(t) || 0); return Math.floor(v / 60) + ":" + (v % 60).toFixed(1).padStart(4, "0"); };
// The sections' strip across the top of the box: the peaks are drawn below it where a song has sections.
const STRIP = 16, below = (s) => (Array.isArray(s.sections) && s.sections.length ? STRIP : 0);
const barsOf = (s) => (Array.isArray(s.bars) ? s.bars : []).slice(0, MOST_BARS).map(Number).filter(Number.isFinite);
function barTicks(ctx, bars, total, w, h) {
  if (!bars.length || !(total > 0)) return;
  const px = ((bars.length > 1 ? (bars[bars.length - 1] - bars[0]) / (bars.length - 1) : total) / total) * w;
  let every = 1; while (every * px < 4 && every < bars.length) every *= 2;
  let named = every; while (named * px < 24 && named < bars.length) named *= 2;
  // Dark ticks read on the peaks and beside them; a bar's number with a light halo reads on either.
  ctx.font = "600 10px sans-serif"; ctx.textBaseline = "bottom"; ctx.lineWidth = 3; ctx.strokeStyle = "rgba(255, 255, 255, 0.85)";
  for (let i = 0; i < bars.length; i += every) {
    const x = Math.round((bars[i] / total) * w);
    ctx.fillStyle = i % named ? "rgba(30, 41, 59, 0.35)" : "rgba(30, 41, 59, 0.7)";
    ctx.fillRect(x, 0, 1, h);
    if (i % named) continue;
    ctx.strokeText(String(i + 1), x + 3, h - 1); ctx.fillStyle = "rgb(30, 41, 59)"; ctx.fillText(String(i + 1), x + 3, h - 1);
  }
}
function sectionBlocks(box, sections, total, title, chosen) {
  let strip = box.querySelector(".ace-sections");
  if (!strip) {
    strip = document.createElement("div"); strip.className = "ace-sections";
    strip.style.cssText = `position: absolute; left: 0; right: 0; top: 0; height: ${STRIP}px; pointer-events: none;`;
    box.append(strip);
  }
  const list = Array.isArray(sections) && total > 0 ? sections.slice(0, MOST_SECTIONS) : [], key = JSON.stringify([list, total, title]);
  if (strip.dataset.key !== key) {
    strip.dataset.key = key;
    strip.replaceChildren(...list.map((s, i) => {
      const b = document.createElement("button"), a = Number(s.start) || 0, e = Number(s.end) || 0;
      b.type = "button"; b.className = "ace-section"; b.textContent = String(s.name ?? "");
      b.dataset.from = String(a); b.dataset.to = String(e);
      b.title = title.replace("{name}", () => b.textContent).replace("{span}", () => clock(a) + "–" + clock(e));
      b.style.cssText = `position: absolute; top: 0; height: ${STRIP}px; left: ${(a / total) * 100}%; width: ${(Math.max(0, e - a) / total) * 100}%; `
        + "box-sizing: border-box; margin: 0; padding: 0 4px; border: 0; border-left: 2px solid rgb(79, 70, 229); "
        + `background: color-mix(in srgb, rgb(99, 102, 241) ${i % 2 ? 16 : 30}%, var(--block-background-fill, #fff)); `
        + `color: var(--body-text-color, inherit); font: 600 11px/${STRIP}px sans-serif; `
        + "text-align: left; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; cursor: pointer; pointer-events: auto;";
      return b;
    }));
  }
  for (const b of strip.children) {
    b.setAttribute("aria-pressed", chosen && Number(b.dataset.from) === chosen[0] && Number(b.dataset.to) === chosen[1] ? "true" : "false");
  }
}
function snapped(s, a, b) {
  const end = Number(s.seconds) || 0, lines = [...barsOf(s).filter((t) => t >= 0 && t < end), end];
  if (lines.length < 2) return null;
  const near = (t) => lines.reduce((best, x) => (Math.abs(x - t) < Math.abs(best - t) ? x : best), lines[0]);
  let x = near(a), y = near(b);
  if (y <= x) { const i = lines.indexOf(x); if (i + 1 < lines.length) y = lines[i + 1]; else x = lines[i - 1]; }
  return [x, y];
}
"""
)

# Runs once per widget (Gradio's ``js_on_load``: ``element``, ``props``, ``trigger``, ``watch``).
# The canvas lies absolutely in a box of fixed height, so its drawn width never reaches the layout:
# on a phone a canvas in the flow widened its column, which widened the canvas (75–89 redraws in 15 s,
# the page jumping sideways). It is redrawn when the box's width changes, never in answer to itself.
# Pointer events (touch-action: none) serve mouse, pen and touch alike, and every position is read
# against the canvas's rectangle at that moment.
JS = (
    MARKS_JS
    + f"const BAR_ONE = {json.dumps(tips.BAR_ONE_BUTTON)}, BAR_ONE_ARMED = {json.dumps(tips.BAR_ONE_ARMED)};"
    + f"const POINT = {json.dumps(tips.EXTEND_POINT_BUTTON)}, POINT_ARMED = {json.dumps(tips.EXTEND_POINT_ARMED)};"
    + """
const read = () => { try { return JSON.parse(props.value || "{}"); } catch (e) { return {}; } };
const canvas = () => element.querySelector("canvas");
let drawnWidth = 0;
function draw() {
  const c = canvas(); if (!c) return;
  const s = read(), peaks = s.peaks || [];
  // Before a song (or a refused upload's message) the box is not shown (theme.CSS: ``song-wave``), so
  // this comes first: the width is read once it is.
  element.dataset.shown = peaks.length || s.message ? "1" : "0";
  const w = Math.round(c.getBoundingClientRect().width) || 600, h = 90;
  drawnWidth = w; c.width = w; c.height = h;
  const ctx = c.getContext("2d"); ctx.clearRect(0, 0, w, h);
  const { total, offset, from: newFrom, to: newTo, place } = placed(s);
  element.dataset.start = s.start ?? ""; element.dataset.end = s.end ?? "";
  element.dataset.seam = s.extra ? (place === "start" ? newTo : newFrom) : ""; element.dataset.extra = s.extra ? s.extra : "";
  element.dataset.where = place; element.dataset.point = place === "point" ? String(newFrom) : "";
  element.dataset.select = s.select ? "1" : "0";
  element.dataset.ready = peaks.length && total ? "1" : "0";
  const note = element.querySelector(".ace-wave-note");
  if (note) note.textContent = s.message || "";
  if (element.dataset.ready !== "1") return marks({}, 0, w, h);
  const x = (t) => (t / total) * w;
  if (s.select && s.end > s.start) {
    ctx.fillStyle = "rgba(99, 102, 241, 0.28)"; ctx.fillRect(x(s.start), 0, x(s.end) - x(s.start), h);
  }
  // Extend's new part shaded, its seam a line (where the song goes on, or, for an intro, where the song starts).
  if (s.extra) {
    ctx.fillStyle = "rgba(244, 63, 94, 0.14)"; ctx.fillRect(x(newFrom), 0, x(newTo) - x(newFrom), h);
    ctx.fillStyle = "rgb(244, 63, 94)"; ctx.fillRect(x(place === "start" ? newTo : newFrom) - 1, 0, 2, h);
  }
  const bar = x(s.seconds) / peaks.length, top = below(s), cut = place === "point" ? x(newFrom) : Infinity;
  peaks.forEach((p, i) => {
    // From a point, the song after it is drawn faint: the new part replaces it.
    const ph = Math.max(1, p * (h - top - 4)), left = x(offset) + i * bar;
    ctx.fillStyle = left >= cut ? "rgba(79, 70, 229, 0.25)" : "rgb(79, 70, 229)";
    ctx.fillRect(left, top + (h - top - ph) / 2, Math.max(1, bar - 0.3), ph);
  });
  marks(offset ? shifted(s, offset) : s, total, w, h);
}
// Where Extend's new part lies in the take drawn (``where`` in the state: "start", a point in seconds, else the
// end): the take's length, where the song starts in it (an intro before it), and the new part's span.
function placed(s) {
  const seconds = Number(s.seconds) || 0, extra = Number(s.extra) || 0, point = Number(s.where);
  if (s.where === "start" && extra) return { total: seconds + extra, offset: extra, from: 0, to: extra, place: "start" };
  if (typeof s.where === "number" && point >= 0 && point < seconds) {
    return { total: Math.max(seconds, point + extra), offset: 0, from: point, to: point + extra, place: "point" };
  }
  return { total: seconds + extra, offset: 0, from: seconds, to: seconds + extra, place: "end" };
}
// The song's map moved right by an intro's length, where the song starts in the take drawn.
const shifted = (s, by) => ({ ...s, bars: barsOf(s).map((t) => t + by),
  sections: (Array.isArray(s.sections) ? s.sections : []).map((x) => ({ ...x, start: Number(x.start) + by, end: Number(x.end) + by })) });
// The map over the peaks; the snap switch shown where a drag chooses a region of a song with bars.
function marks(s, total, w, h) {
  const bars = barsOf(s), box = element.querySelector(".ace-wave-box"), snap = element.querySelector(".ace-snap");
  if (total) barTicks(canvas().getContext("2d"), bars, total, w, h);
  if (box) sectionBlocks(box, s.sections, total, s.select ? CHOOSE_TITLE : "{name} ({span})", s.select ? [s.start, s.end] : null);
  if (snap) { snap.style.display = s.select && bars.length ? "flex" : "none"; snap.querySelector("input").checked = s.snap !== false; }
  const one = element.querySelector(".ace-bar-one");
  if (one) one.style.display = total ? "inline-block" : "none";
  const point = element.querySelector(".ace-point");
  if (point) point.style.display = total && typeof s.where === "number" ? "inline-block" : "none";
  element.dataset.bars = String(bars.length); element.dataset.first = bars.length ? String(bars[0]) : "";
}
// *Bar 1 here*: its button arms the next click on the waveform, which says where bar 1 starts (``clicked`` in
// the state, read into the Bar 1 field and counted from by ``BAR_ONE_JS``) instead of starting a drag.
let arming = false, pointing = false;
function arm(on) {
  arming = on; element.dataset.arming = on ? "1" : "0";
  const one = element.querySelector(".ace-bar-one");
  if (one) { one.setAttribute("aria-pressed", on ? "true" : "false"); one.textContent = on ? BAR_ONE_ARMED : BAR_ONE; }
}
// *Extend from here*: as *Bar 1 here*, the next click on the waveform is Extend's point (``point_at`` in the state,
// on the nearest bar line where the song has bars; read into the point's field by ``POINT_JS``).
function armPoint(on) {
  pointing = on; element.dataset.pointing = on ? "1" : "0";
  const b = element.querySelector(".ace-point");
  if (b) { b.setAttribute("aria-pressed", on ? "true" : "false"); b.textContent = on ? POINT_ARMED : POINT; }
}
let from = null;
const at = (ev) => {
  const r = canvas().getBoundingClientRect(), s = read(), { total, offset } = placed(s);
  return Math.max(0, Math.min(s.seconds || 0, ((ev.clientX - r.left) / r.width) * total - offset));
};
function update(to, done) {
  const s = read(), a = Math.min(from, to), b = Math.max(from, to), lines = s.snap !== false && snapped(s, a, b);
  [s.start, s.end] = lines || [Math.round(a * 10) / 10, Math.round(b * 10) / 10];
  props.value = JSON.stringify(s); draw();
  if (done) trigger("input");
}
// A section block chosen in Edit is the region, as a drag's would be; the switch, kept in the state.
element.addEventListener("click", (ev) => {
  if (ev.target.closest && ev.target.closest(".ace-bar-one")) { armPoint(false); arm(!arming); return; }
  if (ev.target.closest && ev.target.closest(".ace-point")) { arm(false); armPoint(!pointing); return; }
  const block = ev.target.closest && ev.target.closest(".ace-section"), s = read();
  if (!block || !s.select) return;
  s.start = Number(block.dataset.from); s.end = Number(block.dataset.to);
  props.value = JSON.stringify(s); draw(); trigger("input");
});
element.addEventListener("change", (ev) => {
  if (!ev.target.closest || !ev.target.closest(".ace-snap")) return;
  const s = read(); s.snap = ev.target.checked; props.value = JSON.stringify(s);
});
element.addEventListener("pointerdown", (ev) => {
  if (arming && ev.target === canvas() && ev.isPrimary) {
    const s = read(); s.clicked = Math.round(at(ev) * 1000) / 1000; arm(false); ev.preventDefault();
    props.value = JSON.stringify(s); draw(); trigger("submit"); return;
  }
  if (pointing && ev.target === canvas() && ev.isPrimary) {
    const s = read(), t = at(ev), lines = barsOf(s).filter((b) => b > 0 && b < (s.seconds || 0));
    const near = lines.length ? lines.reduce((best, b) => (Math.abs(b - t) < Math.abs(best - t) ? b : best)) : null;
    s.point_at = near === null ? Math.round(t * 10) / 10 : near; s.where = s.point_at; armPoint(false); ev.preventDefault();
    props.value = JSON.stringify(s); draw(); trigger("input"); return;
  }
  if (!read().select || ev.target !== canvas() || !ev.isPrimary) return;
  from = at(ev); ev.target.setPointerCapture(ev.pointerId); ev.preventDefault();
});
element.addEventListener("pointermove", (ev) => { if (from !== null) update(at(ev), false); });
element.addEventListener("pointerup", (ev) => { if (from !== null) { update(at(ev), true); from = null; } });
element.addEventListener("pointercancel", () => { if (from !== null) { trigger("input"); from = null; } });
// A song's state sent again once more of it is known (its tempo, then its map: ``keeping``, each time with a
// token of its own) keeps what the visitor set meanwhile (a region dragged, typed or ticked, seconds to add, the
// switch where it had bars). A state the page made from that one before taking it (a tick's region set on it,
// a choice) carries its token too: what it changed is the visitor's, the rest is kept as above.
const VISITOR_SET = ["start", "end", "select", "extra", "asked_extra", "bars_extra", "snap", "where"];
const visitorSet = (s) => VISITOR_SET.map((k) => JSON.stringify(s[k]) ?? "");
let kept = {}, sent = {};
watch("value", () => {
  const text = props.value, s = read();
  if (!s.keep) { kept = s; draw(); return; }
  const token = String(s.keep); delete s.keep;
  if (sent.token !== token) sent = { token, set: visitorSet(s) };
  if (kept.seconds === s.seconds && (kept.peaks || []).length === (s.peaks || []).length) {
    const now = visitorSet(s);
    VISITOR_SET.forEach((k, i) => {
      const untouched = now[i] === sent.set[i];
      if (untouched && k in kept && (k !== "snap" || barsOf(kept).length)) s[k] = kept[k];
    });
  }
  // Set after the page has taken the value it was sent (set inside its own update, it was not taken), unless
  // a newer one came meanwhile (a tick's region): that one was drawn, and this would undo it.
  kept = s; setTimeout(() => { if (props.value === text) { props.value = JSON.stringify(s); draw(); } }, 0);
});
new ResizeObserver(() => {
  const c = canvas();
  if (c && Math.round(c.getBoundingClientRect().width) !== drawnWidth) draw();
}).observe(element);
draw();
"""
)

TEMPLATE = (
    '<div class="ace-wave-box" style="position: relative; height: 90px; contain: strict;">'
    '<canvas class="ace-wave" style="position: absolute; inset: 0; width: 100%; height: 100%; touch-action: none;">'
    "</canvas>"
    # Why there is no waveform (a refused upload), as text: the page shows it where the waveform would be.
    '<p class="ace-wave-note" role="status" style="position: absolute; inset: 0; margin: 0; display: flex; pointer-events: none; '
    "align-items: center; justify-content: center; text-align: center; padding: 0 12px; font-size: 0.9em; "
    'overflow: hidden;"></p></div>'
    # Edit's snap switch, shown for a song with bars (``marks`` in ``JS``).
    '<label class="ace-snap" style="display: none; gap: 6px; align-items: center; '
    f'margin-top: 4px; font-size: 0.85em; width: fit-content;"><input type="checkbox" checked> {html.escape(tips.SNAP)}</label>'
    # *Bar 1 here*, shown for a song read (``marks`` in ``JS``): the next click on the waveform sets bar 1.
    f'<button type="button" class="ace-bar-one" aria-pressed="false" title="{html.escape(tips.BAR_ONE)}" '
    'style="display: none; margin-top: 4px; padding: 2px 8px; font-size: 0.85em; cursor: pointer; '
    'border: 1px solid rgb(79, 70, 229); border-radius: 4px; background: transparent; color: inherit;">'
    f"{html.escape(tips.BAR_ONE_BUTTON)}</button>"
    # Extend's *Extend from here*, shown where a point is asked (``marks`` in ``JS``): the next click sets the point.
    f'<button type="button" class="ace-point" aria-pressed="false" title="{html.escape(tips.EXTEND_POINT_HERE)}" '
    'style="display: none; margin: 4px 0 0 8px; padding: 2px 8px; font-size: 0.85em; cursor: pointer; '
    'border: 1px solid rgb(244, 63, 94); border-radius: 4px; background: transparent; color: inherit;">'
    f"{html.escape(tips.EXTEND_POINT_BUTTON)}</button>"
)

# The three events between the waveform and its numbers run in the page only (js-only events):
# instant, and no server event takes the numbers as inputs. Gradio clears the marks of a refused request
# on the inputs of any event that runs afterwards, so a server event on a typed number would wipe the
# message the number had just got.
# A drag's region into the start and end numbers (or the numbers as they were, if the state is unreadable).
REGION_JS = """(state, start, end) => {
  try { const s = JSON.parse(state || "{}"); return [s.start ?? start, s.end ?? end]; } catch (e) { return [start, end]; }
}"""
# What a listener sends back where nothing changes: no value (a value given back as it was read sets the listeners
# off again, in a loop).
_KEEP = 'const keep = { __type__: "update" };'
# Edit's typed bars ("9-16", "9", "9, 10": read as ``edit_bars.numbers`` reads them) into the region and its
# highlight, from the waveform's map, as a section block chosen sets them; bars the map lacks (or none yet,
# or a part chosen) send nothing back: the request says why on the field.
WITH_BARS_JS = r"""(state, bars, start, end) => {
  __KEEP__ const kept = [keep, keep, keep];  // bars not counted: nothing sent back
  try {
    const s = JSON.parse(state), lines = (Array.isArray(s.bars) ? s.bars : []).map(Number).filter(Number.isFinite), found = [];
    for (const item of String(bars ?? "").trim().split(/[,\s]+/).filter(Boolean)) {
      const span = item.match(/^(\d{1,5})[-\u2013](\d{1,5})$/);
      if (span) found.push(Number(span[1]), Number(span[2]));
      else if (/^\d{1,5}(\.0+)?$/.test(item)) found.push(Math.trunc(Number(item)));
      else return kept;
    }
    const first = Math.min(...found), last = Math.max(...found);
    if (!s.select || !found.length || first < 1 || last > lines.length) return kept;
    s.start = lines[first - 1]; s.end = last < lines.length ? lines[last] : Number(s.seconds);
    return [JSON.stringify(s), s.start, s.end];
  } catch (e) { return kept; }
}""".replace("__KEEP__", _KEEP)
# The musician's bar 1 into the waveform's bars (``REPHASE_JS``), run on a click on the waveform after *Bar 1 here*
# (its time, ``clicked``, fills the Bar 1 field: the first bar line counted from it), a Bar 1 typed, and the BPM
# or metre changed; the map as heard kept in the state (``heard``) and drawn again where Bar 1 is emptied. Edit's
# typed bars then set the region from the bars counted so (``WITH_BARS_JS``). Where the bars do not move nothing is
# sent back (no-op updates), so a run that follows from its own output, or from a drag, changes nothing.
BAR_ONE_JS = (
    "(state, first, bpm, meter, bars, start, end) => {\n"
    + _KEEP
    + REPHASE_JS
    + """
  const barsOf = (s) => (Array.isArray(s.bars) ? s.bars : []).map(Number).filter(Number.isFinite);
  // Nothing changed: nothing sent back (a value given back as it was read could undo a drag made meanwhile).
  const kept = bars === undefined ? [keep, keep] : [keep, keep, keep, keep];
  try {
    const s = JSON.parse(state || "{}"), seconds = Number(s.seconds) || 0, clicked = "clicked" in s;
    if (!seconds) return kept;
    const typed = first === null || first === undefined || String(first).trim() === "" ? null : Number(first);
    const at = clicked ? Number(s.clicked) : typed, heard = Array.isArray(s.heard) ? s.heard : barsOf(s);
    delete s.clicked;
    const beats = Number(String(meter ?? "").split("/")[0]), per = Number.isInteger(beats) && beats >= 2 && beats <= 12 ? beats : null;
    const counted = at !== null && Number.isFinite(at) && at >= 0 && at < seconds ? rephase(heard, at, Number(bpm), per, seconds, Number(s.per_bar) || null) : [];
    if (counted.length) { s.heard = heard; s.bars = counted; } else { s.bars = heard; delete s.heard; }
    if (!clicked && JSON.stringify(barsOf(s)) === JSON.stringify(barsOf(JSON.parse(state)))) return kept;
    const text = JSON.stringify(s), set = clicked ? String(counted.length ? counted[0] : at) : keep;
    if (bars === undefined) return [text, set];
    const [shown, a, b] = (__WITH_BARS__)(text, bars, start, end);  // Edit's typed bars: their region, counted anew
    return [shown.__type__ ? text : shown, set, a, b];  // bars not counted: the bars counted anew still go
  } catch (e) { return kept; }
}"""
).replace("__WITH_BARS__", WITH_BARS_JS)

# Typed region numbers (Edit) or seconds to add (Extend) into the waveform's state: what it draws.
_FINITE = "const n = (v) => { const x = Number(v); return Number.isFinite(x) ? x : 0; };"
WITH_REGION_JS = f"""(state, start, end) => {{
  {_FINITE} {_KEEP}
  try {{ const s = JSON.parse(state); if (s.start === n(start) && s.end === n(end)) return keep;
    s.start = n(start); s.end = n(end); return JSON.stringify(s); }} catch (e) {{ return keep; }}
}}"""
# Edit's choice into the waveform's state: a region to show and drag, or none (a part is the whole song).
# Run when the choice changes and when the waveform does (a song read while the choice was a region);
# nothing is sent back where it already agrees, so the second run changes nothing.
FOR_CHOICE_JS = f"""(state, change) => {{
  {_KEEP}
  try {{
    const s = JSON.parse(state), select = change === "region";
    if (Boolean(s.select) === select) return keep;
    s.select = select; return JSON.stringify(s);
  }} catch (e) {{ return keep; }}
}}"""
WITH_EXTRA_JS = f"""(state, extra) => {{
  {_FINITE} {_KEEP}
  try {{ const s = JSON.parse(state); if (s.extra === n(extra)) return keep;
    s.extra = n(extra); return JSON.stringify(s); }} catch (e) {{ return keep; }}
}}"""
# Extend's ``where`` into the waveform's state (``where``: "start", a point in seconds, else the end), as
# ``extend_where.read`` reads it: seconds, m:ss, or a bar counted from bar 1 on the waveform's bars; what it cannot
# read or place is drawn as the end (the request says why on the field). Run as the field or the song changes.
WITH_WHERE_JS = f"""(state, where) => {{
  {_KEEP}
  try {{
    const s = JSON.parse(state), text = String(where ?? "").trim().toLowerCase();
    const bars = (Array.isArray(s.bars) ? s.bars : []).map(Number).filter(Number.isFinite);
    const clock = text.match(/^(\\d{{1,2}}):([0-5]?\\d(?:\\.\\d{{1,3}})?)$/), bar = text.match(/^(?:bar|b)\\s*(\\d{{1,5}})$/);
    let to = text === "start" ? "start" : "end";
    if (clock) to = Number(clock[1]) * 60 + Number(clock[2]);
    else if (bar && Number(bar[1]) >= 1 && Number(bar[1]) <= bars.length) to = bars[Number(bar[1]) - 1];
    else if (/^\\d{{1,4}}(\\.\\d{{1,3}})?$/.test(text)) to = Number(text);
    if (JSON.stringify(s.where ?? "end") === JSON.stringify(to)) return keep;
    s.where = to; return JSON.stringify(s);
  }} catch (e) {{ return keep; }}
}}"""
# A click after *Extend from here* (the widget's ``input``) into the point's field: "bar N" where it fell on bar N's
# line (counted from bar 1 as the waveform numbers them), else its seconds.
POINT_JS = f"""(state) => {{
  {_KEEP}
  try {{
    const s = JSON.parse(state), t = Number(s.point_at);
    if (!("point_at" in s) || !Number.isFinite(t)) return keep;
    const i = (Array.isArray(s.bars) ? s.bars : []).map(Number).indexOf(t);
    return i >= 0 ? `bar ${{i + 1}}` : String(t);
  }} catch (e) {{ return keep; }}
}}"""
# Extend's *Where* (at the end, before the start, from a point) into the ``where`` field the request sends: "end"
# and "start" hidden (nothing to type), a point shown; a point chosen first is the bar line nearest the song's
# middle (or its middle), so the waveform shows one at once and the musician moves it.
PLACE_JS = """(place, where, state) => {
  const text = String(where ?? "").trim(), point = text !== "" && !["end", "start"].includes(text.toLowerCase());
  if (place !== "point") return { __type__: "update", value: place, visible: false };
  if (point) return { __type__: "update", visible: true };
  let first = "";
  try {
    const s = JSON.parse(state || "{}"), seconds = Number(s.seconds) || 0;
    const bars = (Array.isArray(s.bars) ? s.bars : []).map(Number).filter((t) => t > 0 && t < seconds);
    if (bars.length) first = `bar ${(s.bars || []).map(Number).indexOf(bars.reduce((b, t) => (Math.abs(t - seconds / 2) < Math.abs(b - seconds / 2) ? t : b))) + 1}`;
    else if (seconds > 0) first = String(Math.round(seconds * 5) / 10);
  } catch (e) {}
  return { __type__: "update", value: first, visible: true };
}"""
# ``where`` set from elsewhere (a record's settings, the API's value in a test) into *Where* and the field's showing.
WHERE_PLACE_JS = """(where, place) => {
  const text = String(where ?? "").trim().toLowerCase();
  const to = text === "start" || text === "end" ? text : text === "" ? place : "point";
  return [to === place ? { __type__: "update" } : to, { __type__: "update", visible: to === "point" }];
}"""
# Extend's whole bars to add into its seconds to add and the seam, as ``edit_bars.extension`` counts them: the
# map's bar length (the median of its last eight bars) after the bar the song ends in, else the BPM and
# metre typed where the map has no bars; the visitor's own seconds (``asked_extra``) come back when the bars
# are emptied, unless the seconds were set by hand meanwhile. Bars it cannot count (text, 0, a song not
# read yet, an unknown tempo) leave both as they were: the request says why on the field.
WITH_BARS_ADDED_JS = r"""(state, bars, seconds, bpm, meter) => {
  __KEEP__ const kept = [keep, keep];
  try {
    const s = JSON.parse(state), text = String(bars ?? "").trim(), typed = Number(seconds);
    if (!text) {
      if (!("asked_extra" in s)) return kept;
      const back = typed === s.bars_extra ? s.asked_extra : typed;
      delete s.asked_extra; delete s.bars_extra; s.extra = back;
      return [back, JSON.stringify(s)];
    }
    const count = /^\d{1,4}(\.0+)?$/.test(text) ? Math.trunc(Number(text)) : 0, end = Number(s.seconds) || 0;
    if (count < 1 || !(end > 0)) return kept;
    const lines = (Array.isArray(s.bars) ? s.bars : []).map(Number).filter(Number.isFinite);
    let more;
    if (lines.length >= 2) {
      const last = lines.slice(-9), lengths = last.slice(1).map((b, i) => b - last[i]).sort((a, b) => a - b);
      const bar = lengths[Math.floor(lengths.length / 2)], final = lines[lines.length - 1];
      const tail = end - (final + Math.floor((end - final) / bar + 1e-3) * bar);
      more = count * bar + (tail > 0.03 * bar ? bar - tail : -tail);
    } else {
      const tempo = Number(bpm), beats = Number(String(meter ?? "").split("/")[0]);
      if (!(tempo > 0) || !Number.isInteger(beats) || beats < 2 || beats > 12) return kept;
      more = (count * beats * 60) / tempo;
    }
    more = Math.round(more * 1000) / 1000;
    if ("asked_extra" in s && s.bars_extra === more && s.extra === more) return [typed === more ? keep : more, keep];
    if (!("asked_extra" in s)) s.asked_extra = typed;
    s.bars_extra = more; s.extra = more;
    return [more, JSON.stringify(s)];
  } catch (e) { return kept; }
}""".replace("__KEEP__", _KEEP)


def peaks(song: np.ndarray, buckets: int = BUCKETS) -> list[float]:
    """Loudest sample of each of ``buckets`` equal stretches of ``[channels, samples]`` audio, 0–1."""
    return audio.peaks(song, buckets)


def draw(
    song: np.ndarray,
    extra: Any = 0.0,
    start: Any = None,
    end: Any = None,
    select: bool = False,
    mapped: Map | None = None,
    heard: list[float] | None = None,
) -> str:
    """The widget's JSON for decoded audio (``song``: channels × samples at 48 kHz); ``mapped``: the song's map
    where known, ``heard``: its bar lines as heard where ``mapped`` is counted from the musician's bar 1."""
    seconds = round(audio.seconds(song), 3)
    shown = marks(mapped, seconds, heard)
    return json.dumps(
        {
            "peaks": peaks(song),
            "seconds": seconds,
            "extra": audio.finite_seconds(extra),
            "start": audio.finite_seconds(start),
            "end": audio.finite_seconds(end),
            "select": select,
            **shown,
            "snap": bool(shown["bars"]),
        },
        separators=(",", ":"),  # the state is sent whole with every change: no spaces
    )


def marks(mapped: Map | None, seconds: float, heard: list[float] | None = None) -> dict[str, Any]:
    """What the page's JSON carries of a song's map (``mapped``, ``song_map.Map``): ``bars``, its bar lines
    inside the song, ascending, to the millisecond; ``sections`` (``{"name", "start", "end"}``), named,
    inside it and not overlapping; each bounded (``MOST_BARS``, ``MOST_SECTIONS``, ``NAME_CHARS``); a grid
    denser than any tempo is none. Where the map is counted from the musician's bar 1, ``heard``: the bar
    lines as heard (``BAR_ONE_JS`` counts from them again); and ``per_bar``, its beats per bar (how a bar
    splits into the beats a correction keeps)."""
    sections: list[dict[str, Any]] = []
    last = 0.0
    for entry in mapped.sections if mapped is not None else []:
        if len(sections) >= MOST_SECTIONS:
            break
        a, b = max(last, entry.start), min(seconds, entry.end)
        if b > a:
            sections.append({"name": entry.name[:NAME_CHARS], "start": round(a, 3), "end": round(b, 3)})
            last = b
    shown = {"bars": _bar_lines(mapped.bars if mapped is not None else [], seconds), "sections": sections}
    per_bar = None if mapped is None else mapped.beats_per_bar
    per_bar = per_bar if isinstance(per_bar, int) and not isinstance(per_bar, bool) and 2 <= per_bar <= 12 else None
    as_heard = {} if heard is None else {"heard": _bar_lines(heard, seconds)}
    return shown | as_heard | ({} if per_bar is None else {"per_bar": per_bar})


def _bar_lines(lines: list[float], seconds: float) -> list[float]:
    """The bar lines ``lines`` the page draws: those inside the song, ascending, to the millisecond; none where
    there are more than ``MOST_BARS`` (a grid denser than any tempo)."""
    bars = sorted({round(t, 3) for t in map(_finite, lines[: MOST_BARS + 1]) if t is not None and 0 <= t < seconds})
    return bars if len(bars) <= MOST_BARS else []


def keeping(state: str) -> str:
    """``state`` sent again for the same song (its map added): the page keeps its own region, seconds to
    add and snap switch (``JS``), which the visitor may have set while the song was being read. Its token
    tells this state from one the page made from it (``JS``: what that one changed is the visitor's)."""
    try:
        return json.dumps({**json.loads(state), "keep": secrets.token_hex(4)}, separators=(",", ":"))
    except (TypeError, ValueError):
        return state


def refused(message: str) -> str:
    """The widget's JSON for an upload that cannot be used: no peaks, and why (shown in its place)."""
    return json.dumps(
        {"peaks": [], "seconds": 0, "extra": 0, "start": 0, "end": 0, "select": False, "message": f"⚠️ {message}"}
    )


def _finite(value: Any) -> float | None:
    """``value`` as a finite number, or None (a bool is no number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if np.isfinite(value) else None
