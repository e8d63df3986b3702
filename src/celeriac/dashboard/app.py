"""``create_app``: the Starlette application, its store, ingester and middleware."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from . import options as options_mod
from .auth import AuthMiddleware, Throttle, base_path
from .common import BadInput
from .ingest import Ingester
from .oauth import OAuth
from .routes import routes
from .store import Store
from .templating import setup_templates

if TYPE_CHECKING:
    from ..app.base import Celery

HERE = Path(__file__).parent


@dataclass
class Dashboard:
    """Everything a request handler needs, kept on ``app.state.dash``."""

    app: Celery
    opts: options_mod.Options
    store: Store
    ingester: Ingester
    templates: Jinja2Templates
    oauth: OAuth


class Entry:
    """Outermost layer: records where the dashboard is mounted, and starts the ingester on the
    first request too (an application mounted inside another one gets no lifespan events)."""

    def __init__(self, app: ASGIApp, opts: options_mod.Options, ingester: Ingester) -> None:
        self.app, self.opts, self.ingester = app, opts, ingester

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["celeriac.base"] = base_path(scope, self.opts)
            if self.opts.ingest:
                self.ingester.start()
        await self.app(scope, receive, send)


def create_app(celeriac_app: Celery, *, opts: options_mod.Options | None = None, **options: Any) -> Starlette:
    """A Starlette app serving the dashboard for ``celeriac_app`` (mountable under FastAPI)."""
    opts = opts or options_mod.load(options, config_file=None)
    store = Store(opts.db)
    ingester = Ingester(celeriac_app, store, max_tasks=opts.max_tasks, max_age=opts.max_age)
    throttle = Throttle()
    dash = Dashboard(celeriac_app, opts, store, ingester, setup_templates(HERE / "templates", opts), OAuth(opts, throttle))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if opts.ingest:
            ingester.start()
        try:
            yield
        finally:
            ingester.stop()

    middleware = [
        Middleware(Entry, opts=opts, ingester=ingester),
        Middleware(SessionMiddleware, secret_key=opts.cookie_secret or store.cookie_secret(),
                   session_cookie="celeriac_session", same_site="lax", path=opts.prefix or "/", max_age=7 * 86400),
        Middleware(AuthMiddleware, opts=opts, throttle=throttle),
    ]
    app = Starlette(routes=routes(opts.prefix), middleware=middleware, lifespan=lifespan,
                    exception_handlers={BadInput: _bad_input})
    app.state.dash = dash
    return app


async def _bad_input(request: Request, exc: Exception) -> Response:
    """A parameter that cannot be used is the client's mistake: 400 with the reason, never a 500."""
    return JSONResponse({"error": str(exc)}, status_code=400)
