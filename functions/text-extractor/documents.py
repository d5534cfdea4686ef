"""Text from the binary formats: PDF (pypdf) and DOCX (python-docx).

The parsers run on untrusted bytes and fail in many ways (their own errors, but also KeyError,
ValueError, RecursionError... on malformed input). Only the parser calls are guarded, and their
failures become `CorruptDocument`; the log names the exception class, the problem body does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from eventfn import EventfnError
from eventfn._logging import get_logger

from .errors import CorruptDocument, DocumentTooLarge, EncryptedDocument
from .sink import TextSink

PDF_MAGIC = b"%PDF-"
PDF_HEADER_WINDOW = 1024  # readers accept the header anywhere in the first 1 KiB
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an OLE compound file (encrypted OOXML, .doc)
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")  # its stream of an encrypted DOCX
_SCAN_BYTES = 1024 * 1024

_log = get_logger("function.text-extractor")


@contextmanager
def parsing(what: str) -> Iterator[None]:
    """Turn a parser failure into `CorruptDocument`; eventfn's own errors pass unchanged."""
    try:
        yield
    except (EventfnError, MemoryError):
        raise
    except Exception as error:
        _log.info("%s parser failed: %s", what, type(error).__name__)
        raise CorruptDocument(f"the {what} cannot be parsed") from None


# -- PDF --------------------------------------------------------------------------------------


@contextmanager
def _pdf_errors() -> Iterator[None]:
    from pypdf.errors import (
        DependencyError,
        FileNotDecryptedError,
        LimitReachedError,
        WrongPasswordError,
    )

    with parsing("PDF"):
        try:
            yield
        except (FileNotDecryptedError, WrongPasswordError):
            raise EncryptedDocument("the PDF is encrypted with a user password") from None
        except DependencyError:
            raise EncryptedDocument(
                "the PDF is encrypted with an algorithm this deployment cannot decrypt"
            ) from None
        except LimitReachedError:
            raise DocumentTooLarge("a PDF stream exceeds the decompression limit") from None


def extract_pdf(source: IO[bytes], sink: TextSink) -> int:
    """Every page's text (pypdf `extract_text`), one paragraph per page; returns the page count.

    A PDF encrypted only with an owner password (no user password) opens with the empty
    password, as in any viewer, and is extracted.
    """
    if PDF_MAGIC not in source.read(PDF_HEADER_WINDOW):
        raise CorruptDocument("not a PDF: no %PDF- header")
    source.seek(0)
    from pypdf import PasswordType, PdfReader

    with _pdf_errors():
        reader = PdfReader(source)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise EncryptedDocument("the PDF is encrypted with a user password")
        count = len(reader.pages)
    if count == 0:
        raise CorruptDocument("the PDF has no pages")
    for number in range(count):
        with _pdf_errors():
            text = reader.pages[number].extract_text()
        sink.lines(text)
        sink.paragraph_break()
    return count


# -- DOCX -------------------------------------------------------------------------------------


def extract_docx(source: IO[bytes], sink: TextSink, max_bytes: int) -> None:
    """The body's paragraphs and tables in document order (headers, footers, comments and
    footnotes are not part of the body). Each paragraph is a paragraph of the text; each table
    row a line, its cells separated by ` | `."""
    head = source.read(len(OLE_MAGIC))
    source.seek(0)
    if head.startswith(OLE_MAGIC):
        if _contains(source, ENCRYPTED_PACKAGE):
            raise EncryptedDocument("the DOCX is password-protected (an encrypted package)")
        raise CorruptDocument("not a DOCX: an OLE compound file (a legacy .doc?)")
    if not head.startswith(ZIP_MAGIC):
        raise CorruptDocument("not a DOCX: not a ZIP package")
    _check_unpacked_size(source, max_bytes)
    import docx

    with parsing("DOCX"):
        document = docx.Document(source)
        blocks = list(_docx_blocks(document))
    for block in blocks:
        if block is None:
            sink.paragraph_break()
        else:
            sink.lines(block)


def _docx_blocks(document: Any) -> Iterator[str | None]:
    """Text of each body paragraph and table row; None between paragraphs."""
    from docx.table import Table

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                yield " | ".join(_distinct_cells(cell.text for cell in row.cells))
        else:
            yield block.text
        yield None


def _distinct_cells(texts: Iterator[str]) -> list[str]:
    """Cell texts, a horizontally merged cell (repeated by python-docx) only once."""
    cells: list[str] = []
    for text in texts:
        flat = " ".join(text.split())
        if not cells or cells[-1] != flat:
            cells.append(flat)
    return cells


def _check_unpacked_size(source: IO[bytes], max_bytes: int) -> None:
    """python-docx loads every part into memory: the unpacked total must stay within the limit
    (a guard against ZIP bombs)."""
    import zipfile

    with parsing("DOCX"), zipfile.ZipFile(source) as package:
        unpacked = sum(info.file_size for info in package.infolist())
    source.seek(0)
    if unpacked > max_bytes:
        raise DocumentTooLarge(f"the DOCX unpacks to more than {max_bytes} bytes", field="size")


def _contains(source: IO[bytes], needle: bytes) -> bool:
    """`needle` occurs in `source` (read in chunks; `source` is left rewound)."""
    tail = b""
    try:
        while chunk := source.read(_SCAN_BYTES):
            if needle in tail + chunk:
                return True
            tail = chunk[-(len(needle) - 1) :]
    finally:
        source.seek(0)
    return False
