"""Streams (events, control) and mailboxes (replies) on the SQLite file, for :class:`SQLiteBroker`.

    celeriac_streams(id, stream, at, item)       a bounded log per stream; the row id is the cursor
    celeriac_mailbox(id, box, item, expires_at)  replies, taken (deleted) by the reader

Readers block on wake-up sockets (``s-<stream>``, ``m-<box>``) that writers notify after commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..sqlite_db import Database
from .wakeup import MultiWaiter, Notifier, ThreadWaiters

_TRIM_EVERY = 500


class SQLiteStreams:
    """Stream and mailbox verbs; the broker supplies ``db``, ``path``, ``notifier``, ``clock``, ``waiters``."""

    db: Database
    path: str
    notifier: Notifier
    clock: Callable[[], float]
    waiters: ThreadWaiters
    _appends: int

    # -- streams and mailboxes --------------------------------------------------------------
    def stream_append(self, stream: str, items: Sequence[bytes], *, maxlen: int, max_age: float) -> None:
        if not items:
            return
        now = self.clock()
        with self.db.write() as conn:
            conn.executemany(
                "INSERT INTO celeriac_streams (stream, at, item) VALUES (?, ?, ?)", [(stream, now, i) for i in items]
            )
            self._appends += len(items)
            if self._appends >= _TRIM_EVERY:
                self._appends = 0
                self._trim(conn, stream, maxlen, now - max_age)
        self.notifier.notify(f"s-{stream}")

    @staticmethod
    def _trim(conn: object, stream: str, maxlen: int, oldest: float) -> None:
        execute = conn.execute  # type: ignore[attr-defined]
        execute("DELETE FROM celeriac_streams WHERE stream = ? AND at < ?", (stream, oldest))
        row = execute(
            "SELECT id FROM celeriac_streams WHERE stream = ? ORDER BY id DESC LIMIT 1 OFFSET ?", (stream, maxlen)
        ).fetchone()
        if row is not None:
            execute("DELETE FROM celeriac_streams WHERE stream = ? AND id <= ?", (stream, row[0]))

    def stream_read(self, stream: str, after: str | None, *, limit: int, timeout: float) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        waiter = self.waiters.get([f"s-{stream}"])
        cursor = int(after) if after else 0
        while True:
            rows = (
                self.db.connection()
                .execute(
                    "SELECT id, item FROM celeriac_streams WHERE stream = ? AND id > ? ORDER BY id LIMIT ?",
                    (stream, cursor, limit),
                )
                .fetchall()
            )
            remaining = deadline - time.monotonic()
            if rows or remaining <= 0:
                return [(str(r[0]), bytes(r[1])) for r in rows]
            waiter.wait(min(remaining, 1.0))

    def stream_tail(self, stream: str) -> str | None:
        row = self.db.connection().execute("SELECT MAX(id) FROM celeriac_streams WHERE stream = ?", (stream,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def mailbox_put(self, box: str, item: bytes, *, ttl: float) -> None:
        now = self.clock()
        with self.db.write() as conn:
            conn.execute("DELETE FROM celeriac_mailbox WHERE expires_at < ?", (now,))
            conn.execute("INSERT INTO celeriac_mailbox (box, item, expires_at) VALUES (?, ?, ?)", (box, item, now + ttl))
        self.notifier.notify(f"m-{box}")

    def mailbox_take(self, box: str, *, timeout: float, limit: int = 1000) -> list[bytes]:
        deadline = time.monotonic() + timeout
        waiter = MultiWaiter(self.path, [f"m-{box}"])
        try:
            while True:
                with self.db.write() as conn:
                    rows = conn.execute(
                        "DELETE FROM celeriac_mailbox WHERE id IN"
                        " (SELECT id FROM celeriac_mailbox WHERE box = ? ORDER BY id LIMIT ?) RETURNING id, item",
                        (box, limit),
                    ).fetchall()
                remaining = deadline - time.monotonic()
                if rows or remaining <= 0:
                    return [bytes(r[1]) for r in sorted(rows)]
                waiter.wait(min(remaining, 1.0))
        finally:
            waiter.close()
