"""Text from the text formats: plain text, Markdown (markup removed) and HTML (text only).

Each reads the document incrementally (decoded chunk by chunk), so memory stays bounded by the
chunk size, not the document size.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import IO

from .sink import TextSink

CHUNK_BYTES = 256 * 1024


def decoded(source: IO[bytes], encoding: str) -> Iterator[str]:
    """The document as decoded text chunks (undecodable bytes become U+FFFD)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    while chunk := source.read(CHUNK_BYTES):
        if text := decoder.decode(chunk):
            yield text
    if tail := decoder.decode(b"", final=True):
        yield tail


def lines_of(chunks: Iterator[str]) -> Iterator[str]:
    r"""Lines without their terminators; `\n`, `\r\n` and a lone `\r` all end a line."""
    pending = ""
    for chunk in chunks:
        text = pending + chunk
        hold_cr = text.endswith("\r")  # may be the first half of a \r\n split across chunks
        if hold_cr:
            text = text[:-1]
        parts = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        pending = parts.pop() + ("\r" if hold_cr else "")
        yield from parts
    if pending:
        yield pending.rstrip("\r")


def extract_text(source: IO[bytes], sink: TextSink, encoding: str) -> None:
    """Plain text: every line as it is."""
    for line in lines_of(decoded(source, encoding)):
        sink.line(line)


# -- Markdown ---------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(?:\s+|$)(.*?)(?:\s+#+)?\s*$")
_SETEXT_OR_RULE = re.compile(r"^\s{0,3}(?:=+|(?:[-*_]\s*){3,})\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+")
_BLOCK_PREFIX = re.compile(r"^\s*(?:>\s?)*\s*(?:[-*+]\s+(?:\[[ xX]\]\s+)?|\d{1,9}[.)]\s+)?")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_CODE = re.compile(r"(`+)(.+?)\1")
_STRONG = re.compile(r"(\*{1,3}|~~)(?=\S)(.+?)(?<=\S)\1")
_UNDERSCORE = re.compile(r"(?<!\w)(_{1,3})(?=\S)(.+?)(?<=\S)\1(?!\w)")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<])")
_HIDDEN = re.compile("[\ue000-\ue07f]")


_PRIVATE_USE = 0xE000  # escaped characters hide here while the markup is removed


def markdown_line(line: str) -> str | None:
    """One Markdown line (outside code fences) as plain text; "" for a paragraph break (a
    thematic break), None for a line that carries no text (a table rule, a link reference)."""
    if _TABLE_RULE.match(line) or _REFERENCE.match(line):
        return None
    if _SETEXT_OR_RULE.match(line):
        return ""
    heading = _HEADING.match(line)
    text = heading.group(1) if heading else _BLOCK_PREFIX.sub("", line, count=1)
    text = _ESCAPE.sub(lambda match: chr(_PRIVATE_USE + ord(match.group(1))), text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _TAG.sub("", text)
    text = _CODE.sub(r"\2", text)
    text = _STRONG.sub(r"\2", text)
    text = _UNDERSCORE.sub(r"\2", text)
    return _HIDDEN.sub(lambda match: chr(ord(match.group(0)) - _PRIVATE_USE), text)


def extract_markdown(source: IO[bytes], sink: TextSink, encoding: str) -> None:
    """Markdown: headings, lists, quotes, links and emphasis become plain text; code blocks
    (fenced) are left out, being code rather than prose."""
    fence: str | None = None
    for line in lines_of(decoded(source, encoding)):
        opener = _FENCE.match(line)
        if fence is not None:
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                fence = None
            continue
        if opener:
            fence = opener.group(1)
            sink.paragraph_break()
            continue
        text = markdown_line(line)
        if text is None:
            continue
        heading = _HEADING.match(line) is not None
        if heading:  # a heading is a paragraph of its own
            sink.paragraph_break()
        sink.line(text)
        if heading:
            sink.paragraph_break()


# -- HTML -------------------------------------------------------------------------------------

SKIPPED = frozenset({"script", "style", "template"})
PARAGRAPHS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "div",
        "dl", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
        "h6", "header", "hr", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
        "title", "ul",
    }
)  # fmt: skip
LINES = frozenset({"br", "dt", "li", "option", "td", "th", "tr"})
_SPACES = re.compile(r"\s+")


class HtmlText(HTMLParser):
    """Collects the text of an HTML document; script and style contents are dropped."""

    def __init__(self, sink: TextSink) -> None:
        super().__init__(convert_charrefs=True)
        self._sink = sink
        self._skipping = 0
        self._pre = 0
        self._run: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._boundary(tag, opening=True)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in SKIPPED:
            self._boundary(tag, opening=True)
            self._boundary(tag, opening=False)

    def handle_endtag(self, tag: str) -> None:
        self._boundary(tag, opening=False)

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._run.append(data)

    def flush(self) -> None:
        """Write the pending run of text."""
        text = "".join(self._run)
        self._run.clear()
        if not text.strip():
            return
        if self._pre:
            self._sink.lines(text)
        else:
            self._sink.line(_SPACES.sub(" ", text).strip())

    def _boundary(self, tag: str, *, opening: bool) -> None:
        step = 1 if opening else -1
        if tag in SKIPPED:
            self._skipping = max(0, self._skipping + step)
        elif tag in PARAGRAPHS or tag in LINES:
            self.flush()
            if tag == "pre":
                self._pre = max(0, self._pre + step)
            if tag in PARAGRAPHS:
                self._sink.paragraph_break()


def extract_html(source: IO[bytes], sink: TextSink, encoding: str) -> None:
    """HTML: the text of every element except script, style and template, one paragraph per
    block element (p, div, headings, lists, tables...), whitespace collapsed outside <pre>."""
    parser = HtmlText(sink)
    for chunk in decoded(source, encoding):
        parser.feed(chunk)
    parser.close()
    parser.flush()
