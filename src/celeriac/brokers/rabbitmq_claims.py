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

from aiormq.abc import DeliveredMessage

from .base import Delivery
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

    def __init__(self, link: Link, *, consumer_args: dict[str, object]) -> None:
        self.link = link
        self.consumer_args = consumer_args
        self.held: dict[str, Held] = {}
        self._fetching = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.woken = asyncio.Event()

    # -- fetch -------------------------------------------------------------------------------
    async def fetch(self, queues: Sequence[str], limit: int, consumer: str, timeout: float, lease: float) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._fetching:
            self.woken.clear()
            while True:
                inbox = await self.link.retrying(lambda: self._consume(queues, max(1, limit), deadline))
                fresh = [(q, m) for q, m in inbox if not _uncounted_return(m)]
                taken = fresh[:limit]
                chosen = {id(m) for _, m in taken}
                extra = [(q, m) for q, m in inbox if id(m) not in chosen]
                if extra:  # beyond the limit, or returned by a lost connection: back, counted exactly
                    await self._put_back([(q, m, _counted(m) - 1) for q, m in extra])
                if taken or loop.time() >= deadline or self.woken.is_set():
                    break
        return [self._hold(queue, message, consumer, loop.time() + lease) for queue, message in taken]

    async def _consume(self, queues: Sequence[str], limit: int, deadline: float) -> list[tuple[str, DeliveredMessage]]:
        channel = await self.link.channel("cons")
        reals = [await self.link.work_queue(q) for q in queues]
        await channel.basic_qos(prefetch_count=limit)
        inbox: list[tuple[str, DeliveredMessage]] = []
        arrived = asyncio.Event()
        by_tag: dict[str, str] = {}

        def on_message(message: DeliveredMessage) -> None:
            inbox.append((by_tag.get(message.delivery.consumer_tag, queues[0]), message))
            arrived.set()

        try:
            for queue, real in zip(queues, reals, strict=True):
                ok = await channel.basic_consume(real, on_message, arguments=self.consumer_args)
                by_tag[ok.consumer_tag] = queue
            await _wait_any([arrived, self.woken], channel.closing, deadline - asyncio.get_running_loop().time())
        finally:
            for tag in by_tag:
                with contextlib.suppress(*LOST):
                    await channel.basic_cancel(tag)
        for _ in range(3):  # deliveries that came before cancel-ok still have callbacks queued
            await asyncio.sleep(0)
        if channel.is_closed:
            raise ConnectionError("channel closed while consuming")
        inbox.sort(key=lambda item: -(item[1].header.properties.priority or 0))
        return inbox

    def _hold(self, queue: str, message: DeliveredMessage, consumer: str, expires: float) -> Delivery:
        props = message.header.properties
        tag = f"{self.link.generation}:{message.delivery.delivery_tag}"
        delivery = Delivery(
            queue,
            message.body,
            props.message_id or "",
            tag,
            delivery_count(props.headers, bool(message.delivery.redelivered)),
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
                with contextlib.suppress(*LOST):
                    await held.message.channel.basic_ack(held.message.delivery.delivery_tag)

    async def _put_back(self, items: Sequence[tuple[str, DeliveredMessage, int]], delay: float = 0.0) -> None:
        await send(self.link, [resend_of(q, m, counted, delay) for q, m, counted in items])
        for _, message, _ in items:
            with contextlib.suppress(*LOST):
                await message.channel.basic_ack(message.delivery.delivery_tag)

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
        envelope.properties.headers.update({H_REASON: reason, H_FAILED_AT: int(failed_at * 1000), H_DEAD_ID: dead_id})
        await send(self.link, [Envelope(delivery.queue, envelope.body, envelope.properties, 0, self.link.topology.dlx, real)])
        with contextlib.suppress(*LOST):
            await held.message.channel.basic_ack(held.message.delivery.delivery_tag)
        return True

    def in_flight(self, queue: str) -> int:
        return sum(1 for h in self.held.values() if h.delivery.queue == queue)

    def oldest_enqueued(self, queue: str) -> float | None:
        """Earliest first-publish time among held messages of ``queue`` (see docs on stats)."""
        times = [
            int((h.message.header.properties.headers or {}).get(H_ENQUEUED, 0) or 0) / 1000
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
            await _wait_any([self._changed], None, soonest - now)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        self.held.clear()


def _counted(message: DeliveredMessage) -> int:
    return delivery_count(message.header.properties.headers, bool(message.delivery.redelivered))


def _uncounted_return(message: DeliveredMessage) -> bool:
    """A classic-queue message RabbitMQ returned after a connection loss (no count of its own).

    It is republished with that lost delivery counted, so a message that keeps killing workers
    is counted exactly each time, not just "at least twice"."""
    headers = message.header.properties.headers or {}
    return bool(message.delivery.redelivered) and "x-delivery-count" not in headers


async def _wait_any(events: Sequence[asyncio.Event], closing: asyncio.Future[object] | None, timeout: float) -> None:
    """Wait for any of ``events`` (or ``closing``) up to ``timeout`` seconds."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    futures: set[asyncio.Future[object]] = set(waiters)  # type: ignore[arg-type]
    if closing is not None:
        futures.add(closing)
    try:
        await asyncio.wait(futures, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
