"""Claiming work: consume while ``fetch`` waits, hold what was claimed under a local lease.

AMQP has no leases: a delivered message stays unacknowledged on the channel until it is acked or
the connection closes, and then RabbitMQ requeues it. So a dead process loses nothing. Leases are
kept here too, per process, so a message whose lease is not renewed (a stuck task) goes back to
its queue with its delivery counted, the same as with the other brokers. Putting a message back
always means republishing it (confirmed) and then acking the original: ``basic.nack`` would set
the ``redelivered`` flag and count a delivery that ``release`` must not count.

``fetch`` opens one consumer per queue with prefetch ``limit``, waits for the first message or the
timeout, then cancels the consumers. Messages beyond ``limit`` (several queues) go straight back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from aiormq.abc import DeliveredMessage, FieldTable

from .base import Delivery
from .rabbitmq_consumers import Subscriptions, delivery_tag, wait_any
from .rabbitmq_link import LOST, Link
from .rabbitmq_publish import Envelope, resend_of, send
from .rabbitmq_topology import H_DEAD_ID, H_ENQUEUED, H_FAILED_AT, H_REASON, delivery_count


@dataclass(slots=True)
class Held:
    delivery: Delivery
    message: DeliveredMessage
    generation: int
    consumer: str
    expires: float


class Claims:
    """The messages this process holds, and the lease keeper that returns expired ones."""

    def __init__(self, link: Link, *, consumer_args: FieldTable) -> None:
        self.link = link
        self.held: dict[str, Held] = {}
        self._fetching = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.woken = asyncio.Event()
        self.subs = Subscriptions(link, consumer_args)

    # -- fetch -------------------------------------------------------------------------------
    async def fetch(self, queues: Sequence[str], limit: int, consumer: str, timeout: float, lease: float) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._fetching:
            self.woken.clear()
            while True:
                taken, retired = await self.link.retrying(
                    lambda: self.subs.take(queues, max(1, limit), deadline, self.woken, self._held_in)
                )
                returned = [(q, m) for q, m in taken if _uncounted_return(m)]
                taken = [(q, m) for q, m in taken if not _uncounted_return(m)]
                # returned by a lost connection: back, with that delivery counted; retired: not counted
                await self._put_back([(q, m, _counted(m) - 1) for q, m in returned + retired])
                if taken or loop.time() >= deadline or self.woken.is_set():
                    break
        return [self._hold(queue, message, consumer, loop.time() + lease) for queue, message in taken]

    def _held_in(self, queue: str) -> int:
        return sum(1 for h in self.held.values() if h.delivery.queue == queue)

    def _hold(self, queue: str, message: DeliveredMessage, consumer: str, expires: float) -> Delivery:
        props = message.header.properties
        tag = f"{self.link.generation}:{message.delivery_tag}"
        delivery = Delivery(
            queue,
            message.body,
            props.message_id or "",
            tag,
            delivery_count(props.headers, bool(message.redelivered)),
            props.priority or 0,
        )
        self.held[tag] = Held(delivery, message, self.link.generation, consumer, expires)
        self._ensure_reaper()
        return delivery

    # -- settling ----------------------------------------------------------------------------
    def _live(self, tag: str) -> Held | None:
        """The held entry if its channel is still the one it came on (else RabbitMQ requeued it)."""
        held = self.held.pop(tag, None)
        if held is None or held.generation != self.link.generation or held.message.channel.is_closed:
            return None
        return held

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            held = self._live(d.tag)
            if held is not None:
                await self._ack_original(held.message)

    async def _ack_original(self, message: DeliveredMessage) -> None:
        self.subs.settled(message)
        with contextlib.suppress(*LOST):
            await message.channel.basic_ack(delivery_tag(message))

    async def _put_back(self, items: Sequence[tuple[str, DeliveredMessage, int]], delay: float = 0.0) -> None:
        items = [item for item in items if item[0]]  # a queue-less message stays unacked: RabbitMQ keeps it
        if not items:
            return
        await send(self.link, [resend_of(q, m, counted, delay) for q, m, counted in items])
        for _, message, _ in items:
            await self._ack_original(message)

    async def release(self, deliveries: Sequence[Delivery], delay: float) -> None:
        live = [h for h in (self._live(d.tag) for d in deliveries) if h is not None]
        await self._put_back([(h.delivery.queue, h.message, h.delivery.delivery_count - 1) for h in live], delay)

    async def renew(self, deliveries: Sequence[Delivery], lease: float) -> None:
        until = asyncio.get_running_loop().time() + lease
        for d in deliveries:
            held = self.held.get(d.tag)
            if held is not None:
                held.expires = until

    async def reclaim(self, consumer: str) -> int:
        tags = [tag for tag, h in self.held.items() if h.consumer == consumer]
        live = [h for h in (self._live(tag) for tag in tags) if h is not None]
        await self._put_back([(h.delivery.queue, h.message, h.delivery.delivery_count) for h in live])
        return len(live)

    async def dead_letter(self, delivery: Delivery, reason: str, dead_id: str, failed_at: float) -> bool:
        held = self._live(delivery.tag)
        if held is None:
            return False
        real = self.link.topology.queue(delivery.queue)
        envelope = resend_of(delivery.queue, held.message, delivery.delivery_count)
        headers = envelope.properties.headers
        assert headers is not None, "resend_of sets the headers"
        headers.update({H_REASON: reason, H_FAILED_AT: int(failed_at * 1000), H_DEAD_ID: dead_id})
        await send(self.link, [Envelope(delivery.queue, envelope.body, envelope.properties, 0, self.link.topology.dlx, real)])
        await self._ack_original(held.message)
        return True

    def in_flight(self, queue: str) -> int:
        """Held by this process: claimed, or delivered into the fetch buffer."""
        return self._held_in(queue) + self.subs.in_buffer(queue)

    def oldest_enqueued(self, queue: str) -> float | None:
        """Earliest first-publish time among held messages of ``queue`` (see docs on stats)."""
        times = [
            int(cast(int, (h.message.header.properties.headers or {}).get(H_ENQUEUED, 0) or 0)) / 1000
            for h in self.held.values()
            if h.delivery.queue == queue
        ]
        return min((t for t in times if t > 0), default=None)

    # -- leases ------------------------------------------------------------------------------
    def _ensure_reaper(self) -> None:
        self._changed.set()
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    async def _reap_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while self.held:
            self._changed.clear()
            now = loop.time()
            expired = [tag for tag, h in self.held.items() if h.expires <= now]
            if expired:
                live = [h for h in (self._live(tag) for tag in expired) if h is not None]
                with contextlib.suppress(Exception):
                    await self._put_back([(h.delivery.queue, h.message, h.delivery.delivery_count) for h in live])
                continue
            soonest = min(h.expires for h in self.held.values())
            await wait_any([self._changed], None, soonest - now)

    async def close(self) -> None:
        """Hand back buffered, unclaimed messages uncounted; stop the lease keeper."""
        if self._reaper is not None:
            self._reaper.cancel()
        self.held.clear()
        buffered = self.subs.drain()
        if buffered and self.link.connected():
            with contextlib.suppress(Exception):
                await self._put_back([(q, m, _counted(m) - 1) for q, m in buffered])


def _counted(message: DeliveredMessage) -> int:
    return delivery_count(message.header.properties.headers, bool(message.redelivered))


def _uncounted_return(message: DeliveredMessage) -> bool:
    """A classic-queue message RabbitMQ returned after a connection loss (no count of its own).

    It is republished with that lost delivery counted, so a message that keeps killing workers
    is counted exactly each time, not just "at least twice"."""
    headers = message.header.properties.headers or {}
    return bool(message.redelivered) and "x-delivery-count" not in headers
