"""What a document is: its format (from the key's extension, else the stored content type) and,
for the text formats, its character encoding.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from .errors import CorruptDocument, UnsupportedDocument

SNIFF_BYTES = 8192
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_WIDE = frozenset({"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"})
FALLBACK_ENCODING = "cp1252"  # what undeclared non-UTF-8 text most often is


@dataclass(frozen=True)
class Format:
    """A supported document format."""

    name: str
    content_type: str  # canonical MIME type, reported in the event
    extractor: str  # what extracted the text, reported in the event


PDF = Format("pdf", "application/pdf", "pypdf")
DOCX = Format(
    "docx",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "python-docx",
)
TEXT = Format("text", "text/plain", "text")
MARKDOWN = Format("markdown", "text/markdown", "markdown")
HTML = Format("html", "text/html", "html.parser")

BY_EXTENSION = {
    ".pdf": PDF,
    ".docx": DOCX,
    ".txt": TEXT,
    ".text": TEXT,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": HTML,
    ".htm": HTML,
    ".xhtml": HTML,
}
BY_CONTENT_TYPE = {
    "application/pdf": PDF,
    "application/x-pdf": PDF,
    DOCX.content_type: DOCX,
    "text/plain": TEXT,
    "text/markdown": MARKDOWN,
    "text/x-markdown": MARKDOWN,
    "text/html": HTML,
    "application/xhtml+xml": HTML,
}


def media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """`type/subtype` in lower case and the parameters of a Content-Type value."""
    if not content_type:
        return "", {}
    main, *params = content_type.split(";")
    parsed = {}
    for param in params:
        name, _, value = param.partition("=")
        parsed[name.strip().lower()] = value.strip().strip('"')
    return main.strip().lower(), parsed


def detect(key: str, content_type: str | None) -> Format:
    """The format of `key`: a known extension wins, then a known content type."""
    suffix = PurePosixPath(key).suffix.lower()
    found = BY_EXTENSION.get(suffix)
    if found is not None:
        return found
    mime, _ = media_type(content_type)
    found = BY_CONTENT_TYPE.get(mime)
    if found is not None:
        return found
    supported = ", ".join(sorted(BY_EXTENSION))
    raise UnsupportedDocument(
        f"extension {suffix or '(none)'!r} with content type {mime or '(none)'!r} is not a "
        f"supported document type (supported extensions: {supported})",
        field="key",
    )


def text_encoding(source: IO[bytes], content_type: str | None, fmt: Format) -> str:
    """The encoding to decode a text document with; `source` is left rewound.

    A byte-order mark wins, then a declared charset (Content-Type, or `<meta charset>` in
    HTML), then UTF-8 if the whole document is valid UTF-8, else cp1252.
    """
    head = source.read(SNIFF_BYTES)
    source.seek(0)
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    declared = media_type(content_type)[1].get("charset")
    if declared and _known_codec(declared) and codecs.lookup(declared).name in _WIDE:
        return declared  # UTF-16/32 without a BOM: NUL bytes are expected
    if b"\x00" in head:
        raise CorruptDocument(f"a {fmt.name} document with binary content (NUL bytes)")
    if not declared and fmt is HTML:
        match = _META_CHARSET.search(head)
        declared = match.group(1).decode("ascii") if match else None
    if declared and _known_codec(declared):
        return declared
    return "utf-8" if _valid_utf8(source) else FALLBACK_ENCODING


def _known_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _valid_utf8(source: IO[bytes]) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        while chunk := source.read(1024 * 1024):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    finally:
        source.seek(0)
    return True
