"""Which format a log file is in: every parser tries the first lines, the best scorer wins.

Detection reads the first `SAMPLE_LINES` non-blank lines, counts how many each format parses
and picks the highest count; ties go to the earlier format in `formats()` (the stricter
grammars come first). A file where no sampled line parses has the format `unknown`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ._access import parse_access
from ._formats import LEVEL, STATUS_CLASS, LogFormat
from ._jsonlog import parse_json
from ._syslog import parse_rfc5424, rfc3164_parser

SAMPLE_LINES = 50
UNKNOWN = "unknown"


def formats(reference: datetime) -> tuple[LogFormat, ...]:
    """The known formats in tie-break order; `reference` dates year-less syslog lines."""
    return (
        LogFormat("rfc5424", LEVEL, parse_rfc5424),
        LogFormat("json", LEVEL, parse_json),
        LogFormat("combined", STATUS_CLASS, parse_access),
        LogFormat("rfc3164", LEVEL, rfc3164_parser(reference)),
    )


def detect(sample: Sequence[str], candidates: Sequence[LogFormat]) -> LogFormat | None:
    """The format parsing most of `sample` (None when none parses any line)."""
    best: LogFormat | None = None
    best_score = 0
    for candidate in candidates:
        score = sum(1 for line in sample if candidate.parse(line) is not None)
        if score > best_score:
            best, best_score = candidate, score
    return best
