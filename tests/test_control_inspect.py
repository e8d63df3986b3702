"""Every inspect command against a real worker, through the Python API and the CLI (SQLite, Redis, RabbitMQ)."""

from __future__ import annotations

import json

import pytest

from tests.test_control_support import EventLog, project, run_cli
from tests.workers import worker_process

QUEUE_KEYS = {"name", "exchange", "routing_key", "queue_arguments", "binding_arguments", "consumer_arguments", "durable",
              "exclusive", "auto_delete", "no_ack", "alias", "bindings", "no_declare", "expires", "message_ttl",
              "max_length", "max_length_bytes", "max_priority"}


@pytest.fixture(scope="module", params=["sqlite", "redis", "rabbitmq"])
def node(request, tmp_path_factory):
    """A prefork worker with one task blocked in it; yields what the tests need to ask about it."""
    tmp_path = tmp_path_factory.mktemp(f"inspect-{request.param}")
    env, client = project(tmp_path, request.param)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "prefork", "-c", "2", "-n", "alpha@%h"]) as worker:
        name = worker.wait_for_line("ready.").split()[-2]
        log = EventLog(client)
        blocked = client.send_task("tasks.block", (600,))
        log.wait_for("task-started", uuid=blocked.id)
        yield {"client": client, "name": name, "blocked": blocked.id, "env": env, "cwd": tmp_path, "log": log}
        client.control.revoke(blocked.id, terminate=True, signal="SIGKILL")
        blocked.get(timeout=30, propagate=False)


def api(node, method, *args):
    inspect = node["client"].control.inspect(destination=[node["name"]], timeout=5)
    replies = getattr(inspect, method)(*args)
    assert replies is not None and set(replies) == {node["name"]}, replies
    return replies[node["name"]]


def cli(node, method, *args):
    done = run_cli(node["cwd"], node["env"], "inspect", method, *args, "-d", node["name"], "-t", "5", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[node["name"]]


def both(node, method, *args):
    return api(node, method, *args), cli(node, method, *args)


def test_ping_answers_pong(node):
    assert both(node, "ping") == ({"ok": "pong"}, {"ok": "pong"})


def test_status_lists_the_node(node):
    done = run_cli(node["cwd"], node["env"], "status", "-t", "3")
    assert f"{node['name']}: OK" in done.stdout


def test_active_lists_the_running_task_with_celery_fields(node):
    for active in both(node, "active"):
        (entry,) = [a for a in active if a["id"] == node["blocked"]]
        assert entry["name"] == "tasks.block" and entry["args"] == "(600,)" and entry["hostname"] == node["name"]
        assert {"id", "name", "args", "kwargs", "type", "hostname", "time_start", "acknowledged", "delivery_info",
                "worker_pid"} <= set(entry)


def test_query_task_finds_the_running_task(node):
    for reply in both(node, "query_task", node["blocked"]):
        state, request = reply[node["blocked"]]
        assert state == "active" and request["name"] == "tasks.block"


def test_query_task_of_an_unknown_id_is_empty(node):
    assert both(node, "query_task", "no-such-id") == ({}, {})


def test_reserved_and_scheduled_are_lists(node):
    for method in ("reserved", "scheduled"):
        assert all(isinstance(reply, list) for reply in both(node, method))


def test_registered_lists_the_task_names(node):
    for names in both(node, "registered"):
        assert {"tasks.add", "tasks.block", "tasks.ablock", "tasks.limited"} <= set(names)


def test_stats_has_what_monitors_read(node):
    for stats in both(node, "stats"):
        assert {"total", "pid", "clock", "uptime", "pool", "broker", "prefetch_count", "rusage"} <= set(stats)
        assert stats["pool"]["max-concurrency"] == 2


def test_revoked_lists_revoked_ids(node):
    node["client"].control.revoke("revoked-for-inspect", reply=True, destination=[node["name"]], timeout=5)
    for revoked in both(node, "revoked"):
        assert "revoked-for-inspect" in revoked


def test_active_queues_have_the_full_queue_shape(node):
    for queues in both(node, "active_queues"):
        assert [q["name"] for q in queues] == ["celery"]
        assert QUEUE_KEYS <= set(queues[0])


def test_conf_masks_passwords(node):
    for conf in both(node, "conf"):
        assert conf["broker_transport_options"]["password"] == "********"
        assert "hunter2" not in json.dumps(conf)
        assert conf["broker_transport_options"]["visibility_timeout"] == 60


def test_report_describes_the_node(node):
    for report in both(node, "report"):
        assert node["name"] in report["ok"] and "celeriac" in report["ok"]


def test_heartbeat_command_makes_the_worker_send_one_now(node):
    before = len(node["log"].events)
    done = run_cli(node["cwd"], node["env"], "control", "heartbeat", "-d", node["name"], "-t", "5", "--json")
    assert json.loads(done.stdout)[node["name"]] == {"ok": "heartbeat sent"}
    node["log"].wait_until(lambda e: e["type"] == "worker-heartbeat" and e["hostname"] == node["name"], timeout=10)
    node["client"].control.heartbeat(destination=[node["name"]])
    assert node["log"].wait_until(lambda e: e is not node["log"].events[before] and e["type"] == "worker-heartbeat")


def test_enable_and_disable_events_are_accepted(node):
    client = node["client"]
    for method in ("enable_events", "disable_events"):
        replies = client.control.broadcast(method, destination=[node["name"]], reply=True, timeout=5)
        assert list(replies[0][node["name"]]) == ["ok"]
        done = run_cli(node["cwd"], node["env"], "control", method, "-d", node["name"], "-t", "5", "--json")
        assert "ok" in json.loads(done.stdout)[node["name"]]


def test_unknown_command_answers_an_error(node):
    replies = node["client"].control.broadcast("no_such_command", destination=[node["name"]], reply=True, timeout=5)
    assert "error" in replies[0][node["name"]]
