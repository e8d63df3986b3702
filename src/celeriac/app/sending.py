"""Turning a call (name, args, kwargs, options) into a :class:`Message`. No I/O here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import serializers
from ..exceptions import EncodeError
from ..message import Message, new_id
from .request import current_request
from .routing import route

if TYPE_CHECKING:
    from .base import Celery
    from .task import Task

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_UNUSED_NOW = dt.datetime.min.replace(tzinfo=dt.UTC)  # stands for the time when no deadline needs it


def _as_deadline(value: float | dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, (int, float)):
        return now + dt.timedelta(seconds=float(value))
    raise EncodeError(f"expected seconds or a datetime, got {value!r}")


def _signatures(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    return [dict(item) for item in items]


def build_message(
    app: Celery,
    name: str,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    options: Mapping[str, Any],
    task: Task[Any, Any] | None = None,
    clock: Clock = utcnow,
) -> Message:
    """Apply routing, defaults and the parent task's lineage to one call."""
    conf = app.conf
    args = tuple(args) if args else ()
    kwargs = dict(kwargs) if kwargs else {}
    if not isinstance(kwargs, dict):
        raise EncodeError(f"kwargs must be a mapping, got {type(kwargs).__name__}")
    merged = {k: v for k, v in options.items() if v is not None}
    routes = conf.task_routes
    if routes:
        merged = {**route(routes, name, args, kwargs, options, task=task), **merged}
    get = merged.get
    eta, countdown, expires = get("eta"), get("countdown"), get("expires", getattr(task, "expires", None))
    # the clock is read only when a deadline needs it
    now = clock() if eta is not None or countdown is not None or expires is not None else _UNUSED_NOW
    if eta is None and countdown is not None:
        eta = now + dt.timedelta(seconds=float(countdown))
    parent = current_request()
    parent_id = parent_root = None
    if parent is not None and parent.id:
        parent_id, parent_root = parent.id, parent.root_id or parent.id
    task_id = get("task_id") or new_id()
    root_id = get("root_id") or parent_root or task_id
    parent_id = get("parent_id") or parent_id
    serializer = get("serializer") or getattr(task, "serializer", None) or conf.task_serializer
    content_type = serializers.get(serializer).content_type
    ignore_result = get("ignore_result")
    if ignore_result is None:
        ignore_result = getattr(task, "ignore_result", None)
    if ignore_result is None:
        ignore_result = conf.task_ignore_result
    priority = get("priority", getattr(task, "priority", None))
    if priority is None:
        priority = conf.task_default_priority or 0
    link, link_error, chord, headers = get("link"), get("link_error"), get("chord"), get("headers")
    return Message(
        id=task_id,
        task=name,
        args=args,
        kwargs=kwargs,
        queue=get("queue") or getattr(task, "queue", None) or conf.task_default_queue,
        priority=max(0, min(9, int(priority))),
        eta=_as_deadline(eta, now) if eta is not None else None,
        expires=_as_deadline(expires, now) if expires is not None else None,
        retries=int(get("retries", 0)),
        root_id=root_id,
        parent_id=parent_id,
        group=get("group_id"),
        group_index=get("group_index"),
        time_limit=get("time_limit", getattr(task, "time_limit", None)),
        soft_time_limit=get("soft_time_limit", getattr(task, "soft_time_limit", None)),
        callbacks=_signatures(link) if link is not None else None,
        errbacks=_signatures(link_error) if link_error is not None else None,
        chain=get("chain"),
        chord=dict(chord) if chord else None,
        ignore_result=bool(ignore_result),
        shadow=get("shadow"),
        content_type=content_type,
        extra_headers=dict(headers) if headers else {},
    )
