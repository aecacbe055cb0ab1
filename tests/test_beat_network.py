"""The learned beat tracker (``beat_network``, Beat This! ``small0`` exported by
``tools/export_beat_tracker.py``) for the songs the map is not told. Its real weights cannot be had here (nor its
package installed), so the network is a stand-in with its signature — a mel chunk (1, frames, 128) in (33 to
1500 frames), beat and downbeat logits (1, frames) out — exported with ``torch.export`` as the tool exports the real one and put in a
temporary Hub cache at the pinned SHA-256; the studio's own loading, front end, chunking and peak picking run on
it. The stand-in reads the mel it is given: a beat where the low bands sound, a downbeat where the top bands do
(a 9.5 kHz blip the test song plays on every third beat from its second: bars of 3 that the studio's own tracker,
hearing the louder bass of every fourth beat, does not count)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file

import analysis
import audio
import beat_network
import edit_bars
import song_map
import uploads

SR = audio.SAMPLE_RATE
REPO = "studio-owners/beat-this-small0"
FIRST, BEAT = 0.24, 0.5  # the test song's first beat (on a 50 fps frame) and its beat: 120 BPM


def _module(ramp: float = 0.0):
    """The stand-in; ``ramp``: each logit raised by ``ramp`` times its frame's place in the chunk (so which chunk
    gave a frame shows)."""
    import torch

    class Network(torch.nn.Module):
        def forward(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
            place = ramp * torch.arange(mel.shape[1], dtype=mel.dtype)
            return {"beat": mel[..., :11].mean(-1) - 2.0 + place, "downbeat": mel[..., 118:].mean(-1) - 2.2 + place}

    return Network()


def _exported(folder: Path, **stand_in) -> bytes:
    import torch

    chunk = torch.zeros(1, beat_network.CHUNK, beat_network.BANDS)
    program = torch.export.export(_module(**stand_in), (chunk,), dynamic_shapes=beat_network.dynamic_shapes())
    torch.export.save(program, folder / "program.pt2")
    return (folder / "program.pt2").read_bytes()


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> bytes:
    return _exported(tmp_path_factory.mktemp("export"))


def _in_cache(monkeypatch, folder: Path, program: bytes) -> None:
    """``program`` as the pinned network in a Hub cache at ``folder``, none of it read yet."""
    monkeypatch.setenv("HF_HUB_CACHE", str(_cache(folder, program)))
    monkeypatch.setattr(beat_network, "REPO", REPO)
    monkeypatch.setattr(beat_network, "SHA256", hashlib.sha256(program).hexdigest())
    beat_network.forget()


def _cache(folder: Path, data: bytes) -> Path:
    """A Hub cache holding ``data`` as ``REPO``'s ``beat_network.FILE`` (the layout ``preload_from_hub`` writes)."""
    revision = "0" * 40
    repo = folder / f"models--{REPO.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    (repo / "snapshots" / revision).mkdir(parents=True, exist_ok=True)
    (repo / "snapshots" / revision / beat_network.FILE).write_bytes(data)
    return folder


@pytest.fixture
def network(program, tmp_path, monkeypatch):
    """The stand-in network in the Hub cache, pinned; forgotten before and after."""
    _in_cache(monkeypatch, tmp_path / "hub", program)
    yield
    beat_network.forget()


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """The owners' repo named, but not in the Hub cache (an empty one, whatever this machine's holds)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(beat_network, "REPO", REPO)
    beat_network.forget()
    yield
    beat_network.forget()


def _song(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """A bass note on every beat (every fourth louder), a 9.5 kHz blip on every third from the second; stereo."""
    n, t = int(seconds * SR), np.arange(int(0.06 * SR)) / SR
    envelope = np.sin(np.pi * np.minimum(t / 0.01, 1) / 2) ** 2 * np.exp(-t / 0.02)
    mono, times = np.zeros(n, np.float32), np.arange(FIRST, seconds - 0.1, BEAT)
    for i, at in enumerate(times):
        s = int(round(at * SR))
        mono[s : s + t.size] += (1.0 if i % 4 == 0 else 0.4) * envelope * np.sin(2 * np.pi * 120 * t)
        if i % 3 == 1:
            mono[s : s + t.size] += 0.15 * envelope * np.sin(2 * np.pi * 9500 * t)
    return np.stack([mono, mono]), times


def test_the_network_is_read_from_the_hub_cache_and_heard_chunk_by_chunk(tmp_path, monkeypatch):
    """A song of 80 s (4,001 frames: three chunks, the last moved to end with the song) comes back with every
    frame's logits from the first chunk that holds it outside its 6-frame borders, at its place in that chunk (the
    stand-in adds its place in the chunk): frames 0-1487 from the chunk starting 6 frames before the song,
    1488-2975 from the one at 1482, the rest from the last, which ends with the song (2507)."""
    import torch

    _in_cache(monkeypatch, tmp_path / "hub", _exported(tmp_path, ramp=1e-3))
    assert beat_network.why_absent() is None
    mel = torch.from_numpy(np.random.default_rng(3).uniform(0, 6, (4001, 128)).astype(np.float32))
    beat, down = beat_network.logits(mel)
    frame = np.arange(4001)
    place = np.where(frame < 1488, frame + 6, np.where(frame < 2976, frame - 1482, frame - 2507))
    whole = _module()(mel[None])
    assert np.allclose(beat, whole["beat"][0].numpy() + 1e-3 * place, atol=1e-5)
    assert np.allclose(down, whole["downbeat"][0].numpy() + 1e-3 * place, atol=1e-5)
    beat_network.forget()


def test_peaks_are_the_largest_logit_within_60_ms_above_0_and_downbeats_sit_on_beats():
    beat = np.full(200, -5.0)
    beat[[10, 40, 41, 70, 72, 100]] = [3.0, 2.0, 2.0, 1.0, 4.0, -0.5]  # 70 is under 72 (2 frames away)
    down = np.full(200, -5.0)
    down[[11, 69]] = 1.0  # a frame after the beat at 10, three before the one at 72
    found = beat_network.peaks(beat, down)
    assert found.beats.tolist() == [10 / 50, 40.5 / 50, 72 / 50]  # 40 and 41 one beat, at their mean
    assert found.downbeats.tolist() == [10 / 50, 72 / 50]


def test_a_downbeat_the_network_missed_is_put_back_every_bar_of_its_metre():
    """Bars of 4 at 120 BPM where the network heard no downbeat in bars 3 and 4: their lines are put back on the
    beats a bar apart, not one bar of 12 beats; a tempo typed an octave off the network's is not its reading."""
    beats = np.arange(0.5, 20.0, 0.5)
    heard = beat_network.Heard(beats, beats[[0, 4, 16, 20]])
    lines, per_bar, tempo = song_map.heard_grid(heard, 20.0)
    assert (per_bar, tempo.bpm) == (4, 120.0) and lines == [0.5 + 2.0 * k for k in range(10)], lines
    assert song_map.heard_grid(heard, 20.0, bpm=60) is None and song_map.heard_grid(heard, 20.0, bpm=125)


def test_an_uploads_bars_are_the_networks_downbeats_where_it_is_present(network, studio_server, tmp_path):
    """Through gradio_client on the served studio: the upload's reading says 3/4 at 120 BPM (the network's
    downbeats, three beats apart) and its bars are the blips, and Edit's bars 5–8 are the network's bars 5–8;
    the network heard the song once for the reading, the edit and a BPM typed."""
    stereo, times = _song(16.0)
    path = tmp_path / "blips.wav"
    audio.save(stereo, path, "wav")
    client = Client(studio_server[0], verbose=False)
    line, bpm, _, metre, wave = client.predict(src_audio=handle_file(str(path)), api_name="/edit_analyze")
    assert " bars: ≈ 120 BPM in 3/4, " in line and line.count("BPM") == 1 and (bpm, metre) == (120, "3"), line
    bars = json.loads(wave)["bars"]
    assert np.allclose(bars, times[1::3][: len(bars)], atol=0.021) and len(bars) == 10, bars
    asked = {"src_audio": handle_file(str(path)), "prompt": "dub", "bpm": 121, "inference_steps": 1}
    params = client.predict(**asked, bars="5-8", api_name="/edit")[-1]["params"]
    assert params["repainting_start"] == pytest.approx(times[13], abs=0.021), params
    assert params["repainting_end"] == pytest.approx(times[25], abs=0.021), params
    heard = [key for key in analysis._networked._found if Path(key[0]).name == path.name]
    assert len(heard) == 1, heard  # by file alone: the reading (120 BPM) and the edit (121) read one hearing


def test_an_uploads_map_is_the_studio_trackers_where_the_network_is_absent(no_network, tmp_path):
    """The same song with the network's file not in the cache: its reading and its map are the studio's own
    tracker's (4/4 from the louder bass, bar lines on it), the same as without a network."""
    stereo, _ = _song(16.5)
    path = tmp_path / "blips.wav"
    audio.save(stereo, path, "wav")
    found, song = analysis.analyze(path), uploads.load(path)
    assert found == analysis.measure(song) and (found.bpm, found.beats_per_bar) == (120.0, 4)
    heard = edit_bars.of_song(str(path), None, 120)
    assert heard.bars == song_map.of_audio(song, SR, bpm=120).bars and heard.bars[:2] == [0.242, 2.242], heard.bars
    assert analysis.learned(path) is None


def test_a_missing_or_corrupt_file_falls_back_with_a_message(program, tmp_path, monkeypatch, capsys):
    """Each reason the network is not used, its message said once in the log (no traceback); the map is then the
    studio's own tracker's."""
    monkeypatch.setattr(beat_network, "REPO", None)
    beat_network.forget()
    assert beat_network.why_absent().startswith("no learned beat tracker is set up")
    monkeypatch.setattr(beat_network, "REPO", REPO)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    beat_network.forget()
    assert "is not in this machine's Hugging Face cache" in beat_network.why_absent()
    corrupt = program[:1000] + bytes(len(program) - 1000)
    monkeypatch.setenv("HF_HUB_CACHE", str(_cache(tmp_path / "hub", corrupt)))
    monkeypatch.setattr(beat_network, "SHA256", hashlib.sha256(program).hexdigest())
    beat_network.forget()
    assert "is not the file the studio pins (its SHA-256 differs), so it is not loaded" in beat_network.why_absent()
    monkeypatch.setattr(beat_network, "SHA256", hashlib.sha256(corrupt).hexdigest())
    beat_network.forget()
    why = beat_network.why_absent()
    assert why.startswith(f"{beat_network.FILE} could not be read as a beat tracker ("), why
    import torch

    fixed = torch.export.export(_module(), (torch.zeros(1, beat_network.CHUNK, beat_network.BANDS),))
    torch.export.save(fixed, tmp_path / "fixed.pt2")  # one shape only: a short song's chunk could not run
    one_shape = (tmp_path / "fixed.pt2").read_bytes()
    monkeypatch.setenv("HF_HUB_CACHE", str(_cache(tmp_path / "hub-fixed", one_shape)))
    monkeypatch.setattr(beat_network, "SHA256", hashlib.sha256(one_shape).hexdigest())
    beat_network.forget()
    assert beat_network.why_absent().startswith(f"{beat_network.FILE} could not be read as a beat tracker (")
    said = capsys.readouterr().out
    assert said.count("Beat network: ") == 5 and "Traceback" not in said, said
    stereo, _ = _song(12.0)
    path = tmp_path / "song.wav"
    audio.save(stereo, path, "wav")
    assert edit_bars.of_song(str(path), None, 120).bars == song_map.of_audio(uploads.load(path), SR, bpm=120).bars
    beat_network.forget()


def test_a_network_failing_on_a_song_or_giving_nan_leaves_it_the_studio_trackers_map(tmp_path, monkeypatch, capsys):
    """The network loads, then fails on an upload (the loaded program raising as it runs: out of memory, an op
    it cannot run): the song's map is the studio's own, the failure's message said once in the log, and the file is
    not heard again at the next request. A NaN among its logits is no hearing either (a beat lost to it would move
    the bars)."""
    import torch

    def fails(mel):
        raise RuntimeError("the program failed on this chunk")

    _in_cache(monkeypatch, tmp_path / "hub", _exported(tmp_path))
    assert beat_network.why_absent() is None
    monkeypatch.setitem(beat_network._state, "network", fails)
    stereo, _ = _song(12.0)
    path = tmp_path / "song.wav"
    audio.save(stereo, path, "wav")
    studio_trackers = song_map.of_audio(uploads.load(path), SR, bpm=120).bars
    assert beat_network.why_absent() is None and analysis.learned(path) is None
    assert edit_bars.of_song(str(path), None, 120).bars == studio_trackers and analysis.learned(path) is None
    said = capsys.readouterr().out
    assert said.count("The learned beat tracker failed on song.wav (") == 1 and "Traceback" not in said, said
    nan = {"beat": torch.full((1, 900), float("nan")), "downbeat": torch.zeros(1, 900)}
    monkeypatch.setattr(beat_network, "logits", lambda mel: (nan["beat"][0].numpy(), nan["downbeat"][0].numpy()))
    heard = beat_network.heard(stereo, SR)
    assert heard.read() is None and song_map.heard_grid(heard, 12.0) is None
    beat_network.forget()


def test_an_upload_while_the_network_is_being_read_gets_the_studio_trackers_map_without_waiting(network, tmp_path):
    """Start-up's warm-up reading the network (its lock held): an upload's reading neither waits for it nor
    reads it a second time; the map is the studio tracker's for that upload."""
    stereo, _ = _song(12.0)
    path = tmp_path / "song.wav"
    audio.save(stereo, path, "wav")
    with beat_network._lock:
        assert beat_network.ready() is False and analysis.learned(path) is None
        assert beat_network._state["tried"] is False
    assert beat_network.ready() is True
