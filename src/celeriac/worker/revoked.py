"""The revoked ids a worker process honours: loaded from the backend, kept fresh by broadcasts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any


class RevokedIds:
    """A thread-safe set of revoked task ids with expiry."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._ids: dict[str, float] = {}
        self._lock = threading.Lock()

    def load(self, stored: dict[str, dict[str, Any]]) -> None:
        """Take the backend's central list; each id keeps the expiry it was stored with."""
        now = time.time()
        with self._lock:
            for task_id, info in stored.items():
                at = info.get("at") if isinstance(info, dict) else None
                self._ids[task_id] = (float(at) if at else now) + self.ttl

    def add(self, ids: Iterable[str]) -> None:
        until = time.time() + self.ttl
        with self._lock:
            for task_id in ids:
                self._ids[task_id] = until

    def __contains__(self, task_id: object) -> bool:
        if not isinstance(task_id, str):
            return False
        with self._lock:
            until = self._ids.get(task_id)
            if until is None:
                return False
            if until < time.time():
                del self._ids[task_id]
                return False
            return True

    def as_list(self) -> list[str]:
        now = time.time()
        with self._lock:
            return [task_id for task_id, until in self._ids.items() if until >= now]
