"""Revokes: stored centrally, honoured by workers started later, and terminating running tasks."""

from __future__ import annotations

import json

import pytest

from celeriac.exceptions import TaskRevokedError
from tests.test_control_support import EventLog, project, run_cli
from tests.workers import worker_process

TERMINATE_CASES = [
    ("sqlite", "prefork", "tasks.block", "cli"),
    ("sqlite", "prefork", "tasks.ablock", "api"),
    ("sqlite", "async", "tasks.ablock", "api"),
    ("sqlite", "threads", "tasks.block", "cli"),
    ("redis", "prefork", "tasks.block", "api"),
    ("redis", "async", "tasks.ablock", "cli"),
]


@pytest.mark.parametrize(("broker", "pool", "task", "via"), TERMINATE_CASES)
def test_terminate_stops_a_running_task_and_records_it_revoked(tmp_path, broker, pool, task, via):
    env, client = project(tmp_path, broker)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", pool, "-c", "2", "-n", f"{pool}@%h"]) as worker:
        name = worker.wait_for_line("ready.").split()[-2]
        log = EventLog(client)
        running = client.send_task(task, (600,))
        log.wait_for("task-started", uuid=running.id)
        if via == "cli":
            done = run_cli(tmp_path, env, "control", "revoke", running.id, "--terminate", "--signal", "SIGKILL", "-d", name,
                           "-t", "5", "--json")
            assert "flagged as revoked" in json.loads(done.stdout)[name]["ok"]
        else:
            client.control.revoke(running.id, terminate=True)
        revoked = log.wait_for("task-revoked", uuid=running.id)
        assert revoked["terminated"] is True and revoked["expired"] is False
        with pytest.raises(TaskRevokedError):
            running.get(timeout=30)
        assert running.state == "REVOKED"
        assert client.send_task("tasks.add", (2, 3)).get(timeout=30) == 5  # the worker goes on


@pytest.mark.parametrize("broker", ["sqlite", "redis"])
def test_revoke_sent_before_a_worker_starts_is_honoured_by_it(tmp_path, broker):
    env, client = project(tmp_path, broker)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "threads", "-c", "1", "-n", "first@%h"]) as first:
        first.wait_for_line("ready.")
        delayed = client.send_task("tasks.add", (1, 1), countdown=3)
        client.control.revoke(delayed.id)
        first.stop()
    queued = client.send_task("tasks.add", (2, 2))
    done = run_cli(tmp_path, env, "control", "revoke", queued.id, "-t", "1")
    assert done.returncode == 0
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "prefork", "-c", "1", "-n", "second@%h"]) as second:
        name = second.wait_for_line("ready.").split()[-2]
        later = client.send_task("tasks.add", (3, 3))
        assert later.get(timeout=30) == 6
        for revoked in (queued, delayed):
            with pytest.raises(TaskRevokedError):
                revoked.get(timeout=30)
        assert {queued.id, delayed.id} <= set(client.control.inspect(destination=[name], timeout=5).revoked()[name])


def test_revoked_queued_task_is_skipped_by_a_running_worker(tmp_path):
    env, client = project(tmp_path)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "prefork", "-c", "1"]) as worker:
        worker.wait_for_line("ready.")
        log = EventLog(client)
        blocker = client.send_task("tasks.block", (600,))
        log.wait_for("task-started", uuid=blocker.id)
        queued = client.send_task("tasks.add", (4, 4))
        client.control.revoke(queued.id, reply=True, timeout=5)
        client.control.revoke(blocker.id, terminate=True, reply=True, timeout=5)
        with pytest.raises(TaskRevokedError):
            queued.get(timeout=30)
        revoked = log.wait_for("task-revoked", uuid=queued.id)
        assert revoked["terminated"] is False
        assert "task-started" not in log.of(queued.id)
