"""Result backends, chosen by URL scheme and imported only when used."""

from __future__ import annotations

from typing import Any

from ..brokers import load, scheme_of
from ..exceptions import ImproperlyConfigured
from .base import Meta, ResultBackend

SCHEMES: dict[str, str] = {
    "memory": "celeriac.backends.memory:MemoryBackend",
    "cache+memory": "celeriac.backends.memory:MemoryBackend",
    "sqlite": "celeriac.backends.sqlite:SQLiteBackend",
    "db+sqlite": "celeriac.backends.sqlite:SQLiteBackend",
    "redis": "celeriac.backends.redis:RedisBackend",
    "rediss": "celeriac.backends.redis:RedisBackend",
    "redis+socket": "celeriac.backends.redis:RedisBackend",
    "redis+sentinel": "celeriac.backends.redis:RedisBackend",
    "sentinel": "celeriac.backends.redis:RedisBackend",
    "disabled": "celeriac.backends.disabled:DisabledBackend",
}


def from_url(url: str, transport_options: dict[str, Any] | None = None) -> ResultBackend:
    """Create the result backend for ``url``."""
    scheme = scheme_of(url)
    target = SCHEMES.get(scheme)
    if target is None:
        known = ", ".join(sorted(SCHEMES))
        raise ImproperlyConfigured(f"unknown result backend scheme {scheme!r} in {url!r}; known schemes: {known}")
    cls: type[ResultBackend] = load(target)
    if scheme == "disabled":
        return cls()
    return cls(url, transport_options=transport_options or {})  # type: ignore[call-arg]  # every backend takes these


__all__ = ["Meta", "ResultBackend", "from_url"]
