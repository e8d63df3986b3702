"""FastAPI: the app on ``app.state``, a dependency for handlers, typed status replies, the dashboard mounted.

    celery_app = Celery("proj")
    api = FastAPI(lifespan=celeriac_lifespan(celery_app))
    mount_dashboard(api, celery_app, "/dashboard")

    @api.get("/status/{task_id}")
    def status(task_id: str, app: Celery = Depends(get_celeriac)) -> TaskStatus[int]:
        return TaskStatus[int].of(app.AsyncResult(task_id))

The lifespan checks the configuration at startup (a wrong broker URL fails the deploy, not the first
request) and closes connections at shutdown. Sending stays synchronous: ``delay`` is a quick local
write or one round trip, cheaper than a hop to a thread pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from ..app.base import Celery
from ..result import AsyncResult

T = TypeVar("T")

Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


def celeriac_lifespan(celeriac_app: Celery, *, check: bool = True) -> Lifespan:
    """A ``lifespan=`` for FastAPI that publishes ``celeriac_app`` on ``app.state.celeriac``."""

    @contextlib.asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        if check:
            celeriac_app.check()
        api.state.celeriac = celeriac_app
        try:
            yield
        finally:
            celeriac_app.close()

    return lifespan


def get_celeriac(request: Request) -> Celery:
    """The dependency: ``app: Celery = Depends(get_celeriac)``."""
    app = getattr(request.app.state, "celeriac", None)
    if app is None:
        raise RuntimeError("no celeriac app on app.state: create FastAPI(lifespan=celeriac_lifespan(celery_app))")
    return app  # type: ignore[no-any-return]


class TaskStatus(BaseModel, Generic[T]):
    """A task's state as a response model; ``result`` is the return value once it succeeded."""

    task_id: str
    status: str
    ready: bool
    result: T | None = None
    error: str | None = None

    @classmethod
    def of(cls, result: AsyncResult[Any]) -> TaskStatus[T]:
        """Read ``result`` once (one backend round trip) and describe it."""
        state = result.state
        ready = result.ready()
        value = result.info if ready else None
        if isinstance(value, BaseException):
            return cls(task_id=result.id, status=state, ready=ready, error=f"{type(value).__name__}: {value}")
        return cls(task_id=result.id, status=state, ready=ready, result=value if state == "SUCCESS" else None)


class _KeepRootPath:
    """Undo the mount's root-path change: the dashboard's routes already carry its URL prefix."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            root = scope.get("root_path", "")
            if root.endswith(self.path):
                scope = dict(scope, root_path=root[: -len(self.path)])
        await self.app(scope, receive, send)


def mount_dashboard(api: FastAPI, celeriac_app: Celery, path: str = "/dashboard", **options: Any) -> ASGIApp:
    """Serve the dashboard under ``path`` in this FastAPI app, with its lifespan run by the parent's.

    ``options`` are the dashboard's (``basic_auth=["user:pass"]``, ``read_only=True``, ...).
    """
    from ..dashboard import create_app

    path = "/" + path.strip("/")
    dashboard = create_app(celeriac_app, url_prefix=path, **options)
    api.mount(path, _KeepRootPath(dashboard, path), name="celeriac-dashboard")
    _chain_lifespan(api, dashboard.router.lifespan_context)
    return dashboard


def _chain_lifespan(api: FastAPI, inner: Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]) -> None:
    """Mounted apps get no lifespan events of their own; run ``inner`` inside the parent's."""
    outer = api.router.lifespan_context

    @contextlib.asynccontextmanager
    async def both(app: Any) -> AsyncIterator[Any]:
        async with outer(app) as state, inner(app):
            yield state

    api.router.lifespan_context = both
