"""FastAPI helpers: lifespan, dependency, typed status, the dashboard under a path."""

from __future__ import annotations

import importlib.util
import threading

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from celeriac import Celery
from celeriac.contrib.fastapi import TaskStatus, celeriac_lifespan, get_celeriac, mount_dashboard


@pytest.fixture
def capp(memory_url):
    app = Celery("api", broker=memory_url, set_as_current=False, task_always_eager=True, task_store_eager_result=True)

    @app.task
    def double(x):
        return 2 * x

    @app.task
    def boom():
        raise ValueError("nope")

    return app


def make_api(capp, **lifespan_options) -> FastAPI:
    api = FastAPI(lifespan=celeriac_lifespan(capp, **lifespan_options))

    @api.post("/double/{x}")
    def start(x: int, app: Celery = Depends(get_celeriac)) -> dict[str, str]:
        return {"task_id": app.tasks[f"{__name__}.double"].delay(x).id}

    @api.get("/status/{task_id}")
    def status(task_id: str, app: Celery = Depends(get_celeriac)) -> TaskStatus[int]:
        return TaskStatus[int].of(app.AsyncResult(task_id))

    return api


def test_dependency_gives_the_app_and_status_is_typed(capp):
    with TestClient(make_api(capp)) as client:
        task_id = client.post("/double/21").json()["task_id"]
        body = client.get(f"/status/{task_id}").json()
    assert body == {"task_id": task_id, "status": "SUCCESS", "ready": True, "result": 42, "error": None}


def test_unknown_id_is_pending_and_not_ready(capp):
    with TestClient(make_api(capp)) as client:
        body = client.get("/status/no-such-id").json()
    assert body["status"] == "PENDING" and body["ready"] is False and body["result"] is None


def test_failure_is_described_not_raised(capp):
    task_id = capp.tasks[f"{__name__}.boom"].delay().id
    status = TaskStatus[int].of(capp.AsyncResult(task_id))
    assert (status.status, status.error) == ("FAILURE", "ValueError: nope")


def test_dependency_without_the_lifespan_explains_the_fix(capp):
    api = make_api(capp)
    api.router.lifespan_context = FastAPI().router.lifespan_context
    with TestClient(api, raise_server_exceptions=True) as client, pytest.raises(RuntimeError, match="celeriac_lifespan"):
        client.get("/status/x")


def test_a_wrong_broker_url_fails_at_startup():
    bad = Celery("bad", broker="nosuch://host", set_as_current=False)
    with pytest.raises(Exception, match="nosuch"), TestClient(make_api(bad)):
        pass


@pytest.mark.skipif(importlib.util.find_spec("celeriac.dashboard") is None, reason="the dashboard is not in this tree")
def test_dashboard_is_served_under_its_path_next_to_the_api(capp, tmp_path):
    api = make_api(capp)
    mount_dashboard(api, capp, "/ops/dashboard", db=f"sqlite:///{tmp_path / 'dash.sqlite3'}")
    with TestClient(api) as client:
        page = client.get("/ops/dashboard/")
        assert client.post("/double/1").status_code == 200
        workers = client.get("/ops/dashboard/api/workers")
        ingesting = [t.name for t in threading.enumerate() if t.name == "celeriac-dashboard-ingest"]
    assert ingesting, "the dashboard's lifespan did not run inside the API's"
    assert page.status_code == 200 and 'href="/ops/dashboard/tasks"' in page.text
    assert workers.status_code == 200 and workers.json() == {}
