"""The operator's commands without a worker: call, result, purge, status, inspect (nobody answers)."""

from __future__ import annotations

import json

from tests.test_control_support import project, run_cli


def test_call_prints_an_id_that_result_knows_as_pending(tmp_path):
    env, client = project(tmp_path)
    called = run_cli(tmp_path, env, "call", "tasks.add", "--args", "[2, 3]")
    task_id = called.stdout.strip()
    assert called.returncode == 0 and client.AsyncResult(task_id).is_known()
    shown = run_cli(tmp_path, env, "result", task_id)
    assert shown.stdout.startswith("PENDING")


def test_result_of_an_unknown_id_says_so(tmp_path):
    env, _ = project(tmp_path)
    shown = run_cli(tmp_path, env, "result", "no-such-task")
    assert shown.returncode == 1 and "unknown" in shown.stdout


def test_call_rejects_arguments_that_are_not_a_json_list(tmp_path):
    env, _ = project(tmp_path)
    called = run_cli(tmp_path, env, "call", "tasks.add", "--args", "{not json")
    assert called.returncode != 0 and "--args must be JSON" in called.stderr


def test_purge_deletes_waiting_messages(tmp_path):
    env, client = project(tmp_path)
    for i in range(3):
        client.send_task("tasks.add", (i, i))
    purged = run_cli(tmp_path, env, "purge", "-f")
    assert "Purged 3 messages" in purged.stdout
    assert client.broker.stats(["celery"])[0].ready == 0


def test_status_and_inspect_without_workers_fail_clearly(tmp_path):
    env, _ = project(tmp_path)
    status = run_cli(tmp_path, env, "status", "-t", "0.5")
    assert status.returncode == 1 and "0 nodes online" in status.stdout
    inspect = run_cli(tmp_path, env, "inspect", "ping", "-t", "0.5")
    assert inspect.returncode == 1 and "No nodes replied" in inspect.stderr
    as_json = run_cli(tmp_path, env, "inspect", "active", "-t", "0.5", "--json")
    assert json.loads(as_json.stdout) == {}


def test_control_revoke_needs_an_id(tmp_path):
    env, _ = project(tmp_path)
    done = run_cli(tmp_path, env, "control", "revoke")
    assert done.returncode != 0 and "needs at least one task id" in done.stderr
