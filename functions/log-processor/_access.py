"""Access logs: the NCSA common / combined format of nginx and Apache httpd.

    client ident user [10/Oct/2026:13:55:36 -0700] "GET /a HTTP/1.1" 200 2326 "referer" "agent"

The referer and user agent are optional (common log format); extra fields may follow. When the
last field is a decimal number of seconds — nginx's `$request_time` appended to the combined
format (`0.123`) — it is the request's latency. Integers there (Apache `%D` microseconds or
`%T` seconds) are ambiguous and ignored. The client may be an IPv6 address or a host name.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from ._formats import ParsedLine

_QUOTED = r'"(?:[^"\\]|\\.)*"'
_LINE = re.compile(
    r"^(?P<client>\S+) \S+ (?P<user>\S+|\"[^\"]*\") \[(?P<time>[^\]]+)\] "
    rf"(?P<request>{_QUOTED}) (?P<status>\d{{3}}) (?P<bytes>\d+|-)"
    rf"(?: (?P<referer>{_QUOTED}) (?P<agent>{_QUOTED}))?"
    r"(?P<rest>(?:\s+\S+)*)\s*$"
)
_TIME = re.compile(
    r"^(?P<day>\d{1,2})/(?P<month>[A-Za-z]{3})/(?P<year>\d{4})"
    r":(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d{1,6}))?"
    r" (?P<sign>[+-])(?P<oh>\d{2}):?(?P<om>\d{2})$"
)
_SECONDS = re.compile(r"^\d+\.\d+$")
MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}


def parse_access(line: str) -> ParsedLine | None:
    """A common/combined access-log line, or None."""
    match = _LINE.match(line)
    if match is None:
        return None
    at = access_time(match.group("time"))
    status = int(match.group("status"))
    if at is None or not 100 <= status <= 599:
        return None
    fields = match.group("rest").split()
    latency = None
    if fields and _SECONDS.match(fields[-1]):
        latency = float(fields[-1]) * 1000.0
    return ParsedLine(at=at, value=f"{status // 100}xx", latency_ms=latency)


@lru_cache(maxsize=4096)  # busy logs repeat the same second many times
def access_time(text: str) -> datetime | None:
    """`10/Oct/2026:13:55:36 -0700` (month names in English, whatever the locale)."""
    match = _TIME.match(text.strip())
    if match is None:
        return None
    month = MONTHS.get(match.group("month").lower())
    if month is None:
        return None
    offset = timedelta(hours=int(match.group("oh")), minutes=int(match.group("om")))
    zone = timezone(-offset if match.group("sign") == "-" else offset)
    fraction = (match.group("fraction") or "").ljust(6, "0")
    try:
        return datetime(
            int(match.group("year")),
            month,
            int(match.group("day")),
            int(match.group("hour")),
            int(match.group("minute")),
            int(match.group("second")),
            int(fraction),
            tzinfo=zone,
        )
    except ValueError:
        return None
