"""Retry decisions as pure functions: how long to wait before the next attempt."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    retries: int,
    *,
    factor: float = 1.0,
    maximum: float | None = 600.0,
    jitter: bool = True,
    rand: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff capped at ``maximum``, with full jitter (a uniform draw below the cap).

    ``retries`` is how many retries already happened (0 before the first retry), so the
    un-jittered delays are ``factor * 2**retries``: 1, 2, 4, 8 ... seconds for ``factor=1``.
    """
    delay = factor * (2 ** max(0, retries))
    if maximum is not None:
        delay = min(delay, maximum)
    if jitter:
        delay = rand() * delay
    return max(0.0, delay)


def retry_countdown(
    retries: int,
    *,
    countdown: float | None,
    default_delay: float,
    backoff: bool | float,
    backoff_max: float | None,
    jitter: bool,
    rand: Callable[[], float] = random.random,
) -> float:
    """The countdown for a retry, following Celery's task options.

    An explicit ``countdown`` wins; then ``retry_backoff`` (True means factor 1); then
    ``default_retry_delay``.
    """
    if countdown is not None:
        return float(countdown)
    if backoff:
        factor = 1.0 if backoff is True else float(backoff)
        return backoff_delay(retries, factor=factor, maximum=backoff_max, jitter=jitter, rand=rand)
    return float(default_delay)
