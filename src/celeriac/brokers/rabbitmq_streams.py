"""Streams (events, broadcast control) and mailboxes (replies) on RabbitMQ queues.

A stream is a RabbitMQ stream queue: an append-only, replicated log read from any offset without
consuming it. The cursor is the entry's offset. Retention is by bytes and age and happens a whole
segment at a time, so ``maxlen`` is turned into a byte budget (``stream_entry_bytes`` per entry)
and trimming is coarse. A mailbox is a durable queue that deletes itself after it has been idle
for ``mailbox_expires`` seconds; each item expires after its own ``ttl``.

Every read opens its own short-lived channel so its prefetch and consumer never meet ``fetch``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiormq import spec
from aiormq.abc import DeliveredMessage

from .rabbitmq_link import Link
from .rabbitmq_publish import Envelope, send
from .rabbitmq_topology import stream_args

#: after the first item, keep collecting while items keep coming this often
QUIET = 0.03


async def _collect(link: Link, real: str, limit: int, timeout: float, arguments: dict[str, Any]) -> tuple[Any, list[DeliveredMessage]]:
    """Consume up to ``limit`` messages: wait ``timeout`` for the first, then until quiet."""
    inbox: list[DeliveredMessage] = []
    arrived = asyncio.Event()

    def on_message(message: DeliveredMessage) -> None:
        inbox.append(message)
        arrived.set()

    async with link.scratch() as channel:
        await channel.basic_qos(prefetch_count=max(1, limit))
        ok = await channel.basic_consume(real, on_message, arguments=arguments)
        wait = timeout
        while len(inbox) < limit:
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), max(0.0, wait))
            except TimeoutError:
                break
            wait = QUIET
        taken = inbox[:limit]
        if taken and arguments.get("x-stream-offset") is None:
            await channel.basic_ack(taken[-1].delivery.delivery_tag, multiple=True)
        await channel.basic_cancel(ok.consumer_tag)
        return channel, taken


def _offset(message: DeliveredMessage) -> int:
    return int((message.header.properties.headers or {}).get("x-stream-offset", -1))


class Streams:
    """Streams and mailboxes of one broker."""

    def __init__(self, link: Link, *, entry_bytes: int, mailbox_expires: float) -> None:
        self.link = link
        self.entry_bytes = entry_bytes
        self.mailbox_expires = mailbox_expires

    async def _stream(self, stream: str, maxlen: int = 100_000, max_age: float = 86_400.0) -> str:
        real = self.link.topology.stream(stream)
        await self.link.declare(real, stream_args(maxlen, max_age, self.entry_bytes))
        return real

    async def append(self, stream: str, items: Sequence[bytes], maxlen: int, max_age: float) -> None:
        real = await self._stream(stream, maxlen, max_age)
        props = spec.Basic.Properties(delivery_mode=2)
        await send(self.link, [Envelope("", item, props, 0, "", real) for item in items])

    async def read(self, stream: str, after: str | None, limit: int, timeout: float) -> list[tuple[str, bytes]]:
        real = await self._stream(stream)
        start = int(after) + 1 if after else "first"
        _, taken = await _collect(self.link, real, limit, timeout, {"x-stream-offset": start})
        floor = int(after) if after else -1
        return [(str(_offset(m)), m.body) for m in taken if _offset(m) > floor]

    async def tail(self, stream: str) -> str | None:
        real = await self._stream(stream)
        _, taken = await _collect(self.link, real, 10_000, 0.2, {"x-stream-offset": "last"})
        offsets = [_offset(m) for m in taken]
        return str(max(offsets)) if offsets else None

    async def _box(self, box: str) -> str:
        real = self.link.topology.mailbox(box)
        await self.link.declare(real, {"x-expires": int(self.mailbox_expires * 1000)})
        return real

    async def put(self, box: str, item: bytes, ttl: float) -> None:
        real = await self._box(box)
        props = spec.Basic.Properties(delivery_mode=2, expiration=str(max(1, int(ttl * 1000))))
        await send(self.link, [Envelope("", item, props, 0, "", real)])

    async def take(self, box: str, timeout: float, limit: int) -> list[bytes]:
        real = await self._box(box)
        _, taken = await _collect(self.link, real, limit, timeout, {})
        return [m.body for m in taken]
