"""Synced lyrics: the alignment on the tiny pipeline, the DTW and score on known matrices, the
``.lrc`` file as a standard reader (pylrc) reads it."""

from __future__ import annotations

import re

import numpy as np
import pylrc
import pytest

import alignment
import lrc
import random_models
from music_request import Call, Render

LYRICS = "[Verse]\nneon lights\nburning bright\n\n[Chorus]\nhold on tight\n(ooh)"
SUNG = ["neon lights", "burning bright", "hold on tight", "(ooh)"]


@pytest.fixture(scope="module")
def tokenizer():
    return random_models.build_tokenizer()


def test_sung_lines_leave_out_markers_and_blanks():
    assert lrc.sung_lines(LYRICS) == SUNG
    assert lrc.sung_lines("[Instrumental]") == [] and lrc.sung_lines("") == []


def test_every_lyric_token_is_mapped_back_to_its_line(tokenizer):
    rows = lrc.lyric_rows(tokenizer, LYRICS, "en")
    assert rows.texts == tuple(SUNG)
    ids = tokenizer(f"# Languages\nen\n\n# Lyric\n{LYRICS}<|endoftext|>").input_ids
    assert rows.start == len(tokenizer("# Languages\nen\n\n# Lyric\n").input_ids)
    assert rows.start + len(rows.lines) == len(ids) - 1  # up to, not including, the end marker
    # Every sung line has tokens, in order; the markers' tokens belong to no line and are not "sung".
    lines = [line for line in rows.lines if line >= 0]
    assert sorted(set(lines)) == [0, 1, 2, 3] and lines == sorted(lines)
    tagged = [i for i, sung in enumerate(rows.sung) if not sung]
    assert tagged and all(rows.lines[i] == -1 for i in tagged)
    assert lrc.lyric_rows(tokenizer, "[Instrumental]", "unknown") is None


def _diagonal(starts: list[int], tokens_per_line: int, frames: int) -> tuple[np.ndarray, lrc.Rows]:
    """Attention as a clean take sings: line k's tokens light up from frame ``starts[k]`` on."""
    lines = [k for k in range(len(starts)) for _ in range(tokens_per_line)]
    ends = [*starts[1:], frames]
    matrix = np.zeros((len(lines), frames), np.float32)
    for row, k in enumerate(lines):
        span = (ends[k] - starts[k]) / tokens_per_line
        a = starts[k] + int(span * (row % tokens_per_line))
        matrix[row, a : a + max(1, int(span))] = 1.0
    rows = lrc.Rows(0, tuple(lines), (True,) * len(lines), tuple(f"line {k}" for k in range(len(starts))))
    return matrix, rows


def test_dtw_finds_the_line_starts_and_scores_a_clean_take_high():
    matrix, rows = _diagonal([0, 40, 90, 150], tokens_per_line=3, frames=200)
    # 200 frames over 16 s: 0.08 s a frame, as the DiT's patches of two 25 Hz latent frames. Within two
    # frames: where the cost is flat the path may step down a little before the line lights up.
    np.testing.assert_allclose(lrc.line_times(matrix, rows, 16.0), [0.0, 3.2, 7.2, 12.0], atol=0.161)
    clean = lrc.lyric_score(matrix, rows)
    noise = lrc.lyric_score(np.random.default_rng(0).random(matrix.shape).astype(np.float32), rows)
    assert lrc.SCORE_RANGE[0] <= noise < clean <= lrc.SCORE_RANGE[1]
    # Backwards singing breaks monotonicity: a lower score than the same lines in order.
    assert lrc.lyric_score(matrix[::-1].copy(), rows) < clean


def test_the_lrc_file_reads_back_with_a_standard_reader():
    lines = [{"time": 0.0, "text": "neon lights"}, {"time": 65.432, "text": "burning  bright"}]
    text = lrc.lrc_text(lines, "Neon (take 1 of 2)", 130.0)
    parsed = pylrc.parse(text)
    assert parsed.title == "Neon (take 1 of 2)" and parsed.length == "02:10"
    assert [(round(line.time, 2), line.text) for line in parsed] == [(0.0, "neon lights"), (65.43, "burning bright")]
    assert lrc.fit(lines, 60.0)[1]["time"] == 59.99


def test_upstream_heads_by_model_shape():
    class Config:
        def __init__(self, layers, heads, **more):
            self.num_hidden_layers, self.num_attention_heads = layers, heads
            self.__dict__.update(more)

    assert alignment.heads_for(Config(32, 32)) == {3: (18, 27), 4: (22,), 5: (5, 6, 7), 6: (2, 12, 13), 7: (20, 21)}
    assert alignment.heads_for(Config(24, 16)) == {2: (6,), 3: (10, 11), 4: (3,), 5: (8, 9), 6: (8,)}
    assert alignment.heads_for(Config(24, 16, lyric_alignment_layers_config={"3": [1]})) == {3: (1,)}
    assert alignment.heads_for(Config(2, 4)) == {0: (0, 1, 2, 3)}


def test_takes_get_line_times_and_a_score_from_one_batched_pass(warm_backend):
    """Two takes, four sung lines: one time per line, non-decreasing, inside the take; the pass is one
    DiT forward over both takes; the chosen layers get their own processors back."""
    pipe = warm_backend.pipe
    calls = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda _m, _a, kw: calls.append(kw["hidden_states"].shape[0]), with_kwargs=True
    )
    before = dict(pipe.transformer.attn_processors)
    try:
        pipeline = {
            "prompt": "synth pop",
            "lyrics": LYRICS,
            "audio_duration": 10.0,
            "vocal_language": "en",
            "num_inference_steps": 2,
            "guidance_scale": 3.0,
            "shift": 3.0,
            "task_type": "text2music",
        }
        out = warm_backend.run(Render(Call(**pipeline), [3, 4]))
    finally:
        hook.remove()
    assert calls == [4, 4, 2]  # two steps with guidance's doubled batch, then one pass over both takes
    assert pipe.transformer.attn_processors == before
    assert len(out["lyrics"]) == 2 and out["lyrics_s"] > 0
    for take in out["lyrics"]:
        times = [line["time"] for line in take["lines"]]
        assert [line["text"] for line in take["lines"]] == SUNG
        assert times == sorted(times) and all(0.0 <= t < 10.0 for t in times)
        assert lrc.SCORE_RANGE[0] <= take["score"] <= lrc.SCORE_RANGE[1]
    pipeline = {
        "prompt": "ambient",
        "lyrics": "[Instrumental]",
        "audio_duration": 10.0,
        "vocal_language": "unknown",
        "num_inference_steps": 1,
        "guidance_scale": 1.0,
        "shift": 3.0,
        "task_type": "text2music",
    }
    instrumental = warm_backend.run(Render(Call(**pipeline), [5]))
    assert "lyrics" not in instrumental


# Hostile lyrics: a typed time inside a line, markup, a tab and two control characters (BEL, ESC).
HOSTILE = "[Verse]\n[00:00.00] injected timestamp\n<script>alert(1)</script>\nline\twith\x07control\x1bchars"
SUNG_HOSTILE = ["injected timestamp", "<script>alert(1)</script>", "line with control chars"]


def test_a_takes_lrc_carries_each_sung_line_once_with_its_own_time(studio_server):
    """Sent through the API as a visitor would, a typed "[00:00.00]" inside a line does not become a second
    time for it in the ``.lrc``, and BEL and ESC do not reach the file. Fetched as the page's link fetches it,
    every line has exactly one time, the studio's, and no control character; the record's ``lyric_lines``
    likewise."""
    import httpx
    from gradio_client import Client

    url, _ = studio_server
    record = Client(url, verbose=False).predict(
        prompt="synth pop", lyrics=HOSTILE, audio_duration=10, inference_steps=1, think=False, api_name="/generate"
    )[-1]
    take = record["takes"][0]
    answer = httpx.get(f"{url}takes/{take['lrc']}", timeout=60)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain"), answer
    text = answer.text
    assert not any(not c.isprintable() for c in text.replace("\n", "")), repr(text)
    timed = [line for line in text.splitlines() if not line.startswith(("[ti:", "[length:"))]
    stamps = [re.findall(r"\[\d+:\d+(?:\.\d+)?\]", line) for line in timed]
    assert [len(found) for found in stamps] == [1, 1, 1] and all(
        line.startswith(s[0]) for line, s in zip(timed, stamps, strict=True)
    )
    assert [line[len(s[0]) :] for line, s in zip(timed, stamps, strict=True)] == SUNG_HOSTILE
    assert [line["text"] for line in take["lyric_lines"]] == SUNG_HOSTILE
    parsed = pylrc.parse(text)  # a standard reader: one entry per sung line, in order, at the studio's times
    assert [round(line.time, 2) for line in parsed] == [round(line["time"], 2) for line in take["lyric_lines"]]


def test_a_caption_cannot_add_a_tag_to_the_lrc_header(studio_server):
    """A take titled by its caption ("Neon] [ar:someone else") must not write the header line
    ``[ti:Neon] [ar:someone else]``, where a reader that looks for tags anywhere finds an artist: one tag a
    header line, brackets in the title made parentheses both ways."""
    import httpx
    from gradio_client import Client

    url, _ = studio_server
    record = Client(url, verbose=False).predict(
        prompt="Neon] [ar:someone else",
        lyrics="[Verse]\n(oh) we run into the night",  # no line a title is taken from: the caption titles it
        audio_duration=10,
        inference_steps=1,
        think=False,
        api_name="/generate",
    )[-1]
    text = httpx.get(f"{url}takes/{record['takes'][0]['lrc']}", timeout=60).text
    head = [line for line in text.splitlines() if not re.match(r"\[\d", line)]
    assert head[0] == "[ti:Neon) (ar:someone else]", head
    assert all(re.fullmatch(r"\[[a-z]+:[^\[\]]*\]", line) for line in head), head
    assert pylrc.parse(text).title == "Neon) (ar:someone else"
