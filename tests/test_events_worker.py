"""Events from real workers: names and fields, heartbeats, listeners in the worker, and catching up."""

from __future__ import annotations

import sys

import pytest

from tests.test_control_support import EventLog, project
from tests.workers import worker_process

COMMON = {"hostname", "utcoffset", "pid", "clock", "timestamp", "type"}


@pytest.mark.parametrize("broker", ["sqlite", "redis", "rabbitmq"])
def test_a_consumer_that_was_stopped_receives_every_missed_event_in_order(tmp_path, broker):
    """The receiver is closed for the whole life of 20 tasks; a new one resumes from the saved cursor.

    How long the consumer was away does not matter to the stream (positions, not times, and a
    retention of a day by default): what matters is that everything happened while it was gone.
    """
    env, client = project(tmp_path, broker)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "prefork", "-c", "2", "-n", "catchup@%h"]):
        before = EventLog(client)
        before.wait_for("worker-heartbeat")
        cursor = before.receiver.cursor
        del before  # the consumer is gone
        results = [client.send_task("tasks.add", (i, i)) for i in range(20)]
        assert [r.get(timeout=60) for r in results] == [2 * i for i in range(20)]
        after = EventLog(client)
        after.receiver.cursor = cursor
        for r in results:
            after.wait_for("task-succeeded", uuid=r.id)
    for r in results:  # each process's events keep their order; the producer's task-sent may land anywhere
        assert [t for t in after.of(r.id) if t != "task-sent"] == ["task-received", "task-started", "task-succeeded"]
        assert after.of(r.id).count("task-sent") == 1
    positions = [_position(e["_cursor"]) for e in after.events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    by_process: dict[tuple[str, int], list[int]] = {}
    for event in after.events:
        by_process.setdefault((event["hostname"], event["pid"]), []).append(event["clock"])
    assert all(clocks == sorted(clocks) for clocks in by_process.values())


def _position(cursor: str) -> tuple[int, ...]:
    """Stream positions as numbers: ``"42"`` (SQLite), ``"<offset>-<index>"`` (RabbitMQ), or a Redis
    entry id ``"1700000000000-3"``, with ``":<index>"`` for an item before the last of its entry."""
    entry, _, index = cursor.partition(":")
    return (*(int(part) for part in entry.split("-")), int(index) if index else sys.maxsize)


def test_worker_events_carry_celery_fields_and_heartbeat_every_two_seconds(tmp_path):
    env, client = project(tmp_path)
    log = EventLog(client)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "threads", "-c", "2", "-n", "beat@%h"]) as worker:
        name = worker.wait_for_line("ready.").split()[-2]
        online = log.wait_for("worker-online", hostname=name)
        first = log.wait_for("worker-heartbeat", hostname=name)
        second = log.wait_until(lambda e: e["type"] == "worker-heartbeat" and e is not first and e["hostname"] == name)
    offline = log.wait_for("worker-offline", hostname=name)
    for event in (online, first, offline):
        assert COMMON | {"freq", "active", "processed", "loadavg", "sw_ident", "sw_ver", "sw_sys"} <= set(event)
        assert event["freq"] == 2.0
    assert second["timestamp"] - first["timestamp"] >= 1.5


def test_task_events_carry_celery_fields_and_a_broken_listener_does_not_break_the_worker(tmp_path):
    env, client = project(tmp_path)
    log = EventLog(client)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "prefork", "-c", "1"]) as worker:
        worker.wait_for_line("ready.")
        ok = client.send_task("tasks.add", (2, 3))
        failed = client.send_task("tasks.boom")
        assert ok.get(timeout=30) == 5
        failed.get(timeout=30, propagate=False)
        sent = log.wait_for("task-sent", uuid=ok.id)
        received = log.wait_for("task-received", uuid=ok.id)
        succeeded = log.wait_for("task-succeeded", uuid=ok.id)
        failure = log.wait_for("task-failed", uuid=failed.id)
        worker.wait_for_line("this listener is broken")
        assert client.send_task("tasks.add", (1, 1)).get(timeout=30) == 2
    assert {"uuid", "root_id", "parent_id", "name", "args", "kwargs", "retries", "eta", "expires", "queue", "exchange",
            "routing_key"} <= set(sent)
    assert (received["name"], received["args"], received["kwargs"]) == ("tasks.add", "(2, 3)", "{}")
    assert succeeded["result"] == "5" and isinstance(succeeded["runtime"], float)
    assert failure["exception"] == "ValueError('boom')" and "Traceback" in failure["traceback"]
    assert failed.state == "FAILURE"
