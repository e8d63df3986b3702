"""The history store: event ordering, restart without loss, queued tasks, keyset pages, retention."""

from __future__ import annotations

import time

from celeriac.dashboard import model, queries
from celeriac.dashboard.queries import TaskFilter
from celeriac.dashboard.store import Store

from .conftest import emit, ingest, make_dashboard, run_task


def _event(type_, ts, **fields):
    return {"type": type_, "uuid": "t", "timestamp": ts, "hostname": "w@h", **fields}


def test_late_started_event_does_not_hide_success():
    row = model.new_row("t", 1.0)
    model.apply(row, _event("task-succeeded", 3.0, result="5", runtime=0.1))
    model.apply(row, _event("task-started", 2.0))
    model.apply(row, _event("task-sent", 0.5, name="proj.add", args="(2, 3)"))
    assert row["state"] == "SUCCESS"
    assert row["name"] == "proj.add" and row["args"] == "(2, 3)" and row["result"] == "5"
    assert row["created"] == 0.5


def test_retried_task_runs_again():
    row = model.new_row("t", 1.0)
    model.apply(row, _event("task-started", 1.0))
    model.apply(row, _event("task-retried", 2.0, exception="IOError()"))
    assert row["state"] == "RETRY"
    model.apply(row, _event("task-started", 3.0))
    assert row["state"] == "STARTED"


def test_progress_event_sets_state_and_meta():
    row = model.new_row("t", 1.0)
    model.apply(row, _event("task-started", 1.0))
    model.apply(row, _event("task-progress", 2.0, state="PROGRESS", meta={"current": 40, "total": 100}))
    assert row["state"] == "PROGRESS"
    assert '"current":40' in row["progress"]


def test_task_queued_before_any_worker_is_listed(capp, client, dash_app):
    result = capp.send_task("proj.add", (2, 3), queue="celery")
    ingest(dash_app)
    rows = queries.list_tasks(dash_app.state.dash.store, TaskFilter()).rows
    assert [(r["uuid"], r["state"], r["queue"]) for r in rows] == [(result.id, "PENDING", "celery")]


def test_restart_resumes_from_cursor_without_loss_or_duplicates(capp, tmp_path):
    first = make_dashboard(capp, tmp_path)
    run_task(capp, "a")
    assert ingest(first) == 3
    first.state.dash.store.db.close()
    run_task(capp, "b")  # sent while the dashboard is down
    second = make_dashboard(capp, tmp_path)
    assert ingest(second) == 3  # only the new events
    store = second.state.dash.store
    assert {r["uuid"]: r["state"] for r in queries.list_tasks(store, TaskFilter()).rows} == {"a": "SUCCESS", "b": "SUCCESS"}
    assert len(queries.timeline(store, "a")) == 3


def _fill(store: Store, n: int) -> None:
    rows = []
    for i in range(n):
        row = model.new_row(f"task-{i:04d}", 1000.0 + i)
        row.update(name="proj.even" if i % 2 == 0 else "proj.odd", state="SUCCESS", args=f"({i},)", updated=1000.0 + i)
        rows.append(row)
    store.save_tasks(rows)


def test_keyset_pages_walk_every_row_once(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    _fill(store, 125)
    seen, after = [], ""
    while True:
        page = queries.list_tasks(store, TaskFilter(name="proj.odd"), limit=20, after=after)
        seen += [r["uuid"] for r in page.rows]
        if not page.next:
            break
        after = page.next
    assert len(seen) == len(set(seen)) == 62
    assert seen[0] == "task-0123" and seen[-1] == "task-0001"
    back = queries.list_tasks(store, TaskFilter(name="proj.odd"), limit=20, before=page.prev)
    assert back.rows[-1]["created"] > page.rows[0]["created"]


def test_search_finds_substrings_of_args(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    run = [{"type": "task-received", "uuid": f"u{i}", "timestamp": 10.0 + i, "hostname": "w", "name": "n",
            "args": f"('customer-{i}@example.com',)", "kwargs": "{}"} for i in range(30)]
    store.ingest(run)
    found = queries.list_tasks(store, TaskFilter(search="customer-17@")).rows
    assert [r["uuid"] for r in found] == ["u17"]
    assert queries.list_tasks(store, TaskFilter(search="17")).rows  # short terms use LIKE


def test_prune_keeps_the_newest_tasks(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    _fill(store, 50)
    store.prune(max_tasks=10, max_age=time.time(), now=time.time())
    rows = queries.list_tasks(store, TaskFilter(), limit=100).rows
    assert len(rows) == 10 and rows[-1]["uuid"] == "task-0040"


def test_backend_completes_a_task_whose_events_were_lost(capp, client, dash_app):
    result = capp.send_task("proj.add", (1, 1))
    ingest(dash_app)
    capp.backend.store({"task_id": result.id, "status": "SUCCESS", "result": 2, "traceback": None, "children": [],
                        "date_done": None, "name": "proj.add"}, expires=None)
    dash_app.state.dash.ingester.reconcile(time.time())
    row = queries.get_task(dash_app.state.dash.store, result.id)
    assert row["state"] == "SUCCESS" and row["result"] == "2"


def test_worker_offline_after_two_silent_heartbeats(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    now = time.time()
    store.ingest([{"type": "worker-heartbeat", "hostname": "quiet@h", "freq": 2.0, "timestamp": now - 5},
                  {"type": "worker-heartbeat", "hostname": "busy@h", "freq": 2.0, "timestamp": now - 1},
                  {"type": "worker-offline", "hostname": "gone@h", "freq": 2.0, "timestamp": now}])
    status = {w["hostname"]: w["online"] for w in queries.workers(store, now)}
    assert status == {"quiet@h": False, "busy@h": True, "gone@h": False}


def test_emitted_progress_reaches_the_row(capp, client, dash_app):
    emit(capp, "task-started", uuid="p1", hostname="w@h")
    emit(capp, "task-progress", uuid="p1", state="PROGRESS", meta={"current": 40, "total": 100}, hostname="w@h")
    ingest(dash_app)
    assert queries.get_task(dash_app.state.dash.store, "p1")["state"] == "PROGRESS"
