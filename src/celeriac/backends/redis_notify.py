"""One pub/sub listener per result backend instance, so ``wait`` sleeps until Redis says a result changed.

Waiters register the channels they care about (``watch``), which subscribes them and returns once
Redis has confirmed the subscription; a background thread reads the connection and bumps a
version per channel on each message. A reconnect bumps a global epoch so that every waiter
re-checks, since notifications sent while the connection was down are lost.

Only the listener thread reads the connection; other threads only send SUBSCRIBE/UNSUBSCRIBE,
under a lock, so the connection is never read by two threads at once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from ..brokers.redis_connection import CONNECTION_ERRORS, Outage, logger

Snapshot = tuple[int, dict[str, int]]


class Subscriber:
    """Channel versions, kept current by a daemon thread reading one pub/sub connection."""

    def __init__(self, client: Any, outage: Outage) -> None:
        self.client = client  # a client whose pool has no socket timeout, for a connection that idles
        self.outage = outage
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._refs: Counter[str] = Counter()
        self._confirmed: set[str] = set()
        self._versions: Counter[str] = Counter()
        self._epoch = 0
        self._conn: Any = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="celeriac-redis-results", daemon=True)
        self._thread.start()

    # -- waiters ----------------------------------------------------------------------------
    def watch(self, channels: list[str], timeout: float) -> Snapshot:
        """Subscribe to ``channels`` (waiting up to ``timeout`` for Redis to confirm)."""
        with self._cond:
            new = [c for c in channels if self._refs[c] == 0]
            for channel in channels:
                self._refs[channel] += 1
            self._confirmed.difference_update(new)
        if new:
            self._send("SUBSCRIBE", *new)
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._confirmed.issuperset(channels), timeout)
            return self._epoch, {c: self._versions[c] for c in channels}

    def wait(self, channels: list[str], snapshot: Snapshot, timeout: float) -> bool:
        """Block until a message on one of ``channels`` or a reconnect after ``snapshot``."""
        epoch, versions = snapshot

        def changed() -> bool:
            return self._closed or self._epoch != epoch or any(self._versions[c] != versions[c] for c in channels)

        with self._cond:
            return self._cond.wait_for(changed, timeout)

    def unwatch(self, channels: list[str]) -> None:
        with self._cond:
            gone = []
            for channel in channels:
                self._refs[channel] -= 1
                if self._refs[channel] <= 0:
                    del self._refs[channel]
                    self._versions.pop(channel, None)
                    gone.append(channel)
        if gone:
            self._send("UNSUBSCRIBE", *gone)

    def _send(self, *command: str) -> None:
        with self._send_lock:
            if self._conn is None:
                return  # the listener subscribes to everything wanted when it connects
            try:
                self._conn.send_command(*command)
            except CONNECTION_ERRORS:
                pass  # the listener notices the loss and reconnects

    # -- listener ---------------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        conn = None
        while not self._closed:
            try:
                conn = self._conn or self._connect()
                failures = 0
                if conn.can_read(timeout=1.0):
                    self._handle(conn.read_response())
            except Exception as exc:  # any failure: reconnect rather than leave waiters unwoken
                if self._closed:
                    break
                if isinstance(exc, CONNECTION_ERRORS):
                    self.outage.lost(exc)
                else:
                    logger.warning("result listener failed (%r); reconnecting", exc)
                self._drop()
                failures += 1
                time.sleep(min(2.0, 0.05 * 2**failures))
        if conn is not None:
            conn.disconnect()

    def _connect(self) -> Any:
        conn = self.client.connection_pool.get_connection()
        with self._send_lock:
            with self._cond:
                wanted = list(self._refs)
                self._confirmed.clear()
            if wanted:
                conn.send_command("SUBSCRIBE", *wanted)
            self._conn = conn
        self.outage.restored()
        with self._cond:
            self._epoch += 1  # anything may have changed while we were not listening
            self._cond.notify_all()
        return conn

    def _drop(self) -> None:
        with self._send_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()

    def _handle(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 3:
            return
        kind, channel = reply[0], reply[1].decode()
        with self._cond:
            if kind == b"message":
                if channel in self._refs:
                    self._versions[channel] += 1
            elif kind == b"subscribe":
                self._confirmed.add(channel)
            elif kind == b"unsubscribe" and channel not in self._refs:
                self._confirmed.discard(channel)
            self._cond.notify_all()

    def close(self) -> None:
        self._closed = True
        with self._cond:
            self._cond.notify_all()
        self._drop()
