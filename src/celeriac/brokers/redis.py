"""The Redis broker: Streams with consumer groups, a sorted set for delayed messages, leases by idle time.

Key layout (``P`` is the ``global_keyprefix`` transport option, empty by default; ``{q}`` is the
queue name in braces)::

    P celeriac:queues                  set     every queue name seen (for reclaim, stats, dead letters)
    P celeriac:q:{q}:0 .. :9           stream  ready and leased messages, one stream per priority;
                                               fields m=message id, p=payload, n=earlier deliveries
                                               consumer group "celeriac"; its pending entries are leases
    P celeriac:q:{q}:eta               zset    delayed messages, score = due time (ms), see redis_scripts
    P celeriac:q:{q}:tick              stream  wakes one blocked fetcher when a delayed message is added
    P celeriac:q:{q}:dead              stream  dead letters: m, p, r=reason, c=deliveries, f=failed at (ms), pr
    P celeriac:q:{q}:groups            string  marker: the consumer groups of this queue exist
    P celeriac:q:{q}:sweep             string  short-lived gate: one fetcher at a time looks for expired leases
    P celeriac:q:{q}:mark              string  counter raised by every message not at priority 0 or delayed:
                                               a fetcher reading priority 0 alone claims in full when it moves
    P celeriac:s:<stream>              stream  events and broadcast control, items packed per append (b),
                                               trimmed by count and age (see redis_streams)
    P celeriac:s:<stream>:index        zset    each entry id scored by the items appended up to it
    P celeriac:mb:<box>                list    replies, expiring with their ttl

A lease is a pending entry's idle time: ``renew`` resets it (XCLAIM JUSTID by the owner), a fetcher
takes over entries idle longer than ``visibility_timeout`` (XAUTOCLAIM), and ``reclaim``/``release``
move entries back into the stream (XACK + XDEL + XADD) carrying their delivery count in ``n``. Every
multi-key step is one Lua script (``redis_scripts.py``) or one MULTI; sends, acks and settles are
the ``RECORDED`` script, which stores the result backend's documents first when it shares this
server and db. See ``docs/redis.md``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from . import redis_scripts as scripts
from .base import Broker, DeadLetter, Delivery, Outgoing, QueueStats
from .redis_connection import Outage, close_client, make_client, parse_url, prefix_from
from .redis_direct import DirectScripts
from .redis_fetch import Fetcher, PendingClaim
from .redis_streams import StreamsMixin

GROUP = "celeriac"
DEAD_MAXLEN = 100_000


def delayed_member(message_id: str, payload: bytes, priority: int, past: int = 0) -> bytes:
    """The sorted-set member of a delayed message (unique, parsed by the Lua scripts)."""
    mid = message_id.encode()
    return b"%s:%d:%d:%d:%s%s" % (uuid.uuid4().hex.encode(), priority, past, len(mid), mid, payload)


def _priority(value: int) -> int:
    return max(0, min(9, int(value or 0)))


class RedisBroker(StreamsMixin, Broker):
    """``redis://``, ``rediss://``, ``redis+socket://`` and ``redis+sentinel://`` broker."""

    transport = "redis"

    def __init__(self, url: str, *, transport_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.options = dict(transport_options or {})
        self.target = parse_url(url)
        self.prefix = prefix_from(self.options)
        self.default_lease = float(self.options.get("visibility_timeout", 30.0))
        self.dead_maxlen = int(self.options.get("dead_letter_maxlen", DEAD_MAXLEN))
        self.outage = Outage("broker")
        self._lock = threading.Lock()
        self._client: Any = None
        self._fetcher: Fetcher | None = None

    # -- keys and connections ---------------------------------------------------------------
    def base(self, queue: str) -> str:
        return f"{self.prefix}celeriac:q:{{{queue}}}"

    @property
    def queues_key(self) -> str:
        return f"{self.prefix}celeriac:queues"

    @property
    def client(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    fresh = make_client(self.target, self.outage, self.options)
                    # scripts first: other threads use them as soon as they see the client
                    self._scripts = {name: fresh.register_script(getattr(scripts, name)) for name in _SCRIPTS}
                    self._direct = DirectScripts(self.outage)
                    self._client = fresh
                client = self._client
        return client

    def script(self, name: str, keys: Sequence[str], args: Sequence[Any], client: Any = None) -> Any:
        default = self.client  # registers the scripts on first use
        return self._direct.call(self._scripts[name], keys, args, client or default)

    def start_script(self, name: str, keys: Sequence[str], args: Sequence[Any], client: Any) -> Any | None:
        """Write a script call on this thread's connection without reading the reply (see ``finish_script``)."""
        default = self.client  # registers the scripts on first use
        return self._direct.start(self._scripts[name], keys, args, client or default)

    def finish_script(self, conn: Any) -> Any | None:
        """The reply to ``start_script``; None when the connection was lost."""
        return self._direct.finish(conn)

    def start_commands(self, commands: Sequence[Sequence[Any]], client: Any) -> Any | None:
        """Write plain commands on this thread's connection of ``client`` (see ``finish_commands``)."""
        self.client  # noqa: B018 - makes the shortcut on first use
        return self._direct.start_commands(commands, client)

    def finish_commands(self, conn: Any, count: int) -> list[Any] | None:
        """The replies to ``start_commands`` (an error reply as its exception); None when the connection was lost."""
        return self._direct.finish_commands(conn, count)

    def fetch_ahead(self, queues: Sequence[str], limit: int, *, consumer: str) -> PendingClaim | None:
        if limit <= 0 or not queues:
            return None
        return self.fetcher.claim_ahead(list(queues), limit, consumer)

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            with self._lock:
                if self._fetcher is None:
                    self._fetcher = Fetcher(self)
        return self._fetcher

    # -- producing ------------------------------------------------------------------------
    def publish_many(self, messages: Sequence[Outgoing]) -> None:
        if not messages:
            return
        self._operate(self._publish_ops(messages))

    def _same_server(self, backend: Any) -> bool:
        """A Redis result backend on this server and db: its writes can share our round trips."""
        return getattr(backend, "target", None) == self.target and hasattr(backend, "store_arguments")

    def publish_recorded(self, messages: Sequence[Outgoing], backend: Any, metas: Sequence[dict[str, Any]],
                         expires: float | None) -> None:
        """Sent-records and messages in one command (a script) when the backend is on this server."""
        if not self._same_server(backend):
            return super().publish_recorded(messages, backend, metas, expires)
        self._recorded(backend, metas, expires, self._publish_ops(messages))

    def publish_recorded_batches(self, batches: Sequence[tuple[Sequence[Outgoing], Sequence[dict[str, Any]]]],
                                 backend: Any, expires: float | None, sent: Callable[[int], None]) -> None:
        """One script call per batch, each written before the previous reply is read: Redis runs a
        batch while the next one is encoded and the one before is announced."""
        if len(batches) < 2 or not self._same_server(backend):
            return super().publish_recorded_batches(batches, backend, expires, sent)
        def calls() -> Iterator[tuple[list[str], list[Any]]]:
            for messages, metas in batches:
                keys, store_args = backend.store_arguments(metas, expires)
                yield keys, [*store_args, *self._publish_ops(messages)]

        default = self.client  # registers the scripts on first use
        self._direct.call_many(self._scripts["RECORDED"], calls(), default, sent)

    def settle(self, deliveries: Sequence[Delivery], backend: Any, metas: Sequence[dict[str, Any]],
               expires: float | None) -> None:
        """Results, then acks, in one command (a script) when the backend is on this server."""
        if not self._same_server(backend):
            return super().settle(deliveries, backend, metas, expires)
        if metas or deliveries:
            self._recorded(backend, metas, expires, self._ack_ops(deliveries))

    def _recorded(self, backend: Any, metas: Sequence[dict[str, Any]], expires: float | None, ops: list[Any]) -> None:
        """The backend's stores first, then our operations, in one atomic script (``RECORDED``).

        One command instead of a MULTI of several: less to send, parse and run on both sides.
        """
        keys, store_args = backend.store_arguments(metas, expires)
        self.script("RECORDED", keys, [*store_args, *ops])

    def _operate(self, ops: list[Any]) -> None:
        """``RECORDED`` operations alone (no results to store)."""
        if ops:
            self.script("RECORDED", [], [0, *ops])

    def _publish_ops(self, messages: Sequence[Outgoing]) -> list[Any]:
        """``RECORDED`` operations that publish ``messages``: queue names, then each message, then ticks."""
        now = time.time()
        ops: list[Any] = []
        for queue in dict.fromkeys(m.queue for m in messages):
            ops += ["s", self.queues_key, queue]
        delayed_queues: dict[str, None] = {}
        disturbed: dict[str, None] = {}  # queues given a message not at priority 0, or a delayed one
        for m in messages:
            base, prio = self.base(m.queue), _priority(m.priority)
            if m.eta is not None and m.eta > now:
                ops += ["z", f"{base}:eta", int(m.eta * 1000), delayed_member(m.message_id, m.payload, prio)]
                delayed_queues[base] = disturbed[base] = None
            else:
                ops += ["x", f"{base}:{prio}", m.message_id, m.payload]
                if prio:
                    disturbed[base] = None
        for base in delayed_queues:
            ops += ["t", f"{base}:tick"]
        for base in disturbed:
            ops += ["v", f"{base}:mark"]
        return ops

    def _ack_ops(self, deliveries: Sequence[Delivery]) -> list[Any]:
        """``RECORDED`` operations that ack and delete settled entries, per stream."""
        ops: list[Any] = []
        for key, ids in self._ids_by_stream(deliveries).items():
            ops += ["a", key, GROUP, len(ids), *ids]
        return ops

    def _ids_by_stream(self, deliveries: Sequence[Delivery]) -> dict[str, list[str]]:
        by_key: dict[str, list[str]] = defaultdict(list)
        for d in deliveries:
            prio, sid, _ = self.parse_tag(d.tag)
            by_key[f"{self.base(d.queue)}:{prio}"].append(sid)
        return by_key

    # -- consuming ------------------------------------------------------------------------
    def fetch(self, queues: Sequence[str], limit: int, *, consumer: str, timeout: float, lease: float | None = None) -> list[Delivery]:
        if limit <= 0 or not queues:
            return []
        return self.fetcher.fetch(list(queues), limit, consumer, timeout)

    def wakeup(self) -> None:
        if self._fetcher is not None:
            self._fetcher.wakeup()

    @staticmethod
    def parse_tag(tag: str) -> tuple[str, str, str]:
        prio, sid, consumer = tag.split("|", 2)
        return prio, sid, consumer

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        self._operate(self._ack_ops(deliveries))

    def release(self, deliveries: Sequence[Delivery], *, delay: float = 0.0) -> None:
        if not deliveries:
            return
        due = int((time.time() + delay) * 1000) if delay > 0 else 0
        keys, args = [], [GROUP, due]
        for d in deliveries:
            keys.append(self.base(d.queue))
            args.extend(self.parse_tag(d.tag))
        self.script("RELEASE", keys, args)

    def renew(self, deliveries: Sequence[Delivery], *, lease: float | None = None) -> None:
        by_consumer: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
        for d in deliveries:
            prio, sid, consumer = self.parse_tag(d.tag)
            keys, ids = by_consumer[consumer]
            keys.append(f"{self.base(d.queue)}:{prio}")
            ids.append(sid)
        for consumer, (keys, ids) in by_consumer.items():
            self.script("RENEW", keys, [GROUP, consumer, *ids])

    def reclaim(self, consumer: str) -> int:
        queues = sorted(q.decode() for q in self.client.smembers(self.queues_key))
        if not queues:
            return 0
        return int(self.script("RECLAIM", [self.base(q) for q in queues], [GROUP, consumer]))

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        prio, sid, _ = self.parse_tag(delivery.tag)
        base = self.base(delivery.queue)
        fields = {
            "m": delivery.message_id,
            "p": delivery.payload,
            "r": reason,
            "c": delivery.delivery_count,
            "f": int(time.time() * 1000),
            "pr": prio,
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(f"{base}:dead", fields, maxlen=self.dead_maxlen, approximate=True)
        pipe.xack(f"{base}:{prio}", GROUP, sid)
        pipe.xdel(f"{base}:{prio}", sid)
        pipe.sadd(self.queues_key, delivery.queue)
        pipe.execute()

    # -- administration ---------------------------------------------------------------------
    def _known_queues(self, queues: Sequence[str] | None) -> list[str]:
        if queues is not None:
            return list(queues)
        return sorted(q.decode() for q in self.client.smembers(self.queues_key))

    def stats(self, queues: Sequence[str] | None = None) -> list[QueueStats]:
        now_ms = int(time.time() * 1000)
        result = []
        for name in self._known_queues(queues):
            ready, delayed, in_flight, dead, oldest = self.script("STATS", [self.base(name)], [GROUP, now_ms])
            age = None if not oldest else max(0.0, (now_ms - int(oldest)) / 1000)
            result.append(QueueStats(name, int(ready), int(delayed), int(in_flight), int(dead), age))
        return result

    def purge(self, queue: str) -> int:
        return int(self.script("PURGE", [self.base(queue)], [GROUP]))

    def dead_letters(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        for name in self._known_queues(None if queue is None else [queue]):
            for sid, fields in self.client.xrevrange(f"{self.base(name)}:dead", count=limit):
                found.append(_dead_letter(name, sid.decode(), fields))
        found.sort(key=lambda d: d.failed_at, reverse=True)
        return found[:limit]

    def requeue_dead(self, ids: Sequence[str]) -> int:
        by_queue: dict[str, list[str]] = defaultdict(list)
        for dead_id in ids:
            sid, _, queue = dead_id.partition("@")
            by_queue[queue].append(sid)
        return sum(int(self.script("REQUEUE_DEAD", [self.base(q)], sids)) for q, sids in by_queue.items())

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            fetcher, client = self._fetcher, self._client
            self._fetcher = self._client = None
        if fetcher is not None:
            fetcher.close()
        if client is not None:
            self._direct.close()
        close_client(client)

    def after_fork(self) -> None:
        """Forget the parent's pools without touching its sockets; new ones open lazily."""
        self._lock = threading.Lock()  # not acquired: a parent thread may have held it at fork
        self._fetcher = self._client = None
        self.outage = Outage("broker")  # its lock may have been held by a parent thread at fork


def _dead_letter(queue: str, sid: str, fields: Mapping[bytes, bytes]) -> DeadLetter:
    return DeadLetter(
        id=f"{sid}@{queue}",
        queue=queue,
        message_id=fields[b"m"].decode(),
        payload=bytes(fields[b"p"]),
        reason=fields[b"r"].decode(),
        failed_at=int(fields[b"f"]) / 1000,
        delivery_count=int(fields[b"c"]),
    )


_SCRIPTS = ("CLAIM", "RENEW", "RELEASE", "RECLAIM", "REQUEUE_DEAD", "STATS", "PURGE", "RECORDED", "APPEND")

__all__ = ["GROUP", "RedisBroker", "delayed_member"]
