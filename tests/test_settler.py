"""Settling in batches never drops a result, and a settled task's redelivery is only acked."""

from __future__ import annotations

import pytest

from celeriac import Celery
from celeriac.worker.handler import TaskHandler
from celeriac.worker.revoked import RevokedIds
from celeriac.worker.settler import Settler


@pytest.fixture
def app(memory_url):
    app = Celery("settle", broker=memory_url, backend=memory_url)

    @app.task
    def add(x, y):
        return x + y

    app.finalize()
    return app


def _meta(task_id):
    return {"task_id": task_id, "status": "SUCCESS", "result": 1, "traceback": None, "children": [], "date_done": None}


def test_a_failed_batch_is_kept_and_written_by_the_next_flush(app, monkeypatch):
    real_settle = app.broker.settle
    calls = []

    def flaky_settle(*args, **kwargs):
        calls.append(len(args[2]))
        if len(calls) == 1:
            raise OSError("disk full")
        return real_settle(*args, **kwargs)

    monkeypatch.setattr(app.broker, "settle", flaky_settle)
    settler = Settler(app, max_delay=60)
    settler.store(_meta("kept-1"))
    with pytest.raises(OSError):
        settler.flush()
    settler.flush()
    assert app.backend.get("kept-1")["status"] == "SUCCESS"
    assert calls == [1, 1]
    settler.close()


def test_a_redelivered_task_whose_result_is_stored_is_acked_not_dead_lettered(app):
    result = app.tasks["tests.test_settler.add"].delay(1, 2)
    broker = app.broker
    for _ in range(6):  # six deliveries, each to a consumer that "died"
        broker.fetch(["celery"], 1, consumer="dead", timeout=1)
        broker.reclaim("dead")
    app.backend.store(_meta(result.id), expires=60)
    (delivery,) = broker.fetch(["celery"], 1, consumer="alive", timeout=1)
    assert delivery.delivery_count == 7
    handler = TaskHandler(app, "test@host", RevokedIds(60))
    assert handler.prepare(delivery) is None
    assert broker.dead_letters() == []
    assert broker.fetch(["celery"], 1, consumer="alive", timeout=0.2) == []
    assert app.AsyncResult(result.id).state == "SUCCESS"
