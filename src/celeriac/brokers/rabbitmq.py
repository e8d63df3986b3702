"""The RabbitMQ broker (``amqp://``, ``amqps://``, ``pyamqp://``), on the aiormq client.

The contract is synchronous and used from several threads; the client is asyncio. Each process
runs one private event loop in a daemon thread (:mod:`.rabbitmq_loop`) that owns the connection;
every call is handed to it and waited for. After ``fork`` the child starts its own loop and
connection lazily; the parent's are never touched.

Layout and the delay design: :mod:`.rabbitmq_topology`. Connection and retries:
:mod:`.rabbitmq_link`. Claims and leases: :mod:`.rabbitmq_claims`. Stats, purge and dead letters:
:mod:`.rabbitmq_admin`. Streams and mailboxes: :mod:`.rabbitmq_streams`. Narrative: docs/rabbitmq.md.

Transport options: ``queue_prefix`` (""), ``queue_type`` ("classic" or "quorum"),
``visibility_timeout`` (lease seconds, 30), ``consumer_timeout`` (seconds asked of RabbitMQ per
consumer, 7 days; honoured by RabbitMQ 3.12+), ``retry_for`` (seconds to keep reconnecting, 60),
``connection_name``, ``stream_entry_bytes`` (2048), ``mailbox_expires`` (seconds, 3600),
``stats_cache`` (seconds the delayed counts are reused, 5).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from . import rabbitmq_admin as admin
from .base import Broker, DeadLetter, Delivery, Outgoing, QueueStats
from .rabbitmq_claims import Claims
from .rabbitmq_link import Link
from .rabbitmq_loop import LoopThread
from .rabbitmq_publish import envelope_of, send
from .rabbitmq_streams import Streams
from .rabbitmq_topology import Topology
from .rabbitmq_url import parse_url


class RabbitMQBroker(Broker):
    """Broker on RabbitMQ (AMQP 0-9-1)."""

    transport = "amqp"

    def __init__(self, url: str, *, transport_options: Mapping[str, Any] | None = None) -> None:
        options = dict(transport_options or {})
        self.url = url
        self.settings = parse_url(url)
        queue_type = str(options.get("queue_type", "classic"))
        if queue_type not in ("classic", "quorum"):
            raise ValueError(f"queue_type must be 'classic' or 'quorum', not {queue_type!r}")
        self.topology = Topology(prefix=str(options.get("queue_prefix", "")), queue_type=queue_type)
        self.default_lease = float(options.get("visibility_timeout", 30.0))
        self.retry_for = float(options.get("retry_for", 60.0))
        self.connection_name = str(options.get("connection_name", f"celeriac pid {os.getpid()}"))
        self.consumer_timeout_ms = int(float(options.get("consumer_timeout", 7 * 86400)) * 1000)
        self.stream_entry_bytes = int(options.get("stream_entry_bytes", 2048))
        self.mailbox_expires = float(options.get("mailbox_expires", 3600))
        self.known: set[str] = set()
        self.delayed = admin.DelayedCounts(float(options.get("stats_cache", 5.0)))
        self._thread = LoopThread("celeriac-amqp")
        self._parts: tuple[Link, Claims, Streams] | None = None
        self._pid = os.getpid()

    # -- plumbing ----------------------------------------------------------------------------
    def _call(self, factory: Any, *args: Any) -> Any:
        """Run ``factory(link, claims, streams, *args)`` on the private loop, across reconnects."""

        if self._pid != os.getpid():  # forked without after_fork(): never reuse the parent's
            self.after_fork()

        async def run() -> Any:
            parts = self._ensure_parts()
            return await parts[0].retrying(lambda: factory(*parts, *args))

        return self._thread.run(run())

    def _ensure_parts(self) -> tuple[Link, Claims, Streams]:
        if self._parts is None:
            link = Link(self.settings, self.topology, name=self.connection_name, retry_for=self.retry_for)
            claims = Claims(link, consumer_args={"x-consumer-timeout": self.consumer_timeout_ms})
            streams = Streams(link, entry_bytes=self.stream_entry_bytes, mailbox_expires=self.mailbox_expires)
            self._parts = (link, claims, streams)
        return self._parts

    # -- producing ------------------------------------------------------------------------
    def publish_many(self, messages: Sequence[Outgoing]) -> None:
        if not messages:
            return
        self.known.update(m.queue for m in messages)
        now = time.time()
        if any(m.eta is not None and m.eta > now for m in messages):
            self.delayed.invalidate()
        envelopes = [envelope_of(m, now) for m in messages]
        self._call(lambda link, _c, _s: send(link, envelopes))

    # -- consuming ------------------------------------------------------------------------
    def fetch(self, queues: Sequence[str], limit: int, *, consumer: str, timeout: float, lease: float | None = None) -> list[Delivery]:
        self.known.update(queues)
        lease_for = lease or self.default_lease
        result: list[Delivery] = self._call(lambda _l, claims, _s: claims.fetch(queues, limit, consumer, timeout, lease_for))
        return result

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            self._call(lambda _l, claims, _s: claims.ack(deliveries))

    def release(self, deliveries: Sequence[Delivery], *, delay: float = 0.0) -> None:
        if deliveries:
            if delay > 0:
                self.delayed.invalidate()
            self._call(lambda _l, claims, _s: claims.release(deliveries, delay))

    def renew(self, deliveries: Sequence[Delivery], *, lease: float | None = None) -> None:
        if deliveries:
            lease_for = lease or self.default_lease
            self._call(lambda _l, claims, _s: claims.renew(deliveries, lease_for))

    def reclaim(self, consumer: str) -> int:
        return int(self._call(lambda _l, claims, _s: claims.reclaim(consumer)))

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        dead_id, now = uuid.uuid4().hex, time.time()
        self._call(lambda _l, claims, _s: claims.dead_letter(delivery, reason, dead_id, now))

    def wakeup(self) -> None:
        parts, loop = self._parts, self._thread.running_loop()
        if parts is not None and loop is not None:
            loop.call_soon_threadsafe(parts[1].woken.set)

    # -- administration ---------------------------------------------------------------------
    def stats(self, queues: Sequence[str] | None = None) -> list[QueueStats]:
        if queues is not None:
            self.known.update(queues)
        names = list(queues) if queues is not None else sorted(self.known)
        return list(self._call(lambda link, claims, _s: _stats(link, claims, self.delayed, names)))

    def purge(self, queue: str) -> int:
        self.known.add(queue)
        self.delayed.invalidate()
        return int(self._call(lambda link, _c, _s: admin.purge(link, queue)))

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        names = [queue] if queue is not None else sorted(self.known)
        return list(self._call(lambda link, _c, _s: admin.dead_letters(link, names, limit)))

    def requeue_dead(self, ids: Sequence[str]) -> int:
        return int(self._call(lambda link, _c, _s: admin.requeue_dead(link, ids)))

    # -- streams and mailboxes --------------------------------------------------------------
    def stream_append(self, stream: str, items: Sequence[bytes], *, maxlen: int, max_age: float) -> None:
        if items:
            self._call(lambda _l, _c, streams: streams.append(stream, items, maxlen, max_age))

    def stream_read(self, stream: str, after: str | None, *, limit: int, timeout: float) -> list[tuple[str, bytes]]:
        return list(self._call(lambda _l, _c, streams: streams.read(stream, after, limit, timeout)))

    def stream_tail(self, stream: str) -> str | None:
        tail: str | None = self._call(lambda _l, _c, streams: streams.tail(stream))
        return tail

    def mailbox_put(self, box: str, item: bytes, *, ttl: float) -> None:
        self._call(lambda _l, _c, streams: streams.put(box, item, ttl))

    def mailbox_take(self, box: str, *, timeout: float, limit: int = 1000) -> list[bytes]:
        return list(self._call(lambda _l, _c, streams: streams.take(box, timeout, limit)))

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        if self._pid != os.getpid():  # the parent's connection is the parent's to close
            self.after_fork()
            return
        parts, self._parts = self._parts, None
        if parts is not None:
            link, claims, _ = parts

            async def shut() -> None:
                await claims.close()
                await link.close()

            self._thread.run(shut(), timeout=10)
        self._thread.stop()

    def after_fork(self) -> None:
        """In a child: forget the parent's loop and connection without closing them."""
        self._parts = None
        self._pid = os.getpid()
        self._thread.forget()


async def _stats(link: Link, claims: Claims, cache: admin.DelayedCounts, names: Sequence[str]) -> list[QueueStats]:
    top = link.topology
    delayed = await cache.get(link)
    sizes = await admin.depths(link, [top.queue(n) for n in names] + [top.dead_queue(n) for n in names])
    now = time.time()
    result = []
    for name in names:
        ready, dead = sizes[top.queue(name)], sizes[top.dead_queue(name)]
        oldest = claims.oldest_enqueued(name)
        age = None if oldest is None else max(0.0, now - oldest)
        result.append(QueueStats(name, ready, delayed.get(name, 0), claims.in_flight(name), dead, age))
    return result
