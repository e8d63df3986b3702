"""Who may see the dashboard: basic auth, OAuth2 sessions, CSRF tokens and login throttling.

Every path is protected once any auth is configured. Credentials are compared in constant time
against every configured pair, so timing says nothing about which user exists.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .options import Options

OPEN_PATHS = ("/login", "/oauth2/callback", "/logout")


class Throttle:
    """At most ``limit`` failures per client in ``window`` seconds."""

    def __init__(self, limit: int = 10, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str) -> bool:
        with self._lock:
            hits = self._hits.get(client)
            now = time.monotonic()
            while hits and now - hits[0] > self.window:
                hits.popleft()
            return hits is not None and len(hits) >= self.limit

    def fail(self, client: str) -> None:
        with self._lock:
            self._hits.setdefault(client, deque()).append(time.monotonic())


def base_path(scope: Scope, opts: Options) -> str:
    """Where the dashboard's root is: the mount point (when mounted in another app) plus ``url_prefix``.

    Recorded once on entry, because the inner ``url_prefix`` mount changes ``root_path`` again."""
    if "celeriac.base" in scope:
        return str(scope["celeriac.base"])
    return str(scope.get("root_path") or "").rstrip("/") + opts.prefix


def local_path(scope: Scope, opts: Options) -> str:
    """The request path relative to the dashboard's root."""
    path, base = str(scope["path"]), base_path(scope, opts)
    return (path[len(base):] if base and path.startswith(base) else path) or "/"


def check_basic(header: str, pairs: list[str]) -> str | None:
    """The user name if ``header`` carries one of ``pairs`` ("user:pass"), else None."""
    if not header.lower().startswith("basic "):
        return None
    try:
        given = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    matched = None
    for pair in pairs:
        if hmac.compare_digest(given.encode(), pair.encode()):
            matched = pair.split(":", 1)[0]
    return matched


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return str(token)


def csrf_ok(request: Request, form: Any = None) -> bool:
    """A matching token, or a script's request (no cookie, no Origin, no Sec-Fetch-Site)."""
    expected = request.session.get("csrf")
    given = request.headers.get("x-csrf-token") or (form.get("csrf_token") if form is not None else None)
    if expected and given:
        return hmac.compare_digest(str(expected), str(given))
    browser = any(h in request.headers for h in ("cookie", "origin", "sec-fetch-site"))
    return not browser


class AuthMiddleware:
    """Lets a request through only with valid basic credentials or a logged-in session."""

    def __init__(self, app: ASGIApp, opts: Options, throttle: Throttle | None = None) -> None:
        self.app, self.opts = app, opts
        self.throttle = throttle or Throttle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.opts.has_auth:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        denied = self.decide(request)
        if denied is None:
            await self.app(scope, receive, send)
        else:
            await denied(scope, receive, send)

    def decide(self, request: Request) -> Response | None:
        path = local_path(request.scope, self.opts)
        if self.opts.auth and path in OPEN_PATHS:
            return None
        client = request.client.host if request.client else "?"
        if self.throttle.blocked(client):
            return PlainTextResponse("too many failed logins; try again in a minute", status_code=429)
        header = request.headers.get("authorization", "")
        if self.opts.basic_auth and header:
            user = check_basic(header, self.opts.basic_auth)
            if user is not None:
                request.scope["user"] = user
                return None
            self.throttle.fail(client)
        if self.opts.auth and request.session.get("user"):
            request.scope["user"] = request.session["user"]
            return None
        return self._challenge(request, path)

    def _challenge(self, request: Request, path: str) -> Response:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if self.opts.auth and wants_page and not path.startswith("/api/"):
            base = base_path(request.scope, self.opts)
            return RedirectResponse(f"{base}/login?next={quote(base + path)}", status_code=302)
        headers = {"WWW-Authenticate": 'Basic realm="celeriac"'} if self.opts.basic_auth else {}
        return JSONResponse({"error": "authentication required"}, status_code=401, headers=headers)


def guard(opts: Options) -> Callable[[Request, Any], Response | None]:
    """The check every state-changing endpoint runs first: read-only mode, then CSRF."""
    def check(request: Request, form: Any = None) -> Response | None:
        if opts.read_only:
            return JSONResponse({"error": "the dashboard is read-only"}, status_code=403)
        if not csrf_ok(request, form):
            return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
        return None
    return check
