"""Names, arguments and header rules of the RabbitMQ layout (pure: no I/O).

Every name starts with the transport option ``queue_prefix`` (empty by default)::

    <q>                       work queue, durable; classic with x-max-priority=10, or quorum
    celeriac.dlx              direct exchange; routing key = work queue name -> <q>.dead
    <q>.dead                  dead letters of <q> (x-celeriac-reason header), never consumed
    celeriac.delay.<k>        topic exchange of delay level k (k = 0 .. DELAY_LEVELS-1)
    celeriac.delay.<k>.wait   queue, x-message-ttl = 2**k s, dead-letters into level k-1
    celeriac.delay.deliver    topic exchange; <q> bound with DELAY_LEVELS "*" words then <q>
    celeriac.stream.<s>       stream queue (x-queue-type=stream) for events and control
    celeriac.box.<b>          reply mailbox, x-expires after idling

A delayed message carries its delay in whole seconds as binary digits, most significant first, in
its routing key: ``1.0.1.<q>`` waits 4 s + 1 s. Level k routes a ``1`` in its digit to its wait queue
and a ``0`` straight on to level k-1, so the server alone moves it to ``<q>`` when due.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: 2**28 s is about 8.5 years; longer delays are clamped to it
DELAY_LEVELS = 28
MAX_PRIORITY = 10

H_DELIVERED = "x-celeriac-delivered"  # deliveries already counted before the last republish
H_QUEUE = "x-celeriac-queue"  # logical queue name (without prefix)
H_ENQUEUED = "x-celeriac-enqueued"  # epoch milliseconds (an integer) of the first publish
H_REASON = "x-celeriac-reason"
H_FAILED_AT = "x-celeriac-failed-at"  # epoch milliseconds
# times are integers: the client sends Python floats as 32-bit floats, minutes off for epochs
H_DEAD_ID = "x-celeriac-dead-id"


@dataclass(frozen=True, slots=True)
class Topology:
    """The names and arguments for one prefix and queue type."""

    prefix: str = ""
    queue_type: str = "classic"

    def queue(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def logical(self, real: str) -> str:
        return real[len(self.prefix) :] if real.startswith(self.prefix) else real

    def queue_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"x-dead-letter-exchange": self.dlx}
        if self.queue_type == "quorum":
            args["x-queue-type"] = "quorum"
        else:
            args["x-max-priority"] = MAX_PRIORITY
        return args

    @property
    def dlx(self) -> str:
        return f"{self.prefix}celeriac.dlx"

    def dead_queue(self, name: str) -> str:
        return f"{self.prefix}{name}.dead"

    def plain_args(self) -> dict[str, Any]:
        return {"x-queue-type": "quorum"} if self.queue_type == "quorum" else {}

    def delay_exchange(self, level: int) -> str:
        return f"{self.prefix}celeriac.delay.{level}" if level >= 0 else f"{self.prefix}celeriac.delay.deliver"

    def delay_queue(self, level: int) -> str:
        return f"{self.prefix}celeriac.delay.{level}.wait"

    def delay_queue_args(self, level: int) -> dict[str, Any]:
        return {
            **self.plain_args(),
            "x-message-ttl": (2**level) * 1000,
            "x-dead-letter-exchange": self.delay_exchange(level - 1),
        }

    def stream(self, name: str) -> str:
        return f"{self.prefix}celeriac.stream.{name}"

    def mailbox(self, name: str) -> str:
        return f"{self.prefix}celeriac.box.{name}"


def delay_seconds(eta: float | None, now: float) -> int:
    """Whole seconds to wait, rounded up so nothing runs early; 0 means publish ready."""
    if eta is None or eta <= now:
        return 0
    return min(math.ceil(eta - now), 2**DELAY_LEVELS - 1)


def delay_routing_key(seconds: int, real_queue: str) -> str:
    digits = format(seconds, f"0{DELAY_LEVELS}b")
    return ".".join(digits) + "." + real_queue


def delay_bindings(level: int) -> tuple[str, str]:
    """Routing patterns (to the wait queue, straight on) for the digit of ``level``."""
    before = "*." * (DELAY_LEVELS - 1 - level)
    return f"{before}1.#", f"{before}0.#"


def deliver_binding(real_queue: str) -> str:
    return "*." * DELAY_LEVELS + real_queue


def queue_of_delay_key(routing_key: str) -> str:
    """The target queue named in a delay routing key (a plain key is the queue itself)."""
    parts = routing_key.split(".", DELAY_LEVELS)
    if len(parts) > DELAY_LEVELS and all(p in ("0", "1") for p in parts[:DELAY_LEVELS]):
        return parts[-1]
    return routing_key


def stream_args(maxlen: int, max_age: float, avg_bytes: int) -> dict[str, Any]:
    """Retention is by bytes and age, per segment: ``maxlen`` becomes a byte budget."""
    max_bytes = max(1 << 20, maxlen * avg_bytes)
    return {
        "x-queue-type": "stream",
        "x-max-length-bytes": max_bytes,
        "x-max-age": f"{max(1, int(max_age))}s",
        "x-stream-max-segment-size-bytes": max(1 << 18, max_bytes // 8),
    }


def delivery_count(headers: Mapping[str, Any] | None, redelivered: bool) -> int:
    """Deliveries of a message including this one.

    ``x-celeriac-delivered`` carries the count over republishes (release, expired leases). Quorum
    queues add ``x-delivery-count`` (returns to the queue); on classic queues the ``redelivered``
    flag says at least one more delivery ended without a settle.
    """
    headers = headers or {}
    counted = int(headers.get(H_DELIVERED, 0) or 0)
    if "x-delivery-count" in headers:
        return counted + int(headers["x-delivery-count"] or 0) + 1
    return counted + (2 if redelivered else 1)
