"""The FastAPI tutorials, run as their READMEs say: uvicorn plus a worker, driven over HTTP."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.contrib.servers import example_site, free_port, redis_env, sqlite_env, tutorial_flow
from tests.workers import worker_env


def broker_env(kind: str, tmp_path):
    return sqlite_env(tmp_path) if kind == "sqlite" else redis_env()


def uvicorn(site, target: str) -> list[str]:
    return ["-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(site.port)]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_router_tutorial_returns_the_id_at_once_then_reports_success(kind, tmp_path):
    with example_site("fastapi_router", tmp_path, broker_env(kind, tmp_path)) as site:
        site.start_web(uvicorn(site, "api:app"), ready="Uvicorn running")
        with site.worker("mycelery.celery_app") as worker:
            done = tutorial_flow(site, worker, "/celery/run-task/Andres", "/celery/status/{task_id}")
    assert done["result"] == "Task completed for Andres!"


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_add_tutorial_returns_a_task_id_whose_result_is_the_sum(kind, tmp_path):
    with example_site("fastapi_tutorial", tmp_path, broker_env(kind, tmp_path)) as site:
        site.start_web(uvicorn(site, "main:app"), ready="Uvicorn running")
        assert site.get("/") == {"Hello": "World"}
        with site.worker("celery_app.config") as worker:
            code, body = site.request("POST", "/add?x=5&y=10")
            assert code == 200
            worker.wait_for_line(f"[{body['task_id']}] succeeded")
        shown = subprocess.run(
            [sys.executable, "-m", "celeriac", "-A", "celery_app.config", "result", body["task_id"]],
            cwd=site.root, env=worker_env(site.root, site.env), capture_output=True, text=True, timeout=60,
        )
    assert shown.stdout.strip() == "SUCCESS: 15", shown.stderr


def dashboard_task(port: int, task_id: str, auth: str | None) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/task/info/{task_id}")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except urllib.error.URLError:
        return 0, {}


def test_add_tutorial_dashboard_shows_the_task_behind_basic_auth(tmp_path):
    """The tutorial's Flower command, with celeriac: the finished task is listed, and only with the password."""
    with example_site("fastapi_tutorial", tmp_path, sqlite_env(tmp_path)) as site:
        site.start_web(uvicorn(site, "main:app"), ready="Uvicorn running")
        port = free_port()
        site.start(["-m", "celeriac", "-A", "celery_app.config", "flower", "--address=0.0.0.0", f"--port={port}",
                    "--basic_auth=username:password", f"--db=sqlite:///{tmp_path / 'dash.sqlite3'}"], ready="dashboard on")
        with site.worker("celery_app.config") as worker:
            task_id = site.request("POST", "/add?x=5&y=10")[1]["task_id"]
            worker.wait_for_line(f"[{task_id}] succeeded")
        deadline = time.monotonic() + 30
        while (found := dashboard_task(port, task_id, "username:password"))[1].get("state") != "SUCCESS":
            assert time.monotonic() < deadline, f"the dashboard never showed {task_id} as done: {found}"
            time.sleep(0.2)
        assert dashboard_task(port, task_id, None)[0] == 401
    assert found[1]["result"] in ("15", 15)
