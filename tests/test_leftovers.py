"""What a run of the tests leaves on the machine: gradio_client's empty download folders go at a run's end, once no run
can still be filling them (``conftest.pytest_sessionfinish``)."""

from __future__ import annotations

import os
import time

from conftest import sweep_client_folders


def _folder(root, name: str, age_s: float, holding: bool = False):
    path = root / name
    path.mkdir()
    if holding:
        (path / "take.wav").write_bytes(b"RIFF")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_the_client_folders_a_run_left_empty_go_and_nothing_else(tmp_path):
    old_empty = _folder(tmp_path, "ab" * 20, 400)
    young_empty = _folder(tmp_path, "cd" * 20, 5)  # a run beside this one, waiting for its first byte
    old_holding = _folder(tmp_path, "ef" * 20, 400, holding=True)
    old_other = _folder(tmp_path, "a-folder-of-someone-else", 400)
    old_upper = _folder(tmp_path, "AB" * 20, 400)
    a_file = tmp_path / ("12" * 20)
    a_file.write_bytes(b"")
    os.utime(a_file, (time.time() - 400,) * 2)
    assert sweep_client_folders(tmp_path, 300) == 1
    assert not old_empty.exists()
    assert all(p.exists() for p in (young_empty, old_holding, old_other, old_upper, a_file))
