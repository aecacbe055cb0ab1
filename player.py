"""The take player in the page: the take's compressed preview in the browser's own ``<audio>`` player,
its waveform drawn from the peaks the server computed, and a link to the take in the format chosen.

Gradio's ``gr.Audio`` hands its file to wavesurfer.js, which fetches the whole file and decodes it in
the page (``decodeAudioData``) before it shows a duration: four ten-minute WAVs are 400 MB to fetch and
about 750 MB of decoded samples, and three of four players stayed at 0:00. Its ``load(url)`` takes no
peaks, and its player and its download link share one URL. So each take slot (``widgets.takes_column``)
keeps its ``gr.Audio`` for the API, hidden, and shows this widget: a ``gr.HTML`` whose value is the JSON
state ``{"src", "download", "name", "format", "peaks", "seconds", "lines", "score", "tempo", "lrc", "bars", "sections"}``
(or ``""`` for no take), filled in the page from the result's record (``FROM_RESULT_JS``). The ``<audio>``
element streams the preview by byte ranges (``asgi_gate.Gate``) and knows its duration from the first
frames; nothing is decoded to draw the waveform. A sung take shows its lyric-alignment score beside its
label and its synced lines under the player (every take with a beat: its tempo as played, in words), the line being sung highlighted from the player's time
(a click on a line plays from there), and a link to its ``.lrc``. The take's bars and sections are drawn
over its waveform (``waveform.MARKS_JS``); a click on a section plays from its start.
"""

from __future__ import annotations

import html
import json

import messages
import waveform

# Runs once per widget (Gradio's ``js_on_load``: ``element``, ``props``, ``watch``). Elements are
# looked up when used and media events are caught in the capture phase on ``element`` (they do not
# bubble), so nothing depends on Gradio keeping the template's nodes. The canvas lies absolutely in a
# box of fixed height (see waveform.py: a canvas in the flow widened its column on a phone).
JS = (
    waveform.MARKS_JS
    + f"const PART_LINK = {json.dumps(messages.PART_LINK)}, SCORE = {json.dumps(messages.LYRIC_BADGE)};"
    + f"const UNLOCKED_LINK = {json.dumps(messages.UNLOCKED_LINK)};"
    + """
const part = (sel) => element.querySelector(sel);
let state = {}, drawnWidth = 0;
const read = () => { try { return JSON.parse(props.value || "{}") || {}; } catch (e) { return {}; } };
const total = () => { const a = part("audio"), d = a && a.duration; return Number.isFinite(d) && d > 0 ? d : (state.seconds || 0); };
function draw() {
  const c = part("canvas"); if (!c) return;
  const w = Math.round(c.getBoundingClientRect().width) || 400, h = 56, peaks = state.peaks || [];
  drawnWidth = w; c.width = w; c.height = h;
  const ctx = c.getContext("2d"); ctx.clearRect(0, 0, w, h);
  if (!peaks.length) return;
  const a = part("audio"), t = total(), played = t && a ? Math.min(1, a.currentTime / t) : 0, bar = w / peaks.length;
  const top = below(state);
  peaks.forEach((p, i) => {
    const ph = Math.max(1, p * (h - top - 4));
    ctx.fillStyle = (i + 0.5) / peaks.length <= played ? "rgb(79, 70, 229)" : "rgba(79, 70, 229, 0.38)";
    ctx.fillRect(i * bar, top + (h - top - ph) / 2, Math.max(1, bar - 0.6), ph);
  });
  barTicks(ctx, barsOf(state), t, w, h);
}
// The take's sections over its waveform (``waveform.MARKS_JS``): a click on one plays from its start.
function sections() {
  const box = part(".take-wave");
  if (box) sectionBlocks(box, state.src ? state.sections : [], state.seconds || 0, "{name} ({span})", null);
}
function show() {
  state = read();
  const a = part("audio"), foot = part(".take-foot");
  if (!a || !foot) return;
  element.dataset.ready = state.src ? "1" : "0";
  foot.replaceChildren();
  if (state.src) {
    if (a.getAttribute("src") !== state.src) { a.src = state.src; }
    a.loop = !!state.loop;  // a loop (its record's ``loop``) plays round and round
    const link = document.createElement("a");
    link.className = "download-link"; link.href = state.download; link.download = state.name || "";
    link.textContent = "Download " + (state.format || "take"); link.title = state.name || "";
    foot.append(link);
    if (state.part) {
      const alone = document.createElement("a");
      alone.className = "part-link"; alone.href = state.part; alone.download = state.part.split("/").pop();
      alone.textContent = PART_LINK; alone.style.marginLeft = "1em";
      foot.append(alone);
    }
    if (state.unlocked) {  // a take locked to the grid: the take as played, beside it (``grid_lock``)
      const played = document.createElement("a");
      played.className = "unlocked-link"; played.href = state.unlocked; played.download = state.unlocked.split("/").pop();
      played.textContent = UNLOCKED_LINK; played.style.marginLeft = "1em";
      foot.append(played);
    }
    if (state.lrc) {
      const lrc = document.createElement("a");
      lrc.className = "lrc-link"; lrc.href = state.lrc; lrc.download = state.lrc.split("/").pop();
      lrc.textContent = "Download LRC"; lrc.style.marginLeft = "1em";
      foot.append(lrc);
    }
  } else if (a.hasAttribute("src")) {
    a.pause(); a.removeAttribute("src"); a.load();
  }
  lyrics();
  sections();
  draw();
}
// The synced lines as text nodes (never markup: they are the visitor's words), and the score.
function lyrics() {
  const box = part(".take-lyrics"), badge = part(".take-score"), lines = state.src && Array.isArray(state.lines) ? state.lines : [];
  if (!box || !badge) return;
  badge.textContent = state.src && typeof state.score === "number" ? SCORE.replace("{score}", state.score.toFixed(2)) : "";
  const tempo = part(".take-tempo");  // the take's tempo as played, in words (``song_map.Tempo.said``)
  if (tempo) tempo.textContent = state.src && typeof state.tempo === "string" ? "· " + state.tempo : "";
  box.replaceChildren(...lines.map((line) => {
    const li = document.createElement("li");
    li.textContent = String(line.text ?? ""); li.dataset.t = String(Number(line.time) || 0);
    li.style.cssText = "padding: 1px 0; cursor: pointer; opacity: 0.6;";
    return li;
  }));
  box.style.display = lines.length ? "block" : "none";
  now = -1; highlight();
}
let now = -1;
function highlight() {
  const box = part(".take-lyrics"), a = part("audio");
  if (!box || !a || !box.children.length) return;
  const t = a.currentTime, items = [...box.children];
  let at = -1;
  items.forEach((li, i) => { if (Number(li.dataset.t) <= t + 0.05) at = i; });
  if (at === now) return;
  now = at;
  items.forEach((li, i) => { li.classList.toggle("now", i === at); li.style.opacity = i === at ? "1" : "0.6"; li.style.fontWeight = i === at ? "600" : ""; });
  // Scroll the box only (scrollIntoView would scroll the page under the visitor).
  if (at >= 0) box.scrollTop = Math.max(0, items[at].offsetTop - box.clientHeight / 2 + items[at].offsetHeight / 2);
}
element.addEventListener("click", (ev) => {
  const line = ev.target.closest && ev.target.closest(".take-lyrics li, .ace-section"), player = part("audio");
  if (line && player && state.src) { player.currentTime = Number(line.dataset.t ?? line.dataset.from) || 0; highlight(); draw(); return; }
  const c = part("canvas"), a = part("audio"), t = total();
  if (ev.target !== c || !a || !state.src || !t) return;
  const r = c.getBoundingClientRect();
  a.currentTime = Math.max(0, Math.min(1, (ev.clientX - r.left) / r.width)) * t;
  draw();
});
for (const name of ["timeupdate", "seeked", "loadedmetadata", "emptied"]) {
  element.addEventListener(name, draw, true);
  element.addEventListener(name, highlight, true);
}
watch("value", show);
new ResizeObserver(() => { const c = part("canvas"); if (c && Math.round(c.getBoundingClientRect().width) !== drawnWidth) draw(); }).observe(element);
show();
"""
)


def template(label: str) -> str:
    """The widget's markup: its label, the waveform box, the player and the download line."""
    return (
        f'<div class="take-player"><span class="take-label">{html.escape(label)}</span>'
        f' <span class="take-score" title="{html.escape(messages.LYRIC_SCORE)}" style="opacity: 0.75;"></span>'
        f' <span class="take-tempo" title="{html.escape(messages.TEMPO_HELP)}" style="opacity: 0.75;"></span>'
        '<div class="take-wave" style="position: relative; height: 56px; contain: strict; cursor: pointer;">'
        '<canvas style="position: absolute; inset: 0; width: 100%; height: 100%;"></canvas></div>'
        '<audio controls preload="metadata" style="width: 100%; display: block;"></audio>'
        '<ol class="take-lyrics" style="display: none; position: relative; list-style: none; margin: 4px 0;'
        ' padding: 0 4px; max-height: 7.5em; overflow-y: auto; overflow-wrap: anywhere;"></ol>'
        '<div class="take-foot"></div></div>'
    )


# A result's takes into its players, in the page (a js-only event after the run): the preview's URL
# sits where the take's does (both under /takes/), the record says each take's files and peaks.
# Inputs: the record, then every take slot's value (a FileData with the take's URL, or null).
FROM_RESULT_JS = """(record, ...slots) => {
  const made = record && Array.isArray(record.takes) ? record.takes : [];
  const format = String((record && record.encoding && record.encoding.format) || "").toUpperCase();
  return slots.map((slot, i) => {
    const take = made[i], url = slot && (slot.url || slot.path);
    if (!take || typeof url !== "string" || typeof take.audio !== "string") return "";
    const at = url.lastIndexOf(take.audio);
    // A loop plays its own WAV or FLAC, sample-exact round its wrap (an MP3 adds its encoder's silence).
    const loop = !!(record && record.loop) && format !== "MP3";
    const src = at >= 0 && typeof take.preview === "string" && !loop ? url.slice(0, at) + take.preview : url;
    const lrc = at >= 0 && typeof take.lrc === "string" ? url.slice(0, at) + take.lrc : "";
    const part = at >= 0 && typeof take.part === "string" ? url.slice(0, at) + take.part : "";
    const unlocked = at >= 0 && typeof take.unlocked === "string" ? url.slice(0, at) + take.unlocked : "";
    return JSON.stringify({src, download: url, name: take.audio.split("/").pop(), format,
                           peaks: Array.isArray(take.peaks) ? take.peaks : [], seconds: Number(take.seconds) || 0,
                           bars: Array.isArray(take.bars) ? take.bars : [], sections: Array.isArray(take.sections) ? take.sections : [],
                           lines: Array.isArray(take.lyric_lines) ? take.lyric_lines : [], lrc, part, unlocked,
                           loop: !!(record && record.loop),
                           tempo: [take.tempo && take.tempo.said, take.lock && !take.lock.locked && take.lock.why]
                                    .filter((w) => typeof w === "string" && w).join(" · ") || null,
                           score: typeof take.lyric_score === "number" ? take.lyric_score : null});
  });
}"""
