"""Streams (events, control) and mailboxes (replies) on the SQLite file, for :class:`SQLiteBroker`.

    celeriac_streams(id, stream, at, item)       a bounded log per stream; the row id is the cursor
    celeriac_mailbox(id, box, item, expires_at)  replies, taken (deleted) by the reader

Readers block on wake-up sockets (``s-<stream>``, ``m-<box>``) that writers notify after commit.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Sequence

from ..sqlite_db import Database
from .wakeup import Notifier, Waiter

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


class MultiWaiter:
    """Waits on several channels at once (one socket each, selected together)."""

    def __init__(self, path: str, channels: list[str]) -> None:
        self.channels = channels
        self.waiters = [Waiter(path, channel) for channel in channels]

    def wait(self, timeout: float) -> bool:
        socks = [w.sock for w in self.waiters]
        ready, _, _ = select.select(socks, [], [], max(0.0, timeout))
        woke = False
        for waiter in self.waiters:
            woke = waiter.drain() or woke
        return bool(ready) or woke

    def close(self) -> None:
        for waiter in self.waiters:
            waiter.close()


class ThreadWaiters:
    """Each thread's waiters, by the channels they wait on.

    A wake-up datagram wakes one socket. Threads that shared a socket could use up each other's
    wake-ups: one thread drains the datagram meant for both while the other is between its read and
    its wait, and that one then sleeps until its re-check although a message waits for it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.channels: set[str] = set()  # every channel some thread waits on, for wakeup()
        self._local = threading.local()

    def get(self, channels: list[str]) -> MultiWaiter:
        """This thread's waiter for ``channels``; its sockets exist before the caller's first read."""
        mine: dict[str, MultiWaiter] | None = getattr(self._local, "waiters", None)
        if mine is None or self._local.pid != os.getpid():  # first use here, or a forked child
            mine = self._local.waiters = {}
            self._local.pid = os.getpid()
        key = ",".join(channels)
        waiter = mine.get(key)
        if waiter is None:
            waiter = mine[key] = MultiWaiter(self.path, channels)
            self.channels.update(channels)
        return waiter

    def forget(self) -> None:
        """Close this thread's sockets now; other threads' close as they drop their waiters."""
        mine: dict[str, MultiWaiter] = getattr(self._local, "waiters", None) or {}
        for waiter in mine.values():
            waiter.close()  # a child closes its copy of the socket; only the owner removes the file
        self._local = threading.local()
