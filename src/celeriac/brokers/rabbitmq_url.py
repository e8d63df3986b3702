"""Broker URLs for RabbitMQ, read the way Celery users write them.

``amqp://user:pass@host:port/vhost?heartbeat=N``; ``amqps://`` adds TLS; ``pyamqp://`` is an alias
of ``amqp://``. A path of ``/`` or ``//`` (Celery's spelling) means the default vhost ``/``; any
other path is the vhost with ``%2F`` standing for ``/``. Query options ``cafile``, ``certfile``,
``keyfile`` and ``no_verify_ssl`` are passed to the client for TLS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from ..exceptions import ImproperlyConfigured

_TLS_KEYS = ("cafile", "capath", "certfile", "keyfile", "no_verify_ssl")


@dataclass(frozen=True, slots=True)
class AMQPSettings:
    """Where and how to connect."""

    host: str = "localhost"
    port: int = 5672
    user: str = "guest"
    password: str = "guest"  # noqa: S105 - RabbitMQ's documented default
    vhost: str = "/"
    heartbeat: int = 60
    tls: bool = False
    tls_options: dict[str, str] = field(default_factory=dict)

    def client_url(self, name: str = "celeriac") -> str:
        """The URL in the client library's own spelling (vhost quoted whole)."""
        scheme = "amqps" if self.tls else "amqp"
        auth = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        query = {"heartbeat": str(self.heartbeat), "name": name, **self.tls_options}
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{auth}@{host}:{self.port}/{quote(self.vhost, safe='')}?{urlencode(query)}"


def parse_url(url: str) -> AMQPSettings:
    """Read an ``amqp://``, ``amqps://`` or ``pyamqp://`` URL; unknown options are an error."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("amqp", "amqps", "pyamqp"):
        raise ImproperlyConfigured(f"not a RabbitMQ URL: {url!r}")
    tls = scheme == "amqps"
    query = dict(parse_qsl(parts.query))
    unknown = set(query) - {"heartbeat", *_TLS_KEYS}
    if unknown:
        raise ImproperlyConfigured(f"unknown option(s) {sorted(unknown)} in broker URL; known: heartbeat, {', '.join(_TLS_KEYS)}")
    try:
        heartbeat = int(query.get("heartbeat", "60"))
        port = parts.port or (5671 if tls else 5672)
    except ValueError as exc:
        raise ImproperlyConfigured(f"bad number in broker URL {url!r}: {exc}") from exc
    return AMQPSettings(
        host=parts.hostname or "localhost",
        port=port,
        user=unquote(parts.username) if parts.username else "guest",
        password=unquote(parts.password) if parts.password else "guest",
        vhost=_vhost(parts.path),
        heartbeat=heartbeat,
        tls=tls,
        tls_options={k: v for k, v in query.items() if k in _TLS_KEYS},
    )


def _vhost(path: str) -> str:
    if path in ("", "/", "//"):
        return "/"
    return unquote(path[1:])
