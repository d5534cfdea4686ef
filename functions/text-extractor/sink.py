"""Where extractors write: normalised UTF-8 text in a spooled file, counted as it goes.

Every extractor produces the same shape of text: lines without trailing whitespace or control
characters, paragraphs separated by exactly one blank line, no blank lines at the start or the
end, a final newline. The sentiment analyzer's sentence splitter relies on that shape.
"""

from __future__ import annotations

import re
from tempfile import SpooledTemporaryFile
from typing import IO, BinaryIO, cast

SAMPLE_CHARS = 20_000  # the first characters, kept for language detection
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b\ufeff]")


class TextSink:
    """Collects lines and paragraph breaks; `chars` counts what was written."""

    def __init__(self, spool_bytes: int) -> None:
        self._file: IO[bytes] = SpooledTemporaryFile(max_size=spool_bytes)  # noqa: SIM115
        self.chars = 0
        self._sample: list[str] = []
        self._sample_chars = 0
        self._pending_break = False

    def line(self, text: str) -> None:
        """Write one line; a line that is blank after cleaning is a paragraph break."""
        cleaned = _CONTROL.sub("", text.replace("\r", "")).rstrip()
        if not cleaned.strip():
            self.paragraph_break()
            return
        prefix = "\n" if self._pending_break and self.chars else ""
        self._pending_break = False
        self._write(prefix + cleaned + "\n")

    def lines(self, text: str) -> None:
        """Write every line of `text`."""
        for part in text.split("\n"):
            self.line(part)

    def paragraph_break(self) -> None:
        """End the current paragraph: the next line starts after one blank line."""
        self._pending_break = True

    @property
    def sample(self) -> str:
        """The first `SAMPLE_CHARS` characters written (or fewer)."""
        return "".join(self._sample)

    def file(self) -> BinaryIO:
        """The UTF-8 text, rewound, for uploading."""
        self._file.seek(0)
        return cast(BinaryIO, self._file)

    def close(self) -> None:
        """Discard the spooled text."""
        self._file.close()

    def __enter__(self) -> TextSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, text: str) -> None:
        self._file.write(text.encode("utf-8", errors="replace"))
        self.chars += len(text)
        if self._sample_chars < SAMPLE_CHARS:
            piece = text[: SAMPLE_CHARS - self._sample_chars]
            self._sample.append(piece)
            self._sample_chars += len(piece)
