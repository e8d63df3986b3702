"""Control commands that change a running worker, against real worker processes (SQLite; Redis where marked)."""

from __future__ import annotations

import json

import pytest

from celeriac.exceptions import TimeLimitExceeded
from tests.test_control_support import EventLog, project, run_cli, stats_until
from tests.workers import worker_process


def _node(worker):
    return worker.wait_for_line("ready.").split()[-2]


def test_pool_grow_and_shrink_change_the_pool_size(tmp_path):
    env, client = project(tmp_path)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "prefork", "-c", "1"]) as worker:
        name = _node(worker)
        done = run_cli(tmp_path, env, "control", "pool_grow", "2", "-d", name, "-t", "5", "--json")
        assert "ok" in json.loads(done.stdout)[name]
        stats_until(client, name, lambda s: s["pool"]["max-concurrency"] == 3)
        replies = client.control.pool_shrink(1, destination=[name], reply=True, timeout=5)
        assert "ok" in replies[0][name]
        stats_until(client, name, lambda s: s["pool"]["max-concurrency"] == 2)


def test_time_limit_command_reaches_prefork_children(tmp_path):
    env, client = project(tmp_path)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "prefork", "-c", "1"]) as worker:
        name = _node(worker)
        replies = client.control.time_limit("tasks.block", soft=None, hard=1, destination=[name], reply=True, timeout=5)
        assert replies == [{name: {"ok": "time limits set successfully"}}]
        result = client.send_task("tasks.block", (30,))
        with pytest.raises(TimeLimitExceeded):
            result.get(timeout=30)
        done = run_cli(tmp_path, env, "control", "time_limit", "tasks.add", "3", "5", "-d", name, "-t", "5", "--json")
        assert json.loads(done.stdout)[name] == {"ok": "time limits set successfully"}


def _started_span(log, ids):
    times = sorted(log.wait_for("task-started", uuid=i)["timestamp"] for i in ids)
    return times[-1] - times[0]


def test_rate_limit_command_limits_the_whole_prefork_node(tmp_path):
    env, client = project(tmp_path)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "prefork", "-c", "2"]) as worker:
        name = _node(worker)
        done = run_cli(tmp_path, env, "control", "rate_limit", "tasks.free", "4/s", "-d", name, "-t", "5", "--json")
        assert json.loads(done.stdout)[name] == {"ok": "new rate limit set successfully: 4/s"}
        log = EventLog(client)
        results = [client.send_task("tasks.free", (i,)) for i in range(8)]
        assert sorted(r.get(timeout=60) for r in results) == list(range(8))
        # 4/s for the node, one token in hand per child: 8 tasks need at least (8 - 2) / 4 s
        assert _started_span(log, [r.id for r in results]) >= 1.4


@pytest.mark.parametrize("pool", ["threads", "async"])
def test_rate_limit_on_the_task_spaces_its_runs_and_bad_rates_are_refused(tmp_path, pool):
    env, client = project(tmp_path)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", pool, "-c", "4"]) as worker:
        name = _node(worker)
        log = EventLog(client)
        results = [client.send_task("tasks.limited", (i,)) for i in range(6)]
        assert sorted(r.get(timeout=60) for r in results) == list(range(6))
        assert _started_span(log, [r.id for r in results]) >= (6 - 1) / 4 - 0.1
        replies = client.control.rate_limit("tasks.limited", "3/fortnight", destination=[name], reply=True, timeout=5)
        assert "error" in replies[0][name]


def test_shutdown_command_stops_the_worker_warmly(tmp_path):
    env, client = project(tmp_path)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "threads", "-c", "2"]) as worker:
        done = run_cli(tmp_path, env, "control", "shutdown", "-d", _node(worker), "-t", "5")
        assert done.returncode == 0
        assert worker.proc.wait(30) == 0


def test_shutdown_through_the_api(tmp_path):
    env, client = project(tmp_path)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "prefork", "-c", "1"]) as worker:
        replies = client.control.shutdown(destination=[_node(worker)], reply=True, timeout=5)
        assert list(replies[0].values()) == [{"ok": "shutting down"}]
        assert worker.proc.wait(30) == 0


@pytest.mark.parametrize("pool", ["prefork", "threads", "async"])
def test_add_and_cancel_consumer_change_what_the_worker_consumes(tmp_path, pool):
    env, client = project(tmp_path)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", pool, "-c", "1"]) as worker:
        name = _node(worker)
        extra = client.send_task("tasks.add", (1, 2), queue="extra")
        done = run_cli(tmp_path, env, "control", "add_consumer", "extra", "-d", name, "-t", "5", "--json")
        assert json.loads(done.stdout)[name] == {"ok": "add consumer extra"}
        assert extra.get(timeout=30) == 3
        queues = client.control.inspect(destination=[name], timeout=5).active_queues()[name]
        assert sorted(q["name"] for q in queues) == ["celery", "extra"]

        replies = client.control.cancel_consumer("celery", destination=[name], reply=True, timeout=5)
        assert replies == [{name: {"ok": "no longer consuming from celery"}}]
        waiting = client.send_task("tasks.add", (2, 2))  # to "celery", first: it would run first if still consumed
        assert client.send_task("tasks.add", (3, 3), queue="extra").get(timeout=30) == 6
        assert waiting.state == "PENDING"

        client.control.add_consumer("celery", destination=[name], reply=True, timeout=5)
        assert waiting.get(timeout=30) == 4
