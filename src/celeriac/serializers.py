"""Serializers: JSON (default, orjson), msgpack (optional), pickle (only when accepted).

JSON carries datetimes, dates, times, decimals, UUIDs and bytes as kombu's tagged objects
(``{"__type__": "datetime", "__value__": "..."}``) so values round-trip and Celery peers read them.
"""

from __future__ import annotations

import base64
import datetime as dt
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from .exceptions import ContentDisallowed, DecodeError, EncodeError

_PLAIN = (str, int, float, bool, type(None))
_PLAIN_TYPES = frozenset(_PLAIN)


def _encode_bytes(value: bytes) -> dict[str, Any]:
    try:
        return {"__type__": "bytes", "__value__": value.decode("utf-8")}
    except UnicodeDecodeError:
        return {"__type__": "base64", "__value__": base64.b64encode(value).decode("ascii")}


def _to_decimal(value: str) -> Any:
    from decimal import Decimal  # imported on first use: most processes never meet a decimal

    return Decimal(value)


_TAGGERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    dt.datetime: lambda v: {"__type__": "datetime", "__value__": v.isoformat()},
    dt.date: lambda v: {"__type__": "date", "__value__": v.isoformat()},
    dt.time: lambda v: {"__type__": "time", "__value__": v.isoformat()},
    uuid.UUID: lambda v: {"__type__": "uuid", "__value__": {"hex": v.hex}},
    bytes: _encode_bytes,
    bytearray: lambda v: _encode_bytes(bytes(v)),
}

_UNTAGGERS: dict[str, Callable[[Any], Any]] = {
    "datetime": dt.datetime.fromisoformat,
    "date": lambda v: dt.date.fromisoformat(v[:10]),
    "time": dt.time.fromisoformat,
    "decimal": _to_decimal,
    "uuid": lambda v: uuid.UUID(hex=v["hex"] if isinstance(v, dict) else v),
    "bytes": lambda v: v.encode("utf-8"),
    "base64": lambda v: base64.b64decode(v),
}


def tag(value: Any) -> Any:
    """Return ``value`` with every non-JSON type replaced by its tagged form."""
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return value
    if kind is list or kind is tuple:
        return [item if type(item) in _PLAIN_TYPES else tag(item) for item in value]
    if kind is dict:
        return {key: item if type(item) in _PLAIN_TYPES else tag(item) for key, item in value.items()}
    for base in kind.__mro__:
        tagger = _TAGGERS.get(base)
        if tagger is not None:
            return tagger(value)
    decimal = sys.modules.get("decimal")  # no Decimal can exist before the module is imported
    if decimal is not None and isinstance(value, decimal.Decimal):
        return {"__type__": "decimal", "__value__": str(value)}
    if isinstance(value, (list, tuple)):
        return [tag(item) for item in value]
    if isinstance(value, dict):
        return {key: tag(item) for key, item in value.items()}
    if isinstance(value, _PLAIN):
        return value
    raise EncodeError(f"Object of type {kind.__name__} is not JSON serializable: {value!r:.80}")


def untag(value: Any) -> Any:
    """Undo :func:`tag` on a decoded JSON value."""
    if type(value) is list:
        return [untag(item) for item in value]
    if type(value) is dict:
        kind = value.get("__type__")
        if kind is not None and "__value__" in value and len(value) == 2:
            untagger = _UNTAGGERS.get(kind)
            if untagger is not None:
                return untagger(value["__value__"])
        return {key: untag(item) for key, item in value.items()}
    return value


def right_sized(data: bytes) -> bytes:
    """A copy of orjson's output that owns only its own length.

    orjson returns its working buffer (at least 4 KiB, whatever the length), so every encoded
    message, result record or event that is kept a while (a group's messages until the group is
    sent, a worker's events until they are flushed) would hold that much. A group of 20,000 tasks
    grew the sending process by about 170 MiB before this copy.
    """
    return b"".join((data, b""))


def _plain_json(value: Any) -> bool:
    """Whether ``value`` holds only JSON's own types, so that :func:`tag` would return an equal copy."""
    kind = type(value)
    if kind is dict:
        for item in value.values():
            if type(item) not in _PLAIN_TYPES and not _plain_json(item):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:
            if type(item) not in _PLAIN_TYPES and not _plain_json(item):
                return False
        return True
    return kind in _PLAIN_TYPES


def json_dumps(value: Any) -> bytes:
    """Encode to JSON bytes with kombu's type tags.

    Most messages and results hold nothing to tag; checking that first costs a third of copying
    them through :func:`tag`, which a message and its result record would otherwise each pay.
    """
    try:
        return right_sized(orjson.dumps(value if _plain_json(value) else tag(value), option=orjson.OPT_NON_STR_KEYS))
    except EncodeError:
        raise
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise EncodeError(str(exc)) from exc


def json_loads(data: bytes | str) -> Any:
    """Decode JSON bytes, turning tagged objects back into Python values."""
    value = orjson.loads(data)
    tagged = '"__type__"' in data if isinstance(data, str) else b'"__type__"' in data
    return untag(value) if tagged else value


def _msgpack_dumps(value: Any) -> bytes:
    import msgpack

    return bytes(msgpack.packb(tag(value), use_bin_type=True))


def _msgpack_loads(data: bytes) -> Any:
    import msgpack

    return untag(msgpack.unpackb(data, raw=False))


def _pickle_dumps(value: Any) -> bytes:
    import pickle

    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _pickle_loads(data: bytes) -> Any:
    import pickle

    return pickle.loads(data)  # noqa: S301 - only reached when the user put pickle in accept_content


@dataclass(frozen=True, slots=True)
class Serializer:
    """One registered serializer: its name, MIME type and codec."""

    name: str
    content_type: str
    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]
    text: bool


_REGISTRY: dict[str, Serializer] = {}


def register(serializer: Serializer) -> None:
    """Add a serializer; it is usable once its name is in ``accept_content``."""
    _REGISTRY[serializer.name] = serializer
    _REGISTRY[serializer.content_type] = serializer


register(Serializer("json", "application/json", json_dumps, json_loads, text=True))
register(Serializer("msgpack", "application/x-msgpack", _msgpack_dumps, _msgpack_loads, text=False))
register(Serializer("pickle", "application/x-python-serialize", _pickle_dumps, _pickle_loads, text=False))


def get(name_or_type: str) -> Serializer:
    """Look up a serializer by name or content type."""
    try:
        return _REGISTRY[name_or_type]
    except KeyError:
        known = sorted({s.name for s in _REGISTRY.values()})
        raise ContentDisallowed(f"unknown serializer {name_or_type!r}; known: {', '.join(known)}") from None


def accepted_types(accept: Iterable[str]) -> frozenset[str]:
    """Content types allowed by an ``accept_content`` list of names or MIME types."""
    return frozenset(get(item).content_type for item in accept)


def check_accepted(content_type: str, accepted: frozenset[str]) -> Serializer:
    """Return the serializer for ``content_type`` if it is accepted, else raise ContentDisallowed."""
    if content_type not in accepted:
        raise ContentDisallowed(
            f"refusing content of type {content_type!r}; add its serializer to accept_content to allow it"
        )
    return get(content_type)


def loads(data: bytes, content_type: str, accepted: frozenset[str]) -> Any:
    """Decode ``data`` if its type is accepted, raising DecodeError with the reason otherwise."""
    serializer = check_accepted(content_type, accepted)
    try:
        return serializer.loads(data)
    except Exception as exc:  # any codec failure is a decode failure
        raise DecodeError(f"cannot decode {serializer.name} payload: {exc}") from exc
