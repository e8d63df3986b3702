"""Result backend on the SQLite file the embedded broker uses.

Layout::

    celeriac_results(task_id PK, status, meta, expires_at, updated_at)
    celeriac_revoked(task_id PK, info, expires_at)
    celeriac_groups(group_id PK, task_ids, expires_at)
    celeriac_chords(group_id PK, size, expires_at)  +  celeriac_chord_parts(group_id, idx, task_id, item)
    celeriac_leases(name PK, owner, expires_at)      celeriac_kv(key PK, value)

A ready state is final: the upsert's ``WHERE`` refuses to replace SUCCESS/FAILURE/REVOKED.
Waiters block on a wake-up socket that every store notifies (see ``brokers/wakeup.py``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..brokers.wakeup import Notifier, ThreadWaiters
from ..serializers import json_dumps, json_loads
from ..sqlite_db import Database, path_from_url
from .base import Meta, ResultBackend

SCHEMA = """
CREATE TABLE IF NOT EXISTS celeriac_results (
    task_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    meta BLOB NOT NULL,
    expires_at REAL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS celeriac_revoked (task_id TEXT PRIMARY KEY, info BLOB NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS celeriac_groups (group_id TEXT PRIMARY KEY, task_ids BLOB NOT NULL, expires_at REAL);
CREATE TABLE IF NOT EXISTS celeriac_chords (group_id TEXT PRIMARY KEY, size INTEGER NOT NULL, expires_at REAL);
CREATE TABLE IF NOT EXISTS celeriac_chord_parts (
    group_id TEXT NOT NULL, idx INTEGER NOT NULL, task_id TEXT NOT NULL, item BLOB NOT NULL,
    PRIMARY KEY (group_id, idx)
);
CREATE TABLE IF NOT EXISTS celeriac_leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS celeriac_kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)
"""

_READY = "('SUCCESS', 'FAILURE', 'REVOKED')"
_CHANNEL = "results"


class SQLiteBackend(ResultBackend):
    """``sqlite:///path`` result backend."""

    def __init__(self, url: str, *, transport_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.path = path_from_url(url)
        self.db = Database(self.path, SCHEMA)
        self.notifier = Notifier(self.path)
        self.waiters = ThreadWaiters(self.path)
        self._stores = 0

    # -- task results -----------------------------------------------------------------------
    def store_many(self, metas: Sequence[Meta], *, expires: float | None) -> None:
        with self.db.write() as conn:
            self.store_in(conn, metas, expires)
        self.notify()

    def store_in(self, conn: sqlite3.Connection, metas: Sequence[Meta], expires: float | None) -> None:
        """Write metas inside a transaction the caller holds (the broker settles in the same one)."""
        now = time.time()
        until = now + expires if expires else None
        rows = [(m["task_id"], m["status"], json_dumps(m), until, now) for m in metas]
        conn.executemany(
            "INSERT INTO celeriac_results (task_id, status, meta, expires_at, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(task_id) DO UPDATE SET status = excluded.status, meta = excluded.meta,"
            " expires_at = excluded.expires_at, updated_at = excluded.updated_at"
            f" WHERE celeriac_results.status NOT IN {_READY}",
            rows,
        )
        self._stores += len(rows)
        if self._stores >= 1000:
            self._stores = 0
            conn.execute("DELETE FROM celeriac_results WHERE expires_at < ?", (now,))

    def notify(self) -> None:
        self.notifier.notify(_CHANNEL)

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Meta]:
        if not task_ids:
            return {}
        marks = ",".join("?" * len(task_ids))
        rows = (
            self.db.connection()
            .execute(
                f"SELECT task_id, meta FROM celeriac_results WHERE task_id IN ({marks})"
                " AND (expires_at IS NULL OR expires_at >= ?)",
                (*task_ids, time.time()),
            )
            .fetchall()
        )
        return {r[0]: json_loads(bytes(r[1])) for r in rows}

    def wait(self, task_ids: Sequence[str], timeout: float) -> None:
        """Sleep until a store is notified, at most ``timeout``; the caller reads the results again after.

        A thread's first call only binds its socket and returns: a store committed before the socket
        existed sent its wake-up to nobody, and only the caller's next read can see it.
        """
        if not self.waiters.has([_CHANNEL]):
            self.waiters.get([_CHANNEL])
            return
        self.waiters.get([_CHANNEL]).wait(timeout)

    def forget(self, task_ids: Sequence[str]) -> None:
        with self.db.write() as conn:
            conn.executemany("DELETE FROM celeriac_results WHERE task_id = ?", [(t,) for t in task_ids])

    # -- revokes ----------------------------------------------------------------------------
    def revoke(self, task_ids: Sequence[str], *, ttl: float, terminate: bool = False, signal: str | None = None) -> None:
        now = time.time()
        info = orjson.dumps({"terminate": terminate, "signal": signal, "at": now})
        with self.db.write() as conn:
            conn.execute("DELETE FROM celeriac_revoked WHERE expires_at < ?", (now,))
            conn.executemany(
                "INSERT OR REPLACE INTO celeriac_revoked (task_id, info, expires_at) VALUES (?, ?, ?)",
                [(t, info, now + ttl) for t in task_ids],
            )

    def revoked(self) -> dict[str, dict[str, Any]]:
        rows = (
            self.db.connection()
            .execute("SELECT task_id, info FROM celeriac_revoked WHERE expires_at >= ?", (time.time(),))
            .fetchall()
        )
        return {r[0]: orjson.loads(r[1]) for r in rows}

    # -- groups and chords ------------------------------------------------------------------
    def save_group(self, group_id: str, task_ids: Sequence[str], *, expires: float | None) -> None:
        until = time.time() + expires if expires else None
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO celeriac_groups (group_id, task_ids, expires_at) VALUES (?, ?, ?)",
                (group_id, orjson.dumps(list(task_ids)), until),
            )

    def restore_group(self, group_id: str) -> list[str] | None:
        row = (
            self.db.connection()
            .execute("SELECT task_ids FROM celeriac_groups WHERE group_id = ?", (group_id,))
            .fetchone()
        )
        return None if row is None else list(orjson.loads(row[0]))

    def delete_group(self, group_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM celeriac_groups WHERE group_id = ?", (group_id,))

    def chord_init(self, group_id: str, size: int, *, expires: float | None) -> None:
        until = time.time() + expires if expires else None
        with self.db.write() as conn:
            conn.execute("DELETE FROM celeriac_chord_parts WHERE group_id = ?", (group_id,))
            conn.execute(
                "INSERT OR REPLACE INTO celeriac_chords (group_id, size, expires_at) VALUES (?, ?, ?)",
                (group_id, size, until),
            )

    def chord_join(self, group_id: str, index: int, task_id: str, item: Any) -> list[Any] | None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO celeriac_chord_parts (group_id, idx, task_id, item) VALUES (?, ?, ?, ?)",
                (group_id, index, task_id, json_dumps(item)),
            )
            done = conn.execute(
                "DELETE FROM celeriac_chords WHERE group_id = ?"
                " AND size <= (SELECT COUNT(*) FROM celeriac_chord_parts WHERE group_id = ?) RETURNING size",
                (group_id, group_id),
            ).fetchone()
            if done is None:
                return None
            rows = conn.execute(
                "DELETE FROM celeriac_chord_parts WHERE group_id = ? RETURNING idx, item", (group_id,)
            ).fetchall()
        return [json_loads(bytes(item)) for _, item in sorted(rows)]

    # -- leases and kv ----------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        with self.db.write() as conn:
            row = conn.execute(
                "INSERT INTO celeriac_leases (name, owner, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
                " WHERE celeriac_leases.owner = excluded.owner OR celeriac_leases.expires_at < ?"
                " RETURNING owner",
                (name, owner, now + ttl, now),
            ).fetchone()
        return row is not None and row[0] == owner

    def release_lease(self, name: str, owner: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM celeriac_leases WHERE name = ? AND owner = ?", (name, owner))

    def kv_get(self, key: str) -> bytes | None:
        row = self.db.connection().execute("SELECT value FROM celeriac_kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def kv_set(self, key: str, value: bytes) -> None:
        with self.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO celeriac_kv (key, value) VALUES (?, ?)", (key, value))

    def after_fork(self) -> None:
        """A forked child opens its own connections and wake-up sockets lazily."""
        self.db.abandon_inherited()
        self.waiters.forget()

    def close(self) -> None:
        self.waiters.forget()
        self.db.close()
