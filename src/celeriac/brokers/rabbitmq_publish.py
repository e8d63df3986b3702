"""Publishing with publisher confirms: a call returns only when RabbitMQ has every message.

A message the server did not confirm (connection lost, nack, unroutable after a queue was deleted)
is sent again on a fresh connection; the ones it did confirm are not, so a retry duplicates nothing
that is already stored. Delayed messages enter the delay levels (see :mod:`.rabbitmq_topology`).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import aiormq
from aiormq import spec
from aiormq.abc import DeliveredMessage
from pamqp.base import Frame

from .base import Outgoing
from .rabbitmq_link import Link
from .rabbitmq_topology import DELAY_LEVELS, H_DELIVERED, H_ENQUEUED, H_QUEUE, delay_routing_key, delay_seconds

_MAX_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message to send: to a work queue after ``delay`` seconds, or to a fixed exchange.

    With a fixed exchange, ``queue`` names a work queue to declare first, or is empty."""

    queue: str
    body: bytes
    properties: spec.Basic.Properties
    delay: int = 0
    exchange: str | None = None
    routing_key: str = ""


def envelope_of(message: Outgoing, now: float) -> Envelope:
    properties = spec.Basic.Properties(
        delivery_mode=2,
        priority=max(0, min(9, message.priority)),
        message_id=message.message_id,
        headers={H_QUEUE: message.queue, H_ENQUEUED: int(now * 1000), H_DELIVERED: 0},
    )
    return Envelope(message.queue, message.payload, properties, delay_seconds(message.eta, now))


def resend_of(queue: str, message: DeliveredMessage, counted: int, delay: float = 0.0, **headers: Any) -> Envelope:
    """The same message again, carrying ``counted`` deliveries and any extra headers."""
    properties = copy.copy(message.header.properties)
    merged = dict(properties.headers or {})
    merged.update({H_DELIVERED: max(0, counted), H_QUEUE: queue, **headers})
    merged.setdefault(H_ENQUEUED, int(time.time() * 1000))
    properties.headers = merged
    properties.delivery_mode = 2
    return Envelope(queue, message.body, properties, delay_seconds(time.time() + delay, time.time()) if delay > 0 else 0)


async def _route(link: Link, envelope: Envelope) -> tuple[str, str]:
    if envelope.exchange is not None:
        if envelope.queue:
            await link.work_queue(envelope.queue)  # its dead-letter queue is declared with it
        return envelope.exchange, envelope.routing_key
    if envelope.delay:
        await link.delay_route(envelope.queue)
        real = link.topology.queue(envelope.queue)
        return link.topology.delay_exchange(DELAY_LEVELS - 1), delay_routing_key(envelope.delay, real)
    return "", await link.work_queue(envelope.queue)


async def send(link: Link, envelopes: Sequence[Envelope]) -> None:
    """Publish and wait for every confirm, resending the unconfirmed across reconnects."""
    pending = list(envelopes)
    rounds = 0

    async def attempt() -> None:
        nonlocal pending, rounds
        while pending:
            rounds += 1
            if rounds > _MAX_ROUNDS:
                raise aiormq.exceptions.DeliveryError(None, cast(Frame, None))
            channel = await link.channel("pub")
            routes = [await _route(link, e) for e in pending]
            results = await _publish_all(channel, pending, routes)
            failed = [e for e, r in zip(pending, results, strict=True) if not isinstance(r, spec.Basic.Ack)]
            errors = [r for r in results if isinstance(r, BaseException)]
            pending = failed
            lost = [e for e in errors if not isinstance(e, aiormq.exceptions.DeliveryError)]
            if lost:  # confirms cut off by a closing channel: resend those on a new connection
                raise ConnectionError(f"publish not confirmed: {lost[0]!r}") from lost[0]
            if failed:
                link.reset_declarations()  # unroutable or nacked: a queue may have been deleted

    await link.retrying(attempt)


async def _publish_all(channel: Any, envelopes: Sequence[Envelope], routes: Sequence[tuple[str, str]]) -> list[Any]:
    return await asyncio.gather(
        *(
            channel.basic_publish(e.body, exchange=x, routing_key=rk, properties=e.properties, mandatory=True)
            for e, (x, rk) in zip(envelopes, routes, strict=True)
        ),
        return_exceptions=True,
    )
