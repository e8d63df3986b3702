"""The application and its task base class (``celeriac.app.task.Task``)."""

from __future__ import annotations

from .base import Celeriac, Celery, current_app
from .shared import shared_task
from .task import Task

__all__ = ["Celeriac", "Celery", "Task", "current_app", "shared_task"]
