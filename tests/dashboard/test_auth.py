"""Auth: 401 everywhere without credentials, read-only, CSRF, throttling, unsafe binds, OAuth2 login."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from celeriac.cli.dashboard import flower
from celeriac.dashboard import options
from celeriac.dashboard.routes import routes
from celeriac.exceptions import ImproperlyConfigured

from .conftest import make_dashboard
from .oidc_provider import oidc_provider

GOOD = ("admin", "pa:ss")


def _paths():
    """Every route in the table with its parameters filled in, and its methods."""
    for route in routes():
        if isinstance(route, Mount):
            yield "/static/app.js", {"GET"}
            continue
        assert isinstance(route, Route)
        path = re.sub(r"{[^}]+}", "x", route.path)
        yield path, route.methods or {"GET"}


ALL = sorted({(p, m) for p, ms in _paths() for m in ms if m != "HEAD"})
POSTS = [p for p, m in ALL if m == "POST"]
OPEN = {"/login", "/oauth2/callback", "/logout"}


@pytest.fixture
def basic_client(capp, tmp_path):
    web = make_dashboard(capp, tmp_path, basic_auth=["admin:pa:ss", "ops:other"])
    with TestClient(web) as client:
        yield client


@pytest.mark.parametrize(("path", "method"), ALL)
def test_every_path_needs_credentials(basic_client, path, method):
    response = basic_client.request(method, path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


def test_wrong_password_is_refused_and_right_one_accepted(basic_client):
    assert basic_client.get("/tasks", auth=("admin", "wrong")).status_code == 401
    assert basic_client.get("/tasks", auth=GOOD).status_code == 200
    assert basic_client.get("/tasks", auth=("ops", "other")).status_code == 200


def test_repeated_failures_are_throttled(basic_client):
    for _ in range(10):
        basic_client.get("/", auth=("admin", "guess"))
    assert basic_client.get("/", auth=GOOD).status_code == 429


def test_read_only_refuses_every_action(capp, tmp_path):
    web = make_dashboard(capp, tmp_path, basic_auth=["admin:pa:ss"], read_only=True)
    with TestClient(web) as client:
        for path in POSTS:
            response = client.post(path, auth=GOOD)
            assert response.status_code == 403, path
        page = client.get("/tasks", auth=GOOD).text
        assert "read-only" in page and "Retry all failed" not in page


def _csrf(page: str) -> str:
    return json.loads(re.search(r"hx-headers='([^']+)'", page).group(1).replace("&#34;", '"'))["X-CSRF-Token"]


def test_browser_actions_need_the_csrf_token(basic_client):
    browser = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert basic_client.post("/api/task/revoke/t1", auth=GOOD, headers=browser).status_code == 403
    token = _csrf(basic_client.get("/tasks", auth=GOOD).text)
    response = basic_client.post("/api/task/revoke/t1", auth=GOOD, headers={**browser, "X-CSRF-Token": token})
    assert response.status_code == 200
    wrong = basic_client.post("/api/task/revoke/t1", auth=GOOD, headers={**browser, "X-CSRF-Token": token + "x"})
    assert wrong.status_code == 403


def test_scripts_without_a_browser_session_may_post(capp, tmp_path):
    web = make_dashboard(capp, tmp_path, basic_auth=["admin:pa:ss"])
    with TestClient(web) as client:
        client.cookies.clear()
        assert client.post("/api/task/revoke/t1", auth=GOOD).status_code == 200


def test_non_loopback_bind_without_auth_is_refused():
    with pytest.raises(ImproperlyConfigured, match="--unsafe-no-auth"):
        options.check_bind(options.Options(address="0.0.0.0"))
    options.check_bind(options.Options(address="0.0.0.0", basic_auth=["a:b"]))
    options.check_bind(options.Options(address="0.0.0.0", unsafe_no_auth=True))
    options.check_bind(options.Options(address="127.0.0.1"))
    result = CliRunner().invoke(flower, ["--address", "10.1.2.3"], obj={"app": object()})
    assert result.exit_code == 2 and "refusing to serve" in result.output


def test_settings_from_flowerconfig_and_environment(tmp_path):
    conf = tmp_path / "flowerconfig.py"
    conf.write_text("port = 6000\nbasic_auth = ['a:b']\nread_only = True\n")
    opts = options.load({"address": "127.0.0.2"}, environ={"FLOWER_PORT": "7000", "FLOWER_MAX_TASKS": "5"},
                        config_file=str(conf))
    assert (opts.port, opts.basic_auth, opts.read_only, opts.max_tasks, opts.address) == (7000, ["a:b"], True, 5, "127.0.0.2")
    assert options.load({}, environ={"FLOWER_BASIC_AUTH": "x:y,z:w"}, config_file=None).basic_auth == ["x:y", "z:w"]


def _oauth_dashboard(capp, tmp_path, provider, allow=r".*@example\.com"):
    return make_dashboard(capp, tmp_path, auth=allow, auth_provider="oidc", oauth2_key="dash", oauth2_secret="shh",
                          oauth2_redirect_uri="http://testserver/oauth2/callback",
                          oauth2_discovery_url=f"{provider}/.well-known/openid-configuration")


def _login(client, next_path="/tasks"):
    start = client.get("/login", params={"next": next_path}, follow_redirects=False)
    assert start.status_code == 302
    back = httpx.get(start.headers["location"], follow_redirects=False)
    callback = urlsplit(back.headers["location"])
    return client.get(f"{callback.path}?{callback.query}", follow_redirects=False), parse_qs(callback.query)


def test_oauth2_login_with_a_local_oidc_provider(capp, tmp_path):
    with oidc_provider("ana@example.com") as provider, TestClient(_oauth_dashboard(capp, tmp_path, provider)) as client:
        assert client.get("/tasks", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 302
        assert client.get("/api/tasks").status_code == 401
        done, _ = _login(client)
        assert done.status_code == 302 and done.headers["location"] == "/tasks"
        page = client.get("/tasks")
        assert page.status_code == 200 and "ana@example.com" in page.text
        assert client.get("/api/tasks").status_code == 200


def test_oauth2_refuses_other_domains_bad_state_and_foreign_redirects(capp, tmp_path):
    with oidc_provider("eve@evil.test") as provider, TestClient(_oauth_dashboard(capp, tmp_path, provider)) as client:
        done, _ = _login(client)
        assert done.status_code == 403
        assert client.get("/api/tasks").status_code == 401
        assert client.get("/oauth2/callback", params={"code": "c", "state": "forged"}).status_code == 403
    with oidc_provider("ana@example.com") as provider, TestClient(_oauth_dashboard(capp, tmp_path, provider)) as client:
        done, _ = _login(client, next_path="//evil.test/steal")
        assert done.headers["location"] == "/"


def test_session_cookie_is_signed(capp, tmp_path):
    with oidc_provider("ana@example.com") as provider, TestClient(_oauth_dashboard(capp, tmp_path, provider)) as client:
        forged = base64.b64encode(json.dumps({"user": "ana@example.com"}).encode()).decode()
        client.cookies.set("celeriac_session", forged)
        assert client.get("/api/tasks").status_code == 401


def test_sessions_survive_a_restart_because_the_secret_is_kept(capp, tmp_path):
    with oidc_provider("ana@example.com") as provider:
        with TestClient(_oauth_dashboard(capp, tmp_path, provider)) as first:
            _login(first)
            cookie = first.cookies.get("celeriac_session")
        with TestClient(_oauth_dashboard(capp, tmp_path, provider)) as second:
            assert second.get("/api/tasks").status_code == 401
            second.cookies.set("celeriac_session", cookie)
            assert second.get("/api/tasks").status_code == 200
