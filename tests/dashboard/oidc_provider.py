"""A tiny OpenID Connect provider for tests: discovery, authorize, token and userinfo endpoints."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route


def provider_app(base: str, email: str, client_id: str, client_secret: str) -> Starlette:
    codes: dict[str, str] = {}
    tokens: dict[str, str] = {}

    async def discovery(request: Request):
        return JSONResponse({"issuer": base, "authorization_endpoint": f"{base}/authorize",
                             "token_endpoint": f"{base}/token", "userinfo_endpoint": f"{base}/userinfo"})

    async def authorize(request: Request):
        q = request.query_params
        if q["client_id"] != client_id:
            return JSONResponse({"error": "unknown client"}, status_code=400)
        code = secrets.token_urlsafe(8)
        codes[code] = q["redirect_uri"]
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", status_code=302)

    async def token(request: Request):
        form = dict(item.split("=", 1) for item in (await request.body()).decode().split("&"))
        if form.get("client_secret") != client_secret or form.get("code") not in codes:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        access = secrets.token_urlsafe(8)
        tokens[access] = email
        return JSONResponse({"access_token": access, "token_type": "Bearer"})

    async def userinfo(request: Request):
        access = request.headers.get("authorization", "").removeprefix("Bearer ")
        if access not in tokens:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"sub": "1", "email": tokens[access], "email_verified": True})

    return Starlette(routes=[Route("/.well-known/openid-configuration", discovery), Route("/authorize", authorize),
                             Route("/token", token, methods=["POST"]), Route("/userinfo", userinfo)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app, port: int) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a thread; yield its base URL once it accepts connections."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def oidc_provider(email: str, client_id: str = "dash", client_secret: str = "shh") -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve(provider_app(base, email, client_id, client_secret), port) as url:
        yield url
