"""Crontab strings and field values: a schedule with a computable next run, or an error naming the field."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac.exceptions import ImproperlyConfigured
from celeriac.schedules import FIELDS, crontab

from .strategies import examples

FAST = settings(max_examples=examples(200), deadline=2000)
START = dt.datetime(2026, 11, 21, 15, 7, 30, tzinfo=dt.UTC)
ORDER = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")  # the order of a cron line

tokens = st.sampled_from(["*", "*/", "*/0", "*/7", "0", "5", "7", "12", "29", "31", "59", "60", "-", "-1", "1-5",
                          "5-1", "1-5/2", "mon", "fri", "sun-sat", "jan", "dec", "feb-mar", "x", "1,,2", ",", "1,2"])
cron_fields = st.lists(tokens, min_size=1, max_size=3).map("".join)
# "No" characters (superscripts, fractions) pass str.isdigit() but not int(): the xfail case below covers them
texts = st.text(alphabet=st.characters(exclude_categories=["No", "Cs"]), max_size=40)
field_values = st.one_of(
    cron_fields, texts, st.integers(-5, 100), st.none(), st.booleans(), st.floats(0, 60),
    st.lists(st.one_of(st.integers(-2, 62), cron_fields), max_size=4),
)


def check_next_run(schedule: crontab) -> None:
    """The next run is after START and falls on a time every field allows."""
    due = schedule.next_after(START, dt.UTC)
    assert due > START
    assert due.minute in schedule.minute and due.hour in schedule.hour
    assert due.day in schedule.day_of_month and due.month in schedule.month_of_year
    assert due.isoweekday() % 7 in schedule.day_of_week


def refused_with_field(exc: Exception, fields: tuple[str, ...]) -> None:
    text = str(exc)
    assert any(name in text for name in fields) or "never run" in text, f"no field named in {text!r}"


@FAST
@given(st.lists(cron_fields, min_size=5, max_size=5).map(" ".join))
def test_five_field_strings_give_a_schedule_or_name_the_bad_field(line):
    try:
        schedule = crontab.from_string(line)
    except (ValueError, ImproperlyConfigured) as exc:
        refused_with_field(exc, ORDER)
        return
    check_next_run(schedule)


@FAST
@given(texts)
def test_any_text_gives_a_schedule_or_a_clear_error(line):
    try:
        schedule = crontab.from_string(line)
    except (ValueError, ImproperlyConfigured) as exc:
        assert "5 fields" in str(exc) or any(name in str(exc) for name in ORDER) or "never run" in str(exc)
        return
    check_next_run(schedule)


@FAST
@given(st.fixed_dictionaries({}, optional={name: field_values for name in FIELDS}))
def test_field_keywords_give_a_schedule_or_name_the_field(fields):
    try:
        schedule = crontab(**fields)
    except (ValueError, ImproperlyConfigured) as exc:
        refused_with_field(exc, tuple(fields))
        return
    check_next_run(schedule)


@pytest.mark.parametrize("line", ["*/ * * * *", "0 5/ * * *"])
def test_a_step_without_a_number_is_refused(line):
    with pytest.raises(ImproperlyConfigured, match="step"):
        crontab.from_string(line)


@pytest.mark.parametrize("make", [lambda: crontab(minute="²"), lambda: crontab.from_string("0 ³ * * *")],
                         ids=["keyword", "string"])
def test_a_superscript_digit_is_refused_with_the_field_name(make):
    with pytest.raises(ImproperlyConfigured, match="minute|hour"):
        make()


def test_bytes_are_not_read_as_a_list_of_byte_values():
    with pytest.raises(ImproperlyConfigured, match="minute"):
        crontab(minute=b"5")
