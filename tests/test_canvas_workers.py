"""Every canvas form against real worker processes, on the SQLite broker and on Redis."""

from __future__ import annotations

import importlib
import sys
import uuid

import pytest

from celeriac import GroupResult, chain, chord, group
from celeriac.exceptions import ChordError
from tests.conftest import require_service
from tests.workers import worker_process, write_module

TASKS = '''
from celeriac import Celery

app = Celery("{name}", broker={broker!r}, backend={backend!r}, task_default_queue={queue!r})


@app.task
def add(x, y):
    return x + y


@app.task
def tsum(numbers):
    return sum(numbers)


@app.task
def fail(*args):
    raise ValueError("boom")


@app.task
def failed_id(task_id):
    return task_id


@app.task
def report(request, exc, traceback):
    return [request["id"], exc["exc_type"], "ValueError" in traceback]


@app.task(bind=True)
def flaky(self, times):
    try:
        if self.request.retries < times:
            raise ConnectionError("not yet")
    except ConnectionError as exc:
        raise self.retry(exc=exc, countdown=0.2)
    return self.request.retries


@app.task(bind=True, autoretry_for=(ConnectionError,), retry_kwargs={{"max_retries": 3, "countdown": 0.2}})
def auto_flaky(self, times):
    if self.request.retries < times:
        raise ConnectionError("not yet")
    return self.request.retries
'''

TIMEOUT = 30


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def tasks(request, tmp_path_factory):
    """The task module, imported here, with one worker process serving it."""
    directory = tmp_path_factory.mktemp(f"canvas-{request.param}")
    if request.param == "redis":
        require_service("redis")
        broker = backend = "redis://127.0.0.1:6379/0"
    else:
        broker = backend = f"sqlite:///{directory / 'canvas.sqlite3'}"
    name = f"canvasapp_{request.param}_{uuid.uuid4().hex[:6]}"
    queue = f"canvas-{uuid.uuid4().hex[:8]}"
    write_module(directory, name, TASKS.format(name=name, broker=broker, backend=backend, queue=queue))
    sys.path.insert(0, str(directory))
    try:
        module = importlib.import_module(name)
        with worker_process(name, cwd=directory, args=["-P", "threads", "-c", "4", "-Q", queue]):
            yield module
        module.app.close()
    finally:
        sys.path.remove(str(directory))


# -- the tutorial's patterns -------------------------------------------------------------------
def test_tutorial_chain(tasks):
    assert chain(tasks.add.s(1, 2), tasks.add.s(3)).apply_async().get(timeout=TIMEOUT) == 6


def test_tutorial_chord(tasks):
    assert chord([tasks.add.s(i, i) for i in range(10)])(tasks.tsum.s()).get(timeout=TIMEOUT) == 90


def test_tutorial_retry_with_countdown(tasks):
    assert tasks.flaky.delay(2).get(timeout=TIMEOUT) == 2


def test_tutorial_autoretry_with_retry_kwargs(tasks):
    assert tasks.auto_flaky.delay(2).get(timeout=TIMEOUT) == 2
    with pytest.raises(ConnectionError):
        tasks.auto_flaky.delay(5).get(timeout=TIMEOUT)


# -- chains ------------------------------------------------------------------------------------
def test_pipe_builds_a_chain_whose_result_links_back_to_the_first_step(tasks):
    result = (tasks.add.s(1, 1) | tasks.add.s(10) | tasks.add.s(100))()
    assert result.get(timeout=TIMEOUT) == 112
    assert result.parent.parent.get(timeout=TIMEOUT) == 2
    meta = tasks.app.backend.get(result.id)
    assert meta["parent_id"] == result.parent.id and meta["root_id"] == result.parent.parent.id


def test_immutable_step_ignores_the_previous_result(tasks):
    assert (tasks.add.s(1, 1) | tasks.add.si(5, 5))().get(timeout=TIMEOUT) == 10


def test_a_failing_step_fails_the_rest_of_the_chain_with_its_error(tasks):
    result = (tasks.add.s(1, 1) | tasks.fail.s() | tasks.add.s(1))()
    with pytest.raises(ValueError, match="boom"):
        result.get(timeout=TIMEOUT)


# -- groups ------------------------------------------------------------------------------------
def test_group_returns_results_in_order_with_the_group_id_in_each_meta(tasks):
    result = group(tasks.add.s(i, i) for i in range(6))()
    assert isinstance(result, GroupResult)
    assert result.get(timeout=TIMEOUT) == [0, 2, 4, 6, 8, 10]
    assert result.ready() and result.completed_count() == 6
    assert all(tasks.app.backend.get(r.id)["group_id"] == result.id for r in result.results)


def test_group_of_chains(tasks):
    result = group(tasks.add.s(1, 1) | tasks.add.s(1), tasks.add.s(2, 2) | tasks.add.s(2))()
    assert result.join(timeout=TIMEOUT) == [3, 6]


def test_group_reports_a_failed_member(tasks):
    result = group(tasks.add.s(1, 1), tasks.fail.s())()
    with pytest.raises(ValueError):
        result.get(timeout=TIMEOUT)
    assert result.get(timeout=TIMEOUT, propagate=False)[0] == 2
    assert result.completed_count() == 1


# -- chords ------------------------------------------------------------------------------------
def test_chord_body_gets_header_results_in_order(tasks):
    result = chord([tasks.add.s(i, 0) for i in range(8)], tasks.failed_id.s())()
    assert result.get(timeout=TIMEOUT) == list(range(8))
    assert isinstance(result.parent, GroupResult) and result.parent.join(timeout=TIMEOUT) == list(range(8))
    assert tasks.app.backend.get(result.parent.results[3].id)["group_id"] == result.parent.id


def test_failing_header_task_fails_the_body_with_a_chord_error_naming_it(tasks):
    errback_id = str(uuid.uuid4())
    body = tasks.tsum.s()
    body.link_error(tasks.failed_id.s().set(task_id=errback_id))
    result = chord([tasks.add.s(1, 1), tasks.fail.s()], body)()
    failing = result.parent.results[1]
    with pytest.raises(ChordError, match=rf"Dependency {failing.id} raised ValueError\('boom'\)"):
        result.get(timeout=TIMEOUT)
    assert tasks.app.AsyncResult(errback_id).get(timeout=TIMEOUT) == result.id


def test_group_piped_into_a_task_is_a_chord(tasks):
    assert (group(tasks.add.s(1, 1), tasks.add.s(2, 2)) | tasks.tsum.s())().get(timeout=TIMEOUT) == 6


def test_chain_through_a_group_runs_the_group_as_a_chord_header(tasks):
    workflow = tasks.add.s(1, 1) | group(tasks.add.s(1), tasks.add.s(2)) | tasks.tsum.s()
    assert workflow().get(timeout=TIMEOUT) == 7


def test_chord_inside_a_chain_passes_its_result_on(tasks):
    workflow = chain(tasks.add.s(1, 1), chord([tasks.add.s(1), tasks.add.s(2)], tasks.tsum.s()), tasks.add.s(10))
    assert workflow.apply_async().get(timeout=TIMEOUT) == 17


def test_chord_with_a_chain_in_its_header(tasks):
    result = chord([tasks.add.s(1, 1) | tasks.add.s(1), tasks.add.s(5, 5)], tasks.tsum.s())()
    assert result.get(timeout=TIMEOUT) == 13


def test_empty_chord_header_runs_the_body_with_an_empty_list(tasks):
    assert chord([], tasks.tsum.s())().get(timeout=TIMEOUT) == 0


# -- callbacks ---------------------------------------------------------------------------------
def test_link_sends_the_result_to_the_callback(tasks):
    callback_id = str(uuid.uuid4())
    tasks.add.apply_async((2, 3), link=tasks.add.s(10).set(task_id=callback_id)).get(timeout=TIMEOUT)
    assert tasks.app.AsyncResult(callback_id).get(timeout=TIMEOUT) == 15


def test_link_error_old_style_gets_the_failed_task_id(tasks):
    errback_id = str(uuid.uuid4())
    result = tasks.fail.apply_async(link_error=tasks.failed_id.s().set(task_id=errback_id))
    assert tasks.app.AsyncResult(errback_id).get(timeout=TIMEOUT) == result.id


def test_link_error_new_style_gets_request_exception_and_traceback(tasks):
    errback_id = str(uuid.uuid4())
    result = tasks.fail.apply_async(link_error=tasks.report.s().set(task_id=errback_id))
    assert tasks.app.AsyncResult(errback_id).get(timeout=TIMEOUT) == [result.id, "ValueError", True]


# -- map, starmap, chunks ----------------------------------------------------------------------
def test_map_and_starmap_run_in_one_task(tasks):
    assert tasks.tsum.map([[1, 2], [3, 4, 5]]).delay().get(timeout=TIMEOUT) == [3, 12]
    assert tasks.add.starmap([(1, 2), (3, 4)]).apply_async().get(timeout=TIMEOUT) == [3, 7]


def test_chunks_split_the_work_into_a_group(tasks):
    result = tasks.add.chunks(zip(range(10), range(10), strict=True), 4)()
    assert isinstance(result, GroupResult) and len(result) == 3
    assert result.get(timeout=TIMEOUT) == [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]]


def test_chord_in_a_chord_header_counts_through_its_body(tasks):
    inner = chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.tsum.s())
    assert chord([inner, tasks.add.s(3, 3)], tasks.tsum.s())().get(timeout=TIMEOUT) == 12


def test_group_inside_a_group_keeps_its_own_results(tasks):
    result = group(group(tasks.add.s(1, 1), tasks.add.s(2, 2)), tasks.add.s(3, 3))()
    assert result.get(timeout=TIMEOUT) == [[2, 4], 6]
