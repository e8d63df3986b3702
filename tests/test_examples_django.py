"""The Django tutorial project and the django.tasks example: runserver plus a worker, over HTTP."""

from __future__ import annotations

import time

import pytest

from tests.contrib.servers import example_site, redis_env, sqlite_env, tutorial_flow


def broker_env(kind: str, tmp_path):
    return sqlite_env(tmp_path) if kind == "sqlite" else redis_env()


def runserver(site):
    site.start_web(["manage.py", "runserver", "--noreload", f"127.0.0.1:{site.port}"], ready="Quit the server with")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_mystore_tutorial_returns_the_id_at_once_then_reports_success(kind, tmp_path):
    with example_site("django_mystore", tmp_path, broker_env(kind, tmp_path)) as site:
        runserver(site)
        with site.worker("mystore.celery.app") as worker:
            done = tutorial_flow(site, worker, "/run-task/Andres", "/status/{task_id}")
    assert done["result"] == "Task completed for Andres!"


@pytest.fixture
def tasksite(tmp_path):
    with example_site("django_tasks", tmp_path, sqlite_env(tmp_path)) as site:
        runserver(site)
        with site.worker("tasksite.celery.app") as worker:
            yield site, worker


def enqueue_and_finish(site, worker, path):
    code, body = site.request("POST", path)
    assert code == 202 and body["status"] == "READY"
    worker.wait_for_line(f"[{body['result_id']}]", timeout=30)
    worker.wait_for_line(f"[{body['result_id']}] {'raised' if 'broken' in path else 'succeeded'}", timeout=30)
    deadline = time.monotonic() + 5  # the worker's batched settle follows its log line by milliseconds
    while True:
        result = site.get(f"/results/{body['result_id']}")
        if result.get("is_finished") or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def test_django_task_runs_on_a_celeriac_worker_and_its_result_reads_through_django(tasksite):
    site, worker = tasksite
    result = enqueue_and_finish(site, worker, "/reports/4")
    assert result["status"] == "SUCCESSFUL" and result["is_finished"]
    assert result["task"] == "build_report"
    assert result["return_value"] == {"rows": [0, 1, 2, 3], "total": 6}
    assert "Task reports.tasks.build_report[" in worker.output


def test_django_task_failure_is_reported_with_the_exception_class(tasksite):
    site, worker = tasksite
    result = enqueue_and_finish(site, worker, "/broken")
    assert result["status"] == "FAILED"
    assert result["errors"] == ["builtins.ValueError"]


def test_django_task_with_context_sees_its_attempt_number(tasksite):
    site, worker = tasksite
    assert enqueue_and_finish(site, worker, "/attempt")["return_value"] == 1
