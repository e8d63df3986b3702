"""No secret reaches a page, an API answer, a log line or an event.

The app's broker and backend URLs carry passwords, the dashboard has a cookie secret and an OAuth
client secret; a logged-in user then reads every GET path in the route table.
"""

from __future__ import annotations

import logging
import re

import orjson
import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

import celeriac
from celeriac.dashboard import create_app
from celeriac.events import STREAM

from .conftest import heartbeat, ingest, run_task
from .oidc_provider import oidc_provider
from .test_auth import _login

BROKER_PASSWORD = "brokerPW-5b1f77e2"
BACKEND_PASSWORD = "backendPW-0c94d1aa"
COOKIE_SECRET = "cookieSECRET-3e8a2f61"
OAUTH_SECRET = "oauthSECRET-77d0c4b9"
SECRETS = (BROKER_PASSWORD, BACKEND_PASSWORD, COOKIE_SECRET, OAUTH_SECRET)
TASK_ID = "5e0c1f0e-1111-4222-8333-444455556666"
WORKER = "w1@host"


@pytest.fixture
def secret_app():
    app = celeriac.Celery("secrets", broker=f"memory://app:{BROKER_PASSWORD}@localhost/",
                          backend=f"memory://app:{BACKEND_PASSWORD}@localhost/", set_as_current=False,
                          result_extended=True)

    @app.task(name="proj.add")
    def add(x, y):
        return x + y

    yield app
    app.close()


def every_get_path(routes, prefix: str = "") -> list[str]:
    out = []
    for route in routes:
        if isinstance(route, Mount):
            out += every_get_path(route.routes, prefix + route.path) if route.routes else [f"{prefix}{route.path}/app.js"]
        elif isinstance(route, Route) and "GET" in (route.methods or {"GET"}):
            path = prefix + route.path.replace("{task_id}", TASK_ID).replace("{name}", WORKER)
            out.append(re.sub(r"{[^}]+}", "x", path) + ("?once=1" if path.endswith("/api/live") else ""))
    return out


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_no_secret_in_pages_api_logs_or_events(secret_app, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with oidc_provider("ana@example.com", client_secret=OAUTH_SECRET) as provider:
        web = create_app(secret_app, db=f"sqlite:///{tmp_path / 'history.sqlite3'}", ingest=False,
                         cookie_secret=COOKIE_SECRET, auth=r".*@example\.com", auth_provider="oidc", oauth2_key="dash",
                         oauth2_secret=OAUTH_SECRET, oauth2_redirect_uri="http://testserver/oauth2/callback",
                         oauth2_discovery_url=f"{provider}/.well-known/openid-configuration")
        secret_app.send_task("proj.add", (2, 3), task_id=TASK_ID)
        run_task(secret_app, TASK_ID, hostname=WORKER)
        heartbeat(secret_app, hostname=WORKER)
        ingest(web)
        with TestClient(web) as client:
            _login(client)
            pages = {path: client.get(path) for path in every_get_path(web.routes)}
    assert pages["/"].status_code == 200 and "memory://app:**@localhost/" in pages["/"].text  # the URL is shown, masked
    assert pages[f"/task/{TASK_ID}"].status_code == 200
    for path, response in pages.items():
        assert not leaked(response.text + str(response.headers)), path
    assert not leaked(caplog.text + "".join(str(r.args) for r in caplog.records))
    events = secret_app.broker.stream_read(STREAM, None, limit=100_000, timeout=0)
    assert events and not leaked(b"".join(raw for _, raw in events).decode())
    assert all(orjson.loads(raw)["type"] for _, raw in events)
