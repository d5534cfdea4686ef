"""A small, predictable sentence splitter for extracted text (no models, no downloads).

1. Paragraphs are separated by blank lines.
2. Inside a paragraph, a line break ends a sentence when the line ends with terminal
   punctuation (`.`, `!`, `?`, `…`, `:` or `;`, optionally followed by closing quotes or
   brackets) or when the line is short (at most `SHORT_LINE_WORDS` words: a heading, a list
   item) and does not end with a hyphen or a comma. Other line breaks are soft wraps (PDF
   lines) and become a space; a line ending in a hyphen is joined without one.
3. Inside a line, `.`, `!`, `?` or `…` followed by whitespace and a character that is not a
   lower-case letter ends a sentence, except after a known abbreviation ("e.g.", "Dr.") or
   a single-letter initial ("J. Smith").
4. Sentences longer than `MAX_SENTENCE_CHARS` are cut at whitespace (VADER's cost grows faster
   than linearly with the length of its input); pieces without a letter are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

SHORT_LINE_WORDS = 6
MAX_SENTENCE_CHARS = 600
_PARAGRAPHS = re.compile(r"\n[ \t]*\n")
_LINE_END = re.compile(r"[.!?\u2026:;][\"'\u201d\u2019)\]]*$")
_BOUNDARY = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*\s+")
_LAST_WORD = re.compile(r"(\S+)$")


def _abbreviations(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


ABBREVIATIONS = _abbreviations(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e cf al inc ltd co corp fig no nr approx dept est "
    "ca jan feb mar apr jun jul aug sep sept oct nov dec z.b u.a bzw mme mlle sra"
)


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, in order."""
    found: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        for unit in _units(paragraph):
            for sentence in _split_unit(unit):
                found.extend(_clipped(sentence))
    return [sentence for sentence in found if any(char.isalpha() for char in sentence)]


def _units(paragraph: str) -> Iterator[str]:
    """Runs of lines that belong together (soft-wrapped lines joined)."""
    current = ""
    for raw in paragraph.split("\n"):
        line = " ".join(raw.split())
        if not line:
            continue
        if not current:
            current = line
        elif current.endswith("-") and current[-2:-1].isalpha():
            current += line
        else:
            current += " " + line
        if _ends_unit(line):
            yield current
            current = ""
    if current:
        yield current


def _ends_unit(line: str) -> bool:
    """A line break after `line` ends a sentence (see the module's rule 2)."""
    if _LINE_END.search(line):
        return True
    return not line.endswith(("-", ",")) and len(line.split()) <= SHORT_LINE_WORDS


def _split_unit(unit: str) -> Iterator[str]:
    start = 0
    for match in _BOUNDARY.finditer(unit):
        following = unit[match.end() : match.end() + 1]
        if following.islower() or _continues(unit[start : match.start()], match.group(0)):
            continue
        yield unit[start : match.end()].strip()
        start = match.end()
    if tail := unit[start:].strip():
        yield tail


def _continues(before: str, punctuation: str) -> bool:
    """A single `.` after an abbreviation or an initial does not end the sentence."""
    if not punctuation.startswith(".") or punctuation.rstrip().startswith(".."):
        return False
    word = _LAST_WORD.search(before)
    if word is None:
        return False
    token = word.group(1).lstrip("(\"'\u201c\u2018").lower()
    return token in ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def _clipped(sentence: str) -> Iterator[str]:
    while len(sentence) > MAX_SENTENCE_CHARS:
        cut = sentence.rfind(" ", 0, MAX_SENTENCE_CHARS)
        cut = cut if cut > 0 else MAX_SENTENCE_CHARS
        yield sentence[:cut].strip()
        sentence = sentence[cut:].strip()
    if sentence:
        yield sentence
