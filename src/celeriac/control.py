"""Remote control: broadcast a command to workers and collect their replies.

Commands are appended to the broker's control stream (durable, bounded); every worker follows
it. A command that wants replies names a mailbox; each worker puts ``{hostname: reply}`` there.
Revokes are also stored in the result backend with a TTL, so workers started later honour them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from .message import new_id

if TYPE_CHECKING:
    from .app.base import Celery

STREAM = "celeriac.control"
_STREAM_MAXLEN = 10_000
_STREAM_MAX_AGE = 3600.0


class Control:
    """``app.control``: broadcast commands, revoke tasks, and inspect workers."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def broadcast(
        self,
        command: str,
        arguments: dict[str, Any] | None = None,
        destination: Sequence[str] | None = None,
        reply: bool = False,
        timeout: float = 1.0,
        limit: int | None = None,
        **_: Any,
    ) -> list[dict[str, Any]]:
        """Send ``command`` to every worker (or to ``destination``); with ``reply``, gather answers."""
        ticket = new_id()
        mailbox = f"reply.{ticket}" if reply else None
        item = {
            "method": command, "arguments": arguments or {}, "destination": list(destination) if destination else None,
            "ticket": ticket, "reply_to": mailbox, "expires": time.time() + max(timeout, 1.0) * 10,
        }
        self.app.broker.stream_append(STREAM, [orjson.dumps(item)], maxlen=_STREAM_MAXLEN, max_age=_STREAM_MAX_AGE)
        if mailbox is None:
            return []
        return self._collect(mailbox, timeout, limit or (len(destination) if destination else None))

    def _collect(self, mailbox: str, timeout: float, limit: int | None) -> list[dict[str, Any]]:
        replies: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (limit is not None and len(replies) >= limit):
                return replies
            for data in self.app.broker.mailbox_take(mailbox, timeout=remaining):
                replies.append(orjson.loads(data))

    def revoke(self, task_id: str | Sequence[str], destination: Sequence[str] | None = None, terminate: bool = False,
               signal: str | None = "SIGTERM", **kwargs: Any) -> list[dict[str, Any]]:
        """Revoke tasks: stored centrally (TTL ``task_revoked_ttl``) and broadcast to running workers."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        self.app.backend.revoke(ids, ttl=float(self.app.conf.task_revoked_ttl), terminate=terminate, signal=signal)
        return self.broadcast("revoke", {"task_id": ids, "terminate": terminate, "signal": signal},
                              destination=destination, **kwargs)

    def terminate(self, task_id: str, destination: Sequence[str] | None = None, signal: str = "SIGTERM", **kwargs: Any) -> Any:
        return self.revoke(task_id, destination=destination, terminate=True, signal=signal, **kwargs)

    def ping(self, destination: Sequence[str] | None = None, timeout: float = 1.0, **kwargs: Any) -> list[dict[str, Any]]:
        return self.broadcast("ping", reply=True, destination=destination, timeout=timeout, **kwargs)

    def shutdown(self, destination: Sequence[str] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return self.broadcast("shutdown", destination=destination, **kwargs)

    def pool_grow(self, n: int = 1, destination: Sequence[str] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return self.broadcast("pool_grow", {"n": n}, destination=destination, **kwargs)

    def pool_shrink(self, n: int = 1, destination: Sequence[str] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return self.broadcast("pool_shrink", {"n": n}, destination=destination, **kwargs)

    def rate_limit(self, task_name: str, rate_limit: str, destination: Sequence[str] | None = None, **kwargs: Any) -> Any:
        return self.broadcast("rate_limit", {"task_name": task_name, "rate_limit": rate_limit}, destination=destination, **kwargs)

    def time_limit(self, task_name: str, soft: float | None = None, hard: float | None = None,
                   destination: Sequence[str] | None = None, **kwargs: Any) -> Any:
        return self.broadcast("time_limit", {"task_name": task_name, "soft": soft, "hard": hard}, destination=destination, **kwargs)

    def add_consumer(self, queue: str, destination: Sequence[str] | None = None, **kwargs: Any) -> Any:
        return self.broadcast("add_consumer", {"queue": queue}, destination=destination, **kwargs)

    def cancel_consumer(self, queue: str, destination: Sequence[str] | None = None, **kwargs: Any) -> Any:
        return self.broadcast("cancel_consumer", {"queue": queue}, destination=destination, **kwargs)

    def enable_events(self, destination: Sequence[str] | None = None, **kwargs: Any) -> Any:
        return self.broadcast("enable_events", destination=destination, **kwargs)

    def disable_events(self, destination: Sequence[str] | None = None, **kwargs: Any) -> Any:
        return self.broadcast("disable_events", destination=destination, **kwargs)

    def heartbeat(self, destination: Sequence[str] | None = None, **kwargs: Any) -> Any:
        """Ask workers to send a ``worker-heartbeat`` event now."""
        return self.broadcast("heartbeat", destination=destination, **kwargs)

    def purge(self) -> int:
        queues = [self.app.conf.task_default_queue]
        return sum(self.app.broker.purge(q) for q in queues)

    def inspect(self, destination: Sequence[str] | None = None, timeout: float = 1.0, limit: int | None = None,
                **kwargs: Any) -> Inspect:
        return Inspect(self, destination=destination, timeout=timeout, limit=limit)


class Inspect:
    """``app.control.inspect()``: ask workers what they are doing; answers are ``{hostname: reply}``."""

    def __init__(self, control: Control, destination: Sequence[str] | None = None, timeout: float = 1.0,
                 limit: int | None = None) -> None:
        self.control = control
        self.destination = destination
        self.timeout = timeout
        self.limit = limit

    def _request(self, method: str, **arguments: Any) -> dict[str, Any] | None:
        """``{hostname: reply}`` from every worker that answered in time, or None if none did."""
        replies = self.control.broadcast(method, arguments, destination=self.destination, reply=True,
                                         timeout=self.timeout, limit=self.limit)
        merged: dict[str, Any] = {}
        for reply in replies:
            merged.update(reply)
        return merged or None

    def ping(self) -> dict[str, Any] | None:
        return self._request("ping")

    def active(self, safe: bool | None = None) -> dict[str, Any] | None:
        return self._request("active", safe=safe)

    def reserved(self) -> dict[str, Any] | None:
        return self._request("reserved")

    def scheduled(self) -> dict[str, Any] | None:
        return self._request("scheduled")

    def registered(self, *taskinfoitems: str) -> dict[str, Any] | None:
        return self._request("registered", taskinfoitems=list(taskinfoitems))

    registered_tasks = registered

    def stats(self) -> dict[str, Any] | None:
        return self._request("stats")

    def revoked(self) -> dict[str, Any] | None:
        return self._request("revoked")

    def active_queues(self) -> dict[str, Any] | None:
        return self._request("active_queues")

    def query_task(self, *ids: str) -> dict[str, Any] | None:
        return self._request("query_task", ids=list(ids))

    def conf(self, with_defaults: bool = False) -> dict[str, Any] | None:
        return self._request("conf", with_defaults=with_defaults)

    def report(self) -> dict[str, Any] | None:
        return self._request("report")
