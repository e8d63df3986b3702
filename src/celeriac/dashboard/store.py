"""The history store's write side: fold batches of events into rows, one transaction per batch."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from . import model, schema
from .db import Database, open_database

_PLACE = ", ".join("?" for _ in schema.TASK_COLUMNS)
_UPSERT = (
    f"INSERT INTO tasks ({', '.join(schema.TASK_COLUMNS)}) VALUES ({_PLACE}) ON CONFLICT (uuid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in schema.TASK_COLUMNS[1:])
)
_WORKER_COLUMNS = ("hostname", "status", "freq", "last_seen", "first_seen", "active", "processed", "loadavg",
                   "sw_ident", "sw_ver", "sw_sys", "info")
_WORKER_UPSERT = (
    f"INSERT INTO workers ({', '.join(_WORKER_COLUMNS)}) VALUES ({', '.join('?' for _ in _WORKER_COLUMNS)}) "
    "ON CONFLICT (hostname) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _WORKER_COLUMNS[1:] if c != "first_seen")
)
_LINK = ("INSERT INTO tasks (uuid, name, state, queue, args, kwargs, retry_of, created, updated, state_ts) "
         "VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (uuid) DO UPDATE SET retry_of = excluded.retry_of")
_WORKER_EXTRA = {"hostname", "type", "freq", "timestamp", "active", "processed", "loadavg", "sw_ident", "sw_ver",
                 "sw_sys", "utcoffset", "clock", "_cursor"}


class Store:
    """Tasks, timelines, workers and queue samples, in SQLite or PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.db: Database = open_database(url)
        self.searchable = schema.create(self.db)
        self.version = 0

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        return self.db.scalar("SELECT value FROM meta WHERE key = ?", (key,))

    def set_meta(self, key: str, value: str, conn: Any = None) -> None:
        sql = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        if conn is None:
            self.db.execute(sql, (key, value))
        else:
            self.db.run(conn, sql, (key, value))

    def cookie_secret(self) -> str:
        """The session-signing secret, made once and kept so sessions survive a restart."""
        secret = self.get_meta("cookie_secret")
        if secret is None:
            secret = secrets.token_urlsafe(32)
            self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                            ("cookie_secret", secret))
            secret = self.get_meta("cookie_secret") or secret
        return secret

    # -- events -----------------------------------------------------------------------------
    def ingest(self, events: Sequence[dict[str, Any]], cursor: str | None = None) -> dict[str, dict[str, Any]]:
        """Apply a batch of events and move the cursor in the same transaction; return the rows touched."""
        task_events = [e for e in events if str(e.get("type", "")).startswith("task-") and e.get("uuid")]
        worker_events = [e for e in events if str(e.get("type", "")).startswith("worker-") and e.get("hostname")]
        rows = self._fold(task_events)
        with self.db.transaction() as conn:
            self.db.executemany(conn, _UPSERT, [tuple(r.get(c) for c in schema.TASK_COLUMNS) for r in rows.values()])
            self.db.executemany(conn, "INSERT INTO task_events (uuid, ts, type, hostname, data) VALUES (?, ?, ?, ?, ?)",
                                [_timeline_row(e) for e in task_events])
            self._write_workers(conn, worker_events)
            self._index_search(conn, rows.values())
            if cursor is not None:
                self.set_meta("cursor", cursor, conn)
        self.version += 1
        return rows

    def _fold(self, events: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(e["uuid"] for e in events))
        rows = {r["uuid"]: r for r in self.task_rows(ids)}
        for event in sorted(events, key=lambda e: e.get("timestamp") or 0.0):
            row = rows.get(event["uuid"])
            if row is None:
                row = rows[event["uuid"]] = model.new_row(event["uuid"], float(event.get("timestamp") or time.time()))
            model.apply(row, event)
        return rows

    def task_rows(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            found += self.db.query(f"SELECT {', '.join(schema.TASK_COLUMNS)} FROM tasks WHERE uuid IN ({marks})", chunk)  # noqa: S608
        return found

    def _index_search(self, conn: Any, rows: Iterable[dict[str, Any]]) -> None:
        if not self.searchable or self.db.dialect != "sqlite":
            return
        ids = [r["uuid"] for r in rows if r.get("args") or r.get("kwargs") or r.get("result") or r.get("exception")]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            where = f"WHERE uuid IN ({marks})"
            self.db.run(conn, f"DELETE FROM task_search WHERE rowid IN (SELECT rowid FROM tasks {where})", chunk)  # noqa: S608
            self.db.run(conn, "INSERT INTO task_search (rowid, body) SELECT rowid, coalesce(args,'') || ' ' || "  # noqa: S608
                        f"coalesce(kwargs,'') || ' ' || coalesce(result,'') || ' ' || coalesce(exception,'') FROM tasks {where}", chunk)

    def _write_workers(self, conn: Any, events: Sequence[dict[str, Any]]) -> None:
        latest: dict[str, dict[str, Any]] = {}
        for event in sorted(events, key=lambda e: e.get("timestamp") or 0.0):
            latest[event["hostname"]] = event
        self.db.executemany(conn, _WORKER_UPSERT, [_worker_row(e) for e in latest.values()])

    def save_tasks(self, rows: Sequence[dict[str, Any]]) -> None:
        with self.db.transaction() as conn:
            self.db.executemany(conn, _UPSERT, [tuple(r.get(c) for c in schema.TASK_COLUMNS) for r in rows])
        self.version += 1

    def link_retry(self, new_id: str, original: dict[str, Any]) -> None:
        """Record that ``new_id`` re-sends ``original`` (whether or not its ``task-sent`` arrived yet)."""
        now = time.time()
        self.db.execute(_LINK, (new_id, original.get("name"), original.get("queue"), original.get("args"),
                                original.get("kwargs"), original["uuid"], now, now))
        self.version += 1

    # -- broker samples and retention -------------------------------------------------------------
    def add_queue_samples(self, ts: float, stats: Sequence[Any]) -> None:
        with self.db.transaction() as conn:
            self.db.executemany(conn, "INSERT INTO queue_samples VALUES (?, ?, ?, ?, ?, ?, ?)",
                                [(ts, s.name, s.ready, s.delayed, s.in_flight, s.dead, s.oldest_age) for s in stats])

    def prune(self, *, max_tasks: int, max_age: float, now: float | None = None) -> None:
        """Drop history older than ``max_age`` seconds and beyond the newest ``max_tasks`` tasks."""
        cutoff = (now or time.time()) - max_age
        edge = self.db.scalar("SELECT created FROM tasks ORDER BY created DESC LIMIT 1 OFFSET ?", (max_tasks,))
        if edge is not None:
            cutoff = max(cutoff, float(edge))
        with self.db.transaction() as conn:
            if self.searchable and self.db.dialect == "sqlite":
                self.db.run(conn, "DELETE FROM task_search WHERE rowid IN (SELECT rowid FROM tasks WHERE created <= ?)", (cutoff,))
            self.db.run(conn, "DELETE FROM tasks WHERE created <= ?", (cutoff,))
            self.db.run(conn, "DELETE FROM task_events WHERE ts <= ?", (cutoff,))
            self.db.run(conn, "DELETE FROM queue_samples WHERE ts <= ?", (cutoff,))


def _timeline_row(event: dict[str, Any]) -> tuple[Any, ...]:
    data = {k: v for k, v in event.items() if k not in ("uuid", "type", "hostname", "timestamp", "_cursor")}
    return (event["uuid"], float(event.get("timestamp") or 0.0), event["type"], event.get("hostname"),
            orjson.dumps(data, default=str).decode())


def _worker_row(event: dict[str, Any]) -> tuple[Any, ...]:
    status = "offline" if event["type"] == "worker-offline" else "online"
    ts = float(event.get("timestamp") or time.time())
    info = {k: v for k, v in event.items() if k not in _WORKER_EXTRA}
    return (event["hostname"], status, float(event.get("freq") or 2.0), ts, ts, event.get("active"),
            event.get("processed"), orjson.dumps(event.get("loadavg")).decode(), event.get("sw_ident"),
            event.get("sw_ver"), event.get("sw_sys"), orjson.dumps(info, default=str).decode())

