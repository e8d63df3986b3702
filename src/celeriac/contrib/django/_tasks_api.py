"""Django's task framework: ``django.tasks`` (Django 6+) or, before that, the ``django_tasks`` backport."""

from __future__ import annotations

try:  # Django 6 ships the framework itself
    from django.tasks import TaskContext, TaskResult, TaskResultStatus  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped
    from django.tasks.backends.base import BaseTaskBackend  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped
    from django.tasks.base import DEFAULT_TASK_QUEUE_NAME, Task, TaskError  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped
    from django.tasks.exceptions import TaskResultDoesNotExist  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped
except ImportError:  # the backport, same API under another name
    from django_tasks import TaskContext, TaskResult, TaskResultStatus  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped
    from django_tasks.backends.base import BaseTaskBackend  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped
    from django_tasks.base import DEFAULT_TASK_QUEUE_NAME, Task, TaskError  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped
    from django_tasks.exceptions import TaskResultDoesNotExist  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped

__all__ = [
    "DEFAULT_TASK_QUEUE_NAME", "BaseTaskBackend", "Task", "TaskContext", "TaskError", "TaskResult",
    "TaskResultDoesNotExist", "TaskResultStatus",
]
