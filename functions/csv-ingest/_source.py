"""The CSV byte stream as pyarrow reads it: counted, checked for UTF-8, peekable for sniffing.

Every byte passes through `CheckedSource.read` before pyarrow sees it, so the UTF-8 check is
exact (it names the offset of the first invalid byte) and pyarrow's own check can be turned off.
ASCII chunks are accepted by `bytes.isascii` without decoding; others go through an incremental
decoder, which also catches a multi-byte sequence split across two reads or cut off at the end.
"""

from __future__ import annotations

import codecs
import csv
from typing import BinaryIO

from ._errors import CsvNotUtf8

SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
DEFAULT_DELIMITER = ","


class CheckedSource:
    """A read-only stream over `raw` that pyarrow can consume (`read(n)`, `closed`)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._head = b""
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._eof = False
        self.bytes_read = 0
        self.newlines = 0
        self.failure: BaseException | None = None
        self.closed = False

    def peek(self, size: int) -> bytes:
        """Up to `size` bytes from the start, without consuming them."""
        while len(self._head) < size and not self._eof:
            chunk = self._pull(size - len(self._head))
            self._head += chunk
        return self._head[:size]

    def read(self, size: int = -1) -> bytes:
        """The next `size` bytes (all remaining when negative); b"" at the end."""
        if size is None or size < 0:
            parts = [self._head]
            while chunk := self._pull(1 << 20):
                parts.append(chunk)
            self._head = b""
            return b"".join(parts)
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
            if len(data) < size and not self._eof:
                data += self._pull(size - len(data))
            return data
        return self._pull(size)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        """Close the underlying stream (an S3 body releases its connection)."""
        if not self.closed:
            self.closed = True
            self._raw.close()

    def _pull(self, size: int) -> bytes:
        if self._eof or size == 0:
            return b""
        try:
            data = self._raw.read(size)
        except Exception as error:
            self.failure = error
            raise
        self._check(data)
        self.bytes_read += len(data)
        self.newlines += data.count(b"\n")
        if not data:
            self._eof = True
        return data

    def _check(self, data: bytes) -> None:
        pending = self._decoder.getstate()[0]
        if data and not pending and data.isascii():
            return
        try:
            self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as error:
            offset = self.bytes_read - len(pending) + error.start
            before = max(0, offset - self.bytes_read)
            failure = CsvNotUtf8(offset, self.newlines + data.count(b"\n", 0, before) + 1)
            self.failure = failure
            raise failure from None


def sniff_delimiter(sample: bytes) -> str:
    """The delimiter among `, ; TAB |` that the first lines of `sample` use (default `,`)."""
    text = sample.decode("utf-8", errors="ignore").lstrip("\ufeff")
    cut = text.rfind("\n")
    if cut > 0:
        text = text[:cut]
    try:
        found = csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:
        found = ""
    if found in DELIMITERS and found:
        return found
    header = text.split("\n", 1)[0]
    counts = {candidate: header.count(candidate) for candidate in DELIMITERS}
    best = max(DELIMITERS, key=lambda candidate: counts[candidate])
    return best if counts[best] else DEFAULT_DELIMITER
