"""Each near-valid envelope that once escaped as a raw exception, as a named case."""

from __future__ import annotations

import orjson
import pytest

from celeriac import message
from celeriac.exceptions import DecodeError

from .strategies import valid_envelope

JSON = frozenset({"application/json"})


def envelope_with(part: str, **values: object) -> bytes:
    envelope = valid_envelope("case-1")
    if part == "envelope":
        envelope.update(values)
    else:
        envelope[part].update(values)
    return orjson.dumps(envelope)


ESCAPING = {
    "headers is text": envelope_with("envelope", headers="x"),
    "headers is a list": envelope_with("envelope", headers=["id", "case-1"]),
    "delivery_info is text": envelope_with("properties", delivery_info="celery"),
    "priority is a word": envelope_with("properties", priority="high"),
    "priority is a list": envelope_with("properties", priority=[1]),
    "retries is a word": envelope_with("headers", retries="many"),
    "timelimit is a number": envelope_with("headers", timelimit=5),
    "timelimit has one item": envelope_with("headers", timelimit=[1]),
}


@pytest.mark.parametrize("data", list(ESCAPING.values()), ids=list(ESCAPING))
def test_wrongly_typed_envelope_fields_give_a_decode_error(data):
    with pytest.raises(DecodeError):
        message.decode(data, JSON)


@pytest.mark.parametrize("field", ["eta", "expires"])
def test_a_bad_timestamp_error_names_the_task(field):
    with pytest.raises(DecodeError, match="case-1"):
        message.decode(envelope_with("headers", **{field: "next tuesday"}), JSON)


def test_a_bad_body_error_names_the_task():
    with pytest.raises(DecodeError, match="case-1"):
        message.decode(envelope_with("envelope", body="{not json"), JSON)
