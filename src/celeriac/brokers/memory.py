"""The in-process broker (``memory://``): the same contract as the others, for tests and threads.

Messages live in this process only: a worker must run as threads (``-P threads``/``solo``/
``async``) in the same process as the producer. Named instances (``memory://name``) are shared by
every app in the process that uses the same name.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import Broker, DeadLetter, Delivery, Outgoing, QueueStats


@dataclass
class _Entry:
    tag: int
    queue: str
    message_id: str
    payload: bytes
    priority: int
    enqueued_at: float
    visible_at: float = 0.0
    consumer: str | None = None
    deliveries: int = 0


@dataclass
class _State:
    lock: threading.Condition = field(default_factory=threading.Condition)
    ready: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    entries: dict[int, _Entry] = field(default_factory=dict)
    delayed: list[tuple[float, int]] = field(default_factory=list)
    leased: dict[int, _Entry] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    streams: dict[str, deque[tuple[int, float, bytes]]] = field(default_factory=lambda: defaultdict(deque))
    mailboxes: dict[str, deque[tuple[float, bytes]]] = field(default_factory=lambda: defaultdict(deque))
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


_NAMED: dict[str, _State] = {}
_NAMED_LOCK = threading.Lock()


class MemoryBroker(Broker):
    """Broker held in this process's memory."""

    transport = "memory"

    def __init__(self, url: str = "memory://", *, transport_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.default_lease = float((transport_options or {}).get("visibility_timeout", 30.0))
        name = url.split("://", 1)[1] if "://" in url else ""
        with _NAMED_LOCK:
            self.state = _NAMED.setdefault(name, _State())

    # -- producing ------------------------------------------------------------------------
    def publish_many(self, messages: Sequence[Outgoing]) -> None:
        now = time.time()
        s = self.state
        with s.lock:
            for m in messages:
                entry = _Entry(next(s.counter), m.queue, m.message_id, m.payload, m.priority, now)
                s.entries[entry.tag] = entry
                if m.eta is not None and m.eta > now:
                    heapq.heappush(s.delayed, (m.eta, entry.tag))
                else:
                    heapq.heappush(s.ready[m.queue], (-m.priority, entry.tag))
            s.lock.notify_all()

    # -- consuming ------------------------------------------------------------------------
    def _promote(self, now: float) -> None:
        s = self.state
        while s.delayed and s.delayed[0][0] <= now:
            _, tag = heapq.heappop(s.delayed)
            entry = s.entries.get(tag)
            if entry is not None and entry.consumer is None:
                heapq.heappush(s.ready[entry.queue], (-entry.priority, tag))
        for tag, entry in list(s.leased.items()):
            if entry.visible_at <= now:
                self._make_ready(entry)
                del s.leased[tag]

    def _make_ready(self, entry: _Entry) -> None:
        entry.consumer = None
        heapq.heappush(self.state.ready[entry.queue], (-entry.priority, entry.tag))

    def _next_wake(self, now: float) -> float:
        s = self.state
        times = [s.delayed[0][0]] if s.delayed else []
        times.extend(e.visible_at for e in s.leased.values())
        return min(times) - now if times else 1.0

    def fetch(
        self, queues: Sequence[str], limit: int, *, consumer: str, timeout: float, lease: float | None = None
    ) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        s = self.state
        with s.lock:
            while True:
                now = time.time()
                self._promote(now)
                claimed = self._claim(queues, limit, consumer, now + (lease or self.default_lease))
                remaining = deadline - time.monotonic()
                if claimed or remaining <= 0:
                    return claimed
                s.lock.wait(max(0.0005, min(remaining, self._next_wake(now))))

    def _claim(self, queues: Sequence[str], limit: int, consumer: str, until: float) -> list[Delivery]:
        s = self.state
        claimed: list[Delivery] = []
        for queue in queues:
            heap = s.ready.get(queue)
            while heap and len(claimed) < limit:
                _, tag = heapq.heappop(heap)
                entry = s.entries.get(tag)
                if entry is None or entry.consumer is not None:
                    continue
                entry.consumer, entry.visible_at = consumer, until
                entry.deliveries += 1
                s.leased[tag] = entry
                claimed.append(Delivery(queue, entry.payload, entry.message_id, str(tag), entry.deliveries, entry.priority))
        return claimed

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        s = self.state
        with s.lock:
            for d in deliveries:
                s.entries.pop(int(d.tag), None)
                s.leased.pop(int(d.tag), None)

    def release(self, deliveries: Sequence[Delivery], *, delay: float = 0.0) -> None:
        s = self.state
        with s.lock:
            for d in deliveries:
                entry = s.leased.pop(int(d.tag), None)
                if entry is None:
                    continue
                entry.deliveries = max(0, entry.deliveries - 1)
                if delay > 0:
                    entry.consumer = None
                    heapq.heappush(s.delayed, (time.time() + delay, entry.tag))
                else:
                    self._make_ready(entry)
            s.lock.notify_all()

    def renew(self, deliveries: Sequence[Delivery], *, lease: float | None = None) -> None:
        until = time.time() + (lease or self.default_lease)
        with self.state.lock:
            for d in deliveries:
                entry = self.state.leased.get(int(d.tag))
                if entry is not None:
                    entry.visible_at = until

    def reclaim(self, consumer: str) -> int:
        s = self.state
        with s.lock:
            mine = [tag for tag, e in s.leased.items() if e.consumer == consumer]
            for tag in mine:
                self._make_ready(s.leased.pop(tag))
            s.lock.notify_all()
        return len(mine)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        s = self.state
        with s.lock:
            s.entries.pop(int(delivery.tag), None)
            s.leased.pop(int(delivery.tag), None)
            s.dead.append(
                DeadLetter(
                    str(next(s.counter)), delivery.queue, delivery.message_id, delivery.payload, reason, time.time(),
                    delivery.delivery_count,
                )
            )

    def wakeup(self) -> None:
        with self.state.lock:
            self.state.lock.notify_all()

    # -- administration ---------------------------------------------------------------------
    def stats(self, queues: Sequence[str] | None = None) -> list[QueueStats]:
        s = self.state
        now = time.time()
        with s.lock:
            names = list(queues) if queues is not None else sorted({e.queue for e in s.entries.values()} | {d.queue for d in s.dead})
            out = []
            for name in names:
                mine = [e for e in s.entries.values() if e.queue == name]
                leased = [e for e in mine if e.consumer is not None]
                delayed_tags = {tag for eta, tag in s.delayed if eta > now}
                delayed = [e for e in mine if e.tag in delayed_tags and e.consumer is None]
                ready = [e for e in mine if e.consumer is None and e.tag not in delayed_tags]
                oldest = min((e.enqueued_at for e in ready), default=None)
                dead = sum(1 for d in s.dead if d.queue == name)
                out.append(QueueStats(name, len(ready), len(delayed), len(leased), dead, None if oldest is None else now - oldest))
            return out

    def purge(self, queue: str) -> int:
        s = self.state
        with s.lock:
            doomed = [t for t, e in s.entries.items() if e.queue == queue and e.consumer is None]
            for tag in doomed:
                del s.entries[tag]
            s.ready[queue] = []
            return len(doomed)

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        with self.state.lock:
            found = [d for d in reversed(self.state.dead) if queue is None or d.queue == queue]
        return found[:limit]

    def requeue_dead(self, ids: Sequence[str]) -> int:
        s = self.state
        wanted = set(ids)
        with s.lock:
            back = [d for d in s.dead if d.id in wanted]
            s.dead = [d for d in s.dead if d.id not in wanted]
        self.publish_many([Outgoing(d.queue, d.payload, d.message_id) for d in back])
        return len(back)

    # -- streams and mailboxes --------------------------------------------------------------
    def stream_append(self, stream: str, items: Sequence[bytes], *, maxlen: int, max_age: float) -> None:
        s = self.state
        now = time.time()
        with s.lock:
            log = s.streams[stream]
            for item in items:
                log.append((next(s.counter), now, item))
            while log and (len(log) > maxlen or log[0][1] < now - max_age):
                log.popleft()
            s.lock.notify_all()

    def stream_read(self, stream: str, after: str | None, *, limit: int, timeout: float) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        cursor = int(after) if after else 0
        s = self.state
        with s.lock:
            while True:
                found = [(str(i), item) for i, _, item in s.streams[stream] if i > cursor][:limit]
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                s.lock.wait(remaining)

    def stream_tail(self, stream: str) -> str | None:
        with self.state.lock:
            log = self.state.streams.get(stream)
            return str(log[-1][0]) if log else None

    def mailbox_put(self, box: str, item: bytes, *, ttl: float) -> None:
        s = self.state
        with s.lock:
            s.mailboxes[box].append((time.time() + ttl, item))
            s.lock.notify_all()

    def mailbox_take(self, box: str, *, timeout: float, limit: int = 1000) -> list[bytes]:
        deadline = time.monotonic() + timeout
        s = self.state
        with s.lock:
            while True:
                now = time.time()
                queue = s.mailboxes[box]
                taken: list[bytes] = []
                while queue and len(taken) < limit:
                    expires, item = queue.popleft()
                    if expires >= now:
                        taken.append(item)
                remaining = deadline - time.monotonic()
                if taken or remaining <= 0:
                    return taken
                s.lock.wait(remaining)
