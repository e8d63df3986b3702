"""In-process result backend (``memory://``), for tests, eager mode and thread workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .base import Meta, ResultBackend, may_replace


class _Store:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.results: dict[str, tuple[Meta, float | None]] = {}
        self.revoked: dict[str, tuple[dict[str, Any], float]] = {}
        self.groups: dict[str, list[str]] = {}
        self.chords: dict[str, int] = {}
        self.parts: dict[str, dict[int, Any]] = {}
        self.leases: dict[str, tuple[str, float]] = {}
        self.kv: dict[str, bytes] = {}


_NAMED: dict[str, _Store] = {}
_LOCK = threading.Lock()


class MemoryBackend(ResultBackend):
    """Results kept in this process; ``memory://name`` instances with one name share a store."""

    def __init__(self, url: str = "memory://", *, transport_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        name = url.split("://", 1)[1] if "://" in url else ""
        with _LOCK:
            self.s = _NAMED.setdefault(name, _Store())

    def store_many(self, metas: Sequence[Meta], *, expires: float | None) -> None:
        until = time.time() + expires if expires else None
        with self.s.cond:
            for meta in metas:
                old = self.s.results.get(meta["task_id"])
                if may_replace(old[0] if old else None, meta["status"]):
                    self.s.results[meta["task_id"]] = (dict(meta), until)
            self.s.cond.notify_all()

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Meta]:
        now = time.time()
        with self.s.cond:
            found = {t: self.s.results.get(t) for t in task_ids}
        return {t: dict(v[0]) for t, v in found.items() if v is not None and (v[1] is None or v[1] >= now)}

    def wait(self, task_ids: Sequence[str], timeout: float) -> None:
        with self.s.cond:
            self.s.cond.wait(timeout)

    def forget(self, task_ids: Sequence[str]) -> None:
        with self.s.cond:
            for t in task_ids:
                self.s.results.pop(t, None)

    def revoke(self, task_ids: Sequence[str], *, ttl: float, terminate: bool = False, signal: str | None = None) -> None:
        now = time.time()
        with self.s.cond:
            for t in task_ids:
                self.s.revoked[t] = ({"terminate": terminate, "signal": signal, "at": now}, now + ttl)

    def revoked(self) -> dict[str, dict[str, Any]]:
        now = time.time()
        with self.s.cond:
            return {t: dict(info) for t, (info, until) in self.s.revoked.items() if until >= now}

    def save_group(self, group_id: str, task_ids: Sequence[str], *, expires: float | None) -> None:
        with self.s.cond:
            self.s.groups[group_id] = list(task_ids)

    def restore_group(self, group_id: str) -> list[str] | None:
        with self.s.cond:
            ids = self.s.groups.get(group_id)
            return None if ids is None else list(ids)

    def delete_group(self, group_id: str) -> None:
        with self.s.cond:
            self.s.groups.pop(group_id, None)

    def chord_init(self, group_id: str, size: int, *, expires: float | None) -> None:
        with self.s.cond:
            self.s.chords[group_id] = size
            self.s.parts[group_id] = {}

    def chord_join(self, group_id: str, index: int, task_id: str, item: Any) -> list[Any] | None:
        with self.s.cond:
            parts = self.s.parts.setdefault(group_id, {})
            parts.setdefault(index, item)
            size = self.s.chords.get(group_id)
            if size is None or len(parts) < size:
                return None
            del self.s.chords[group_id]
            done = self.s.parts.pop(group_id)
            return [done[i] for i in sorted(done)]

    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        with self.s.cond:
            holder = self.s.leases.get(name)
            if holder is None or holder[0] == owner or holder[1] < now:
                self.s.leases[name] = (owner, now + ttl)
                return True
            return False

    def release_lease(self, name: str, owner: str) -> None:
        with self.s.cond:
            if self.s.leases.get(name, ("",))[0] == owner:
                del self.s.leases[name]

    def kv_get(self, key: str) -> bytes | None:
        with self.s.cond:
            return self.s.kv.get(key)

    def kv_set(self, key: str, value: bytes) -> None:
        with self.s.cond:
            self.s.kv[key] = value
