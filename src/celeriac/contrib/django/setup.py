"""Make an app Django-aware: set Django up before task discovery, and tidy connections around tasks."""

from __future__ import annotations

import os
from typing import Any

from ... import signals
from ...app.base import Celery
from ...app.task import Task
from .task import DjangoTask

_hooked = False


def django_configured() -> bool:
    """True when a settings module is named, as ``manage.py`` and ``mystore/celery.py`` arrange."""
    return bool(os.environ.get("DJANGO_SETTINGS_MODULE"))


def setup_django(**_: Any) -> None:
    """``django.setup()`` unless Django is already set up or is in the middle of it (``runserver``)."""
    from django.apps import apps  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped

    if apps.ready or apps.loading:
        return
    import django  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped

    django.setup()


def use_django(app: Celery) -> Celery:
    """Set Django up when the app is configured and give its tasks :class:`DjangoTask` as base.

    Idempotent; an app made with its own ``task_cls`` keeps it.
    """
    if app.task_cls is Task:
        app.task_cls = DjangoTask
    if not getattr(app, "_django_hooked", False):
        app.on_after_configure.connect(setup_django)
        setattr(app, "_django_hooked", True)  # noqa: B010 - a marker only this module reads
    _hook_worker_signals()
    return app


def _close_old_connections(**_: Any) -> None:
    from django.db import close_old_connections  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped

    close_old_connections()


def _forget_inherited_connections(**_: Any) -> None:
    """A forked child must not share its parent's database sockets: open fresh ones on demand."""
    from django.db import connections  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped

    for conn in connections.all(initialized_only=True):
        conn.close()


def _hook_worker_signals() -> None:
    global _hooked
    if _hooked:
        return
    _hooked = True
    signals.task_prerun.connect(_close_old_connections)
    signals.task_postrun.connect(_close_old_connections)
    signals.worker_process_init.connect(_forget_inherited_connections)
