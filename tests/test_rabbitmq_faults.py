"""Real worker processes on RabbitMQ under faults: kill -9, connections closed by the server, countdowns.

Each test runs on its own queue prefix (deleted after) with results in a SQLite file; a file per
task records every time its body ran.
"""

from __future__ import annotations

import uuid

import pytest

from celeriac import Celery

from .conftest import require_service
from .contract.rabbitmq_factories import URL, delete_prefixed
from .test_rabbitmq_specific import close_connections
from .workers import worker_process, write_module

pytestmark = pytest.mark.rabbitmq

SOURCE = r"""
import os
import time
from pathlib import Path

from celeriac import Celery

app = Celery("qtasks")
app.conf.broker_transport_options = {
    "queue_prefix": os.environ["QUEUE_PREFIX"],
    "connection_name": os.environ["CONNECTION_NAME"],
    "visibility_timeout": float(os.environ.get("VISIBILITY", "30")),
}
MARKS = Path(os.environ["MARKS_DIR"])


@app.task
def job(name, seconds):
    with open(MARKS / f"{name}.runs", "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return name
"""


@pytest.fixture
def project(tmp_path):
    require_service("rabbitmq")
    prefix = f"t{uuid.uuid4().hex[:10]}."
    name = f"celeriac-faults-{uuid.uuid4().hex[:8]}"
    results = f"sqlite:///{tmp_path / 'results.sqlite3'}"
    write_module(tmp_path, "qtasks", SOURCE)
    env = {
        "CELERIAC_BROKER_URL": URL,
        "CELERIAC_RESULT_BACKEND": results,
        "MARKS_DIR": str(tmp_path),
        "QUEUE_PREFIX": prefix,
        "CONNECTION_NAME": name,
    }
    app = Celery("client", broker=URL, backend=results)
    app.conf.broker_transport_options = {"queue_prefix": prefix, "connection_name": f"{name}-client"}

    class Project:
        connection_name = name
        client = app

        def send(self, task_name, seconds=0.0, **options):
            return app.send_task("qtasks.job", (task_name, seconds), **options)

        def worker(self, *args, **kwargs):
            merged = {**env, **kwargs.pop("env", {})}
            return worker_process("qtasks", cwd=tmp_path, env=merged, args=list(args), **kwargs)

        def runs(self, task_name):
            path = tmp_path / f"{task_name}.runs"
            return len(path.read_text().split()) if path.exists() else 0

    yield Project()
    app.close()
    delete_prefixed(prefix)


def test_killed_worker_tasks_complete_and_only_the_interrupted_rerun(project):
    results = [project.send(f"job{i}", 0.5) for i in range(8)]
    with project.worker("-P", "prefork", "-c", "2") as w:
        w.wait_for_line("received", count=2)
        w.kill()
    with project.worker("-P", "prefork", "-c", "2"):
        values = [r.get(timeout=60) for r in results]
    assert values == [f"job{i}" for i in range(8)]
    runs = [project.runs(f"job{i}") for i in range(8)]
    assert all(n in (1, 2) for n in runs), runs
    assert sum(n == 2 for n in runs) <= 2, runs  # only what the two children held when killed


def test_connections_closed_by_the_server_under_load_lose_no_task(project):
    results = [project.send(f"load{i}", 0.01) for i in range(150)]
    with project.worker("-P", "prefork", "-c", "2") as w:
        w.wait_for_line("succeeded", count=10)
        assert close_connections(project.connection_name) >= 1
        w.wait_for_line("succeeded", count=40)
        assert close_connections(project.connection_name) >= 1
        values = [r.get(timeout=60) for r in results]
    assert values == [f"load{i}" for i in range(150)]
    assert all(project.runs(f"load{i}") >= 1 for i in range(150))


def test_countdown_and_a_task_longer_than_its_lease_each_run_once(project):
    with project.worker("-P", "prefork", "-c", "2", env={"VISIBILITY": "1"}):
        later = project.send("later", 0.0, countdown=2.5)
        long = project.send("long", 3.0)  # three leases long: renewals keep it held
        assert later.get(timeout=20) == "later"
        assert long.get(timeout=20) == "long"
    assert project.runs("later") == 1
    assert project.runs("long") == 1


def test_remote_control_and_events_work_on_rabbitmq_alone(project):
    with project.worker("-P", "prefork", "-c", "2", "-E"):
        assert project.send("warm").get(timeout=20) == "warm"
        replies = project.client.control.ping(timeout=5)
        assert len(replies) == 1 and list(replies[0].values()) == [{"ok": "pong"}]
    # the event stream is durable: a monitor that starts afterwards still reads the whole story
    from celeriac.events import EventReceiver

    kinds = {event["type"] for event in EventReceiver(project.client).read(limit=1000, timeout=2)}
    assert {"worker-online", "task-received", "task-succeeded", "worker-offline"} <= kinds
