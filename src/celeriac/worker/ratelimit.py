"""Per-task rate limits (``@app.task(rate_limit="10/m")``), enforced per worker node.

Each process keeps one token bucket per task name, refilled at the task's rate with room for one
token, so tasks run evenly spaced. A prefork child holds ``1/children`` of the node's rate (the
children do not talk to each other; dividing keeps the node's total at the limit). Threads and
the async pool share one bucket per process.

Waiting for a token never holds other tasks' messages hostage: a wait shorter than ``SHORT_WAIT``
is slept through in the slot; a longer one gives the message back to the broker with that delay
(``broker.release(..., delay=)``) and books the token for it, so queued messages come back spaced
out instead of all at once. If a released message is fetched by another process, that process
charges its own bucket: the task runs later than needed, never faster than the limit.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from ..app.base import Celery
    from ..brokers.base import Delivery

logger = logging.getLogger("celeriac.worker")

SHORT_WAIT = 0.25  # seconds a slot may sleep for a token instead of releasing the message
_REFRESH = 1.0  # seconds between looks at which tasks have limits (they change by remote control)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(value: str | float | None) -> float | None:
    """Tasks per second for ``"10/m"``, ``"5/s"``, ``"100/h"`` or a number (per second); None: no limit."""
    if value in (None, "", 0, "0"):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    count, _, unit = str(value).strip().partition("/")
    seconds = _UNITS.get((unit or "s").strip()[:1].lower())
    if seconds is None:
        raise ValueError(f"rate limit {value!r}: expected N/s, N/m or N/h")
    rate = float(count) / seconds
    return rate if rate > 0 else None


class TokenBucket:
    """A bucket holding at most one token, refilled at ``rate`` per second (evenly spaced runs)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self._next_free = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Book the next token; return how many seconds from now it is due (0: take it now)."""
        with self._lock:
            now = self.clock()
            due = max(self._next_free, now)
            self._next_free = due + 1.0 / self.rate
            return due - now


class RateLimiter:
    """The buckets of one process, keyed by task name; rates re-read when they change."""

    def __init__(self, app: Celery, share: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.share = max(1, share)
        self.clock = clock
        self._buckets: dict[str, tuple[float, TokenBucket]] = {}
        self._booked: dict[str, float] = {}  # message id -> when its booked token is due
        self._limited: set[str] = set()
        self._checked = -_REFRESH
        self._lock = threading.Lock()

    def rate_for(self, name: str) -> float | None:
        task = self.app.tasks.get(name)
        rate = getattr(task, "rate_limit", None) or self.app.conf.task_default_rate_limit
        try:
            per_node = parse_rate(rate)
        except ValueError as exc:
            logger.warning("%s: %s; running without a limit", name, exc)
            return None
        return per_node / self.share if per_node else None

    def limited_tasks(self) -> set[str]:
        """Names of tasks with a limit now (looked up at most once a second)."""
        now = self.clock()
        if now - self._checked >= _REFRESH:
            self._checked = now
            if self.app.conf.worker_disable_rate_limits:
                self._limited = set()
            elif self.app.conf.task_default_rate_limit:
                self._limited = set(self.app.tasks)
            else:
                self._limited = {n for n, t in self.app.tasks.items() if getattr(t, "rate_limit", None)}
        return self._limited

    def delay_for(self, name: str, message_id: str) -> float:
        """Seconds this message must wait for its token (0: run now); books the token either way."""
        with self._lock:
            due = self._booked.pop(message_id, None)
            if due is not None:
                return max(0.0, due - self.clock())
            rate = self.rate_for(name)
            if rate is None:
                return 0.0
            rate_now, bucket = self._buckets.get(name) or (None, None)
            if bucket is None or rate_now != rate:
                bucket = TokenBucket(rate, self.clock)
                self._buckets[name] = (rate, bucket)
            wait = bucket.reserve()
            if wait > SHORT_WAIT:
                self._booked[message_id] = self.clock() + wait
                self._forget_old_bookings()
            return wait

    def _forget_old_bookings(self) -> None:
        stale = self.clock() - 3600.0
        for message_id in [m for m, due in self._booked.items() if due < stale]:
            del self._booked[message_id]


_limiters: weakref.WeakKeyDictionary[Any, RateLimiter] = weakref.WeakKeyDictionary()


def limiter(app: Celery) -> RateLimiter:
    """This process's limiter for ``app``."""
    found = _limiters.get(app)
    if found is None:
        found = _limiters[app] = RateLimiter(app)
    return found


def set_share(app: Celery, share: int) -> None:
    """In a prefork child: hold ``1/share`` of the node's rate."""
    limiter(app).share = max(1, share)


def task_name(payload: bytes) -> str | None:
    try:
        headers = orjson.loads(payload).get("headers") or {}
        return str(headers.get("task") or "") or None
    except Exception:
        return None


def admit(app: Celery, delivery: Delivery, sleep: Callable[[float], Any] = time.sleep) -> bool:
    """Whether the slot may run ``delivery`` now; a long wait gives it back to the broker, delayed."""
    rl = limiter(app)
    limited = rl.limited_tasks()
    if not limited:
        return True
    name = task_name(delivery.payload)
    if name not in limited:
        return True
    wait = rl.delay_for(name, delivery.message_id)
    if wait <= SHORT_WAIT:
        if wait > 0:
            sleep(wait)
        return True
    app.broker.release([delivery], delay=wait)
    logger.debug("Task %s[%s] rate limited: back in the queue for %.2fs", name, delivery.message_id, wait)
    return False
