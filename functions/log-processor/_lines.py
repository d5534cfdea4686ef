"""Lines of a log object, streamed: decoded as UTF-8 (bad bytes replaced), length-bounded."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

MAX_LINE_CHARS = 64 * 1024
SAMPLE_CHARS = 200


def iter_lines(stream: BinaryIO, max_chars: int = MAX_LINE_CHARS) -> Iterator[str]:
    """Each line without its line ending; a longer line is cut at `max_chars` (rest skipped).

    Universal newlines: `\\n`, `\\r\\n` and `\\r` all end a line. A leading BOM is dropped.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace")
    while line := text.readline(max_chars):
        if line.endswith("\n"):
            yield line[:-1]
            continue
        if len(line) >= max_chars:
            while (rest := text.readline(max_chars)) and not rest.endswith("\n"):
                pass
        yield line


def sample_of(line: str) -> str:
    """A line as shown among the unparseable samples (at most 200 characters)."""
    return line[:SAMPLE_CHARS]
