"""Loggers for tasks: ``get_task_logger(__name__)`` adds the task name and id to records."""

from __future__ import annotations

import logging

TASK_LOGGER_ROOT = "celeriac.task"


class _TaskContextFilter(logging.Filter):
    """Put ``task_name`` and ``task_id`` on every record, from the task running in this thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        from ..app.task import current_request

        request = current_request()
        record.task_name = getattr(request, "task", None) or "???"
        record.task_id = getattr(request, "id", None) or "???"
        return True


def get_task_logger(name: str) -> logging.Logger:
    """A logger whose records carry the running task's name and id (``%(task_name)s``)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, _TaskContextFilter) for f in logger.filters):
        logger.addFilter(_TaskContextFilter())
    return logger


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
