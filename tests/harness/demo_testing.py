"""The demo's input builders (demo/builders_*.py), for tests that feed the same inputs.

Importable by name: tests/conftest.py puts this directory on sys.path.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

DEMO = Path(__file__).resolve().parents[2] / "demo"


def demo_module(name: str) -> ModuleType:
    """demo/`name`.py, imported as the demo runs it: with demo/ on sys.path while it loads (the
    builders import `make_inputs` from there)."""
    demo = str(DEMO)
    added = demo not in sys.path
    if added:
        sys.path.insert(0, demo)
    try:
        return importlib.import_module(name)
    finally:
        if added:
            sys.path.remove(demo)
