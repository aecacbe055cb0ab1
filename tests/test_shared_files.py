"""Tests of ``uploads``, ``take_owners`` and ``admission.unmarked``: a stranger goes after other visitors'
files on the shared studio: flooding the upload folder while a victim waits, naming server files and
other visitors' takes as inputs, and requests Gradio alone would answer with a bare "Error".

The studio runs as ``python app.py`` in its own process on tiny models, with a small upload quota
(``QUOTA_MB``) and no grace for recent uploads (``ACE_STUDIO_UPLOAD_KEEP_MINUTES=0``), so that what
keeps the victim's song is the queue itself. Attacked through raw HTTP and ``gradio_client``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError

import messages
from conftest import CLIENT_TIMEOUT_S, inputs, page_api, served_env, studio_process, wait_in_queue, wait_running

QUOTA_MB = 40
MB = 2**20
SR = 48000
# The one answer every path that is not this visitor's upload gets, whatever lies there (``audio.unseen``).
NOT_AN_UPLOAD = "named is no file you uploaded, and a file named by where it lies on the server is never opened"


@pytest.fixture(scope="module")
def studio(tiny_pipeline_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("shared-files")
    env = served_env(
        tiny_pipeline_dir,
        work,
        **{
            "ACE_STUDIO_UPLOAD_QUOTA": str(QUOTA_MB),
            "ACE_STUDIO_UPLOAD_KEEP_MINUTES": "0",
            "ACE_STUDIO_MAX_UPLOAD": "10mb",
        },
    )
    with studio_process(env, work) as (url, proc):
        client = Client(url, verbose=False)
        client.predict(prompt="warm up", audio_duration=10, inference_steps=1, api_name="/generate")
        # The page's API and event indices, read once (they do not change while it serves).
        fns, parameters = page_api(url)
        yield SimpleNamespace(
            url=url,
            proc=proc,
            out=work / "outputs",
            uploads=work / "gradio",
            client=client,
            parameters=parameters,
            fns=fns,
        )


def _song(path: Path, seconds: float = 2.0) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR)
    return path


def _folder_bytes(folder: Path) -> int:
    """Bytes on disk under ``folder``, each file once: Gradio renames a finished upload from the
    folder's top into its own folder, and a slow walk could meet it in both places."""
    sizes: dict[tuple[int, int], int] = {}
    folders = [folder]
    while folders:  # os.scandir, not rglob: one stat a file, sampled every few milliseconds
        with contextlib.suppress(OSError), os.scandir(folders.pop()) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    elif entry.is_file():
                        stat = entry.stat()
                        sizes[(stat.st_dev, stat.st_ino)] = stat.st_size
    return sum(sizes.values())


class Sampler:
    """The upload folder's size, sampled every few milliseconds while a block runs."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.peak, self.samples = folder, 0, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _folder_bytes(self.folder))
            self.samples += 1
            self._done.wait(0.005)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def _upload(url: str, name: str, data: bytes) -> int:
    return httpx.post(f"{url}gradio_api/upload", files={"files": (name, data)}, timeout=120).status_code


def _data(studio, api: str, **values: object) -> list:
    """``api``'s inputs in order: ``values``, and every other parameter's default."""
    return inputs(studio.parameters[api], **values)


def _join(studio, api: str, data: list, session: str) -> httpx.Response:
    """Join ``api``'s queue as a page with ``session`` does (also a private event, by its index)."""
    return httpx.post(
        f"{studio.url}gradio_api/queue/join",
        json={"data": data, "fn_index": studio.fns[api], "session_hash": session},
        timeout=60,
    )


def _call(studio, api: str, data: list, session: str) -> tuple[str, list]:
    """``api`` called as a page: ("refused", verdicts) at admission, ("error", messages), or ("done", output)."""
    try:
        joined = _join(studio, api, data, session)
    except httpx.TimeoutException:
        return "no answer in 60 s", []
    if joined.status_code == 422:
        return "refused", joined.json()
    if joined.status_code != 200:
        return f"HTTP {joined.status_code}", [joined.text]
    params = {"session_hash": session}
    with httpx.stream("GET", f"{studio.url}gradio_api/queue/data", params=params, timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    out = message.get("output") or {}
                    return ("done", out["data"]) if message.get("success") else ("error", [out.get("error")])
    raise AssertionError("no answer")


def _words(outcome: tuple[str, list]) -> str:
    return json.dumps(outcome[1], ensure_ascii=False)


# ---------------------------------------------------------------- the upload quota


def test_a_flood_while_a_victim_waits_keeps_the_victims_song_and_the_quota(studio, tmp_path):
    """A victim's song waits in Edit behind a long Generate while 12 uploads flood the folder: unbounded,
    12 uploads of 200 MB would all be accepted, the folder peak at 2,353 MB of 2,048 and the victim's song
    be deleted. Here: 12 parallel uploads of 8 MB against a 40 MB quota."""
    # Made before the blocker runs: its steps burn the studio's CPU until it is stopped.
    song = _song(tmp_path / "victim-song.wav")
    junk = [np.random.default_rng(i).bytes(8 * MB) for i in range(12)]
    blocker_client, victim_client = Client(studio.url, verbose=False), Client(studio.url, verbose=False)
    blocker = blocker_client.submit(prompt="long", audio_duration=30, inference_steps=200, api_name="/generate")
    # The blocker runs before the victim is sent: two submits race to the queue, and a victim first in
    # the queue would run its one step and finish without ever waiting (a red run on a loaded machine).
    wait_running(blocker)
    victim = victim_client.submit(
        src_audio=handle_file(str(song)),
        prompt="x",
        repainting_start=0,
        repainting_end=1,
        inference_steps=1,
        api_name="/edit",
    )
    wait_in_queue(victim)
    kept = next(studio.uploads.rglob("victim-song.wav"))
    # Everything else in the folder grows old: only the queue can keep the victim's song now.
    for entry in studio.uploads.rglob("*"):
        with contextlib.suppress(OSError):
            os.utime(entry, (time.time() - 3600,) * 2)
    gate = threading.Barrier(len(junk))
    statuses: list[int] = []

    def flood(data: bytes, i: int) -> None:
        gate.wait()
        statuses.append(_upload(studio.url, f"junk-{i}.bin", data))

    with Sampler(studio.uploads) as folder:
        threads = [threading.Thread(target=flood, args=(d, i)) for i, d in enumerate(junk)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    survived = kept.exists()
    blocker_client.predict(api_name="/stop")
    try:
        made = Path(victim.result(timeout=300)[0]).exists()
    except (AppError, ValidationError) as exc:
        made = str(exc)
    print(
        f"\n12 parallel 8 MB uploads, quota {QUOTA_MB} MB, a victim waiting: statuses "
        f"{sorted(statuses)}; folder peak {folder.peak / MB:.1f} MB over {folder.samples} samples; "
        f"victim's song kept: {survived}; victim's edit: {made}"
    )
    assert survived and made is True
    assert folder.peak <= QUOTA_MB * MB, folder.peak
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 413}
    with contextlib.suppress(Exception):
        blocker.result(timeout=120)


def test_an_upload_without_a_length_is_bounded(studio):
    """Chunked (no Content-Length), six files of 8 MB in one body: cut off at the most one upload
    may bring, refused with a message, and nothing of it left in the folder."""
    before = _folder_bytes(studio.uploads)

    def body():
        for i in range(6):
            yield (
                f'--b\r\nContent-Disposition: form-data; name="files"; filename="c{i}.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            for _ in range(8):
                yield np.random.default_rng(i).bytes(MB)
            yield b"\r\n"
        yield b"--b--\r\n"

    with Sampler(studio.uploads) as folder:
        answer = httpx.post(
            f"{studio.url}gradio_api/upload",
            content=body(),
            timeout=120,
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
    after = _folder_bytes(studio.uploads)
    print(
        f"\na chunked 48 MB upload: HTTP {answer.status_code}; folder peak {folder.peak / MB:.1f} MB, "
        f"{(after - before) / MB:+.1f} MB kept"
    )
    assert answer.status_code == 413 and messages.UPLOADS_FULL in answer.json()["detail"]
    assert folder.peak <= QUOTA_MB * MB and after - before < MB


# ---------------------------------------------------------------- files that are not this visitor's


def test_paths_that_are_no_upload_all_get_one_answer_and_are_never_opened(studio, tmp_path):
    """Paths that are no upload (/nonexistent/x.wav, /etc/hostname, /proc/self/environ) get one answer, not
    "not found" for one and "not an audio file" for another (an oracle), and none is opened. A FIFO tells whether the studio opened a path: a writer may open
    it without waiting only while a reader holds it open."""
    fifo = tmp_path / "probe.wav"
    os.mkfifo(fifo)
    made = studio.client.predict(prompt="theirs", audio_duration=10, inference_steps=1, api_name="/generate")
    theirs = studio.out / made[-1]["takes"][0]["audio"]
    paths = [
        "/nonexistent/x.wav",
        "/etc/hostname",
        "/proc/self/environ",
        "/",
        str(fifo),
        str(theirs),
        str(studio.uploads / ".." / "outputs" / made[-1]["takes"][0]["audio"]),
    ]
    answers = {}
    for form in ("bare", "marked"):
        for path in paths:
            value = {"path": path} if form == "bare" else {"path": path, "meta": {"_type": "gradio.FileData"}}
            outcome = _call(
                studio,
                "cover",
                _data(studio, "cover", src_audio=value, prompt="x"),
                f"oracle-{form}-{len(answers)}",
            )
            # Gradio's own refusal of a marked path repeats the path as given (normalised as text only).
            answers[(form, path)] = _words(outcome).replace(os.path.abspath(path), "<path>")
    opened = True
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        opened = False  # ENXIO: no reader ever held it
    for key, text in answers.items():
        print(f"\n{key}: {text[:160]}")
    print(f"the FIFO was opened: {opened}")
    assert not opened
    # A path marked as Gradio's file object is a bare path at admission (``admission.unmarked``): one answer.
    assert len(set(answers.values())) == 1 and NOT_AN_UPLOAD in answers[("bare", "/")], answers


def test_send_to_places_one_link_per_take_that_the_upload_quota_leaves_out(studio, tmp_path):
    """A Send to that copied the whole take into the uploads would count it in the one quota all visitors
    share (a visitor's long takes would fill it in a few cheap requests, and the quota then remove, or
    refuse, everyone else's uploads). Twelve clicks from the result column and My takes hand out one
    place, a link to the take (its bytes counted once, where the take is), and a victim's song uploaded
    before them stays."""
    answer = httpx.post(
        f"{studio.url}gradio_api/upload",
        files={"files": ("victim.wav", _song(tmp_path / "v.wav").read_bytes())},
        timeout=CLIENT_TIMEOUT_S,
    )
    victim = Path(answer.json()[0])
    # A minute's take (11 MB): four copies would overflow the 40 MB quota.
    data = _data(studio, "generate", prompt="sent often", audio_duration=60, inference_steps=1)
    outcome = _call(studio, "generate", data, "sender-page")
    assert outcome[0] == "done", outcome
    record = outcome[1][-1]
    take = studio.out / record["takes"][0]["audio"]
    assert take.stat().st_size * 4 > QUOTA_MB * MB  # four copies would not fit the quota
    (entry,) = _call(studio, "keep_takes", [record], "sender-page")[1][0]
    placed = set()
    for i in range(12):
        api, data = ("send_generate_to_cover", [1, record]) if i % 2 else ("send_my_take_to_extend", [entry])
        sent = _call(studio, api, data, "sender-page")
        assert sent[0] == "done", sent
        placed.add(sent[1][0]["path"])
    print(f"\ntwelve clicks of a {take.stat().st_size / MB:.1f} MB take: {len(placed)} place in the uploads")
    assert len(placed) == 1 and os.path.samefile(placed.pop(), take)
    assert victim.is_file() and _upload(studio.url, "late.bin", b"\0" * (8 * MB)) == 200


def test_where_no_link_can_be_made_a_take_is_copied_once_and_counted(tmp_path, monkeypatch):
    """The output and upload folders on two file systems (no hard link across them): one copy per take,
    handed out again, and counted in the upload quota as any upload is."""
    import errno

    import uploads

    take = tmp_path / "generate-101010-abcdef-take1-seed1.wav"
    take.write_bytes(b"RIFF" + os.urandom(4096))

    def no_link(*args: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    first, again = uploads.link_in(take), uploads.link_in(take)
    assert first == again and Path(first).read_bytes() == take.read_bytes() and not os.path.samefile(first, take)
    assert Path(first) in {path for *_, path in uploads._counted(uploads.upload_folder())}


def test_another_visitors_take_is_refused_everywhere(studio, tmp_path):
    """A take made in one page (session) cannot be sent to another tab from another page, nor named
    as an Edit source or as a record by path; its own page still sends it."""
    data = _data(studio, "generate", prompt="mine alone", audio_duration=10, inference_steps=1)
    outcome = _call(studio, "generate", data, "owner-page")
    assert outcome[0] == "done", outcome
    record = outcome[1][-1]
    take = record["takes"][0]
    stranger = _call(studio, "send_generate_to_edit", [1, record], "stranger-page")
    owner = _call(studio, "send_generate_to_edit", [1, record], "owner-page")
    print(f"\nsend another page's take: {_words(stranger)[:160]}\nsend one's own: {owner[0]}")
    assert stranger[0] == "error" and "no longer kept by the studio" in _words(stranger)
    assert owner[0] == "done" and Path(owner[1][0]["path"]).is_relative_to(studio.uploads.resolve())
    source = {"path": str(studio.out / take["audio"])}
    as_source = _call(studio, "edit", _data(studio, "edit", src_audio=source, prompt="x"), "stranger-page")
    as_record = _call(studio, "settings_from_file", [{"path": str(studio.out / take["metadata"])}], "stranger-page")
    print(f"as an Edit source: {_words(as_source)[:160]}\nas a record: {_words(as_record)[:160]}")
    assert NOT_AN_UPLOAD in _words(as_source)
    assert as_record[0] == "error" and "mine alone" not in _words(as_record)
    assert "never opened" in _words(as_record)  # a path, not an upload (error_messages.RECORD_NOT_UPLOADED)


# ---------------------------------------------------------------- a message, not a bare "Error"


def test_a_record_named_by_a_server_path_is_refused_with_a_message(studio):
    """``/settings_from_file`` given a server path marked as Gradio's file object would be refused with
    ``error: null`` by Gradio's own path check, before the studio, which has no message for a visitor.
    Every way of naming it, marked or bare, by Gradio's REST call, a queue join or ``gradio_client``, is
    told why with a message, and nothing is read."""
    import error_messages

    path = str(studio.out / "x.json")
    said = []
    for value in ({"path": path, "meta": {"_type": "gradio.FileData"}}, {"path": path}):
        posted = httpx.post(f"{studio.url}gradio_api/call/settings_from_file", json={"data": [value]}, timeout=60)
        event = posted.json()["event_id"]
        answer = httpx.get(f"{studio.url}gradio_api/call/settings_from_file/{event}", timeout=60).text
        said.append(json.loads(answer.split("data:", 1)[1]).get("error"))
        said.append(_call(studio, "settings_from_file", [value], "path-namer")[1][0])
    # gradio_client uploads a marked path from its own disk; a bare one it sends as it is.
    with pytest.raises(AppError) as info:
        studio.client.predict({"path": "/etc/hostname"}, api_name="/settings_from_file")
    said.append(str(info.value))
    print(f"\na record by a server path: {said}")
    assert all(error_messages.RECORD_NOT_UPLOADED in str(message) for message in said), said


@pytest.mark.parametrize("index", [10**9, "x", -1])
def test_an_example_that_does_not_exist_gets_a_message(studio, index):
    with pytest.raises(AppError) as info:
        studio.client.predict(index, api_name="/load_example_generate")
    print(f"\nexample {index!r}: {info.value}")
    assert "There is no example" in str(info.value) and "numbered 0 to" in str(info.value)


def test_a_record_whose_takes_are_a_number_gets_a_message(studio, tmp_path):
    made = studio.client.predict(prompt="numbered", audio_duration=10, inference_steps=1, api_name="/generate")
    hostile = tmp_path / "takes-number.json"
    hostile.write_text(json.dumps({**made[-1], "takes": 5}))
    for call in (
        lambda: studio.client.predict(handle_file(str(hostile)), api_name="/settings_from_file"),
        lambda: studio.client.predict({**made[-1], "takes": 5}, 1, api_name="/settings_from_generate"),
    ):
        with pytest.raises((AppError, ValidationError)) as info:
            call()
        print(f"\ntakes = 5: {info.value}")
        assert "This record's takes ('5') cannot be used" in str(info.value)


def test_a_refused_upload_says_why_in_the_waveform_too(studio, tmp_path):
    surround = tmp_path / "surround.flac"
    noise = np.random.default_rng(0).standard_normal((19_200, 8)).astype(np.float32)
    with sf.SoundFile(str(surround), "w", 384_000, 8, format="FLAC") as f:
        f.write(0.1 + 0.05 * noise)
    # Ten minutes declared in its header (STREAMINFO's 36-bit total-samples field), which a file of its size
    # could hold (audio_length reads a length that it could not): refused unread.
    data = bytearray(surround.read_bytes())
    packed = int.from_bytes(data[18:26], "big")
    data[18:26] = ((packed & ~((1 << 36) - 1)) | 600 * 384_000).to_bytes(8, "big")
    surround.write_bytes(bytes(data))
    line, *_, wave = studio.client.predict(handle_file(str(surround)), 0, 10, api_name="/edit_analyze")
    print(f"\nline: {line}\nwaveform: {wave}")
    state = json.loads(wave)
    assert "⚠️" in line and state["peaks"] == [] and state["message"].removeprefix("⚠️ ") in line


def test_a_recent_upload_outlives_a_flood_and_the_new_upload_is_refused(tmp_path, monkeypatch):
    """What the page shows a visitor (their upload before they click) is kept
    ``ACE_STUDIO_UPLOAD_KEEP_MINUTES`` after it came or a request last named it; older ones that no
    request needs are removed first; then the new upload is refused, and the quota holds."""
    import uploads

    folder = tmp_path / "uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    monkeypatch.setenv("ACE_STUDIO_UPLOAD_QUOTA", "3")
    monkeypatch.setenv("ACE_STUDIO_UPLOAD_KEEP_MINUTES", "5")
    old, recent, named = (folder / name / f"{name}.wav" for name in ("old", "recent", "named"))
    for path in (old, recent, named):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x" * MB)
    for path in (old, named):
        os.utime(path, (time.time() - 3600,) * 2)
    uploads.note_named([str(named)])  # an hour-old upload a request named just now
    ticket = uploads.reserve(MB)  # the old one is removed to free the space
    assert ticket is not None and not old.exists() and recent.exists() and named.exists()
    try:
        assert uploads.reserve(MB) is None  # the rest is kept: the new upload is refused
    finally:
        uploads.release(ticket)
    assert recent.exists() and named.exists()
