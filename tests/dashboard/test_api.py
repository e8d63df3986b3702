"""Flower's API paths and JSON, celeriac's own endpoints, and actions reaching the broker."""

from __future__ import annotations

import orjson

from celeriac.control import STREAM as CONTROL

from .conftest import fail_task, heartbeat, ingest, run_task


def _control_commands(capp):
    return [orjson.loads(data) for _, data in capp.broker.stream_read(CONTROL, None, limit=100, timeout=0)]


def test_api_tasks_has_flowers_shape_and_filters(capp, client, dash_app):
    run_task(capp, "a1")
    fail_task(capp, "a2")
    ingest(dash_app)
    tasks = client.get("/api/tasks").json()
    assert list(tasks) == ["a2", "a1"]
    assert tasks["a1"]["state"] == "SUCCESS" and tasks["a1"]["result"] == "5" and tasks["a1"]["worker"] == "w1@host"
    assert tasks["a1"]["succeeded"] and tasks["a1"]["runtime"] == 0.01
    assert list(client.get("/api/tasks", params={"state": "FAILURE"}).json()) == ["a2"]
    assert list(client.get("/api/tasks", params={"taskname": "proj.add", "limit": 1, "offset": 1}).json()) == ["a1"]
    first = client.get("/api/tasks", params={"limit": 1})
    after = first.headers["x-next-cursor"]
    assert list(client.get("/api/tasks", params={"limit": 1, "after": after}).json()) == ["a1"]


def test_task_info_and_result(capp, client, dash_app):
    result = capp.send_task("proj.add", (2, 3))
    ingest(dash_app)
    info = client.get(f"/api/task/info/{result.id}").json()
    assert info["uuid"] == result.id and info["state"] == "PENDING" and info["args"] == "(2, 3)"
    assert client.get("/api/task/result/" + result.id).json() == {"task-id": result.id, "state": "PENDING", "result": None}
    capp.backend.store({"task_id": result.id, "status": "SUCCESS", "result": 5, "traceback": None, "children": [],
                        "date_done": None}, expires=None)
    assert client.get("/api/task/result/" + result.id).json()["result"] == 5
    assert client.get("/api/task/info/missing").status_code == 404


def test_async_apply_and_send_task_queue_a_task(capp, client, dash_app):
    body = client.post("/api/task/async-apply/proj.add", json={"args": [1, 2]}).json()
    sent = client.post("/api/task/send-task/proj.other", json={"args": [], "kwargs": {"k": 1}}).json()
    assert body["state"] == "PENDING"
    ingest(dash_app)
    tasks = client.get("/api/tasks").json()
    assert tasks[body["task-id"]]["args"] == "(1, 2)"
    assert tasks[sent["task-id"]]["name"] == "proj.other"
    assert [s.ready for s in capp.broker.stats(["celery"])] == [2]


def test_revoke_marks_a_queued_task_and_tells_workers(capp, client, dash_app):
    result = capp.send_task("proj.add", (2, 3))
    ingest(dash_app)
    assert client.post(f"/api/task/revoke/{result.id}").json() == {"message": f"Revoked '{result.id}'"}
    ingest(dash_app)
    assert client.get(f"/api/task/info/{result.id}").json()["state"] == "REVOKED"
    assert result.id in capp.backend.revoked()
    commands = _control_commands(capp)
    assert commands[-1]["method"] == "revoke" and commands[-1]["arguments"]["task_id"] == [result.id]


def test_terminate_sends_the_signal(capp, client, dash_app):
    client.post("/api/task/revoke/running-1", params={"terminate": "true", "signal": "SIGKILL"})
    args = _control_commands(capp)[-1]["arguments"]
    assert args["terminate"] is True and args["signal"] == "SIGKILL"


def test_retry_resends_the_same_arguments_with_a_new_id(capp, client, dash_app):
    fail_task(capp, "broken")
    ingest(dash_app)
    reply = client.post("/api/task/retry/broken").json()
    assert reply["retry_of"] == "broken" and reply["task-id"] != "broken"
    ingest(dash_app)
    info = client.get(f"/api/task/info/{reply['task-id']}").json()
    assert info["args"] == "(2, 'x')" and info["retry_of"] == "broken" and info["state"] == "PENDING"


def test_retry_refuses_when_arguments_are_unknown(capp, client, dash_app):
    from .conftest import emit

    emit(capp, "task-failed", uuid="opaque", name="proj.add", hostname="w", exception="E()")
    emit(capp, "task-received", uuid="opaque", name="proj.add", args="(<object at 0x1>,)", kwargs="{}", hostname="w")
    ingest(dash_app)
    assert client.post("/api/task/retry/opaque").status_code == 409


def test_bulk_retry_resends_every_failed_task_matching_the_filter(capp, client, dash_app):
    for i in range(3):
        fail_task(capp, f"f{i}")
    run_task(capp, "fine")
    fail_task(capp, "elsewhere", hostname="w2@host")
    ingest(dash_app)
    reply = client.post("/api/tasks/retry", params={"worker": "w1@host"}).json()
    assert len(reply["task-ids"]) == 3
    ingest(dash_app)
    retried = {t["retry_of"] for t in client.get("/api/tasks", params={"state": "PENDING"}).json().values()}
    assert retried == {"f0", "f1", "f2"}


def test_worker_controls_are_broadcast_to_that_worker(capp, client):
    assert client.post("/api/worker/pool/grow/w1@host", params={"n": 2}).status_code in (200, 202)
    client.post("/api/worker/pool/shrink/w1@host")
    client.post("/api/worker/shutdown/w1@host")
    client.post("/api/task/rate-limit/proj.add", data={"workername": "w1@host", "ratelimit": "10/m"})
    client.post("/api/task/timeout/proj.add", data={"workername": "w1@host", "soft": "5", "hard": "10"})
    commands = [(c["method"], c["destination"], c["arguments"]) for c in _control_commands(capp)]
    assert commands == [
        ("pool_grow", ["w1@host"], {"n": 2}),
        ("pool_shrink", ["w1@host"], {"n": 1}),
        ("shutdown", ["w1@host"], {}),
        ("rate_limit", ["w1@host"], {"task_name": "proj.add", "rate_limit": "10/m"}),
        ("time_limit", ["w1@host"], {"task_name": "proj.add", "soft": 5.0, "hard": 10.0}),
    ]


def test_api_workers_status(capp, client, dash_app):
    heartbeat(capp, "w1@host")
    heartbeat(capp, "w2@host", type_="worker-offline")
    ingest(dash_app)
    assert client.get("/api/workers", params={"status": "true"}).json() == {"w1@host": True, "w2@host": False}


def test_requeue_dead_letters(capp, client):
    capp.send_task("proj.add", (1, 1))
    [delivery] = capp.broker.fetch(["celery"], 1, consumer="c", timeout=0)
    capp.broker.dead_letter(delivery, "poison")
    [dead] = capp.broker.dead_letters()
    assert client.post("/api/queues/requeue", data={"id": dead.id}).json()["requeued"] == 1
    assert capp.broker.stats(["celery"])[0].ready == 1


def test_metrics_use_flowers_names_plus_queue_depth_and_latency(capp, client, dash_app):
    heartbeat(capp, "w1@host", active=3)
    run_task(capp, "m1", runtime=0.2)
    capp.send_task("proj.add", (1, 1))
    ingest(dash_app)
    text = client.get("/metrics").text
    assert 'flower_events_total{type="task-succeeded",task="proj.add",worker="w1@host"} 1' in text
    assert 'flower_worker_online{worker="w1@host"} 1' in text
    assert 'flower_worker_number_of_currently_executing_tasks{worker="w1@host"} 3' in text
    assert 'flower_task_runtime_seconds_bucket{task="proj.add",worker="w1@host",le="0.25"} 1' in text
    assert 'celeriac_queue_depth{queue="celery"} 1' in text
    assert 'celeriac_queue_latency_seconds{queue="celery"}' in text


def test_healthcheck_and_openapi(client):
    assert client.get("/healthcheck").text == "OK"
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/task/revoke/{task_id}" in spec["paths"]
    assert "post" in spec["paths"]["/api/tasks/retry"]
