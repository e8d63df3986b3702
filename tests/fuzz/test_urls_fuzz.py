"""Broker and backend URLs: ``from_url`` gives an object or ImproperlyConfigured, fast, without connecting."""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celeriac import backends, brokers
from celeriac.exceptions import ImproperlyConfigured

from .strategies import examples

SCHEMES = sorted(set(brokers.SCHEMES) | set(backends.SCHEMES)) + ["http", "redis+", "", "SQLITE", "Redis"]
REDIS = sorted(s for s in SCHEMES if "redis" in s.lower() or s == "sentinel")
NOT_REDIS = [s for s in SCHEMES if s not in REDIS]
ODD_PORTS = [":65536", ":99999999", ":-1", ":", ":abc"]
FAST = settings(max_examples=examples(200), deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
URL_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Construction must be lazy: any connection attempt is recorded (and refused)."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("a URL was connected to while only being parsed")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.chdir(tmp_path)  # relative sqlite paths land here, if anywhere
    yield attempts
    assert attempts == [], "from_url opened a connection"


@st.composite
def structured_urls(draw: st.DrawFn, schemes: list[str] = SCHEMES, ports: list[str] | None = None) -> str:
    """scheme://[user[:password]@]host[:port]/path[?query] with each part possibly odd."""
    scheme = draw(st.sampled_from(schemes))
    userinfo = draw(st.sampled_from(["", "user@", "user:p%40ss@", ":secret@", "@", "a:b:c@"]))
    host = draw(st.sampled_from(["localhost", "127.0.0.1", "[::1]", "[::1", "", "h_o_s_t", "ex ample"]))
    port = draw(st.sampled_from(["", ":6379", ":0", ":5672", *(ports or [])]))
    path = draw(st.sampled_from(["", "/", "/0", "/15", "/-1", "/abc", "//", "/vhost", "/%zz", "/a/b.sqlite3"]))
    query = draw(st.sampled_from(["", "?", "?ssl_cert_reqs=none", "?heartbeat=x", "?db=2", "?x=1&x=2", "?%%"]))
    return f"{scheme}://{userinfo}{host}{port}{path}{query}"


def build_or_refuse(factory, url: str) -> None:
    try:
        obj = factory(url)
    except ImproperlyConfigured as exc:
        assert str(exc), "an empty error message"
        return
    close = getattr(obj, "close", None)
    if close is not None:
        close()


@FAST
@given(structured_urls())
def test_structured_broker_urls_build_or_explain(url):
    build_or_refuse(brokers.from_url, url)


@FAST
@given(structured_urls())
def test_structured_backend_urls_build_or_explain(url):
    build_or_refuse(backends.from_url, url)


@FAST
@given(structured_urls(NOT_REDIS, ODD_PORTS))
def test_odd_ports_in_other_urls_build_or_explain(url):
    build_or_refuse(brokers.from_url, url)
    build_or_refuse(backends.from_url, url)


REDIS_PORT_BUG = "redis_connection._host_port reads urlsplit(...).port, whose ValueError for a port that is not a " \
                 "number in 0-65535 escapes from_url instead of becoming ImproperlyConfigured"


@pytest.mark.parametrize("port", ODD_PORTS)
@pytest.mark.parametrize("factory", [brokers.from_url, backends.from_url], ids=["broker", "backend"])
def test_a_redis_url_with_a_bad_port_is_improperly_configured(factory, port):
    with pytest.raises(ImproperlyConfigured, match="port"):
        factory(f"redis://localhost{port}/0")


@FAST
@given(st.sampled_from(NOT_REDIS), URL_TEXT)
def test_any_text_after_a_scheme_builds_or_explains(scheme, rest):
    build_or_refuse(brokers.from_url, f"{scheme}://{rest}")
    build_or_refuse(backends.from_url, f"{scheme}://{rest}")


@settings(FAST, derandomize=True)
@given(st.sampled_from(REDIS), URL_TEXT)
def test_any_text_after_a_redis_scheme_builds_or_explains(scheme, rest):
    build_or_refuse(brokers.from_url, f"{scheme}://{rest}")
    build_or_refuse(backends.from_url, f"{scheme}://{rest}")


@FAST
@given(st.one_of(URL_TEXT, st.none(), st.integers(), st.binary(max_size=10)))
def test_values_that_are_not_urls_build_or_explain(value):
    build_or_refuse(brokers.from_url, value)
    build_or_refuse(backends.from_url, value)


@pytest.mark.parametrize("url", ["localhost:6379", "redis:/localhost", "", "sqlite:/tmp/x.db"])
def test_a_url_without_scheme_separator_shows_an_example_to_write(url):
    with pytest.raises(ImproperlyConfigured, match="redis://localhost:6379/0"):
        brokers.from_url(url)


def test_an_unknown_scheme_lists_the_known_ones():
    with pytest.raises(ImproperlyConfigured, match="known schemes: .*redis"):
        brokers.from_url("reddis://localhost")
    with pytest.raises(ImproperlyConfigured, match="known schemes: .*sqlite"):
        backends.from_url("mongodb://localhost")
