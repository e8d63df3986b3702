"""Streams (events, broadcast control) and mailboxes (replies) on RabbitMQ queues.

A stream is a RabbitMQ stream queue: an append-only, replicated log read from any offset without
consuming it. One ``append`` is one stream message that packs its items (each a 4-byte length and
the bytes, header ``x-celeriac-pack``; see ``packing.py``), up to ``PACK_BYTES`` a message: a
worker flushes hundreds of events at once, and a publish and confirm per event cost its
connection's loop so much CPU that its acks and deliveries waited behind them. The cursor of an
item is ``<offset>-<index>``; a plain ``<offset>`` (an unpacked message) reads as that whole
message. Retention is by bytes and age and happens a whole segment at a time, so ``maxlen`` is
turned into a byte budget (``stream_entry_bytes`` per item) and trimming is coarse. A mailbox is a
durable queue that deletes itself after it has been idle for ``mailbox_expires`` seconds; each item
expires after its own ``ttl``.

Every read opens its own short-lived channel so its prefetch and consumer never meet ``fetch``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from aiormq import spec
from aiormq.abc import DeliveredMessage

from .packing import PACK_BYTES, pack_groups
from .packing import unpack as unpack_body
from .rabbitmq_consumers import consumer_callback, delivery_tag
from .rabbitmq_link import Link
from .rabbitmq_publish import Envelope, send
from .rabbitmq_topology import stream_args

#: after the first item, keep collecting while items keep coming this often
QUIET = 0.03
#: messages asked for per read: packed ones hold many items each
READ_MESSAGES = 256
H_PACK = "x-celeriac-pack"
_WHOLE = 1 << 62  # the index of a plain-offset cursor: past any item of its message


async def _collect(link: Link, real: str, limit: int, timeout: float, arguments: dict[str, Any]) -> tuple[Any, list[DeliveredMessage]]:
    """Consume up to ``limit`` messages: wait ``timeout`` for the first, then until quiet."""
    inbox: list[DeliveredMessage] = []
    arrived = asyncio.Event()

    def on_message(message: DeliveredMessage) -> None:
        inbox.append(message)
        arrived.set()

    async with link.scratch() as channel:
        await channel.basic_qos(prefetch_count=max(1, limit))
        ok = await channel.basic_consume(real, consumer_callback(on_message), arguments=arguments)
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
            await channel.basic_ack(delivery_tag(taken[-1]), multiple=True)
        await channel.basic_cancel(cast(str, ok.consumer_tag))
        return channel, taken


def _offset(message: DeliveredMessage) -> int:
    return int(cast(int, (message.header.properties.headers or {}).get("x-stream-offset", -1)))


def packs(items: Sequence[bytes], limit: int = PACK_BYTES) -> list[bytes]:
    """The bodies of the stream messages that carry ``items`` in order."""
    return [body for _, body in pack_groups(items, limit)]


def unpack(message: DeliveredMessage) -> list[bytes]:
    """The items of a stream message: packed ones in order, any other as one item."""
    if not (message.header.properties.headers or {}).get(H_PACK):
        return [message.body]
    return unpack_body(message.body)


def parse_cursor(cursor: str | None) -> tuple[int, int] | None:
    """``(offset, index)`` of the last item read; a plain offset means its whole message was read."""
    if not cursor:
        return None
    offset, _, index = cursor.partition("-")
    return int(offset), int(index) if index else _WHOLE


def entries(messages: Sequence[DeliveredMessage], after: tuple[int, int] | None, limit: int) -> list[tuple[str, bytes]]:
    """``(cursor, item)`` pairs past ``after``, in stream order, at most ``limit`` of them."""
    out: list[tuple[str, bytes]] = []
    for message in sorted(messages, key=_offset):
        offset = _offset(message)
        for index, item in enumerate(unpack(message)):
            if after is not None and (offset, index) <= after:
                continue
            if len(out) >= limit:
                return out
            out.append((f"{offset}-{index}", item))
    return out


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
        props = spec.Basic.Properties(delivery_mode=2, headers={H_PACK: 1})
        await send(self.link, [Envelope("", body, props, 0, "", real) for body in packs(items)])

    async def read(self, stream: str, after: str | None, limit: int, timeout: float) -> list[tuple[str, bytes]]:
        real = await self._stream(stream)
        last = parse_cursor(after)
        # a cursor inside a message starts there again (its earlier items are skipped); a whole one after it
        start = "first" if last is None else last[0] + 1 if last[1] == _WHOLE else last[0]
        want = max(1, min(limit, READ_MESSAGES))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        _, taken = await _collect(self.link, real, want, timeout, {"x-stream-offset": start})
        found = entries(taken, last, limit)
        if not found and last is not None and start == last[0] and all(_offset(m) <= start for m in taken):
            # the cursor was the last item of its message, and nothing newer had come: wait for it
            _, taken = await _collect(self.link, real, want, deadline - loop.time(), {"x-stream-offset": start + 1})
            found = entries(taken, last, limit)
        return found

    async def tail(self, stream: str) -> str | None:
        real = await self._stream(stream)
        _, taken = await _collect(self.link, real, 10_000, 0.2, {"x-stream-offset": "last"})
        if not taken:
            return None
        newest = max(taken, key=_offset)
        return f"{_offset(newest)}-{len(unpack(newest)) - 1}"

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
