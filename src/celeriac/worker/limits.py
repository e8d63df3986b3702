"""Time limits inside a process: an interval timer for the main thread, async exceptions for threads.

Hard limits of prefork children are enforced by the supervisor, which kills the child; these are
for the soft limit there, and for both limits in the solo and threads pools.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import threading
from collections.abc import Iterator

from ..exceptions import SoftTimeLimitExceeded, TimeLimitExceeded


class _MainThreadTimer:
    """SIGALRM-based limits for the main thread: soft first, then hard (if the process keeps it)."""

    def __init__(self) -> None:
        self.soft_pending = False
        self.pending_hard: float | None = None

    def _on_alarm(self, signum: int, frame: object) -> None:
        if self.soft_pending:
            self.soft_pending = False
            if self.pending_hard is not None:
                remaining, self.pending_hard = self.pending_hard, None
                signal.setitimer(signal.ITIMER_REAL, max(remaining, 0.001))
            raise SoftTimeLimitExceeded("soft time limit exceeded")
        raise TimeLimitExceeded("hard time limit exceeded")

    @contextlib.contextmanager
    def limit(self, soft: float | None, hard: float | None) -> Iterator[None]:
        """Arm the timer for one task. ``hard=None`` means another process enforces it."""
        if not soft and not hard:
            yield
            return
        previous = signal.signal(signal.SIGALRM, self._on_alarm)
        if soft:
            self.soft_pending = True
            self.pending_hard = (hard - soft) if hard and hard > soft else None
            signal.setitimer(signal.ITIMER_REAL, soft)
        else:
            self.soft_pending, self.pending_hard = False, None
            signal.setitimer(signal.ITIMER_REAL, hard or 0)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.soft_pending, self.pending_hard = False, None
            signal.signal(signal.SIGALRM, previous)


main_thread_timer = _MainThreadTimer()


def raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> bool:
    """Ask another thread to raise ``exc_type`` at its next bytecode (best effort: not inside C calls)."""
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))
    return int(done) == 1


class ThreadLimits:
    """Soft and hard limits for a task running in a pool thread, delivered as async exceptions."""

    def __init__(self) -> None:
        self._timers: dict[int, list[threading.Timer]] = {}
        self._lock = threading.Lock()

    def arm(self, soft: float | None, hard: float | None) -> None:
        thread_id = threading.get_ident()
        timers = []
        if soft:
            timers.append(threading.Timer(soft, raise_in_thread, (thread_id, SoftTimeLimitExceeded)))
        if hard:
            timers.append(threading.Timer(hard, raise_in_thread, (thread_id, TimeLimitExceeded)))
        for timer in timers:
            timer.daemon = True
            timer.start()
        with self._lock:
            self._timers[thread_id] = timers

    @contextlib.contextmanager
    def limit(self, soft: float | None, hard: float | None) -> Iterator[None]:
        self.arm(soft, hard)
        try:
            yield
        finally:
            self.disarm()

    def disarm(self) -> None:
        with self._lock:
            timers = self._timers.pop(threading.get_ident(), [])
        for timer in timers:
            timer.cancel()


thread_limits = ThreadLimits()
