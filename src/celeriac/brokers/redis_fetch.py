"""Fetching from the Redis broker: one claim script, then a blocking XREADGROUP when idle.

The claim script (``redis_scripts.CLAIM``) promotes due delayed messages, takes over expired leases
and reads new entries, highest priority first, in one atomic step. When it finds nothing the
fetcher blocks on every priority stream of its queues (plus each queue's ``tick`` stream) until a
message arrives, the next delayed message is due, or a sweep for expired leases is due, whichever
comes first. Connection loss never escapes a fetch: it is logged once, retried with backoff, and
the fetch returns empty when its timeout passes. After a Redis restart the groups are gone; a
NOGROUP reply (or a blocked read told that its stream was deleted) makes the next claim
recreate them.

While one queue holds messages at priority 0 only, most claims skip the script: Lua copies every
payload it reads into the script and back out again, which costs Redis more than the read itself
(about 43 us against 10 us for four messages). A full claim reports such a queue as *calm*, with
its ``mark`` (a counter every message at another priority, and every delayed message, raises).
For the next ``CALM_FOR`` seconds, and never past the due time of its next delayed message, the
fetcher claims with a plain ``XREADGROUP`` of that stream and reads ``mark`` in the same round
trip; once ``mark`` has moved, its next claim runs the script again. A message that outranks
priority 0, or a delayed message that falls due, therefore waits at most one more claim than
under the script alone, and expired leases are still swept: the full claims that do it run at
least every ``CALM_FOR`` seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from .base import Delivery
from .redis_connection import CONNECTION_ERRORS, MAX_BLOCK, make_client

if TYPE_CHECKING:
    from .redis import RedisBroker

GROUP = "celeriac"
CALM_FOR = 0.25  # seconds a full claim's finding of a calm queue is trusted


@dataclass(slots=True)
class Calm:
    """A queue whose messages were all at priority 0 when a full claim last looked."""

    mark: bytes  # the queue's mark then: a message that needs the script has moved it
    until: float  # monotonic time after which the next claim runs the script again
    due_ms: int | None  # when its next delayed message falls due (wall clock, ms)

    def holds(self) -> bool:
        return time.monotonic() < self.until and (self.due_ms is None or time.time() * 1000 < self.due_ms)


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
        self._calm: dict[str, Calm] = {}  # queue -> what the last full claim found

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
                self._calm.clear()
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
        calm = self._calm_queue(queues)
        if calm is not None:
            conn = self._start_calm_read(queues[0], limit, consumer)
            replies = self.broker.finish_commands(conn, 2) if conn is not None else None
            if replies is not None:
                got = self._calm_result(queues[0], consumer, replies, calm)
                if got or queues[0] in self._calm:
                    return got, self._wait(calm.due_ms)
                # nothing read and the mark moved: what moved it (a delayed message, another priority) needs the script now
            self._calm.pop(queues[0], None)  # or the shortcut is away: the script's path reconnects
        keys, args, _ = self._claim_arguments(queues, limit, consumer)
        return self._claimed(queues, consumer, self.broker.script("CLAIM", keys, args, client=self.client))

    def _claimed(self, queues: list[str], consumer: str, reply: list[Any]) -> tuple[list[Delivery], float]:
        """Deliveries and block time from a full claim's reply, noting whether its queue is calm."""
        rows, next_due, calm, mark = reply
        due_ms = int(next_due) if next_due else None
        if calm:
            self._calm[queues[0]] = Calm(bytes(mark), time.monotonic() + CALM_FOR, due_ms)
        else:
            self._calm.pop(queues[0], None)
        return _deliveries(rows, queues, consumer), self._wait(due_ms)

    def _wait(self, due_ms: int | None) -> float:
        if due_ms is None:
            return self.cap
        return min(self.cap, max(0.001, (due_ms - time.time() * 1000) / 1000))

    def _calm_queue(self, queues: list[str]) -> Calm | None:
        calm = self._calm.get(queues[0]) if len(queues) == 1 else None
        return calm if calm is not None and calm.holds() else None

    def _start_calm_read(self, queue: str, limit: int, consumer: str) -> Any | None:
        """Write ``XREADGROUP`` of the queue's priority-0 stream and ``GET`` of its mark."""
        base = self.broker.base(queue)
        commands = [("XREADGROUP", "GROUP", GROUP, consumer, "COUNT", limit, "STREAMS", f"{base}:0", ">"),
                    ("GET", f"{base}:mark")]
        return self.broker.start_commands(commands, self.client)

    def _calm_result(self, queue: str, consumer: str, replies: list[Any], calm: Calm) -> list[Delivery]:
        """What a plain read claimed; the queue stops counting as calm once its mark has moved."""
        read, mark = replies
        if isinstance(read, ResponseError) or isinstance(mark, ResponseError) or (mark or b"0") != calm.mark:
            self._calm.pop(queue, None)
        if isinstance(read, ResponseError):
            raise read
        return _stream_deliveries(read, {f"{self.broker.base(queue)}:0": (0, queue, 0)}, consumer)

    def claim_ahead(self, queues: list[str], limit: int, consumer: str) -> PendingClaim | None:
        """Write a claim on this thread's script connection and return without reading its reply.

        Until the claim is collected, nothing else may use that connection: the slot that started it
        collects it before it fetches again, or the keeper does while the slot runs a long task.
        """
        calm = self._calm_queue(queues)
        if calm is not None:
            conn = self._start_calm_read(queues[0], limit, consumer)
            if conn is not None:
                return PendingClaim(self, conn, queues, consumer, calm)
            self._calm.pop(queues[0], None)
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
        ticks: dict[str, list[bytes]] = {}
        for name, entries in reply or []:
            if streams[name.decode()][2] is None:
                ticks[name.decode()] = [sid for sid, _ in entries]
        if ticks:
            self._ack_ticks(ticks)
        deliveries = _stream_deliveries(reply, streams, consumer)
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


def _stream_deliveries(reply: list[Any] | None, streams: dict[str, tuple[int, str, int | None]],
                       consumer: str) -> list[Delivery]:
    """Deliveries from an ``XREADGROUP ... >`` reply, in queue order then highest priority first.

    ``streams`` maps each stream read to (queue index, queue, priority); ``tick`` streams (priority
    None) carry no messages and are skipped.
    """
    got: list[tuple[int, Delivery]] = []
    for name, entries in reply or []:
        qi, queue, prio = streams[name.decode()]
        if prio is None:
            continue
        for sid, flat in entries:
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            count = int(fields.get(b"n", 0)) + 1
            tag = f"{prio}|{sid.decode()}|{consumer}"
            got.append((qi, Delivery(queue, bytes(fields[b"p"]), fields[b"m"].decode(), tag, count, prio)))
    got.sort(key=lambda pair: (pair[0], -pair[1].priority))
    return [d for _, d in got]


def _deliveries(rows: list[Any], queues: list[str], consumer: str) -> list[Delivery]:
    return [
        Delivery(queues[qi - 1], bytes(payload), mid.decode(), f"{prio}|{sid.decode()}|{consumer}", int(count), int(prio))
        for qi, prio, sid, mid, payload, count in rows
    ]


class PendingClaim:
    """A claim written ahead; its reply is read once, by whichever thread collects it first."""

    def __init__(self, fetcher: Fetcher, conn: Any, queues: list[str], consumer: str, calm: Calm | None = None) -> None:
        self.fetcher = fetcher
        self.conn = conn
        self.queues = queues
        self.consumer = consumer
        self.calm = calm  # a plain read of a calm queue, not the script
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._collected = False

    def collect(self) -> list[Delivery]:
        with self._lock:
            if self._collected:
                return []
            self._collected = True
            fetcher = self.fetcher
            if self.calm is not None:
                replies = fetcher.broker.finish_commands(self.conn, 2)
                if replies is None:  # connection lost: whatever it claimed comes back when its lease runs out
                    fetcher._calm.pop(self.queues[0], None)
                    return []
                try:
                    return fetcher._calm_result(self.queues[0], self.consumer, replies, self.calm)
                except ResponseError:  # NOGROUP: nothing was claimed; the next fetch repairs it
                    return []
            try:
                reply = fetcher.broker.finish_script(self.conn)
            except ResponseError:  # NOSCRIPT, NOGROUP: nothing was claimed; the next fetch repairs it
                return []
            if reply is None:  # connection lost: whatever it claimed comes back when its lease runs out
                return []
            return fetcher._claimed(self.queues, self.consumer, reply)[0]
