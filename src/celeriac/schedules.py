"""Schedules for beat: ``crontab`` and ``schedule`` (a fixed interval).

The math is pure: :func:`next_run` takes (schedule, last run, now, time zone) and returns the
next due instant. The Celery-style methods (``is_due``, ``remaining_estimate``) wrap it with
the schedule's own clock.

Time zones: cron fields are local wall-clock times in ``tz``. A wall time that does not exist
(the hour skipped when clocks go forward) is moved to the first valid minute after it, so a
02:30 job runs at 03:00 that day. A wall time that happens twice (clocks go back) runs once, at
its first occurrence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from .exceptions import ImproperlyConfigured

UTC = dt.UTC
_MINUTE = dt.timedelta(minutes=1)
# the Gregorian calendar repeats every 400 years, so any possible date appears within that span
_SEARCH_YEARS = 401


class schedstate(NamedTuple):  # noqa: N801 - Celery's name
    is_due: bool
    next: float


def app_timezone(conf: Any) -> dt.tzinfo:
    """The zone crontabs are read in: ``timezone``, else UTC (or local time if ``enable_utc`` is off)."""
    name = getattr(conf, "timezone", None)
    if name:
        return name if isinstance(name, dt.tzinfo) else ZoneInfo(str(name))
    if getattr(conf, "enable_utc", True):
        return UTC
    return dt.datetime.now().astimezone().tzinfo or UTC


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class BaseSchedule:
    """What beat needs from a schedule; subclasses implement :meth:`next_after`."""

    def __init__(self, nowfun: Callable[[], dt.datetime] | None = None, app: Any = None) -> None:
        self.nowfun = nowfun
        self.app = app

    @property
    def tz(self) -> dt.tzinfo:
        return app_timezone(self.app.conf) if self.app is not None else UTC

    def now(self) -> dt.datetime:
        return _aware(self.nowfun()) if self.nowfun else dt.datetime.now(UTC)

    def next_after(self, last_run: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
        raise NotImplementedError

    def remaining_estimate(self, last_run_at: dt.datetime) -> dt.timedelta:
        """Time left until the run after ``last_run_at`` (negative when overdue)."""
        return next_run(self, last_run_at, self.now(), self.tz) - self.now()

    def is_due(self, last_run_at: dt.datetime) -> schedstate:
        """Celery's contract: (due now?, seconds until the next check)."""
        now = self.now()
        due = next_run(self, last_run_at, now, self.tz)
        if due <= now:
            return schedstate(True, (self.next_after(now, self.tz) - now).total_seconds())
        return schedstate(False, (due - now).total_seconds())


class schedule(BaseSchedule):  # noqa: N801 - Celery's name
    """Run every ``run_every`` (a timedelta or seconds)."""

    def __init__(self, run_every: dt.timedelta | float, relative: bool = False,
                 nowfun: Callable[[], dt.datetime] | None = None, app: Any = None) -> None:
        super().__init__(nowfun, app)
        self.run_every = as_interval(run_every)
        self.relative = relative

    @property
    def seconds(self) -> float:
        return self.run_every.total_seconds()

    def next_after(self, last_run: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
        return _aware(last_run) + self.run_every

    def __repr__(self) -> str:
        return f"<freq: {self.run_every}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, schedule) and other.run_every == self.run_every

    def __hash__(self) -> int:
        return hash(self.run_every)


def as_interval(value: dt.timedelta | float) -> dt.timedelta:
    """A positive interval from a timedelta or a number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (dt.timedelta, int, float)):
        raise ImproperlyConfigured(f"schedule run_every must be a timedelta or seconds, got {value!r}")
    interval = value if isinstance(value, dt.timedelta) else dt.timedelta(seconds=value)
    if interval <= dt.timedelta(0):
        raise ImproperlyConfigured(f"schedule run_every must be positive, got {value!r}")
    return interval


# -- crontab fields ------------------------------------------------------------------------------
FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
_BOUNDS = {"minute": (0, 59), "hour": (0, 23), "day_of_week": (0, 6), "day_of_month": (1, 31), "month_of_year": (1, 12)}
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_NAMES = {
    "day_of_week": {**{d: i for i, d in enumerate(_DAYS)}, **{n: i for i, n in enumerate(
        ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"))}},
    "month_of_year": {m: i + 1 for i, m in enumerate(_MONTHS)},
}


def _bad(field: str, value: Any, reason: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"crontab {field}={value!r}: {reason}")


def parse_field(field: str, value: Any) -> frozenset[int]:
    """The set of values a crontab field allows (``"*/15"``, ``"1-5"``, ``"mon-fri"``, ``[0, 30]``)."""
    if isinstance(value, (bool, bytes, bytearray)) or value is None:
        raise _bad(field, value, "expected a number, a string or a list")
    if isinstance(value, int):
        return frozenset({_number(field, value, str(value))})
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        if not all(parts):
            raise _bad(field, value, "empty list item")
        return frozenset().union(*(_part(field, p, value) for p in parts))
    try:
        items = list(value)
    except TypeError:
        raise _bad(field, value, "expected a number, a string or a list") from None
    if not items:
        raise _bad(field, value, "empty list")
    return frozenset().union(*(parse_field(field, item) for item in items))


def _number(field: str, token: Any, whole: str) -> int:
    low, high = _BOUNDS[field]
    text = str(token).strip().lower()
    number = _NAMES.get(field, {}).get(text)
    if number is None:
        if not (text.isascii() and text.isdigit()):
            raise _bad(field, whole, f"{token!r} is not a number" + (" or a name" if field in _NAMES else ""))
        number = int(text)
    if field == "day_of_week" and number == 7:
        number = 0  # cron's alternative Sunday
    if not low <= number <= high:
        raise _bad(field, whole, f"{number} is outside {low}-{high}")
    return number


def _part(field: str, part: str, whole: str) -> set[int]:
    """One comma-separated item: ``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n`` or ``a/n``."""
    low, high = _BOUNDS[field]
    span, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
            raise _bad(field, whole, f"step {step_text!r} must be a positive number")
        step = int(step_text)
    if span == "*":
        return set(range(low, high + 1, step))
    start_text, dash, end_text = span.partition("-")
    start = _number(field, start_text, whole)
    if not dash:
        return {start} if not step_text else set(range(start, high + 1, step))
    end = _number(field, end_text, whole)
    values = list(range(start, end + 1)) if start <= end else [*range(start, high + 1), *range(low, end + 1)]
    return set(values[::step])


class crontab(BaseSchedule):  # noqa: N801 - Celery's name
    """Cron-like schedule: ``crontab(minute=0, hour=7, day_of_week="mon")``.

    A time matches when every field matches (day_of_month and day_of_week together, as Celery
    does, not cron's either-or). day_of_week counts from Sunday = 0 (7 is Sunday too).
    """

    def __init__(self, minute: Any = "*", hour: Any = "*", day_of_week: Any = "*", day_of_month: Any = "*",
                 month_of_year: Any = "*", nowfun: Callable[[], dt.datetime] | None = None, app: Any = None) -> None:
        super().__init__(nowfun, app)
        self._orig = (minute, hour, day_of_week, day_of_month, month_of_year)
        values = dict(zip(("minute", "hour", "day_of_week", "day_of_month", "month_of_year"), self._orig, strict=True))
        self.minute, self.hour, self.day_of_week, self.day_of_month, self.month_of_year = (
            parse_field(name, values[name]) for name in FIELDS
        )
        self._minutes, self._hours = sorted(self.minute), sorted(self.hour)
        _check_possible(self)

    @classmethod
    def from_string(cls, text: str, **kwargs: Any) -> crontab:
        """From a five-field cron line: ``minute hour day_of_month month_of_year day_of_week``."""
        parts = str(text).split()
        if len(parts) != 5:
            raise ImproperlyConfigured(f"crontab string needs 5 fields (m h dom mon dow), got {text!r}")
        minute, hour, dom, month, dow = parts
        return cls(minute, hour, dow, dom, month, **kwargs)

    def matches_day(self, day: dt.date) -> bool:
        return day.day in self.day_of_month and (day.isoweekday() % 7) in self.day_of_week

    def walls_from(self, start: dt.datetime) -> Iterator[dt.datetime]:
        """Matching naive wall times at or after ``start``, in order."""
        for day in _matching_days(self, start.date()):
            for hour in self._hours:
                for minute in self._minutes:
                    wall = dt.datetime.combine(day, dt.time(hour, minute))
                    if wall >= start:
                        yield wall

    def next_after(self, last_run: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
        """The first matching instant strictly after ``last_run``."""
        last_run = _aware(last_run)
        start = last_run.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0, fold=0)
        for wall in self.walls_from(start):
            instant = wall_to_instant(wall, tz)
            if instant > last_run:
                return instant
        raise ImproperlyConfigured(f"{self!r} never matches")  # unreachable: checked at construction

    def __repr__(self) -> str:
        return "<crontab: {} {} {} {} {} (m/h/dM/MY/d)>".format(*(self._orig[i] for i in (0, 1, 3, 4, 2)))

    def _key(self) -> tuple[frozenset[int], ...]:
        return (self.minute, self.hour, self.day_of_week, self.day_of_month, self.month_of_year)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, crontab) and other._key() == self._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _check_possible(cron: crontab) -> None:
    """Refuse schedules that can never match (``day_of_month=30, month_of_year=2``)."""
    longest = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}
    if not any(day <= longest.get(month, 31) for month in cron.month_of_year for day in cron.day_of_month):
        raise ImproperlyConfigured(f"{cron!r} can never run: no month in month_of_year has those days")


def _matching_days(cron: crontab, first: dt.date) -> Iterator[dt.date]:
    day, limit = first, dt.date(min(first.year + _SEARCH_YEARS, 9999), 1, 1)
    while day < limit:
        if day.month not in cron.month_of_year:
            day = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
            continue
        if cron.matches_day(day):
            yield day
        day += dt.timedelta(days=1)


def wall_to_instant(wall: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The instant of a local wall time: its first occurrence, or the end of a DST gap."""
    while True:
        aware = wall.replace(tzinfo=tz, fold=0)
        instant = aware.astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == wall:
            return instant
        wall += _MINUTE  # inside a gap: try the next minute


def next_run(sched: BaseSchedule, last_run: dt.datetime | None, now: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """When ``sched`` is next due. A never-run schedule counts from ``now`` (as Celery's beat)."""
    return sched.next_after(_aware(last_run) if last_run is not None else _aware(now), tz)


def maybe_schedule(value: Any, app: Any = None) -> BaseSchedule:
    """A schedule from what ``beat_schedule`` accepts: a schedule, a timedelta or seconds."""
    if isinstance(value, BaseSchedule):
        if app is not None and value.app is None:
            value.app = app
        return value
    if isinstance(value, (dt.timedelta, int, float)) and not isinstance(value, bool):
        return schedule(value, app=app)
    raise ImproperlyConfigured(f"a schedule must be a crontab, a schedule, a timedelta or seconds; got {value!r}")


class solar(BaseSchedule):  # noqa: N801 - Celery's name
    """Not supported: sunrise/sunset schedules need astronomy tables celeriac does not ship."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ImproperlyConfigured("solar schedules are not supported by celeriac; use crontab or schedule")


__all__ = ["BaseSchedule", "app_timezone", "crontab", "maybe_schedule", "next_run", "schedstate", "schedule", "solar",
           "wall_to_instant"]
