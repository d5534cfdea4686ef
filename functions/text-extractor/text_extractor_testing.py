"""Shared by the text-extractor tests: the document builders of the demo, the extracted event and
text of a delivery, and an encrypted PDF.

Importable by name: conftest.py puts this folder on sys.path.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import documents_testing as dt  # noqa: E402

bd = dt.builders()
EXTRACTED = dt.EXTRACTED
PDF = "application/pdf"
DOCX = bd.DOCX_CONTENT_TYPE


def extracted(h: Any, event: Any, mode: str = "binary") -> tuple[dict[str, Any], str]:
    """Deliver `event`, expect success; the emitted data and the text written."""
    response = h.deliver(event, mode)
    assert response.status_code == 204, response.get_data(as_text=True)
    [emitted] = h.sink.events(EXTRACTED)
    assert emitted.subject == event.data["key"]
    text = h.read(emitted.data["text_key"]).decode("utf-8")
    assert emitted.data["chars"] == len(text)
    return emitted.data, text


def encrypted_pdf(user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    plain = bd.pdf_document([["Confidential but readable."]], title="Locked")
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain)))
    writer.encrypt(
        user_password=user_password,
        owner_password="owner",  # noqa: S106 (a test document's password)
        algorithm="AES-256",
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
