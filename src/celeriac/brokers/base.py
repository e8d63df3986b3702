"""The broker contract: a few verbs in queue terms, implemented natively by each broker.

Semantics every broker keeps (``tests/contract/test_broker_contract.py`` checks them):

* ``publish`` is durable when it returns. ``eta`` (epoch seconds) keeps the message invisible
  until then, inside the broker; priority 0-9, higher runs first; FIFO within a priority.
* ``fetch`` blocks up to ``timeout`` for work and claims up to ``limit`` messages for
  ``consumer`` with a lease of ``lease`` seconds. Each claim bumps the message's delivery count.
  A message is never held by two consumers at once while its lease is alive.
* ``ack`` removes settled messages. ``release`` puts unstarted messages back, ready now (or after
  ``delay``), without counting a delivery. ``renew`` extends leases of running messages.
* ``reclaim`` makes every message leased by a consumer known to be dead ready at once.
  Leases that are not renewed expire by themselves, so a consumer whose death nobody saw is
  recovered after its lease.
* ``dead_letter`` moves a message to the dead-letter store with a reason; ``requeue_dead`` sends
  it back to its queue.
* Streams (``stream_append``/``stream_read``) are durable, bounded logs read by cursor: events and
  broadcast control commands. Mailboxes (``mailbox_put``/``mailbox_take``) carry replies.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Delivery:
    """One claimed message. ``tag`` is the broker's handle for ack, release and renew."""

    queue: str
    payload: bytes
    message_id: str
    tag: str
    delivery_count: int = 1
    priority: int = 0


class PendingFetch(Protocol):
    """A fetch under way: its messages are leased to the consumer from the moment it was started."""

    started: float  # time.monotonic() when it was started: the leases run from then

    def collect(self) -> list[Delivery]:
        """The claimed messages, the first time it is called (from any thread); [] afterwards or on failure."""
        ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish."""

    queue: str
    payload: bytes
    message_id: str
    priority: int = 0
    eta: float | None = None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What the dashboard and ``/metrics`` show per queue."""

    name: str
    ready: int
    delayed: int
    in_flight: int
    dead: int
    oldest_age: float | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be run, and why."""

    id: str
    queue: str
    message_id: str
    payload: bytes
    reason: str
    failed_at: float
    delivery_count: int


class Broker(abc.ABC):
    """A message broker. Instances are per process; connections open lazily."""

    url: str = ""
    #: how this broker is named in the worker banner
    transport: str = "?"
    #: seconds a lease lasts when the caller does not say
    default_lease: float = 30.0

    # -- producing ------------------------------------------------------------------------
    @abc.abstractmethod
    def publish_many(self, messages: Sequence[Outgoing]) -> None:
        """Store messages durably (all or none where the broker allows)."""

    def publish(self, queue: str, payload: bytes, *, message_id: str, priority: int = 0, eta: float | None = None) -> None:
        self.publish_many([Outgoing(queue, payload, message_id, priority, eta)])

    # -- consuming ------------------------------------------------------------------------
    @abc.abstractmethod
    def fetch(
        self, queues: Sequence[str], limit: int, *, consumer: str, timeout: float, lease: float | None = None
    ) -> list[Delivery]:
        """Claim up to ``limit`` ready messages, waiting up to ``timeout`` seconds for the first."""

    def fetch_ahead(self, queues: Sequence[str], limit: int, *, consumer: str) -> PendingFetch | None:
        """Start claiming up to ``limit`` ready messages without waiting for them; ``collect()`` them later.

        A worker slot calls it as it starts the last message it holds, so that the broker's work
        overlaps the task's. None: this broker has no such call (the slot fetches when it is done).
        """
        return None

    @abc.abstractmethod
    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Remove settled messages for good."""

    @abc.abstractmethod
    def release(self, deliveries: Sequence[Delivery], *, delay: float = 0.0) -> None:
        """Give back messages that were not started; they do not count as delivered."""

    @abc.abstractmethod
    def renew(self, deliveries: Sequence[Delivery], *, lease: float | None = None) -> None:
        """Extend the leases of messages that are still running."""

    @abc.abstractmethod
    def reclaim(self, consumer: str) -> int:
        """Make every message leased by a dead ``consumer`` ready now; return how many."""

    @abc.abstractmethod
    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move a message to the dead-letter store with a reason."""

    # -- combined writes (a broker that shares a store with the backend does each in one go) ---------
    def publish_recorded(self, messages: Sequence[Outgoing], backend: Any, metas: Sequence[dict[str, Any]],
                         expires: float | None) -> None:
        """Record tasks as sent in the backend, then publish them."""
        if metas:
            backend.store_many(metas, expires=expires)
        self.publish_many(messages)

    def publish_recorded_batches(self, batches: Sequence[tuple[Sequence[Outgoing], Sequence[dict[str, Any]]]],
                                 backend: Any, expires: float | None, sent: Callable[[int], None]) -> None:
        """``publish_recorded`` for each (messages, records) batch in order, calling ``sent(index)``
        after each one is published. A broker may overlap the batches' round trips; it still calls
        ``sent`` for every batch that went out before raising for one that did not."""
        for index, (messages, metas) in enumerate(batches):
            self.publish_recorded(messages, backend, metas, expires)
            sent(index)

    def settle(self, deliveries: Sequence[Delivery], backend: Any, metas: Sequence[dict[str, Any]],
               expires: float | None) -> None:
        """Store results, then ack their messages (never the other way round)."""
        if metas and backend.enabled:
            backend.store_many(metas, expires=expires)
        if deliveries:
            self.ack(deliveries)

    def wakeup(self) -> None:  # noqa: B027 - optional hook
        """Interrupt a ``fetch`` blocked in another thread of this process, if the broker can."""

    # -- administration ---------------------------------------------------------------------
    @abc.abstractmethod
    def stats(self, queues: Sequence[str] | None = None) -> list[QueueStats]:
        """Depth, delayed, in-flight and dead-letter counts and the age of the oldest message."""

    @abc.abstractmethod
    def purge(self, queue: str) -> int:
        """Delete every ready and delayed message of a queue; return how many."""

    @abc.abstractmethod
    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters, optionally for one queue."""

    @abc.abstractmethod
    def requeue_dead(self, ids: Sequence[str]) -> int:
        """Send dead letters back to their queues with a fresh delivery count."""

    # -- streams and mailboxes --------------------------------------------------------------
    @abc.abstractmethod
    def stream_append(self, stream: str, items: Sequence[bytes], *, maxlen: int, max_age: float) -> None:
        """Append to a bounded durable log, trimming by count and age."""

    @abc.abstractmethod
    def stream_read(self, stream: str, after: str | None, *, limit: int, timeout: float) -> list[tuple[str, bytes]]:
        """Entries after cursor ``after`` (None: from the start), waiting up to ``timeout`` for one."""

    @abc.abstractmethod
    def stream_tail(self, stream: str) -> str | None:
        """Cursor of the newest entry, to read only what comes next."""

    @abc.abstractmethod
    def mailbox_put(self, box: str, item: bytes, *, ttl: float) -> None:
        """Leave an item (a reply) that expires after ``ttl`` seconds if nobody takes it."""

    @abc.abstractmethod
    def mailbox_take(self, box: str, *, timeout: float, limit: int = 1000) -> list[bytes]:
        """Take the items waiting in a mailbox, waiting up to ``timeout`` for the first."""

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional hook
        """Close connections; the broker reopens them lazily if used again."""

    def after_fork(self) -> None:
        """Drop connections inherited from a parent process."""
        self.close()
