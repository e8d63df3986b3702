"""The Flask tutorial (blueprint) and the app-factory example, run as their READMEs say."""

from __future__ import annotations

import pytest

from tests.contrib.servers import example_site, redis_env, sqlite_env, status_once_settled, tutorial_flow


def broker_env(kind: str, tmp_path):
    return sqlite_env(tmp_path) if kind == "sqlite" else redis_env()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_blueprint_tutorial_returns_the_id_at_once_then_reports_success(kind, tmp_path):
    with example_site("flask_app", tmp_path, broker_env(kind, tmp_path)) as site:
        site.start_web(["run.py"], ready="Running on", env={"PORT": str(site.port)})
        with site.worker("my_app.tasks.celery_app") as worker:
            done = tutorial_flow(site, worker, "/run-task/Andres", "/status/{task_id}", method="POST")
    assert done["result"] == "Task completed for Andres!"


def factory_site(tmp_path, env):
    """The factory example with its greeting changed through Flask's own FLASK_ variables."""
    return example_site("flask_factory", tmp_path, {**env, "FLASK_GREETING": "Bonjour"})


def start_factory(site):
    site.start_web(["-m", "flask", "--app", "my_factory", "run", "--port", str(site.port)], ready="Running on")


def test_factory_tasks_read_the_flask_config_in_the_worker(tmp_path):
    """No broker configured: the SQLite default, shared by server and worker through the working directory."""
    with factory_site(tmp_path, {}) as site:
        start_factory(site)
        with site.worker("make_celery") as worker:
            done = tutorial_flow(site, worker, "/greet/Ada", "/status/{task_id}", method="POST")
        assert (site.root / "celeriac.sqlite3").exists()
    assert done["result"] == "Bonjour, Ada!"


def test_factory_retries_inside_the_app_context_until_success(tmp_path):
    with factory_site(tmp_path, {}) as site:
        start_factory(site)
        with site.worker("make_celery") as worker:
            code, body = site.request("POST", "/flaky/2")
            worker.wait_for_line(f"[{body['task_id']}] succeeded", timeout=60)
            assert len([line for line in worker.lines if body["task_id"] in line and "retry" in line.lower()]) == 2
            done = status_once_settled(site, f"/status/{body['task_id']}")
    assert code == 202
    assert done == {"task_id": body["task_id"], "status": "SUCCESS", "result": {"retries": 2, "app": "my_factory"}}


@pytest.mark.redis
def test_factory_reads_a_prefixed_broker_url_from_the_environment(tmp_path):
    env = redis_env()
    flask_env = {"FLASK_CELERY_BROKER_URL": env["CELERIAC_BROKER_URL"], "FLASK_CELERY_RESULT_BACKEND": env["CELERIAC_RESULT_BACKEND"]}
    with factory_site(tmp_path, flask_env) as site:
        start_factory(site)
        with site.worker("make_celery") as worker:
            assert "redis://" in worker.output
            done = tutorial_flow(site, worker, "/greet/Ada", "/status/{task_id}", method="POST")
        assert not (site.root / "celeriac.sqlite3").exists()
    assert done["result"] == "Bonjour, Ada!"
