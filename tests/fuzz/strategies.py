"""Hypothesis strategies for bad input: arbitrary JSON, and task envelopes that are almost right."""

from __future__ import annotations

import os
from typing import Any

import orjson
from hypothesis import strategies as st

from celeriac import message
from celeriac.message import Message

SCALE = int(os.environ.get("CELERIAC_FUZZ_SCALE", "1"))


def examples(count: int) -> int:
    """Examples per property: modest in the normal suite, ``CELERIAC_FUZZ_SCALE`` times more for long runs."""
    return count * SCALE


# JSON that orjson can write: 64-bit integers, finite floats, text keys.
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)

HEADER_KEYS = ["id", "task", "eta", "expires", "retries", "timelimit", "root_id", "parent_id", "group",
               "group_index", "argsrepr", "kwargsrepr", "origin", "shadow", "ignore_result", "lang"]
PROPERTY_KEYS = ["priority", "delivery_info", "body_encoding", "correlation_id", "delivery_tag"]
ENVELOPE_KEYS = ["headers", "properties", "body", "content-type", "content-encoding"]


def valid_envelope(task_id: str = "fuzz-task-1") -> dict[str, Any]:
    """A well-formed envelope, decoded to a dict so parts of it can be changed."""
    msg = Message(id=task_id, task="proj.add", args=(2, 3), kwargs={"k": "v"})
    return dict(orjson.loads(message.encode(msg)))


@st.composite
def mutated_headers(draw: st.DrawFn) -> dict[str, Any]:
    """An envelope whose headers or properties carry wrong types, or are not mappings at all."""
    envelope = valid_envelope()
    where = draw(st.sampled_from(["headers", "properties", "whole-headers", "whole-properties"]))
    if where == "whole-headers":
        envelope["headers"] = draw(json_values.filter(lambda v: not isinstance(v, dict)))
    elif where == "whole-properties":
        envelope["properties"] = draw(json_values.filter(lambda v: not isinstance(v, dict)))
    else:
        keys = HEADER_KEYS if where == "headers" else PROPERTY_KEYS
        part = envelope[where]
        for key in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3, unique=True)):
            if key == "id":
                continue  # keep the id so the error can be checked for it
            part[key] = draw(json_values)
    return envelope


@st.composite
def mutated_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """An envelope with a valid header block and a body (or content type) that is wrong."""
    envelope = valid_envelope()
    choice = draw(st.sampled_from(["json-text", "raw-text", "value", "content-type", "base64"]))
    if choice == "json-text":
        envelope["body"] = orjson.dumps(draw(json_values)).decode()
    elif choice == "raw-text":
        envelope["body"] = draw(st.text(max_size=60))
    elif choice == "value":
        envelope["body"] = draw(json_values)
    elif choice == "content-type":
        envelope["content-type"] = draw(json_values)
    else:
        envelope["properties"]["body_encoding"] = "base64"
        envelope["body"] = draw(st.text(alphabet="ABCDabcd0123+/=!", max_size=40))
    return envelope


def dropped_keys(envelope: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    return {k: v for k, v in envelope.items() if k not in keys}
