"""Real worker processes on Redis under faults: kill -9, killed connections, a restart, long countdowns.

Each test runs in its own key prefix; the result store is what the assertions read, plus a file per
task that records every time its body ran.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import threading
import time
import uuid

import pytest
import redis

from celeriac import Celery
from celeriac.worker.loop import AHEAD_GROWTH

from .conftest import require_service, service_up
from .contract.redis_factories import delete_prefix
from .workers import worker_process, write_module

URL = "redis://127.0.0.1:6379/0"
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]

SOURCE = r'''
import os
import time
from pathlib import Path

from celeriac import Celery

app = Celery("rtasks")
_common = {"global_keyprefix": os.environ["KEYPREFIX"], "client_name": os.environ.get("CLIENT_NAME") or None}
app.conf.broker_transport_options = {**_common, "visibility_timeout": float(os.environ.get("VISIBILITY", "30"))}
app.conf.result_backend_transport_options = _common
MARKS = Path(os.environ["MARKS_DIR"])


@app.task
def job(name, seconds):
    with open(MARKS / f"{name}.runs", "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return name
'''


@pytest.fixture
def project(tmp_path):
    require_service("redis")
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    client_name = f"faults-{uuid.uuid4().hex[:8]}"
    write_module(tmp_path, "rtasks", SOURCE)
    env = {"CELERIAC_BROKER_URL": URL, "CELERIAC_RESULT_BACKEND": URL, "MARKS_DIR": str(tmp_path), "KEYPREFIX": prefix,
           "CLIENT_NAME": client_name}
    app = Celery("client", broker=URL, backend=URL)
    app.conf.broker_transport_options = {"global_keyprefix": prefix}
    app.conf.result_backend_transport_options = {"global_keyprefix": prefix}

    class Project:
        name = client_name
        client = app

        def send(self, name, seconds=0.0, **options):
            return app.send_task("rtasks.job", (name, seconds), **options)

        def worker(self, *args, **kwargs):
            merged = {**env, **kwargs.pop("env", {})}
            return worker_process("rtasks", cwd=tmp_path, env=merged, args=list(args), **kwargs)

        def runs(self, name):
            path = tmp_path / f"{name}.runs"
            return len(path.read_text().split()) if path.exists() else 0

    yield Project()
    delete_prefix(prefix)


def test_killed_worker_tasks_complete_after_restart_and_at_most_the_interrupted_rerun(project):
    env = {"VISIBILITY": "2"}
    results = [project.send(f"job{i}", 0.5) for i in range(8)]
    with project.worker("-P", "prefork", "-c", "2", env=env) as w:
        w.wait_for_line("received", count=2)
        w.kill()
    with project.worker("-P", "prefork", "-c", "2", env=env):
        values = [r.get(timeout=60) for r in results]
    assert values == [f"job{i}" for i in range(8)]
    assert all(r.state == "SUCCESS" for r in results)
    runs = [project.runs(f"job{i}") for i in range(8)]
    assert all(n in (1, 2) for n in runs), runs
    assert sum(n == 2 for n in runs) <= 2, runs  # only what the two children held when killed


def test_countdown_longer_than_the_lease_runs_once(project):
    with project.worker("-P", "prefork", "-c", "2", env={"VISIBILITY": "1"}):
        later = project.send("later", 0.0, countdown=2.5)
        long = project.send("long", 3.0)  # runs three leases long: renewals keep it held
        assert later.get(timeout=20) == "later"
        assert long.get(timeout=20) == "long"
    assert project.runs("later") == 1
    assert project.runs("long") == 1


def _kill_connections(name: str) -> int:
    raw = redis.Redis(host="127.0.0.1", port=6379)
    return sum(raw.execute_command("CLIENT", "KILL", "ID", c["id"]) for c in raw.client_list() if c.get("name") == name)


def _most_held_by_one_consumer(project) -> int:
    """The most messages one consumer holds (delivered to it, not yet acked) over the queue's priority streams."""
    raw = redis.Redis.from_url(URL)
    base = project.client.broker.base("celery")
    by_consumer: dict[bytes, int] = {}
    for prio in range(10):
        try:
            summary = raw.xpending(f"{base}:{prio}", "celeriac")
        except redis.ResponseError:  # no such stream, or no consumer group on it yet
            continue
        for consumer in summary["consumers"]:
            by_consumer[consumer["name"]] = by_consumer.get(consumer["name"], 0) + int(consumer["pending"])
    return max(by_consumer.values(), default=0)


def test_a_batch_fetched_ahead_of_a_long_task_is_given_back_to_other_workers(project):
    quick_before = [project.send(f"before{i}") for i in range(3)]
    long_one = project.send("long", 6)
    quick_after = [project.send(f"after{i}") for i in range(4)]
    held: list[int] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            held.append(_most_held_by_one_consumer(project))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with project.worker("-P", "prefork", "-c", "1", "--prefetch-multiplier", "4") as first:
            first.wait_for_line(f"rtasks.job[{long_one.id}] received")
            assert [r.get(timeout=10) for r in quick_before] == [f"before{i}" for i in range(3)]
            with project.worker("-P", "prefork", "-c", "1"):
                assert [r.get(timeout=10) for r in quick_after] == [f"after{i}" for i in range(4)]
                assert not long_one.ready()  # the quick ones did not wait behind the long task
            assert long_one.get(timeout=15) == "long"
    finally:
        sampling.set()
        sampler.join(5)
    # the first slot took the next batch as it started the long task: more than its prefetch of 4 at once
    assert max(held) >= 5, max(held)
    assert all(project.runs(f"after{i}") == 1 for i in range(4))


def test_a_high_priority_task_sent_during_a_drain_overtakes_the_backlog(project):
    from celeriac import group

    backlog = group(project.client.signature("rtasks.job", (f"b{i}", 0.0)) for i in range(3000)).apply_async()
    with project.worker("-P", "prefork", "-c", "1") as w:
        w.wait_for_line("succeeded", count=200)  # deep in a backlog at priority 0: claimed by plain reads
        sent_at = dt.datetime.now(dt.UTC)
        urgent = project.send("urgent", priority=9)
        assert urgent.get(timeout=30) == "urgent"
        backlog.join(timeout=60)
    urgent_done = urgent.date_done
    done = [r.date_done for r in backlog.results]
    overtaken = sum(1 for at in done if at > urgent_done)
    ran_meanwhile = sum(1 for at in done if sent_at < at < urgent_done)
    assert overtaken >= 500, f"only {overtaken} backlog tasks were left to overtake"
    # it waited only for what the worker already held (a batch, one more fetched ahead, the running task)
    # and one more claim, not for a time window; batches of quick tasks grow to AHEAD_GROWTH x prefetch
    batch = 4 * AHEAD_GROWTH
    assert ran_meanwhile <= 3 * batch + 1, ran_meanwhile


def test_killed_connections_under_load_lose_no_task(project):
    results = [project.send(f"load{i}", 0.01) for i in range(150)]
    with project.worker("-P", "prefork", "-c", "2") as w:
        w.wait_for_line("succeeded", count=10)
        killed = sum(_kill_connections(project.name) for _ in range(3))
        assert killed >= 3
        values = [r.get(timeout=60) for r in results]
    assert values == [f"load{i}" for i in range(150)]
    assert all(project.runs(f"load{i}") >= 1 for i in range(150))


@pytest.mark.skipif(os.geteuid() != 0, reason="restarting the shared Redis needs root")
def test_worker_keeps_consuming_after_a_redis_restart(project):
    with project.worker("-P", "prefork", "-c", "2") as w:
        assert project.send("before").get(timeout=20) == "before"
        subprocess.run(["redis-cli", "shutdown", "nosave"], capture_output=True, timeout=10)
        try:
            deadline = time.monotonic() + 10
            while service_up("redis") and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            subprocess.run(REDIS_START, check=True, timeout=20)
        # Redis kept nothing: work sent from now on must still run
        assert project.send("after").get(timeout=30) == "after"
        assert w.proc.poll() is None
