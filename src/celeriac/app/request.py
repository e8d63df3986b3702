"""``self.request``: what a running task knows about its own message.

The current request lives in a ContextVar, so threads and concurrent coroutines of one process
(``-P async``) each see their own.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    """Celery's ``Context``: attributes of the message being run."""

    id: str | None = None
    task: str | None = None
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    eta: dt.datetime | None = None
    expires: dt.datetime | None = None
    hostname: str | None = None
    delivery_info: dict[str, Any] = field(default_factory=dict)
    root_id: str | None = None
    parent_id: str | None = None
    group: str | None = None
    group_index: int | None = None
    chord: Mapping[str, Any] | None = None
    chain: Sequence[Mapping[str, Any]] | None = None
    callbacks: Sequence[Mapping[str, Any]] | None = None
    errbacks: Sequence[Mapping[str, Any]] | None = None
    timelimit: tuple[float | None, float | None] = (None, None)
    origin: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    is_eager: bool = False
    called_directly: bool = True
    ignore_result: bool = False
    delivery_count: int = 1
    reply_to: str | None = None
    correlation_id: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    @property
    def group_id(self) -> str | None:
        return self.group


_current: contextvars.ContextVar[Request | None] = contextvars.ContextVar("celeriac_request", default=None)


def current_request() -> Request | None:
    """The request of the task running in this thread or coroutine, if any."""
    return _current.get()


@contextmanager
def request_context(request: Request) -> Iterator[Request]:
    token = _current.set(request)
    try:
        yield request
    finally:
        _current.reset(token)


def push_request(request: Request) -> contextvars.Token[Request | None]:
    return _current.set(request)


def pop_request(token: contextvars.Token[Request | None]) -> None:
    _current.reset(token)
