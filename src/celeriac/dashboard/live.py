"""Server-sent events: ``update`` when the store changed, ``tick`` every few seconds.

Pages refresh their live parts on these (htmx triggers), so nothing reloads the whole page. A
``tick`` also lets time-based facts change on screen, such as a silent worker turning offline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import StreamingResponse

from .common import dash

POLL = 0.25
TICK = 2.0


async def _events(request: Request, once: bool) -> AsyncIterator[str]:
    store = dash(request).store
    seen = -1 if once else store.version  # the page was rendered just now
    last_tick = 0.0
    yield "retry: 2000\n\n"
    while True:
        if store.version != seen:
            seen = store.version
            yield f"event: update\ndata: {seen}\n\n"
        if time.monotonic() - last_tick >= TICK:
            last_tick = time.monotonic()
            yield f"event: tick\ndata: {int(time.time())}\n\n"
        if once or await request.is_disconnected():
            return
        await asyncio.sleep(POLL)


async def stream(request: Request) -> StreamingResponse:
    once = request.query_params.get("once") == "1"
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(request, once), media_type="text/event-stream", headers=headers)
