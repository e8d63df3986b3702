"""The task message: one frozen dataclass, encoded as Celery's protocol v2.

On the wire a message is the kombu "virtual" envelope that Celery's Redis transport uses::

    {"body": ..., "content-type": ..., "content-encoding": "utf-8",
     "headers": {protocol v2 headers}, "properties": {...}}

The body is ``[args, kwargs, {"callbacks", "errbacks", "chain", "chord"}]``. For JSON the body is
the JSON text itself (no ``body_encoding``), which Celery also accepts; binary serializers use
``body_encoding: base64``. Brokers store these bytes and never look inside them.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import orjson

from . import serializers
from .exceptions import DecodeError, EncodeError, MessageTooLarge

ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"

_EMBED_KEYS = ("callbacks", "errbacks", "chain", "chord")


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_id() -> str:
    """A fresh task id: uuid4 text, as Celery makes them (122 random bits from ``os.urandom``).

    Formatted here rather than through ``uuid.UUID``, which costs twice as much, once per message.
    """
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def parse_time(value: Any) -> dt.datetime | None:
    """Parse an ISO-8601 eta/expires header; a naive value counts as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value))
        except ValueError as exc:
            raise DecodeError(f"bad timestamp {value!r}: {exc}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Message:
    """Everything a worker needs to run one task, independent of the broker."""

    id: str
    task: str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue: str = "celery"
    priority: int = 0
    eta: dt.datetime | None = None
    expires: dt.datetime | None = None
    retries: int = 0
    root_id: str | None = None
    parent_id: str | None = None
    group: str | None = None
    group_index: int | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    callbacks: Sequence[Mapping[str, Any]] | None = None
    errbacks: Sequence[Mapping[str, Any]] | None = None
    chain: Sequence[Mapping[str, Any]] | None = None
    chord: Mapping[str, Any] | None = None
    ignore_result: bool = False
    shadow: str | None = None
    origin: str = ORIGIN
    argsrepr: str | None = None
    kwargsrepr: str | None = None
    content_type: str = "application/json"
    extra_headers: Mapping[str, Any] = field(default_factory=dict)
    redelivered: bool = False

    def replace(self, **changes: Any) -> Message:
        """A copy with some fields changed (messages are immutable)."""
        return replace(self, **changes)

    @property
    def embed(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _EMBED_KEYS}

    def headers(self) -> dict[str, Any]:
        """Protocol v2 headers, with Celery's names."""
        headers = dict(self.extra_headers)
        headers.update(
            lang="py",
            task=self.task,
            id=self.id,
            shadow=self.shadow,
            eta=_iso(self.eta),
            expires=_iso(self.expires),
            group=self.group,
            group_index=self.group_index,
            retries=self.retries,
            timelimit=[self.time_limit, self.soft_time_limit],
            root_id=self.root_id or self.id,
            parent_id=self.parent_id,
            argsrepr=self.argsrepr if self.argsrepr is not None else safe_repr(tuple(self.args)),
            kwargsrepr=self.kwargsrepr if self.kwargsrepr is not None else safe_repr(dict(self.kwargs)),
            origin=self.origin,
            ignore_result=self.ignore_result,
            stamped_headers=None,
            stamps={},
        )
        return headers


def safe_repr(value: Any, limit: int = 1024) -> str:
    """``repr`` cut to ``limit`` characters, never raising (used for argsrepr and events)."""
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not stop a send
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def encode(message: Message, max_size: int | None = None) -> bytes:
    """Serialize a message to envelope bytes; raise EncodeError before anything is sent."""
    serializer = serializers.get(message.content_type)
    body = serializer.dumps([list(message.args), dict(message.kwargs), message.embed])
    properties: dict[str, Any] = {
        "correlation_id": message.id,
        "reply_to": "",
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": message.queue},
        "priority": message.priority,
        "delivery_tag": message.id,
    }
    envelope: dict[str, Any] = {
        "content-type": serializer.content_type,
        "content-encoding": "utf-8" if serializer.text else "binary",
        "headers": message.headers(),
        "properties": properties,
    }
    if serializer.text:
        envelope["body"] = body.decode("utf-8")
    else:
        envelope["body"] = base64.b64encode(body).decode("ascii")
        properties["body_encoding"] = "base64"
    try:
        data = serializers.right_sized(orjson.dumps(envelope))
    except TypeError as exc:
        raise EncodeError(f"task {message.id}: cannot encode headers: {exc}") from exc
    if max_size is not None and len(data) > max_size:
        raise MessageTooLarge(
            f"task {message.task}[{message.id}] message is {len(data)} bytes, over the limit of "
            f"{max_size} (task_message_max_size); pass a reference (a URL or a key) instead of the data"
        )
    return data


def peek_id(data: bytes) -> str | None:
    """Best-effort task id of an envelope that may not decode, for error messages."""
    try:
        headers = orjson.loads(data).get("headers") or {}
        return str(headers.get("id")) if headers.get("id") else None
    except Exception:
        return None


def decode(data: bytes, accepted: frozenset[str]) -> Message:
    """Parse envelope bytes into a Message; anything wrong is a DecodeError naming the task and reason."""
    headers, properties, content_type, raw = _envelope(data)
    task_id = headers.get("id") or "?"
    try:
        decoded = serializers.loads(raw, content_type, accepted)
    except Exception as exc:
        raise DecodeError(f"task {task_id}: {exc}") from exc
    try:
        return _from_parts(headers, properties, decoded, content_type)
    except DecodeError:
        raise
    except Exception as exc:  # a header of the wrong type: the message can never run
        raise DecodeError(f"task {task_id}: malformed headers: {exc!r}") from exc


def _envelope(data: bytes) -> tuple[Mapping[str, Any], Mapping[str, Any], str, bytes]:
    """The envelope's parts, checked for type; raises DecodeError."""
    try:
        envelope = orjson.loads(data)
        headers = envelope["headers"]
        properties = envelope.get("properties") or {}
        content_type = envelope.get("content-type", "application/json")
        body = envelope["body"]
        if not isinstance(headers, dict) or not isinstance(properties, dict) or not isinstance(content_type, str):
            raise TypeError("headers and properties must be objects and content-type a string")
        if properties.get("body_encoding") == "base64":
            raw = base64.b64decode(body)
        elif isinstance(body, str):
            raw = body.encode("utf-8")
        else:
            raise TypeError(f"body must be a string, got {type(body).__name__}")
    except Exception as exc:
        raise DecodeError(f"task {peek_id(data) or '?'}: not a task envelope: {exc!r}") from exc
    return headers, properties, content_type, raw


def _from_parts(headers: Mapping[str, Any], properties: Mapping[str, Any], body: Any, content_type: str) -> Message:
    task_id = headers.get("id")
    if "task" not in headers or not task_id:
        raise DecodeError(f"task {task_id or '?'}: missing 'task' or 'id' header (protocol v2 required)")
    if not isinstance(body, list) or len(body) != 3:
        raise DecodeError(f"task {task_id}: body must be [args, kwargs, embed], got {type(body).__name__}")
    args, kwargs, embed = body
    if not isinstance(args, list) or not isinstance(kwargs, dict) or not isinstance(embed, (dict, type(None))):
        raise DecodeError(f"task {task_id}: args must be a list and kwargs a dict")
    embed = embed or {}
    timelimit = headers.get("timelimit") or [None, None]
    if not isinstance(timelimit, (list, tuple)) or len(timelimit) != 2:
        raise DecodeError(f"task {task_id}: timelimit must be [hard, soft], got {timelimit!r:.80}")
    extra_names = headers.keys() - _NOT_EXTRA  # usually none: Celery's and celeriac's own headers
    extra = {k: headers[k] for k in extra_names} if extra_names else {}
    delivery_info = properties.get("delivery_info") or {}
    return _built(  # every field, in the order Message declares them
        str(task_id),
        str(headers["task"]),
        args,
        kwargs,
        str(delivery_info.get("routing_key") or "celery"),
        int(properties.get("priority") or 0),
        _time_header(headers, "eta"),
        _time_header(headers, "expires"),
        int(headers.get("retries") or 0),
        headers.get("root_id"),
        headers.get("parent_id"),
        headers.get("group"),
        headers.get("group_index"),
        timelimit[0],
        timelimit[1],
        embed.get("callbacks"),
        embed.get("errbacks"),
        embed.get("chain"),
        embed.get("chord"),
        bool(headers.get("ignore_result")),
        headers.get("shadow"),
        str(headers.get("origin") or ""),
        headers.get("argsrepr"),
        headers.get("kwargsrepr"),
        content_type,
        extra,
        bool(headers.get("redelivered") or delivery_info.get("redelivered")),
    )


_FIELD_SETTERS = tuple(getattr(Message, f.name).__set__ for f in fields(Message))


def _built(*values: Any) -> Message:
    """A Message from all its field values in declaration order.

    A worker decodes one per task; a frozen dataclass's ``__init__`` sets each of its 27 fields
    through ``object.__setattr__`` by name, which costs about twice as much as the slots' own setters.
    """
    msg = object.__new__(Message)
    for set_field, value in zip(_FIELD_SETTERS, values, strict=True):  # a missing field raises
        set_field(msg, value)
    return msg


def _time_header(headers: Mapping[str, Any], name: str) -> dt.datetime | None:
    try:
        return parse_time(headers.get(name))
    except DecodeError as exc:
        raise DecodeError(f"task {headers.get('id') or '?'}: {name}: {exc}") from exc


_HEADER_NAMES = frozenset(
    {"lang", "timelimit", "stamped_headers", "stamps", "replaced_task_nesting", "redelivered", "meth"}
)
_NOT_EXTRA = _HEADER_NAMES | {f.name for f in fields(Message)}  # headers that are not kept in extra_headers
