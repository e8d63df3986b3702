"""Counting, purging and the dead-letter store, done with what AMQP 0-9-1 offers.

AMQP cannot list a queue without taking its messages, so "browsing" takes them with ``basic.get``
on a scratch channel and closes the channel, which puts every one back in place. That is used
only where it is harmless: on dead-letter queues (never consumed) and on delay wait queues (a held
message just waits a moment longer), never on work queues, where it would mark messages
redelivered. Browsing stops at ``BROWSE_CAP`` messages; counts beyond it are lower bounds.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import cast

import aiormq
from aiormq import spec
from aiormq.abc import AbstractChannel, DeliveredMessage, FieldTable

from .base import DeadLetter
from .rabbitmq_consumers import delivery_tag
from .rabbitmq_link import Link
from .rabbitmq_publish import Envelope, resend_of, send
from .rabbitmq_topology import (
    DELAY_LEVELS,
    H_DEAD_ID,
    H_DELIVERED,
    H_FAILED_AT,
    H_QUEUE,
    H_REASON,
    queue_of_delay_key,
)

BROWSE_CAP = 10_000


async def depth(link: Link, real: str) -> int:
    """Ready messages in a queue (0 if it does not exist), from a passive declare."""
    return (await depths(link, [real]))[real]


async def depths(link: Link, reals: Sequence[str]) -> dict[str, int]:
    """Ready messages per queue; a missing queue closes the scratch channel, so reopen then."""
    found: dict[str, int] = {}
    pending = list(reals)
    while pending:
        async with link.scratch() as channel:
            while pending:
                try:
                    ok = await channel.queue_declare(pending[0], passive=True)
                except aiormq.exceptions.ChannelNotFoundEntity:
                    found[pending.pop(0)] = 0
                    break
                found[pending.pop(0)] = int(ok.message_count or 0)
    return found


@contextlib.asynccontextmanager
async def browsing(link: Link, real: str, cap: int = BROWSE_CAP) -> AsyncIterator[tuple[AbstractChannel, list[DeliveredMessage]]]:
    """Take up to ``cap`` messages; those not acked on the channel go back when it closes."""
    async with link.scratch() as channel:
        taken: list[DeliveredMessage] = []
        with contextlib.suppress(aiormq.exceptions.ChannelNotFoundEntity):
            while len(taken) < cap:
                message = await channel.basic_get(real, no_ack=False)
                if isinstance(message.delivery, spec.Basic.GetEmpty):
                    break
                taken.append(message)
        yield channel, taken


async def delayed_counts(link: Link) -> Counter[str]:
    """Delayed messages per target queue (logical name), across all wait queues."""
    counts: Counter[str] = Counter()
    sizes = await depths(link, [link.topology.delay_queue(level) for level in range(DELAY_LEVELS)])
    for real in (name for name, size in sizes.items() if size):
        async with browsing(link, real) as (_, taken):
            counts.update(link.topology.logical(queue_of_delay_key(m.routing_key or "")) for m in taken)
    return counts


class DelayedCounts:
    """``delayed_counts`` kept for ``max_age`` seconds: browsing is too costly for every poll.

    The owner drops it when it publishes a delay itself, so its own changes show at once; delays
    published by other processes show within ``max_age``."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._counts: Counter[str] | None = None
        self._at = 0.0

    async def get(self, link: Link) -> Counter[str]:
        if self._counts is None or time.monotonic() - self._at > self.max_age:
            self._counts = await delayed_counts(link)
            self._at = time.monotonic()
        return self._counts

    def invalidate(self) -> None:
        self._counts = None


async def purge(link: Link, queue: str) -> int:
    """Empty a work queue and take its messages out of the delay wait queues."""
    real = await link.work_queue(queue)
    channel = await link.channel("pub")
    ok = await channel.queue_purge(real)
    removed = int(ok.message_count or 0)
    sizes = await depths(link, [link.topology.delay_queue(level) for level in range(DELAY_LEVELS)])
    for wait in (name for name, size in sizes.items() if size):
        removed += await _drop_matching(link, wait, lambda m: queue_of_delay_key(m.routing_key or "") == real)
    return removed


async def _drop_matching(link: Link, real: str, match: Callable[[DeliveredMessage], bool]) -> int:
    async with browsing(link, real) as (channel, taken):
        chosen = [m for m in taken if match(m)]
        for message in chosen:
            await channel.basic_ack(delivery_tag(message))
        return len(chosen)


def dead_letter_of(queue: str, message: DeliveredMessage) -> DeadLetter:
    headers = message.header.properties.headers or {}
    deaths = headers.get("x-death") or [{}]
    first = cast(FieldTable, deaths[0]) if isinstance(deaths, list) and deaths else {}
    reason = headers.get(H_REASON) or f"dead-lettered by RabbitMQ: {first.get('reason', 'unknown')!s}"
    failed_at = int(cast(int, headers.get(H_FAILED_AT) or 0)) / 1000 or _epoch(first.get("time")) or time.time()
    key = headers.get(H_DEAD_ID) or message.header.properties.message_id or ""
    return DeadLetter(
        f"{queue}:{key!s}",
        str(headers.get(H_QUEUE) or queue),
        message.header.properties.message_id or "",
        message.body,
        _text(reason),
        float(failed_at),
        int(cast(int, headers.get(H_DELIVERED) or 0)),
    )


def _epoch(value: object) -> float | None:
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def dead_letters(link: Link, queues: Iterable[str], limit: int) -> list[DeadLetter]:
    found: list[DeadLetter] = []
    for queue in queues:
        async with browsing(link, link.topology.dead_queue(queue)) as (_, taken):
            found.extend(dead_letter_of(queue, m) for m in taken)
    found.sort(key=lambda d: d.failed_at, reverse=True)
    return found[:limit]


async def requeue_dead(link: Link, ids: Sequence[str]) -> int:
    """Send chosen dead letters back to their queues with a fresh delivery count."""
    wanted: dict[str, set[str]] = {}
    for dead_id in ids:
        queue, _, _key = dead_id.rpartition(":")
        wanted.setdefault(queue, set()).add(dead_id)
    moved = 0
    for queue, chosen_ids in wanted.items():
        async with browsing(link, link.topology.dead_queue(queue)) as (channel, taken):
            chosen = [m for m in taken if dead_letter_of(queue, m).id in chosen_ids]
            await send(link, [_fresh(queue, m) for m in chosen])
            for message in chosen:
                await channel.basic_ack(delivery_tag(message))
            moved += len(chosen)
    return moved


def _fresh(queue: str, message: DeliveredMessage) -> Envelope:
    envelope = resend_of(queue, message, 0)
    headers = envelope.properties.headers
    assert headers is not None, "resend_of sets the headers"
    for key in (H_REASON, H_FAILED_AT, H_DEAD_ID, "x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason"):
        headers.pop(key, None)
    return envelope
