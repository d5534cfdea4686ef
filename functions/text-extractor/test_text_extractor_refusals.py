"""text-extractor's refusals through the WSGI test client: bad, encrypted, unsupported and too
large documents, objects that are gone, storage that is down."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import documents_testing as dt
import pytest
from loopback_testing import free_port
from text_extractor_testing import DOCX, PDF, bd, encrypted_pdf


def zip_package(name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        package.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return out.getvalue()


OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
DEMO_PDF = bd.pdf_document(bd.QUARTERLY_REVIEW, title="Quarterly review")
REFUSED = {
    "encrypted pdf": ("a.pdf", encrypted_pdf("secret"), PDF, 422, "encrypted-document"),
    "pdf garbage": ("a.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 4, PDF, 422, "corrupt-document"),
    "truncated pdf": ("a.pdf", DEMO_PDF[: len(DEMO_PDF) // 2], PDF, 422, "corrupt-document"),
    "not a pdf": ("a.pdf", b"<html>a web page</html>", PDF, 422, "corrupt-document"),
    "pdf without text": ("a.pdf", bd.pdf_document([[]], title="Scan"), PDF, 422, "no-text"),
    "empty": ("a.txt", b"", "text/plain", 422, "empty-document"),
    "blank text": ("a.txt", b" \n\t\n", "text/plain", 422, "no-text"),
    "binary text": ("a.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None, 422, "corrupt-document"),
    "png": ("a.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png", 415, "unsupported"),
    "zip": ("a.zip", zip_package("a.txt", b"x"), "application/zip", 415, "unsupported"),
    "unknown": ("a", b"some bytes", "binary/octet-stream", 415, "unsupported"),
    "zip as docx": ("a.docx", zip_package("a.txt", b"x"), DOCX, 422, "corrupt-document"),
    "docx garbage": ("a.docx", b"this is no zip file", DOCX, 422, "corrupt-document"),
    "encrypted docx": (
        "a.docx",
        OLE + "EncryptedPackage".encode("utf-16-le") + bytes(64),
        DOCX,
        422,
        "encrypted-document",
    ),
    "legacy doc": ("a.docx", OLE + bytes(512), DOCX, 422, "corrupt-document"),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=list(REFUSED))
def test_bad_documents_are_refused_permanently_with_their_cause(
    extractor: Any, case: tuple[str, bytes, str | None, int, str]
) -> None:
    name, body, content_type, status, code = case
    response = extractor.deliver(extractor.upload(f"documents/{name}", body, content_type))
    assert response.status_code == status
    problem = dt.problem(response)
    code = "unsupported-document-type" if code == "unsupported" else code
    assert problem["type"] == f"urn:eventfn:problem:{code}"
    assert problem["retryable"] is False
    assert extractor.keys("text/") == [] and extractor.sink.received == []


def test_too_large_documents_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXT_EXTRACTOR_MAX_BYTES", "60000")
    bomb = bd.docx_document(["Title", "word " * 100_000], title="Bomb")  # ~40 kB, unpacks big
    assert len(bomb) < 60000
    with dt.harness("text-extractor", tmp_path, monkeypatch) as h:
        big = h.deliver(h.upload("documents/big.txt", b"x" * 60001, "text/plain"))
        unpacked = h.deliver(h.upload("documents/bomb.docx", bomb, DOCX))
        fits = h.deliver(h.upload("documents/fits.txt", b"x" * 60000, "text/plain"))
        assert (big.status_code, unpacked.status_code, fits.status_code) == (413, 413, 204)
        assert dt.problem(big)["type"] == "urn:eventfn:problem:document-too-large"
        assert "60001 bytes" in dt.problem(big)["detail"]
        assert dt.problem(unpacked)["type"] == "urn:eventfn:problem:document-too-large"
        assert h.keys("text/") == ["text/documents/fits.txt.txt"]


def test_a_deleted_object_is_a_permanent_error(extractor: Any) -> None:
    event = dt.created_event("documents/gone.txt", "0" * 32, 5)
    response = extractor.deliver(event)
    assert response.status_code == 422
    assert dt.problem(response)["type"] == "urn:eventfn:problem:object-not-found"


def test_storage_down_is_retryable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with dt.harness("text-extractor", tmp_path, monkeypatch, endpoint=endpoint) as h:
        response = h.deliver(dt.created_event("documents/a.txt", "0" * 32, 5))
    assert response.status_code == 503
    problem = dt.problem(response)
    assert problem["type"] == "urn:eventfn:problem:dependency-unavailable"
    assert problem["retryable"] is True and "retry-after" in response.headers
