"""Events in one process: listeners, receivers, cursors, retention, and the State helper."""

from __future__ import annotations

import logging
import threading
import time

import orjson
import pytest

from celeriac import Celery
from celeriac.event_state import HEARTBEAT_WINDOW, State
from celeriac.events import Receiver


@pytest.fixture(params=["memory", "sqlite"])
def app(request, tmp_path):
    url = f"memory://events-{id(request)}" if request.param == "memory" else f"sqlite:///{tmp_path / 'b.sqlite3'}"
    return Celery("events", broker=url, backend="memory://")


def test_listener_hears_events_of_its_type(app):
    heard = []
    app.events.on("task-failed", heard.append)
    app.events.send("task-succeeded", uuid="a")
    app.events.send("task-failed", uuid="b", exception="ValueError('x')")
    assert [(e["type"], e["uuid"], e["exception"]) for e in heard] == [("task-failed", "b", "ValueError('x')")]
    assert {"hostname", "utcoffset", "pid", "clock", "timestamp"} <= set(heard[0])


def test_failing_listener_is_logged_and_others_still_run(app, caplog):
    heard = []

    @app.events.on("*")
    def broken(event):
        raise RuntimeError("listener bug")

    app.events.on("task-failed", heard.append)
    with caplog.at_level(logging.ERROR, logger="celeriac.events"):
        app.events.send("task-failed", uuid="c")
    assert [e["uuid"] for e in heard] == ["c"]
    assert "listener bug" in caplog.text
    app.events.flush()
    assert [e["uuid"] for e in Receiver(app).read(timeout=0)] == ["c"]


def test_receiver_capture_calls_handlers_and_survives_a_failing_one(app):
    for i in range(4):
        app.events.send("task-succeeded" if i % 2 else "task-failed", uuid=str(i))
    app.events.flush()
    failed, everything = [], []

    def boom(event):
        failed.append(event["uuid"])
        raise ValueError("handler bug")

    receiver = app.events.Receiver(handlers={"task-failed": boom, "*": lambda e: everything.append(e["uuid"])})
    assert receiver.capture(limit=4, timeout=5, wakeup=False) == 4
    assert failed == ["0", "2"]
    assert everything == ["1", "3"]


def test_receiver_resumes_from_its_cursor_with_every_missed_event_in_order(app):
    app.events.send("task-sent", uuid="before")
    app.events.flush()
    first = Receiver(app)
    seen = first.read(timeout=1)
    cursor = first.cursor
    assert [e["uuid"] for e in seen] == ["before"]
    for i in range(50):
        app.events.send("task-received", uuid=f"missed-{i}")
    app.events.flush()
    later = Receiver(app, cursor=cursor)
    got = []
    while len(got) < 50:
        batch = later.read(limit=7, timeout=1)
        assert batch, f"stopped after {len(got)} events"
        got.extend(e["uuid"] for e in batch)
    assert got == [f"missed-{i}" for i in range(50)]


TRIM_SLACK = 500  # the SQLite broker trims once per 500 appended events, so the bound holds within that


def _all(app):
    receiver, got = Receiver(app), []
    while batch := receiver.read(timeout=0.2):
        got.extend(e["uuid"] for e in batch)
    return got


def test_stream_keeps_only_the_newest_events_up_to_maxlen(app):
    app.conf.event_stream_maxlen = 10
    for i in range(1200):
        app.events.send("task-sent", uuid=str(i))
    app.events.flush()
    kept = _all(app)
    assert 10 <= len(kept) <= 10 + TRIM_SLACK
    assert kept == [str(i) for i in range(1200 - len(kept), 1200)]


def test_a_batch_taken_later_never_reaches_the_stream_first(app):
    """The dispatcher's thread and an explicit flush overlap: the second waits for the first."""
    broker = app.broker
    real_append = broker.stream_append
    first_started, release_first = threading.Event(), threading.Event()
    appended: list[str] = []

    def slow_first_append(stream, items, **options):
        if not first_started.is_set():
            first_started.set()
            assert release_first.wait(10)
        appended.extend(orjson.loads(item)["uuid"] for item in items)
        return real_append(stream, items, **options)

    broker.stream_append = slow_first_append
    for i in range(5):
        app.events.send("task-sent", uuid=str(i))
    earlier = threading.Thread(target=app.events.flush)
    earlier.start()
    assert first_started.wait(10)
    for i in range(5, 10):
        app.events.send("task-sent", uuid=str(i))
    later = threading.Thread(target=app.events.flush)
    later.start()
    later.join(0.3)  # a later flush that does not wait would be done by now
    release_first.set()
    earlier.join(10)
    later.join(10)
    assert appended == [str(i) for i in range(10)]
    assert _all(app) == [str(i) for i in range(10)]


def test_stream_drops_events_older_than_max_age(app):
    app.conf.event_stream_max_age = 0.001
    app.events.send("task-sent", uuid="old")
    app.events.flush()
    appended = time.time()
    while time.time() < appended + 0.01:  # let the first event age past max_age
        pass
    for i in range(TRIM_SLACK):
        app.events.send("task-sent", uuid=f"new-{i}")
    app.events.flush()
    kept = _all(app)
    assert "old" not in kept and kept[-1] == f"new-{TRIM_SLACK - 1}"


def test_listen_feeds_listeners_with_events_from_other_processes(app):
    other = Celery("other", broker=app.conf.broker_url, backend="memory://")
    if app.conf.broker_url.startswith("memory://"):
        other._broker = app.broker  # a memory broker lives in one process: share it as two processes share a server
    heard = []
    app.events.on("task-failed", heard.append)
    follower = app.events.listen(from_now=True)
    try:
        other.events.send("task-failed", uuid="remote", hostname="w1@x")
        other.events.flush()
        deadline = time.monotonic() + 10
        while not heard and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(e["uuid"], e["hostname"]) for e in heard] == [("remote", "w1@x")]
    finally:
        follower.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _worker_event(type_, host="w1@h", **extra):
    return {"type": type_, "hostname": host, "freq": 2.0, "active": 1, "processed": 7, "timestamp": 1.0, **extra}


def test_state_shows_a_worker_offline_after_a_few_missed_heartbeats():
    clock = Clock()
    state = State(clock=clock)
    state.event(_worker_event("worker-online"))
    assert [w.hostname for w in state.alive_workers()] == ["w1@h"]
    clock.now += 2.0 * HEARTBEAT_WINDOW - 0.1
    assert state.alive_workers()
    clock.now += 0.2
    assert state.alive_workers() == []
    state.event(_worker_event("worker-heartbeat"))
    assert state.workers["w1@h"].processed == 7 and state.alive_workers()


def test_state_shows_a_worker_offline_at_once_on_worker_offline():
    state = State()
    state.event(_worker_event("worker-online"))
    state.event(_worker_event("worker-offline"))
    assert state.alive_workers() == []


def test_state_tracks_tasks_and_never_moves_a_finished_task_back():
    state = State()
    steps = [("task-sent", {"name": "t.add", "args": "(2, 3)"}), ("task-received", {}),
             ("task-succeeded", {"result": "5", "runtime": 0.1}), ("task-started", {})]
    for type_, extra in steps:
        state.event({"type": type_, "uuid": "u1", "hostname": "w1@h", "timestamp": 5.0, **extra})
    task = state.tasks["u1"]
    assert (task.state, task.name, task.fields["result"], task.worker) == ("SUCCESS", "t.add", "5", "w1@h")
    assert state.tasks_by_state() == {"SUCCESS": 1}


def test_state_keeps_only_max_tasks():
    state = State(max_tasks=3)
    for i in range(5):
        state.event({"type": "task-sent", "uuid": str(i), "timestamp": float(i)})
    assert [t.uuid for t in state.tasks_by_time()] == ["4", "3", "2"]


def test_state_ignores_a_late_task_sent_from_the_producer():
    state = State()
    state.event({"type": "task-received", "uuid": "u2", "hostname": "w1@h", "timestamp": 2.0, "name": "t.add"})
    state.event({"type": "task-sent", "uuid": "u2", "hostname": "gen1@client", "timestamp": 1.0, "queue": "celery"})
    task = state.tasks["u2"]
    assert (task.state, task.worker, task.fields["queue"]) == ("RECEIVED", "w1@h", "celery")


def test_a_process_clocks_rise_along_the_stream_when_threads_send_at_once(app):
    """An event whose serialisation is slow keeps its place: a thread sending meanwhile comes after it."""
    inside, release = threading.Event(), threading.Event()

    class SlowRepr:
        def __repr__(self) -> str:
            inside.set()
            assert release.wait(10)
            return "slow"

    first = threading.Thread(target=app.events.send, args=("task-succeeded",), kwargs={"uuid": "first", "result": SlowRepr()})
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=app.events.send, args=("task-received",), kwargs={"uuid": "second"})
    second.start()
    second.join(0.3)  # a send that does not wait for the first would be in the buffer by now
    release.set()
    first.join(10)
    second.join(10)
    app.events.flush()
    events = Receiver(app).read(timeout=0.2)
    assert [(e["uuid"], e.get("result")) for e in events] == [("first", "slow"), ("second", None)]
    assert events[0]["clock"] < events[1]["clock"]
