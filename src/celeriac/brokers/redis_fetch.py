"""Fetching from the Redis broker: one claim script, then a blocking XREADGROUP when idle.

The claim script (``redis_scripts.CLAIM``) promotes due delayed messages, takes over expired leases
and reads new entries, highest priority first, in one atomic step. When it finds nothing the
fetcher blocks on every priority stream of its queues (plus each queue's ``tick`` stream) until a
message arrives, the next delayed message is due, or a sweep for expired leases is due, whichever
comes first. Connection loss never escapes a fetch: it is logged once, retried with backoff, and
the fetch returns empty when its timeout passes. After a Redis restart the groups are gone; a
NOGROUP reply (or a blocked read told that its stream was deleted) makes the next claim
recreate them.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from .base import Delivery
from .redis_connection import CONNECTION_ERRORS, MAX_BLOCK, make_client

if TYPE_CHECKING:
    from .redis import RedisBroker

GROUP = "celeriac"


def _groups_gone(error: ResponseError) -> bool:
    """The stream or its group vanished (a restart, a FLUSHDB, a deleted key): recreate, do not fail."""
    text = str(error)
    return "NOGROUP" in text or "no longer exists" in text


class Fetcher:
    """The consuming side of one broker instance; safe to use from several threads."""

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker
        # one quick reconnect inside redis-py; longer outages are handled by the fetch loop
        self.client = make_client(broker.target, broker.outage, {**broker.options, "max_retries": 1})
        self.lease_ms = max(1, int(broker.default_lease * 1000))
        self.sweep_ms = max(20, self.lease_ms // 4)
        self.cap = min(MAX_BLOCK, broker.default_lease / 2)
        self._lock = threading.Lock()
        self._blocked: dict[int, int] = {}  # thread -> Redis client id of its blocked connection
        self._woken = False

    def fetch(self, queues: list[str], limit: int, consumer: str, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        failures = 0
        while True:
            try:
                got = self._fetch_once(queues, limit, consumer, deadline)
                self.broker.outage.restored()
                failures = 0
            except CONNECTION_ERRORS as exc:
                self.broker.outage.lost(exc)
                failures += 1
                time.sleep(min(0.05 * 2**failures, 2.0, max(0.0, deadline - time.monotonic())))
                got = []
            except ResponseError as exc:
                if not _groups_gone(exc):
                    raise
                self.broker.client.delete(*[f"{self.broker.base(q)}:groups" for q in queues])
                got = []
            if got or time.monotonic() >= deadline or self._take_wake():
                return got

    def _fetch_once(self, queues: list[str], limit: int, consumer: str, deadline: float) -> list[Delivery]:
        got, wait = self._claim(queues, limit, consumer)
        wait = min(wait, deadline - time.monotonic())
        if got or wait <= 0:
            return got
        return self._block(queues, limit, consumer, wait)

    def _claim_arguments(self, queues: list[str], limit: int, consumer: str) -> tuple[list[str], list[Any], int]:
        now_ms = int(time.time() * 1000)
        args = [GROUP, consumer, limit, now_ms, self.lease_ms, self.sweep_ms, self.broker.queues_key, *queues]
        return [self.broker.base(q) for q in queues], args, now_ms

    def _claim(self, queues: list[str], limit: int, consumer: str) -> tuple[list[Delivery], float]:
        keys, args, now_ms = self._claim_arguments(queues, limit, consumer)
        rows, next_due = self.broker.script("CLAIM", keys, args, client=self.client)
        got = _deliveries(rows, queues, consumer)
        wait = self.cap
        if next_due:
            wait = min(wait, max(0.001, (int(next_due) - now_ms) / 1000))
        return got, wait

    def claim_ahead(self, queues: list[str], limit: int, consumer: str) -> PendingClaim | None:
        """Write a claim on this thread's script connection and return without reading its reply.

        Until the claim is collected, nothing else may use that connection: the slot that started it
        collects it before it fetches again, or the keeper does while the slot runs a long task.
        """
        keys, args, _ = self._claim_arguments(queues, limit, consumer)
        conn = self.broker.start_script("CLAIM", keys, args, client=self.client)
        return PendingClaim(self, conn, queues, consumer) if conn is not None else None

    def _block(self, queues: list[str], limit: int, consumer: str, wait: float) -> list[Delivery]:
        streams: dict[str, tuple[int, str, int | None]] = {}
        for qi, queue in enumerate(queues):
            base = self.broker.base(queue)
            for level in range(9, -1, -1):
                streams[f"{base}:{level}"] = (qi, queue, level)
            streams[f"{base}:tick"] = (qi, queue, None)
        command = ["XREADGROUP", "GROUP", GROUP, consumer, "COUNT", limit, "BLOCK", max(1, int(wait * 1000)), "STREAMS"]
        reply = self._blocking_call([*command, *streams, *[">"] * len(streams)])
        got: list[tuple[int, Delivery]] = []
        ticks: dict[str, list[bytes]] = {}
        for name, entries in reply or []:
            qi, queue, prio = streams[name.decode()]
            if prio is None:
                ticks[name.decode()] = [sid for sid, _ in entries]
                continue
            for sid, flat in entries:
                fields = dict(zip(flat[::2], flat[1::2], strict=True))
                count = int(fields.get(b"n", 0)) + 1
                tag = f"{prio}|{sid.decode()}|{consumer}"
                got.append((qi, Delivery(queue, bytes(fields[b"p"]), fields[b"m"].decode(), tag, count, prio)))
        if ticks:
            self._ack_ticks(ticks)
        got.sort(key=lambda pair: (pair[0], -pair[1].priority))
        deliveries = [d for _, d in got]
        if len(deliveries) > limit:  # several streams woke at once: give back what does not fit
            self.broker.release(deliveries[limit:])
        return deliveries[:limit]

    def _ack_ticks(self, ticks: dict[str, list[bytes]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, ids in ticks.items():
            pipe.xack(key, GROUP, *ids)
            pipe.xdel(key, *ids)
        pipe.execute()

    def _blocking_call(self, command: list[Any]) -> Any:
        """Run a blocking command on a pooled connection whose client id ``wakeup`` can unblock."""
        pool = self.client.connection_pool
        conn = pool.get_connection()
        ident = threading.get_ident()
        try:
            conn.send_packed_command(conn.pack_commands([("CLIENT", "ID"), command]))
            client_id = conn.read_response()
            with self._lock:
                self._blocked[ident] = client_id
                woken = self._woken
            if woken:
                self._unblock(client_id)
            return conn.read_response()
        except BaseException:
            conn.disconnect()
            raise
        finally:
            with self._lock:
                self._blocked.pop(ident, None)
            pool.release(conn)

    def _unblock(self, client_id: int) -> None:
        try:
            self.client.execute_command("CLIENT", "UNBLOCK", client_id)
        except CONNECTION_ERRORS:
            pass

    def _take_wake(self) -> bool:
        with self._lock:
            woken, self._woken = self._woken, False
        return woken

    def wakeup(self) -> None:
        """Interrupt fetches blocked in other threads; they return what they have (usually nothing)."""
        with self._lock:
            self._woken = True
            blocked = list(self._blocked.values())
        for client_id in blocked:
            self._unblock(client_id)

    def close(self) -> None:
        try:
            self.client.close()
            self.client.connection_pool.disconnect()
        except CONNECTION_ERRORS:
            pass


def _deliveries(rows: list[Any], queues: list[str], consumer: str) -> list[Delivery]:
    return [
        Delivery(queues[qi - 1], bytes(payload), mid.decode(), f"{prio}|{sid.decode()}|{consumer}", int(count), int(prio))
        for qi, prio, sid, mid, payload, count in rows
    ]


class PendingClaim:
    """A claim written ahead; its reply is read once, by whichever thread collects it first."""

    def __init__(self, fetcher: Fetcher, conn: Any, queues: list[str], consumer: str) -> None:
        self.fetcher = fetcher
        self.conn = conn
        self.queues = queues
        self.consumer = consumer
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._collected = False

    def collect(self) -> list[Delivery]:
        with self._lock:
            if self._collected:
                return []
            self._collected = True
            try:
                reply = self.fetcher.broker.finish_script(self.conn)
            except ResponseError:  # NOSCRIPT, NOGROUP: nothing was claimed; the next fetch repairs it
                return []
            if reply is None:  # connection lost: whatever it claimed comes back when its lease runs out
                return []
            return _deliveries(reply[0], self.queues, self.consumer)
