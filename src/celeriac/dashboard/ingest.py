"""The background ingester: follows the event stream into the store, and polls broker and backend.

Events are read in batches and written in one transaction together with the stream cursor, so a
restarted dashboard continues exactly where it stopped. Tasks whose events were missed (events
disabled, stream trimmed) are completed from the result backend.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..events import EventReceiver
from . import model
from .metrics import Counters
from .store import Store

if TYPE_CHECKING:
    from ..app.base import Celery

logger = logging.getLogger("celeriac.dashboard")


class Ingester:
    """Owns the thread; ``step()`` does one round and is what tests call directly."""

    def __init__(self, app: Celery, store: Store, *, batch: int = 2000, max_tasks: int = 1_000_000,
                 max_age: float = 7 * 86400.0, sample_every: float = 5.0) -> None:
        self.app, self.store = app, store
        self.batch, self.max_tasks, self.max_age, self.sample_every = batch, max_tasks, max_age, sample_every
        self.receiver = EventReceiver(app, cursor=store.get_meta("cursor"))
        self.counters = Counters()
        self.listeners: list[Callable[[int], None]] = []
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_sample = self._last_backend = self._last_prune = 0.0

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="celeriac-dashboard-ingest", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step(timeout=0.5)
            except Exception:
                logger.exception("dashboard ingest failed; retrying")
                self._stop.wait(1.0)

    def step(self, timeout: float = 0.0) -> int:
        """Read one batch of events, store it, and do any periodic chores that are due."""
        events = self.receiver.read(limit=self.batch, timeout=timeout)
        if events:
            rows = self.store.ingest(events, cursor=self.receiver.cursor)
            self.counters.count(events, {uuid: row.get("name") for uuid, row in rows.items()})
        now = time.time()
        if now - self._last_sample >= self.sample_every:
            self._last_sample = now
            self.sample_queues(now)
        if now - self._last_backend >= 2.0:
            self._last_backend = now
            self.reconcile(now)
        if now - self._last_prune >= 600.0:
            self._last_prune = now
            self.store.prune(max_tasks=self.max_tasks, max_age=self.max_age, now=now)
        if events:
            self._notify()
        return len(events)

    def drain(self) -> int:
        """Ingest everything already in the stream (tests and start-up)."""
        total = 0
        while (n := self.step()) > 0:
            total += n
        return total

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener(self.store.version)

    def sample_queues(self, now: float) -> None:
        try:
            stats = self.app.broker.stats(queue_names(self.app))
        except Exception:
            logger.warning("broker stats unavailable", exc_info=True)
            return
        self.store.add_queue_samples(now, stats)

    def reconcile(self, now: float) -> None:
        """Finish recent unfinished rows from the result backend (covers lost or disabled events)."""
        rows = self.store.db.query("SELECT * FROM tasks WHERE state IN ('PENDING', 'RECEIVED', 'STARTED', 'RETRY') "
                                   "AND created >= ? ORDER BY created DESC LIMIT 500", (now - 86400,))
        if not rows or not self.app.backend.enabled:
            return
        try:
            metas = self.app.backend.get_many([r["uuid"] for r in rows])
        except Exception:
            logger.warning("result backend unavailable", exc_info=True)
            return
        changed = [r for r in rows if r["uuid"] in metas and model.from_backend(r, metas[r["uuid"]], now)]
        if changed:
            self.store.save_tasks([{k: v for k, v in r.items() if k != "id"} for r in changed])
            self._notify()


def queue_names(app: Celery) -> list[str]:
    """The default queue and every configured queue."""
    names = [app.conf.task_default_queue]
    for queue in app.conf.get("task_queues") or ():
        name: Any = getattr(queue, "name", queue)
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names
