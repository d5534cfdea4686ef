"""text-extractor's formats through the WSGI test client against a real S3 API (moto's server) and a
loopback broker stand-in: PDF, DOCX, plain text, Markdown and HTML. Every document is generated
here, deterministically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import documents_testing as dt
import pytest
from text_extractor_testing import DOCX, PDF, bd, encrypted_pdf, extracted


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
