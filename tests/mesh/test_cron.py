"""Cron schedules as a PingSource reads them (robfig/cron's standard parser, seconds optional).

Every expected firing below was worked out by hand from a calendar (2024-01-01 is a Monday;
Europe/Berlin leaves CET for CEST at 02:00 on 2024-03-31 and returns at 03:00 on 2024-10-27),
not copied from the implementation's output.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from eventfn._errors import ConfigurationError
from eventfn.mesh._cron import parse_schedule

BERLIN = "Europe/Berlin"


def firings(expression: str, start: str, zone: str, count: int) -> list[str]:
    """The next `count` firings after `start`, each as an ISO time in `zone`."""
    schedule = parse_schedule(expression)
    moment = datetime.fromisoformat(start)
    found = []
    for _ in range(count):
        moment = schedule.next_after(moment, ZoneInfo(zone))
        found.append(moment.isoformat())
    return found


CASES = [
    # a day field starting with `*` (here `*/2`) is unrestricted for the OR rule (robfig's
    # star bit): odd days AND Mondays, not odd days OR Mondays
    ("0 0 */2 * mon", "2024-01-01T00:00:00+00:00", "UTC",
     ["2024-01-15T00:00:00+00:00", "2024-01-29T00:00:00+00:00", "2024-02-05T00:00:00+00:00",
      "2024-02-19T00:00:00+00:00"]),
    # every minute; a start on a firing is not itself a firing ("strictly after")
    ("* * * * *", "2024-01-01T00:00:00+00:00", "UTC",
     ["2024-01-01T00:01:00+00:00", "2024-01-01T00:02:00+00:00", "2024-01-01T00:03:00+00:00"]),
    # sub-second start rounds up to the next whole second, not past it
    ("0 * * * *", "2024-01-01T09:59:59.500000+00:00", "UTC",
     ["2024-01-01T10:00:00+00:00", "2024-01-01T11:00:00+00:00"]),
    ("*/15 * * * *", "2024-01-01T10:07:12+00:00", "UTC",
     ["2024-01-01T10:15:00+00:00", "2024-01-01T10:30:00+00:00", "2024-01-01T10:45:00+00:00",
      "2024-01-01T11:00:00+00:00"]),
    # range with a step, then the next day
    ("5-20/5 8 * * *", "2024-01-01T00:00:00+00:00", "UTC",
     ["2024-01-01T08:05:00+00:00", "2024-01-01T08:10:00+00:00", "2024-01-01T08:15:00+00:00",
      "2024-01-01T08:20:00+00:00", "2024-01-02T08:05:00+00:00"]),
    # `N/step` means N-max/step
    ("10/20 * * * *", "2024-01-01T00:00:00+00:00", "UTC",
     ["2024-01-01T00:10:00+00:00", "2024-01-01T00:30:00+00:00", "2024-01-01T00:50:00+00:00",
      "2024-01-01T01:10:00+00:00"]),
    # list
    ("0 9,17 * * *", "2024-01-01T12:00:00+00:00", "UTC",
     ["2024-01-01T17:00:00+00:00", "2024-01-02T09:00:00+00:00", "2024-01-02T17:00:00+00:00"]),
    # weekday names in a range: Friday 5th -> Monday 8th onwards
    ("30 7 * * mon-fri", "2024-01-05T08:00:00+00:00", "UTC",
     ["2024-01-08T07:30:00+00:00", "2024-01-09T07:30:00+00:00", "2024-01-10T07:30:00+00:00"]),
    # month names (any case), skipping February-June
    ("0 12 * JAN,jul *", "2024-01-31T13:00:00+00:00", "UTC",
     ["2024-07-01T12:00:00+00:00", "2024-07-02T12:00:00+00:00"]),
    # weekday 7, 0, `SUN` and `?` are all Sunday
    ("0 0 * * 7", "2024-01-01T00:00:00+00:00", "UTC",
     ["2024-01-07T00:00:00+00:00", "2024-01-14T00:00:00+00:00", "2024-01-21T00:00:00+00:00"]),
    ("0 0 ? * Sun", "2024-01-01T00:00:00+00:00", "UTC",
     ["2024-01-07T00:00:00+00:00", "2024-01-14T00:00:00+00:00"]),
    ("0 0 * * 5-7", "2024-01-01T00:00:00+00:00", "UTC",
     ["2024-01-05T00:00:00+00:00", "2024-01-06T00:00:00+00:00", "2024-01-07T00:00:00+00:00",
      "2024-01-12T00:00:00+00:00"]),
    # a restricted day of month skips the months without it
    ("0 0 31 * *", "2024-01-31T01:00:00+00:00", "UTC",
     ["2024-03-31T00:00:00+00:00", "2024-05-31T00:00:00+00:00", "2024-07-31T00:00:00+00:00"]),
    # Feb 29: only leap years
    ("0 0 29 2 *", "2024-03-01T00:00:00+00:00", "UTC",
     ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]),
    # both day fields restricted: the 13th OR a Friday (Sat 13th included)
    ("0 0 13 * fri", "2024-01-01T00:00:00+00:00", "UTC",
     ["2024-01-05T00:00:00+00:00", "2024-01-12T00:00:00+00:00", "2024-01-13T00:00:00+00:00",
      "2024-01-19T00:00:00+00:00"]),
    # day of week `*`: only the day of month counts (not "1st-7th OR any day")
    ("0 0 1-7 * *", "2024-01-07T12:00:00+00:00", "UTC",
     ["2024-02-01T00:00:00+00:00", "2024-02-02T00:00:00+00:00"]),
    # six fields: seconds first
    ("*/20 * * * * *", "2024-01-01T00:00:05+00:00", "UTC",
     ["2024-01-01T00:00:20+00:00", "2024-01-01T00:00:40+00:00", "2024-01-01T00:01:00+00:00"]),
    ("30 0 12 * * *", "2024-01-01T00:00:00+00:00", "UTC",
     ["2024-01-01T12:00:30+00:00", "2024-01-02T12:00:30+00:00"]),
    # descriptors
    ("@hourly", "2024-01-01T10:30:00+00:00", "UTC",
     ["2024-01-01T11:00:00+00:00", "2024-01-01T12:00:00+00:00"]),
    ("@daily", "2024-01-01T10:00:00+00:00", "UTC",
     ["2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00"]),
    ("@midnight", "2024-01-01T10:00:00+00:00", "UTC", ["2024-01-02T00:00:00+00:00"]),
    ("@weekly", "2024-01-01T00:00:00+00:00", "UTC",
     ["2024-01-07T00:00:00+00:00", "2024-01-14T00:00:00+00:00"]),
    ("@monthly", "2024-01-15T00:00:00+00:00", "UTC",
     ["2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00"]),
    ("@yearly", "2024-06-01T00:00:00+00:00", "UTC",
     ["2025-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"]),
    ("@annually", "2024-06-01T00:00:00+00:00", "UTC", ["2025-01-01T00:00:00+00:00"]),
    # the schedule is read in the zone; the start may be given in any zone
    ("0 9 * * *", "2024-01-01T00:00:00+00:00", "America/New_York",
     ["2024-01-01T09:00:00-05:00", "2024-01-02T09:00:00-05:00"]),
    ("0 9 * * *", "2024-01-01T12:00:00+09:00", "America/New_York",
     ["2024-01-01T09:00:00-05:00", "2024-01-02T09:00:00-05:00"]),
    # DST: a daily wall time stays put when the offset changes
    ("0 9 * * *", "2024-03-30T00:00:00+00:00", BERLIN,
     ["2024-03-30T09:00:00+01:00", "2024-03-31T09:00:00+02:00", "2024-04-01T09:00:00+02:00"]),
    # DST spring forward: 02:30 does not exist on 2024-03-31 and does not fire
    ("30 2 * * *", "2024-03-30T00:00:00+00:00", BERLIN,
     ["2024-03-30T02:30:00+01:00", "2024-04-01T02:30:00+02:00"]),
    # DST fall back: 02:30 happens twice on 2024-10-27 and fires twice
    ("30 2 * * *", "2024-10-26T12:00:00+00:00", BERLIN,
     ["2024-10-27T02:30:00+02:00", "2024-10-27T02:30:00+01:00", "2024-10-28T02:30:00+01:00"]),
    # hourly keeps firing every real hour through both changes
    ("0 * * * *", "2024-03-31T00:30:00+01:00", BERLIN,
     ["2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00", "2024-03-31T04:00:00+02:00"]),
    ("0 * * * *", "2024-10-27T01:30:00+02:00", BERLIN,
     ["2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00", "2024-10-27T03:00:00+01:00"]),
]  # fmt: skip


@pytest.mark.parametrize(("expression", "start", "zone", "expected"), CASES)
def test_next_firings(expression: str, start: str, zone: str, expected: list[str]) -> None:
    assert firings(expression, start, zone, len(expected)) == expected


def test_dst_fall_back_firings_are_an_hour_apart_in_real_time() -> None:
    schedule = parse_schedule("*/30 * * * *")
    moment = datetime(2024, 10, 27, 0, 0, tzinfo=UTC)  # 02:00 CEST
    instants = []
    for _ in range(4):
        moment = schedule.next_after(moment, ZoneInfo(BERLIN))
        instants.append(moment.astimezone(UTC).strftime("%H:%M"))
    assert instants == ["00:30", "01:00", "01:30", "02:00"]  # no hour left out


def test_firings_are_in_the_schedules_zone() -> None:
    fired = parse_schedule("0 9 * * *").next_after(
        datetime(2023, 12, 31, 12, tzinfo=UTC), ZoneInfo("Asia/Tokyo")
    )
    assert fired.tzinfo == ZoneInfo("Asia/Tokyo")
    assert fired.astimezone(UTC) == datetime(2024, 1, 1, 0, 0, tzinfo=UTC)


def test_the_expression_is_kept_as_written() -> None:
    assert parse_schedule(" @Hourly ").expression == " @Hourly "
    assert parse_schedule("@HOURLY").minutes == frozenset({0})


def test_a_schedule_that_never_fires_is_a_configuration_error() -> None:
    schedule = parse_schedule("0 0 30 2 *")  # February 30th
    with pytest.raises(ConfigurationError, match="never fires"):
        schedule.next_after(datetime(2024, 1, 1, tzinfo=UTC), ZoneInfo("UTC"))


INVALID = [
    ("60 * * * *", "minute '60'"),
    ("a * * * *", "minute 'a'"),
    ("*/0 * * * *", "minute '*/0'"),
    ("5-1 * * * *", "minute '5-1'"),
    ("1-2-3 * * * *", "minute '1-2-3'"),
    ("*/x * * * *", "minute '*/x'"),
    ("-1 * * * *", "minute '-1'"),
    ("* 24 * * *", "hour '24'"),
    ("* * 0 * *", "day of month '0'"),
    ("* * 32 * *", "day of month '32'"),
    ("* * mon * *", "day of month 'mon'"),
    ("* * * 13 *", "month '13'"),
    ("* * * foo *", "month 'foo'"),
    ("* * * 0 *", "month '0'"),
    ("* * * * 8", "day of week '8'"),
    ("* * * * mon-sun", "day of week 'mon-sun'"),
    ("* * * * jan", "day of week 'jan'"),
    ("60 * * * * *", "second '60'"),
    ("* * * *", "5 fields"),
    ("* * * * * * *", "5 fields"),
    ("@reboot", "descriptor"),
]


@pytest.mark.parametrize(("expression", "names"), INVALID)
def test_invalid_expressions_name_the_bad_field(expression: str, names: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_schedule(expression)
    assert names in str(raised.value)
    assert repr(expression) in str(raised.value)
