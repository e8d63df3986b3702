"""The dashboard's POST actions with malformed bodies: a 4xx that says what is wrong, never a 5xx.

Only a script can send these (no browser session, so no CSRF token is needed); paths come from
the route table.
"""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from starlette.testclient import TestClient

import celeriac
from celeriac.dashboard import create_app
from celeriac.dashboard.routes import routes

from .strategies import examples, json_values

JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
ACTION_REASON = ("actions._params lets request.json() raise on a body that is not JSON, and the handlers index or "
                 "convert args/kwargs/n/limit/ids without checking their types: 500 instead of 400")


def post_paths() -> list[str]:
    return sorted(r.path.replace("{task_id}", "t1").replace("{name}", "proj.add")
                  for r in routes() if isinstance(r, Route) and "POST" in (r.methods or ()))


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("actions-fuzz")
    url = f"sqlite:///{tmp / 'broker.sqlite3'}"
    capp = celeriac.Celery("fuzz", broker=url, backend=url, set_as_current=False)
    capp.task(name="proj.add")(lambda x, y: x + y)
    web = create_app(capp, db=f"sqlite:///{tmp / 'history.sqlite3'}", ingest=False, inspect_timeout=0.05)
    with TestClient(web, raise_server_exceptions=False) as c:
        yield c
    capp.close()


bodies = st.one_of(
    json_values.map(lambda v: (orjson.dumps(v), JSON)),
    st.dictionaries(st.sampled_from(["args", "kwargs", "n", "limit", "ids", "queue", "soft", "hard", "countdown",
                                     "terminate", "signal", "id", "state"]), json_values, max_size=4)
    .map(lambda d: (orjson.dumps(d), JSON)),
    st.lists(st.tuples(st.sampled_from(["id", "limit", "n", "queue", "state"]), st.text(max_size=10)), max_size=4)
    .map(lambda pairs: (urlencode(pairs).encode(), FORM)),
    st.binary(max_size=40).map(lambda b: (b, JSON)),
)


@settings(max_examples=examples(100), deadline=3000, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(post_paths()), bodies)
def test_generated_action_bodies_never_give_a_server_error(client, path, body):
    content, headers = body
    assert client.post(path, content=content, headers=headers).status_code < 500


@pytest.mark.parametrize("path", post_paths())
def test_a_body_that_is_not_json_is_a_client_error(client, path):
    response = client.post(path, content=b"{not json", headers=JSON)
    assert 400 <= response.status_code < 500 and "JSON" in response.text
