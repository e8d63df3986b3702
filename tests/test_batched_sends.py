"""A group (or a chord's header) is recorded and published in a few broker calls, all or nothing."""

from __future__ import annotations

import pytest

from celeriac import Celery, group
from celeriac.app import publisher
from celeriac.exceptions import EncodeError
from tests.test_control_support import urls


def _app(broker: str, backend: str = "memory://") -> Celery:
    app = Celery("batched", broker=broker, backend=backend)

    @app.task(name="batched.add")
    def add(a, b):
        return a + b

    return app


def _count_publish_calls(app: Celery, monkeypatch) -> list[int]:
    calls: list[int] = []
    original = app.broker.publish_recorded

    def counting(messages, *args, **kwargs):
        calls.append(len(messages))
        return original(messages, *args, **kwargs)

    monkeypatch.setattr(app.broker, "publish_recorded", counting)
    return calls


def test_a_big_group_is_queued_whole_in_a_few_broker_calls(monkeypatch):
    app = _app("memory://batched-big")
    calls = _count_publish_calls(app, monkeypatch)
    result = group(app.tasks["batched.add"].s(i, i) for i in range(1200)).apply_async()
    assert calls == [publisher.BATCH_SIZE, publisher.BATCH_SIZE, 200]
    assert sum(s.ready for s in app.broker.stats(["celery"])) == 1200
    assert all(r.is_known() for r in result.results)


def test_a_group_that_cannot_be_built_sends_nothing():
    app = _app("memory://batched-unbuildable")
    members = [app.tasks["batched.add"].s(1, 2), app.tasks["batched.add"].s(object(), 2)]
    with pytest.raises(EncodeError):
        group(members).apply_async()
    assert sum(s.ready for s in app.broker.stats(["celery"])) == 0


def test_single_sends_outside_a_group_are_not_held_back(monkeypatch):
    app = _app("memory://batched-single")
    calls = _count_publish_calls(app, monkeypatch)
    app.tasks["batched.add"].delay(1, 2)
    assert calls == [1]
    assert sum(s.ready for s in app.broker.stats(["celery"])) == 1


def test_a_group_on_redis_with_results_there_too_is_queued_and_recorded(tmp_path):
    broker = urls("redis", tmp_path)["T_BROKER"]
    app = _app(broker, broker)
    try:
        result = group(app.tasks["batched.add"].s(i, 1) for i in range(1100)).apply_async()
        assert sum(s.ready for s in app.broker.stats(["celery"])) == 1100
        assert all(r.is_known() and r.state == "PENDING" for r in result.results)
    finally:
        app.broker.purge("celery")
        app.close()


def _redis_group_app(tmp_path) -> tuple[Celery, list[str]]:
    """A Redis broker and backend (same db: sends go through one script per batch), and the task-sent ids seen."""
    broker = urls("redis", tmp_path)["T_BROKER"]
    app = _app(broker, broker)
    sent: list[str] = []
    app.events.on("task-sent", lambda event: sent.append(event["uuid"]))
    return app, sent


def _queued_ids(app: Celery) -> list[str]:
    """Message ids in the queue's streams, duplicates kept."""
    client = app.broker.client
    ids = []
    for prio in range(10):
        for _, fields in client.xrange(f"{app.broker.base('celery')}:{prio}"):
            ids.append(fields[b"m"].decode())
    return ids


def test_a_group_on_redis_sent_after_a_script_flush_is_queued_once_per_task(tmp_path):
    app, sent = _redis_group_app(tmp_path)
    try:
        app.tasks["batched.add"].delay(0, 0).forget()  # scripts loaded, then forgotten by the server
        app.broker.purge("celery")
        app.broker.client.script_flush()
        sent.clear()
        result = group(app.tasks["batched.add"].s(i, 1) for i in range(1300)).apply_async()
        ids = [r.id for r in result.results]
        assert sorted(_queued_ids(app)) == sorted(ids)
        assert all(r.state == "PENDING" and r.is_known() for r in result.results)
        assert sorted(sent) == sorted(ids)
    finally:
        app.broker.purge("celery")
        app.close()


def test_a_group_on_redis_whose_connections_are_killed_mid_send_loses_no_task(tmp_path, monkeypatch):
    app, sent = _redis_group_app(tmp_path)
    try:
        app.tasks["batched.add"].delay(0, 0)
        app.broker.purge("celery")
        sent.clear()
        original = app.backend.store_arguments
        calls = []

        def killing(metas, expires):
            calls.append(len(metas))
            if len(calls) == 2:  # the first batch is in flight: every other connection to Redis goes
                app.broker.client.client_kill_filter(_type="normal", skipme=True)
            return original(metas, expires)

        monkeypatch.setattr(app.backend, "store_arguments", killing)
        result = group(app.tasks["batched.add"].s(i, 1) for i in range(1300)).apply_async()
        ids = [r.id for r in result.results]
        queued = _queued_ids(app)
        assert set(queued) == set(ids)  # a batch whose reply was lost may be queued twice, never not at all
        assert len(calls) >= 3
        assert all(r.is_known() for r in result.results)
        assert sorted(sent) == sorted(ids)  # each task announced once
    finally:
        app.broker.purge("celery")
        app.close()
