"""Pages as a user sees them: what is listed, what is escaped, what is hidden."""

from __future__ import annotations

import re

import celeriac

from .conftest import emit, fail_task, heartbeat, ingest, make_dashboard, run_task


def test_tasks_page_lists_queued_and_finished_tasks(capp, client, dash_app):
    queued = capp.send_task("proj.add", (2, 3))
    run_task(capp, "done-1")
    ingest(dash_app)
    page = client.get("/tasks").text
    assert queued.id in page and "PENDING" in page
    assert "done-1" in page and "SUCCESS" in page


def test_scheduled_task_shows_when_it_will_run(capp, client, dash_app):
    import datetime as dt

    eta = dt.datetime(2031, 5, 17, 9, 30, 15, tzinfo=dt.UTC)
    result = capp.send_task("proj.add", (1, 2), eta=eta)
    ingest(dash_app)
    assert re.search(rf'data-uuid="{result.id}".*?scheduled 09:30:15', client.get("/tasks").text, re.S)
    assert "2031-05-17T09:30:15" in client.get(f"/task/{result.id}").text


def test_filters_narrow_the_list(capp, client, dash_app):
    run_task(capp, "ok-1")
    fail_task(capp, "bad-1")
    ingest(dash_app)
    failed = client.get("/tasks", params={"state": "FAILURE"}).text
    assert "bad-1" in failed and "ok-1" not in failed
    by_worker = client.get("/tasks", params={"worker": "nobody@h"}).text
    assert "No tasks match" in by_worker
    searched = client.get("/tasks", params={"search": "'x'"}).text
    assert "bad-1" in searched and "ok-1" not in searched


def test_task_page_shows_full_arguments_result_and_timeline(capp, client, dash_app):
    long_text = "word " * 400  # longer than an event's repr limit
    result = capp.send_task("proj.add", (long_text,), {"flag": True})
    emit(capp, "task-started", uuid=result.id, hostname="w1@host")
    emit(capp, "task-succeeded", uuid=result.id, result="'done'", runtime=0.2, hostname="w1@host")
    capp.backend.store({"task_id": result.id, "status": "SUCCESS", "result": {"total": 42}, "traceback": None,
                        "children": [], "date_done": None, "name": "proj.add", "args": [long_text], "kwargs": {"flag": True}}, expires=None)
    ingest(dash_app)
    page = client.get(f"/task/{result.id}").text
    assert long_text.strip() in page
    assert "&#34;flag&#34;: true" in page
    assert "&#34;total&#34;: 42" in page
    assert page.index("task-sent") < page.index("task-started") < page.index("task-succeeded")


def test_failed_task_shows_exception_and_traceback(capp, client, dash_app):
    fail_task(capp, "bad-2")
    ingest(dash_app)
    page = client.get("/task/bad-2").text
    assert "TypeError" in page and "Traceback (most recent call last)" in page


def test_user_data_is_escaped(capp, client, dash_app):
    emit(capp, "task-received", uuid="xss", name="<script>alert(1)</script>", args="('<img src=x onerror=alert(2)>',)",
         kwargs="{}", hostname="w1@host")
    ingest(dash_app)
    for path in ("/tasks", "/task/xss"):
        page = client.get(path).text
        assert "<script>alert(1)" not in page and "<img src=x" not in page
        assert "&lt;img src=x onerror=alert(2)&gt;" in page


def test_progress_bar_on_task_and_tasks_pages(capp, client, dash_app):
    emit(capp, "task-started", uuid="long", name="proj.long", hostname="w1@host")
    emit(capp, "task-progress", uuid="long", state="PROGRESS", meta={"current": 40, "total": 100}, hostname="w1@host")
    ingest(dash_app)
    for path in ("/tasks", "/task/long"):
        assert 'aria-valuenow="40"' in client.get(path).text
    assert "40 / 100 (40%)" in client.get("/task/long").text


def test_retry_and_children_are_linked(capp, client, dash_app):
    fail_task(capp, "orig")
    emit(capp, "task-sent", uuid="kid", name="proj.child", parent_id="orig", root_id="orig", args="()", kwargs="{}")
    ingest(dash_app)
    new_id = client.post("/api/task/retry/orig").json()["task-id"]
    ingest(dash_app)
    original = client.get("/task/orig").text
    assert new_id in original and "kid" in original
    assert "orig" in client.get(f"/task/{new_id}").text


def test_workers_page_shows_heartbeat_facts(capp, client, dash_app):
    heartbeat(capp, "alive@host", processed=1234)
    heartbeat(capp, "gone@host", type_="worker-offline")
    ingest(dash_app)
    page = client.get("/workers").text
    alive = re.search(r'data-worker="alive@host".*?</tr>', page, re.S).group(0)
    gone = re.search(r'data-worker="gone@host".*?</tr>', page, re.S).group(0)
    assert ">online<" in alive and "1234" in alive and "prefork" in alive
    assert ">offline<" in gone


def test_worker_page_and_unknown_worker(capp, client, dash_app):
    heartbeat(capp, "gone@host", type_="worker-offline")
    ingest(dash_app)
    assert "gone@host" in client.get("/worker/gone@host").text
    assert client.get("/worker/nobody").status_code == 404
    assert client.get("/task/nothing-here").status_code == 404


def test_broker_page_masks_passwords_and_lists_dead_letters(tmp_path):
    url = f"sqlite:///{tmp_path / 'b.sqlite3'}"
    capp = celeriac.Celery("d", broker=url, backend=url, set_as_current=False)
    capp.conf.broker_url = url
    web = make_dashboard(capp, tmp_path)
    from starlette.testclient import TestClient

    capp.send_task("proj.add", (1, 2))
    capp.conf.result_backend = "redis://:s3cret-pass@127.0.0.1:6379/0"  # only shown, never contacted here
    with TestClient(web) as client:
        for path in ("/", "/broker"):
            page = client.get(path).text
            assert "s3cret-pass" not in page
        assert "redis://:**@127.0.0.1:6379/0" in client.get("/").text
        assert re.search(r"<td>celery</td><td class=\"n\">1</td>", client.get("/broker").text)
    capp.close()


def test_schedules_page_lists_beat_entries(capp, client):
    capp.conf.beat_schedule = {"nightly-report": {"task": "proj.report", "schedule": 3600.0, "args": (1,)}}
    page = client.get("/schedules").text
    assert "nightly-report" in page and "proj.report" in page and "3600.0" in page


def test_overview_counts_and_charts(capp, client, dash_app):
    run_task(capp, "o1", runtime=0.5)
    fail_task(capp, "o2")
    ingest(dash_app)
    dash_app.state.dash.ingester.sample_queues(__import__("time").time())
    assert 'href="/tasks?state=FAILURE"' in client.get("/").text
    data = client.get("/api/charts").json()
    assert sum(data["tasks"]["succeeded"]) == 1 and sum(data["tasks"]["failed"]) == 1
    assert 0.5 in data["tasks"]["p50"]
    assert "celery" in data["queues"]["queues"]


def test_live_stream_announces_updates(client):
    body = client.get("/api/live", params={"once": "1"}).text
    assert "event: update" in body and "event: tick" in body


def test_url_prefix_serves_everything_under_it(capp, tmp_path):
    from starlette.testclient import TestClient

    web = make_dashboard(capp, tmp_path, url_prefix="/flower")
    with TestClient(web) as client:
        page = client.get("/flower/tasks").text
        assert 'href="/flower/workers"' in page
        assert client.get("/flower/static/app.js").status_code == 200
        assert client.get("/tasks").status_code == 404


def test_mounted_inside_another_app_links_follow_the_mount_and_ingest_starts(capp, tmp_path):
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    web = make_dashboard(capp, tmp_path, ingest=True, basic_auth=["a:b"])
    outer = Starlette(routes=[Mount("/ops/flower", app=web)])  # no lifespan reaches a mounted app
    run_task(capp, "mounted-1")
    capp.events.flush()
    ingester = web.state.dash.ingester
    try:
        with TestClient(outer) as client:
            assert client.get("/ops/flower/tasks").status_code == 401
            page = client.get("/ops/flower/tasks", auth=("a", "b")).text
            assert 'href="/ops/flower/workers"' in page and "/ops/flower/static/app.js" in page
            assert ingester._thread is not None and ingester._thread.is_alive()
            ingester.stop()
            ingester.drain()
            assert "mounted-1" in client.get("/ops/flower/tasks", auth=("a", "b")).text
    finally:
        ingester.stop()  # a request starts it again when nothing else does: it must not outlive the test


def test_worker_replies_never_show_passwords(capp, client, dash_app, monkeypatch):
    from celeriac.control import Inspect

    heartbeat(capp, "w1@host")
    ingest(dash_app)
    conf = {"broker_url": "redis://:hunter2@cache:6379/0", "aws_secret_access_key": "AKIA-xyz", "task_default_queue": "celery"}
    monkeypatch.setattr(Inspect, "conf", lambda self: {"w1@host": conf})  # what a worker would answer
    page = client.get("/worker/w1@host").text
    assert "hunter2" not in page and "AKIA-xyz" not in page
    assert "redis://:**@cache:6379/0" in page
