"""Between Django's ``TaskResult`` and celeriac's stored results, and the worker-side runner."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.module_loading import import_string  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped

from ... import states
from ...app.shared import shared_task
from ._tasks_api import Task, TaskContext, TaskError, TaskResult, TaskResultDoesNotExist, TaskResultStatus

_registered: set[str] = set()

STATUS = {
    states.SUCCESS: TaskResultStatus.SUCCESSFUL,
    states.FAILURE: TaskResultStatus.FAILED,
    states.REVOKED: TaskResultStatus.FAILED,
    states.PENDING: TaskResultStatus.READY,
    states.RECEIVED: TaskResultStatus.READY,
    states.RETRY: TaskResultStatus.READY,
}


def register_task(task: Task) -> None:
    """Make ``task`` a celeriac task named by its module path (once per process)."""
    name = task.module_path
    if name in _registered:
        return
    _registered.add(name)
    shared_task(name=name, bind=True)(_runner(task))


def _runner(django_task: Task) -> Any:
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if django_task.takes_context:
            context = TaskContext(task_result=_running(self.request, django_task, args, kwargs))
            return django_task.call(context, *args, **kwargs)
        return django_task.call(*args, **kwargs)

    run.__name__ = run.__qualname__ = django_task.func.__name__
    run.__module__ = django_task.func.__module__
    return run


def _running(request: Any, task: Task, args: Any, kwargs: Any) -> TaskResult:
    """The result a task with ``takes_context`` sees while it runs (``context.attempt`` counts retries)."""
    now = dt.datetime.now(dt.UTC)
    return TaskResult(
        task=task, id=request.id, status=TaskResultStatus.RUNNING, enqueued_at=None, started_at=now,
        finished_at=None, last_attempted_at=now, args=list(args), kwargs=dict(kwargs), backend=task.backend,
        errors=[], worker_ids=[request.hostname or "worker"] * (int(request.retries or 0) + 1),
    )


def result_from_meta(result_id: str, meta: dict[str, Any] | None, alias: str) -> TaskResult:
    """Django's view of a stored celeriac result; unknown ids raise ``TaskResultDoesNotExist``."""
    if meta is None or not meta.get("name"):
        raise TaskResultDoesNotExist(result_id)
    try:
        task = import_string(meta["name"])
    except ImportError:
        raise TaskResultDoesNotExist(f"{result_id}: {meta['name']} is not an importable Django task") from None
    status = STATUS.get(meta.get("status", states.PENDING), TaskResultStatus.RUNNING)
    finished = _when(meta.get("date_done"))
    result = TaskResult(
        task=task, id=result_id, status=status, enqueued_at=_when(meta.get("date_sent")), started_at=None,
        finished_at=finished, last_attempted_at=finished, args=list(meta.get("args") or []),
        kwargs=dict(meta.get("kwargs") or {}), backend=alias, errors=_errors(meta),
        worker_ids=[meta["worker"]] if meta.get("worker") else [],
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", meta.get("result"))
    return result


def _errors(meta: dict[str, Any]) -> list[TaskError]:
    if meta.get("status") != states.FAILURE:
        return []
    exc = meta.get("result") or {}
    path = f"{exc.get('exc_module') or 'builtins'}.{exc.get('exc_type') or 'Exception'}"
    return [TaskError(exception_class_path=path, traceback=meta.get("traceback") or "")]


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value if isinstance(value, dt.datetime) else None
