"""Sending one message: checks that fail before anything is sent, then record, publish, announce.

Inside ``batched_sends()`` (a group, a chord's header) messages are checked and encoded one by one
as usual, but recorded and published together when the block ends: one broker call per
``BATCH_SIZE`` messages instead of one per message. If the block raises, nothing of it is sent.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import message, signals, states
from ..brokers.base import Outgoing
from ..exceptions import ContentDisallowed
from .sending import utcnow

if TYPE_CHECKING:
    from .base import Celery


BATCH_SIZE = 500


@dataclass(slots=True)
class _Send:
    """One checked and encoded message, with what recording and announcing it needs."""

    app: Celery
    msg: message.Message
    outgoing: Outgoing
    metas: list[dict[str, Any]]
    headers: dict[str, Any] | None  # None: nobody listens to the publish signals


_pending: contextvars.ContextVar[list[_Send] | None] = contextvars.ContextVar("celeriac_pending_sends", default=None)


@contextlib.contextmanager
def batched_sends() -> Iterator[None]:
    """Send the messages published in the block together when it ends (nested blocks join the outer one)."""
    if _pending.get() is not None:
        yield
        return
    pending: list[_Send] = []
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
    by_app: dict[int, list[_Send]] = {}
    for send in pending:
        by_app.setdefault(id(send.app), []).append(send)
    for sends in by_app.values():
        _send_batches([sends[start:start + BATCH_SIZE] for start in range(0, len(sends), BATCH_SIZE)])


def _send_batches(batches: list[list[_Send]]) -> None:
    """Record and publish messages of one app, one broker call per batch, and announce every batch sent."""
    app = batches[0][0].app
    app.broker.publish_recorded_batches(
        [([send.outgoing for send in sends], [meta for send in sends for meta in send.metas]) for sends in batches],
        app.backend, app.result_expires, lambda index: _announce(batches[index]))


def _send(sends: list[_Send]) -> None:
    """Record and publish messages of one app in one broker call, then announce each."""
    app = sends[0].app
    metas = [meta for send in sends for meta in send.metas]
    app.broker.publish_recorded([send.outgoing for send in sends], app.backend, metas, app.result_expires)
    _announce(sends)


def _announce(sends: list[_Send]) -> None:
    """``after_task_publish`` and ``task-sent`` for messages that are out."""
    app = sends[0].app
    for send in sends:
        if send.headers is not None:
            signals.after_task_publish.send(sender=send.msg.task, body=send.outgoing.payload, headers=send.headers,
                                            routing_key=send.msg.queue)
        if app.conf.task_send_sent_event:
            app.events.task_sent(send.msg)


def publish(app: Celery, msg: message.Message) -> None:
    """Encode (size and serializer checked first), record PENDING, publish, emit ``task-sent``."""
    if msg.content_type not in app.accepted_content:
        raise ContentDisallowed(
            f"task {msg.task}: serializer {msg.content_type!r} is not in accept_content {list(app.conf.accept_content)}; "
            "workers would refuse it. Add it to accept_content (pickle only if every producer is trusted)"
        )
    payload = message.encode(msg, app.conf.task_message_max_size)
    announce = bool(signals.before_task_publish.receivers or signals.after_task_publish.receivers)
    headers = msg.headers() if announce else {}
    if announce:
        signals.before_task_publish.send(sender=msg.task, body=payload, headers=headers, routing_key=msg.queue)
    metas = [sent_meta(app, msg)] if not msg.ignore_result and app.backend.enabled else []
    eta = msg.eta.timestamp() if msg.eta is not None else None
    outgoing = Outgoing(msg.queue, payload, msg.id, msg.priority, eta)
    send = _Send(app, msg, outgoing, metas, headers if announce else None)
    pending = _pending.get()
    if pending is not None:
        pending.append(send)
    else:
        _send([send])


def sent_meta(app: Celery, msg: message.Message) -> dict[str, Any]:
    """The PENDING record that makes a sent task known (unlike an id nobody sent)."""
    meta: dict[str, Any] = {
        "task_id": msg.id, "status": states.PENDING, "result": None, "traceback": None, "children": [],
        "date_done": None, "name": msg.task, "queue": msg.queue, "sent": True,
        "date_sent": utcnow().isoformat(), "parent_id": msg.parent_id, "root_id": msg.root_id,
    }
    if msg.group:
        meta["group_id"] = msg.group
    if app.conf.result_extended:
        meta.update(args=list(msg.args), kwargs=dict(msg.kwargs))
    return meta


def store_progress(app: Celery, task_id: str, state: str, meta: Any, *, task_name: str | None, request: Any) -> None:
    """``update_state``: store a custom state and, inside a worker, announce it as ``task-progress``."""
    doc = {"task_id": task_id, "status": state, "result": meta, "traceback": None, "children": [],
           "date_done": None, "name": task_name}
    hostname = getattr(request, "hostname", None) if request is not None else None
    if hostname:
        doc["worker"] = hostname
    app.backend.store(doc, expires=app.result_expires)
    if hostname:
        app.events.send("task-progress", uuid=task_id, state=state, meta=meta)
