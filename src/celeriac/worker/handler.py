"""From a delivery to a settled task: ``prepare`` decides whether to run, ``settle`` stores the outcome.

Order in ``settle`` is what makes delivery at-least-once and never lossy:
follow-ups (callbacks, next chain step, chord join) are sent first, then the result is stored,
then the message is acked (after the result, in the same batch), then events and the log line.
A crash at any point repeats work, never drops it; a redelivered message whose result is already
stored is acked without running again.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import canvas, message, signals, states
from ..app.request import Request
from ..exceptions import DecodeError, EncodeError, NotRegistered, TaskRevokedError, WorkerLostError
from ..excinfo import exception_to_dict, format_traceback
from ..message import Message, safe_repr
from .executor import Failed, Ignored, Outcome, Rejected, Retried, Succeeded
from .logs import QuickLines

if TYPE_CHECKING:
    from ..app.base import Celery
    from ..app.task import Task
    from ..brokers.base import Delivery
    from .revoked import RevokedIds
    from .settler import Settler

logger = logging.getLogger("celeriac.worker")
task_lines = QuickLines(logger, __file__)  # the two lines logged per task


@dataclass
class Job:
    """A delivery that passed every check and is about to run."""

    delivery: Delivery
    message: Message
    task: Task[Any, Any]
    request: Request
    acks_late: bool
    received_at: float = field(default_factory=time.time)
    started_at: float | None = None
    limits: tuple[float | None, float | None] | None = None  # (soft, hard) seconds, once looked up


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TaskHandler:
    """Checks, runs the bookkeeping around, and settles tasks for one worker process."""

    def __init__(self, app: Celery, hostname: str, revoked: RevokedIds) -> None:
        self.app = app
        self.hostname = hostname
        self.revoked = revoked
        self.conf = app.conf
        self.events = app.events
        self.events.hostname = hostname
        self.expires = app.result_expires
        self.settler: Settler | None = None
        self._write_now = False

    def flush(self) -> None:
        """Write batched results and acks now (the slot has nothing else to run)."""
        if self.settler is not None:
            self.settler.flush()

    # -- before running ---------------------------------------------------------------------
    def prepare(self, delivery: Delivery) -> Job | None:
        """Decode and check a delivery; settle it here (and return None) if it must not run."""
        try:
            msg = message.decode(delivery.payload, self.app.accepted_content)
        except Exception as exc:  # DecodeError, or anything a malformed message provokes
            reason = exc if isinstance(exc, DecodeError) else DecodeError(repr(exc))
            self._poison(delivery, message.peek_id(delivery.payload), f"undecodable message: {reason}", reason)
            return None
        task = self.app._tasks.get(msg.task)
        if task is None:
            unknown = NotRegistered(msg.task)
            self._poison(delivery, msg.id, f"unknown task {msg.task!r}: is the module in include/imports?", unknown, msg)
            return None
        if not self._may_run(delivery, msg, task):
            return None
        request = self._request(delivery, msg)
        acks_late = task.acks_late if task.acks_late is not None else bool(self.conf.task_acks_late)
        job = Job(delivery, msg, task, request, acks_late)
        task_lines.info("Task %s[%s] received", msg.task, msg.id)
        self.events.send("task-received", uuid=msg.id, name=msg.task, args=msg.argsrepr, kwargs=msg.kwargsrepr,
                         root_id=msg.root_id, parent_id=msg.parent_id, retries=msg.retries,
                         eta=msg.eta.isoformat() if msg.eta else None,
                         expires=msg.expires.isoformat() if msg.expires else None, queue=delivery.queue)
        signals.task_received.send(sender=self, request=request)
        if not acks_late:
            self.app.broker.ack([delivery])
        return job

    def _may_run(self, delivery: Delivery, msg: Message, task: Task[Any, Any]) -> bool:
        if delivery.delivery_count > 1 and self._already_settled(msg.id):
            logger.info("Task %s[%s] was already settled; acking its redelivery", msg.task, msg.id)
            self._ack_delivery(delivery)
            return False
        limit = task.max_deliveries or int(self.conf.task_max_deliveries)
        if delivery.delivery_count > limit:
            exc = WorkerLostError(
                f"delivered {delivery.delivery_count} times and the process running it died each time "
                f"(max_deliveries={limit})"
            )
            self._poison(delivery, msg.id, str(exc), exc, msg)
            return False
        if msg.id in self.revoked:
            self.settle_revoked(delivery, msg, "revoked")
            return False
        if msg.expires is not None and msg.expires < _utcnow():
            self.settle_revoked(delivery, msg, "expired")
            return False
        if task.typing and not _arguments_fit(task, msg):
            mismatch = TypeError(f"{msg.task}() got arguments that do not match its signature: "
                                 f"args={safe_repr(tuple(msg.args))} kwargs={safe_repr(dict(msg.kwargs))}")
            self.store_failure(msg, mismatch, format_traceback(mismatch))
            logger.error("Task %s[%s] rejected: %s", msg.task, msg.id, mismatch)
            self._ack_delivery(delivery)
            return False
        return True

    def _already_settled(self, task_id: str) -> bool:
        meta = self.app.backend.get(task_id) if self.app.backend.enabled else None
        return meta is not None and meta.get("status") in states.READY_STATES

    def _request(self, delivery: Delivery, msg: Message) -> Request:
        return Request(
            id=msg.id, task=msg.task, args=tuple(msg.args), kwargs=dict(msg.kwargs), retries=msg.retries, eta=msg.eta,
            expires=msg.expires, hostname=self.hostname, root_id=msg.root_id, parent_id=msg.parent_id,
            group=msg.group, group_index=msg.group_index, chord=msg.chord, chain=msg.chain, callbacks=msg.callbacks,
            errbacks=msg.errbacks, timelimit=(msg.time_limit, msg.soft_time_limit), origin=msg.origin,
            headers=dict(msg.extra_headers), called_directly=False, ignore_result=msg.ignore_result,
            delivery_count=delivery.delivery_count, correlation_id=msg.id,
            delivery_info={"exchange": "", "routing_key": delivery.queue, "priority": delivery.priority,
                           "redelivered": delivery.delivery_count > 1},
        )

    def _poison(self, delivery: Delivery, task_id: str | None, reason: str, exc: BaseException, msg: Message | None = None) -> None:
        """Dead-letter a message that must never run, recording FAILURE when its id is known."""
        logger.error("Message %s dead-lettered: %s", task_id or delivery.message_id, reason)
        self.app.broker.dead_letter(delivery, reason)
        if task_id:
            meta = self._meta(task_id, states.FAILURE, exception_to_dict(exc), reason, msg)
            self._store(meta)
            self.events.send("task-rejected", uuid=task_id, requeue=False, reason=reason)
        if isinstance(exc, NotRegistered):
            signals.task_unknown.send(sender=self, name=exc.args[0], id=task_id, message=msg, exc=exc)

    # -- after running ----------------------------------------------------------------------
    def mark_started(self, job: Job) -> None:
        job.started_at = time.time()
        self.events.send("task-started", uuid=job.message.id)
        track = job.task.track_started if job.task.track_started is not None else self.conf.task_track_started
        if track:
            self._store(self._meta(job.message.id, states.STARTED, {"pid": _pid(), "hostname": self.hostname}, None, job.message))

    def settle(self, job: Job, outcome: Outcome, write_now: bool = False) -> None:
        """Store the outcome, send follow-ups and events, and ack (in the order that loses nothing).

        ``write_now``: nothing else is waiting to run, so the batched result and ack are written
        before the events and log lines rather than after them.
        """
        self._write_now = write_now
        if isinstance(outcome, Succeeded):
            self._settle_success(job, outcome)
        elif isinstance(outcome, Retried):
            self._settle_retry(job, outcome)
        elif isinstance(outcome, Failed) and isinstance(outcome.exc, TaskRevokedError):
            self.settle_revoked(job.delivery, job.message, "terminated", terminated=True)
        elif isinstance(outcome, Failed):
            self._settle_failure(job, outcome)
        elif isinstance(outcome, Rejected):
            self._settle_rejected(job, outcome)
        elif isinstance(outcome, Ignored):
            self._ack(job)

    def _ack(self, job: Job) -> None:
        if job.acks_late:
            self._ack_delivery(job.delivery)
        if self._write_now and self.settler is not None:
            self._write_now = False
            try:
                self.settler.flush()
            except Exception as exc:  # the settler keeps the batch and its thread tries again
                logger.warning("could not settle %s now (%r); retrying", job.message.id, exc)

    def _ack_delivery(self, delivery: Delivery) -> None:
        if self.settler is not None:
            self.settler.ack(delivery)
        else:
            self.app.broker.ack([delivery])

    def _settle_success(self, job: Job, outcome: Succeeded) -> None:
        msg, task = job.message, job.task
        canvas.after_success(self.app, msg, outcome.value)
        if not self._ignores_result(job):
            try:
                self._store(self._meta(msg.id, states.SUCCESS, outcome.value, None, msg))
            except EncodeError as exc:
                self._settle_failure(job, Failed(exc, format_traceback(exc), outcome.runtime))
                return
        self._ack(job)
        shown = safe_repr(outcome.value)
        self.events.send("task-succeeded", uuid=msg.id, result=shown, runtime=outcome.runtime)
        task_lines.info("Task %s[%s] succeeded in %ss: %s", msg.task, msg.id, round(outcome.runtime, 6), shown)
        _hook(task.on_success, outcome.value, msg.id, job.request.args, job.request.kwargs)
        _hook(task.after_return, states.SUCCESS, outcome.value, msg.id, job.request.args, job.request.kwargs, None)
        signals.task_success.send(sender=task, result=outcome.value)

    def _settle_retry(self, job: Job, outcome: Retried) -> None:
        msg, task = job.message, job.task
        eta = _utcnow() + dt.timedelta(seconds=outcome.countdown)
        retry_msg = msg.replace(args=outcome.args, kwargs=outcome.kwargs, retries=msg.retries + 1, eta=eta,
                                argsrepr=None, kwargsrepr=None, redelivered=False, **_retry_overrides(outcome.options))
        payload = message.encode(retry_msg, self.conf.task_message_max_size)
        self.app.broker.publish(retry_msg.queue, payload, message_id=retry_msg.id, priority=retry_msg.priority,
                                eta=eta.timestamp())
        reason = outcome.exc.exc if outcome.exc.exc is not None else outcome.exc
        self._store(self._meta(msg.id, states.RETRY, exception_to_dict(reason), outcome.traceback, msg))
        self.events.send("task-retried", uuid=msg.id, exception=safe_repr(reason), traceback=outcome.traceback)
        self._ack(job)
        logger.info("Task %s[%s] retry: Retry in %ss: %r", msg.task, msg.id, round(outcome.countdown, 3), reason)
        _hook(task.on_retry, reason, msg.id, job.request.args, job.request.kwargs, outcome.traceback)
        signals.task_retry.send(sender=task, request=job.request, reason=reason, einfo=outcome.traceback)

    def _settle_failure(self, job: Job, outcome: Failed) -> None:
        msg, task = job.message, job.task
        canvas.after_failure(self.app, msg, outcome.exc)
        self.store_failure(msg, outcome.exc, outcome.traceback)
        self._ack(job)
        self.events.send("task-failed", uuid=msg.id, exception=safe_repr(outcome.exc), traceback=outcome.traceback)
        expected = task.throws and isinstance(outcome.exc, tuple(task.throws))
        log = logger.info if expected else logger.error
        log("Task %s[%s] raised unexpected: %r\n%s", msg.task, msg.id, outcome.exc, "" if expected else outcome.traceback)
        _hook(task.on_failure, outcome.exc, msg.id, job.request.args, job.request.kwargs, outcome.traceback)
        _hook(task.after_return, states.FAILURE, outcome.exc, msg.id, job.request.args, job.request.kwargs, outcome.traceback)
        signals.task_failure.send(sender=task, task_id=msg.id, exception=outcome.exc, args=job.request.args,
                                  kwargs=job.request.kwargs, traceback=outcome.traceback, einfo=outcome.traceback)

    def _settle_rejected(self, job: Job, outcome: Rejected) -> None:
        msg = job.message
        if outcome.requeue:
            self.app.broker.release([job.delivery])
        else:
            self.app.broker.dead_letter(job.delivery, f"rejected by the task: {safe_repr(outcome.reason)}")
        self.events.send("task-rejected", uuid=msg.id, requeue=outcome.requeue)
        logger.info("Task %s[%s] rejected (requeue=%s): %s", msg.task, msg.id, outcome.requeue, outcome.reason)
        signals.task_rejected.send(sender=self, message=msg, exc=outcome.reason)

    def settle_revoked(self, delivery: Delivery, msg: Message, why: str, terminated: bool = False,
                       signum: int | None = None) -> None:
        """Record REVOKED (revoked, expired or terminated) and ack the message."""
        exc = TaskRevokedError(why)
        self._store(self._meta(msg.id, states.REVOKED, exception_to_dict(exc), None, msg))
        self.events.send("task-revoked", uuid=msg.id, terminated=terminated, signum=signum, expired=why == "expired")
        self._ack_delivery(delivery)
        logger.info("Discarding revoked task: %s[%s] (%s)", msg.task, msg.id, why)
        signals.task_revoked.send(sender=self, request=None, terminated=terminated, signum=signum, expired=why == "expired")

    def store_failure(self, msg: Message, exc: BaseException, traceback: str | None) -> None:
        self._store(self._meta(msg.id, states.FAILURE, exception_to_dict(exc), traceback, msg))

    # -- storage ------------------------------------------------------------------------------
    def _ignores_result(self, job: Job) -> bool:
        task_ignore = job.task.ignore_result
        return bool(job.message.ignore_result or (task_ignore if task_ignore is not None else self.conf.task_ignore_result))

    def _meta(self, task_id: str, status: str, result: Any, traceback: str | None, msg: Message | None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "task_id": task_id, "status": status, "result": result, "traceback": traceback, "children": [],
            "date_done": _utcnow().isoformat() if status in states.READY_STATES else None, "worker": self.hostname,
        }
        if msg is not None:
            meta.update(name=msg.task, retries=msg.retries, queue=msg.queue, parent_id=msg.parent_id, root_id=msg.root_id)
            if msg.group:
                meta["group_id"] = msg.group
            if self.conf.result_extended:
                meta.update(args=list(msg.args), kwargs=dict(msg.kwargs))
        return meta

    def _store(self, meta: dict[str, Any]) -> None:
        if self.settler is not None:
            self.settler.store(meta)
        elif self.app.backend.enabled:
            self.app.backend.store(meta, expires=self.expires)


def _retry_overrides(options: dict[str, Any]) -> dict[str, Any]:
    allowed = {"queue": "queue", "priority": "priority"}
    return {allowed[k]: v for k, v in options.items() if k in allowed and v is not None}


def _arguments_fit(task: Task[Any, Any], msg: Message) -> bool:
    """Whether the message's args bind to the task function (Celery's ``typing`` check)."""
    signature = _signature_of(task)
    if signature is None:
        return True
    args = tuple(msg.args)
    if task.bind:
        args = (task, *args)
    counts = _positional_counts(task, signature)
    if counts is not None and not msg.kwargs:  # the common case, without binding
        return counts[0] <= len(args) <= counts[1]
    try:
        signature.bind(*args, **dict(msg.kwargs))
    except TypeError:
        return False
    return True


_SIGNATURES: dict[int, inspect.Signature | None] = {}


def _signature_of(task: Task[Any, Any]) -> inspect.Signature | None:
    """The task function's signature, computed once per task."""
    key = id(task)
    if key not in _SIGNATURES:
        fun = getattr(task, "_orig", None)
        try:
            _SIGNATURES[key] = inspect.signature(fun) if fun is not None else None
        except (TypeError, ValueError):
            _SIGNATURES[key] = None
    return _SIGNATURES[key]


_COUNTS: dict[int, tuple[int, int] | None] = {}
_PLAIN = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.POSITIONAL_ONLY)


def _positional_counts(task: Task[Any, Any], signature: inspect.Signature) -> tuple[int, int] | None:
    """(required, total) when every parameter may be given by position (no ``*args``, ``**kw``, keyword-only)."""
    key = id(task)
    if key not in _COUNTS:
        params = list(signature.parameters.values())
        plain = all(p.kind in _PLAIN for p in params)
        required = sum(1 for p in params if p.default is inspect.Parameter.empty)
        _COUNTS[key] = (required, len(params)) if plain else None
    return _COUNTS[key]


def _hook(fn: Any, *args: Any) -> None:
    """Call a task hook; a hook that raises is logged and never breaks settling."""
    try:
        fn(*args)
    except Exception:
        logger.exception("task hook %s raised", getattr(fn, "__qualname__", fn))


def _pid() -> int:
    import os

    return os.getpid()
