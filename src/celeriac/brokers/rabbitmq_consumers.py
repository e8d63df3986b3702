"""Long-lived consumers for ``fetch``, with a small buffer of delivered, unclaimed messages.

Starting and cancelling a consumer costs two round trips, more than a whole task on a busy queue,
so consumers stay open between fetches. Each has its own prefetch window (``basic.qos`` before
``basic.consume``) sized to what the caller holds plus what it asks for, so a worker that fetches
its free capacity keeps one consumer whose window equals its concurrency, and RabbitMQ refills
the buffer as tasks are acked. A consumer whose window is too small for a request is replaced
(its messages stay valid: unacked deliveries belong to the channel, not to the consumer). The
buffer holds at most a window of messages per queue; they count as in flight. Consumers on
queues no longer fetched are cancelled and their buffered messages handed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import cast

import aiormq
from aiormq.abc import AbstractChannel, ConsumerCallback, DeliveredMessage, FieldTable

from .rabbitmq_link import LOST, Link
from .rabbitmq_topology import H_QUEUE, queue_of_delay_key

#: under load, after a message arrives, keep collecting while more arrive this quickly (one burst)
BURST = 0.002

Item = tuple[str, DeliveredMessage]


class Subscriptions:
    """The consumers on the ``cons`` channel and what they delivered that nobody claimed yet."""

    def __init__(self, link: Link, consumer_args: FieldTable) -> None:
        self.link = link
        self.args = consumer_args
        self.channel: AbstractChannel | None = None
        self.tags: dict[str, str] = {}  # queue -> consumer tag
        self.queue_of: dict[str, str] = {}  # consumer tag -> queue
        self.window: dict[str, int] = {}  # consumer tag -> prefetch
        self.open: Counter[str] = Counter()  # consumer tag -> delivered, not yet settled
        self.buffer: list[Item] = []
        self.arrived = asyncio.Event()
        self.busy = False  # the last fetch was filled: messages are coming in bursts

    async def take(
        self, queues: Sequence[str], limit: int, deadline: float, woken: asyncio.Event, held: Callable[[str], int]
    ) -> tuple[list[Item], list[Item]]:
        """Up to ``limit`` buffered messages of ``queues`` (waiting until ``deadline``), and
        messages of queues no longer fetched, to hand back."""
        channel = await self._sync()
        retired = await self._retire(channel, queues)
        for queue in queues:
            await self._ensure(channel, queue, limit, held(queue))
        if not self._count(queues):
            self.arrived.clear()
            await wait_any([self.arrived, woken], channel.closing, deadline - asyncio.get_running_loop().time())
        if self.busy:
            await self._burst(queues, limit)
        if channel.is_closed:
            raise ConnectionError("channel closed while consuming")
        taken = self._pop(queues, limit)
        self.busy = len(taken) >= limit
        return taken, retired

    def settled(self, message: DeliveredMessage) -> None:
        """A delivery was acked: its consumer's window has room again."""
        tag = message.consumer_tag or ""
        if message.channel is self.channel and tag in self.window:
            self.open[tag] -= 1

    def in_buffer(self, queue: str) -> int:
        return self._count([queue])

    def drain(self) -> list[Item]:
        """Everything buffered (to hand back before closing)."""
        items, self.buffer = self.buffer, []
        return [(q, m) for q, m in items if not m.channel.is_closed]

    # -- internals ----------------------------------------------------------------------------
    async def _sync(self) -> AbstractChannel:
        channel = await self.link.channel("cons")
        if channel is not self.channel:  # new channel: old consumers and deliveries are void
            self.channel = channel
            self.tags, self.queue_of, self.window, self.open, self.buffer = {}, {}, {}, Counter(), []
        return channel

    def _on_message(self, message: DeliveredMessage) -> None:
        tag = message.consumer_tag or ""
        self.open[tag] += 1
        queue = self.queue_of.get(tag) or self._queue_named_in(message)
        self.buffer.append((queue, message))
        self.arrived.set()

    def _queue_named_in(self, message: DeliveredMessage) -> str:
        """The logical queue of a delivery whose consumer is no longer on record."""
        headers = message.header.properties.headers or {}
        named = headers.get(H_QUEUE)
        if named:
            return named.decode() if isinstance(named, bytes) else str(named)
        return self.link.topology.logical(queue_of_delay_key(message.routing_key or ""))

    def _count(self, queues: Sequence[str]) -> int:
        return sum(1 for q, _ in self.buffer if q in queues)

    async def _ensure(self, channel: AbstractChannel, queue: str, limit: int, held: int) -> None:
        want = limit - self._count([queue])
        tag = self.tags.get(queue)
        consumers = cast(aiormq.Channel, channel).consumers
        if want <= 0 or (tag is not None and tag in consumers and self.window[tag] - self.open[tag] >= want):
            return
        if tag is not None:
            await self._cancel(channel, tag)
        real = await self.link.work_queue(queue)
        prefetch = held + self._count([queue]) + limit
        await channel.basic_qos(prefetch_count=prefetch)
        tag = f"celeriac.{uuid.uuid4().hex}"
        # known before consume-ok: deliveries may arrive ahead of it
        self.queue_of[tag], self.window[tag] = queue, prefetch
        try:
            await channel.basic_consume(real, consumer_callback(self._on_message), arguments=self.args, consumer_tag=tag)
        except aiormq.exceptions.ChannelNotFoundEntity as exc:  # deleted behind our back
            self.link.forget(real)
            raise ConnectionError(f"queue {real!r} vanished; declaring it again") from exc
        self.tags[queue] = tag

    async def _cancel(self, channel: AbstractChannel, tag: str) -> None:
        with contextlib.suppress(*LOST):
            await channel.basic_cancel(tag)
        for _ in range(3):  # deliveries that came before cancel-ok still have callbacks queued
            await asyncio.sleep(0)
        self.tags = {q: t for q, t in self.tags.items() if t != tag}
        self.queue_of.pop(tag, None)  # its buffered messages already carry their queue
        self.window.pop(tag, None)
        self.open.pop(tag, None)

    async def _retire(self, channel: AbstractChannel, queues: Sequence[str]) -> list[Item]:
        for queue in [q for q in self.tags if q not in queues]:
            await self._cancel(channel, self.tags[queue])
        live = [(q, m) for q, m in self.buffer if not m.channel.is_closed]
        kept = [(q, m) for q, m in live if q in queues or q in self.tags]
        retired = [(q, m) for q, m in live if not (q in queues or q in self.tags)]
        self.buffer = kept
        return retired

    async def _burst(self, queues: Sequence[str], limit: int) -> None:
        """Let the rest of a burst arrive so one fetch can return a batch.

        Only while busy: a message that arrives after a quiet spell goes to its task at once (waiting
        for company cost every such task the whole burst window in latency).
        """
        seen = -1
        while seen != len(self.buffer) and 0 < self._count(queues) < limit:
            seen = len(self.buffer)
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), BURST)

    def _pop(self, queues: Sequence[str], limit: int) -> list[Item]:
        mine = [item for item in self.buffer if item[0] in queues]
        mine.sort(key=lambda item: -(item[1].header.properties.priority or 0))
        taken = mine[:limit]
        chosen = {id(m) for _, m in taken}
        self.buffer = [item for item in self.buffer if id(item[1]) not in chosen]
        return taken


def consumer_callback(callback: Callable[[DeliveredMessage], None]) -> ConsumerCallback:
    """A plain function as a consumer callback: aiormq wraps it in a coroutine itself."""
    return cast(ConsumerCallback, callback)


def delivery_tag(message: DeliveredMessage) -> int:
    """The tag that settles a consumed (``basic.deliver``) or fetched (``basic.get-ok``) message."""
    tag = message.delivery_tag
    assert tag is not None, "only basic.deliver and basic.get-ok carry a delivery tag"
    return tag


async def wait_any(events: Sequence[asyncio.Event], closing: asyncio.Future[object] | None, timeout: float) -> None:
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
