"""Message decoding never fails with anything but DecodeError, names the task when it can, and is fast.

Long runs: ``.venv/bin/python benchmarks/fuzz_decode.py`` (see its docstring).
"""

from __future__ import annotations

import time

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celeriac import message
from celeriac.exceptions import DecodeError
from celeriac.message import Message

from .strategies import dropped_keys, examples, json_values, mutated_bodies, mutated_headers, valid_envelope

JSON = frozenset({"application/json"})
FAST = settings(max_examples=examples(150), deadline=500, suppress_health_check=[HealthCheck.too_slow])
PER_INPUT_SECONDS = 0.5


def task_id_of(envelope: object) -> str | None:
    """The id a user would expect to read in the error: a non-empty text ``headers.id``."""
    if isinstance(envelope, dict) and isinstance(envelope.get("headers"), dict):
        value = envelope["headers"].get("id")
        return value if isinstance(value, str) and value else None
    return None


def decode_or_explain(data: bytes, task_id: str | None = None) -> Message | DecodeError:
    """Decode ``data``; only a Message or a DecodeError naming ``task_id`` is an acceptable outcome."""
    started = time.perf_counter()
    try:
        outcome: Message | DecodeError = message.decode(data, JSON)
    except DecodeError as exc:
        outcome = exc
        if task_id is not None:
            assert task_id in str(exc), f"error does not name task {task_id!r}: {exc}"
    assert time.perf_counter() - started < PER_INPUT_SECONDS
    return outcome


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_a_message_or_a_decode_error(data):
    decode_or_explain(data)


@FAST
@given(json_values)
def test_arbitrary_json_gives_a_message_or_a_decode_error(value):
    assert isinstance(decode_or_explain(orjson.dumps(value)), DecodeError)


@FAST
@given(mutated_bodies())
def test_envelopes_with_a_bad_body_fail_with_the_task_id(envelope):
    outcome = decode_or_explain(orjson.dumps(envelope), task_id_of(envelope))
    if isinstance(outcome, Message):
        assert outcome.id == "fuzz-task-1"


@FAST
@given(st.lists(st.sampled_from(["headers", "properties", "body", "content-type"]), min_size=1, unique=True))
def test_envelopes_missing_parts_fail_with_a_reason(missing):
    envelope = dropped_keys(valid_envelope(), missing)
    outcome = decode_or_explain(orjson.dumps(envelope), task_id_of(envelope))
    if "headers" in missing or "body" in missing:
        assert isinstance(outcome, DecodeError)


@settings(max_examples=examples(150), deadline=500, derandomize=True)
@given(mutated_headers())
def test_envelopes_with_wrongly_typed_headers_fail_with_the_task_id(envelope):
    decode_or_explain(orjson.dumps(envelope), task_id_of(envelope))


def test_deeply_nested_arguments_fail_fast_with_the_task_id():
    envelope = valid_envelope("deep-1")
    depth = 5000
    envelope["body"] = "[" + "[" * depth + '{"__type__": "x"}' + "]" * depth + ', {}, {}]'
    assert isinstance(decode_or_explain(orjson.dumps(envelope), "deep-1"), DecodeError)


def test_a_large_garbage_payload_is_refused_quickly():
    data = b"{" * 2_000_000
    assert isinstance(decode_or_explain(data), DecodeError)
