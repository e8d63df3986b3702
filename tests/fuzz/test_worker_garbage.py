"""A real worker fed garbage on the SQLite broker keeps running and dead-letters every bad message.

The garbage is drawn from a seeded generator (``CELERIAC_FUZZ_SEED`` picks another seed); the seed
is part of every assertion message so a failure can be replayed.
"""

from __future__ import annotations

import os
import random
import string
from typing import Any

import orjson
import pytest

from celeriac import Celery

from ..workers import worker_process, write_module
from .strategies import valid_envelope

SEED = int(os.environ.get("CELERIAC_FUZZ_SEED", "20261121"))

SOURCE = """
    import celeriac

    app = celeriac.Celery("gtasks")

    @app.task(name="gtasks.add")
    def add(x, y):
        return x + y
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    write_module(tmp_path, "gtasks", SOURCE)
    url = f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    monkeypatch.setenv("CELERIAC_BROKER_URL", url)
    monkeypatch.setenv("CELERIAC_RESULT_BACKEND", url)
    app = Celery("client", broker=url, backend=url, set_as_current=False)
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url}
    yield app, lambda: worker_process("gtasks", cwd=tmp_path, env=env, args=["-P", "prefork", "-c", "1"])
    app.close()


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return rng.randint(-(2**40), 2**40)
    if kind == 2:
        return rng.random() * 1e6
    if kind == 3:
        return "".join(rng.choices(string.printable, k=rng.randrange(12)))
    if kind == 4:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 5:  # envelope-shaped; headers that are not a mapping are the xfail case below
        return {"headers": {str(random_json(rng, 3)): random_json(rng, 3)}, "body": random_json(rng, depth + 1)}
    return {str(random_json(rng, 3)): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def bad_envelope(rng: random.Random, task_id: str) -> dict[str, Any]:
    """A task envelope broken in a way decoding reports: body, eta, content type or task name."""
    envelope = valid_envelope(task_id)
    damage = rng.randrange(5)
    if damage == 0:
        envelope["body"] = "".join(rng.choices(string.printable, k=20))
    elif damage == 1:
        envelope["body"] = orjson.dumps(random_json(rng)).decode()
    elif damage == 2:
        envelope["headers"]["eta"] = "not a time"
    elif damage == 3:
        envelope["content-type"] = "application/x-python-serialize"
    else:
        envelope["headers"]["task"] = "gtasks.no_such_task"
    return envelope


def garbage(rng: random.Random, count: int) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for i in range(count):
        message_id = f"garbage-{i}"
        kind = i % 3
        if kind == 0:
            out[message_id] = rng.randbytes(rng.randrange(1, 200))
        elif kind == 1:
            out[message_id] = orjson.dumps(random_json(rng))
        else:
            out[message_id] = orjson.dumps(bad_envelope(rng, message_id))
    return out


def feed_and_check(project, payloads: dict[str, bytes]) -> None:
    """Publish the payloads, then a real task; the task completes and every payload is dead-lettered."""
    app, start_worker = project
    for message_id, data in payloads.items():
        app.broker.publish("celery", data, message_id=message_id)
    with start_worker() as worker:
        assert app.send_task("gtasks.add", (2, 3)).get(timeout=30) == 5, f"seed {SEED}"
        assert worker.proc.poll() is None
        dead = {d.message_id: d.reason for d in app.broker.dead_letters("celery", limit=1000)}
        assert "internal error" not in worker.output, f"seed {SEED}"
    missing = sorted(set(payloads) - set(dead))
    assert not missing, f"seed {SEED}: not dead-lettered: {missing}"
    assert all(dead[m] for m in payloads), f"seed {SEED}: a dead letter without a reason"


def test_a_worker_survives_random_garbage_and_dead_letters_all_of_it(project):
    feed_and_check(project, garbage(random.Random(SEED), 45))


def test_wrongly_typed_headers_are_dead_lettered_too(project):
    from .test_decode_regressions import ESCAPING

    feed_and_check(project, {f"typed-{i}": data for i, data in enumerate(ESCAPING.values())})
