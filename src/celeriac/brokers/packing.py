"""Several stream items in one broker entry: each item is a 4-byte big-endian length, then its bytes.

A worker appends three events per task. One broker entry (a Redis stream entry, a RabbitMQ stream
message) per item costs the broker more than everything else it does for the task, so an append
packs its items, up to ``PACK_BYTES`` per entry (a larger item goes alone).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

#: items of one append share an entry up to this size
PACK_BYTES = 256 * 1024
_LENGTH = struct.Struct(">I")


def pack_groups(items: Sequence[bytes], limit: int = PACK_BYTES) -> Iterator[tuple[int, bytes]]:
    """``(item count, packed body)`` of each entry that carries ``items``, in order."""
    body, count = bytearray(), 0
    for item in items:
        if body and len(body) + _LENGTH.size + len(item) > limit:
            yield count, bytes(body)
            body, count = bytearray(), 0
        body += _LENGTH.pack(len(item))
        body += item
        count += 1
    if body:
        yield count, bytes(body)


def unpack(body: bytes) -> list[bytes]:
    """The items of a packed body, in order."""
    items, at = [], 0
    while at < len(body):
        (size,) = _LENGTH.unpack_from(body, at)
        at += _LENGTH.size
        items.append(body[at : at + size])
        at += size
    return items
