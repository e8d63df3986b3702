"""OAuth2 / OpenID Connect login: GitHub, Google, GitLab, Okta, or any OIDC provider by discovery URL.

The flow is the authorization-code grant. A random ``state`` kept in the signed session is checked
on return; ``next`` may only be a path on this site; the e-mail must match the ``--auth`` regex.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from .auth import Throttle, base_path
from .options import Options

DISCOVERY = {
    "google": "https://accounts.google.com/.well-known/openid-configuration",
    "gitlab": "https://gitlab.com/.well-known/openid-configuration",
}


@dataclass
class Endpoints:
    authorize: str
    token: str
    userinfo: str
    scope: str


GITHUB = Endpoints("https://github.com/login/oauth/authorize", "https://github.com/login/oauth/access_token",
                   "https://api.github.com/user/emails", "user:email")


def provider_name(opts: Options) -> str:
    """Accepts our short names and Flower's handler class paths (``...GithubLoginHandler``)."""
    raw = (opts.auth_provider or "").lower()
    for name in ("github", "google", "gitlab", "okta", "oidc"):
        if name in raw:
            return name
    return "oidc" if opts.oauth2_discovery_url else "google"


def _http_json(url: str, data: dict[str, str] | None = None, token: str | None = None) -> Any:
    headers = {"Accept": "application/json", "User-Agent": "celeriac-dashboard"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"refusing non-HTTP URL {url!r}")
    with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=10) as resp:  # noqa: S310
        return json.loads(resp.read())


def discover(opts: Options) -> Endpoints:
    name = provider_name(opts)
    if name == "github":
        return GITHUB
    url = opts.oauth2_discovery_url or DISCOVERY.get(name) or ""
    if name == "okta" and not url:
        url = f"https://{opts.oauth2_domain}/.well-known/openid-configuration"
    doc = _http_json(url)
    return Endpoints(doc["authorization_endpoint"], doc["token_endpoint"], doc["userinfo_endpoint"], "openid email profile")


def safe_next(value: str | None, prefix: str) -> str:
    """Only a local path: no scheme, no host, no ``//host`` or backslash tricks."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "://" in value:
        return prefix + "/"
    return value


class OAuth:
    """The ``/login``, ``/oauth2/callback`` and ``/logout`` endpoints."""

    def __init__(self, opts: Options, throttle: Throttle) -> None:
        self.opts, self.throttle = opts, throttle
        self._endpoints: Endpoints | None = None

    async def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            self._endpoints = await run_in_threadpool(discover, self.opts)
        return self._endpoints

    async def login(self, request: Request) -> Response:
        if not self.opts.auth:
            return RedirectResponse(base_path(request.scope, self.opts) + "/", status_code=302)
        try:
            ep = await self.endpoints()
        except (OSError, ValueError) as exc:  # URLError is an OSError; a bad discovery document a ValueError
            return PlainTextResponse(f"the sign-in provider cannot be reached right now ({exc}); try again later",
                                     status_code=503)
        state = secrets.token_urlsafe(24)
        request.session["oauth_state"] = state
        request.session["next"] = safe_next(request.query_params.get("next"), base_path(request.scope, self.opts))
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": self.opts.oauth2_key, "redirect_uri": self.opts.oauth2_redirect_uri,
            "scope": ep.scope, "state": state,
        })
        return RedirectResponse(f"{ep.authorize}?{query}", status_code=302)

    async def callback(self, request: Request) -> Response:
        client = request.client.host if request.client else "?"
        if self.throttle.blocked(client):
            return PlainTextResponse("too many failed logins; try again in a minute", status_code=429)
        expected = request.session.pop("oauth_state", None)
        given = request.query_params.get("state", "")
        code = request.query_params.get("code", "")
        if not expected or not code or not hmac.compare_digest(str(expected), given):
            self.throttle.fail(client)
            return PlainTextResponse("login failed: bad or missing state", status_code=403)
        email = await run_in_threadpool(self._email, code, await self.endpoints())
        if not email or not re.fullmatch(self.opts.auth, email):
            self.throttle.fail(client)
            return PlainTextResponse(f"access denied for {email or 'an account without e-mail'}", status_code=403)
        request.session["user"] = email
        return RedirectResponse(safe_next(request.session.pop("next", None), base_path(request.scope, self.opts)), status_code=302)

    def _email(self, code: str, ep: Endpoints) -> str | None:
        token = _http_json(ep.token, {
            "grant_type": "authorization_code", "code": code, "redirect_uri": self.opts.oauth2_redirect_uri,
            "client_id": self.opts.oauth2_key, "client_secret": self.opts.oauth2_secret,
        }).get("access_token")
        if not token:
            return None
        info = _http_json(ep.userinfo, token=token)
        if isinstance(info, list):  # GitHub's /user/emails
            return next((e["email"] for e in info if e.get("primary") and e.get("verified")), None)
        if info.get("email_verified") is False:
            return None
        return info.get("email")

    async def logout(self, request: Request) -> Response:
        request.session.clear()
        return HTMLResponse("<p>Logged out.</p>")
