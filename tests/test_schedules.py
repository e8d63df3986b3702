"""crontab and interval math, with virtual time (no clock is read)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac import Celery
from celeriac.exceptions import ImproperlyConfigured
from celeriac.schedules import app_timezone, crontab, maybe_schedule, next_run, schedule, solar

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # shifts by 30 minutes


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def local(tz: dt.tzinfo, *parts: int, fold: int = 0) -> dt.datetime:
    """A local wall time as a UTC instant (ambiguous local times never compare equal across zones)."""
    return dt.datetime(*parts, tzinfo=tz, fold=fold).astimezone(UTC)


# -- parsing -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("*/15", {0, 15, 30, 45}),
    ("0,30", {0, 30}),
    ("1-5", {1, 2, 3, 4, 5}),
    ("10-20/5", {10, 15, 20}),
    ("58-2", {58, 59, 0, 1, 2}),
    ("5/20", {5, 25, 45}),
    (7, {7}),
    ([0, "30", "45-46"], {0, 30, 45, 46}),
])
def test_minute_field_syntax(text, expected):
    assert crontab(minute=text).minute == frozenset(expected)


def test_day_of_week_names_and_sunday_as_seven():
    assert crontab(day_of_week="mon-fri").day_of_week == {1, 2, 3, 4, 5}
    assert crontab(day_of_week="sat,sun").day_of_week == {6, 0}
    assert crontab(day_of_week="7").day_of_week == {0}
    assert crontab(day_of_week="Friday").day_of_week == {5}


def test_from_string_reads_fields_in_cron_order():
    cron = crontab.from_string("*/5 7 1 jan mon")
    assert cron == crontab(minute="*/5", hour=7, day_of_month=1, month_of_year=1, day_of_week="mon")


@pytest.mark.parametrize(("kwargs", "field", "bad"), [
    ({"minute": "60"}, "minute", "60"),
    ({"hour": "24"}, "hour", "24"),
    ({"hour": "*/0"}, "hour", "*/0"),
    ({"day_of_week": "funday"}, "day_of_week", "funday"),
    ({"day_of_month": "0"}, "day_of_month", "0"),
    ({"month_of_year": "13"}, "month_of_year", "13"),
    ({"minute": "1,,2"}, "minute", "1,,2"),
    ({"minute": None}, "minute", "None"),
])
def test_bad_fields_name_the_field_and_value(kwargs, field, bad):
    with pytest.raises(ValueError) as info:
        crontab(**kwargs)
    assert isinstance(info.value, ImproperlyConfigured)
    assert f"{field}=" in str(info.value) and bad in str(info.value)


def test_impossible_date_is_refused():
    with pytest.raises(ImproperlyConfigured, match="never run"):
        crontab(minute=0, hour=0, day_of_month=30, month_of_year=2)


def test_from_string_needs_five_fields():
    with pytest.raises(ImproperlyConfigured, match="5 fields"):
        crontab.from_string("* * *")


def test_solar_is_refused_with_a_clear_error():
    with pytest.raises(ImproperlyConfigured, match="solar"):
        solar("sunset", 0, 0)


# -- crontab next run --------------------------------------------------------------------------
def test_next_run_is_strictly_after_last_run():
    cron = crontab(minute=0)
    assert next_run(cron, utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 10, 0), UTC) == utc(2026, 1, 1, 11, 0)
    assert next_run(cron, utc(2026, 1, 1, 10, 0, 30), utc(2026, 1, 1, 10, 0, 30), UTC) == utc(2026, 1, 1, 11, 0)


def test_never_run_counts_from_now():
    assert next_run(crontab(minute="*/15"), None, utc(2026, 1, 1, 10, 7), UTC) == utc(2026, 1, 1, 10, 15)


def test_thirty_first_skips_short_months():
    cron = crontab(minute=0, hour=0, day_of_month=31)
    assert cron.next_after(utc(2026, 1, 31, 0, 0), UTC) == utc(2026, 3, 31)
    assert cron.next_after(utc(2026, 3, 31, 0, 0), UTC) == utc(2026, 5, 31)


def test_month_end_rolls_into_next_year():
    assert crontab(minute=59, hour=23).next_after(utc(2026, 12, 31, 23, 59), UTC) == utc(2027, 1, 1, 23, 59)


def test_february_29_waits_for_a_leap_year():
    cron = crontab(minute=0, hour=12, day_of_month=29, month_of_year=2)
    assert cron.next_after(utc(2024, 2, 29, 12), UTC) == utc(2028, 2, 29, 12)


def test_february_29_on_a_monday_skips_2100():
    cron = crontab(minute=0, hour=0, day_of_month=29, month_of_year=2, day_of_week="mon")
    assert cron.next_after(utc(2025, 1, 1), UTC) == utc(2044, 2, 29)
    assert cron.next_after(utc(2084, 3, 1), UTC) == utc(2112, 2, 29)  # 2100 is not a leap year


def test_day_of_month_and_day_of_week_must_both_match():
    cron = crontab(minute=0, hour=7, day_of_month="1-7", day_of_week="mon")  # first Monday
    assert cron.next_after(utc(2026, 11, 21), UTC) == utc(2026, 12, 7, 7)


def test_local_time_zone_is_honoured():
    cron = crontab(minute=0, hour=7, day_of_week="mon")
    assert cron.next_after(utc(2026, 11, 21), NEW_YORK) == local(NEW_YORK, 2026, 11, 23, 7)


def test_spring_gap_moves_a_run_to_the_first_valid_minute():
    cron = crontab(minute=30, hour=2)
    due = cron.next_after(local(BERLIN, 2024, 3, 30, 12), BERLIN)
    assert due == local(BERLIN, 2024, 3, 31, 3, 0)
    assert cron.next_after(due, BERLIN) == local(BERLIN, 2024, 4, 1, 2, 30)


def test_spring_gap_runs_once_for_every_skipped_minute():
    cron = crontab(minute="*/15")
    runs = _runs(cron, local(BERLIN, 2024, 3, 31, 1, 40), BERLIN, 4)
    assert [r.astimezone(BERLIN).strftime("%H:%M") for r in runs] == ["01:45", "03:00", "03:15", "03:30"]


def test_repeated_autumn_hour_runs_once():
    cron = crontab(minute=30, hour=2)
    runs = _runs(cron, local(BERLIN, 2024, 10, 26, 12), BERLIN, 2)
    assert runs == [local(BERLIN, 2024, 10, 27, 2, 30, fold=0), local(BERLIN, 2024, 10, 28, 2, 30)]


def test_inside_repeated_hour_the_next_run_is_after_it():
    cron = crontab(minute="*/30")
    second_pass = local(BERLIN, 2024, 10, 27, 2, 10, fold=1)
    assert cron.next_after(second_pass, BERLIN) == local(BERLIN, 2024, 10, 27, 3, 0)


def _runs(cron: crontab, start: dt.datetime, tz: dt.tzinfo, count: int) -> list[dt.datetime]:
    runs, last = [], start
    for _ in range(count):
        last = cron.next_after(last, tz)
        runs.append(last)
    return runs


def _reference_matches(cron: crontab, instant: dt.datetime, tz: dt.tzinfo) -> bool:
    """Minute-by-minute reference: a first occurrence that matches, or the end of a gap hiding a match."""
    here = instant.astimezone(tz)
    if here.fold == 1 and here.utcoffset() != here.replace(fold=0).utcoffset():
        return False  # the second pass of a repeated wall time
    wall = here.replace(tzinfo=None)
    before = (instant - dt.timedelta(minutes=1)).astimezone(tz).replace(tzinfo=None)
    walls = [wall]
    while before + dt.timedelta(minutes=1) < walls[0]:  # skipped wall times (a gap) end here
        walls.insert(0, walls[0] - dt.timedelta(minutes=1))
    return any(_wall_matches(cron, w) for w in walls)


def _wall_matches(cron: crontab, wall: dt.datetime) -> bool:
    return wall.minute in cron.minute and wall.hour in cron.hour and cron.matches_day(wall.date()) and (
        wall.month in cron.month_of_year)


def _reference_next(cron: crontab, after: dt.datetime, tz: dt.tzinfo, limit_minutes: int) -> dt.datetime | None:
    instant = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    for _ in range(limit_minutes):
        if _reference_matches(cron, instant, tz):
            return instant
        instant += dt.timedelta(minutes=1)
    return None


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK, LORD_HOWE, UTC], ids=str)
@pytest.mark.parametrize("expr", ["*/15 * * * *", "30 2 * * *", "0,59 1-3 * * *", "*/7 2 * * *"])
def test_every_minute_of_both_dst_days_agrees_with_the_reference(tz, expr):
    cron = crontab.from_string(expr)
    for day in (dt.datetime(2024, 3, 9), dt.datetime(2024, 3, 30), dt.datetime(2024, 4, 6),
                dt.datetime(2024, 10, 5), dt.datetime(2024, 10, 26), dt.datetime(2024, 11, 2)):
        start = day.replace(hour=20).replace(tzinfo=tz).astimezone(UTC)
        for minute in range(0, 9 * 60, 7):
            after = start + dt.timedelta(minutes=minute, seconds=17)
            assert cron.next_after(after, tz) == _reference_next(cron, after, tz, 32 * 60), (expr, after)


_fields = st.fixed_dictionaries({
    "minute": st.sets(st.integers(0, 59), min_size=1, max_size=4),
    "hour": st.sets(st.integers(0, 23), min_size=3, max_size=24),
    "day_of_week": st.sets(st.integers(0, 6), min_size=4, max_size=7),
})


@settings(max_examples=60, deadline=None)
@given(fields=_fields, after=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 1)),
       tz=st.sampled_from([BERLIN, NEW_YORK, UTC]))
def test_next_run_is_the_first_reference_match(fields, after, tz):
    cron = crontab(**{k: sorted(v) for k, v in fields.items()})
    aware = after.replace(tzinfo=UTC)
    assert cron.next_after(aware, tz) == _reference_next(cron, aware, tz, 8 * 24 * 60)


# -- interval schedules ------------------------------------------------------------------------
def test_interval_accepts_seconds_and_timedelta():
    assert schedule(30).run_every == dt.timedelta(seconds=30)
    assert schedule(dt.timedelta(minutes=2)).seconds == 120
    assert next_run(schedule(30), utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 0, 5), UTC) == utc(2026, 1, 1, 0, 0, 30)


@pytest.mark.parametrize("bad", [0, -5, "10", None, True])
def test_interval_must_be_positive_seconds_or_timedelta(bad):
    with pytest.raises(ImproperlyConfigured, match="run_every"):
        schedule(bad)


def test_maybe_schedule_turns_numbers_into_intervals():
    assert maybe_schedule(10) == schedule(10)
    assert maybe_schedule(dt.timedelta(hours=1)) == schedule(3600)
    cron = crontab()
    assert maybe_schedule(cron) is cron
    with pytest.raises(ImproperlyConfigured, match="schedule"):
        maybe_schedule("hourly")


# -- Celery's is_due / remaining_estimate ------------------------------------------------------
def test_is_due_with_virtual_now():
    now = utc(2026, 1, 1, 10, 0, 0)
    cron = crontab(minute="*/15", nowfun=lambda: now)
    assert tuple(cron.is_due(utc(2026, 1, 1, 9, 45))) == (True, 900.0)
    assert tuple(cron.is_due(utc(2026, 1, 1, 10, 0))) == (False, 900.0)
    assert cron.remaining_estimate(utc(2026, 1, 1, 9, 50)) == dt.timedelta(minutes=-0)


def test_interval_is_due_after_run_every():
    now = utc(2026, 1, 1, 10, 0, 10)
    every = schedule(30, nowfun=lambda: now)
    assert tuple(every.is_due(utc(2026, 1, 1, 10, 0, 0))) == (False, 20.0)
    assert tuple(every.is_due(utc(2026, 1, 1, 9, 59, 30))) == (True, 30.0)


def test_crontab_reads_the_app_time_zone():
    app = Celery("tz", broker="memory://tz", timezone="America/New_York", set_as_current=False)
    now = utc(2026, 6, 1, 10, 30)  # 06:30 in New York
    cron = crontab(minute=0, hour=7, nowfun=lambda: now, app=app)
    assert cron.remaining_estimate(now) == dt.timedelta(minutes=30)


def test_app_timezone_defaults_to_utc():
    assert app_timezone(Celery("d", broker="memory://d", set_as_current=False).conf) == UTC
