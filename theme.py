"""The studio's look: one Gradio theme and the CSS that goes with it (both passed to ``launch()``).

System fonts only: a Space visitor's browser should not wait on a font CDN, and a machine without
internet (the tests) should render the same page.
"""

from __future__ import annotations

from typing import Any

FONTS = ["Inter", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
MONO = ["JetBrains Mono", "ui-monospace", "SFMono-Regular", "Menlo", "monospace"]


def studio_theme() -> Any:
    """Indigo actions on slate, with a warm accent; every colour pair has a dark-mode partner."""
    import gradio as gr

    return gr.themes.Soft(
        primary_hue=gr.themes.colors.indigo,
        secondary_hue=gr.themes.colors.rose,
        neutral_hue=gr.themes.colors.slate,
        radius_size=gr.themes.sizes.radius_md,
        font=FONTS,
        font_mono=MONO,
    ).set(
        body_background_fill="*neutral_50",
        body_background_fill_dark="*neutral_950",
        block_background_fill="white",
        block_background_fill_dark="*neutral_900",
        block_border_width="1px",
        block_label_text_weight="600",
        button_large_text_size="*text_lg",
        button_large_padding="14px 28px",
        button_primary_background_fill="linear-gradient(90deg, *primary_600, *secondary_500)",
        button_primary_background_fill_hover="linear-gradient(90deg, *primary_500, *secondary_400)",
        button_primary_background_fill_dark="linear-gradient(90deg, *primary_500, *secondary_500)",
        button_primary_background_fill_hover_dark="linear-gradient(90deg, *primary_400, *secondary_400)",
        button_primary_text_color="white",
        button_primary_text_color_dark="white",
        button_primary_shadow="0 6px 18px -6px rgba(79, 70, 229, 0.55)",
        input_background_fill_dark="*neutral_800",
        slider_color="*primary_500",
        slider_color_dark="*primary_400",
    )


CSS = """
/* As wide as the window up to 1280 px, whatever the tab holds: with auto margins alone the page took
   its content's width, so the Lyrics tab (narrower content) shrank the header and the tab bar. */
.gradio-container { max-width: 1280px !important; width: 100%; margin: 0 auto; }
/* A tab's content never widens the page (inline-size containment): on a phone the audio player of an
   upload fed its own width back into the layout and the page flipped between 375 and 570 px. */
.tabitem { contain: inline-size; min-width: 0; }

/* Header: title, what runs where, and the loading state */
#studio-header h1 { margin-bottom: 0.1em; color: var(--primary-600) !important; font-weight: 800; }
.dark #studio-header h1 { color: var(--primary-400) !important; }
#studio-status { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
#studio-status p { margin: 0; }

/* The one main action of a tab stands out; Stop stays small beside it */
.main-action button, button.main-action { min-height: 52px; font-weight: 700; letter-spacing: 0.01em; }
.stop-action { max-width: 110px; }

/* Compact drop zones: an upload should not push the form off the screen. Their label floats over
   the zone's top edge, so the zone's own words start below it (a long label covered the icon) and the
   zone is as tall as its words (a fixed height cut "Click to Upload" off). */
.compact-drop .wrap, .compact-drop .upload-container { min-height: 0 !important; }
.compact-drop { min-height: 0 !important; }
.compact-drop button { padding-top: 6px; padding-bottom: 6px; }
.compact-drop button.upload-container { height: auto !important; padding-top: 34px; }

/* Quiet hints under controls, and the result panel's placeholder */
.hint, .hint p { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
.result-note p { font-size: var(--text-md); }
.result-note .result-line { white-space: pre-line; margin: 0; }
/* A progress Gradio hides (``show_progress="hidden"``, or a run's that ended) is only transparent: its
   running timer ("1.6s" before "Checking the model…") stayed in the text a screen reader reads. */
[data-testid="status-tracker"].hide { visibility: hidden; }

/* Before its first take a result column says "Nothing here yet" alone: an empty player at
   0:00, Split into stems, Send to, Use these settings and Details made a phone's Generate page 2,100 px
   tall. A player holding a take is marked ``data-ready="1"`` (player.JS); while a run is under way its
   first player shows anyway, because Gradio draws the run's progress in it, but not for an error's
   badge alone (an empty "Take 1 0:00 / 0:00" under "Error", above "Nothing here yet"): the
   error's toast says what happened, and the column stays as it was. */
.result-column:not(:has([data-ready="1"])) :is(.block.take-player-box, .stems-action, .result-actions, .result-details,
  .result-variations, .result-morph) {
  display: none !important;
}
.result-column:not(:has([data-ready="1"])) .block.take-player-box:has(> .wrap:not(.hide)) { display: block !important; }
.result-column:not(:has([data-ready="1"])) .block.take-player-box:has(> .wrap > .error) { display: none !important; }

/* Edit's and Extend's waveform only once there is a song (or a refused upload's words, or the song being
   read): before, it was an empty 110 px box under the upload. */
.block:has(> .html-container > .song-wave:not([data-shown="1"])):not(:has(> [data-testid="status-tracker"]:not(.hide))) {
  display: none !important;
}

/* Edit's Bars, Extend's Bars to add and both tabs' Bar 1, right under the waveform whose bars they set, shown with
   it: before a song there are no bars to count, and the upload's Describe stays right under it. */
.column:has(#edit-wave .song-wave:not([data-shown="1"])) :is(.form:has(> #edit-bars), #edit-bars),
.column:has(#edit-wave .song-wave:not([data-shown="1"])) :is(.form:has(> #edit-bar-one), #edit-bar-one),
.column:has(#extend-wave .song-wave:not([data-shown="1"])) :is(.form:has(> #extend-bars), #extend-bars),
.column:has(#extend-wave .song-wave:not([data-shown="1"])) :is(.form:has(> #extend-bar-one), #extend-bar-one) {
  display: none !important;
}

/* A run's progress in the first take's box starts below the box's "Take 1" label, and its steps and
   time sit on their own line under the bar (Gradio centres them over both). */
.take-player-box > .wrap.full:not(.hide) { justify-content: flex-start !important; padding-top: 30px !important; }
.take-player-box > .wrap .progress-text { position: static !important; transform: none !important; order: 2; }
.take-player-box > .wrap .progress-level { order: 1; }

/* A field the validator refused keeps its message under it until the tab's next click (theme.JS), shown
   where Gradio's own mark is gone (the page's next event of any kind removes it), never twice. */
.block[data-studio-note]:not(:has(div.validation-error))::after {
  content: attr(data-studio-note); display: block; margin-top: 6px; font-size: var(--text-sm);
  font-weight: 600; color: var(--error-text-color);
}

/* A refused upload's words (Gradio's red banner, in the block's status overlay) start below the
   upload's toolbar: at the block's top edge they covered its Clear button, the one thing to click next. */
.compact-drop div.validation-error { margin-top: 48px; }

/* A refused field the visitor cannot see (hidden by the tab's choices): its words under the button clicked, in the
   row the button shares with its Stop (theme.JS), until the tab's next click. */
.row[data-studio-note] { flex-wrap: wrap; }
.row[data-studio-note]::after {
  content: attr(data-studio-note); flex-basis: 100%; margin-top: 6px; font-size: var(--text-sm);
  font-weight: 600; color: var(--error-text-color);
}

/* A folded field the validator refused: a neutral note on the accordion's label (theme.JS) */
button.label-wrap[data-studio-note]::after {
  content: attr(data-studio-note); margin-left: auto; padding-left: 1em; text-align: right;
  font-weight: 400; font-size: var(--text-sm); color: var(--body-text-color-subdued);
}

/* Generate's tempo row: each field's help whole, in words short enough for its card (tooltips' ``TEMPO_ROW``),
   so the row stays low enough for the Generate button and the examples on a desk's first screen; a help cut to
   one line read "Tempo in beats per…". */
/* The tempo row's five fields share the form's width, each at least as wide as its label on one line */
#gen-tempo > .form > .block { flex: 1 1 0%; min-width: 160px !important; padding: 8px 10px !important; }
#gen-tempo > .form > #gen-bpm { min-width: 170px !important; }
#gen-tempo > .form > #gen-loop { min-width: 90px !important; }
#gen-tempo > .form > #gen-instrumental { min-width: 130px !important; }
#gen-tempo > .form > #gen-lock { min-width: 155px !important; }

/* Phones: nothing wider than the screen. Rows stack, the example tables scroll inside themselves,
   and the five tabs share one row (the tab bar wraps rather than hide tabs behind a menu).
   (Gradio scopes this CSS under its container: selectors start inside it.) */
@media (max-width: 640px) {
  .row { flex-wrap: wrap !important; }
  .column, .block, .form { min-width: 0 !important; }
  .column { flex: 1 1 100% !important; }
  /* 7 px a side puts all five on one row at 375 px; narrower screens wrap them to a second row */
  [role="tablist"] button { padding-left: 7px; padding-right: 7px; }
  /* inline-size containment: their content no longer widens the page, it scrolls inside them */
  table, .table-wrap { display: block; max-width: 100%; overflow-x: auto; contain: inline-size; }
  .gallery { flex-wrap: wrap; }
  #studio-header h1 { font-size: 1.6rem; }
  /* the tagline and the status line small: Generate stays on a phone's first screen */
  #studio-header p, #studio-status p { font-size: var(--text-sm); }
  #studio-header, #studio-status { overflow-wrap: anywhere; }
  .stop-action { max-width: none; }
  /* Fields side by side wrap at Gradio's own least width rather than squeeze: Loudness and the
     two fades made three 99 px cards, and a slider's track (112 px at least) ran out of its card. */
  .row > .form { flex-wrap: wrap !important; }
  .row > .form > .block { min-width: min(160px, 100%) !important; }
  /* A dropdown's arrow beside its words, not over them ("-14 LU" under the arrow) */
  .wrap-inner .secondary-wrap > .icon-wrap { position: static; transform: none; flex: none; }
  /* Write it as tall as its words, its note under it: stretched to the note's seven lines it was a tall
     empty box */
  #gen-idea-row { align-items: flex-start !important; }
  #gen-idea-row > #gen-write { align-self: flex-start; }
  #gen-idea-row > #gen-write-note { flex: 1 1 100% !important; }
  /* A field's help is one line until tapped: in full, Advanced settings open made a phone's page about 6,000 px tall. */
  .info-text:not([data-open]) {
    display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 1; overflow: hidden; cursor: help;
  }
  /* BPM, time signature and Loop three across, Instrumental and the lock two, their help shown while the field
     is in use: the tempo and the Generate button both on the first screen (390 × 844) */
  #gen-tempo > .form > .block, #gen-tempo > .form > :is(#gen-bpm, #gen-loop, #gen-instrumental, #gen-lock) {
    min-width: min(90px, 100%) !important; padding: 8px !important;
  }
  #gen-tempo .block:not(:focus-within) .info-text:not([data-open]) { display: none; }
  /* Their labels on one line (two lines each made the Generate button's bottom 839 of 844 px once the status line wrapped) */
  #gen-tempo [data-testid="block-info"] { font-size: var(--text-xs); }
  #gen-tempo > .form > #gen-loop { flex: 0 1 80px; }
}
"""

# Gradio marks a field that fails its validator, but a field in a closed accordion is not even
# mounted, so the musician would see nothing happen; and Gradio's mark goes again with the page's next
# event of any kind (the status line's timer ticks every 3 s while the model is not loaded). Gradio has
# no hook for a failed validation; its answer to the queue join (HTTP 422, one verdict per input) is the
# only place the page can learn of it. For every refused input the script finds the field (the event's
# inputs in the page's config), notes the message on it (kept until the tab's next click, drawn by CSS
# where Gradio's own mark is gone); for a field in a closed accordion it notes them on that accordion's
# label only (found in the page's layout) and opens it (so Gradio mounts and marks the field), then
# brings the field into view. A field the visitor cannot see even so (hidden by the tab's choices, so not
# mounted) has its words noted under the button clicked (the event's trigger), in view. Every field has an
# elem_id, so a visible field is always found. Notes are attributes, so Gradio's own markup is never changed.
JS = """
() => {
  if (window.__studioNotes) return;
  window.__studioNotes = true;
  const shown = (el) => el.offsetParent !== null;
  const clear = () => document.querySelectorAll('[data-studio-note]').forEach((el) => el.removeAttribute('data-studio-note'));
  // The mounted field of a component of the page (its elem_id, else Gradio's own id), or null.
  const field = (id) => {
    const c = ((window.gradio_config || {}).components || []).find((x) => x.id === id);
    const elemId = c && c.props && c.props.elem_id;
    return (elemId && document.getElementById(elemId)) || (id != null && document.getElementById(`component-${id}`));
  };
  // Counted once a refusal is handled (the field noted and in view, or given up on): what tests wait for.
  const done = () => { document.body.dataset.studioChecked = String(Number(document.body.dataset.studioChecked || 0) + 1); };
  // The closed accordions' labels that hold component ``id`` (found in the page's layout): only
  // they get a hidden field's words, never another accordion of the tab.
  const holders = (id) => {
    const config = window.gradio_config || {}, path = [];
    const walk = (node) => {
      if (node.id === id) return true;
      if ((node.children || []).some(walk)) { path.push(node.id); return true; }
      return false;
    };
    walk(config.layout || {});
    return path.map((i) => ((config.components || []).find((c) => c.id === i) || {}))
      .filter((c) => c.type === 'accordion')
      .map((c) => { const el = field(c.id); return el && el.querySelector('button.label-wrap:not(.open)'); })
      .filter(Boolean);
  };
  // Where a click's refusal of a field the visitor cannot see is said: the clicked button's row (the tab's action
  // and its Stop), the join's trigger found in the page's config.
  const clicked = (fn) => {
    const d = ((window.gradio_config || {}).dependencies || []).find((x) => x.id === fn);
    const button = d && (d.targets || []).map(([id]) => field(id)).find((el) => el && shown(el));
    return button ? button.closest('.row') || button.parentElement : null;
  };
  const note = (refused, at) => {
    const words = new Map();
    for (const [id, m] of refused) {
      const el = field(id);
      if (el && shown(el)) continue;
      for (const label of holders(id)) words.set(label, [...(words.get(label) || []), m]);
    }
    for (const [label, said] of words) {
      label.setAttribute('data-studio-note', said.join(' '));
      label.click();
    }
    let tries = 0;
    const reveal = () => {
      const found = refused.map(([id, m]) => { const el = field(id); if (el) el.setAttribute('data-studio-note', m); return [el, m]; });
      const marked = found.filter(([el]) => el && shown(el)).map(([el]) => el);
      // An accordion opened mounts its fields a moment later; a field hidden by the tab's choices never shows.
      if (marked.length < refused.length && words.size && ++tries < 20) { setTimeout(reveal, 50); return; }
      const unseen = found.filter(([el]) => !el || !shown(el)).map(([, m]) => m);
      if (unseen.length && at) at.setAttribute('data-studio-note', unseen.join(' '));
      const first = marked[0] || (unseen.length && at);
      if (first) {
        const r = first.getBoundingClientRect();
        if (r.top < 0 || r.bottom > window.innerHeight) first.scrollIntoView({block: marked.length ? 'center' : 'nearest'});
      }
      done();
    };
    setTimeout(reveal, 50);
  };
  // Gradio's slider puts a typed number back into its range when the box loses focus, without a
  // word (900 s became 600 s and a 10-minute take started). Its own blur handler is the only one that
  // does that, so the blur stops here, before it: the typed value goes to the studio's checks, which
  // say what the range is on the field, as they do for the API, and nothing runs.
  document.addEventListener('blur', (e) => {
    const box = e.target;
    if (box instanceof HTMLInputElement && box.type === 'number' && box.closest('.block')?.querySelector('input[type=range]')) {
      e.stopPropagation();
    }
  }, true);
  // A note lasts until the next click of a tab's main button or of *Write it* (other events, such as
  // the status line's timer, join the queue too), and so does an error's toast: one that stays until
  // dismissed (a model that is not there) would stay over the next click's take.
  const closeErrors = () => document.querySelectorAll('[data-testid=toast-body].error [data-testid=toast-close]')
    .forEach((button) => button.click());
  document.addEventListener('click', (e) => {
    if (e.target.closest('.main-action, .clears-notes')) { clear(); closeErrors(); }
  }, true);
  // A field's help shown in one line (CSS: every field on a phone) opens and closes with a tap on it, and shows
  // whole as its title on a hover.
  const help = (e) => e.target instanceof Element && e.target.closest('.info-text');
  document.addEventListener('click', (e) => { const h = help(e); if (h) h.toggleAttribute('data-open'); }, true);
  document.addEventListener('mouseover', (e) => { const h = help(e); if (h && !h.title) h.title = h.textContent.trim(); });
  // Gradio 6's toast heads every refusal with its kind ("Error") whatever title the error carries
  // (gradio_client gets the title; the page never shows it). The title comes in the event stream, so the
  // page reads a copy of the stream and puts the studio's title on the toast that holds the words.
  const text = (html) => new DOMParser().parseFromString(String(html), 'text/html').body.textContent.trim();
  const headed = (title, words, tries) => {
    const want = text(words).slice(0, 60);
    for (const toast of document.querySelectorAll('[data-testid=toast-body].error')) {
      const head = toast.querySelector('.toast-title');
      const said = [...toast.querySelectorAll('[data-testid=toast-text]')].some((el) => el.textContent.includes(want));
      if (head && head.firstChild && said) { head.firstChild.nodeValue = `${title} `; return; }
    }
    if (tries < 40) setTimeout(() => headed(title, words, tries + 1), 50);
  };
  const listen = async (stream) => {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let held = '';
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      const events = (held + value).split('\\n\\n');
      held = events.pop();
      for (const line of events.flatMap((e) => e.split('\\n')).filter((l) => l.startsWith('data:'))) {
        try {
          const m = JSON.parse(line.slice(5)), out = (m.msg === 'process_completed' && m.output) || {};
          if (out.error && out.title && out.title !== 'Error') headed(out.title, out.error, 0);
        } catch (e) {}
      }
    }
  };
  // Gradio's *Use via API or MCP* heads its MCP view with the page's API endpoints counted as MCP tools ("30 MCP
  // Tools") above the tools the studio serves ("10 Available MCP Tools": ``agents.TOOLS``). In that view the head
  // says the tools' count; in the others, the endpoints' again.
  const toolsCounted = () => {
    const head = document.querySelector('.api-docs h2 .counts');
    const count = head && head.querySelector('.url');
    if (!count) return;
    if (count.dataset.endpoints === undefined) count.dataset.endpoints = count.textContent;
    const listed = head.textContent.includes('MCP Tool')
      && /^\\s*(\\d+) Available MCP Tools/.exec(document.querySelector('.api-docs .tool-selection strong')?.textContent || '');
    const said = listed ? listed[1] : count.dataset.endpoints;
    if (count.textContent !== said) count.textContent = said;
  };
  new MutationObserver(toolsCounted).observe(document.body, {childList: true, subtree: true, characterData: true});
  const fetch0 = window.fetch.bind(window);
  window.fetch = async (...args) => {
    const url = String((args[0] && args[0].url) || args[0]);
    const joining = url.includes('/queue/join');
    const res = await fetch0(...args);
    if (url.includes('/queue/data') && res.ok && res.body) {
      const [mine, theirs] = res.body.tee();
      listen(mine).catch(() => {});
      return new Response(theirs, {status: res.status, statusText: res.statusText, headers: res.headers});
    }
    if (joining && res.status === 422) {
      let inputs = [], at = null;
      try {
        const fn = JSON.parse(args[1].body).fn_index;
        inputs = ((window.gradio_config || {}).dependencies || []).find((d) => d.id === fn).inputs;
        at = clicked(fn);
      } catch (e) {}
      res.clone().json().then((body) => {
        const verdicts = Array.isArray(body.detail) ? body.detail : [];
        const refused = verdicts.map((v, i) => [inputs[i] ?? null, v]).filter(([, v]) => !v.is_valid && v.message)
          .map(([id, v]) => [id, v.message]);
        if (refused.length) setTimeout(() => note(refused, at), 100);
      }).catch(() => {});
    }
    return res;
  };
}
"""
