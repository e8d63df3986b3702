"""Redis broker and backend for the contract tests: each test gets its own key prefix, deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from celeriac.backends import from_url as backend_from_url
from celeriac.brokers import from_url as broker_from_url

URL = "redis://127.0.0.1:6379/0"


def delete_prefix(prefix: str) -> None:
    """Delete every key under ``prefix`` (the test's own namespace)."""
    client = redis.Redis.from_url(URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@contextmanager
def redis_broker(tmp_path, options) -> Iterator[object]:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    broker = broker_from_url(URL, {"global_keyprefix": prefix, **options})
    try:
        yield broker
    finally:
        broker.close()
        delete_prefix(prefix)


@contextmanager
def redis_backend(tmp_path) -> Iterator[object]:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    backend = backend_from_url(URL, {"global_keyprefix": prefix})
    try:
        yield backend
    finally:
        backend.close()
        delete_prefix(prefix)
