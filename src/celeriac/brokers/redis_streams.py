"""Bounded streams (events, broadcast control) and mailboxes (replies) of the Redis broker.

Streams are Redis streams ``P celeriac:s:<name>`` with one field ``d``; the cursor is the entry id.
A batch of appends is one script call (``APPEND``) that then trims by count and by age (``XTRIM
MAXLEN ~`` and ``XTRIM MINID ~``): a worker appends three events per task. Mailboxes are lists
``P celeriac:mb:<box>`` whose expiry each put refreshes; a take pops up to ``limit`` items at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .redis_connection import MAX_BLOCK


class StreamsMixin:
    """Needs ``self.client`` and ``self.prefix`` from the broker."""

    client: Any
    prefix: str
    script: Any

    def _stream_key(self, stream: str) -> str:
        return f"{self.prefix}celeriac:s:{stream}"

    def stream_append(self, stream: str, items: Sequence[bytes], *, maxlen: int, max_age: float) -> None:
        if not items:
            return
        oldest_ms = int((time.time() - max_age) * 1000)
        self.script("APPEND", [self._stream_key(stream)], [maxlen, f"{max(oldest_ms, 0)}-0", *items])

    def stream_read(self, stream: str, after: str | None, *, limit: int, timeout: float) -> list[tuple[str, bytes]]:
        key = self._stream_key(stream)
        cursor = after or "0-0"
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            block = max(1, int(min(remaining, MAX_BLOCK) * 1000)) if remaining > 0 else None
            reply = self.client.xread({key: cursor}, count=limit, block=block)
            if reply:
                return [(sid.decode(), bytes(fields[b"d"])) for sid, fields in reply[0][1]]
            if deadline - time.monotonic() <= 0:
                return []

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
