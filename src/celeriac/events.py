"""Events with Celery's names and fields, appended to a durable bounded stream in the broker.

Producers and workers buffer events and a background thread appends them in batches, so sending
an event costs a list append on the hot path. A reader that was down resumes from its cursor.
"""

from __future__ import annotations

import atexit
import itertools
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

from .message import Message, safe_repr

if TYPE_CHECKING:
    from .app.base import Celery

STREAM = "celeriac.events"
_FLUSH_INTERVAL = 0.05
_FLUSH_SIZE = 200

_clock = itertools.count(1)
_clock_lock = threading.Lock()
_clock_value = 0


def lamport_tick(seen: int | None = None) -> int:
    """Advance this process's Lamport clock (past ``seen`` if a received clock is given)."""
    global _clock_value
    with _clock_lock:
        _clock_value = max(_clock_value, seen or 0) + 1
        return _clock_value


def utcoffset() -> float:
    """Hours west of UTC, as Celery's events carry it."""
    return (time.altzone if time.daylight and time.localtime().tm_isdst > 0 else time.timezone) / 3600


def default_hostname() -> str:
    return f"gen{os.getpid()}@{socket.gethostname()}"


class EventDispatcher:
    """Buffers events and appends them to the broker's event stream in batches."""

    def __init__(self, app: Celery, hostname: str | None = None) -> None:
        self.app = app
        self.hostname = hostname or default_hostname()
        self.enabled = True
        self._buffer: list[bytes] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False
        ref = weakref.ref(self)
        atexit.register(lambda: (d := ref()) is not None and d.flush())

    def event(self, type_: str, **fields: Any) -> dict[str, Any]:
        """An event dict with the fields every Celery event carries."""
        fields.update(
            type=type_, hostname=fields.get("hostname") or self.hostname, utcoffset=utcoffset(),
            pid=os.getpid(), clock=lamport_tick(), timestamp=time.time(),
        )
        return fields

    def send(self, type_: str, **fields: Any) -> None:
        if not self.enabled:
            return
        data = orjson.dumps(self.event(type_, **fields), default=safe_repr)
        with self._lock:
            self._buffer.append(data)
            size = len(self._buffer)
        self._ensure_thread()
        if size >= _FLUSH_SIZE:
            self._wake.set()

    def task_sent(self, msg: Message) -> None:
        self.send(
            "task-sent", uuid=msg.id, root_id=msg.root_id or msg.id, parent_id=msg.parent_id, name=msg.task,
            args=msg.argsrepr or safe_repr(tuple(msg.args)), kwargs=msg.kwargsrepr or safe_repr(dict(msg.kwargs)),
            retries=msg.retries, eta=msg.eta.isoformat() if msg.eta else None,
            expires=msg.expires.isoformat() if msg.expires else None, queue=msg.queue, exchange="",
            routing_key=msg.queue, priority=msg.priority, group=msg.group,
        )

    def _ensure_thread(self) -> None:
        if self._pid != os.getpid():
            self._pid, self._thread, self._buffer = os.getpid(), None, []
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="celeriac-events", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(_FLUSH_INTERVAL)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the broker is away: keep the buffer, try again later
                time.sleep(0.5)

    def flush(self) -> None:
        """Append everything buffered (one broker call)."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        conf = self.app.conf
        try:
            self.app.broker.stream_append(STREAM, batch, maxlen=conf.event_stream_maxlen, max_age=conf.event_stream_max_age)
        except Exception:
            with self._lock:
                self._buffer[:0] = batch[-conf.event_stream_maxlen :]
            raise

    def close(self) -> None:
        self.flush()
        self._closed = True
        self._wake.set()


class EventReceiver:
    """Reads events from the stream by cursor; a consumer keeps its cursor to resume."""

    def __init__(self, app: Celery, cursor: str | None = None, from_now: bool = False) -> None:
        self.app = app
        self.cursor = app.broker.stream_tail(STREAM) if from_now and cursor is None else cursor

    def read(self, limit: int = 1000, timeout: float = 1.0) -> list[dict[str, Any]]:
        entries = self.app.broker.stream_read(STREAM, self.cursor, limit=limit, timeout=timeout)
        events = []
        for cursor, data in entries:
            self.cursor = cursor
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            event["_cursor"] = cursor
            events.append(event)
        return events

    def itercapture(self, limit: int | None = None, timeout: float = 1.0) -> Iterator[dict[str, Any]]:
        count = 0
        while limit is None or count < limit:
            for event in self.read(timeout=timeout):
                yield event
                count += 1
