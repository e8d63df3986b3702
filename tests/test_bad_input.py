"""Bad input at the edges of sending and receiving: oversized messages and pickle.

* a message over ``task_message_max_size`` is refused at the call, with a message that says what
  to do, and nothing is recorded or queued;
* pickle is refused unless it is in ``accept_content``: at send time, at decode time, and by a
  worker that receives one anyway (dead-lettered, never unpickled).
"""

from __future__ import annotations

import base64
import os
import pickle

import orjson
import pytest

from celeriac import Celery, message
from celeriac.exceptions import ContentDisallowed, DecodeError, MessageTooLarge
from celeriac.message import Message

from .workers import worker_process, write_module

PICKLE = "application/x-python-serialize"


@pytest.fixture
def app(tmp_path):
    url = f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    app = Celery("bad-input", broker=url, backend=url, set_as_current=False)

    @app.task(name="bad.echo")
    def echo(value):
        return value

    yield app
    app.close()


def queued(app: Celery) -> int:
    return app.broker.stats(["celery"])[0].ready


def test_an_argument_over_the_default_limit_is_refused_before_sending(app):
    big = "x" * (app.conf.task_message_max_size + 1)
    with pytest.raises(MessageTooLarge) as caught:
        app.tasks["bad.echo"].apply_async((big,), task_id="too-big-1")
    text = str(caught.value)
    assert "bad.echo[too-big-1]" in text and "task_message_max_size" in text and "reference" in text
    assert queued(app) == 0
    assert not app.AsyncResult("too-big-1").is_known()


def test_send_task_is_held_to_the_same_limit(app):
    app.conf.task_message_max_size = 4096
    with pytest.raises(MessageTooLarge, match="over the limit of 4096"):
        app.send_task("bad.echo", ({"rows": list(range(2000))},))
    assert queued(app) == 0
    assert app.send_task("bad.echo", ({"rows": list(range(10))},)).id


class Marker:
    """Unpickling this creates a directory: proof that the payload was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def pickle_envelope(task_id: str, marker: str) -> bytes:
    """What a producer that accepts pickle would send: a base64 pickle body carrying a Marker."""
    envelope = orjson.loads(message.encode(Message(id=task_id, task="bad.echo", args=(1,))))
    envelope["content-type"] = PICKLE
    envelope["content-encoding"] = "binary"
    envelope["properties"]["body_encoding"] = "base64"
    envelope["body"] = base64.b64encode(pickle.dumps([[Marker(marker)], {}, {}])).decode()
    return orjson.dumps(envelope)


def test_a_pickle_task_is_refused_at_the_call_unless_accepted(app):
    with pytest.raises(ContentDisallowed, match="accept_content"):
        app.tasks["bad.echo"].apply_async((1,), serializer="pickle")
    assert queued(app) == 0


def test_decoding_a_pickle_message_without_accepting_it_never_unpickles(tmp_path):
    marker = tmp_path / "unpickled"
    with pytest.raises(DecodeError, match=r"pickle-1.*accept_content"):
        message.decode(pickle_envelope("pickle-1", str(marker)), frozenset({"application/json"}))
    assert not marker.exists()
    message.decode(pickle_envelope("pickle-2", str(marker)), frozenset({"application/json", PICKLE}))
    assert marker.exists()  # the same bytes are unpickled once pickle is accepted: the check above is real


WORKER_SOURCE = """
    import celeriac

    app = celeriac.Celery("ptasks")

    @app.task(name="bad.echo")
    def echo(value):
        return value
"""


def test_a_worker_dead_letters_a_pickle_message_it_does_not_accept(app, tmp_path):
    marker = tmp_path / "unpickled"
    app.broker.publish("celery", pickle_envelope("pickle-3", str(marker)), message_id="pickle-3")
    write_module(tmp_path, "ptasks", WORKER_SOURCE)
    env = {"CELERIAC_BROKER_URL": app.broker_url, "CELERIAC_RESULT_BACKEND": app.result_backend_url}
    with worker_process("ptasks", cwd=tmp_path, env=env, args=["-P", "solo"]) as worker:
        assert app.send_task("bad.echo", ("after",)).get(timeout=30) == "after"
        worker.wait_for_line("dead-lettered")
    reasons = {d.message_id: d.reason for d in app.broker.dead_letters("celery")}
    assert "accept_content" in reasons["pickle-3"]
    assert not marker.exists()
    assert app.AsyncResult("pickle-3").state == "FAILURE"
