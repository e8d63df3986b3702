"""OAuth2 login against a local OIDC provider: state, redirects, the session cookie, and login throttling."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from .conftest import make_dashboard
from .oidc_provider import oidc_provider
from .test_auth import _login, _oauth_dashboard

GOOD = ("admin", "pa:ss")


@pytest.fixture
def provider():
    with oidc_provider("ana@example.com") as url:
        yield url


@pytest.fixture
def web(capp, tmp_path, provider):
    return _oauth_dashboard(capp, tmp_path, provider)


def start_login(client, next_path="/tasks"):
    """Begin a login; return the callback URL the provider sends the browser back to."""
    start = client.get("/login", params={"next": next_path}, follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    parts = urlsplit(back.headers["location"])
    return f"{parts.path}?{parts.query}"


def test_a_state_issued_to_another_browser_is_refused(web):
    with TestClient(web) as victim, TestClient(web) as attacker:
        callback = start_login(attacker)  # the attacker's own code and state, replayed in the victim's browser
        start_login(victim)
        assert victim.get(callback, follow_redirects=False).status_code == 403
        assert victim.get("/api/tasks").status_code == 401


def test_a_state_is_good_for_one_callback_only(web):
    with TestClient(web) as client:
        callback = start_login(client)
        assert client.get(callback, follow_redirects=False).status_code == 302
        client.cookies.clear()
        start_login(client)
        assert client.get(callback, follow_redirects=False).status_code == 403


@pytest.mark.parametrize("query", ["", "state=", "code=c", "state=&code=c", "code=c&state=" + "A" * 32])
def test_a_callback_without_the_issued_state_is_refused(web, query):
    with TestClient(web) as client:
        start_login(client)
        assert client.get(f"/oauth2/callback?{query}", follow_redirects=False).status_code == 403
        assert client.get("/api/tasks").status_code == 401


@pytest.mark.parametrize("target", ["https://evil.test/", "//evil.test/x", "/\\evil.test", "\\\\evil.test", "http:evil.test",
                                    "javascript:alert(1)", "/\t/evil.test", "/%2F%2Fevil.test", " //evil.test", "evil.test"])
def test_next_never_redirects_off_site(web, target):
    with TestClient(web) as client:
        done, _ = _login(client, next_path=target)
        assert done.status_code == 302
        assert where_a_browser_goes(done.headers["location"]) == "testserver"


def where_a_browser_goes(location: str) -> str:
    """The host a browser would open: it drops tabs and newlines and reads a backslash as a slash."""
    cleaned = location.strip().translate({9: None, 10: None, 13: None}).replace("\\", "/")
    return httpx.URL("http://testserver/tasks").join(cleaned).host


def test_login_sends_the_configured_redirect_uri_whatever_the_request_says(web):
    with TestClient(web) as client:
        start = client.get("/login", params={"redirect_uri": "https://evil.test/cb"}, follow_redirects=False)
    sent = parse_qs(urlsplit(start.headers["location"]).query)
    assert sent["redirect_uri"] == ["http://testserver/oauth2/callback"]
    assert len(sent["state"][0]) >= 24


def test_the_session_cookie_is_http_only_and_same_site(web):
    with TestClient(web) as client:
        done, _ = _login(client)
    cookie = done.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_repeated_bad_callbacks_are_throttled_even_for_a_good_login(web):
    with TestClient(web) as client:
        for _ in range(10):
            assert client.get("/oauth2/callback?state=forged&code=c").status_code == 403
        callback = start_login(client)
        assert client.get(callback, follow_redirects=False).status_code == 429
        assert client.get("/api/tasks").status_code == 429


def test_repeated_wrong_passwords_are_throttled_on_every_kind_of_path(capp, tmp_path):
    with TestClient(make_dashboard(capp, tmp_path, basic_auth=["admin:pa:ss"])) as client:
        for attempt in range(10):
            assert client.get("/api/tasks", auth=("admin", f"guess-{attempt}")).status_code == 401
        for method, path in (("GET", "/"), ("GET", "/api/tasks"), ("GET", "/metrics"), ("POST", "/api/task/revoke/t1")):
            response = client.request(method, path, auth=GOOD)
            assert response.status_code == 429 and "too many" in response.text, path
