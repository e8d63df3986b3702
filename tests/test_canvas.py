"""Canvas without workers: what goes on the wire, ids fixed in advance, and eager mode."""

from __future__ import annotations

import pytest

from celeriac import Celery, GroupResult, chain, chord, group, message, signature
from celeriac.canvas import after_failure, after_success
from celeriac.exceptions import ChordError, ImproperlyConfigured
from celeriac.workflows import from_dict, plain


@pytest.fixture
def app(memory_url):
    app = Celery("canvastest", broker=memory_url, set_as_current=False)

    @app.task(name="canvastest.add")
    def add(x, y):
        return x + y

    @app.task(name="canvastest.tsum")
    def tsum(numbers):
        return sum(numbers)

    @app.task(name="canvastest.fail")
    def fail(*args):
        raise ValueError("boom")

    @app.task(name="canvastest.new_style")
    def new_style(request, exc, traceback):
        return request

    app.finalize()
    return app


def task(app, name):
    return app.tasks[f"canvastest.{name}"]


def queued(app) -> list[message.Message]:
    deliveries = app.broker.fetch(["celery"], 100, consumer="test", timeout=0)
    app.broker.ack(deliveries)
    return [message.decode(d.payload, app.accepted_content) for d in deliveries]


# -- signatures --------------------------------------------------------------------------------
def test_signature_is_a_dict_with_celerys_keys(app):
    sig = task(app, "add").s(2, y=3)
    assert dict(sig) == {"task": "canvastest.add", "args": [2], "kwargs": {"y": 3}, "options": {},
                         "subtask_type": None, "immutable": False}
    assert task(app, "add").si(1, 2)["immutable"] is True


def test_signature_from_a_name_and_back_from_a_dict(app):
    sig = signature("canvastest.add", args=(1, 2), app=app)
    again = signature(plain(sig), app=app)
    assert again == sig and again.apply().get() == 3


def test_nested_workflows_survive_a_round_trip_through_dicts(app):
    add, tsum = task(app, "add"), task(app, "tsum")
    workflow = chain(add.s(1, 1), chord([add.s(1), add.s(2)], tsum.s()), group(add.s(1), add.s(2)))
    copy = from_dict(plain(workflow), app)
    assert isinstance(copy, chain) and isinstance(copy.tasks[1], chord) and isinstance(copy.tasks[2], group)
    assert plain(copy) == plain(workflow)


# -- what is sent ------------------------------------------------------------------------------
def test_chain_sends_the_first_step_carrying_the_rest_in_reverse(app):
    add = task(app, "add")
    result = chain(add.s(1, 2), add.s(3), add.s(4)).apply_async()
    (first,) = queued(app)
    assert (first.task, list(first.args)) == ("canvastest.add", [1, 2])
    assert [step["args"] for step in first.chain] == [[4], [3]]
    assert first.chain[0]["options"]["task_id"] == result.id
    assert result.parent.id == first.chain[1]["options"]["task_id"]
    assert result.parent.parent.id == first.id


def test_group_sends_each_task_with_group_id_and_index(app):
    add = task(app, "add")
    result = group(add.s(i, i) for i in range(3)).apply_async()
    sent = queued(app)
    assert [(m.group, m.group_index) for m in sent] == [(result.id, 0), (result.id, 1), (result.id, 2)]
    assert [m.id for m in sent] == [r.id for r in result.results]
    assert app.backend.get(result.results[0].id)["group_id"] == result.id


def test_chord_counts_its_header_and_embeds_the_body(app):
    add, tsum = task(app, "add"), task(app, "tsum")
    result = chord([add.s(1, 1), add.s(2, 2)])(tsum.s())
    sent = queued(app)
    assert {m.group for m in sent} == {result.parent.id}
    assert all(m.chord["task"] == "canvastest.tsum" and m.chord["options"]["task_id"] == result.id for m in sent)


def test_reusing_a_signature_in_two_workflows_gives_distinct_ids(app):
    step = task(app, "add").s(1, 1)
    first, second = group(step, step).apply_async(), chain(step, step).apply_async()
    ids = [r.id for r in first.results] + [second.id, second.parent.id]
    assert len(set(ids)) == 4 and step.id is None


def test_chord_needs_a_result_backend(memory_url):
    app = Celery("nobackend", broker=memory_url, backend="disabled://", set_as_current=False)
    add = app.task(name="nobackend.add")(lambda x, y: x + y)
    with pytest.raises(ImproperlyConfigured, match="result backend"):
        chord([add.s(1, 1)], add.s(1))()


# -- what the worker does after a task (the hooks it calls) -------------------------------------
def test_the_last_header_result_sends_the_body_with_all_results(app):
    add, tsum = task(app, "add"), task(app, "tsum")
    result = chord([add.s(1, 1), add.s(2, 2)])(tsum.s())
    first, second = queued(app)
    after_success(app, second, 4)
    assert queued(app) == []
    after_success(app, first, 2)
    (body,) = queued(app)
    assert (body.id, list(body.args), body.parent_id) == (result.id, [[2, 4]], first.id)


def test_a_failed_header_task_fails_the_body_once(app):
    add, tsum = task(app, "add"), task(app, "tsum")
    body = tsum.s()
    body.link_error(add.s(0))
    result = chord([add.s(1, 1), add.s(2, 2)], body)()
    first, second = queued(app)
    after_failure(app, first, ValueError("boom"))
    after_failure(app, second, ValueError("again"))
    with pytest.raises(ChordError, match=rf"Dependency {first.id} raised ValueError\('boom'\)"):
        result.get(timeout=1)
    (errback,) = queued(app)
    assert errback.task == "canvastest.add" and list(errback.args) == [result.id, 0]


def test_new_style_errback_gets_request_exception_dict_and_traceback(app):
    errback = task(app, "new_style").s()
    task(app, "fail").apply_async(link_error=errback)
    (failed,) = queued(app)
    try:
        raise ValueError("boom")
    except ValueError as exc:
        after_failure(app, failed, exc)
    (call,) = queued(app)
    request, exc_dict, traceback = call.args
    assert request["id"] == failed.id and request["task"] == "canvastest.fail"
    assert exc_dict == {"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}
    assert "ValueError: boom" in traceback


# -- eager mode --------------------------------------------------------------------------------
def test_eager_mode_runs_whole_workflows_in_process(app):
    app.conf.task_always_eager = True
    add, tsum = task(app, "add"), task(app, "tsum")
    assert chain(add.s(1, 2), add.s(3)).apply_async().get() == 6
    assert chord([add.s(i, i) for i in range(10)])(tsum.s()).get() == 90
    assert group(add.s(1, 1), add.s(2, 2))().get() == [2, 4]
    assert add.chunks(zip(range(4), range(4), strict=True), 2)().get() == [[0, 2], [4, 6]]
    assert add.starmap([(1, 1)]).apply_async().get() == [2]


def test_group_result_results_and_parent(app):
    add = task(app, "add")
    result = (add.s(1, 1) | group(add.s(1), add.s(2))).freeze()
    assert isinstance(result, GroupResult) and len(result) == 2
    assert result.parent is not None and result.parent.id not in {r.id for r in result.results}


def test_link_given_when_sending_a_chain_goes_to_its_last_step(app):
    add = task(app, "add")
    result = chain(add.s(1, 1), add.s(2)).apply_async(link=add.s(100), link_error=add.s(0))
    (first,) = queued(app)
    last = first.chain[0]
    assert first.callbacks is None and [cb["args"] for cb in last["options"]["link"]] == [[100]]
    assert first.errbacks[0]["args"] == [0] and last["options"]["link_error"][0]["args"] == [0]
    assert last["options"]["task_id"] == result.id


def test_link_given_when_sending_a_chord_goes_to_its_body(app):
    add, tsum = task(app, "add"), task(app, "tsum")
    chord([add.s(1, 1), add.s(2, 2)], tsum.s()).apply_async(link=add.s(100))
    sent = queued(app)
    assert all(m.callbacks is None and m.chord["options"]["link"][0]["args"] == [100] for m in sent)
