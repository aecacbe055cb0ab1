"""A take edited from its own latents, as upstream's repaint of a generated take (PR #1177).

Every take keeps the final latents the model made (``take_latents``), written beside it, removed with it,
counted with it; an Edit, Extend or Cover of a take the studio made starts from them instead of a VAE
encode of its waveform, whether the take came by *Send to* (a hard link in the uploads), from *My
takes* (a copy through the API) or by a variation; an upload, a changed file or a take whose latents
are gone is read by the VAE, and the record says which. Spies sit at the model-call boundary:
the VAE's ``encode`` and the sampler's run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file

import audio
import backend
import budget
import handlers
import output_folder
import sampler
import take_latents
import takes
import uploads
from conftest import music_shape
from test_audio_modes import tone
from test_upstream import SamplerSpy

FROM_TAKE_LATENTS = "the take's own latents"


class RunSpy(SamplerSpy):
    """The sampler's run (``SamplerSpy``), keeping what the last run returned: the final latents."""

    def __call__(self, pipe, call, generators, on_step=None):
        self.calls.append(call)
        self.last_latents = self.run(pipe, call, generators, on_step)
        return self.last_latents


class EncodeSpy:
    """The VAE's ``encode`` of the served pipeline, counting every call and the samples it was given."""

    def __init__(self, vae):
        self.real, self.samples = vae.encode, []

    def __call__(self, x, *args, **kwargs):
        self.samples.append(int(x.shape[-1]))
        return self.real(x, *args, **kwargs)


@pytest.fixture(scope="module")
def served(studio_server):
    """A page (client) on the in-process studio, with spies on the VAE's encode and the sampler's run."""
    url, out = studio_server
    client = Client(url, verbose=False)
    vae = backend.get_backend().pipe.vae  # the served studio's own pipeline, built here (no take needed)
    encodes, runs = EncodeSpy(vae), RunSpy()
    patch = pytest.MonkeyPatch()
    patch.setattr(vae, "encode", encodes)
    patch.setattr(sampler, "run", runs)
    yield client, out, encodes, runs
    patch.undo()


def _made(client, **settings):
    """A Generate take: (its file as the client downloaded it, the result's record)."""
    result = client.predict(
        prompt="glass and strings", audio_duration=10, inference_steps=2, think=False, api_name="/generate", **settings
    )
    return result[0], result[-1]


def _own_file(out: Path, record: dict, take: int = 1) -> Path:
    return out / record["takes"][take - 1]["audio"]


def test_every_take_keeps_its_final_latents_beside_it_bound_to_its_file(served):
    client, out, _, runs = served
    _, record = _made(client, seed=40, batch_size=2)
    returned = runs.last_latents
    for i, entry in enumerate(record["takes"]):
        file = out / entry["latents"]["file"]
        assert file == take_latents.file_of(_own_file(out, record, i + 1)) and file.name.endswith("-latents.npy")
        kept = np.load(file, allow_pickle=False)  # no pickle: a plain float32 array
        samples = sf.info(_own_file(out, record, i + 1)).frames
        assert kept.dtype == np.float32 and kept.shape == (take_latents.frames_for(samples), returned.shape[-1])
        np.testing.assert_array_equal(kept, returned[i, : kept.shape[0]].float().numpy())  # what the model made
        digest = hashlib.sha256(_own_file(out, record, i + 1).read_bytes()).hexdigest()
        assert entry["latents"]["audio_sha256"] == digest
        own = (out / entry["metadata"]).read_text()
        assert digest in own and entry["latents"]["file"] in own  # the take's own .json says it too


def test_an_edit_extend_and_cover_of_a_take_start_from_its_latents_not_a_vae_encode(served, monkeypatch):
    client, out, encodes, _ = served
    _, record = _made(client, seed=41)
    entries = client.predict(record, api_name="/keep_takes")
    song = client.predict(entries[0], api_name="/send_my_take_to_edit")[0]  # My takes: the take, a copy here
    own = np.load(out / record["takes"][0]["latents"]["file"], allow_pickle=False)
    prepared, prepare = [], sampler.prepare  # every run's inputs, the morph's too (it has its own loop)
    monkeypatch.setattr(sampler, "prepare", lambda pipe, call, *a: prepared.append(call) or prepare(pipe, call, *a))
    for api, settings in (
        ("/edit", {"repainting_start": 2, "repainting_end": 5}),
        ("/extend", {"extend_seconds": 5}),
        ("/cover", {"audio_cover_strength": 0.5}),
        ("/cover", {"morph": True, "morph_prompt": "glass and strings"}),  # the morph moves the take's own
        # A part, on the XL base, from the take's latents: told only its name (a style with it is refused).
        ("/edit", {"change": "extract", "part": "drums", "prompt": ""}),
    ):
        before = len(encodes.samples)
        asked = {"prompt": "brass", **settings}
        made = client.predict(src_audio=handle_file(song), inference_steps=2, api_name=api, **asked)
        assert len(encodes.samples) == before, api  # no VAE encode of the source
        assert made[-1]["params"]["source_latents"].startswith(FROM_TAKE_LATENTS), api
        assert len(prepared) == 1 and prepared.pop().src_latents.numpy().tolist() == own.tolist(), api


def test_send_to_hands_on_a_link_and_a_variation_names_the_take(served):
    """*Send to* places a hard link to the take in the uploads (``uploads.link_in``), whose path the page
    then sends as the song, as here; a variation of an edit names the take it was made from, given again."""
    import variations

    client, out, encodes, _ = served
    _, record = _made(client, seed=42)
    link = uploads.link_in(_own_file(out, record))
    assert os.path.samefile(link, _own_file(out, record))
    before = len(encodes.samples)
    edit = {"prompt": "choir", "repainting_start": 1, "repainting_end": 4, "inference_steps": 2, "seed": 3}
    _, edited = handlers.make("edit", src_audio=link, **edit)
    _, varied = handlers.run_job(variations.prepare(1, edited, 0.4, 2, seed=9, src_audio=link))
    assert len(encodes.samples) == before
    assert edited["params"]["source_latents"].startswith(FROM_TAKE_LATENTS) and varied["params"][
        "source_latents"
    ].startswith(FROM_TAKE_LATENTS)
    assert [t["variation"]["seed"] for t in varied["takes"]] == [9, 10]


def test_an_upload_a_changed_file_and_missing_latents_go_through_the_vae_and_say_why(served, tmp_path):
    client, out, encodes, runs = served
    song, record = _made(client, seed=43)
    upload = tone(tmp_path / "song.wav", seconds=10)
    changed = tmp_path / "changed" / Path(song).name  # the take's own name, one sample changed
    changed.parent.mkdir()
    data, rate = sf.read(song, dtype="int16")
    data[1000, 0] += 1
    sf.write(changed, data, rate, subtype="PCM_16")
    edit = {"prompt": "choir", "repainting_start": 1, "repainting_end": 4, "inference_steps": 2, "api_name": "/edit"}
    said = {}
    for name, path in (("upload", upload), ("changed", changed)):
        before = len(encodes.samples)
        said[name] = client.predict(src_audio=handle_file(str(path)), **edit)[-1]["params"]["source_latents"]
        assert len(encodes.samples) == before + 1 and runs.calls[-1].src_latents is None, name
    (out / record["takes"][0]["latents"]["file"]).unlink()
    before = len(encodes.samples)
    said["gone"] = client.predict(src_audio=handle_file(song), **edit)[-1]["params"]["source_latents"]
    assert len(encodes.samples) == before + 1
    # An upload and a changed file read the same: nothing tells whether a take of that name exists.
    assert said == {
        "upload": "encoded by the VAE: the studio keeps no latents of this very file",
        "changed": "encoded by the VAE: the studio keeps no latents of this very file",
        "gone": "encoded by the VAE: its take's latents are gone",
    }


def _npy(shape: tuple, dtype: str = "<f4", data: bytes | None = None) -> bytes:
    """A ``.npy`` file's bytes: numpy's own header for ``shape`` and ``dtype``, then ``data`` (default:
    the zeros the header promises)."""
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return header.getvalue() + (bytes(size) if data is None else data)


def test_damaged_or_mismatched_latents_go_through_the_vae_and_the_record_says_why(served):
    """A take's latents file damaged (0 bytes, cut, a header that lies) or not the
    take's (another length, another width, another type) never stops an edit of it nor is used as
    its own: the VAE reads the song, one log line and the record saying why; a header that promises
    gigabytes is refused from its header (its data is never read). Every damage is put to the rule an
    edit asks (``preparing.source_latents``, the served studio's own); two of them (one the parser meets,
    one a file that reads well but is not the take's) are sent through the API as well, which shows
    that what the rule says is what the VAE reads and the record keeps."""
    import preparing

    client, out, encodes, runs = served
    song, record = _made(client, seed=46)
    file = out / record["takes"][0]["latents"]["file"]
    frames, width = np.load(file, allow_pickle=False).shape
    gone = "encoded by the VAE: its take's latents "
    cases = {
        "0 bytes": (b"", "could not be read"),
        "a header that lies": (_npy((2_000_000_000, width), data=b""), "are not as long as the song"),
        "cut short": (_npy((frames, width))[:-8], "are not a take's"),
        "not a .npy": (b"RIFF" + bytes(200), "could not be read"),
        "10 frames": (_npy((10, width)), "are not as long as the song (10 frames; it takes"),
        "40 times as long": (_npy((40 * frames, width)), f"({40 * frames} frames; it takes {frames})"),
        "2,000,000 frames": (_npy((2_000_000, width)), "(2000000 frames; it takes"),
        "another width": (_npy((frames, width + 3)), f"are not this model's ({width + 3} channels; it reads {width})"),
        "float64": (_npy((frames, width), "<f8"), "are not a take's"),
        "one dimension": (_npy((frames * width,)), "are not a take's"),
        "not finite": (_npy((frames, width), data=np.full((frames, width), np.nan, "<f4").tobytes()), "a take's"),
    }
    for name, (damage, why) in cases.items():
        file.write_bytes(damage)
        own = preparing.source_latents(song)
        assert not own.used and own.seed == 46, name  # the take is known: only its latents are refused
        assert own.why.startswith(gone) and why in own.why, (name, own.why)
    edit = {"prompt": "choir", "repainting_start": 1, "repainting_end": 4, "inference_steps": 2, "api_name": "/edit"}
    for name in ("0 bytes", "another width"):
        damage, why = cases[name]
        file.write_bytes(damage)
        before = len(encodes.samples)
        made = client.predict(src_audio=handle_file(song), **edit)[-1]
        said = made["params"]["source_latents"]
        assert len(encodes.samples) == before + 1 and runs.calls[-1].src_latents is None, name
        assert said == preparing.source_latents(song).why and why in said, (name, said)
        assert (out / made["takes"][0]["metadata"]).is_file() and said in (
            out / made["takes"][0]["metadata"]
        ).read_text()


def test_a_repaint_with_the_takes_own_seed_draws_another(served):
    """Upstream replaces a repaint seed equal to its generated source's (PR #1177): the same seed would
    draw the very noise the take was made from. The record and the seed line say so; a cover keeps it."""
    client, out, _, runs = served
    song, record = _made(client, seed=44)
    for api, settings in (("/edit", {"repainting_start": 1, "repainting_end": 4}), ("/extend", {"extend_seconds": 5})):
        *_, line, made = client.predict(
            src_audio=handle_file(song), prompt="x", inference_steps=2, seed=44, api_name=api, **settings
        )
        assert made["params"]["seed"] != 44 and made["params"]["seed_redrawn"] == 44, api
        assert made["takes"][0]["seed"] == made["params"]["seed"] and "not 44: that is the song's own seed" in line
    *_, made = client.predict(
        src_audio=handle_file(song),
        prompt="x",
        inference_steps=2,
        seed=45,
        repainting_start=1,
        repainting_end=4,
        api_name="/edit",
    )
    assert made["params"]["seed"] == 45 and "seed_redrawn" not in made["params"]
    *_, made = client.predict(src_audio=handle_file(song), prompt="x", inference_steps=2, seed=44, api_name="/cover")
    assert made["params"]["seed"] == 44 and "seed_redrawn" not in made["params"]


# ---------------------------------------------------------------- the takes' lifecycle and bounds


def test_the_latents_go_with_their_take_and_count_in_its_bounds(studio_env, monkeypatch):
    _, record = handlers.make("generate", prompt="pop", audio_duration=10, inference_steps=1, think=False, seed=7)
    file = studio_env / record["takes"][0]["latents"]["file"]
    take = studio_env / record["takes"][0]["audio"]
    assert file.is_file()
    # The output quota takes a take with its latents, and counts them.
    used = sum(p.stat().st_size for p in studio_env.rglob("*") if p.is_file() and not p.name.startswith("."))
    monkeypatch.setattr(output_folder, "FRESH_S", 0.0)
    with monkeypatch.context() as m:  # a quota under the one take's files, for this step only
        m.setenv("ACE_STUDIO_OUTPUT_QUOTA_MB", str((used - file.stat().st_size // 2) / 2**20))
        assert output_folder.free_disk_space() and not take.exists() and not file.exists()
    # Age: a take's latents go with it, and latents left without a take go too.
    _, record = handlers.make("generate", prompt="pop", audio_duration=10, inference_steps=1, think=False, seed=8)
    file, take = studio_env / record["takes"][0]["latents"]["file"], studio_env / record["takes"][0]["audio"]
    old = time.time() - 3 * 3600
    for path in file.parent.iterdir():
        os.utime(path, (old, old))
    assert output_folder.clean_outputs(max_age_hours=1) >= 3 and not file.exists() and not take.exists()
    _, record = handlers.make("generate", prompt="pop", audio_duration=10, inference_steps=1, think=False, seed=9)
    (studio_env / record["takes"][0]["audio"]).unlink()
    output_folder.clean_outputs(max_age_hours=1)
    assert not (studio_env / record["takes"][0]["latents"]["file"]).exists()
    # The bytes a request may write count its takes' latents (the XL width, 64 floats at 25 frames a second).
    shape = music_shape(audio_duration=240, batch_size=4, audio_format="mp3")
    with monkeypatch.context() as m:
        m.setattr(take_latents, "BYTES_PER_SECOND", 0)
        m.setattr(take_latents, "HEADER_BYTES", 0)
        without = budget.bytes_written(shape)
    assert budget.bytes_written(shape) - without == 4 * (240 * 25 * 64 * 4 + take_latents.HEADER_BYTES)


def test_before_the_model_is_built_the_run_checks_the_latents_width(studio_env, monkeypatch):
    """The admission check compares a take's latents with the model's width once it is built; a request prepared
    before (the start-up build still under way) is checked by the run: an edit and a morph of a take
    whose latents are another width go through the VAE (the morph's song sent with them for it)."""
    import modes
    import take_morph

    _, record = handlers.make("generate", prompt="pop", audio_duration=10, inference_steps=1, think=False, seed=5)
    file, take = studio_env / record["takes"][0]["latents"]["file"], studio_env / record["takes"][0]["audio"]
    frames, width = np.load(file, allow_pickle=False).shape
    np.save(file, np.ones((frames, width + 3), np.float32), allow_pickle=False)
    prepared, prepare = [], sampler.prepare
    monkeypatch.setattr(sampler, "prepare", lambda pipe, call, *a: prepared.append(call) or prepare(pipe, call, *a))
    edit = {"prompt": "x", "repainting_start": 1, "repainting_end": 4, "inference_steps": 1}
    for name, make_job in (
        ("edit", lambda: modes.PREPARE["edit"](src_audio=str(take), **edit)),
        ("morph", lambda: take_morph.prepare(1, record, "dark techno", seed=1, inference_steps=1)),
    ):
        backend.reset_backend()
        job = make_job()
        assert job.request.render.pipeline.src_latents is not None, name  # the admission check could not tell
        _, made = handlers.run_job(job)
        call = prepared.pop()
        assert call.src_latents is None and call.src_audio is not None, name
        said = f"encoded by the VAE: its take's latents are not this model's ({width + 3} channels; it reads {width})"
        assert made["params"]["source_latents"] == said, name


def test_a_part_added_keeps_no_latents_and_a_partial_write_leaves_none(studio_env, tmp_path, monkeypatch):
    song = str(tone(tmp_path / "song.wav", seconds=8))
    _, record = handlers.make("edit", src_audio=song, change="add", part="drums", inference_steps=1, seed=3)
    assert "latents" not in record["takes"][0]  # its latents are the part's alone, not the take's
    assert not list(studio_env.rglob("*-latents.npy"))
    monkeypatch.setattr(take_latents, "digest", lambda path: (_ for _ in ()).throw(OSError(28, "No space")))
    before = set(studio_env.rglob("*"))
    with pytest.raises(takes.SaveError):
        handlers.make("generate", prompt="pop", audio_duration=10, inference_steps=1, think=False, seed=3)
    assert {p for p in studio_env.rglob("*") if p.is_file()} - before == set()  # nothing of it, latents neither


def test_the_sampler_reads_a_takes_latents_as_upstream_aligns_them(studio_env, tmp_path):
    """As upstream's ``_align_source_repaint_latent``: the song's frames of them, or the silence latent
    after them where the song the model reads is longer (Extend's padding); the same frame count the
    VAE gives for that song."""
    import torch

    pipe = backend.get_backend().pipe
    own = torch.randn(260, pipe.transformer.config.audio_acoustic_hidden_dim)
    song = torch.zeros(2, 300 * audio.HOP)
    vae, _ = pipe.prepare_src_latents(device="cpu", dtype=torch.float32, src_audio=song, task_type="repaint")
    read, frames = sampler._take_latents(pipe, own, song.shape[-1] // audio.HOP, 2, "cpu", torch.float32)
    assert frames == vae.shape[1] == 300 and read.shape == (2, 300, own.shape[-1])
    silence = pipe.condition_encoder.silence_latent[0]  # from its start, repeated where it is shorter
    silence = silence.repeat(-(-40 // len(silence)), 1)[:40]
    assert torch.equal(read[0, :260], own) and torch.equal(read[1, 260:], silence)
    shorter, frames = sampler._take_latents(pipe, own, 200, 1, "cpu", torch.float32)
    assert frames == 200 and torch.equal(shorter[0], own[:200])


def test_the_record_of_a_take_is_found_by_its_name_only_where_the_studio_keeps_it(studio_env, tmp_path):
    import preparing

    _, record = handlers.make("generate", prompt="pop", audio_duration=10, inference_steps=1, think=False, seed=4)
    take = studio_env / record["takes"][0]["audio"]
    elsewhere = tmp_path / "x" / take.name
    elsewhere.parent.mkdir()
    shutil.copyfile(take, elsewhere)
    assert preparing.source_latents(elsewhere).used and preparing.latents_of(elsewhere) is not None
    for name in (take.stem + "-vocals.wav", take.stem + ".json", "song.wav", take.stem + "-latents.npy"):
        assert preparing.latents_of(tmp_path / "x" / name) is None, name
