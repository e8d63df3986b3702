"""Coalescing result stores and acks: many finished tasks settle in one round trip each.

Order is kept per batch: every result is stored before any of the batch's messages is acked, so a
crash between the two repeats tasks and never loses one. A batch is flushed at once when the slot
has nothing else to run (no added latency when the queue is shallow), when it is large, or by a
background thread when its oldest entry is a few milliseconds old (a long task never delays the
results of the quick ones before it). A slot loop that flushes for itself wakes that thread only
when it is about to be busy with entries still pending (``kick``), so a worker that settles each
task at once never pays for waking it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app.base import Celery
    from ..brokers.base import Delivery

logger = logging.getLogger("celeriac.worker")

MAX_DELAY = 0.01
MAX_BATCH = 256


class Settler:
    """Collects (result, ack) pairs and writes them in batches."""

    def __init__(self, app: Celery, max_delay: float = MAX_DELAY, max_batch: int = MAX_BATCH,
                 wake_on_add: bool = True) -> None:
        self.app = app
        self.max_delay = max_delay
        self.max_batch = max_batch
        self.wake_on_add = wake_on_add
        self._waiting = False
        self._metas: list[dict[str, Any]] = []
        self._acks: list[Delivery] = []
        self._oldest = 0.0
        self._cond = threading.Condition()
        self._flush_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="celeriac-settler", daemon=True)
        self._thread.start()

    def store(self, meta: dict[str, Any]) -> None:
        self._add(meta, None)

    def ack(self, delivery: Delivery) -> None:
        self._add(None, delivery)

    def _add(self, meta: dict[str, Any] | None, delivery: Delivery | None) -> None:
        with self._cond:
            if not self._metas and not self._acks:
                self._oldest = time.monotonic()
                if self.wake_on_add:
                    self._cond.notify()
            if meta is not None:
                self._metas.append(meta)
            if delivery is not None:
                self._acks.append(delivery)
            full = len(self._metas) + len(self._acks) >= self.max_batch
        if full:
            self.flush()

    def kick(self) -> None:
        """The caller is about to be busy: have the thread write what is pending within ``max_delay``."""
        if self._waiting and (self._metas or self._acks):
            with self._cond:
                self._cond.notify()

    def flush(self) -> None:
        """Write everything pending now (stores first, then acks); on failure keep it for the next try."""
        with self._flush_lock:
            with self._cond:
                metas, acks = self._metas, self._acks
                self._metas, self._acks = [], []
            try:
                self._write(metas, acks)
            except BaseException:
                with self._cond:
                    self._metas[:0], self._acks[:0] = metas, acks
                    self._oldest = time.monotonic()
                raise

    def _write(self, metas: Sequence[dict[str, Any]], acks: Sequence[Delivery]) -> None:
        if metas or acks:
            self.app.broker.settle(acks, self.app.backend, metas, self.app.result_expires)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._metas and not self._acks and not self._closed:
                    self._waiting = True
                    self._cond.wait()
                    self._waiting = False
                if self._closed and not self._metas and not self._acks:
                    return
                wait = self._oldest + self.max_delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                self.flush()
            except Exception:  # the broker is away: keep what was not written and try again
                logger.exception("settling a batch failed; the messages will be redelivered")
                time.sleep(0.5)

    def close(self) -> None:
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify()
