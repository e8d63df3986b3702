"""The worker as users run it: real processes on the SQLite broker, real signals."""

from __future__ import annotations

import os
import signal
import time

import pytest

from celeriac import Celery
from celeriac.exceptions import TimeLimitExceeded, WorkerLostError

from .tasks_for_workers import SOURCE
from .workers import worker_process, write_module

POOLS = ["prefork", "threads", "solo", "async"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A directory with ``wtasks.py``, an app for sending, and the env a worker needs."""
    write_module(tmp_path, "wtasks", SOURCE)
    url = f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url, "MARKS_DIR": str(tmp_path)}
    monkeypatch.setenv("CELERIAC_BROKER_URL", url)
    monkeypatch.setenv("CELERIAC_RESULT_BACKEND", url)
    app = Celery("client", broker=url)

    class Project:
        dir = tmp_path

        def send(self, name, args=(), **options):
            return app.send_task(f"wtasks.{name}", args, **options)

        def worker(self, *args, **kwargs):
            return worker_process("wtasks", cwd=tmp_path, env={**env, **kwargs.pop("env", {})}, args=list(args), **kwargs)

        def runs(self, name):
            path = tmp_path / f"{name}.runs"
            return len(path.read_text().split()) if path.exists() else 0

    Project.app = app
    return Project()


@pytest.mark.parametrize("pool", POOLS)
def test_every_pool_runs_sync_and_async_tasks(project, pool):
    with project.worker("-P", pool, "-c", "2"):
        assert project.send("add", (2, 3)).get(timeout=15) == 5
        assert project.send("aadd", (4, 5)).get(timeout=15) == 9


def test_banner_lists_tasks_and_a_print_reaches_the_log(project):
    with project.worker("-P", "prefork", "-c", "1") as w:
        project.send("add", (1, 1)).get(timeout=15)
        w.wait_for_line("adding 1 and 1")
        line = w.wait_for_line("succeeded in")
    assert "task events: ON" in w.output and ". wtasks.add" in w.output and "concurrency: 1 (prefork)" in w.output
    assert "Task wtasks.add[" in line and line.endswith(": 2")


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("task", ["soft_sync", "soft_async"])
def test_soft_time_limit_raises_inside_the_task(project, pool, task):
    with project.worker("-P", pool, "-c", "1"):
        assert project.send(task).get(timeout=15) == "soft limit caught"


def test_global_time_limits_apply_to_every_task(project):
    with project.worker("-P", "prefork", "-c", "1", env={"GLOBAL_SOFT_LIMIT": "0.3"}):
        assert project.send("unlimited_sleep").get(timeout=15) == "soft limit caught"
    with project.worker("-P", "prefork", "-c", "1", env={"GLOBAL_HARD_LIMIT": "0.3"}):
        with pytest.raises(TimeLimitExceeded):
            project.send("unlimited_sleep").get(timeout=15)


@pytest.mark.parametrize("pool, task", [("prefork", "hard_sync"), ("prefork", "hard_async"), ("async", "hard_async"),
                                        ("threads", "hard_sync"), ("solo", "hard_sync")])
def test_hard_time_limit_fails_the_task_and_the_worker_carries_on(project, pool, task):
    with project.worker("-P", pool, "-c", "1"):
        result = project.send(task)
        with pytest.raises(TimeLimitExceeded):
            result.get(timeout=20)
        assert result.state == "FAILURE"
        assert project.send("add", (1, 2)).get(timeout=15) == 3


def test_killed_child_task_is_redelivered_at_once_and_finishes_once(project):
    with project.worker("-P", "prefork", "-c", "1") as w:
        result = project.send("slow", ("victim", 1.5))
        w.wait_for_line("started victim")
        (child,) = [p for p in _children(w.pid)]
        os.kill(child, signal.SIGKILL)
        assert result.get(timeout=20) == "victim"
        w.wait_for_line("exited with signal 9")
    assert project.runs("victim") == 2  # once killed, once completed
    assert result.state == "SUCCESS"


def test_killed_worker_tasks_finish_exactly_once_after_restart(project):
    env = {"VISIBILITY": "2"}
    project.app.conf.broker_transport_options = {"visibility_timeout": 2}
    results = [project.send("slow", (f"job{i}", 0.3)) for i in range(6)]
    with project.worker("-P", "prefork", "-c", "2", env=env) as w:
        w.wait_for_line("received")
        w.kill()
    with project.worker("-P", "prefork", "-c", "2", env=env):
        values = [r.get(timeout=60) for r in results]
    assert values == [f"job{i}" for i in range(6)]
    assert all(project.app.AsyncResult(r.id).state == "SUCCESS" for r in results)


def test_warm_shutdown_finishes_running_tasks_and_keeps_the_rest_queued(project):
    results = [project.send("slow", (f"w{i}", 1.0)) for i in range(4)]
    with project.worker("-P", "prefork", "-c", "2") as w:
        w.wait_for_line("received", count=2)
        assert w.stop() == 0
        w.wait_for_line("Warm shutdown")
    done = [r for r in results if r.ready()]
    assert len(done) == 2 and all(r.successful() for r in done)
    with project.worker("-P", "prefork", "-c", "2"):
        assert sorted(r.get(timeout=20) for r in results) == ["w0", "w1", "w2", "w3"]


def test_cold_shutdown_puts_running_tasks_back(project):
    result = project.send("slow", ("cold", 5))
    with project.worker("-P", "prefork", "-c", "1") as w:
        w.wait_for_line("received")
        w.signal(signal.SIGQUIT)
        w.proc.wait(15)
        w.wait_for_line("Cold shutdown")
    assert not result.ready()
    with project.worker("-P", "prefork", "-c", "1"):
        assert result.get(timeout=20) == "cold"


def test_max_tasks_per_child_recycles_children(project):
    with project.worker("-P", "prefork", "-c", "1", "--max-tasks-per-child", "2"):
        pids = [project.send("pid").get(timeout=15) for _ in range(5)]
    assert len(set(pids)) == 3


def test_poison_messages_never_stop_the_worker(project):
    broker = project.app.broker
    broker.publish("celery", b"\x00not a message", message_id="garbage")
    unknown = project.send("no_such_task")
    wrong_args = project.send("add", (1, 2, 3))
    with project.worker("-P", "prefork", "-c", "1") as w:
        assert project.send("add", (2, 2)).get(timeout=15) == 4
        w.wait_for_line("dead-lettered", count=2)
    assert unknown.state == "FAILURE" and "no_such_task" in str(unknown.result)
    assert wrong_args.state == "FAILURE" and isinstance(wrong_args.result, TypeError)
    reasons = {d.message_id: d.reason for d in broker.dead_letters("celery")}
    assert "undecodable message" in reasons["garbage"]
    assert "unknown task" in reasons[unknown.id]


def test_a_task_that_keeps_killing_its_process_is_dead_lettered(project):
    project.app.conf.task_max_deliveries = 3
    result = project.send("suicide")
    with project.worker("-P", "prefork", "-c", "1", env={"MAX_DELIVERIES": "3"}):
        with pytest.raises(WorkerLostError, match="delivered"):
            result.get(timeout=30)
    assert project.runs("suicide") == 3
    assert [d.message_id for d in project.app.broker.dead_letters("celery")] == [result.id]


def test_at_most_once_task_is_not_redelivered_after_a_crash(project):
    result = project.send("suicide_at_most_once")
    with project.worker("-P", "prefork", "-c", "1") as w:
        w.wait_for_line("exited with signal 9")
        assert project.send("add", (1, 1)).get(timeout=15) == 2
    assert project.runs("suicide_amo") == 1
    assert not result.ready()


def test_retries_wait_in_the_broker_not_in_the_worker(project):
    result = project.send("retry_twice")
    with project.worker("-P", "prefork", "-c", "1") as w:
        w.wait_for_line("retry: Retry in 1")
        stats = _wait_for_stats(project.app.broker, lambda s: s.in_flight == 0)
        assert (stats.delayed, stats.ready) == (1, 0)
        assert result.get(timeout=20) == 2


def test_sigterm_to_the_whole_process_group_loses_nothing_and_says_what_happened(project):
    """What systemd's default KillMode does: the children die at once, their task comes back."""
    result = project.send("slow", ("grouped", 3))
    with project.worker("-P", "prefork", "-c", "1") as w:
        w.wait_for_line("started grouped")
        os.killpg(w.pid, signal.SIGTERM)
        w.wait_for_line("KillMode=mixed")
        assert w.proc.wait(30) == 0
    assert not result.ready()
    with project.worker("-P", "prefork", "-c", "1"):
        assert result.get(timeout=20) == "grouped"
    assert project.runs("grouped") == 2  # interrupted once, then completed


def test_a_busy_child_does_not_starve_an_idle_one(project):
    long_one = project.send("slow", ("long", 4))
    with project.worker("-P", "prefork", "-c", "2", "--prefetch-multiplier", "4") as w:
        w.wait_for_line("Task wtasks.slow")
        quick = [project.send("add", (i, i)) for i in range(6)]
        assert [r.get(timeout=10) for r in quick] == [i + i for i in range(6)], w.output
        assert not long_one.ready(), w.output  # the quick ones did not wait for the busy child
        assert long_one.get(timeout=15) == "long"


def test_autoscale_grows_with_queue_depth(project):
    results = [project.send("slow", (f"a{i}", 1.5)) for i in range(6)]
    with project.worker("-P", "prefork", "--autoscale", "3,1") as w:
        [r.get(timeout=30) for r in results]
        assert "concurrency: {min=1, max=3}" in w.output
    pids = set((project.dir / "a0.runs").read_text().split())
    for i in range(1, 6):
        pids |= set((project.dir / f"a{i}.runs").read_text().split())
    assert len(pids) >= 2


def test_shutdown_is_quick_when_idle(project):
    with project.worker("-P", "prefork", "-c", "2") as w:
        start = time.monotonic()
        assert w.stop() == 0
    assert time.monotonic() - start < 5


def _wait_for_stats(broker, condition, timeout=5.0):
    """Queue stats once ``condition`` holds (the settle of the previous run is batched)."""
    deadline = time.monotonic() + timeout
    while True:
        (stats,) = broker.stats(["celery"])
        if condition(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.02)


def _children(pid):
    import psutil

    return [c.pid for c in psutil.Process(pid).children()]
