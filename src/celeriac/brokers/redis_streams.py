"""Bounded streams (events, broadcast control) and mailboxes (replies) of the Redis broker.

Streams are Redis streams ``P celeriac:s:<name>``. One append is one entry per ``PACK_BYTES`` of
items, in field ``b`` (``packing.py``): a worker appends three events per task, and an entry per
event cost Redis more than the rest of the task's work. An entry of one item holds it in field
``d``, as every entry did in earlier versions, so a control command (always alone) still reaches
workers of those versions. The cursor of an item is ``<entry id>:<index>``, and the entry id
alone for an entry's last item, so a reader that takes whole entries keeps plain stream ids. The
``APPEND`` script trims by age (``XTRIM MINID ~``) and keeps the entries that hold the newest
``maxlen`` items, found through the stream's index ``P celeriac:s:<name>:index``. Mailboxes are
lists ``P celeriac:mb:<box>`` whose expiry each put refreshes; a take pops up to ``limit`` items at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .packing import pack_groups, unpack
from .redis_connection import MAX_BLOCK

#: entries asked for per XREAD: a packed entry holds up to ``PACK_BYTES`` of items
READ_ENTRIES = 16


def _entry_items(entry_id: bytes | str, fields: dict[bytes, bytes]) -> list[tuple[str, bytes]]:
    """``(cursor, item)`` pairs of one stream entry: packed items (field ``b``) or a lone one (``d``)."""
    sid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    packed = fields.get(b"b")
    if packed is None:
        return [(sid, bytes(fields[b"d"]))]
    items = unpack(bytes(packed))
    last = len(items) - 1
    return [(sid if at == last else f"{sid}:{at}", item) for at, item in enumerate(items)]


class StreamsMixin:
    """Needs ``self.client``, ``self.prefix`` and ``self.script`` from the broker."""

    client: Any
    prefix: str
    script: Any

    def _stream_key(self, stream: str) -> str:
        return f"{self.prefix}celeriac:s:{stream}"

    def stream_append(self, stream: str, items: Sequence[bytes], *, maxlen: int, max_age: float) -> None:
        if not items:
            return
        oldest_ms = int((time.time() - max_age) * 1000)
        key = self._stream_key(stream)
        args: list[Any] = [maxlen, f"{max(oldest_ms, 0)}-0"]
        at = 0
        for count, body in pack_groups(items):
            args += [count, body if count > 1 else items[at]]  # a lone item goes as it is (field d)
            at += count
        self.script("APPEND", [key, f"{key}:index"], args)

    def stream_read(self, stream: str, after: str | None, *, limit: int, timeout: float) -> list[tuple[str, bytes]]:
        key = self._stream_key(stream)
        cursor, _, index = (after or "0-0").partition(":")
        found: list[tuple[str, bytes]] = []
        if index:  # the cursor is inside an entry: the rest of that entry comes first
            rows = self.client.xrange(key, cursor, cursor)
            found = _entry_items(*rows[0])[int(index) + 1 :] if rows else []
        deadline = time.monotonic() + timeout
        while len(found) < limit:
            remaining = deadline - time.monotonic()
            # wait only while nothing was found; a few entries at a time, as each may hold hundreds of items
            block = max(1, int(min(remaining, MAX_BLOCK) * 1000)) if remaining > 0 and not found else None
            count = min(READ_ENTRIES, limit - len(found))
            reply = self.client.xread({key: cursor}, count=count, block=block)
            entries = reply[0][1] if reply else []
            for entry_id, fields in entries:
                found += _entry_items(entry_id, fields)
                cursor = entry_id
            if (found and len(entries) < count) or (not found and deadline - time.monotonic() <= 0):
                break  # caught up, or waited long enough
        return found[:limit]

    def stream_tail(self, stream: str) -> str | None:
        newest = self.client.xrevrange(self._stream_key(stream), count=1)
        return newest[0][0].decode() if newest else None

    def mailbox_put(self, box: str, item: bytes, *, ttl: float) -> None:
        key = f"{self.prefix}celeriac:mb:{box}"
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(key, item)
        pipe.pexpire(key, max(1, int(ttl * 1000)))
        pipe.execute()

    def mailbox_take(self, box: str, *, timeout: float, limit: int = 1000) -> list[bytes]:
        key = f"{self.prefix}celeriac:mb:{box}"
        items = self.client.lpop(key, limit)
        if items:
            return list(items)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            # never 0: BLPOP 0 would wait forever
            popped = self.client.blpop([key], timeout=max(0.01, min(remaining, MAX_BLOCK)))
            if popped:
                rest = self.client.lpop(key, limit - 1) if limit > 1 else None
                return [popped[1], *(rest or [])]
