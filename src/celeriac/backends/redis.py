"""Result backend on Redis, with Celery's key names so Celery clients can read celeriac's results.

Key layout (``P`` is the ``global_keyprefix`` transport option, empty by default)::

    P celery-task-meta-<task id>        string  meta JSON (kombu type tags), PX result_expires;
                                                every write is also PUBLISHed on a channel of the same name
    P celery-taskset-meta-<group id>    string  {"result": [[gid, null], [[[tid, null], null], ...]]}
    P celery-taskset-meta-<gid>.s       string  chord header size
    P celery-taskset-meta-<gid>.j       zset    chord header results, score = index (one member per index)
    P celeriac:revoked                  zset    revoked task ids, score = expiry (ms)
    P celeriac:revoked:info             hash    task id -> {"terminate", "signal", "at"}
    P celeriac:lease:<name>             string  owner of a lease, PX ttl
    P celeriac:kv:<key>                 string  small persistent values (beat)

Stores, chord joins, revokes and leases are Lua scripts, so a ready state is never overwritten,
exactly one chord join sees the complete header, and a lease has one holder.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..brokers.redis_connection import CONNECTION_ERRORS, Outage, close_client, make_client, parse_url, prefix_from
from ..brokers.redis_direct import DirectScripts
from ..serializers import json_dumps, json_loads
from . import redis_backend_scripts as scripts
from .base import Meta, ResultBackend
from .redis_notify import Subscriber

_SEEN_MAX = 10_000


def _ms(seconds: float | None) -> int:
    return max(1, int(seconds * 1000)) if seconds else 0


class RedisBackend(ResultBackend):
    """``redis://`` (and ``rediss://``, ``redis+socket://``, ``redis+sentinel://``) result backend."""

    def __init__(self, url: str, *, transport_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.options = dict(transport_options or {})
        self.target = parse_url(url)
        self.prefix = prefix_from(self.options)
        self.outage = Outage("result backend")
        self._lock = threading.Lock()
        self._client: Any = None
        self._subscriber: Subscriber | None = None
        self._seen: OrderedDict[str, int | None] = OrderedDict()

    # -- connections ------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = make_client(self.target, self.outage, self.options)
                    self._scripts = {name: client.register_script(getattr(scripts, name)) for name in scripts.NAMES}
                    self._direct = DirectScripts(self.outage)
                    self._client = client
        return self._client

    def _run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        client = self.client  # registers the scripts on first use
        return self._direct.call(self._scripts[name], keys, args, client)

    @property
    def subscriber(self) -> Subscriber:
        if self._subscriber is None:
            with self._lock:
                if self._subscriber is None:
                    options = {**self.options, "socket_timeout": None, "health_check_interval": 0, "max_retries": 0}
                    self._subscriber = Subscriber(make_client(self.target, self.outage, options), self.outage)
        return self._subscriber

    def meta_key(self, task_id: str) -> str:
        return f"{self.prefix}celery-task-meta-{task_id}"

    def group_key(self, group_id: str) -> str:
        return f"{self.prefix}celery-taskset-meta-{group_id}"

    # -- task results -----------------------------------------------------------------------
    def store_many(self, metas: Sequence[Meta], *, expires: float | None) -> None:
        if not metas:
            return
        self._run("STORE", *self.store_arguments(metas, expires))

    def store_arguments(self, metas: Sequence[Meta], expires: float | None) -> tuple[list[str], list[Any]]:
        """Keys and arguments of ``store_docs`` (``STORE_FUNCTION``): expiry, then one document per key.

        The broker's send and settle scripts take them as they are, when this backend is on its server.
        """
        return [self.meta_key(m["task_id"]) for m in metas], [_ms(expires), *(json_dumps(m) for m in metas)]

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Meta]:
        if not task_ids:
            return {}
        raws = self.client.mget([self.meta_key(t) for t in task_ids])
        self._remember(task_ids, raws)
        return {t: json_loads(raw) for t, raw in zip(task_ids, raws, strict=True) if raw is not None}

    def _remember(self, task_ids: Sequence[str], raws: Sequence[bytes | None]) -> None:
        """What this process last read per id, so ``wait`` can tell a change it missed."""
        with self._lock:
            for task_id, raw in zip(task_ids, raws, strict=True):
                self._seen[task_id] = None if raw is None else hash(raw)
                self._seen.move_to_end(task_id)
            while len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)

    def _changed_since_read(self, task_ids: Sequence[str]) -> bool:
        raws = self.client.mget([self.meta_key(t) for t in task_ids])
        with self._lock:
            return any((None if raw is None else hash(raw)) != self._seen.get(t) for t, raw in zip(task_ids, raws, strict=True))

    def wait(self, task_ids: Sequence[str], timeout: float) -> None:
        """Sleep until a store is published for one of the ids (or a reconnect), at most ``timeout``."""
        if not task_ids:
            time.sleep(max(0.0, timeout))
            return
        deadline = time.monotonic() + timeout
        channels = [self.meta_key(t) for t in task_ids]
        subscriber = self.subscriber
        snapshot = subscriber.watch(channels, timeout)
        try:
            # subscribed now: a store after this check is sure to reach us
            if self._changed_since_read(task_ids):
                return
            subscriber.wait(channels, snapshot, max(0.0, deadline - time.monotonic()))
        except CONNECTION_ERRORS:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        finally:
            subscriber.unwatch(channels)

    def forget(self, task_ids: Sequence[str]) -> None:
        if task_ids:
            self.client.delete(*[self.meta_key(t) for t in task_ids])

    # -- revokes ----------------------------------------------------------------------------
    def revoke(self, task_ids: Sequence[str], *, ttl: float, terminate: bool = False, signal: str | None = None) -> None:
        if not task_ids:
            return
        now = time.time()
        info = orjson.dumps({"terminate": terminate, "signal": signal, "at": now})
        keys = [f"{self.prefix}celeriac:revoked", f"{self.prefix}celeriac:revoked:info"]
        self._run("REVOKE", keys, [int(now * 1000), int((now + ttl) * 1000), info, *task_ids])

    def revoked(self) -> dict[str, dict[str, Any]]:
        now_ms = int(time.time() * 1000)
        pipe = self.client.pipeline(transaction=True)
        pipe.zrangebyscore(f"{self.prefix}celeriac:revoked", f"({now_ms}", "+inf")
        pipe.hgetall(f"{self.prefix}celeriac:revoked:info")
        alive, infos = pipe.execute()
        return {t.decode(): orjson.loads(infos[t]) for t in alive if t in infos}

    # -- groups and chords ------------------------------------------------------------------
    def save_group(self, group_id: str, task_ids: Sequence[str], *, expires: float | None) -> None:
        doc = {"result": [[group_id, None], [[[t, None], None] for t in task_ids]]}
        self.client.set(self.group_key(group_id), json_dumps(doc), px=_ms(expires) or None)

    def restore_group(self, group_id: str) -> list[str] | None:
        raw = self.client.get(self.group_key(group_id))
        if raw is None:
            return None
        return [child[0][0] for child in json_loads(raw)["result"][1]]

    def delete_group(self, group_id: str) -> None:
        self.client.delete(self.group_key(group_id))

    def chord_init(self, group_id: str, size: int, *, expires: float | None) -> None:
        key = self.group_key(group_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(f"{key}.j")
        pipe.set(f"{key}.s", size, px=_ms(expires) or None)
        pipe.execute()

    def chord_join(self, group_id: str, index: int, task_id: str, item: Any) -> list[Any] | None:
        key = self.group_key(group_id)
        member = json_dumps([index, task_id, item])
        items = self._run("CHORD_JOIN", [f"{key}.j", f"{key}.s"], [index, member])
        if items is None:
            return None
        return [json_loads(raw)[2] for raw in items]

    # -- leases and kv ----------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        return bool(self._run("ACQUIRE", [f"{self.prefix}celeriac:lease:{name}"], [owner, _ms(ttl)]))

    def release_lease(self, name: str, owner: str) -> None:
        self._run("RELEASE", [f"{self.prefix}celeriac:lease:{name}"], [owner])

    def kv_get(self, key: str) -> bytes | None:
        value = self.client.get(f"{self.prefix}celeriac:kv:{key}")
        return None if value is None else bytes(value)

    def kv_set(self, key: str, value: bytes) -> None:
        self.client.set(f"{self.prefix}celeriac:kv:{key}", value)

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            subscriber, client = self._subscriber, self._client
            self._subscriber = self._client = None
        if subscriber is not None:
            subscriber.close()
        if client is not None:
            self._direct.close()
        close_client(client)

    def after_fork(self) -> None:
        """Forget the parent's pool and listener thread (which does not exist here); reopen lazily."""
        self._subscriber = self._client = None
        self._lock = threading.Lock()
        self.outage = Outage("result backend")  # its lock may have been held by a parent thread at fork
