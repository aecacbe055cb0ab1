"""Where the studio's modules are, for a tool run as ``python tools/NAME.py``.

Python puts a script's own folder (``tools/``) on ``sys.path``, so the tools import each other by
name; the studio's modules sit one folder up, and ``reach()`` adds that folder before a tool imports
one. Under pytest both folders are on the path already (pyproject's ``pythonpath``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"


def reach() -> Path:
    """The studio's folder, put on ``sys.path`` if it is not there yet."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return ROOT
