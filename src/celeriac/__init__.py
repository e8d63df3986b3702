"""celeriac: a distributed task queue with Celery's API, async tasks and a built-in dashboard."""

from __future__ import annotations

from typing import Any

from .app.base import Celeriac, Celery, current_app
from .app.shared import shared_task
from .app.task import Task
from .canvas import Signature, signature
from .result import AsyncResult, GroupResult

__version__ = "0.1.0"

__all__ = [
    "AsyncResult",
    "Celeriac",
    "Celery",
    "GroupResult",
    "Signature",
    "Task",
    "chain",
    "chord",
    "chunks",
    "crontab",
    "current_app",
    "group",
    "shared_task",
    "signature",
    "xmap",
    "xstarmap",
]


def __getattr__(name: str) -> Any:
    if name in ("chain", "group", "chord", "chunks", "xmap", "xstarmap"):
        from . import workflows

        return getattr(workflows, name)
    if name == "crontab":
        from .schedules import crontab

        return crontab
    raise AttributeError(f"module 'celeriac' has no attribute {name!r}")
