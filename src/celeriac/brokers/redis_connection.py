"""Redis connections for the broker and the result backend: URL parsing, retries, outage logging.

Accepted URLs::

    redis://[[user]:password@]host[:port][/db]
    rediss://...?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem     (TLS)
    redis+socket:///path/to/redis.sock?virtual_host=0                  (Unix socket)
    redis+sentinel://[:password@]host:26379/0;sentinel://host2:26379/0  (master_name in options)

Every client retries a command that failed on a lost connection with exponential backoff
(redis-py's ``Retry``) and reports the outage once through :class:`Outage`, not once per attempt.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from ..exceptions import ImproperlyConfigured
from .redis_lib import redis

ExponentialBackoff = redis.backoff.ExponentialBackoff
RedisConnectionError = redis.exceptions.ConnectionError
RedisTimeoutError = redis.exceptions.TimeoutError
Retry = redis.retry.Retry

logger = logging.getLogger("celeriac.redis")

#: errors that mean "the connection is gone", worth a reconnect and a retry
CONNECTION_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)

#: no single blocking command waits longer than this, so the socket timeout can catch dead peers
MAX_BLOCK = 5.0
SOCKET_TIMEOUT = MAX_BLOCK + 10.0

_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}

T = TypeVar("T")


@dataclass(frozen=True)
class RedisTarget:
    """Where to connect, as parsed from a URL (pure data, easy to test)."""

    kind: str  # "tcp", "unix" or "sentinel"
    host: str = "localhost"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    path: str | None = None
    ssl: dict[str, Any] | None = None
    sentinels: list[tuple[str, int]] = field(default_factory=list)


def close_client(client: redis.Redis | None) -> None:
    """Close a client and its pool; a connection that is already gone is not an error."""
    if client is None:
        return
    try:
        client.close()
        client.connection_pool.disconnect()
    except CONNECTION_ERRORS:
        pass


def _db_from(path: str, query: dict[str, list[str]]) -> int:
    raw = (query.get("virtual_host") or query.get("db") or [path.strip("/") or "0"])[0]
    try:
        return int(raw.strip("/") or 0)
    except ValueError:
        raise ImproperlyConfigured(f"Redis database must be a number, got {raw!r}") from None


def _ssl_options(query: dict[str, list[str]]) -> dict[str, Any]:
    options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    for name, values in query.items():
        if not name.startswith("ssl_"):
            continue
        value = values[0]
        if name == "ssl_cert_reqs":
            key = value.lower().removeprefix("cert_")
            if key not in _CERT_REQS:
                raise ImproperlyConfigured(f"ssl_cert_reqs must be required, optional or none, got {value!r}")
            options[name] = _CERT_REQS[key]
        else:
            options[name] = value
    return options


def parse_url(url: str) -> RedisTarget:
    """Parse one of the accepted URL forms into a :class:`RedisTarget`."""
    first = url.split(";")[0]
    parts = urlsplit(first)
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if scheme == "redis+socket":
        return RedisTarget("unix", db=_db_from("", query), password=password, username=username, path=parts.path)
    db = _db_from(parts.path, query)
    if scheme in ("redis+sentinel", "sentinel"):
        sentinels = [_host_port(part, 26379) for part in url.split(";") if part.strip()]
        return RedisTarget("sentinel", db=db, username=username, password=password, sentinels=sentinels)
    if scheme not in ("redis", "rediss"):
        raise ImproperlyConfigured(f"not a Redis URL: {url!r}")
    tls = _ssl_options(query) if scheme == "rediss" else None
    host, port = _host_port(first, 6379)
    return RedisTarget("tcp", host=host, port=port, db=db, username=username, password=password, ssl=tls)


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url.strip())
    try:
        port = parts.port
        if parts.netloc.endswith(":"):
            raise ValueError("empty port")
    except ValueError:
        raise ImproperlyConfigured(
            f"bad port in {_masked(url)!r}: write a number from 1 to 65535, as in redis://localhost:6379/0"
        ) from None
    return parts.hostname or "localhost", port or default_port


def _masked(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":**@", 1)


class Outage:
    """Logs a lost connection once, and its recovery once, however many retries happen between.

    After a restart every pooled connection fails once on its next use; failures within a few
    seconds of a recovery belong to the same outage and are not announced again.
    """

    SETTLE = 5.0

    def __init__(self, what: str) -> None:
        self.what = what
        self.down = False
        self._quiet = False
        self._restored_at = float("-inf")
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> Outage:
        return self  # redis-py copies each connection's retry policy; the outage stays shared

    def lost(self, error: BaseException) -> None:
        with self._lock:
            if self.down:
                return
            self.down = True
            self._quiet = time.monotonic() - self._restored_at < self.SETTLE
        if not self._quiet:
            logger.warning("%s: lost the connection to Redis (%s); retrying with backoff", self.what, error)

    def restored(self) -> None:
        if not self.down:
            return
        with self._lock:
            if not self.down:
                return
            self.down = False
            self._restored_at = time.monotonic()
            quiet = self._quiet
        if not quiet:
            logger.info("%s: connection to Redis restored", self.what)


class _ReportingRetry(Retry):
    """redis-py's retry loop, telling :class:`Outage` about failures and the success after them."""

    def __init__(self, outage: Outage, retries: int) -> None:
        super().__init__(ExponentialBackoff(cap=2.0, base=0.05), retries, supported_errors=CONNECTION_ERRORS)
        self.outage = outage

    def call_with_retry(self, do: Callable[[], T], fail: Callable[[Exception], Any], *args: Any, **kwargs: Any) -> T:
        def failed(error: Exception) -> None:
            self.outage.lost(error)
            fail(error)

        result = super().call_with_retry(do, failed, *args, **kwargs)
        self.outage.restored()
        return result


def connection_kwargs(target: RedisTarget, outage: Outage, options: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments shared by every client of a target."""
    retries = int(options.get("max_retries", 20))
    kwargs: dict[str, Any] = {
        "db": target.db,
        "username": target.username,
        "password": target.password,
        "socket_timeout": _seconds(options.get("socket_timeout", SOCKET_TIMEOUT)),
        "socket_connect_timeout": float(options.get("socket_connect_timeout", 5.0)),
        "socket_keepalive": True,
        "retry": _ReportingRetry(outage, retries),
        "retry_on_error": list(CONNECTION_ERRORS),
        "health_check_interval": int(options.get("health_check_interval", 25)),
        "client_name": options.get("client_name"),
    }
    if target.ssl is not None:
        kwargs.update(target.ssl)
        kwargs["ssl"] = True
    return kwargs


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)


def make_client(target: RedisTarget, outage: Outage, options: Mapping[str, Any]) -> redis.Redis:
    """A thread-safe client (one pool) for the target; sockets open on first use."""
    kwargs = connection_kwargs(target, outage, options)
    max_connections = options.get("max_connections")
    if target.kind == "sentinel":
        return _sentinel_client(target, kwargs, options)
    if target.kind == "unix":
        kwargs.pop("socket_keepalive")
        pool = redis.ConnectionPool(
            connection_class=redis.UnixDomainSocketConnection, path=target.path, max_connections=max_connections, **kwargs
        )
        return redis.Redis(connection_pool=pool)
    ssl_on = kwargs.pop("ssl", False)
    connection_class = redis.SSLConnection if ssl_on else redis.Connection
    pool = redis.ConnectionPool(
        connection_class=connection_class, host=target.host, port=target.port, max_connections=max_connections, **kwargs
    )
    return redis.Redis(connection_pool=pool)


def _sentinel_client(target: RedisTarget, kwargs: dict[str, Any], options: Mapping[str, Any]) -> redis.Redis:
    from redis.sentinel import Sentinel

    master = options.get("master_name")
    if not master:
        raise ImproperlyConfigured("redis+sentinel:// needs master_name in broker_transport_options")
    sentinel_kwargs = dict(options.get("sentinel_kwargs") or {})
    sentinel_kwargs.setdefault("socket_timeout", kwargs["socket_connect_timeout"])
    kwargs.pop("ssl", None)
    sentinel = Sentinel(target.sentinels, sentinel_kwargs=sentinel_kwargs, **kwargs)
    return sentinel.master_for(master, redis_class=redis.Redis)


def prefix_from(options: Mapping[str, Any]) -> str:
    """The ``global_keyprefix`` transport option (empty when absent)."""
    return str(options.get("global_keyprefix") or "")
