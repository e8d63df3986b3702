"""One AMQP connection per process, reopened with backoff, and the topology declared on it.

All of this runs on the broker's private loop (see :mod:`.rabbitmq_loop`). ``retrying`` wraps every
operation: when the connection or its channel is lost, the operation waits for a new connection
(backoff 0.1 s doubling to 5 s), the declarations are made again, and the operation is repeated.
An outage is logged once when it starts and once when it ends. ``generation`` grows with each
new connection so that delivery tags from an older one are recognised as void.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiormq
from aiormq.abc import AbstractChannel

from ..exceptions import ImproperlyConfigured
from .rabbitmq_topology import DELAY_LEVELS, Topology, delay_bindings, deliver_binding
from .rabbitmq_url import AMQPSettings

log = logging.getLogger("celeriac.brokers.rabbitmq")
# The client logs every forced close with a traceback; the outage is reported here once instead.
# Only when the application has not chosen a level for it.
if logging.getLogger("aiormq").level == logging.NOTSET:
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
T = TypeVar("T")

LOST = (aiormq.exceptions.AMQPConnectionError, aiormq.exceptions.ChannelInvalidStateError, ConnectionError, OSError)


class Link:
    """The connection, its two long-lived channels and the declarations already made on it."""

    def __init__(self, settings: AMQPSettings, topology: Topology, *, name: str, retry_for: float) -> None:
        self.settings = settings
        self.topology = topology
        self.name = name
        self.retry_for = retry_for
        self.generation = 0
        self._conn: aiormq.abc.AbstractConnection | None = None
        self._channels: dict[str, AbstractChannel] = {}
        self._declared: set[str] = set()
        self._connect_lock = asyncio.Lock()
        self._outage = False

    # -- connection --------------------------------------------------------------------------
    async def connection(self) -> aiormq.abc.AbstractConnection:
        conn = self._conn
        if conn is not None and not conn.is_closed:
            return conn
        async with self._connect_lock:
            if self._conn is None or self._conn.is_closed:
                await self._reconnect()
        assert self._conn is not None
        return self._conn

    async def _reconnect(self) -> None:
        delay = 0.1
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.retry_for
        while True:
            try:
                self._conn = await aiormq.connect(self.settings.client_url(self.name))
                break
            except LOST as exc:
                if not self._outage:
                    log.warning("RabbitMQ at %s:%s unreachable (%s); retrying", self.settings.host, self.settings.port, exc)
                    self._outage = True
                if loop.time() + delay > give_up:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if self._outage:
            log.warning("RabbitMQ connection restored")
            self._outage = False
        self.generation += 1
        self._channels = {}
        self._declared = set()

    async def channel(self, kind: str) -> AbstractChannel:
        """``pub`` (publisher confirms) or ``cons`` (consuming), reopened when closed."""
        channel = self._channels.get(kind)
        if channel is not None and not channel.is_closed:
            return channel
        conn = await self.connection()
        channel = await conn.channel(publisher_confirms=kind == "pub")
        self._channels[kind] = channel
        return channel

    @contextlib.asynccontextmanager
    async def scratch(self) -> AsyncIterator[AbstractChannel]:
        """A short-lived channel: for passive checks that may close it, and for browsing."""
        conn = await self.connection()
        channel = await conn.channel(publisher_confirms=False)
        try:
            yield channel
        finally:
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()

    async def retrying(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run ``op``; on connection loss reconnect and run it again (until ``retry_for``)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.retry_for
        while True:
            try:
                return await op()
            except LOST as exc:
                if loop.time() > give_up:
                    raise
                await self._lost(exc)
            except RuntimeError as exc:  # the client's "connection closed" while opening a channel
                if self._conn is None or not self._conn.is_closed or loop.time() > give_up:
                    raise
                await self._lost(exc)

    async def _lost(self, exc: BaseException) -> None:
        """Forget what failed: a closed channel only, or the whole connection if it is closed.

        A connection that is still open is never closed here: it may be a fresh one, made by
        another operation after the outage this one saw, holding new deliveries."""
        conn = self._conn
        if conn is not None and not conn.is_closed:
            self._channels = {k: c for k, c in self._channels.items() if not c.is_closed}
            log.debug("RabbitMQ channel lost (%s); reopening", exc)
            await asyncio.sleep(0.01)
            return
        if not self._outage:
            log.warning("RabbitMQ connection lost (%s); reconnecting", exc)
            self._outage = True
        self._conn = None
        await asyncio.sleep(0.05)

    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self._channels = {}
        if conn is not None and not conn.is_closed:
            with contextlib.suppress(Exception):
                await conn.close()

    # -- declarations ------------------------------------------------------------------------
    async def work_queue(self, name: str) -> str:
        """Declare a work queue with its dead-letter queue; return its real name."""
        real = self.topology.queue(name)
        if real in self._declared:
            return real
        channel = await self.channel("pub")
        await self._dlx(channel)
        dead = self.topology.dead_queue(name)
        await channel.queue_declare(dead, durable=True, arguments=self.topology.plain_args())
        await channel.queue_bind(dead, self.topology.dlx, routing_key=real)
        try:
            await channel.queue_declare(real, durable=True, arguments=self.topology.queue_args())
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise ImproperlyConfigured(
                f"RabbitMQ queue {real!r} exists with other arguments than celeriac declares ({exc}); delete it or use another queue name"
            ) from exc
        self._declared.add(real)
        return real

    async def _dlx(self, channel: AbstractChannel) -> None:
        if "dlx" not in self._declared:
            await channel.exchange_declare(self.topology.dlx, exchange_type="direct", durable=True)
            self._declared.add("dlx")

    async def delay_route(self, name: str) -> None:
        """Declare the delay levels (once) and bind work queue ``name`` to their last exchange."""
        real = await self.work_queue(name)
        channel = await self.channel("pub")
        if "delay" not in self._declared:
            await self._delay_levels(channel)
            self._declared.add("delay")
        key = f"delay:{real}"
        if key not in self._declared:
            await channel.queue_bind(real, self.topology.delay_exchange(-1), routing_key=deliver_binding(real))
            self._declared.add(key)

    async def _delay_levels(self, channel: AbstractChannel) -> None:
        top = self.topology
        await channel.exchange_declare(top.delay_exchange(-1), exchange_type="topic", durable=True)
        for level in range(DELAY_LEVELS):
            exchange = top.delay_exchange(level)
            await channel.exchange_declare(exchange, exchange_type="topic", durable=True)
            wait = top.delay_queue(level)
            await channel.queue_declare(wait, durable=True, arguments=top.delay_queue_args(level))
            to_wait, onward = delay_bindings(level)
            await channel.queue_bind(wait, exchange, routing_key=to_wait)
            await channel.exchange_bind(top.delay_exchange(level - 1), exchange, routing_key=onward)

    async def declare(self, real: str, arguments: dict[str, Any]) -> None:
        """Declare a durable queue once per connection (streams, mailboxes).

        If it exists with other arguments (another retention, say), it is used as it is."""
        if real in self._declared:
            return
        with contextlib.suppress(aiormq.exceptions.ChannelPreconditionFailed):
            async with self.scratch() as channel:
                await channel.queue_declare(real, durable=True, arguments=arguments)
        self._declared.add(real)

    def forget(self, real: str) -> None:
        self._declared.discard(real)

    def reset_declarations(self) -> None:
        self._declared = set()
