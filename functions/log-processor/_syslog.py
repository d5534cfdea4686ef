"""Syslog lines: RFC 5424 and RFC 3164 (BSD), the level taken from the PRI severity.

RFC 5424: `<PRI>VERSION TIMESTAMP HOST APP PROCID MSGID STRUCTURED-DATA [MSG]`; the timestamp
may be `-` (the line is then parsed without a time) and structured data is `-` or one or more
`[id name="value" ...]` elements whose values may escape `"`, `\\` and `]`.

RFC 3164: `[<PRI>]Mmm dd hh:mm:ss HOST MSG`, or with an RFC 3339 timestamp in place of the BSD one
(rsyslog's file format). A BSD timestamp has no year and no zone: the year is the one that puts
the line at most a day after the reference time (when the object was created), the zone UTC. A
line without PRI gets PRI 13 (user.notice), as RFC 3164 section 4.3.3 tells a relay to assign.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ._access import MONTHS
from ._formats import ParsedLine, Parser, iso_time, severity_name

MAX_PRI = 191
DEFAULT_PRI = 13
_SD_ELEMENT = r'\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\]'
_RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>(?P<version>[1-9]\d{0,2}) (?P<time>\S+) (?P<host>\S+) (?P<app>\S+)"
    rf" (?P<procid>\S+) (?P<msgid>\S+) (?P<sd>-|(?:{_SD_ELEMENT})+)(?: (?P<msg>.*))?$",
    re.DOTALL,
)
_RFC3164 = re.compile(
    r"^(?:<(?P<pri>\d{1,3})>)?"
    r"(?:(?P<month>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<clock>\d{2}:\d{2}:\d{2})"
    r"|(?P<iso>\d{4}-\d{2}-\d{2}T\S+))"
    r" (?P<host>\S+)(?: (?P<msg>.*))?$",
    re.DOTALL,
)
_SLACK = timedelta(days=1)


def parse_rfc5424(line: str) -> ParsedLine | None:
    """An RFC 5424 line, or None."""
    match = _RFC5424.match(line)
    if match is None:
        return None
    priority = int(match.group("pri"))
    stamp = match.group("time")
    at = None if stamp == "-" else iso_time(stamp)
    if priority > MAX_PRI or (at is None and stamp != "-"):
        return None
    return ParsedLine(at=at, value=severity_name(priority))


def rfc3164_parser(reference: datetime) -> Parser:
    """An RFC 3164 parser placing year-less BSD timestamps relative to `reference`."""

    def parse_rfc3164(line: str) -> ParsedLine | None:
        match = _RFC3164.match(line)
        if match is None:
            return None
        priority = int(match.group("pri") or DEFAULT_PRI)
        if priority > MAX_PRI:
            return None
        if match.group("iso"):
            at = iso_time(match.group("iso"))
        else:
            at = bsd_time(match.group("month"), match.group("day"), match.group("clock"), reference)
        if at is None:
            return None
        return ParsedLine(at=at, value=severity_name(priority))

    return parse_rfc3164


def bsd_time(month: str, day: str, clock: str, reference: datetime) -> datetime | None:
    """`Nov 28 10:00:00` in the latest year that is not after `reference` + one day."""
    number = MONTHS.get(month.lower())
    if number is None:
        return None
    hour, minute, second = (int(part) for part in clock.split(":"))
    latest = reference.astimezone(UTC) + _SLACK
    for year in range(latest.year, latest.year - 8, -1):  # Feb 29 needs a leap year
        try:
            candidate = datetime(year, number, int(day), hour, minute, second, tzinfo=UTC)
        except ValueError:
            continue
        if candidate <= latest:
            return candidate
    return None
