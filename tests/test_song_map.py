"""Every take's map (its bar lines read from its own audio, its sections from its synced lyrics) and Edit and
Extend by the bar. The tracker on click tracks with accented downbeats
(the bench's full table: ``python tools/bench.py --bars``), sections from tags and line times, then through
gradio_client against the served studio: a generated take's record carries its map, bars set exactly the
region their seconds set, Extend by the bar ends on a bar line, and every refusal is a validation error on ``bars``.
The served studio's music model plays click tracks here (``Backend.run``, the pipeline call, is wrapped):
the tiny random model's noise has no beat to count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError

import audio
import backend
import beats
import examples
import song_map
import uploads
from bench_bars import clicks, furthest, groove

SR = audio.SAMPLE_RATE
TEMPO, METRE = 120, 4
BAR = METRE * 60.0 / TEMPO
LYRICS = "[Verse 1]\nneon lights\nburning bright\n\n[Chorus]\nhold on tight\nnever let go\n[Verse 2]\nmorning comes"


@pytest.mark.parametrize(("bpm", "per_bar"), [(60, 3), (90, 4), (120, 3), (150, 4), (180, 4), (180, 3)])
def test_bar_lines_land_within_30_ms_of_accented_downbeats_drifting_2_percent(bpm, per_bar):
    song, truth = clicks(bpm, per_bar)
    for told in (per_bar, None):  # the record's metre, or the tracker's
        bars, found, tempo = song_map.bars_of(song, SR, told)
        assert found == per_bar and tempo == pytest.approx(bpm * 1.01, rel=0.05)
        assert len(bars) == len(truth) and furthest(bars, truth) <= 0.03, (told, bars, truth)
        assert bars == sorted(bars) and all(round(t, 3) == t for t in bars)


@pytest.mark.parametrize(("bpm", "per_bar"), [(90, 4), (120, 3)])
def test_a_grooves_downbeat_is_its_bass_and_kick_not_its_backbeat(bpm, per_bar):
    song, truth = groove(bpm, per_bar)
    for told in (per_bar, None):
        bars, found, _ = song_map.bars_of(song, SR, told, bpm)
        assert found == per_bar and len(bars) == len(truth) and furthest(bars, truth) <= 0.03, (told, bars, truth)


@pytest.mark.parametrize(("bpm", "per_bar"), [(60, 3), (90, 4), (100, 4), (120, 4), (150, 3)])
def test_a_click_track_on_its_downbeat_at_0_has_bar_1_at_0(bpm, per_bar):
    song, truth = clicks(bpm, per_bar, 20.0, drift=0.0, lead=0.0)
    for told in (per_bar, None):
        bars, _, _ = song_map.bars_of(song, SR, told)
        assert bars[0] == 0.0 and len(bars) == len(truth) and furthest(bars, truth) <= 0.03, (told, bars, truth)


def test_the_demo_songs_bar_lines_are_its_chord_changes():
    """``examples.demo_song_audio``: a chord, a bass root and a kick on every bar line from 0, a bar of four
    beats at 100 BPM (2.4 s); its kick on every beat is as loud on each, the chord's change says which."""
    truth = np.arange(0.0, examples.DEMO_SECONDS - 0.5, 2.4)
    for told in (4, None):
        bars, found, _ = song_map.bars_of(examples.demo_song_audio(), SR, told)
        assert found == 4 and bars[0] == 0.0 and furthest(bars, truth) <= 0.03, (told, bars)


def test_a_song_with_no_steady_beat_has_no_bars():
    rng = np.random.default_rng(1)
    hiss = rng.uniform(-0.3, 0.3, (2, 12 * SR)).astype(np.float32)
    tone = np.tile(0.3 * np.sin(2 * np.pi * 440 * np.arange(12 * SR) / SR), (2, 1)).astype(np.float32)
    for song in (hiss, tone, np.zeros((2, 12 * SR), np.float32)):
        assert song_map.of_audio(song, SR).bars == []


def _noise(seconds: float, seed: int) -> np.ndarray:
    """Noise under a random envelope (300 points): a take of the tiny models, which makes noise and no beat."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    envelope = np.interp(np.arange(n), np.linspace(0, n, 300), rng.uniform(0.1, 1.0, 300))
    x = (rng.normal(0, 0.3, n) * envelope).astype(np.float32)
    return np.stack([x, x])


def test_noise_told_a_tempo_has_no_tempo_and_no_bars():
    """Told 120 BPM, noise under a random envelope reads a beat at 0.133 (``beats.TOLD_CONFIDENCE`` is 0.12) whose
    bars wander 15 %: its take said "Played at 126.8 BPM, 5.7 % fast". No beat is heard in it: no tempo, no bars."""
    lines, per_bar, tempo = song_map.grid_of(_noise(30.0, 5), SR, None, 120)
    assert (lines, per_bar, tempo) == ([], None, None), tempo


# Noise under a random envelope told a tempo, one a seed (60-180 BPM, drawn from the seed): seeds 19 and 21 read
# "Played at 108 BPM, 6.9 % fast" and "Played at 74.6 BPM, 6.8 % slow" where no beat is heard.
TOLD_NOISE = [(seed, int(np.random.default_rng(1000 + seed).integers(60, 181))) for seed in range(24)]


def test_noise_told_any_tempo_reads_no_tempo():
    """A tempo told vouches for a beat the tracker reads weakly only where the beats are played at it and heard
    on their attacks (``beats.TOLD_PCT``, ``beats.ON_BEAT``): noise found a "beat" 3-11 % off the tempo told whose
    attacks were no stronger on it than between (at most 1.28 times). The drifting record and the band under
    noise keep theirs (test_real_music, test_in_time)."""
    read = {}
    for seed, told in TOLD_NOISE:
        _, _, tempo = song_map.grid_of(_noise(20.0, seed), SR, None, told)
        if tempo is not None:
            read[(seed, told)] = tempo.said()
    assert read == {}, read


def test_a_tempo_told_is_said_only_where_its_bars_are_steady_or_its_beat_is_sure():
    """A reading told 140 BPM whose bars wander 23.5 % was "In time: 140.4 BPM, its bars wander up to 23.5 %": the
    tempo told found itself. Believed at the told confidence only where its bars keep within
    ``song_map.TOLD_WANDER_PCT``; a beat the tracker is sure of is said however its bars wander."""
    times = np.arange(40) * 60.0 / 140.0
    bar = 4 * 60.0 / 140.0
    wandering = [0.0, bar, 2 * bar, 3 * bar + 0.235 * bar, 4 * bar + 0.235 * bar, 5 * bar + 0.235 * bar]
    told = song_map.measured(times, wandering, 140, confidence=beats.TOLD_CONFIDENCE + 0.01, told=True)
    assert told is None
    sure = song_map.measured(times, wandering, 140, confidence=beats.CONFIDENCE, told=True)
    assert sure is not None and sure.wander_pct == 23.5 and "wander up to 23.5 %" in sure.said()
    steady = song_map.measured(times, [0.0, bar, 2 * bar, 3 * bar], 140, confidence=0.13, told=True)
    assert steady is not None and steady.said() == "In time: 140 BPM, steady"
    assert song_map.measured(times, [0.0, bar, 2 * bar], 140, confidence=0.13, told=False) is None


def test_an_uploads_line_gives_one_tempo_the_one_its_bars_follow(tmp_path):
    """The band 2 % slow: the upload's line said the analysis's tempo and the map's ("≈ 117.6 BPM · … · 6 bars:
    ≈ 117.5 BPM"); its last line says the map's alone, for Extend's and Edit's waveform and Cover's."""
    import band
    import form_fields

    played = band.play(120, 4, 16.0, band.Band(error=-0.02))
    path = tmp_path / "band.wav"
    audio.save(played.audio, path, "wav")
    for reading in (form_fields.read_extend_song(str(path)), form_fields.read_cover_song(str(path))):
        *_, last = reading
        assert last[0].count("BPM") == 1 and " bars: ≈ 117." in last[0], last[0]


def test_sections_start_at_their_first_line_on_the_nearest_bar_line_after_an_intro():
    bars = [round(0.5 + i * 2.0, 3) for i in range(15)]  # 0.5, 2.5 … 28.5
    times = [4.4, 6.6, 12.6, 14.5, 22.4]  # each a little off its bar line, as a sung line is
    found = song_map.sections_of(LYRICS, times, 30.0, bars)
    assert found == [
        song_map.Section("Intro", 0.0, 4.5),
        song_map.Section("Verse 1", 4.5, 12.5),
        song_map.Section("Chorus", 12.5, 22.5),
        song_map.Section("Verse 2", 22.5, 30.0),
    ]
    # A tag with no sung line starts where the line before it would end; no intro where singing starts at once.
    tagged = "[Verse]\na\nb\n[Solo]\n[Outro]\nc"
    found = song_map.sections_of(tagged, [0.5, 2.5, 12.0], 16.0)  # the lines' median length: 4 s
    assert [(s.name, s.start, s.end) for s in found] == [
        ("Verse", 0.5, 6.5),
        ("Solo", 6.5, 12.0),
        ("Outro", 12.0, 16.0),
    ]
    assert song_map.sections_of("la\nla", [1.0, 3.0], 8.0) == [song_map.Section("Song", 1.0, 8.0)]
    assert song_map.sections_of(LYRICS, [1.0, 2.0], 8.0) == []  # a record whose times are not these lyrics'


def test_a_region_of_bars_runs_from_the_first_bar_line_to_the_one_after_the_last():
    found = song_map.Map([0.5, 2.5, 4.5, 6.5], [], 4, 120.0, 8.0)
    assert found.region(2, 3) == (2.5, 6.5)
    assert found.region(4, 4) == (6.5, 8.0)  # the last bar: to the song's end
    assert found.region(1, 1) == (0.5, 2.5)


# ---------------------------------------------------------------- through the API, on the served studio


@pytest.fixture(scope="module")
def client(studio_server):
    return Client(studio_server[0], verbose=False)


def _play_clicks(patch: pytest.MonkeyPatch) -> None:
    """The music model plays a click track at ``TEMPO`` in ``METRE`` (its truth: the returned list's
    bar lines, from the song's start), as long as what it was asked to make."""
    run = backend.Backend.run

    def clicks_instead(self, render, progress=None, run_id=None):
        out = run(self, render, progress, run_id)
        made = np.asarray(out["audio"])
        song, _ = clicks(TEMPO, METRE, made.shape[-1] / SR + 1.0, drift=0.0)
        out["audio"] = np.broadcast_to(song[:, : made.shape[-1]], made.shape).astype(np.float32).copy()
        return out

    patch.setattr(backend.Backend, "run", clicks_instead)


@pytest.fixture
def clicking(monkeypatch):
    _play_clicks(monkeypatch)


@pytest.fixture(scope="module")
def clicked(client):
    """One 16 s click take (take, record), made once for the tests that only read it or edit from it: each
    of them reads its bars, and none changes it (an edit writes a take of its own)."""
    with pytest.MonkeyPatch.context() as patch:
        _play_clicks(patch)
        return _generated(client)


def _generated(client, seconds: float = 16.0) -> tuple[dict, str]:
    record = client.predict(
        prompt="click pop",
        lyrics=LYRICS,
        audio_duration=seconds,
        bpm=TEMPO,
        time_signature=str(METRE),
        inference_steps=1,
        think=False,
        seed=5,
        api_name="/generate",
    )[-1]
    return record["takes"][0], record


def test_a_generated_takes_record_carries_its_bars_and_sections(studio_server, clicked):
    take, record = clicked
    _, truth = clicks(TEMPO, METRE, take["seconds"], drift=0.0)
    assert furthest(take["bars"], truth) <= 0.03 and len(take["bars"]) == len(truth)
    sections = take["sections"]
    tags = ["Intro", "Verse 1", "Chorus", "Verse 2"]
    assert sections and [s["name"] for s in sections] == [n for n in tags if n in {s["name"] for s in sections}]
    edges = [(s["start"], s["end"]) for s in sections]
    assert all(a < b for a, b in edges) and all(b == c for (_, b), (c, _) in zip(edges, edges[1:], strict=False))
    assert edges[-1][1] == pytest.approx(take["seconds"], abs=1e-3)
    # The take's own record keeps them too (what Edit reads back), and the time they took.
    take_record = json.loads((studio_server[1] / take["metadata"]).read_text())
    assert take_record["bars"] == take["bars"] and take_record["sections"] == sections
    assert record["timings"]["map_s"] >= 0  # kept, not bounded


def test_a_takes_line_says_its_metre_and_its_tempo_as_played(client, clicking):
    """The message under a take's player (its seed line, as gradio_client gets it) says the metre
    it was asked in, as musicians write it, and each take's tempo as played (``song_map.Tempo.said``)."""
    *_, line, record = client.predict(
        prompt="click pop",
        audio_duration=12,
        bpm=TEMPO,
        time_signature="4/4",
        inference_steps=1,
        think=False,
        batch_size=2,
        seed=5,
        api_name="/generate",
    )
    said = [take["tempo"]["said"] for take in record["takes"]]
    assert said[0].startswith("In time: ") and record["params"]["time_signature"] == "4", said
    assert f"\nIn 4/4 · take 1: {said[0]} · take 2: {said[1]}" in line, line


def test_a_take_with_no_beat_is_said_in_the_metre_asked_not_in_one_heard(client):
    """A take of noise (no beat heard: ``bars: []``) is not captioned "In 4/4" under its seed, as if its metre
    had been measured: its line says the metre as it was asked, and no tempo as played."""
    *_, line, record = client.predict(
        prompt="noise",
        audio_duration=10,
        time_signature="4/4",
        inference_steps=1,
        think=False,
        seed=5,
        api_name="/generate",
    )
    assert record["takes"][0]["bars"] == [] and "tempo" not in record["takes"][0], record["takes"][0]
    assert "\nAsked for 4/4" in line and "In 4/4" not in line and " · take 1:" not in line, line


def test_bars_set_exactly_the_region_their_seconds_set(client, studio_server, clicked, clicking):
    take, _ = clicked
    song = str(studio_server[1] / take["audio"])
    bars = take["bars"]
    common = {"src_audio": handle_file(song), "prompt": "click pop", "inference_steps": 1, "seed": 9}
    by_bars = client.predict(**common, bars="3-4", api_name="/edit")[-1]
    by_seconds = client.predict(**common, repainting_start=bars[2], repainting_end=bars[4], api_name="/edit")[-1]
    params = by_bars["params"]
    assert (params["repainting_start"], params["repainting_end"]) == (bars[2], bars[4])
    assert params["edited_bars"] == [3, 4]
    same = by_seconds["params"]
    assert (same["repainting_start"], same["repainting_end"]) == (bars[2], bars[4])
    made = [uploads.load(str(studio_server[1] / r["takes"][0]["audio"])) for r in (by_bars, by_seconds)]
    assert np.array_equal(*made)
    # A list of bars, the bars' own seconds sent beside them, and the last bar: to the song's end.
    last = len(bars)
    made = client.predict(
        **common, bars=[last - 1, last], repainting_start=bars[-2], repainting_end=take["seconds"], api_name="/edit"
    )[-1]
    assert (made["params"]["repainting_start"], made["params"]["repainting_end"]) == (bars[-2], take["seconds"])


def test_extend_by_the_bar_adds_whole_bars_and_ends_on_a_bar_line(client, studio_server, clicking):
    take, _ = _generated(client, seconds=15.0)
    song = str(studio_server[1] / take["audio"])
    made = client.predict(
        src_audio=handle_file(song), prompt="click pop", bars="4", inference_steps=1, api_name="/extend"
    )[-1]
    params = made["params"]
    assert params["extend_bars"] == 4 and params["source_seconds"] == pytest.approx(take["seconds"], abs=1e-3)
    total = params["source_seconds"] + params["extend_seconds"]
    bar = float(np.median(np.diff(take["bars"])))
    assert bar == pytest.approx(BAR, abs=0.01)
    # Four bars after the bar the song ends in: the new end is a bar line of the song's grid, carried on.
    assert 4 * bar <= params["extend_seconds"] < 5 * bar
    after = (total - take["bars"][-1]) / bar
    assert after == pytest.approx(round(after), abs=0.01)
    assert made["takes"][0]["seconds"] == pytest.approx(total, abs=1e-3)
    # Its sections: the song it went on from, then the new part's.
    sections = made["takes"][0]["sections"]
    assert sections[0] == {"name": "Original", "start": 0.0, "end": round(params["source_seconds"], 3)}
    assert all(s["start"] >= params["source_seconds"] for s in sections[1:])


def test_bars_are_refused_with_a_message_on_their_field(client, studio_server, clicked, clicking, tmp_path):
    take, _ = clicked
    song = str(studio_server[1] / take["audio"])
    hiss = tmp_path / "hiss.wav"
    audio.save(np.random.default_rng(2).uniform(-0.3, 0.3, (2, 12 * SR)).astype(np.float32), hiss, "wav")
    count = len(take["bars"])
    cases = [
        ("/edit", song, {"bars": "nine"}, r"bars: “nine” is not a choice of bars"),
        ("/edit", song, {"bars": "99"}, rf"bars: The song has {count} bars; there is no bar 99"),
        ("/edit", song, {"bars": [0, 2]}, rf"bars: The song has {count} bars; there is no bar 0"),
        ("/edit", song, {"bars": list(range(1, 40))}, r"bars: “\[1, 2, 3, .*” is not a choice of bars"),
        ("/extend", song, {"bars": 0}, r"bars: “0” is not a number of bars to add"),
        ("/edit", song, {"bars": "2", "lines": [1]}, r"bars: Choose the region one way: by bars, or by lines"),
        (
            "/edit",
            song,
            {"bars": "2-3", "repainting_start": 1.0, "repainting_end": 5.0},
            r"bars: Choose the region by bars or by seconds, not both: Bars 2–3 run [\d.]+–[\d.]+ s, but Region start "
            r"and end say 1–5 s\. Clear the bars, or set the region to [\d.]+–[\d.]+ s\.",
        ),
        ("/edit", song, {"bars": "2", "change": "extract"}, r"bars: Bars choose a region of the song; a part"),
        ("/extend", song, {"bars": "1.5"}, r"bars: “1\.5” is not a number of bars to add"),
        ("/extend", song, {"bars": "200"}, r"bars: 200 bars at this song's tempo add [\d.]+ s; Extend adds 5–240 s"),
    ]
    for api, path, settings, message in cases:
        with pytest.raises(ValidationError, match=message):
            client.predict(src_audio=handle_file(path), prompt="dub", inference_steps=1, api_name=api, **settings)
    # An upload the studio did not make and has not measured is read when its run reads it (the admission check
    # reads its header only); once read, its bars are known at admission, however often it is uploaded again.
    for api, refused in (("/edit", AppError), ("/extend", ValidationError)):
        with pytest.raises(refused, match=r"The studio hears no steady beat in this song"):
            client.predict(src_audio=handle_file(str(hiss)), prompt="dub", bars="4", inference_steps=1, api_name=api)


def test_an_uploads_bars_are_refused_at_admission_once_its_reading_counted_them(client, tmp_path):
    """An upload whose reading counted its bars (the page reads every upload; an API caller
    through ``/edit_analyze`` or ``/extend_analyze``) has a bar past its last, bars with another region, and no
    steady beat refused before the request joins: a ValidationError on ``bars``, as README promises, and as a
    take the studio made has them (``test_bars_are_refused_with_a_message_on_their_field``)."""
    song, truth = clicks(120, 4, 16.0, drift=0.0, lead=0.0)
    path = tmp_path / "eight-bars.wav"
    audio.save(song, path, "wav")
    line, bpm, _, metre, _ = client.predict(src_audio=handle_file(str(path)), api_name="/edit_analyze")
    count = len(truth)
    assert " in 4/4, " in line and f" · {count} bars" in line and metre == "4", line  # the metre as musicians write it
    asked = {"src_audio": handle_file(str(path)), "prompt": "dub", "bpm": bpm, "inference_steps": 1}
    with pytest.raises(ValidationError, match=rf"bars: The song has {count} bars; there is no bar {count + 1}\."):
        client.predict(**asked, bars=str(count + 1), api_name="/edit")
    with pytest.raises(ValidationError, match=r"bars: Choose the region by bars or by seconds, not both: Bars 2–3"):
        client.predict(**asked, bars="2-3", repainting_start=1.0, repainting_end=5.0, api_name="/edit")
    hiss = tmp_path / "hiss.wav"
    audio.save(np.random.default_rng(7).uniform(-0.3, 0.3, (2, 12 * SR)).astype(np.float32), hiss, "wav")
    _, none, *_ = client.predict(src_audio=handle_file(str(hiss)), extend_seconds=30, api_name="/extend_analyze")
    for api in ("/edit", "/extend"):
        with pytest.raises(ValidationError, match=r"bars: The studio hears no steady beat in this song"):
            client.predict(src_audio=handle_file(str(hiss)), prompt="dub", bpm=none, bars="4", api_name=api)


def test_a_section_typed_in_bars_is_refused_naming_the_whole_choice_and_what_bars_takes(client, tmp_path):
    """Bars given “the chorus” is refused with a message that names all of it (not its first word, “the”)
    and says what Bars takes, and where a section is chosen by its name; at admission."""
    song, _ = clicks(120, 4, 12.0)
    path = tmp_path / "song.wav"
    audio.save(song, path, "wav")
    message = (
        r"bars: “the chorus” is not a choice of bars: Bars takes bar numbers from 1, such as 9-16 or 9\. "
        r"\(A section by its name: A whole section, under Choose by the words\.\)"
    )
    with pytest.raises(ValidationError, match=message):
        client.predict(src_audio=handle_file(str(path)), prompt="dub", bars="the chorus", api_name="/edit")


def test_an_upload_the_studio_did_not_make_is_counted_from_its_own_audio(client, studio_server, tmp_path):
    song, truth = clicks(100, 3, 20.0)
    path = Path(tmp_path / "mine.wav")
    audio.save(song, path, "wav")
    made = client.predict(
        src_audio=handle_file(str(path)), prompt="dub", bars="2-3", inference_steps=1, api_name="/edit"
    )[-1]
    start, end = made["params"]["repainting_start"], made["params"]["repainting_end"]
    assert start == pytest.approx(truth[1], abs=0.03) and end == pytest.approx(truth[3], abs=0.03)


def test_an_uploads_analysis_counts_its_bars_for_the_edit_that_follows(client, tmp_path):
    song, truth = clicks(100, 3, 20.0, seed=4)
    path = tmp_path / "counted.wav"
    audio.save(song, path, "wav")
    line, *_ = client.predict(src_audio=handle_file(str(path)), extend_seconds=30, api_name="/extend_analyze")
    assert f" · {len(truth)} bars" in line, line
    hiss = tmp_path / "hiss.wav"
    audio.save(np.random.default_rng(5).uniform(-0.3, 0.3, (2, 12 * SR)).astype(np.float32), hiss, "wav")
    line, *_ = client.predict(src_audio=handle_file(str(hiss)), extend_seconds=30, api_name="/extend_analyze")
    assert " bars" not in line, line


def test_bar_1_of_a_song_on_its_downbeat_at_0_is_edited_from_0(client, tmp_path):
    """An upload the studio did not make, counted from its audio: the demo song and a click track whose
    first downbeat is the song's first sample: bar 1 starts at 0, and bars 1–2 end on the third bar line."""
    song, truth = clicks(120, 4, 16.0, drift=0.0, lead=0.0)
    path = tmp_path / "on-the-one.wav"
    audio.save(song, path, "wav")
    for source, bar in ((examples.demo_song(), 2.4), (str(path), truth[1])):
        made = client.predict(
            src_audio=handle_file(source), prompt="dub", bars="1-2", inference_steps=1, api_name="/edit"
        )[-1]
        start, end = made["params"]["repainting_start"], made["params"]["repainting_end"]
        assert start == 0.0 and end == pytest.approx(2 * bar, abs=0.03), (source, start, end)
