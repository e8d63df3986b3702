"""AsyncResult, eager execution, retries in eager mode, progress states and signals."""

from __future__ import annotations

import threading

import pytest

from celeriac import Celery, exceptions, signals, states
from celeriac.exceptions import MaxRetriesExceededError


@pytest.fixture
def app(memory_url):
    return Celery("proj", broker=memory_url, backend=memory_url)


def test_apply_runs_locally_and_returns_a_ready_result(app):
    @app.task
    def add(x, y):
        return x + y

    result = add.apply((2, 3))
    assert (result.state, result.get(), result.ready(), result.successful()) == ("SUCCESS", 5, True, True)


def test_always_eager_makes_delay_run_inline(app):
    app.conf.task_always_eager = True

    @app.task
    def add(x, y):
        return x + y

    assert add.delay(4, 4).get() == 8


def test_eager_retries_until_success(app):
    calls = []

    @app.task(bind=True, max_retries=3)
    def flaky(self):
        calls.append(self.request.retries)
        if self.request.retries < 2:
            raise self.retry(countdown=5)
        return "done"

    assert flaky.apply().get() == "done"
    assert calls == [0, 1, 2]


def test_eager_autoretry_gives_up_with_the_original_error(app):
    @app.task(autoretry_for=(ConnectionError,), retry_kwargs={"max_retries": 2, "countdown": 1})
    def always_down():
        raise ConnectionError("down")

    result = always_down.apply()
    assert result.state == "FAILURE"
    with pytest.raises(ConnectionError, match="down"):
        result.get()


def test_retry_without_exc_past_the_limit_raises_max_retries(app):
    @app.task(bind=True, max_retries=0)
    def once(self):
        raise self.retry()

    with pytest.raises(MaxRetriesExceededError):
        once.apply().get()


def test_eager_propagates_when_asked(app):
    app.conf.task_eager_propagates = True

    @app.task
    def boom():
        raise KeyError("k")

    with pytest.raises(KeyError):
        boom.apply()


def test_request_carries_id_args_and_retries(app):
    @app.task(bind=True)
    def who(self, a, b=1):
        r = self.request
        return [r.id, list(r.args), r.kwargs, r.retries]

    assert who.apply((1,), {"b": 2}, task_id="abc").get() == ["abc", [1], {"b": 2}, 0]


def test_update_state_stores_progress(app):
    @app.task(bind=True)
    def work(self):
        self.update_state(state="PROGRESS", meta={"current": 40, "total": 100})
        return None

    work.apply(task_id="prog-1")
    assert app.AsyncResult("prog-1").state == "PROGRESS"
    assert app.AsyncResult("prog-1").info == {"current": 40, "total": 100}


def test_get_times_out_with_a_clear_error(app):
    result = app.send_task("nobody.runs.this")
    with pytest.raises(exceptions.TimeoutError, match="not ready after 0.2s"):
        result.get(timeout=0.2)


def test_get_wakes_when_the_result_is_stored(app):
    result = app.send_task("t.x")
    meta = {"task_id": result.id, "status": states.SUCCESS, "result": 42, "traceback": None, "children": [],
            "date_done": None}
    threading.Timer(0.2, app.backend.store, (meta,), {"expires": 60}).start()
    assert result.get(timeout=5) == 42


def test_failure_result_rebuilds_the_exception(app):
    result = app.send_task("t.y")
    app.backend.store({"task_id": result.id, "status": "FAILURE", "traceback": "tb",
                       "result": {"exc_type": "ValueError", "exc_message": ["bad"], "exc_module": "builtins"}}, expires=60)
    with pytest.raises(ValueError, match="bad"):
        result.get(timeout=1)
    assert isinstance(result.get(propagate=False), ValueError)
    assert result.failed() and result.traceback == "tb"


def test_forget_removes_the_result(app):
    result = app.send_task("t.z")
    result.forget()
    assert not result.is_known()


def test_a_raising_signal_receiver_is_logged_and_others_still_run(app, caplog):
    seen = []

    def bad(**kwargs):
        raise RuntimeError("receiver broke")

    def good(sender=None, **kwargs):
        seen.append(sender)

    signals.task_prerun.connect(bad)
    signals.task_prerun.connect(good)
    try:
        @app.task
        def f():
            return 1

        assert f.apply().get() == 1
    finally:
        signals.task_prerun.disconnect(bad)
        signals.task_prerun.disconnect(good)
    assert seen and "receiver broke" in caplog.text


def test_get_sees_a_result_stored_just_before_its_first_wait(tmp_path):
    """The SQLite backend's first wait in a thread must not sleep through a store it came too late to hear."""
    import time

    from celeriac import Celery

    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    app = Celery("lost-wakeup", broker=url, backend=url, set_as_current=False)
    result = app.AsyncResult("done-meanwhile")
    real_wait = app.backend.wait

    def finished_meanwhile(task_ids, timeout):
        # the worker stores the result after get() read "not ready" and before it waits
        app.backend.store({"task_id": "done-meanwhile", "status": "SUCCESS", "result": 7, "traceback": None,
                           "children": [], "date_done": None}, expires=None)
        app.backend.wait = real_wait
        real_wait(task_ids, timeout)

    app.backend.wait = finished_meanwhile
    started = time.monotonic()
    assert result.get(timeout=10) == 7
    assert time.monotonic() - started < 5  # not the whole timeout
    app.close()


def test_results_survive_pickling_and_read_through_the_current_app(app):
    """Web apps keep results in sessions and caches (pickled); an unpickled result reads the backend."""
    import pickle

    @app.task
    def add(x, y):
        return x + y

    sent = app.send_task("t.pickled")
    parent = app.send_task("t.parent")
    sent.parent = parent
    group = app.GroupResult("g-1", [sent, app.AsyncResult("m-2")])
    eager = add.apply((2, 3))
    copy, group_copy, eager_copy = pickle.loads(pickle.dumps((sent, group, eager)))
    app.backend.store({"task_id": sent.id, "status": states.SUCCESS, "result": 7, "traceback": None, "children": []},
                      expires=60)
    assert (copy.id, copy.task_name, copy.parent.id) == (sent.id, "t.pickled", parent.id)
    assert copy.get(timeout=5) == 7
    assert (group_copy.id, [r.id for r in group_copy.results]) == ("g-1", [sent.id, "m-2"])
    assert group_copy.results[0].get(timeout=5) == 7
    assert (eager_copy.id, eager_copy.get(), eager_copy.state) == (eager.id, 5, "SUCCESS")
