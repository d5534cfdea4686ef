"""Shared by the schema registry tests: the checked-in catalog, content types, a file writer.

Importable by name: tests/conftest.py puts this directory on sys.path.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
JSON_CT = "application/json"
AVRO_CT = "application/avro"


def write(directory: Path, name: str, document: object) -> Path:
    path = directory / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path
