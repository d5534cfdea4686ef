"""Cron schedules as PingSource reads them: when does `* * * * *` fire next?

PingSource (knative/eventing pkg/adapter/mtping) parses `spec.schedule` with robfig/cron's
standard parser: five fields (minute hour day-of-month month day-of-week) or, optionally, a
leading seconds field (six fields); `*`, `?`, lists `a,b`, ranges `a-b`, steps `*/n` and
`a-b/n`, month and weekday names (`jan`, `mon`), weekday 7 = Sunday, and the descriptors
`@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`. As in cron, when
both day fields are restricted (neither starts with `*` or `?`) a day matches either. Times are
in the PingSource's `timezone` (default UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from eventfn._errors import ConfigurationError

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_WEEKDAYS = {
    name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}
_SEARCH_DAYS = 366 * 5  # Feb 29 on a Monday may be years away; give up after that


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule; `next_after` gives its next firing time."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def next_after(self, moment: datetime, zone: tzinfo) -> datetime:
        """The first firing strictly after `moment` (aware), as an aware datetime in `zone`.

        As robfig/cron does, days advance by the calendar and hours, minutes and seconds by
        elapsed time: a wall time skipped by a DST change never fires, one repeated fires twice.
        """
        instant = moment.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        end = instant + timedelta(days=_SEARCH_DAYS)
        while instant < end:
            local = instant.astimezone(zone)
            if not self._day_matches(local):
                instant = _next_midnight(local)
            elif local.hour not in self.hours:
                instant += timedelta(seconds=3600 - 60 * local.minute - local.second)
            elif local.minute not in self.minutes:
                instant += timedelta(seconds=60 - local.second)
            elif local.second not in self.seconds:
                instant += timedelta(seconds=1)
            else:
                return local
        raise ConfigurationError(f"schedule {self.expression!r} never fires")

    def _day_matches(self, moment: datetime) -> bool:
        if moment.month not in self.months:
            return False
        in_days = moment.day in self.days
        in_weekdays = (moment.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays


def _next_midnight(local: datetime) -> datetime:
    """The instant the day after `local` begins (its first existing time when DST skips 0:00)."""
    midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=local.tzinfo)
    return midnight.astimezone(UTC)


def parse_schedule(expression: str) -> CronSchedule:
    """Parse a 5- or 6-field cron expression or a descriptor; ConfigurationError names the
    field that is wrong."""
    text = expression.strip()
    text = _DESCRIPTORS.get(text.lower(), text)
    if text.startswith("@"):
        raise ConfigurationError(f"schedule {expression!r}: unsupported descriptor")
    fields = text.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ConfigurationError(
            f"schedule {expression!r} needs 5 fields (minute hour day month weekday) or 6"
        )
    second, minute, hour, day, month, weekday = fields

    def values(
        text: str, bounds: tuple[int, int], name: str, names: dict[str, int]
    ) -> frozenset[int]:
        where = f"{expression!r}: {name} {text!r}"
        return frozenset(
            v for part in text.split(",") for v in _part(part.lower(), bounds, names, where)
        )

    weekdays = values(weekday, (0, 7), "day of week", _WEEKDAYS)
    return CronSchedule(
        expression=expression,
        seconds=values(second, (0, 59), "second", {}),
        minutes=values(minute, (0, 59), "minute", {}),
        hours=values(hour, (0, 23), "hour", {}),
        days=values(day, (1, 31), "day of month", {}),
        months=values(month, (1, 12), "month", _MONTHS),
        weekdays=frozenset(value % 7 for value in weekdays),
        days_restricted=not day.startswith(("*", "?")),  # robfig: `*/2` sets the star bit too
        weekdays_restricted=not weekday.startswith(("*", "?")),
    )


def _part(part: str, bounds: tuple[int, int], names: dict[str, int], where: str) -> range:
    low, high = bounds
    span, _, step_text = part.partition("/")
    step = _number(step_text, names, where) if step_text else 1
    if step < 1:
        raise ConfigurationError(f"schedule {where}: a step must be at least 1")
    if span in ("*", "?"):
        first, last = low, high
    elif "-" in span:
        start, _, stop = span.partition("-")
        first, last = _number(start, names, where), _number(stop, names, where)
    else:
        first = _number(span, names, where)
        last = high if step_text else first
    if not low <= first <= last <= high:
        raise ConfigurationError(f"schedule {where}: values must lie within {low}-{high}")
    return range(first, last + 1, step)


def _number(text: str, names: dict[str, int], where: str) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ConfigurationError(f"schedule {where}: {text!r} is not a number")
    return int(text)
