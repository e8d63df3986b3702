"""Brokers, chosen by URL scheme and imported only when used."""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import ImproperlyConfigured
from .base import Broker, DeadLetter, Delivery, Outgoing, QueueStats

SCHEMES: dict[str, str] = {
    "memory": "celeriac.brokers.memory:MemoryBroker",
    "sqlite": "celeriac.brokers.sqlite:SQLiteBroker",
    "redis": "celeriac.brokers.redis:RedisBroker",
    "rediss": "celeriac.brokers.redis:RedisBroker",
    "redis+socket": "celeriac.brokers.redis:RedisBroker",
    "redis+sentinel": "celeriac.brokers.redis:RedisBroker",
    "sentinel": "celeriac.brokers.redis:RedisBroker",
    "amqp": "celeriac.brokers.rabbitmq:RabbitMQBroker",
    "amqps": "celeriac.brokers.rabbitmq:RabbitMQBroker",
    "pyamqp": "celeriac.brokers.rabbitmq:RabbitMQBroker",
}

EXTRAS = {"redis": "redis", "amqp": "amqp"}


def scheme_of(url: str) -> str:
    """The URL scheme, or a clear error saying what a broker URL looks like."""
    if not isinstance(url, str) or "://" not in url:
        raise ImproperlyConfigured(
            f"bad broker URL {url!r}: expected a URL such as redis://localhost:6379/0, "
            "amqp://guest:guest@localhost:5672//, sqlite:///celeriac.sqlite3 or memory://"
        )
    try:
        return urlsplit(url).scheme.lower()
    except ValueError as exc:
        raise ImproperlyConfigured(f"bad URL {url!r}: {exc}") from exc


def load(target: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        extra = "redis" if "redis" in module else "amqp" if "rabbitmq" in module else None
        hint = f'; install it with: pip install "celeriac[{extra}]"' if extra else ""
        raise ImproperlyConfigured(f"cannot load {target}: {exc}{hint}") from exc


def from_url(url: str, transport_options: dict[str, Any] | None = None) -> Broker:
    """Create the broker for ``url`` with the app's ``broker_transport_options``."""
    scheme = scheme_of(url)
    target = SCHEMES.get(scheme)
    if target is None:
        known = ", ".join(sorted(SCHEMES))
        raise ImproperlyConfigured(f"unknown broker scheme {scheme!r} in {url!r}; known schemes: {known}")
    cls: type[Broker] = load(target)
    return cls(url, transport_options=transport_options or {})  # type: ignore[call-arg]  # every broker takes these


__all__ = ["Broker", "DeadLetter", "Delivery", "Outgoing", "QueueStats", "from_url", "scheme_of"]
