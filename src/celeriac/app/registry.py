"""Which apps exist: the current app (``current_app``), every app, and tasks shared by all of them."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Celery
    from .task import Task

_current: Celery | None = None
_lock = threading.Lock()
all_apps: list[Celery] = []
shared_tasks: list[Callable[[Celery], Task[Any, Any]]] = []


def _fresh_lock() -> None:
    """A forked child must not inherit the lock held by a parent thread at the moment of fork."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock)


def adopt(app: Celery, make_current: bool) -> None:
    """Record a new app, and make it the current one unless told otherwise."""
    global _current
    with _lock:
        if make_current:
            _current = app
        all_apps.append(app)


def current_app() -> Celery:
    """The app made last (or a default one), as ``celery.current_app``."""
    global _current
    found = _current  # read without the lock: signatures and results ask for it on every send
    if found is not None:
        return found
    from .base import Celery

    with _lock:
        if _current is None:
            _current = Celery("default", set_as_current=False)
            all_apps.append(_current)
        return _current
