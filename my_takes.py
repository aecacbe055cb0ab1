"""*My takes*: the takes this browser made, listed in a panel above the tabs, kept by the browser.

The list lives in the visitor's browser (Gradio's ``BrowserState``, localStorage): no account, and the
server keeps nothing of it beyond the takes themselves. Gradio encrypts it in the page with a secret it
sends in the page's own config, so the server trusts nothing in it: an entry may be forged. So:

- an entry is made by the server (``keep``, after each run) only for a take this visitor's page made
  (``take_owners.made_by``), from the take's own ``.json`` record on disk, and carries ``id``: an HMAC of
  the take's file name (``sign``; the key is a random file in the output folder, ``KEY_FILE``);
- *Send to* places a take in the uploads (``uploads.link_in``) only when its entry's ``id`` is that HMAC and the studio
  still keeps the file (``own``); anything else gets the words a cleaned take gets;
- *Use these settings* only fills Generate's fields, each checked as the form checks it (``results``);
- whether the files are still kept is asked for the names only (``kept``), when the panel opens.

Nothing the server does here lists the output folder: a visitor sees the takes their browser holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

import asgi_gate
import checks
import error_messages
import event_errors
import messages
import output_folder
import records
import results
import take_owners
import takes
import tooltips as tips
import uploads
import voice

STORAGE_KEY = "ace-studio-my-takes"
# Not a secret: Gradio sends it in the page's config. Fixed, so a restarted studio still reads the list.
STORAGE_SECRET = "ace-music-studio-my-takes"
LIMIT = 50  # entries a browser keeps, newest first
# An entry's bound in bytes (JSON, UTF-8): the longest caption and lyrics the form takes (512 and 4,096
# characters, four bytes each at most) fit; an entry over it (a record the form would refuse) keeps no
# settings. 50 entries: 1 MB at most, within a browser's 5 MB of localStorage.
ENTRY_BYTES = 20_000
TITLE_WORDS, TITLE_CHARS = 8, 48
KEY_FILE, KEY_BYTES = ".my-takes.key", 32
# A take's record without what the list needs not: its waveform and synced lines are the record's.
DROPPED = ("peaks", "lyric_lines")


class Panel(NamedTuple):
    state: gr.BrowserState  # the list itself, in the browser
    box: gr.Accordion
    view: gr.HTML  # the list as shown: ``{"entries": [...], "kept": [ids] | null}`` as JSON
    fresh: gr.JSON  # a run's new entries, on their way into the list (hidden)
    kept: gr.JSON  # the ids whose files the studio still keeps (hidden)


# ---------------------------------------------------------------- the server's side


_keys: dict[str, bytes] = {}
_keys_lock = threading.Lock()


def _key() -> bytes:
    """The HMAC key of the output folder in use: made once, kept beside the takes it vouches for."""
    folder = output_folder.output_dir()
    with _keys_lock:
        if (found := _keys.get(str(folder))) is None:
            found = _keys[str(folder)] = _read_or_make_key(folder / KEY_FILE)
        return found


def _read_or_make_key(path: Path) -> bytes:
    """The key in ``path`` (mode 0600, outside the day folders: never served, never cleaned), made by
    whichever process comes first; a folder that cannot be written gets a key for this process only
    (its entries then last as long as the process)."""
    with contextlib.suppress(OSError):
        if len(data := path.read_bytes()) == KEY_BYTES:
            return data
    fresh = secrets.token_bytes(KEY_BYTES)
    partial = path.with_name(f".partial-{secrets.token_hex(4)}{path.name}")
    try:
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            out.write(fresh)
        try:
            os.link(partial, path)  # complete or absent, and never over another process's key
        except FileExistsError:
            with contextlib.suppress(OSError):
                if len(data := path.read_bytes()) == KEY_BYTES:
                    return data
            os.replace(partial, path)  # not a key: replaced
    except OSError as exc:
        print(
            f"My takes: no key file in the output folder ({type(exc).__name__}); entries are signed by this process's own key"
        )
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
    return fresh


_ID = re.compile(r"[0-9a-f]{32}")


def sign(relative: str) -> str:
    """The entry id of the take ``relative`` names: an HMAC only this studio can make."""
    return hmac.new(_key(), b"my-takes/1\n" + relative.encode(), hashlib.sha256).hexdigest()[:32]


def own(entry: Any) -> tuple[dict[str, Any], Path]:
    """The take of an entry (its record fields and its file), when the entry is one this studio made
    and the take is still kept; ``gr.Error`` in the same words otherwise (forged, another visitor's, or
    cleaned: nothing tells which)."""
    take = entry.get("take") if isinstance(entry, dict) else None
    audio = take.get("audio") if isinstance(take, dict) else None
    given = entry.get("id") if isinstance(entry, dict) else None
    # An id is 32 hex digits (``sign``); anything else, a lone surrogate too, is refused before any compare.
    if not (
        isinstance(audio, str)
        and audio.isprintable()
        and len(audio) <= 200
        and isinstance(given, str)
        and _ID.fullmatch(given)
    ):
        raise gr.Error(error_messages.MY_TAKE_GONE.format(hours=output_folder.output_max_age_hours()))
    path = output_folder.studio_take_audio(audio)
    if path is None or not hmac.compare_digest(given.encode(), sign(audio).encode()):
        raise gr.Error(error_messages.MY_TAKE_GONE.format(hours=output_folder.output_max_age_hours()))
    return take, path


def keep(record: Any, request: gr.Request = None) -> list[dict[str, Any]]:
    """The entries of a result's takes (``record``: the metadata a music endpoint returns; only its
    takes' ``audio`` is read) that this visitor's page made and the studio keeps: each from the take's
    own record on disk, with its URLs and its ``id``. Anything else is left out, without a word (a
    stopped run has no takes)."""
    entries = []
    for take in records.Record.of(record).takes[: checks.MAX_TAKES]:
        audio = take.audio
        path = output_folder.studio_take_audio(audio)
        if path is None or not take_owners.made_by(request, audio):
            continue
        with contextlib.suppress(gr.Error):
            entries.append(entry(records.read(path.with_suffix(".json")), path, request))
    return entries


def entry(record: dict[str, Any], path: Path, request: Any = None) -> dict[str, Any]:
    """A list entry from a take's own record: what the panel shows and *Use these settings* needs."""
    relative = path.relative_to(output_folder.output_dir()).as_posix()
    how_made = records.Record.of(record)
    mine = next((t for t in how_made.takes if t.audio == relative), records.Take.of({"audio": relative}, 1))
    take = {k: v for k, v in mine.entry.items() if k not in DROPPED}
    preview = output_folder.studio_file(mine.preview) or path
    found = {
        "id": sign(relative),
        "title": title(how_made, take),
        "mode": how_made.mode or "",
        "seconds": mine.seconds or 0,
        "created": how_made.created or "",
        "format": str(how_made.encoding.get("format") or path.suffix.lstrip(".")).upper(),
        "url": asgi_gate.take_url(path, request) or "",
        "preview": asgi_gate.take_url(preview, request) or "",
        "params": how_made.kept(),
        "take": take,
        "voice": voice.sings(record, mine),  # *Use this voice* offered only on a take that sings
    }
    if size(found) > ENTRY_BYTES:
        found |= {"params": None}  # listed and sendable; its settings stay in its .json
    return found


def size(found: Any) -> int:
    """An entry's size as the browser keeps it (JSON, UTF-8)."""
    return len(json.dumps(found, ensure_ascii=False).encode())


def title(how_made: records.Record, take: dict[str, Any]) -> str:
    """The caption's first words (else the planner's caption, else the first sung line)."""
    for caption in how_made.captions(take):
        words = "".join(c for c in caption if c.isprintable()).split()
        if words:
            text = " ".join(words[:TITLE_WORDS])
            cut = len(words) > TITLE_WORDS or len(text) > TITLE_CHARS
            return text[: TITLE_CHARS - 1].rstrip() + "…" if cut else text
    return takes.title(how_made, 1, 1)


def kept(entries: Any) -> list[str]:
    """The ids of ``entries`` (``{"id", "audio"}`` each, the first ``LIMIT``) that are this studio's
    and whose take it still keeps."""
    found = []
    for item in entries[:LIMIT] if isinstance(entries, list) else ():
        with contextlib.suppress(gr.Error):
            own({"id": item.get("id"), "take": {"audio": item.get("audio")}} if isinstance(item, dict) else None)
            found.append(item["id"])
    return found


def use_settings(entry: Any) -> tuple[Any, ...]:
    """*Use these settings* of an entry: Generate's fields, as a result's button fills them (each value
    checked as the form checks it), and Generate selected. Works for a take already cleaned: the
    settings are the browser's."""
    if not isinstance(entry, dict):
        raise gr.Error(error_messages.MY_TAKE_NONE)
    kept = records.kept_record(entry)
    if kept is None:
        raise gr.Error(error_messages.MY_TAKE_NO_SETTINGS)
    return results.settings_from_record(kept, 1)


def send_to(target: str) -> Callable[..., tuple[Any, ...]]:
    """*Send to* ``target`` of an entry: what a result's button fills (the take as the song; Extend's
    and Edit's style; Edit's region), the take placed in the uploads, and the tab selected."""

    def send(entry: Any) -> tuple[Any, ...]:
        if not isinstance(entry, dict):
            raise gr.Error(error_messages.MY_TAKE_NONE)
        take, path = own(entry)
        placed = uploads.link_in(path)
        if placed is None:
            raise gr.Error(messages.UPLOADS_FULL)
        style = results.take_style(records.kept_record(entry) or {}, take)
        filled = {
            "cover": (placed,),
            "extend": (placed, style),
            "edit": (placed, style, *results.middle_region(take.get("seconds"))),
        }
        return (*filled[target], gr.Tabs(selected=target))

    send.__name__ = f"send_my_take_to_{target}"
    return send


# ---------------------------------------------------------------- the page's side

# The list, drawn in the page from the view's value: text nodes only (titles are the visitor's words),
# a player that fetches nothing until clicked, the buttons as custom events of the view. Which entry a
# button means is noted on the view's element for the event's ``PICK_JS``: only that entry is sent.
JS = """
const CLEANED = __CLEANED__;
const MODES = {generate: "Generate", cover: "Cover", extend: "Extend", edit: "Edit", morph: "Morph"};
const ACTIONS = [["settings", "use_settings", "Use these settings"], ["voice", "use_voice", "Use this voice"],
                 ["cover", "send_cover", "Send to Cover"], ["extend", "send_extend", "Send to Extend"],
                 ["edit", "send_edit", "Send to Edit"]];
const read = () => { try { const v = JSON.parse(props.value || "{}"); return v && typeof v === "object" ? v : {}; } catch (e) { return {}; } };
const clock = (s) => { const t = Math.max(0, Math.round(Number(s) || 0)); return Math.floor(t / 60) + ":" + String(t % 60).padStart(2, "0"); };
const when = (iso) => { const d = new Date(String(iso || "")); return isNaN(d) ? "" : d.toLocaleString(undefined, {dateStyle: "medium", timeStyle: "short"}); };
const made = (tag, cls, text) => { const el = document.createElement(tag); el.className = cls; if (text !== undefined) el.textContent = text; return el; };
function clicked(id, name) {
  const host = document.getElementById("my-takes-list");
  if (host) host.dataset.pick = id;
  trigger(name);
}
function row(entry, cleaned) {
  const li = made("li", "my-take");
  li.dataset.id = String(entry.id || ""); li.dataset.gone = cleaned ? "1" : "0";
  const take = entry.take && typeof entry.take === "object" ? entry.take : {};
  const meta = [MODES[entry.mode] || String(entry.mode || ""), clock(entry.seconds), when(entry.created),
                Number(take.take) > 1 ? "take " + Number(take.take) : ""].filter(Boolean).join(" · ");
  li.append(made("div", "my-take-title", String(entry.title || "Untitled")), made("div", "my-take-meta", meta));
  if (cleaned) li.append(made("p", "my-take-gone", CLEANED));
  else if (/^https?:\\/\\//.test(String(entry.preview || ""))) {
    const player = made("audio", "my-take-player");
    player.controls = true; player.preload = "none"; player.src = entry.preview;
    li.append(player);
  }
  const actions = made("div", "my-take-actions");
  for (const [kind, name, label] of ACTIONS) {
    if ((cleaned && kind !== "settings") || (kind === "voice" && entry.voice === false)) continue;
    const button = made("button", "my-take-" + kind, label);
    button.type = "button";
    button.addEventListener("click", () => clicked(li.dataset.id, name));
    actions.append(button);
  }
  li.append(actions);
  return li;
}
function show() {
  const state = read(), rows = element.querySelector(".my-takes-rows"), empty = element.querySelector(".my-takes-empty");
  if (!rows || !empty) return;
  const entries = Array.isArray(state.entries) ? state.entries.filter((e) => e && typeof e === "object") : [];
  const kept = Array.isArray(state.kept) ? new Set(state.kept) : null;
  // Rows already drawn stay (a take playing goes on playing while a new one is added).
  const drawn = new Map([...rows.children].map((li) => [li.dataset.id + "/" + li.dataset.gone, li]));
  rows.replaceChildren(...entries.map((e) => {
    const cleaned = kept !== null && !kept.has(e.id);
    return drawn.get(String(e.id || "") + "/" + (cleaned ? "1" : "0")) || row(e, cleaned);
  }));
  empty.style.display = entries.length ? "none" : "block";
  element.dataset.count = String(entries.length);
  element.dataset.checked = kept === null ? "0" : "1";
}
watch("value", show);
show();
"""

CSS = """
.my-takes-note, .my-take-meta { opacity: 0.75; font-size: 0.9em; margin: 0; }
.my-takes-empty { margin: 6px 0 0; }
.my-takes-rows { list-style: none; margin: 0; padding: 0; }
.my-take { padding: 8px 0; border-top: 1px solid var(--border-color-primary); overflow-wrap: anywhere; min-width: 0; }
.my-take-title { font-weight: 600; }
.my-take-gone { margin: 4px 0; }
.my-take-player { width: 100%; display: block; margin: 4px 0; }
.my-take-actions { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 4px; }
.my-take-actions button { border: 1px solid var(--button-secondary-border-color); border-radius: var(--button-small-radius);
  background: var(--button-secondary-background-fill); color: var(--button-secondary-text-color); padding: 2px 10px;
  font-size: var(--button-small-text-size); cursor: pointer; }
"""

# The list and what the studio says it keeps, as the view's value.
VIEW_JS = """(list, kept) => JSON.stringify({entries: Array.isArray(list) ? list : [], kept: Array.isArray(kept) ? kept : null})"""
# A run's new entries first, then the list without them, the first LIMIT; they are kept, by their making.
MERGE_JS = """(fresh, list, view) => {
  const made = Array.isArray(fresh) ? fresh.filter((e) => e && typeof e === "object" && e.id) : [];
  const ids = new Set(made.map((e) => e.id)), old = Array.isArray(list) ? list : [];
  if (!made.length) return [old, view];
  const next = [...made, ...old.filter((e) => e && !ids.has(e.id))].slice(0, __LIMIT__);
  let kept = null;
  try { const seen = JSON.parse(view || "{}").kept; kept = Array.isArray(seen) ? [...ids, ...seen] : null; } catch (e) {}
  return [next, JSON.stringify({entries: next, kept})];
}"""
# What the server is sent: the entry a button means, the names to check, a result's file names.
PICK_JS = """(list) => {
  const host = document.getElementById("my-takes-list"), id = host ? host.dataset.pick : "";
  return [(Array.isArray(list) ? list : []).find((e) => e && e.id === id) ?? null];
}"""
NAMES_JS = """(list) => [(Array.isArray(list) ? list : []).slice(0, __LIMIT__)
  .map((e) => ({id: e && e.id, audio: e && e.take && e.take.audio}))]"""
SLIM_JS = """(record) => [record && Array.isArray(record.takes) ? {takes: record.takes.map((t) => ({audio: t && t.audio}))} : {}]"""
# After Use these settings or Send to: the tab that was filled, in view (the list may be long).
SCROLL_JS = (
    """() => { document.getElementById("studio-tabs")?.scrollIntoView({behavior: "smooth", block: "start"}); }"""
)


def build() -> Panel:
    """The panel, collapsed: a note, the list (newest first) or "no takes yet"."""
    hours = output_folder.output_max_age_hours()
    state = gr.BrowserState([], storage_key=STORAGE_KEY, secret=STORAGE_SECRET)
    # /gradio_api/info names a parameter by its field's label, and a BrowserState takes none (it said
    # "parameter_6" for My takes' events): one in its config.
    gradio_config = state.get_config
    state.get_config = lambda cls=None: {**gradio_config(cls), "label": "My takes"}
    note = html.escape(tips.MY_TAKES_NOTE.format(limit=LIMIT, hours=hours))
    template = (
        f'<div class="my-takes"><p class="my-takes-note">{note}</p>'
        f'<p class="my-takes-empty">{html.escape(tips.MY_TAKES_EMPTY)}</p><ol class="my-takes-rows"></ol></div>'
    )
    with gr.Accordion("My takes", open=False, elem_id="my-takes") as box:
        view = gr.HTML(
            "",
            html_template=template,
            css_template=CSS,
            js_on_load=JS.replace("__CLEANED__", json.dumps(messages.MY_TAKE_CLEANED.format(hours=hours))),
            elem_id="my-takes-list",
            padding=False,
        )
    fresh, kept = gr.JSON(label="New takes", visible=False), gr.JSON(label="Takes still kept", visible=False)
    return Panel(state, box, view, fresh, kept)


def keep_after(run: Any, meta: gr.JSON, panel: Panel, tab: str) -> None:
    """After a music run (``run``, its click's event; ``meta`` its record): its takes into the list.
    Generate's is the public ``/keep_takes``."""
    public = tab == "generate"
    run.success(
        event_errors.expected_errors(keep),
        meta,
        panel.fresh,
        js=SLIM_JS,
        show_progress="hidden",
        api_name="keep_takes" if public else f"keep_takes_{tab}",
        api_visibility="public" if public else "private",
    ).success(
        None,
        [panel.fresh, panel.state, panel.view],
        [panel.state, panel.view],
        js=MERGE_JS.replace("__LIMIT__", str(LIMIT)),
        api_visibility="private",
    )


def wire(demo: gr.Blocks, panel: Panel, settings: list[Any], receivers: dict[str, list[Any]], tabs: gr.Tabs) -> Any:
    """The panel's events: the list drawn at the page's load (in the page); the names checked when the
    panel opens; *Use these settings* (``/my_take_settings``, its event returned) and *Send to*
    (``/send_my_take_to_<tab>``) of the entry a button means (*Use this voice*: ``voice_row``).
    ``settings``: Generate's fields as ``results.settings_from_record`` fills them; ``receivers``: what
    each tab's Send to fills."""
    quiet, view, state = event_errors.expected_errors, panel.view, panel.state
    demo.load(None, state, view, js=VIEW_JS, api_visibility="private")
    panel.box.expand(
        quiet(kept),
        state,
        panel.kept,
        js=NAMES_JS.replace("__LIMIT__", str(LIMIT)),
        api_name="my_takes_kept",
        api_visibility="private",
        show_progress="hidden",
    ).then(None, [state, panel.kept], view, js=VIEW_JS, api_visibility="private")
    used = view.use_settings(quiet(use_settings), state, [*settings, tabs], js=PICK_JS, api_name="my_take_settings")
    used.success(None, None, None, js=SCROLL_JS, api_visibility="private")
    for target, receives in receivers.items():
        getattr(view, f"send_{target}")(
            quiet(send_to(target)), state, [*receives, tabs], js=PICK_JS, api_name=f"send_my_take_to_{target}"
        ).success(None, None, None, js=SCROLL_JS, api_visibility="private")
    return used
