"""A backend for Django's task framework that runs ``@task`` functions on celeriac workers.

    TASKS = {"default": {"BACKEND": "celeriac.contrib.django.tasks_backend.CeleriacBackend",
                         "OPTIONS": {"APP": "mystore.celery:app"}}}   # APP is optional

Each Django task becomes a celeriac task named by its module path (``shop.tasks.send_receipt``), so
the worker runs it, retries and routing work as for any task, and the dashboard shows it by name.
The worker learns the task when it imports the module that declares it (``autodiscover_tasks()``
imports every app's ``tasks.py``). ``task.enqueue()`` returns Django's ``TaskResult``; ``get_result``
reads celeriac's result backend. Django's priorities (-100..100) have no faithful mapping onto
broker priorities, so the backend does not claim to support them.
"""

from __future__ import annotations

import datetime as dt
import importlib
from typing import Any

from ...app.base import Celery, current_app
from ._tasks_api import DEFAULT_TASK_QUEUE_NAME, BaseTaskBackend, Task, TaskResult, TaskResultStatus
from .tasks_results import register_task, result_from_meta


class CeleriacTask(Task):  # type: ignore[misc]  # Django's Task is untyped here
    """Django's task, also registered as a celeriac task so workers that import it can run it."""

    def __post_init__(self) -> None:
        super().__post_init__()
        register_task(self)


class CeleriacBackend(BaseTaskBackend):  # type: ignore[misc]  # Django's backend base is untyped here
    """Sends Django tasks through celeriac and reads their outcome from celeriac's result backend."""

    task_class = CeleriacTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = False

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self._app: Celery | None = None

    @property
    def celeriac_app(self) -> Celery:
        """The app named by ``OPTIONS["APP"]`` (``module:attr``), else the current app."""
        if self._app is None:
            spec = self.options.get("APP")
            self._app = _load_app(spec) if spec else current_app()
        return self._app

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        register_task(task)
        options: dict[str, Any] = {}
        if task.queue_name != DEFAULT_TASK_QUEUE_NAME:
            options["queue"] = task.queue_name
        if task.run_after is not None:
            options["eta"] = task.run_after
        sent = self.celeriac_app.send_task(task.module_path, list(args), dict(kwargs), **options)
        return TaskResult(
            task=task, id=sent.id, status=TaskResultStatus.READY, enqueued_at=dt.datetime.now(dt.UTC),
            started_at=None, finished_at=None, last_attempted_at=None, args=list(args), kwargs=dict(kwargs),
            backend=self.alias, errors=[], worker_ids=[],
        )

    def get_result(self, result_id: str) -> TaskResult:
        meta = self.celeriac_app.backend.get(result_id)
        return result_from_meta(result_id, meta, self.alias)


def _load_app(spec: str) -> Celery:
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    app = getattr(importlib.import_module(module_name), attr)
    if not isinstance(app, Celery):
        raise TypeError(f"TASKS OPTIONS['APP'] = {spec!r} is not a celeriac app")
    return app
