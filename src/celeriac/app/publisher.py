"""Sending one message: checks that fail before anything is sent, then record, publish, announce."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import message, signals, states
from ..brokers.base import Outgoing
from ..exceptions import ContentDisallowed
from .sending import utcnow

if TYPE_CHECKING:
    from .base import Celery


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
    app.broker.publish_recorded([outgoing], app.backend, metas, app.result_expires)
    if announce:
        signals.after_task_publish.send(sender=msg.task, body=payload, headers=headers, routing_key=msg.queue)
    if app.conf.task_send_sent_event:
        app.events.task_sent(msg)


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
