"""Broker and backend factories the contract tests run against.

Each factory yields a fresh, isolated instance (its own file, db or key prefix) and cleans up.
A new broker adds itself to BROKERS / BACKENDS here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from celeriac.backends import from_url as backend_from_url
from celeriac.brokers import from_url as broker_from_url

from ..conftest import require_service


@contextmanager
def memory_broker(tmp_path, options) -> Iterator[object]:
    broker = broker_from_url(f"memory://contract-{uuid.uuid4().hex}", options)
    yield broker
    broker.close()


@contextmanager
def sqlite_broker(tmp_path, options) -> Iterator[object]:
    broker = broker_from_url(f"sqlite:///{tmp_path / 'broker.sqlite3'}", options)
    yield broker
    broker.close()


@contextmanager
def memory_backend(tmp_path) -> Iterator[object]:
    yield backend_from_url(f"memory://contract-{uuid.uuid4().hex}")


@contextmanager
def sqlite_backend(tmp_path) -> Iterator[object]:
    backend = backend_from_url(f"sqlite:///{tmp_path / 'results.sqlite3'}")
    yield backend
    backend.close()


BROKERS: dict[str, tuple[Callable[..., object], str | None]] = {
    "memory": (memory_broker, None),
    "sqlite": (sqlite_broker, None),
}
BACKENDS: dict[str, tuple[Callable[..., object], str | None]] = {
    "memory": (memory_backend, None),
    "sqlite": (sqlite_backend, None),
}


def _register_optional() -> None:
    """Brokers whose modules exist join the contract; their servers are required in CI."""
    import importlib.util

    if importlib.util.find_spec("celeriac.brokers.redis") is not None:
        from . import redis_factories

        BROKERS["redis"] = (redis_factories.redis_broker, "redis")
        BACKENDS["redis"] = (redis_factories.redis_backend, "redis")
    if importlib.util.find_spec("celeriac.brokers.rabbitmq") is not None:
        from . import rabbitmq_factories

        BROKERS["rabbitmq"] = (rabbitmq_factories.rabbitmq_broker, "rabbitmq")


_register_optional()


@pytest.fixture(params=sorted(BROKERS))
def make_broker(request, tmp_path):
    """Call with transport options to get a fresh broker of each kind."""
    factory, service = BROKERS[request.param]
    if service:
        require_service(service)
    stack = []

    def make(**options):
        cm = factory(tmp_path, options)
        stack.append(cm)
        return cm.__enter__()

    yield make
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


@pytest.fixture
def broker(make_broker):
    return make_broker()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, tmp_path):
    factory, service = BACKENDS[request.param]
    if service:
        require_service(service)
    with factory(tmp_path) as instance:
        yield instance
