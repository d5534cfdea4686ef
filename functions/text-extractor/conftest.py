"""Fixtures shared by the text-extractor tests: text-extractor served through the WSGI test client
against moto's S3 server and a loopback broker stand-in.

With this folder appended to sys.path, the tests find `text_extractor_testing` by name (which
adds the helpers under tests/ in turn) when pytest runs from the root and on this folder alone.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.append(str(Path(__file__).resolve().parent))
from text_extractor_testing import dt


@pytest.fixture
def extractor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("TEXT_EXTRACTOR_MAX_BYTES", raising=False)
    monkeypatch.delenv("TEXT_EXTRACTOR_SPOOL_BYTES", raising=False)
    with dt.harness("text-extractor", tmp_path, monkeypatch) as harness:
        yield harness
