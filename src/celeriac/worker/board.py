"""What a prefork child is doing, shared with its supervisor through memory instead of messages.

A child runs thousands of short tasks a second; telling the supervisor about each one over a pipe
costs two system calls on each side per task. Instead each child owns a small shared memory
block, written before a task starts and after it ends, and read by the supervisor only when it
needs to know (``inspect active``/``reserved``, ``stats``, terminate, a child's death). A task with
a hard time limit is still announced over the pipe, because the supervisor must wake for it.

Each region is guarded by a sequence number (odd while a write is in progress), so a reader
never takes half of one write and half of another; a region has one writer at a time (the child
serialises its threads' writes).
"""

from __future__ import annotations

import mmap
import struct
import threading
from collections import Counter
from typing import Any

import orjson

_HEADER = struct.Struct("<QI")  # sequence number, payload length
_COUNT = struct.Struct("<Q")

# region name -> (offset, capacity in bytes); the first 24 bytes hold three counts: tasks processed,
# messages held when the "reserved" list was written, and messages held now (untouched pages of an
# anonymous mapping take no memory, so the sizes are generous)
_LISTED_AT, _HELD_AT = 8, 16
_REGIONS = {"current": (24, 16 * 1024), "reserved": (24 + 16 * 1024, 32 * 1024), "totals": (24 + 48 * 1024, 64 * 1024)}
SIZE = 24 + 112 * 1024


class Board:
    """One child's shared state: the task it runs, the messages it holds, and what it has run."""

    def __init__(self) -> None:
        self._mem = mmap.mmap(-1, SIZE)  # anonymous and shared: the forked child writes, the parent reads
        self._lock = threading.Lock()

    # -- writing (in the child) ------------------------------------------------------------------
    def write(self, region: str, data: bytes) -> None:
        offset, capacity = _REGIONS[region]
        if len(data) > capacity - _HEADER.size:
            return  # cannot happen: writers fit what they write (fit_notice, fit_list)
        with self._lock:
            seq = _COUNT.unpack_from(self._mem, offset)[0]
            _HEADER.pack_into(self._mem, offset, seq + 1, len(data))
            start = offset + _HEADER.size
            self._mem[start:start + len(data)] = data
            _COUNT.pack_into(self._mem, offset, seq + 2)

    def set_processed(self, count: int) -> None:
        _COUNT.pack_into(self._mem, 0, count)

    def write_reserved(self, items: list[Any]) -> None:
        """The messages held but not started, in the order they will run (after a fetch, or a release)."""
        self.write("reserved", fit_list(items, "reserved"))
        _COUNT.pack_into(self._mem, _LISTED_AT, len(items))
        self.set_held(len(items))

    def set_held(self, count: int) -> None:
        """How many messages are still held: a start takes the first off the list without rewriting it."""
        _COUNT.pack_into(self._mem, _HELD_AT, count)

    # -- reading (in the supervisor) -------------------------------------------------------------
    def read(self, region: str) -> bytes | None:
        """The region's last complete write (None if it keeps changing under the reader)."""
        offset, capacity = _REGIONS[region]
        for _ in range(1000):
            seq, length = _HEADER.unpack_from(self._mem, offset)
            if seq & 1:
                continue
            start = offset + _HEADER.size
            data = self._mem[start:start + min(length, capacity - _HEADER.size)]
            if _COUNT.unpack_from(self._mem, offset)[0] == seq:
                return data if seq else b""
        return None

    def read_json(self, region: str, default: Any) -> Any:
        data = self.read(region)
        return orjson.loads(data) if data else default

    def processed(self) -> int:
        return int(_COUNT.unpack_from(self._mem, 0)[0])

    def current(self) -> dict[str, Any] | None:
        notice: dict[str, Any] | None = self.read_json("current", None)
        return notice

    def reserved(self) -> list[list[str]]:
        held = int(_COUNT.unpack_from(self._mem, _HELD_AT)[0])
        if not held:
            return []
        started = max(0, int(_COUNT.unpack_from(self._mem, _LISTED_AT)[0]) - held)
        reserved: list[list[str]] = self.read_json("reserved", [])
        return reserved[started:]

    def totals(self) -> Counter[str]:
        return Counter(self.read_json("totals", {}))

    def close(self) -> None:
        self._mem.close()


def fit_notice(notice: dict[str, Any]) -> bytes:
    """A start notice as JSON that fits the "current" region (long argument reprs are cut)."""
    data = orjson.dumps(notice)
    limit = _REGIONS["current"][1] - _HEADER.size
    if len(data) > limit:
        room = max(64, (limit - 2048) // 2)
        notice = {**notice, "args": str(notice.get("args"))[:room] + "...", "kwargs": str(notice.get("kwargs"))[:room] + "..."}
        data = orjson.dumps(notice)
    return data


def fit_list(items: list[Any], region: str) -> bytes:
    """``items`` as JSON, cut to as many leading items as fit the region (a huge prefetch shows its head)."""
    limit = _REGIONS[region][1] - _HEADER.size
    data = orjson.dumps(items)
    while len(data) > limit and items:
        items = items[: max(0, len(items) * limit // len(data) - 1)]
        data = orjson.dumps(items)
    return data
