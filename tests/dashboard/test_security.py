"""Every path the dashboard serves refuses anonymous requests once auth is set, and every action
from a browser session needs its CSRF token.

Paths are read from the application's own route table (including mounts and the url prefix), so a
route added later is covered without editing this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from .conftest import ingest, make_dashboard, run_task
from .oidc_provider import oidc_provider
from .test_auth import _csrf, _login, _oauth_dashboard

GOOD = ("admin", "pa:ss")
SEEN_TASK = "9d1e0c2a-5ec2-4e7a-9f00-00000000abcd"
OPEN = ("/login", "/oauth2/callback", "/logout")
SETUPS = {
    "basic": {"basic_auth": ["admin:pa:ss"]},
    "basic-under-prefix": {"basic_auth": ["admin:pa:ss"], "url_prefix": "flower"},
    "oauth": {"auth": r".*@example\.com", "auth_provider": "oidc", "oauth2_key": "dash", "oauth2_secret": "s",
              "oauth2_discovery_url": "http://127.0.0.1:9/.well-known/openid-configuration"},
}


def served_paths(routes, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path, method) for every route, parameters filled in; static mounts give a file and a miss."""
    for route in routes:
        if isinstance(route, Mount) and getattr(route, "routes", None):
            yield from served_paths(route.routes, prefix + route.path)
        elif isinstance(route, Mount):
            for name in ("app.js", "no-such-file.css"):
                yield f"{prefix}{route.path}/{name}", "GET"
        elif isinstance(route, Route):
            path = re.sub(r"{[^}]+}", SEEN_TASK, prefix + route.path)
            for method in sorted(route.methods or {"GET"}):
                yield path, method


def protected(web) -> list[tuple[str, str]]:
    """Every path but the login flow's own (open only when OAuth login is configured)."""
    opts = web.state.dash.opts
    open_paths = OPEN if opts.auth else ()
    return [(p, m) for p, m in served_paths(web.routes) if p.removeprefix(opts.prefix) not in open_paths]


@pytest.fixture(params=sorted(SETUPS))
def secured(request, capp, tmp_path):
    web = make_dashboard(capp, tmp_path, **SETUPS[request.param])
    run_task(capp, SEEN_TASK)
    ingest(web)
    with TestClient(web) as client:
        yield web, client, request.param


def test_the_route_table_walk_finds_pages_api_static_sse_metrics_and_openapi(capp, tmp_path):
    paths = {p for p, _ in protected(make_dashboard(capp, tmp_path, basic_auth=["a:b"]))}
    assert {"/", "/tasks", "/api/tasks", "/static/app.js", "/api/live", "/metrics", "/api/openapi.json"} <= paths
    assert len(paths) >= 35


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_every_path_refuses_an_anonymous_request(secured, accept):
    web, client, setup = secured
    base = web.state.dash.opts.prefix
    for path, method in protected(web):
        response = client.request(method, path, headers={"Accept": accept}, follow_redirects=False)
        where = f"{setup}: {method} {path} -> {response.status_code}"
        if response.status_code == 302:
            assert setup == "oauth" and method == "GET" and accept == "text/html", where
            assert response.headers["location"].startswith(f"{base}/login?next="), where
        else:
            assert response.status_code == 401, where
        assert SEEN_TASK not in response.text.replace(f"next={path}", ""), where


def test_the_open_login_paths_show_no_data(capp, tmp_path):
    with oidc_provider("ana@example.com") as provider, TestClient(_oauth_dashboard(capp, tmp_path, provider)) as client:
        run_task(capp, SEEN_TASK)
        ingest(client.app)
        statuses = {}
        for path in OPEN:
            response = client.get(path, follow_redirects=False)
            statuses[path] = response.status_code
            assert SEEN_TASK not in response.text and "proj.add" not in response.text, path
    assert statuses == {"/login": 302, "/oauth2/callback": 403, "/logout": 200}


def test_login_with_the_provider_down_says_so(capp, tmp_path):
    web = make_dashboard(capp, tmp_path, **SETUPS["oauth"])
    with TestClient(web, raise_server_exceptions=False) as client:
        response = client.get("/login", follow_redirects=False)
    assert response.status_code in (502, 503) and "provider" in response.text


def test_static_files_cannot_reach_outside_their_directory(capp, tmp_path):
    with TestClient(make_dashboard(capp, tmp_path, basic_auth=["admin:pa:ss"])) as client:
        for path in ("/static/../auth.py", "/static/..%2fauth.py", "/static/%2e%2e/auth.py", "/static//etc/passwd"):
            response = client.get(path, auth=GOOD)
            assert response.status_code == 404 and "hmac" not in response.text, path


def post_paths(web) -> list[str]:
    return sorted({p for p, m in served_paths(web.routes) if m == "POST"})


def test_a_cross_site_browser_post_with_basic_credentials_is_refused_without_a_token(capp, tmp_path):
    web = make_dashboard(capp, tmp_path, basic_auth=["admin:pa:ss"])
    cross_site = {"Origin": "https://evil.test", "Sec-Fetch-Site": "cross-site"}
    with TestClient(web) as client:
        for path in post_paths(web):
            response = client.post(path, auth=GOOD, headers=cross_site, data={"terminate": "true"})
            assert response.status_code == 403 and "CSRF" in response.text, path


def test_every_action_from_a_logged_in_session_needs_its_csrf_token(capp, tmp_path):
    with oidc_provider("ana@example.com") as provider, TestClient(_oauth_dashboard(capp, tmp_path, provider)) as client:
        _login(client)
        token = _csrf(client.get("/tasks").text)
        web = client.app
        for path in post_paths(web):
            for headers in ({}, {"X-CSRF-Token": token + "x"}, {"X-CSRF-Token": ""}):
                response = client.post(path, headers=headers)
                assert response.status_code == 403 and "CSRF" in response.text, (path, headers)
            accepted = client.post(path, headers={"X-CSRF-Token": token})
            assert "CSRF" not in accepted.text, path


def test_a_csrf_token_belongs_to_its_own_session(capp, tmp_path):
    with oidc_provider("ana@example.com") as provider:
        web = _oauth_dashboard(capp, tmp_path, provider)
        with TestClient(web) as ana, TestClient(web) as other:
            _login(ana)
            _login(other)
            token = _csrf(ana.get("/tasks").text)
            assert other.post("/api/task/revoke/t1", headers={"X-CSRF-Token": token}).status_code == 403
            assert ana.post("/api/task/revoke/t1", headers={"X-CSRF-Token": token}).status_code == 200
