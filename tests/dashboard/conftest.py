"""Fixtures: a celeriac app on a temporary SQLite broker, and its dashboard behind a TestClient."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

import celeriac
from celeriac.dashboard import create_app


@pytest.fixture
def capp(tmp_path):
    url = f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    app = celeriac.Celery("dash", broker=url, backend=url, set_as_current=False, result_extended=True)

    @app.task(name="proj.add")
    def add(x, y):
        return x + y

    yield app
    app.close()


def make_dashboard(capp, tmp_path, **options):
    options.setdefault("db", f"sqlite:///{tmp_path / 'history.sqlite3'}")
    options.setdefault("ingest", False)
    return create_app(capp, **options)


@pytest.fixture
def dash_app(capp, tmp_path):
    return make_dashboard(capp, tmp_path)


@pytest.fixture
def client(dash_app):
    with TestClient(dash_app) as c:
        yield c


def ingest(web_app):
    """Flush producers' buffered events and fold everything in the stream into the history."""
    dash = web_app.state.dash
    dash.app.events.flush()
    return dash.ingester.drain()


def emit(capp, type_, **fields):
    """Write one event to the stream, as a worker would."""
    capp.events.send(type_, **fields)


def heartbeat(capp, hostname="w1@host", ts=None, type_="worker-heartbeat", **extra):
    fields = dict(hostname=hostname, freq=2.0, active=1, processed=10, loadavg=[0.1, 0.2, 0.3],
                  sw_ident="celeriac", sw_ver="0.1.0", sw_sys="Linux", pool="prefork", concurrency=4)
    fields.update(extra)
    event = capp.events.event(type_, **fields)
    if ts is not None:
        event["timestamp"] = ts
    import orjson

    from celeriac.events import STREAM

    capp.broker.stream_append(STREAM, [orjson.dumps(event)], maxlen=10_000, max_age=3600)


def run_task(capp, task_id, result="5", runtime=0.01, hostname="w1@host"):
    """The events a worker sends for one successful run."""
    emit(capp, "task-received", uuid=task_id, name="proj.add", args="(2, 3)", kwargs="{}", hostname=hostname)
    emit(capp, "task-started", uuid=task_id, hostname=hostname)
    emit(capp, "task-succeeded", uuid=task_id, result=result, runtime=runtime, hostname=hostname)


def fail_task(capp, task_id, hostname="w1@host"):
    emit(capp, "task-received", uuid=task_id, name="proj.add", args="(2, 'x')", kwargs="{}", hostname=hostname)
    emit(capp, "task-started", uuid=task_id, hostname=hostname)
    emit(capp, "task-failed", uuid=task_id, exception="TypeError(\"unsupported operand type(s) for +: 'int' and 'str'\")",
         traceback="Traceback (most recent call last):\n  ...\nTypeError: unsupported operand", hostname=hostname)


now = time.time
