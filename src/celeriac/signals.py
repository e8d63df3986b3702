"""Signals with Celery's names. A receiver that raises is logged and never breaks the caller.

    from celeriac.signals import task_success

    @task_success.connect
    def on_success(sender=None, result=None, **kwargs): ...
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("celeriac.signals")

Receiver = Callable[..., Any]


class Signal:
    """A named hook that calls its receivers with ``sender`` and keyword arguments."""

    def __init__(self, name: str, providing_args: tuple[str, ...] = ()) -> None:
        self.name = name
        self.providing_args = providing_args
        self._receivers: list[tuple[Any, Any, bool]] = []
        self._lock = threading.Lock()

    def connect(self, receiver: Receiver | None = None, *, sender: Any = None, weak: bool = False, **_: Any) -> Any:
        """Connect a receiver; usable bare (``@sig.connect``) or with options (``@sig.connect(sender=...)``)."""
        if receiver is None:
            return lambda fn: self.connect(fn, sender=sender, weak=weak)
        ref: Any = weakref.WeakMethod(receiver) if weak and hasattr(receiver, "__self__") else (
            weakref.ref(receiver) if weak else receiver
        )
        with self._lock:
            self._receivers.append((ref, sender, weak))
        return receiver

    def disconnect(self, receiver: Receiver, sender: Any = None) -> bool:
        with self._lock:
            before = len(self._receivers)
            self._receivers = [
                r for r in self._receivers if not ((r[0]() if r[2] else r[0]) is receiver and (sender is None or r[1] is sender))
            ]
            return len(self._receivers) != before

    def _live(self, sender: Any) -> list[Receiver]:
        if not self._receivers:  # most signals have none, and a worker sends four per task
            return []
        with self._lock:
            entries = list(self._receivers)
        found = []
        for ref, wanted, weak in entries:
            fn = ref() if weak else ref
            if fn is None:
                continue
            if wanted is None or wanted is sender or (isinstance(wanted, str) and getattr(sender, "name", None) == wanted):
                found.append(fn)
        return found

    def send(self, sender: Any = None, **named: Any) -> list[tuple[Receiver, Any]]:
        """Call every receiver; errors are logged and returned, never raised."""
        replies: list[tuple[Receiver, Any]] = []
        if not self._receivers:
            return replies
        for receiver in self._live(sender):
            try:
                replies.append((receiver, receiver(signal=self, sender=sender, **named)))
            except Exception as exc:
                logger.exception("signal %s: receiver %r raised %r", self.name, receiver, exc)
                replies.append((receiver, exc))
        return replies

    @property
    def receivers(self) -> list[Receiver]:
        return self._live(None)

    def __repr__(self) -> str:
        return f"<Signal: {self.name}>"


before_task_publish = Signal("before_task_publish")
after_task_publish = Signal("after_task_publish")
task_received = Signal("task_received")
task_prerun = Signal("task_prerun")
task_postrun = Signal("task_postrun")
task_success = Signal("task_success")
task_failure = Signal("task_failure")
task_retry = Signal("task_retry")
task_revoked = Signal("task_revoked")
task_rejected = Signal("task_rejected")
task_unknown = Signal("task_unknown")
task_internal_error = Signal("task_internal_error")
celeryd_init = Signal("celeryd_init")
celeryd_after_setup = Signal("celeryd_after_setup")
worker_init = Signal("worker_init")
worker_ready = Signal("worker_ready")
worker_process_init = Signal("worker_process_init")
worker_process_shutdown = Signal("worker_process_shutdown")
worker_shutting_down = Signal("worker_shutting_down")
worker_shutdown = Signal("worker_shutdown")
heartbeat_sent = Signal("heartbeat_sent")
beat_init = Signal("beat_init")
beat_embedded_init = Signal("beat_embedded_init")
setup_logging = Signal("setup_logging")
after_setup_logger = Signal("after_setup_logger")
after_setup_task_logger = Signal("after_setup_task_logger")
import_modules = Signal("import_modules")

__all__ = [name for name, value in dict(globals()).items() if isinstance(value, Signal)] + ["Signal"]
