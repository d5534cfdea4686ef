"""text-extractor through the WSGI test client against a real S3 API (moto's server) and a
loopback broker stand-in. Every fixture document is generated here, deterministically."""

from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventfn._loader import load_function

ROOT = Path(__file__).resolve().parents[2]


# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import documents_testing as dt  # noqa: E402
from loopback_testing import free_port  # noqa: E402

bd = dt.builders()
load_function("text-extractor", ROOT / "functions")
from eventfn_functions.text_extractor.language import guess_language  # noqa: E402

EXTRACTED = dt.EXTRACTED
PDF = "application/pdf"
DOCX = bd.DOCX_CONTENT_TYPE


@pytest.fixture
def extractor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("TEXT_EXTRACTOR_MAX_BYTES", raising=False)
    monkeypatch.delenv("TEXT_EXTRACTOR_SPOOL_BYTES", raising=False)
    with dt.harness("text-extractor", tmp_path, monkeypatch) as harness:
        yield harness


def extracted(h: Any, event: Any, mode: str = "binary") -> tuple[dict[str, Any], str]:
    """Deliver `event`, expect success; the emitted data and the text written."""
    response = h.deliver(event, mode)
    assert response.status_code == 204, response.get_data(as_text=True)
    [emitted] = h.sink.events(EXTRACTED)
    assert emitted.subject == event.data["key"]
    text = h.read(emitted.data["text_key"]).decode("utf-8")
    assert emitted.data["chars"] == len(text)
    return emitted.data, text


# -- formats -----------------------------------------------------------------------------------


def test_a_multi_page_pdf_is_extracted_page_by_page(extractor: Any) -> None:
    demo = bd.quarterly_review_pdf()
    event = extractor.upload(demo.key, demo.content, PDF)
    data, text = extracted(extractor, event)
    assert data == {
        "bucket": dt.BUCKET,
        "key": "documents/quarterly-review.pdf",
        "etag": event.data["etag"],
        "text_key": "text/documents/quarterly-review.pdf.txt",
        "chars": len(text),
        "pages": 3,
        "language": "en",
        "content_type": PDF,
        "extractor": "pypdf",
        "size": len(demo.content),
    }
    pages = text.split("\n\n")
    assert len(pages) == 3 and text.endswith("\n") and not text.endswith("\n\n")
    assert pages[0].startswith("Quarterly review, third quarter\nThis was an excellent quarter.")
    assert "The hardware unit had a terrible quarter." in pages[1]
    assert pages[2].startswith("Outlook\n")


def test_a_docx_keeps_paragraphs_and_tables_in_order(extractor: Any) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Release notes", level=1)
    document.add_paragraph("Die neue Version ist da und wir sind sehr zufrieden mit dem Ergebnis.")
    table = document.add_table(rows=2, cols=3)
    rows = (("Modul", "Status", ""), ("API", "stabil", "neu"))
    for row, cells in zip(table.rows, rows, strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    table.cell(0, 1).merge(table.cell(0, 2))
    document.add_paragraph("Es gibt auch ein Problem mit der Installation, das wir bald lösen.")
    out = io.BytesIO()
    document.save(out)
    event = extractor.upload("documents/notes.docx", bd.pinned_zip(out.getvalue()), DOCX)
    data, text = extracted(extractor, event)
    assert text == (
        "Release notes\n\n"
        "Die neue Version ist da und wir sind sehr zufrieden mit dem Ergebnis.\n\n"
        "Modul | Status\nAPI | stabil | neu\n\n"
        "Es gibt auch ein Problem mit der Installation, das wir bald lösen.\n"
    )
    assert (data["pages"], data["language"], data["extractor"]) == (None, "de", "python-docx")
    assert data["content_type"] == DOCX


def test_the_demo_docx_is_extracted(extractor: Any) -> None:
    demo = bd.customer_feedback_docx()
    data, text = extracted(extractor, extractor.upload(demo.key, demo.content, DOCX))
    assert text.split("\n\n") == [*bd.CUSTOMER_FEEDBACK[:-1], bd.CUSTOMER_FEEDBACK[-1] + "\n"]
    assert data["language"] == "en"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            "Le produit est très bon et nous sommes contents.\r\nIl est arrivé à temps pour la "
            "fête, mais la boîte était abîmée.\r\n".encode(),
            "text/plain",
            "Le produit est très bon et nous sommes contents.\nIl est arrivé à temps pour la "
            "fête, mais la boîte était abîmée.\n",
        ),
        (  # no charset, not UTF-8: read as cp1252
            "Caf\xe9 cr\xe8me \u20ac 5\r\rnext".encode("cp1252"),
            "text/plain",
            "Café crème € 5\n\nnext\n",
        ),
        (  # a BOM wins over everything
            "\ufeffFirst line\nsecond line\n\n\n\nthird   \n".encode("utf-16"),
            None,
            "First line\nsecond line\n\nthird\n",
        ),
        (  # the declared charset is used
            "Grüße aus Köln".encode("latin-1"),
            "text/plain; charset=ISO-8859-1",
            "Grüße aus Köln\n",
        ),
        (  # declared UTF-16 without a BOM is not mistaken for binary
            "Hello, world".encode("utf-16-le"),
            "text/plain; charset=utf-16le",
            "Hello, world\n",
        ),
    ],
    ids=["utf-8 crlf", "cp1252 fallback", "utf-16 bom", "declared charset", "declared utf-16"],
)
def test_plain_text_is_decoded_and_normalised(
    extractor: Any, body: bytes, content_type: str | None, expected: str
) -> None:
    key = "documents/Notes d'été #1.txt"  # spaces, non-ASCII and '#' survive the round trip
    data, text = extracted(extractor, extractor.upload(key, body, content_type))
    assert text == expected and data["text_key"] == f"text/{key}.txt"
    assert (data["content_type"], data["extractor"], data["pages"]) == ("text/plain", "text", None)


def test_a_key_without_extension_is_read_by_its_content_type(extractor: Any) -> None:
    event = extractor.upload("documents/README", b"just text", "text/plain; charset=utf-8")
    data, text = extracted(extractor, event)
    assert (text, data["content_type"]) == ("just text\n", "text/plain")


MARKDOWN = """---
# Quarterly *update*

We had a **great** quarter with [record sales](https://example.com/sales) and
happy_customers everywhere.

- first item with `inline code`
- second item ![chart](chart.png)

> A quoted remark.

```python
print("code is not prose")
```

| Region | Result |
|--------|--------|
| North  | strong |

Setext heading
==============
Plain \\*escaped\\* text.
"""


def test_markdown_markup_is_removed(extractor: Any) -> None:
    event = extractor.upload("documents/update.md", MARKDOWN.encode(), "text/markdown")
    data, text = extracted(extractor, event)
    assert text == (
        "Quarterly update\n\n"
        "We had a great quarter with record sales and\nhappy_customers everywhere.\n\n"
        "first item with inline code\nsecond item chart\n\n"
        "A quoted remark.\n\n"
        "| Region | Result |\n| North  | strong |\n\n"
        "Setext heading\n\nPlain *escaped* text.\n"
    )
    assert (data["extractor"], data["content_type"]) == ("markdown", "text/markdown")


HTML = """<!doctype html>
<html><head><meta charset="windows-1252"><title>Feedback</title>
<style>body { color: red; }</style>
<script>var secret = "not text";</script></head>
<body><h1>Caf\xe9 review</h1>
<p>The coffee was <b>excellent</b> &amp; the staff   were
   friendly.</p><div>Second block<br>new line</div>
<ul><li>one</li><li>two</li></ul>
<pre>keep
  this</pre>
<script type="module">document.write("<p>also not text</p>")</script>
</body></html>
"""


def test_html_text_only_without_script_and_style(extractor: Any) -> None:
    event = extractor.upload("documents/review.html", HTML.encode("cp1252"), "text/html")
    data, text = extracted(extractor, event)
    assert text == (
        "Feedback\n\n"
        "Café review\n\n"
        "The coffee was excellent & the staff were friendly.\n\n"
        "Second block\nnew line\n\n"
        "one\ntwo\n\n"
        "keep\n  this\n"
    )
    assert "secret" not in text and "color" not in text and "also not text" not in text
    assert (data["extractor"], data["content_type"]) == ("html.parser", "text/html")


def test_an_owner_password_only_pdf_is_extracted(extractor: Any) -> None:
    body = encrypted_pdf(user_password="")
    data, text = extracted(extractor, extractor.upload("documents/locked.pdf", body, PDF))
    assert text == "Confidential but readable.\n" and data["pages"] == 1


def test_documents_beyond_the_memory_threshold_spool_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEXT_EXTRACTOR_SPOOL_BYTES", "1024")
    line = "A long but perfectly ordinary line of text, number {:06d}.\n"
    body = "".join(line.format(n) for n in range(5000)).encode()
    with dt.harness("text-extractor", tmp_path, monkeypatch) as h:
        data, text = extracted(h, h.upload("documents/long.txt", body, "text/plain"))
    assert text.encode() == body and data["chars"] == len(body)


# -- refusals ----------------------------------------------------------------------------------


def encrypted_pdf(user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    plain = bd.pdf_document([["Confidential but readable."]], title="Locked")
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


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


# -- versions, redelivery, other subjects -----------------------------------------------------


def test_redelivery_writes_one_text_object_and_emits_one_event_id(
    extractor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = extractor.s3
    s3.put_bucket_versioning(Bucket=dt.BUCKET, VersioningConfiguration={"Status": "Enabled"})
    event = extractor.upload("documents/a.txt", b"Hello there.", "text/plain")
    again = dt.created_event(
        "documents/a.txt", event.data["etag"], 12, event_id="second-notification"
    )
    responses = [extractor.deliver(e, m) for e, m in ((event, "binary"), (event, "structured"))]
    responses.append(extractor.deliver(again))
    assert [r.status_code for r in responses] == [204, 204, 204]
    versions = s3.list_object_versions(Bucket=dt.BUCKET, Prefix="text/")["Versions"]
    assert [v["Key"] for v in versions] == ["text/documents/a.txt.txt"]
    [emitted] = extractor.sink.events(EXTRACTED)
    # a process with an empty idempotency store (expired records) derives the same id
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    fresh_state = tmp_path / "fresh"
    endpoint = s3.meta.endpoint_url
    with dt.harness("text-extractor", fresh_state, monkeypatch, endpoint=endpoint) as fresh:
        assert fresh.deliver(again).status_code == 204
        [replayed] = fresh.sink.events(EXTRACTED)
    assert replayed.id == emitted.id and replayed.data == emitted.data


def test_an_overwritten_version_is_skipped(extractor: Any) -> None:
    old = extractor.upload("documents/a.txt", b"first version", "text/plain")
    extractor.upload("documents/a.txt", b"second version", "text/plain")
    assert extractor.deliver(old).status_code == 204
    assert extractor.keys("text/") == [] and extractor.sink.received == []


def test_objects_outside_documents_are_ignored(extractor: Any) -> None:
    event = extractor.upload("other/a.txt", b"not mine", "text/plain")
    assert extractor.deliver(event).status_code == 204
    folder = extractor.upload("documents/folder/", b"", None)
    assert extractor.deliver(folder).status_code == 204
    assert extractor.keys("text/") == [] and extractor.sink.received == []


# -- language ----------------------------------------------------------------------------------

SAMPLES = {
    "en": "The results were good and we are happy with the work that has been done for them.",
    "de": "Die Ergebnisse sind gut und wir sind mit der Arbeit, die für sie getan wurde, sehr "
    "zufrieden.",
    "fr": "Les résultats sont bons et nous sommes contents du travail qui a été fait pour eux.",
    "es": "Los resultados son buenos y estamos contentos con el trabajo que se ha hecho para "
    "ellos.",
    "it": "I risultati sono buoni e siamo contenti del lavoro che è stato fatto per loro e per "
    "il gruppo.",
}


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_the_language_guess(language: str) -> None:
    assert guess_language(SAMPLES[language]) == language


@pytest.mark.parametrize("text", ["", "Invoice 2026-11 ACME GmbH 1234", "Thanks!", "la de en il"])
def test_thin_evidence_is_no_language(text: str) -> None:
    assert guess_language(text) is None
