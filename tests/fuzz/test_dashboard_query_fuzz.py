"""Every GET route of the dashboard with generated query strings: never a 5xx, never a hang.

Routes come from the app's own route table, so a new page is fuzzed without editing this file.
``/api/live`` always gets ``once=1`` (without it the stream is meant to stay open).
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

import celeriac
from celeriac.dashboard import create_app
from celeriac.dashboard.routes import routes

from ..dashboard.conftest import fail_task, heartbeat, ingest, run_task
from .strategies import examples

NUMERIC = ["limit", "offset"]
PARAMS = ["after", "before", "state", "name", "taskname", "worker", "workername", "queue", "since",
          "until", "received_start", "received_end", "search", "fragment", "status", "once", "next", "code"]
ODD_VALUES = ["", "-1", "0", "1", "1e400", "nan", "inf", "-inf", "9" * 30, "abc", "0001-01-01T00:00+01:00",
              "9999-12-31T23:59:59-01:00", "2026-13-45", "%", "%00", "\x00", "'; DROP TABLE tasks; --", "<script>",
              "W1tdXQ", "WzEsMiwzXQ", "WyJ4IiwieSJd", "*", "_", "\\", "ö" * 300]
SAMPLE_ID = "3f1c9a2e-0000-4000-8000-000000000001"


def get_paths() -> list[str]:
    """Every GET path in the route table, with parameters filled (a known task id where one is asked)."""
    paths = []
    for route in routes():
        if isinstance(route, Mount):
            paths.append(f"{route.path}/app.js")
        elif isinstance(route, Route) and "GET" in (route.methods or {"GET"}):
            paths.append(re.sub(r"{[^}]+}", SAMPLE_ID, route.path))
    return sorted(paths)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash-fuzz")
    url = f"sqlite:///{tmp / 'broker.sqlite3'}"
    capp = celeriac.Celery("fuzz", broker=url, backend=url, set_as_current=False, result_extended=True)
    web = create_app(capp, db=f"sqlite:///{tmp / 'history.sqlite3'}", ingest=False)
    run_task(capp, SAMPLE_ID)
    fail_task(capp, "3f1c9a2e-0000-4000-8000-000000000002")
    heartbeat(capp, hostname=SAMPLE_ID)
    ingest(web)
    with TestClient(web, raise_server_exceptions=False) as c:
        yield c
    capp.close()


odd_text = st.one_of(st.sampled_from(ODD_VALUES), st.text(max_size=30))
query_pairs = st.lists(st.tuples(st.one_of(st.sampled_from(PARAMS), st.text(max_size=8)), odd_text), max_size=5)
number_pairs = st.lists(st.tuples(st.sampled_from(NUMERIC), st.integers(-(2**63), 2**63 - 1).map(str)), max_size=2)
FUZZ = settings(max_examples=examples(120), deadline=3000, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_the_fuzzed_paths_are_read_from_the_route_table():
    paths = get_paths()
    assert {"/tasks", f"/task/{SAMPLE_ID}", "/api/tasks", "/api/live", "/metrics", "/static/app.js"} <= set(paths)
    assert not any(p.startswith("/api/task/revoke") for p in paths)  # POST-only routes are not GET-fuzzed


def request_ok(client, path: str, pairs: list[tuple[str, str]]) -> None:
    if path == "/api/live":
        pairs = [(k, v) for k, v in pairs if k != "once"] + [("once", "1")]
    response = client.get(f"{path}?{urlencode(pairs)}", follow_redirects=False)
    assert response.status_code < 500, f"{path}?{urlencode(pairs)} -> {response.status_code}"


@FUZZ
@given(st.sampled_from(get_paths()), query_pairs)
def test_generated_query_strings_never_give_a_server_error(client, path, pairs):
    request_ok(client, path, pairs)


@FUZZ
@given(st.sampled_from(get_paths()), number_pairs, query_pairs)
def test_any_whole_number_as_limit_or_offset_never_gives_a_server_error(client, path, numbers, pairs):
    request_ok(client, path, numbers + pairs)


@pytest.mark.parametrize("path", get_paths())
@pytest.mark.parametrize("value", ODD_VALUES)
def test_every_route_takes_odd_values_for_every_known_parameter(client, path, value):
    request_ok(client, path, [(name, value) for name in PARAMS if name != "next"])


@pytest.mark.parametrize("url", [f"{path}?limit={v}" for path in ("/tasks", "/api/tasks") for v in ("abc", "1.5", "nan")]
                         + [f"/api/tasks?offset={v}" for v in ("abc", "1e400", "9" * 30)])
def test_a_limit_or_offset_that_is_not_a_whole_number_is_not_a_server_error(client, url):
    assert client.get(url).status_code < 500
