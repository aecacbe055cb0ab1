"""The studio as an API: the real app served locally, called with gradio_client."""

from __future__ import annotations

import io
import json
import re
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError

import records
from conftest import CLIENT_TIMEOUT_S, ROOT, stopped_result


@pytest.fixture(scope="module")
def client(studio_server):
    url, _ = studio_server
    return Client(url, verbose=False)


def test_generate_endpoint_by_keyword(client, studio_server):
    _, out = studio_server
    result = client.predict(
        prompt="funk groove", audio_duration=10, inference_steps=3, seed=21, think=False, api_name="/generate"
    )
    first, meta = result[0], result[-1]
    data, rate = sf.read(first, always_2d=True)
    assert rate == 48000 and data.shape == (480000, 2)
    assert meta["takes"][0]["seed"] == 21 and meta["params"]["audio_duration"] == 10
    assert Path(first).name == Path(meta["takes"][0]["audio"]).name
    assert (out / meta["takes"][0]["audio"]).is_file() and not Path(meta["takes"][0]["audio"]).is_absolute()
    assert result[1] is None  # one take asked for
    assert "21" in result[4]


def test_takes_are_served_from_the_output_folder_without_a_copy(studio_server):
    url, out = studio_server
    raw = Client(url, verbose=False, download_files=False)
    result = raw.predict(
        prompt="funk groove", audio_duration=10, inference_steps=1, seed=5, think=False, api_name="/generate"
    )
    relative = result[-1]["takes"][0]["audio"]
    # The page fetches the take where the studio wrote it (no copy in Gradio's cache), by a URL that
    # names no server folder.
    assert result[0]["url"] == f"{url}takes/{relative}" and str(out) not in result[0]["url"]
    with urllib.request.urlopen(result[0]["url"], timeout=CLIENT_TIMEOUT_S) as response:
        assert response.read() == (out / relative).read_bytes()
        assert response.headers["Content-Type"] == "audio/wav"


def test_api_parameters_all_have_defaults(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate"]
    names = [p["parameter_name"] for p in api["parameters"]]
    for want in set(records.FIELDS) - {"instrumental"}:  # every field Use these settings fills
        assert want in names
    assert all(p["parameter_has_default"] for p in api["parameters"])


def test_every_output_of_every_named_endpoint_has_a_name(client):
    """Every output of every named endpoint is named (a result's seed line, an upload's reading and
    waveform, Describe's note, My takes' new entries), not listed by ``view_api`` as ``value_140``,
    ``value_444`` …, which a caller could not tell apart."""
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    unnamed = {
        name: [(r.get("label"), r.get("component")) for r in endpoint["returns"]]
        for name, endpoint in api.items()
        if any(not r.get("label") or re.fullmatch(r"value_\d+", r["label"]) for r in endpoint["returns"])
    }
    assert len(api) > 20 and not unnamed, unnamed


def test_same_seed_same_audio_through_the_api(client):
    a = client.predict(
        lyrics="[Chorus]\nsing along",
        audio_duration=10,
        inference_steps=2,
        seed=99,
        batch_size=2,
        think=False,
        api_name="/generate",
    )
    b = client.predict(
        lyrics="[Chorus]\nsing along",
        audio_duration=10,
        inference_steps=2,
        seed=99,
        batch_size=2,
        think=False,
        api_name="/generate",
    )
    np.testing.assert_array_equal(sf.read(a[0])[0], sf.read(b[0])[0])
    np.testing.assert_array_equal(sf.read(a[1])[0], sf.read(b[1])[0])
    assert [t["seed"] for t in a[-1]["takes"]] == [99, 100]


def test_validation_names_the_field_before_queueing_and_the_app_keeps_serving(client):
    with pytest.raises(ValidationError, match="audio_duration: Duration must be between 10 s and 600 s"):
        client.predict(prompt="pop", audio_duration=900, think=False, api_name="/generate")
    with pytest.raises(ValidationError, match="key_scale: Unknown key"):
        client.predict(prompt="pop", key_scale="X minor", think=False, api_name="/generate")
    with pytest.raises(ValidationError, match="inference_steps: Steps must be between 1 and 200"):
        client.predict(prompt="pop", inference_steps=0, think=False, api_name="/generate")
    with pytest.raises(ValidationError, match="audio_format: Unknown output format 'ogg'"):
        client.predict(prompt="pop", audio_format="ogg", think=False, api_name="/generate")
    with pytest.raises(ValidationError, match="prompt: Describe the music"):
        client.predict(think=False, api_name="/generate")
    ok = client.predict(prompt="pop", audio_duration=10, inference_steps=1, think=False, api_name="/generate")
    assert Path(ok[0]).exists()


def chain_audio_modes(client, tmp_path) -> Path:
    """Extend a 44.1 kHz mono song, edit a region of the result, cover that; returns the source. Extend and
    Edit write their takes at the song's own 44.1 kHz (``untouched``), Cover at the model's 48 kHz.

    Shared by the in-process and the ZeroGPU harness tests: the same visitor path in both."""
    from gradio_client import handle_file

    from test_audio_modes import tone

    src = tone(tmp_path / "song.wav", seconds=10, rate=44100, channels=1)
    ext = client.predict(
        src_audio=handle_file(str(src)), prompt="go on", extend_seconds=5, inference_steps=2, seed=3, api_name="/extend"
    )
    assert sf.info(ext[0]).frames == 15 * 44100 and ext[-1]["mode"] == "extend"
    edited = client.predict(
        src_audio=handle_file(ext[0]),
        prompt="breakdown",
        repainting_start=2,
        repainting_end=6,
        inference_steps=2,
        dcw=False,
        api_name="/edit",
    )
    assert sf.info(edited[0]).frames == 15 * 44100 and edited[-1]["params"]["dcw"] is False
    # An upload goes through the VAE; a take of the studio's, downloaded and sent again byte for byte,
    # starts from its own final latents (upstream's PR #1177), its source part the same samples.
    assert ext[-1]["params"]["source_latents"] == "encoded by the VAE: the studio keeps no latents of this very file"
    assert edited[-1]["params"]["source_latents"].startswith("the take's own latents (extend-")
    before, after = sf.read(ext[0])[0], sf.read(edited[0])[0]
    np.testing.assert_array_equal(before[: 2 * 44100], after[: 2 * 44100])
    np.testing.assert_array_equal(before[6 * 44100 :], after[6 * 44100 :])
    covered = client.predict(
        src_audio=handle_file(edited[0]),
        prompt="choir",
        audio_cover_strength=0.8,
        cover_noise_strength=0.2,
        reference_audio=handle_file(str(src)),
        inference_steps=2,
        api_name="/cover",
    )
    assert sf.info(covered[0]).frames == 15 * 48000 and covered[-1]["mode"] == "cover"
    assert covered[-1]["params"]["source_latents"].startswith("the take's own latents (edit-")
    params = covered[-1]["params"]
    # DCW left to the model: off on the studio's XL SFT, as upstream's main (PR #1273).
    assert (params["cover_noise_strength"], params["reference_audio"], params["dcw"]) == (0.2, "song.wav", False)
    return src


def test_audio_modes_through_the_api_and_chained(client, tmp_path):
    from gradio_client import handle_file

    src = chain_audio_modes(client, tmp_path)
    with pytest.raises(ValidationError, match="repainting_end: The region 5–20 s ends 10.0 s after the song does"):
        client.predict(
            src_audio=handle_file(str(src)), prompt="x", repainting_start=5, repainting_end=20, api_name="/edit"
        )
    with pytest.raises(ValidationError, match="src_audio: .*upload a song first"):
        client.predict(prompt="x", api_name="/cover")


def test_four_visitors_at_once_all_get_their_song(studio_server):
    url, _ = studio_server
    visitors = [Client(url, verbose=False) for _ in range(4)]
    jobs = [
        c.submit(
            prompt=f"visitor {i}", audio_duration=10 + i, inference_steps=2, seed=i, think=False, api_name="/generate"
        )
        for i, c in enumerate(visitors)
    ]
    results = [job.result(timeout=300) for job in jobs]
    for i, result in enumerate(results):
        assert sf.info(result[0]).frames == (10 + i) * 48000
        assert result[-1]["takes"][0]["seed"] == i


def test_use_these_settings_makes_the_same_take_again(client, studio_server, tmp_path):
    _, out = studio_server
    first = client.predict(
        prompt="bossa nova",
        lyrics="[Verse]\nsol",
        audio_duration=10,
        bpm=120,
        key_scale="A minor",
        inference_steps=2,
        seed=40,
        batch_size=2,
        audio_format="flac",
        think=False,
        api_name="/generate",
    )
    record = first[-1]
    fields = client.predict(record, 2, api_name="/settings_from_generate")
    # "Take to send" outside the takes made: the field's message, before anything runs.
    with pytest.raises(
        ValidationError, match=r"take: Take to send must be a whole number from 1 to 2 \(you asked for '?3'?\)"
    ):
        client.predict(record, 3, api_name="/settings_from_generate")
    prompt, lyrics, instrumental, duration, bpm, key, meter, language, seed, steps, guidance, shift, takes, fmt = (
        fields[:14]
    )
    assert (prompt, lyrics["value"], instrumental, seed, takes, fmt) == (
        "bossa nova",
        "[Verse]\nsol",
        False,
        41,
        1,
        "flac",
    )
    assert (duration, bpm, key, meter, language, steps) == (10, 120, "A minor", "auto", "unknown", 2)
    again = client.predict(
        prompt=prompt,
        lyrics=lyrics["value"],
        audio_duration=duration,
        bpm=bpm,
        key_scale=key,
        time_signature=meter,
        vocal_language=language,
        seed=seed,
        inference_steps=steps,
        guidance_scale=guidance,
        shift=shift,
        batch_size=takes,
        audio_format=fmt,
        think=fields[14],
        auto_length=fields[15],
        rewrite_caption=fields[16],
        plan=fields[17],
        api_name="/generate",
    )
    # Made without Think, it comes back without: no plan (a Think take's plan: tests/test_planner.py).
    assert fields[14] is False and fields[17] == ""
    # A take of a batch, made again alone from its seed (batched numerics differ in the last bits).
    np.testing.assert_allclose(sf.read(again[0])[0], sf.read(first[1])[0], atol=2e-4)
    # The same from the .json saved beside the take.
    take_json = out / record["takes"][1]["metadata"]
    from_file = client.predict(handle_file(str(take_json)), api_name="/settings_from_file")
    assert from_file[:14] == fields[:14]
    notes = tmp_path / "notes.json"
    notes.write_text('{"not": "a take"}')
    with pytest.raises(Exception, match="not a take's record"):
        client.predict(handle_file(str(notes)), api_name="/settings_from_file")


def _readme_parameters(endpoint: str) -> list[str]:
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(f"| `{endpoint}` |"))
    return re.findall(r"`([a-z][a-z0-9_]*)`", row.split(" | ")[1])


def test_the_api_is_as_readme_documents_it_and_its_seed_line_is_plain_text(client):
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for endpoint in ("/generate", "/use_in_generate", "/describe", "/variations", "/morph", "/write_song"):
        parameters = [p["parameter_name"] for p in named[endpoint]["parameters"]]
        assert [p for p in _readme_parameters(endpoint) if p in parameters] == parameters, endpoint
    assert "think" in _readme_parameters("/generate")
    lyrics, caption, instrumental, language, *_ = client.predict(
        text="[Verse]\nhola", caption="pop, bright", vocal_language="Spanish", api_name="/use_in_generate"
    )
    assert (lyrics, caption, instrumental, language) == ("[Verse]\nhola", "pop, bright", False, "es")
    assert client.predict(text="[Verse]\nla", caption="folk", api_name="/use_in_generate")[3] == "en"
    *_, line, _ = client.predict(
        prompt="pop", audio_duration=10, inference_steps=1, seed=7, think=False, api_name="/generate"
    )
    assert re.fullmatch(r"Seeds — take 1: 7 · made in [\d.]+ s on CPU", line), line  # no Markdown, no escapes


def _readme_returns(endpoint: str) -> str:
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(f"| `{endpoint}`"))
    return row.rstrip(" |").rsplit(" | ", 1)[1]


def test_readme_says_what_each_music_endpoint_returns(client):
    """/cover, /extend and /edit return one take, the seed line and the record, not what
    /generate does (four take slots): README's table says what each returns."""
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert len(named["/generate"]["returns"]) == 6 and _readme_returns("/generate").startswith("four take slots")
    assert {len(named[e]["returns"]) for e in ("/cover", "/extend", "/edit")} == {3}
    assert _readme_returns("/cover") == "one take, the seed line, the record"


def test_every_named_endpoint_labels_its_inputs_and_the_docs_name_only_named_endpoints(studio_server):
    """/gradio_api/info labels every input of every named endpoint (never "parameter_161" for /morph's
    guidance or "parameter_81" for /stems' take: a field without a label), and docs/features.md names
    only events that are in the API (no `/voice_of_<tab>`)."""
    url, _ = studio_server
    with urllib.request.urlopen(f"{url}gradio_api/info", timeout=CLIENT_TIMEOUT_S) as response:
        named = json.load(response)["named_endpoints"]
    unlabelled = {
        name: [p["parameter_name"] for p in endpoint["parameters"] if re.search(r"parameter_\d+", json.dumps(p))]
        for name, endpoint in named.items()
    }
    assert not {name: params for name, params in unlabelled.items() if params}, unlabelled
    assert [p["label"] for p in named["/morph"]["parameters"]][6:8] == ["Guidance", "Vocal language"]
    for doc in ("README.md", "docs/features.md"):
        endpoints = set(re.findall(r"`(/[a-z_<>]+)`", (ROOT / doc).read_text()))
        assert endpoints and endpoints <= set(named), (doc, sorted(endpoints - set(named)))


def test_a_one_take_result_asks_for_take_1_with_a_message(client):
    """/variations of a one-take result, asked for take 2, asks for take 1 (not "Take to send must be a
    whole number from 1 to 1")."""
    *_, record = client.predict(
        prompt="one take", audio_duration=10, inference_steps=1, seed=8, think=False, api_name="/generate"
    )
    with pytest.raises(ValidationError, match=r"take: This result has one take: send take 1 \(you asked for '?2'?\)"):
        client.predict(take=2, record=record, api_name="/variations")


def test_describe_fills_only_the_empty_fields_and_refuses_a_bad_upload(client, tmp_path):
    import checks
    import plan_format
    from test_audio_modes import tone

    song = handle_file(str(tone(tmp_path / "song.wav", seconds=10)))
    prompt, lyrics, language, bpm, key, meter, note = client.predict(src_audio=song, api_name="/describe")
    assert note.startswith("**What the planner heard** (50 codes") and "BPM: planner heard" in note
    assert key in checks.KEYS and meter in checks.TIME_SIGNATURES and language in (*checks.LANGUAGES, "unknown")
    assert bpm == 0 or plan_format.BPM_RANGE[0] <= bpm <= plan_format.BPM_RANGE[1]
    # What the visitor wrote stays as it is.
    mine = client.predict(
        src_audio=song,
        prompt="my style",
        lyrics="[Verse]\nmine",
        vocal_language="ja",
        bpm=97,
        key_scale="A minor",
        time_signature="3",
        api_name="/describe",
    )
    assert mine[:6] == ("my style", "[Verse]\nmine", "ja", 97, "A minor", "3")
    (tmp_path / "notes.wav").write_text("not a song")
    with pytest.raises(ValidationError, match="src_audio: .*notes.wav"):
        client.predict(src_audio=handle_file(str(tmp_path / "notes.wav")), api_name="/describe")
    # A clip of one sample or 10 ms is refused at admission, saying how long a clip must be (on the GPU it
    # would end in "The model stopped with an error (RuntimeError)").
    for name, samples in (("one-sample.wav", 1), ("ten-ms.wav", 480)):
        sf.write(str(tmp_path / name), np.full((samples, 2), 0.3, np.float32), 48000)
        clip = handle_file(str(tmp_path / name))
        with pytest.raises(ValidationError, match=r"src_audio: This song is .* long; Describe listens to at least 1 s"):
            client.predict(src_audio=clip, api_name="/describe")
    assert client.predict(src_audio=song, api_name="/describe")[-1].startswith("**What the planner heard**")


def test_expected_events_are_one_log_line_each(client, capfd):
    capfd.readouterr()
    job = client.submit(
        prompt="long jam", audio_duration=60, inference_steps=200, seed=1, think=False, api_name="/generate"
    )
    deadline = time.time() + 60
    while not any((p.index or 0) >= 1 for p in job.status().progress_data or []) and time.time() < deadline:
        time.sleep(0.05)  # gradio_client offers no progress callback to wait on
    client.predict(api_name="/stop")
    stopped_result(job, "Stopped at step")
    with pytest.raises(AppError):  # a missing input
        client.predict(text="", caption="", api_name="/use_in_generate")
    with pytest.raises(AppError):
        client.predict(None, 1, api_name="/settings_from_generate")
    log = "".join(capfd.readouterr())
    assert "Traceback" not in log, log
    assert log.count("generate: Stopped: Stopped at step") == 1, log
    assert log.count("use_in_generate: Use in Generate: There are no lyrics to use yet") == 1, log
    assert log.count("settings_from_record: Use these settings:") == 1, log


def test_a_long_refusal_is_logged_in_whole_sentences(capfd):
    """A refusal longer than the log's bound was cut at 200 characters, mid-word: the log keeps whole sentences."""
    import gradio as gr

    import event_errors

    sentences = [f"Sentence {n} says what went wrong with the song, in words a musician reads whole." for n in range(8)]

    def refused() -> None:
        raise gr.Error(" ".join(sentences) + "\nA second line.")

    capfd.readouterr()
    with pytest.raises(gr.Error):
        event_errors.expected_errors(refused)()
    line = capfd.readouterr().out.strip()
    words = line.split(": ", 2)[-1]
    assert words.endswith(".") and words in " ".join(sentences) and len(words) > 200, line
    assert event_errors.logged("One sentence alone, however long " + "it runs " * 80 + "on.").endswith("on.")


def test_a_take_plays_from_a_small_preview_served_beside_it(studio_server):
    """The page plays a take from its MP3 preview: served by the studio as audio, a fraction of the
    WAV's size, as long as the take to within an MP3 frame; the WAV stays the download."""
    url, out = studio_server
    raw = Client(url, verbose=False, download_files=False)
    # The shortest song (10 s) stands for a long take: what is proved (a preview beside it, its size,
    # length and ranges) does not depend on the length, and the render's CPU time does.
    result = raw.predict(
        prompt="slow ambient swell",
        audio_duration=10,
        inference_steps=1,
        seed=8,
        batch_size=2,
        think=False,
        api_name="/generate",
    )
    record = result[-1]
    assert record["encoding"] == {"format": "wav", "bits": 16}
    assert record["preview"] == {"format": "mp3", "bitrate_kbps": 128, "bitrate_mode": "constant"}
    for slot, take in zip(result[:2], record["takes"], strict=True):
        assert slot["url"].endswith(take["audio"]) and take["preview"].endswith("-preview.mp3")
        assert len(take["peaks"]) == 200 and max(take["peaks"]) == 1.0 and min(take["peaks"]) >= 0
        with urllib.request.urlopen(
            slot["url"].replace(take["audio"], take["preview"]), timeout=CLIENT_TIMEOUT_S
        ) as response:
            assert response.headers["Content-Type"] == "audio/mpeg"
            preview = response.read()
        wav = (out / take["audio"]).stat().st_size
        assert len(preview) < wav / 8  # 128 kbps against 1536
        decoded, rate = sf.read(io.BytesIO(preview), always_2d=True)
        # It plays the encoder's delay (no LAME header): under two MPEG frames longer than the take.
        assert rate == 48000 and 0 <= len(decoded) - 10 * 48000 < 2 * 1152
        # The player seeks by byte ranges.
        ranged = urllib.request.Request(
            slot["url"].replace(take["audio"], take["preview"]), headers={"Range": "bytes=1000-1999"}
        )
        with urllib.request.urlopen(ranged, timeout=CLIENT_TIMEOUT_S) as response:
            assert response.status == 206 and response.read() == preview[1000:2000]
        # Its own record keeps no peaks (they are the page's), and names the preview.
        own = json.loads((out / take["metadata"]).read_text())
        assert "peaks" not in own and "peaks" not in own["takes"][0]
        assert own["takes"][0]["preview"] == record["takes"][0]["preview"]


def test_an_mp3_take_is_320_kbps_with_its_title_and_the_studio_in_its_tags(client, studio_server):
    from mutagen.id3 import ID3
    from mutagen.mp3 import MP3, BitrateMode

    _, out = studio_server
    result = client.predict(
        prompt="night drive synthwave",
        lyrics="[Verse]\nNeon rain on the empty street\nhold on",
        audio_duration=10,
        inference_steps=1,
        seed=321,
        audio_format="mp3",
        think=False,
        api_name="/generate",
    )
    record = result[-1]
    assert record["encoding"] == {"format": "mp3", "bitrate_kbps": 320, "bitrate_mode": "constant"}
    take = record["takes"][0]
    assert take["preview"] == take["audio"]  # an MP3 take is its own preview
    info = MP3(result[0]).info
    assert info.bitrate == 320_000 and info.bitrate_mode == BitrateMode.CBR and abs(info.length - 10) < 0.03
    tags = ID3(result[0])
    assert tags["TIT2"].text == ["Neon rain on the empty street"]
    assert tags["TPE1"].text == ["ACE Music Studio"]
    assert "seed 321" in tags.getall("COMM")[0].text[0]
    assert "ACE Music Studio" in tags["TSSE"].text[0]
    assert sf.info(result[0]).frames == 480000  # the encoder's delay and padding are not in the take


def test_every_event_gives_the_memory_it_freed_back(client):
    """Freed memory glibc keeps would grow a server by gigabytes; each event a visitor starts ends
    with ``memory.trim`` (this studio serves in the test's own process), a refusal's too."""
    import memory

    before = memory.stats["trims"]
    client.predict(prompt="pop", audio_duration=10, inference_steps=1, think=False, api_name="/generate")
    with pytest.raises(AppError):
        client.predict(None, api_name="/my_take_settings")
    assert memory.stats["trims"] >= before + 2 or memory._glibc() is None


def test_a_request_reads_its_files_once_in_the_run_never_at_admission(client, monkeypatch, tmp_path):
    """The admission check (the validator, inside the HTTP join) reads the files a request names by their
    headers only, and the run reads them in full: through a real request of Cover and one of Edit's part
    (each uploads the song anew), each request decodes its song once, in the run, never in the admission
    check."""
    import headers
    import uploads
    from test_audio_modes import tone

    decoded = []
    real = uploads._decode
    monkeypatch.setattr(uploads, "_decode", lambda *a, **k: decoded.append(headers.reading()) or real(*a, **k))
    song = handle_file(str(tone(tmp_path / "song.wav", seconds=6.0)))
    client.predict(src_audio=song, prompt="brass", inference_steps=2, seed=4, api_name="/cover")
    client.predict(src_audio=song, change="extract", part="drums", inference_steps=2, seed=5, api_name="/edit")
    assert decoded == [False, False], decoded
