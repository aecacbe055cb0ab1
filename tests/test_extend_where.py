"""Extend from anywhere (``where``, ``extend_where``): after the song, before it (an intro) or from a point inside it
(seconds, m:ss, a bar from bar 1). The stand-in band plays the song at 3/4, 4/4 and 6/8, and a real record
(tests/data) is extended as uploaded, both at 44.1 kHz: every ``where`` keeps the song's part kept sample for sample
at that rate, and with bars the new part's seam and ends land on the song's bar lines; the refusals name ``where``
(a take past 10 minutes, the field asked); at the end, Extend is what it was. The grid of metres and wheres is laid
out and finished here on a take of the model's length, a few of it played by the model; in this process
(``handlers``), through ``gradio_client``, the MCP tool and under the ZeroGPU harness."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

import audio
import checks
import error_messages
import extend_where
import handlers
import messages
import modes
import parameters
from band import Band, play

SR = audio.SAMPLE_RATE
RATE = 44100  # the uploads' own rate: kept as is
BPM = 120
# A bar line of the take from where the song's bar grid, carried on, puts it (the tracker's reading of the band).
BAR_S = 0.03
METRES = {"3/4": 3, "4/4": 4, "6/8": 6}
# Every kind of where a musician types, a point from bar 3 or 6.5 s into the song; each adds ``BARS`` bars.
BARS = 4
WHERES = ("end", "start", "6.5", "0:06.5", "bar 3")


def _upload(folder: Path, per_bar: int, seconds: float = 12.0, how: Band = Band(lead=0.3)) -> tuple[Path, np.ndarray]:
    """The band's song at 44.1 kHz, 16-bit (as a mastered upload), and its samples (int16, ``[frames, 2]``)."""
    import soxr

    played = play(BPM, per_bar, seconds, how)
    pcm = np.round(soxr.resample(played.audio.T.astype(np.float64), SR, RATE, quality="VHQ") * 32000).astype(np.int16)
    path = folder / f"song-{per_bar}.wav"
    sf.write(path, pcm, RATE, subtype="PCM_16")
    return path, pcm


def _extend(path: Path, metre: str, where: str, **fields) -> tuple[np.ndarray, dict]:
    paths, record = handlers.make(
        "extend", src_audio=str(path), prompt="and on", bpm=BPM, time_signature=metre, where=where,
        inference_steps=1, seed=3, **fields,
    )  # fmt: skip
    take, rate = sf.read(paths[0], dtype="int16", always_2d=True)
    assert rate == RATE
    return take, record


def _kept_exactly(take: np.ndarray, song: np.ndarray, where: str, params: dict, rate: int = RATE) -> None:
    """The song's kept part, sample for sample at its own ``rate``, where ``where`` puts it."""
    fade = int(modes.SEAM_SECONDS * rate)
    if where == "end":
        np.testing.assert_array_equal(take[: len(song) - fade], song[: len(song) - fade])
    elif where == "start":
        lead = int(round(params["extend_seconds"] * rate))
        assert take.shape[0] == lead + len(song)
        np.testing.assert_array_equal(take[lead:], song)
    else:
        point = int(round(params["source_seconds"] * rate))
        np.testing.assert_array_equal(take[:point], song[:point])
        assert not np.array_equal(take[point + fade : point + rate], song[point + fade : point + rate])


def _finished(job: modes.Job, made: np.ndarray, folder: Path) -> np.ndarray:
    """The take the run writes from what the model ``made`` (48 kHz) of ``job``: finished at the source's rate
    (``untouched.finish``), written in the sample format that keeps it (``untouched.written``, as ``takes`` writes
    it), read back as 16-bit samples (``[frames, 2]``)."""
    import untouched

    _, _, mine = untouched.finish(job.kept, made, job.finishing)
    kept = untouched.written(job.kept, [mine], "wav")
    path = audio.save(kept.takes[0], folder / "take.wav", "wav", rate=kept.rate, subtype=kept.subtype)
    take, rate = sf.read(path, dtype="int16", always_2d=True)
    assert rate == RATE
    return take


def _on_the_bars(params: dict, where: str, length: float, truth: np.ndarray, bars: int) -> None:
    """With ``bars`` to add to a song whose true bar lines are ``truth`` (seconds, bar 1 first): an intro is whole
    bars counted back from bar 1 (bar 1 then falls a whole number of bars into the take, a pickup's bar counted);
    from a point or the end, the take (``length`` seconds) ends on a bar line of the song's grid carried on; a
    bar's point is that bar's line, and the new part that many bars."""
    bar = float(np.median(np.diff(truth)))
    if where == "start":
        one = params["extend_seconds"] + truth[0]  # the song's bar 1 in the take
        assert abs(one / bar - round(one / bar)) * bar <= BAR_S and round(one / bar) == bars + 1, (one, bar)
    else:
        carried = truth[0] + bar * np.round((length - truth[0]) / bar)
        assert abs(length - carried) <= BAR_S, (where, length, carried)
    if where.startswith("bar "):
        assert params["source_seconds"] == pytest.approx(truth[int(where[4:]) - 1], abs=BAR_S)
        assert params["extend_seconds"] == pytest.approx(bars * bar, abs=BAR_S)


# The (metre, where) the model plays through in this process; the rest of the grid is laid out and finished on a
# made take of the model's length (what the run does with what the model returns: ``modes.finish``).
PLAYED = {("3/4", "bar 3"), ("6/8", "start")}


@pytest.mark.parametrize("metre", METRES)
def test_every_where_keeps_the_song_bit_for_bit_and_its_bars_run_on_through_the_new_part(
    studio_env, band, metre, tmp_path
):
    """At each metre, with 4 bars to add (the song's bar 1 at 0.3 s, a pickup), every where: the song's part kept
    is its own samples at 44.1 kHz in the file written; an intro is whole bars counted back from bar 1; from a
    point, the new part ends on a bar line of the song's grid carried on; a bar's point is that bar's line. The
    record says where (m:ss as seconds)."""
    band(Band())
    per_bar = METRES[metre]
    path, song = _upload(tmp_path, per_bar)
    truth = play(BPM, per_bar, 12.0, Band(lead=0.3)).bars
    fields = {"bars": BARS, "first_downbeat": 0.3}
    for where in WHERES:
        if (metre, where) in PLAYED:
            take, record = _extend(path, metre, where, **fields)
            params = record["params"]
        else:
            job = modes.prepare_extend(
                src_audio=str(path), prompt="and on", bpm=BPM, time_signature=metre, where=where, seed=3, **fields
            )
            made = np.random.default_rng(3).normal(0, 0.1, (2, int(round(job.request.seconds * SR))))
            take, notes = _finished(job, made.astype(np.float32), tmp_path), job.request.notes
            params = {"source_seconds": notes.source_seconds, "extend_seconds": notes.extend_seconds}
            params |= {"where": notes.where} if notes.where is not None else {}
        _kept_exactly(take, song, where, params)
        assert params.get("where", "end") == (where if where != "0:06.5" else "6.5")
        _on_the_bars(params, where, take.shape[0] / RATE, truth, BARS)


def test_at_the_end_extend_asks_the_model_what_it_did_and_keeps_the_same_samples(tmp_path):
    """``where`` left out and "end" make the same request (a record without ``where``), laid out as before the
    field: the song padded with silence, repainted from its end, its prompt told the song's length, the seam's
    crossfade in the song's last samples, the take written at the song's own rate with nothing moved."""
    path, _ = _upload(tmp_path, 4)
    jobs = [
        modes.prepare_extend(src_audio=str(path), prompt="x", extend_seconds=6, seed=1, **w)
        for w in ({}, {"where": "end"})
    ]
    fade = int(modes.SEAM_SECONDS * SR)
    for job in jobs:
        call, n = job.request.render.pipeline, int(round(job.request.render.pipeline.audio_duration * SR))
        assert call.repainting_end == -1 and call.repainting_start == call.audio_duration == n / SR
        assert job.kept.layout is None and job.request.notes.where is None and job.region == (n - fade, n + 6 * SR)
    np.testing.assert_array_equal(jobs[0].request.render.pipeline.src_audio, jobs[1].request.render.pipeline.src_audio)
    take = np.random.default_rng(0).normal(0, 0.1, (2, jobs[0].region[1])).astype(np.float32)
    np.testing.assert_array_equal(jobs[0].post(take), jobs[1].post(take))


def test_where_reads_end_start_a_time_and_a_bar():
    read = extend_where.read
    assert read(None) == read("") == read("END") == extend_where.Where()
    assert read("start").kind == extend_where.START
    assert read(92.5) == read("92.5") == read("1:32.5") == extend_where.Where("point", 92.5)
    assert read("bar 9") == read("Bar9") == extend_where.Where("point", bar=9)
    for said in ("end", "start", "92.5", "bar 9"):
        assert read(said).said == said
    for wrong in ("later", "1:75", "-3", "bar", True, float("nan"), "x" * 200):
        with pytest.raises(checks.InputError) as caught:
            read(wrong)
        assert caught.value.param == "where" and caught.value.message.startswith("Where: give end, start")


def test_where_is_extends_own_parameter_on_every_way_in():
    """The preparer's (so the named API's, the page's and the MCP tool's), its default the end, its help said."""
    assert inspect.signature(modes.prepare_extend).parameters["where"].default == "end"
    assert parameters.PARAMS["where"].help
    assert all("where" not in parameters.names(mode) for mode in parameters.MUSIC if mode != "extend")
    import mcp_schema

    assert "where" in mcp_schema.MCP_FIELDS and "where" in mcp_schema.LOOSER


def _refused(path: Path, **fields) -> checks.InputError:
    with pytest.raises(checks.InputError) as caught:
        modes.prepare_extend(src_audio=str(path), prompt="x", seed=1, **fields)
    return caught.value


def test_a_point_outside_the_song_too_early_or_too_long_and_bars_without_a_tempo_are_refused_on_where(tmp_path):
    path, _ = _upload(tmp_path, 4)
    outside = _refused(path, where="0:13", extend_seconds=6)
    assert outside.param == "where" and outside.message == error_messages.WHERE_OUTSIDE.format(
        given="13 s", seconds=12.0
    )
    early = _refused(path, where="0.5", extend_seconds=6)
    assert early.param == "where" and "keeps less than 1 s" in early.message
    assert _refused(path, where="bar 40", bars=2, bpm=BPM, time_signature="4/4").message == (
        error_messages.WHERE_NO_SUCH_BAR.format(bar=40, count=6)
    )
    tone, _ = _upload(tmp_path, 4, how=Band(tone=440.0))
    no_bars = _refused(tone, where="bar 3", extend_seconds=6)
    assert no_bars.param == "where" and no_bars.message == error_messages.WHERE_NO_BARS.format(bar=3)
    assert _refused(tone, where="start", bars=2).message == error_messages.BARS_NO_GRID
    # Over the longest take: a point 7 minutes into an 8-minute song, and 4 more minutes.
    song = np.broadcast_to(np.zeros((), np.float32), (2, 480 * SR))
    call = SimpleNamespace(bpm=None, timesignature=None)  # the model call's tempo and metre: none typed
    with pytest.raises(checks.InputError) as caught:
        extend_where.layout(extend_where.read("7:00"), str(path), song, None, 240.0, call, None)
    assert caught.value.param == "where" and "longer than 10 minutes" in caught.value.message


def test_a_take_extended_from_its_own_latents_at_every_where(studio_env, band):
    """A Generate take sent to Extend: its own latents at the end and up to a point (the record says so), the VAE
    where an intro moves the song off their frames; its samples kept as written everywhere."""
    band(Band())
    paths, _ = handlers.make("generate", prompt="x", bpm=BPM, audio_duration=12, inference_steps=1, think=False, seed=5)
    song, _ = sf.read(paths[0], dtype="int16", always_2d=True)
    for where in ("end", "6.5", "start"):
        made, record = handlers.make(
            "extend", src_audio=paths[0], prompt="x", extend_seconds=6, where=where, inference_steps=1, seed=8
        )
        take, _ = sf.read(made[0], dtype="int16", always_2d=True)
        own = record["params"]["source_latents"]
        assert own == messages.LATENTS_MOVED if where == "start" else own.startswith("the take's own latents")
        _kept_exactly(take, song, where, record["params"], SR)


@pytest.fixture(scope="module")
def client(studio_server):
    from gradio_client import Client

    return Client(studio_server[0], verbose=False)


def _through(client, path: Path, **fields) -> tuple[np.ndarray, dict]:
    from gradio_client import handle_file

    made = client.predict(
        src_audio=handle_file(str(path)), prompt="and on", inference_steps=1, seed=4, api_name="/extend", **fields
    )
    take, rate = sf.read(made[0], dtype="int16", always_2d=True)
    assert rate == RATE
    return take, made[-1]


# A real record (tests/data/real_groove.md: its track, author and licence), 100 BPM in 4/4; its bar lines as a
# field tracker reads them (``real_groove.json``).
REAL = Path(__file__).parent / "data" / "real_groove.ogg"
REAL_BARS = np.asarray(json.loads(REAL.with_suffix(".json").read_text())["downbeats"])


def _real_record(folder: Path) -> tuple[Path, np.ndarray]:
    """The real record as a mastered upload: 44.1 kHz (soxr), its loudest sample at full scale, 16-bit WAV; the
    file and its samples (int16, ``[frames, 2]``)."""
    import soxr

    x, rate = sf.read(REAL, dtype="float64", always_2d=True)
    y = soxr.resample(x, rate, RATE, quality="VHQ")
    pcm = np.round(y / np.abs(y).max() * 32767).astype(np.int16)
    path = folder / "groove.wav"
    sf.write(path, pcm, RATE, subtype="PCM_16")
    return path, pcm


def _refusal(path: Path, **fields) -> str:
    """What the admission check says of an Extend of ``path``: the field, then its message (as a join's validation
    and the MCP tool name it)."""
    with pytest.raises(checks.InputError) as refused:
        handlers.prepare_for_admission("extend", {"src_audio": str(path), "prompt": "and on", **fields})
    return f"{refused.value.param}: {refused.value.message}"


def test_through_gradio_client_a_real_record_extended_from_a_bar_and_before_it_is_kept_at_its_own_rate(
    client, band, tmp_path
):
    """The real record uploaded at 44.1 kHz, 3 bars added from its bar 3 and before its start, the bars as the
    studio hears them: each take written at 44.1 kHz, the record's part kept sample for sample, the seam on bar 3's
    line and the new part's end on a bar line (the intro's: bar 1 a whole number of bars into the take); a wrong
    where refused in the admission check's words."""
    from gradio_client.exceptions import AppError, ValidationError

    band(Band())
    path, song = _real_record(tmp_path)
    for where in ("bar 3", "start"):
        take, record = _through(client, path, where=where, bars=3)
        _kept_exactly(take, song, where, record["params"])
        assert record["params"]["where"] == where and record["sample_rate"] == RATE
        _on_the_bars(record["params"], where, take.shape[0] / RATE, REAL_BARS, 3)
    with pytest.raises((ValidationError, AppError)) as refused:
        _through(client, path, where="later", extend_seconds=6)
    assert _refusal(path, where="later", extend_seconds=6) in str(refused.value)


def test_through_mcp_the_extend_tool_keeps_an_upload_to_its_bar_3_and_refuses_a_wrong_where_as_the_api(
    studio_server, band, tmp_path
):
    """The extend tool given an upload by its URL (the real record at 44.1 kHz) and ``where="bar 3"``: the take
    written at 44.1 kHz, the record's own samples up to bar 3's line; a wrong where refused in the words the
    admission check gives the page and the API."""
    pytest.importorskip("mcp")
    import httpx

    from conftest import CLIENT_TIMEOUT_S
    from test_mcp import call

    band(Band())
    url, out = studio_server
    path, song = _real_record(tmp_path)
    files = {"files": (path.name, path.read_bytes())}
    answer = httpx.post(f"{url}gradio_api/upload", files=files, timeout=CLIENT_TIMEOUT_S)
    upload = f"{url}gradio_api/file={answer.json()[0]}"
    asked = {"src_audio": upload, "prompt": "and on", "where": "bar 3", "bars": 3, "inference_steps": 1, "seed": 4}
    failed, texts = call(url, "extend", asked)
    assert not failed, texts
    record = json.loads(texts[-1])
    take, rate = sf.read(out / record["takes"][0]["audio"], dtype="int16", always_2d=True)
    assert rate == RATE and record["params"]["where"] == "bar 3"
    _kept_exactly(take, song, "bar 3", record["params"])
    _on_the_bars(record["params"], "bar 3", take.shape[0] / RATE, REAL_BARS, 3)
    failed, texts = call(url, "extend", {**asked, "where": "later"})
    said = _refusal(path, where="later", bars=3)
    assert failed and texts[0].endswith(said) and "Traceback" not in texts[0], (said, texts)


def _long_song(folder: Path, seconds: int) -> Path:
    """A song ``seconds`` long at 48 kHz: silence but for a click a second (a FLAC of some hundred KB, written in
    blocks of 10 s)."""
    path = folder / "long.flac"
    block = np.zeros((10 * SR, 2), np.int16)
    block[::SR] = 8000
    with sf.SoundFile(path, "w", SR, 2, subtype="PCM_16") as f:
        for _ in range(seconds // 10):
            f.write(block)
    return path


def test_an_intro_past_the_longest_take_is_refused_on_its_field_before_any_model_run(client, tmp_path):
    """A song of 590 s and an intro of 20 s (or 8 bars) would make a take over 10 minutes: refused on the field
    asked (``extend_seconds``, ``bars``) by the admission check, which reads the song's header only and lays out
    no copy of it, by the run's own preparation, and through ``gradio_client`` in the same words."""
    import tracemalloc

    from gradio_client.exceptions import AppError, ValidationError

    path = _long_song(tmp_path, 590)
    tracemalloc.start()
    try:
        said = _refusal(path, where="start", extend_seconds=20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    too_long = error_messages.EXTEND_TOO_LONG.format(song=590, more=20, most="10 minutes", most_added=10)
    assert said == f"extend_seconds: {too_long}"
    assert peak < 590 * SR * 2 * 4 / 20, peak  # the song's stand-in (its header's length), never laid out
    assert _refusal(path, where="start", bars=8).startswith("bars: The song is 590 s; adding 16 s")
    with pytest.raises(checks.InputError) as run:
        modes.prepare_extend(src_audio=str(path), prompt="and on", where="start", extend_seconds=20)
    assert (run.value.param, run.value.message) == ("extend_seconds", too_long)
    with pytest.raises((ValidationError, AppError)) as refused:
        _through(client, path, where="start", extend_seconds=20)
    assert said in str(refused.value)


def test_under_zerogpu_an_extend_from_a_point_keeps_the_song_before_it(zerogpu_space, tmp_path):
    from gradio_client import Client, handle_file

    path, song = _upload(tmp_path, 4)
    with zerogpu_space.band(Band()):
        made = Client(zerogpu_space.url, verbose=False).predict(
            src_audio=handle_file(str(path)), prompt="and on", extend_seconds=6, where="0:06.5",
            inference_steps=1, seed=4, api_name="/extend",
        )  # fmt: skip
    take, rate = sf.read(made[0], dtype="int16", always_2d=True)
    assert rate == RATE and made[-1]["params"]["where"] == "6.5" and take.shape[0] == int(round(12.5 * RATE))
    _kept_exactly(take, song, "6.5", made[-1]["params"])


def test_an_intros_repaint_interval_is_the_masks_first_frames_and_the_song_after_it_is_kept(tmp_path):
    """Before the start the model repaints ``[0, intro)``: the explicit chunk mask (``sampler.chunk_mask``) is 1 on
    the intro's frames and 0 on the song's, the source silence there (upstream's left padding)."""
    import torch

    import sampler

    path, _ = _upload(tmp_path, 4)
    call = modes.prepare_extend(src_audio=str(path), prompt="x", extend_seconds=6, where="start", seed=1)
    call = call.request.render.pipeline
    length = call.src_audio.shape[-1] // audio.HOP
    region = sampler._region(call, length, 1, "cpu")
    mask = sampler.chunk_mask(region, 1, length, 4, "cpu", torch.float32)
    assert call.repainting_start == 0.0 and call.repainting_end == 6.0 and call.audio_duration == 12.0
    assert mask[0, :150].eq(1).all() and mask[0, 150:].eq(0).all() and length == 450
    assert not call.src_audio[:, : 6 * SR].any() and call.src_audio[:, 6 * SR :].any()
