"""What importing the app costs and what it must not do."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def _run(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTORCH_ENABLE_MPS_FALLBACK"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_app_loads_no_model_library_and_builds_nothing():
    got = _run(
        "import sys, os, app, backend\n"
        "print([m for m in ('torch', 'diffusers', 'transformers', 'mlx') if m in sys.modules],"
        " backend.is_warm(), os.environ.get('PYTORCH_ENABLE_MPS_FALLBACK'))"
    )
    assert got == "[] False 1"


def test_every_action_is_a_named_endpoint():
    got = _run(
        "import app\n"
        "cfg = app.demo.get_config_file()\n"
        "print(sorted(d['api_name'] for d in cfg['dependencies'] if d.get('api_visibility', 'public') == 'public'))"
    )
    for name in ("generate", "stop"):
        assert f"'{name}'" in got
