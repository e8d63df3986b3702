"""The embedded SQLite broker: no server, real durability, safe for many worker processes.

Layout (one file, shared with the SQLite result backend)::

    celeriac_messages(id, queue, message_id, priority, payload, state, visible_at, consumer,
                      delivery_count, enqueued_at)
        state 0 = ready, 1 = delayed until visible_at, 2 = leased to consumer until visible_at
    celeriac_dead(id, queue, message_id, payload, reason, failed_at, delivery_count)
    celeriac_streams(id, stream, at, item)            bounded logs: events, control
    celeriac_mailbox(id, box, item, expires_at)       replies

A claim is one ``UPDATE ... RETURNING`` inside ``BEGIN IMMEDIATE``, so two processes never claim
the same row. Due delayed messages and expired leases turn ready in the same transaction. Waiting
consumers block on a wake-up socket (see :mod:`.wakeup`) instead of polling.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..sqlite_db import Database, path_from_url
from .base import Broker, DeadLetter, Delivery, Outgoing, QueueStats
from .sqlite_streams import SQLiteStreams
from .wakeup import Notifier, ThreadWaiters

READY, DELAYED, LEASED = 0, 1, 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS celeriac_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL,
    state INTEGER NOT NULL,
    visible_at REAL NOT NULL,
    consumer TEXT,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    enqueued_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS celeriac_messages_ready ON celeriac_messages (queue, state, priority DESC, id);
CREATE INDEX IF NOT EXISTS celeriac_messages_due ON celeriac_messages (state, visible_at);
CREATE INDEX IF NOT EXISTS celeriac_messages_consumer ON celeriac_messages (consumer);
CREATE TABLE IF NOT EXISTS celeriac_dead (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    failed_at REAL NOT NULL,
    delivery_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS celeriac_streams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    at REAL NOT NULL,
    item BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS celeriac_streams_by_stream ON celeriac_streams (stream, id);
CREATE TABLE IF NOT EXISTS celeriac_mailbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    box TEXT NOT NULL,
    item BLOB NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS celeriac_mailbox_by_box ON celeriac_mailbox (box, id)
"""

class SQLiteBroker(SQLiteStreams, Broker):
    """Broker on a local SQLite file (``sqlite:///path``)."""

    transport = "sqlite"

    def __init__(self, url: str, *, transport_options: Mapping[str, Any] | None = None) -> None:
        options = dict(transport_options or {})
        self.url = url
        self.path = path_from_url(url)
        self.db = Database(self.path, SCHEMA)
        self.default_lease = float(options.get("visibility_timeout", 30.0))
        self.notifier = Notifier(self.path)
        self.waiters = ThreadWaiters(self.path)
        self._appends = 0
        self.clock: Callable[[], float] = options.get("clock", time.time)

    # -- producing ------------------------------------------------------------------------
    def publish_many(self, messages: Sequence[Outgoing]) -> None:
        with self.db.write() as conn:
            self._insert(conn, messages)
        self._wake(messages)

    def _wake(self, messages: Sequence[Outgoing]) -> None:
        for queue in {m.queue for m in messages}:
            self.notifier.notify(f"q-{queue}")

    def _insert(self, conn: Any, messages: Sequence[Outgoing]) -> None:
        now = self.clock()
        rows = [
            (
                m.queue,
                m.message_id,
                m.priority,
                m.payload,
                DELAYED if m.eta is not None and m.eta > now else READY,
                m.eta if m.eta is not None and m.eta > now else now,
                now,
            )
            for m in messages
        ]
        conn.executemany(
            "INSERT INTO celeriac_messages (queue, message_id, priority, payload, state, visible_at, enqueued_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _same_file(self, backend: Any) -> bool:
        if getattr(backend, "path", None) != self.path or not hasattr(backend, "store_in"):
            return False
        backend.db.connection()  # its tables exist once it has opened the file
        return True

    def publish_recorded(self, messages: Sequence[Outgoing], backend: Any, metas: Sequence[dict[str, Any]],
                         expires: float | None) -> None:
        """Sent-records and messages in one transaction when the backend is this same file."""
        if not self._same_file(backend):
            return super().publish_recorded(messages, backend, metas, expires)
        with self._with_results(backend, metas, expires) as conn:
            self._insert(conn, messages)
        self._wake(messages)

    def settle(self, deliveries: Sequence[Delivery], backend: Any, metas: Sequence[dict[str, Any]],
               expires: float | None) -> None:
        """Results and acks in one transaction when the backend is this same file."""
        if not self._same_file(backend):
            return super().settle(deliveries, backend, metas, expires)
        with self._with_results(backend, metas, expires) as conn:
            self._delete(conn, deliveries)

    @contextlib.contextmanager
    def _with_results(self, backend: Any, metas: Sequence[dict[str, Any]], expires: float | None) -> Iterator[Any]:
        """One transaction: the backend's rows first, then ours; waiters on results woken after commit."""
        with self.db.write() as conn:
            if metas:
                backend.store_in(conn, metas, expires)
            yield conn
        if metas:
            backend.notify()

    # -- consuming ------------------------------------------------------------------------
    def fetch(
        self, queues: Sequence[str], limit: int, *, consumer: str, timeout: float, lease: float | None = None
    ) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        waiter = self.waiters.get([f"q-{q}" for q in queues])  # bound before the first read: no wake-up missed
        while True:
            claimed = self._claim(queues, limit, consumer, lease or self.default_lease)
            remaining = deadline - time.monotonic()
            if claimed or remaining <= 0:
                return claimed
            waiter.wait(min(remaining, self._next_due_in(queues)))

    def _next_due_in(self, queues: Sequence[str]) -> float:
        marks = ",".join("?" * len(queues))
        row = (
            self.db.connection()
            .execute(
                f"SELECT MIN(visible_at) FROM celeriac_messages WHERE state != {READY} AND queue IN ({marks})",
                list(queues),
            )
            .fetchone()
        )
        if row is None or row[0] is None:
            return 1.0
        return min(1.0, max(0.001, row[0] - self.clock()))

    def _claim(self, queues: Sequence[str], limit: int, consumer: str, lease: float) -> list[Delivery]:
        now = self.clock()
        claimed: list[Delivery] = []
        with self.db.write() as conn:
            conn.execute(
                f"UPDATE celeriac_messages SET state = {READY}, consumer = NULL"
                f" WHERE state IN ({DELAYED}, {LEASED}) AND visible_at <= ?",
                (now,),
            )
            for queue in queues:
                if len(claimed) >= limit:
                    break
                rows = conn.execute(
                    f"UPDATE celeriac_messages SET state = {LEASED}, consumer = ?, visible_at = ?,"
                    " delivery_count = delivery_count + 1"
                    " WHERE id IN (SELECT id FROM celeriac_messages"
                    f"   WHERE queue = ? AND state = {READY} ORDER BY priority DESC, id LIMIT ?)"
                    " RETURNING id, queue, message_id, payload, delivery_count, priority",
                    (consumer, now + lease, queue, limit - len(claimed)),
                ).fetchall()
                rows.sort(key=lambda r: (-r[5], r[0]))
                claimed.extend(Delivery(r[1], bytes(r[3]), r[2], str(r[0]), r[4], r[5]) for r in rows)
        return claimed

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        with self.db.write() as conn:
            self._delete(conn, deliveries)

    @staticmethod
    def _delete(conn: Any, deliveries: Sequence[Delivery]) -> None:
        conn.executemany("DELETE FROM celeriac_messages WHERE id = ?", [(int(d.tag),) for d in deliveries])

    def release(self, deliveries: Sequence[Delivery], *, delay: float = 0.0) -> None:
        if not deliveries:
            return
        now = self.clock()
        state = DELAYED if delay > 0 else READY
        with self.db.write() as conn:
            conn.executemany(
                "UPDATE celeriac_messages SET state = ?, consumer = NULL, visible_at = ?,"
                " delivery_count = MAX(delivery_count - 1, 0) WHERE id = ?",
                [(state, now + delay, int(d.tag)) for d in deliveries],
            )
        for queue in {d.queue for d in deliveries}:
            self.notifier.notify(f"q-{queue}")

    def renew(self, deliveries: Sequence[Delivery], *, lease: float | None = None) -> None:
        if not deliveries:
            return
        until = self.clock() + (lease or self.default_lease)
        with self.db.write() as conn:
            conn.executemany(
                f"UPDATE celeriac_messages SET visible_at = ? WHERE id = ? AND state = {LEASED}",
                [(until, int(d.tag)) for d in deliveries],
            )

    def reclaim(self, consumer: str) -> int:
        with self.db.write() as conn:
            rows = conn.execute(
                f"UPDATE celeriac_messages SET state = {READY}, consumer = NULL, visible_at = ?"
                f" WHERE consumer = ? AND state = {LEASED} RETURNING queue",
                (self.clock(), consumer),
            ).fetchall()
        for queue in {r[0] for r in rows}:
            self.notifier.notify(f"q-{queue}")
        return len(rows)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO celeriac_dead (queue, message_id, payload, reason, failed_at, delivery_count)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (delivery.queue, delivery.message_id, delivery.payload, reason, self.clock(), delivery.delivery_count),
            )
            conn.execute("DELETE FROM celeriac_messages WHERE id = ?", (int(delivery.tag),))

    def wakeup(self) -> None:
        for channel in list(self.waiters.channels):
            self.notifier.notify(channel)

    # -- administration ---------------------------------------------------------------------
    def stats(self, queues: Sequence[str] | None = None) -> list[QueueStats]:
        conn = self.db.connection()
        now = self.clock()
        rows = conn.execute(
            "SELECT queue,"
            f" SUM(state = {READY} OR (state = {DELAYED} AND visible_at <= :now)),"
            f" SUM(state = {DELAYED} AND visible_at > :now),"
            f" SUM(state = {LEASED}),"
            f" MIN(CASE WHEN state = {READY} THEN enqueued_at END)"
            " FROM celeriac_messages GROUP BY queue",
            {"now": now},
        ).fetchall()
        dead = dict(conn.execute("SELECT queue, COUNT(*) FROM celeriac_dead GROUP BY queue").fetchall())
        found = {r[0]: r for r in rows}
        names = list(queues) if queues is not None else sorted(set(found) | set(dead))
        result = []
        for name in names:
            row = found.get(name, (name, 0, 0, 0, None))
            oldest = None if row[4] is None else max(0.0, now - row[4])
            result.append(QueueStats(name, int(row[1] or 0), int(row[2] or 0), int(row[3] or 0), int(dead.get(name, 0)), oldest))
        return result

    def purge(self, queue: str) -> int:
        with self.db.write() as conn:
            cursor = conn.execute(f"DELETE FROM celeriac_messages WHERE queue = ? AND state != {LEASED}", (queue,))
            return cursor.rowcount

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        sql = "SELECT id, queue, message_id, payload, reason, failed_at, delivery_count FROM celeriac_dead"
        params: tuple[object, ...] = ()
        if queue is not None:
            sql += " WHERE queue = ?"
            params = (queue,)
        rows = self.db.connection().execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        return [DeadLetter(str(r[0]), r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]

    def requeue_dead(self, ids: Sequence[str]) -> int:
        now = self.clock()
        moved = 0
        queues: set[str] = set()
        with self.db.write() as conn:
            for dead_id in ids:
                if not str(dead_id).isdigit():
                    continue  # not one of ours: nothing to requeue
                row = conn.execute(
                    "DELETE FROM celeriac_dead WHERE id = ? RETURNING queue, message_id, payload", (int(dead_id),)
                ).fetchone()
                if row is None:
                    continue
                conn.execute(
                    "INSERT INTO celeriac_messages (queue, message_id, priority, payload, state, visible_at, enqueued_at)"
                    f" VALUES (?, ?, 0, ?, {READY}, ?, ?)",
                    (row[0], row[1], row[2], now, now),
                )
                moved += 1
                queues.add(row[0])
        for queue in queues:
            self.notifier.notify(f"q-{queue}")
        return moved

    # -- lifecycle --------------------------------------------------------------------------
    def after_fork(self) -> None:
        """A forked child opens its own connections and wake-up sockets lazily."""
        self.db.abandon_inherited()
        self.waiters.forget()

    def close(self) -> None:
        self.waiters.forget()
        self.db.close()
