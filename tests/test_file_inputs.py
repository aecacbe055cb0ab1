"""Tests of ``widgets.any_file`` and ``audio.unseen``: every file input of every endpoint (the song, the timbre
reference, the LoRA file, a take's record …, found in the API's own description) refuses a file the studio
cannot see for its real reason (a URL: the studio fetches none; a path on the server: no upload of the
visitor's; an upload that is gone: upload it again), and the API's documentation shows, for each, an example
the studio takes (a file on the caller's computer, which ``gradio_client.handle_file`` uploads)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from gradio_client.utils import is_http_url_like

import error_messages
from conftest import CLIENT_TIMEOUT_S, inputs, page_api

URL = "https://github.com/gradio-app/gradio/raw/main/test/test_files/audio_sample.wav"
# The words of each refusal, its ``what`` left out (each input names its own file).
SAID_URL = error_messages.FILE_URL.split("{what}")[1][:40]
SAID_NOT_UPLOADED = error_messages.FILE_NOT_UPLOADED.split("{what}")[1][:40]
SAID_GONE = "upload it again"
LOST_UPLOAD = "could not be found"


def _file_inputs(named: dict[str, dict]) -> list[tuple[str, str]]:
    """(endpoint, parameter) of every file input the API describes: its example is a file object."""
    return [
        (api, p["parameter_name"])
        for api, endpoint in named.items()
        for p in endpoint["parameters"]
        if isinstance(p.get("example_input"), dict) and (p["example_input"].get("meta") or {}).get("_type")
    ]


def test_every_file_inputs_api_example_is_a_file_the_studio_takes():
    """Gradio's own example for an audio or file input is a URL on github.com, shown on the page's *Use via API*
    as ``handle_file('https://…')``: pasted, the studio refused it. Each file input's example is a file name on
    the caller's computer (``handle_file`` uploads it), and its help says how a file reaches the studio."""
    from gradio_client.snippet import generate_code_snippets

    import app

    named = app.build_ui().get_api_info()["named_endpoints"]
    found = _file_inputs(named)
    assert {"/cover_analyze", "/extend_analyze", "/edit_analyze", "/generate", "/settings_from_file"} <= {
        api for api, _ in found
    }
    shown = {}
    for api, name in found:
        param = next(p for p in named[api]["parameters"] if p["parameter_name"] == name)
        example = param["example_input"]
        snippet = generate_code_snippets(api, named[api], "http://studio/")["python"]
        shown[(api, name)] = example["url"]
        assert not is_http_url_like(example["path"]) and not is_http_url_like(example["url"]), (api, name, example)
        # The snippet shows the example where the input has no default (an optional file shows None).
        given = "None" if param["parameter_has_default"] else f"handle_file('{example['path']}')"
        assert "/" not in example["path"] and f"{name}={given}," in snippet, snippet
        assert "handle_file" in param["python_type"]["description"], (api, name)
    print(f"\n{len(found)} file inputs: {sorted(set(shown.values()))}")


@pytest.fixture(scope="module")
def studio(studio_server):
    url, _ = studio_server
    fns, parameters = page_api(url)
    named = httpx.get(f"{url}gradio_api/info", timeout=CLIENT_TIMEOUT_S).json()["named_endpoints"]
    return url, fns, parameters, _file_inputs(named)


def _call(url: str, fns: dict, api: str, data: list, session: str) -> str:
    """``api`` joined as a page joins it: what came back (a refusal at the join, an error, or the outputs), as text."""
    joined = httpx.post(
        f"{url}gradio_api/queue/join",
        json={"data": data, "fn_index": fns[api], "session_hash": session},
        timeout=CLIENT_TIMEOUT_S,
    )
    if joined.status_code != 200:
        return joined.text
    with httpx.stream(
        "GET", f"{url}gradio_api/queue/data", params={"session_hash": session}, timeout=CLIENT_TIMEOUT_S
    ) as stream:
        for line in stream.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                return json.dumps(message.get("output"), ensure_ascii=False)
    raise AssertionError("no answer")


def _upload(url: str, tmp_path: Path, name: str) -> str:
    """A song uploaded as a visitor uploads it: its path in the upload folder."""
    song = tmp_path / name
    sf.write(str(song), 0.3 * np.sin(np.arange(12 * 48000) / 48000 * 2 * np.pi * 220).astype(np.float32), 48000)
    answer = httpx.post(f"{url}gradio_api/upload", files={"files": (name, song.read_bytes())}, timeout=60)
    return answer.json()[0]


def _refused_elsewhere(answer: str, name: str) -> bool:
    """Whether the join was refused on another field than ``name`` (a record the input needs first)."""
    try:
        verdicts = json.loads(answer)["detail"]
        return any(not v["is_valid"] and v["parameter_name"] != name for v in verdicts)
    except (ValueError, KeyError, TypeError):
        return False


def test_a_file_the_visitor_cannot_see_is_refused_for_its_real_reason_on_every_file_input(studio, tmp_path):
    """A URL pasted from Gradio's own example was answered "The song file could not be found; please upload it
    again", the words of a lost upload. On every file input of every endpoint: a URL (as ``handle_file`` sends
    it, and bare) is told the studio fetches none; a path on the server, that it is no upload of the visitor's;
    an upload that is gone (the endpoint's other songs uploaded), to upload it again."""
    url, fns, parameters, found = studio
    gone = _upload(url, tmp_path, "gone.wav")
    Path(gone).unlink()
    song = {"path": _upload(url, tmp_path, "song.wav"), "meta": {"_type": "gradio.FileData"}}
    sent = {
        "url": ({"path": URL, "url": URL, "orig_name": "sample.wav", "meta": {"_type": "gradio.FileData"}}, SAID_URL),
        "bare url": ({"path": URL}, SAID_URL),
        "server path": ({"path": "/etc/hostname"}, SAID_NOT_UPLOADED),
        "gone": ({"path": gone, "meta": {"_type": "gradio.FileData"}}, SAID_GONE),
    }
    wrong, reached = [], 0
    for api, name in found:
        params = parameters[api[1:]]
        words = {"prompt": "x"} if any(p["parameter_name"] == "prompt" for p in params) else {}
        songs = {n: song for a, n in found if a == api and n != name and n.endswith("_audio")}
        for how, (value, said) in sent.items():
            data = inputs(params, **words, **(songs if how == "gone" else {}), **{name: value})
            answer = _call(url, fns, api[1:], data, f"file-{api[1:]}-{name}-{how}".replace(" ", "-"))
            if how == "gone" and _refused_elsewhere(answer, name):
                continue  # a take's record comes first: the file is not read without one
            reached += 1
            if said not in answer or (how != "gone" and LOST_UPLOAD in answer):
                wrong.append(f"{api} {name} ({how}): {answer[:200]}")
    print(f"\n{len(found)} file inputs × {len(sent)} ways, {reached} reaching the file: {len(wrong)} told wrong")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("marker", ["URL_GIVEN", "NOT_UPLOADED"])
def test_every_adapter_slot_names_its_file_as_a_lora_or_lokr_file(marker):
    """An adapter slot takes a LoRA or a LoKr file: a URL or a server path given in any slot is refused on that
    slot's field in those words (the join's check, ``handlers.check_files_seen``, and the preparer's), never
    as a "LoRA file" alone."""
    import audio
    import handlers
    import parameters
    import preparing
    from checks import InputError

    said = {"URL_GIVEN": error_messages.FILE_URL, "NOT_UPLOADED": error_messages.FILE_NOT_UPLOADED}[marker]
    for slot in parameters.ADAPTER_SLOTS:
        file = slot[0]
        with pytest.raises(InputError) as joined:
            handlers.check_files_seen({file: getattr(audio, marker)})
        with pytest.raises(InputError) as prepared:
            preparing.check_lora(getattr(audio, marker), 1.0, None, slot=slot)
        for refused in (joined.value, prepared.value):
            assert refused.param == file and refused.message == said.format(what=error_messages.ADAPTER_FILE), refused
