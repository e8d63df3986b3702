"""Backoff is a pure function: exponential, capped, full jitter."""

from __future__ import annotations

from celeriac.retry import backoff_delay, retry_countdown


def test_backoff_doubles_until_the_cap():
    delays = [backoff_delay(n, factor=1, maximum=10, jitter=False) for n in range(6)]
    assert delays == [1, 2, 4, 8, 10, 10]


def test_full_jitter_draws_below_the_exponential_value():
    assert backoff_delay(3, factor=1, maximum=None, jitter=True, rand=lambda: 0.5) == 4.0
    assert backoff_delay(3, factor=1, maximum=None, jitter=True, rand=lambda: 0.0) == 0.0


def test_explicit_countdown_wins_over_backoff():
    assert retry_countdown(5, countdown=3, default_delay=180, backoff=True, backoff_max=600, jitter=False) == 3


def test_default_delay_without_backoff():
    assert retry_countdown(2, countdown=None, default_delay=180, backoff=False, backoff_max=600, jitter=True) == 180


def test_numeric_backoff_is_the_factor():
    assert retry_countdown(2, countdown=None, default_delay=1, backoff=5, backoff_max=None, jitter=False) == 20
