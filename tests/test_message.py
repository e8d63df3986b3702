"""Messages follow Celery's protocol v2 and round-trip rich types; bad bytes give clear errors."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import tracemalloc
import uuid
from decimal import Decimal

import orjson
import pytest

from celeriac import message, serializers
from celeriac.exceptions import DecodeError
from celeriac.message import Message

JSON = frozenset({"application/json"})


def test_headers_and_body_have_celery_protocol_v2_shape():
    msg = Message(id="t1", task="proj.add", args=(2, 3), kwargs={}, time_limit=10, soft_time_limit=5)
    envelope = orjson.loads(message.encode(msg))
    headers = envelope["headers"]
    assert headers["task"] == "proj.add" and headers["id"] == "t1" and headers["lang"] == "py"
    assert headers["root_id"] == "t1" and headers["parent_id"] is None
    assert headers["timelimit"] == [10, 5]
    assert headers["argsrepr"] == "(2, 3)" and headers["kwargsrepr"] == "{}"
    assert orjson.loads(envelope["body"]) == [[2, 3], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    assert envelope["properties"]["delivery_info"] == {"exchange": "", "routing_key": "celery"}


def test_rich_argument_types_round_trip():
    args = (dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC), dt.date(2024, 2, 29), Decimal("9.99"),
            uuid.uuid4(), b"bytes\x00\xff")
    msg = Message(id="t2", task="x", args=args, eta=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    back = message.decode(message.encode(msg), JSON)
    assert tuple(back.args) == args
    assert back.eta == msg.eta


def test_every_field_survives_a_round_trip_in_its_own_place():
    when = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    msg = Message(
        id="id-1", task="proj.every", args=[1, "a"], kwargs={"k": 2}, queue="q-9", priority=7, eta=when,
        expires=when + dt.timedelta(days=1), retries=3, root_id="root-1", parent_id="parent-1", group="group-1",
        group_index=4, time_limit=30.0, soft_time_limit=20.0, callbacks=[{"task": "cb"}], errbacks=[{"task": "eb"}],
        chain=[{"task": "next"}], chord={"task": "join"}, ignore_result=True, shadow="shadow-name",
        origin="gen1@host", argsrepr="(1, 'a')", kwargsrepr="{'k': 2}", extra_headers={"tenant": "t-5"},
    )
    back = message.decode(message.encode(msg), JSON)
    assert back == msg
    assert back.extra_headers == {"tenant": "t-5"} and back.queue == "q-9" and back.shadow == "shadow-name"
    with pytest.raises(dataclasses.FrozenInstanceError):
        back.task = "other"  # type: ignore[misc]


def test_rich_values_deep_inside_plain_containers_are_tagged_and_plain_ones_are_not():
    when = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    ident = uuid.uuid4()
    kwargs = {"rows": [{"id": 1, "seen": [when, None]}, ("x", {"ref": ident})], "note": "plain"}
    msg = Message(id="t3", task="x", args=([1, [2.5, True]],), kwargs=kwargs)
    data = message.encode(msg)
    body = orjson.loads(orjson.loads(data)["body"])
    assert body[1]["rows"][0]["seen"][0] == {"__type__": "datetime", "__value__": when.isoformat()}
    assert body[1]["rows"][1][1]["ref"]["__type__"] == "uuid"
    assert body[0] == [[1, [2.5, True]]]
    back = message.decode(data, JSON)
    assert back.kwargs == {"rows": [{"id": 1, "seen": [when, None]}, ["x", {"ref": ident}]], "note": "plain"}


def test_a_celery_style_base64_body_is_accepted():
    body = orjson.dumps([[1], {"k": "v"}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    envelope = {"body": base64.b64encode(body).decode(), "content-type": "application/json", "content-encoding": "utf-8",
                "headers": {"task": "proj.f", "id": "cel-1"}, "properties": {"body_encoding": "base64", "delivery_tag": "x"}}
    msg = message.decode(orjson.dumps(envelope), JSON)
    assert (msg.task, tuple(msg.args), dict(msg.kwargs)) == ("proj.f", (1,), {"k": "v"})


@pytest.mark.parametrize("data, reason", [
    (b"not json at all", "not a task envelope"),
    (orjson.dumps({"headers": {"id": "a1"}, "body": "[[], {}, {}]"}), "missing 'task'"),
    (orjson.dumps({"headers": {"id": "a2", "task": "t"}, "body": "[[], {}]"}), "body must be [args, kwargs, embed]"),
    (orjson.dumps({"headers": {"id": "a3", "task": "t"}, "body": "{{{"}), "a3"),
])
def test_undecodable_messages_name_the_task_and_reason(data, reason):
    with pytest.raises(DecodeError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        message.decode(data, JSON)


def test_refused_content_type_names_accept_content():
    msg = Message(id="p1", task="t", content_type="application/x-python-serialize")
    with pytest.raises(DecodeError, match="accept_content"):
        message.decode(message.encode(msg), JSON)


def test_msgpack_round_trips_when_accepted():
    msg = Message(id="m1", task="t", args=(1, "two", b"\x00"), content_type="application/x-msgpack")
    back = message.decode(message.encode(msg), serializers.accepted_types(["json", "msgpack"]))
    assert tuple(back.args) == (1, "two", b"\x00")


def test_new_ids_are_distinct_uuid4_text():
    ids = [message.new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for task_id in ids:
        parsed = uuid.UUID(task_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == task_id
    # the variant digit keeps two random bits: all four of its values turn up
    assert {task_id[19] for task_id in ids} == set("89ab")


def test_encoded_messages_and_records_hold_only_their_own_bytes():
    """What a group keeps until it is sent: orjson's working buffer is several KiB whatever the length."""
    msg = Message(id="t9", task="proj.f", args=(1, 2))
    record = {"task_id": "t9", "status": "PENDING", "result": None, "children": []}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [message.encode(msg) for _ in range(1000)] + [serializers.json_dumps(record) for _ in range(1000)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 2 * sum(len(data) + 40 for data in kept), held
