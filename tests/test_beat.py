"""Beat: entries, persisted run state, missed runs and leadership, with virtual clocks.

Two ``Beat`` objects on one SQLite file stand for two beat processes; the process test at the
end runs real ones.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
import threading
import time

import pytest

from celeriac import Celery, message, signals
from celeriac.beat import LEASE_NAME, Beat
from celeriac.beat_entries import Pending, RunState, encode_state, run_id
from celeriac.exceptions import ImproperlyConfigured
from celeriac.schedules import crontab
from tests.workers import WorkerProcess, worker_env, worker_process, write_module

START = dt.datetime(2026, 3, 2, 6, 59, 30, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, start: float = START) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make_app(url: str, schedule: dict | None = None, **conf) -> Celery:
    app = Celery("beattest", broker=url, set_as_current=False, beat_lease_seconds=conf.pop("lease", 300.0), **conf)
    app.conf.beat_schedule = schedule if schedule is not None else {
        "ping": {"task": "beattest.ping", "schedule": 10.0, "args": (1,), "kwargs": {"x": 2}, "options": {"queue": "celery"}},
    }
    return app


def sent(app: Celery) -> list[message.Message]:
    """Every message beat has published so far (taken off the queue)."""
    deliveries = app.broker.fetch(["celery"], 1000, consumer="test", timeout=0)
    app.broker.ack(deliveries)
    return [message.decode(d.payload, app.accepted_content) for d in deliveries]


# -- sending on schedule -----------------------------------------------------------------------
def test_interval_entry_is_sent_every_interval_with_its_arguments(sqlite_url):
    app, clock = make_app(sqlite_url), Clock()
    beat = Beat(app, clock=clock)
    assert beat.tick() == pytest.approx(10.0)
    assert sent(app) == []
    clock.advance(10)
    beat.tick()
    clock.advance(10)
    beat.tick()
    msgs = sent(app)
    assert [(m.task, tuple(m.args), dict(m.kwargs)) for m in msgs] == [("beattest.ping", (1,), {"x": 2})] * 2


def test_crontab_entry_follows_the_app_time_zone(sqlite_url):
    app = make_app(sqlite_url, {"report": {"task": "beattest.report", "schedule": crontab(minute=0, hour=8)}},
                   timezone="Europe/Berlin")
    clock = Clock()  # 07:59:30 in Berlin
    beat = Beat(app, clock=clock)
    assert beat.tick() == pytest.approx(30.0)
    clock.advance(30)
    beat.tick()
    (msg,) = sent(app)
    assert msg.id == run_id(beat.entries[0], dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC))


def test_tick_sleeps_until_the_next_due_time_or_lease_renewal(sqlite_url):
    beat = Beat(make_app(sqlite_url, lease=600.0), clock=Clock())
    assert beat.tick() == pytest.approx(10.0)
    follower_lease = Beat(make_app(sqlite_url, lease=6.0), clock=Clock())
    assert follower_lease.tick() == pytest.approx(2.0)  # not the leader: retry at a third of the lease


def test_add_periodic_task_in_on_after_configure_is_scheduled(sqlite_url):
    app = make_app(sqlite_url, {})

    @app.task(name="beattest.hello")
    def hello(who):
        return who

    @app.on_after_configure.connect
    def setup(sender, **kwargs):
        sender.add_periodic_task(5.0, hello.s("world"), name="say hello")

    clock = Clock()
    beat = Beat(app, clock=clock)
    beat.tick()
    clock.advance(5)
    beat.tick()
    assert [(m.task, list(m.args)) for m in sent(app)] == [("beattest.hello", ["world"])]


# -- persistence and missed runs ---------------------------------------------------------------
def test_last_run_survives_a_restart(sqlite_url):
    clock = Clock()
    first = Beat(make_app(sqlite_url), clock=clock)
    first.tick()
    clock.advance(10)
    first.tick()
    first.close()
    restarted = Beat(make_app(sqlite_url), clock=clock)
    assert restarted.tick() == pytest.approx(10.0)
    assert len(sent(restarted.app)) == 1


def _last_run_long_ago(app: Celery, beat: Beat, hours: float) -> None:
    then = beat.now() - dt.timedelta(hours=hours)
    app.backend.kv_set(beat.entries[0].key, encode_state(RunState(then)))


def test_catch_up_once_sends_a_single_run_for_many_missed(sqlite_url):
    app, clock = make_app(sqlite_url), Clock()
    beat = Beat(app, clock=clock)
    _last_run_long_ago(app, beat, hours=5)
    assert beat.tick() == pytest.approx(10.0)
    assert beat.tick() == pytest.approx(10.0)
    assert len(sent(app)) == 1


def test_skip_policy_drops_missed_runs_and_keeps_the_schedule(sqlite_url):
    app, clock = make_app(sqlite_url, beat_missed_run_policy="skip"), Clock()
    beat = Beat(app, clock=clock)
    _last_run_long_ago(app, beat, hours=5)
    beat.tick()
    assert sent(app) == []
    clock.advance(10)
    beat.tick()
    assert len(sent(app)) == 1


def test_a_run_late_by_less_than_the_grace_is_not_missed(sqlite_url):
    app, clock = make_app(sqlite_url, beat_missed_run_policy="skip"), Clock()
    beat = Beat(app, clock=clock)
    beat.tick()
    clock.advance(10 + 45)  # 45 s late, inside the default 60 s grace
    beat.tick()
    assert len(sent(app)) == 1


def test_unknown_missed_run_policy_is_refused(sqlite_url):
    with pytest.raises(ImproperlyConfigured, match="beat_missed_run_policy"):
        Beat(make_app(sqlite_url, beat_missed_run_policy="twice"))


@pytest.mark.parametrize(("spec", "words"), [
    ({"schedule": 5}, "needs 'task'"),
    ({"task": "t"}, "needs 'schedule'"),
    ({"task": "t", "schedule": "hourly"}, "schedule"),
])
def test_bad_entries_are_named_in_the_error(sqlite_url, spec, words):
    beat = Beat(make_app(sqlite_url, {"nightly": spec}))
    with pytest.raises(ImproperlyConfigured, match=rf"beat_schedule\['nightly'\].*{words}"):
        _ = beat.entries


# -- leadership --------------------------------------------------------------------------------
def test_two_beats_send_each_run_exactly_once(sqlite_url):
    clock = Clock()
    a, b = Beat(make_app(sqlite_url), clock=clock), Beat(make_app(sqlite_url), clock=clock)
    for step in range(12):
        for beat in (a, b) if step % 2 else (b, a):
            beat.tick()
        clock.advance(10)
    ids = [m.id for m in sent(a.app)]
    assert len(ids) == 11 and len(set(ids)) == 11
    assert [a.is_leader, b.is_leader].count(True) == 1


def test_a_follower_takes_over_when_the_leader_stops_renewing(sqlite_url):
    clock = Clock()
    a = Beat(make_app(sqlite_url, lease=0.3), clock=clock)
    b = Beat(make_app(sqlite_url, lease=0.3), clock=clock)
    a.tick()
    clock.advance(10)
    a.tick()
    assert b.tick() == pytest.approx(0.1)  # a follower retries at a third of the lease
    assert a.is_leader and not b.is_leader
    clock.advance(10)  # a has died: it never ticks again
    deadline = time.monotonic() + 5
    while not b.is_leader and time.monotonic() < deadline:
        time.sleep(b.tick())  # the lease expires in real time
    assert b.is_leader
    ids = [m.id for m in sent(a.app)]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_closing_the_leader_hands_over_at_once(sqlite_url):
    clock = Clock()
    a, b = Beat(make_app(sqlite_url), clock=clock), Beat(make_app(sqlite_url), clock=clock)
    a.tick()
    b.tick()
    assert a.is_leader and not b.is_leader
    a.close()
    b.tick()
    assert b.is_leader


def test_takeover_resends_a_run_that_never_went_out_under_the_same_id(sqlite_url, monkeypatch):
    clock = Clock()
    a, b = Beat(make_app(sqlite_url), clock=clock), Beat(make_app(sqlite_url), clock=clock)
    a.tick()
    clock.advance(10)

    def crash(*args, **kwargs):
        raise SystemExit("leader died mid-send")

    monkeypatch.setattr(a.app, "send_task", crash)
    with pytest.raises(SystemExit):
        a.tick()
    a.app.backend.release_lease(LEASE_NAME, a.owner)  # as if the lease expired
    b.tick()
    due = dt.datetime.fromtimestamp(START + 10, dt.UTC)
    assert [m.id for m in sent(b.app)] == [run_id(b.entries[0], due)]


def test_takeover_does_not_resend_a_run_that_went_out(sqlite_url):
    clock = Clock()
    a, b = Beat(make_app(sqlite_url), clock=clock), Beat(make_app(sqlite_url), clock=clock)
    a.tick()
    clock.advance(10)
    entry, due = a.entries[0], a.now()
    task_id = run_id(entry, due)
    # the leader stored its intent, sent, and died before clearing the intent
    a.app.backend.kv_set(entry.key, encode_state(RunState(due, Pending(due, task_id))))
    a.app.send_task(entry.task, entry.args, entry.kwargs, task_id=task_id)
    a.app.backend.release_lease(LEASE_NAME, a.owner)
    b.tick()
    assert [m.id for m in sent(b.app)] == [task_id]
    assert b.state(entry).pending is None


def test_run_stops_when_asked_sends_beat_init_and_releases_the_lease(sqlite_url):
    app = make_app(sqlite_url)
    beat = Beat(app)
    started = threading.Event()

    def on_init(sender, **kwargs):
        if sender is beat:
            started.set()

    signals.beat_init.connect(on_init)
    try:
        stop = threading.Event()
        thread = threading.Thread(target=beat.run, args=(stop,))
        thread.start()
        assert started.wait(5)
        stop.set()
        thread.join(5)
        assert not thread.is_alive()
    finally:
        signals.beat_init.disconnect(on_init)
    assert app.backend.acquire_lease(LEASE_NAME, "someone-else", 5.0)


# -- real processes ----------------------------------------------------------------------------
BEAT_MODULE = """
from celeriac import Celery

app = Celery("beatproc", broker={url!r}, beat_lease_seconds=1.5)
app.conf.beat_schedule = {{"tick": {{"task": "beatproc.tick", "schedule": 0.5}}}}


@app.task(name="beatproc.tick")
def tick():
    return "tock"
"""


def _beat_command() -> list[str]:
    if importlib.util.find_spec("celeriac.cli.main") is not None:
        return [sys.executable, "-m", "celeriac", "-A", "beatproc", "beat", "-l", "info", "-s", "ignored", "--max-interval", "5"]
    # until the main command group exists, run the same click command directly
    code = "import beatproc; from celeriac.cli.beat import beat; beat.main(['-l', 'info', '-s', 'ignored'], obj={'app': beatproc.app})"
    return [sys.executable, "-c", code]


def _start_beat(cwd) -> WorkerProcess:
    proc = subprocess.Popen(_beat_command(), cwd=cwd, env=worker_env(cwd), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return WorkerProcess(proc)


def _sent_ids(output: str) -> list[str]:
    return [line.split("[")[-1].split("]")[0] for line in output.splitlines() if "Sending due task" in line]


def test_two_beat_processes_send_each_run_once_and_hand_over_when_the_leader_dies(tmp_path, sqlite_url):
    write_module(tmp_path, "beatproc", BEAT_MODULE.format(url=sqlite_url))
    first = _start_beat(tmp_path)
    second = None
    try:
        first.wait_for_line("is the leader now", timeout=20)
        second = _start_beat(tmp_path)
        second.wait_for_line("celeriac beat:", timeout=20)
        first.wait_for_line("Sending due task", count=len(_sent_ids(first.output)) + 4, timeout=20)
        assert "Sending due task" not in second.output and "leader now" not in second.output
        first.kill()
        killed_at = time.monotonic()
        second.wait_for_line("is the leader now", timeout=10)
        assert time.monotonic() - killed_at < 5
        second.wait_for_line("Sending due task", count=3, timeout=10)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    app = Celery("reader", broker=sqlite_url, set_as_current=False)
    queued = [m.id for m in sent(app)]
    by_first, by_second = _sent_ids(first.output), _sent_ids(second.output)
    assert len(queued) == len(set(queued)), "a run was sent twice"
    assert set(by_second) <= set(queued)
    # the leader may die between its log line and the send: the new leader then sends that run (once)
    assert len(set(by_first) & set(by_second)) <= 1
    assert len(queued) >= len(set(by_first) | set(by_second)) - 1


def test_worker_with_dash_b_runs_the_schedule(tmp_path, sqlite_url):
    write_module(tmp_path, "beatproc", BEAT_MODULE.format(url=sqlite_url))
    with worker_process("beatproc", cwd=tmp_path, args=["-B", "-P", "threads", "-c", "2"]) as worker:
        worker.wait_for_line("is the leader now", timeout=20)
        worker.wait_for_line("succeeded", count=2, timeout=20)
