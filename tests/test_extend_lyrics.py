"""What an Extend's new part sings and an ending (``extend_lyrics``), through the real tiny pipeline: the lyrics the
pipeline receives (a spy at ``Backend.run``; the pipeline itself runs) for a take the studio made with synced
lyrics (the whole song's, the new part's in place, as upstream's page sends a repaint's) and for an upload (the
new part's alone); different lyrics change the new part and leave the kept part bit for bit; an ending closes the
new part with upstream's ``[Outro]`` section. That the new part *sounds* like an ending only real weights can
tell: the tiny model's music is random."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

import audio
import backend
import checks
import edit_lines
import extend_lyrics
import handlers
import lrc
import modes
import records
from checks import InputError
from test_audio_modes import _capture, tone

LYRICS = "[Verse 1]\nneon lights\nburning bright\n\n[Chorus]\nhold on tight\nnever let go\n[Verse 2]\nmorning comes"
TIMES = [1.0, 3.0, 6.0, 8.0, 11.0]
BARS = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]  # 120 BPM in 4/4, as the take's record keeps its map
NEW = "[Verse 3]\nstars fall down\nall around"
KW = {"inference_steps": 1, "seed": 5}


@pytest.fixture
def received(monkeypatch) -> list:
    """The lyrics of every render the pipeline is given (a spy: the pipeline itself runs)."""
    seen: list[str] = []
    real = backend.Backend.run

    def run(self, render, progress=None, run_id=None):
        seen.append(render.pipeline.lyrics)
        return real(self, render, progress=progress, run_id=run_id)

    monkeypatch.setattr(backend.Backend, "run", run)
    return seen


@pytest.fixture
def sung_take(studio_env) -> str:
    """A 14 s sung take the studio made (``LYRICS``), its record's line times set to ``TIMES`` and its bars to
    ``BARS`` (the tiny model's alignment and beat are random): a song whose lyrics, their times and bars the studio
    knows."""
    _, record = handlers.make("generate", prompt="synth pop", lyrics=LYRICS, audio_duration=14, think=False, **KW)
    take = record["takes"][0]
    own = studio_env / take["metadata"]
    kept = json.loads(own.read_text())
    kept["bars"] = BARS
    kept["lyric_lines"] = [
        {"time": t, "text": line["text"]} for t, line in zip(TIMES, kept["lyric_lines"], strict=True)
    ]
    own.write_text(json.dumps(kept))
    path = str(studio_env / take["audio"])
    assert [line.start for line in edit_lines.known(path).lines] == TIMES
    return path


def test_a_sung_takes_extend_reads_the_whole_songs_lyrics_the_new_parts_after_them(sung_take, received):
    """Upstream's page repaints with the song's own lyrics in its field (*Send to Repaint*), the new lines among
    them: the kept part's lines are placed where they are sung, the new ones where the music is new."""
    _, record = handlers.make("extend", src_audio=sung_take, prompt="synth pop", lyrics=NEW, extend_seconds=6, **KW)
    assert received == [f"{LYRICS}\n\n{NEW}"]
    assert record["params"]["lyrics"] == received[0]
    # Sent again as its record has them (*Use these settings*, a variation): the same words, not the song's twice.
    received.clear()
    handlers.make("extend", src_audio=sung_take, prompt="synth pop", lyrics=record["params"]["lyrics"], **KW)
    assert received == [f"{LYRICS}\n\n{NEW}"]
    # From a point (7 s: after the third line) the lines sung after it go with the music replaced; before the start
    # the new part's lines come first.
    for where, model_reads in (
        ("7", "[Verse 1]\nneon lights\nburning bright\n\n[Chorus]\nhold on tight"),
        ("start", ""),
    ):
        job = modes.PREPARE["extend"](src_audio=sung_take, lyrics=NEW, extend_seconds=6, where=where)
        expected = f"{model_reads}\n\n{NEW}" if model_reads else f"{NEW}\n\n{LYRICS}"
        assert job.request.render.pipeline.lyrics == expected
    # No lyrics for the new part: an instrumental part after the song's lines, which the model still reads.
    assert modes.PREPARE["extend"](src_audio=sung_take, extend_seconds=6).request.render.pipeline.lyrics == (
        f"{LYRICS}\n\n{checks.INSTRUMENTAL_TAG}"
    )


def test_an_uploads_extend_reads_the_new_parts_lyrics_alone(studio_env, tmp_path, received):
    src = tone(tmp_path / "song.wav", seconds=10.0)
    handlers.make("extend", src_audio=str(src), prompt="keep grooving", lyrics=NEW, extend_seconds=6, **KW)
    handlers.make("extend", src_audio=str(src), prompt="keep grooving", extend_seconds=6, **KW)
    assert received == [NEW, checks.INSTRUMENTAL_TAG]


def test_different_lyrics_change_the_new_part_and_leave_the_kept_part_bit_for_bit(sung_take, monkeypatch):
    takes = []
    for words in (NEW, "[Bridge]\nsomething else entirely\nnothing like it"):
        saved: dict = {}
        monkeypatch.setattr(audio, "save", _capture(saved))
        handlers.make("extend", src_audio=sung_take, prompt="synth pop", lyrics=words, extend_seconds=6, **KW)
        takes.append(saved["x"])
    n = audio.load(sung_take).shape[-1]
    keep = n - int(modes.SEAM_SECONDS * audio.SAMPLE_RATE)
    np.testing.assert_array_equal(takes[0][:, :keep], takes[1][:, :keep])
    assert np.abs(takes[0][:, n:] - takes[1][:, n:]).max() > 1e-4


def test_an_ending_closes_the_new_part_with_an_outro_section(sung_take, tmp_path, received):
    """Upstream's lyrics guide names ``[Outro]`` the ending's section; lyrics that have one already end the song."""
    src = str(tone(tmp_path / "song.wav", seconds=10.0))
    for song, words, model_reads in (
        (src, NEW, f"{NEW}\n\n[Outro]"),
        (src, "", "[Outro]"),
        (src, f"{NEW}\n[Outro - fade out]\nbye", f"{NEW}\n[Outro - fade out]\nbye"),
        (sung_take, NEW, f"{LYRICS}\n\n{NEW}\n\n[Outro]"),
    ):
        received.clear()
        handlers.make("extend", src_audio=song, prompt="x", lyrics=words, extend_seconds=6, ending=True, **KW)
        assert received == [model_reads]
        assert extend_lyrics.closes(received[0])
    # Asked in seconds, an ending is whole bars (7 s: 4 bars of 2 s), its last bar line the take's end.
    job = modes.PREPARE["extend"](src_audio=sung_take, lyrics=NEW, extend_seconds=7, ending=True)
    assert job.request.notes.extend_bars == 4 and job.request.seconds == pytest.approx(14.0 + 8.0)
    # The record says so, and a variation of the take asks it again (``records.Record.asked``): the same length.
    _, record = handlers.make("extend", src_audio=sung_take, lyrics=NEW, extend_seconds=7, ending=True, **KW)
    assert record["params"]["ending"] is True and record["params"]["extend_bars"] == 4
    asked = records.Record.of(record).asked(frozenset(inspect.signature(modes.PREPARE["extend"]).parameters))
    assert asked["ending"] is True and asked["extend_seconds"] == 8.0 and extend_lyrics.closes(asked["lyrics"])
    # Off (the default), nothing is added.
    job = modes.PREPARE["extend"](src_audio=src, lyrics=NEW, extend_seconds=6)
    assert job.request.render.pipeline.lyrics == NEW and not extend_lyrics.closes(NEW)


def test_ending_is_a_switch_refused_with_a_message_on_its_field(studio_env, tmp_path):
    src = str(tone(tmp_path / "song.wav", seconds=10.0))
    with pytest.raises(Exception, match="Ending") as refused:
        modes.PREPARE["extend"](src_audio=src, extend_seconds=6, ending="perhaps")
    assert getattr(refused.value, "param", "ending") == "ending"


def test_the_words_kept_from_a_point_are_the_lines_sung_before_it():
    """From a point the lines sung after it go with the music they were sung in; their section marker too."""
    song = edit_lines.parse(LYRICS, TIMES, 14.0)
    whole = extend_lyrics._whole(song, NEW, False, 7.0, intro=False)
    assert lrc.sung_lines(whole) == ["neon lights", "burning bright", "hold on tight", "stars fall down", "all around"]
    assert "[Verse 2]" not in whole and whole.endswith(NEW)
    intro = extend_lyrics._whole(song, "[Intro]\nhere we go", False, 0.0, intro=True)
    assert intro == f"[Intro]\nhere we go\n\n{LYRICS}"
    assert extend_lyrics._whole(None, NEW, False, 7.0, intro=False) is None


def test_an_intro_cannot_be_an_ending(studio_env, tmp_path):
    src = str(tone(tmp_path / "song.wav", seconds=10.0))
    job = modes.PREPARE["extend"](src_audio=src, extend_seconds=6, where="start")
    assert job.request.render.pipeline.repainting_start == 0.0
    with pytest.raises(InputError, match="ending closes the song") as refused:
        modes.PREPARE["extend"](src_audio=src, extend_seconds=6, where="start", ending=True)
    assert refused.value.param == "ending"
