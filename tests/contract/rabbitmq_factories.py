"""RabbitMQ broker factory for the contract suite: a random queue prefix per test, deleted after."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import aiormq

from celeriac.brokers import from_url

URL = "amqp://guest:guest@127.0.0.1:5672//"


@contextmanager
def rabbitmq_broker(tmp_path, options) -> Iterator[object]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    broker = from_url(URL, {"queue_prefix": prefix, **options})
    try:
        yield broker
    finally:
        broker.close()
        delete_prefixed(prefix)


def delete_prefixed(prefix: str) -> None:
    """Delete every queue and exchange whose name starts with ``prefix``."""
    asyncio.run(_delete(prefix))


async def _delete(prefix: str) -> None:
    queues, exchanges = _names(prefix)
    conn = await aiormq.connect(URL)
    try:
        channel = await conn.channel()
        for queue in queues:
            await channel.queue_delete(queue)
        for exchange in exchanges:
            await channel.exchange_delete(exchange)
    finally:
        await conn.close()


def _names(prefix: str) -> tuple[list[str], list[str]]:
    import subprocess

    def listed(kind: str) -> list[str]:
        out = subprocess.run(["rabbitmqctl", "-q", f"list_{kind}", "name"], capture_output=True, text=True, check=True).stdout
        return [line.strip() for line in out.splitlines() if line.strip().startswith(prefix)]

    return listed("queues"), listed("exchanges")
