"""Events with Celery's names and fields, appended to a durable bounded stream in the broker.

Producers and workers buffer events and a background thread appends them in batches, so sending
an event costs a list append on the hot path. A reader that was down resumes from its cursor.

Listening, for users: ``app.events.on("task-failed", fn)`` calls ``fn(event)`` for every matching
event this process sends; ``app.events.listen()`` follows the whole stream instead, so the same
listeners hear every worker. ``Receiver(app, handlers={...}).capture()`` is Celery's receiver
object. A listener that raises is logged and skipped: it never breaks a worker or a receiver.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from .event_state import State
from .message import Message, safe_repr
from .serializers import right_sized

if TYPE_CHECKING:
    from .app.base import Celery

logger = logging.getLogger("celeriac.events")

STREAM = "celeriac.events"
_FLUSH_INTERVAL = 0.05
_FLUSH_SIZE = 200

_clock_lock = threading.Lock()
_pid = os.getpid()  # kept here: a worker sends three events per task, and getpid is a system call


def _after_fork_in_child() -> None:
    """A forked child must not inherit the lock held by a parent thread at the moment of fork."""
    global _clock_lock, _pid
    _clock_lock = threading.Lock()
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)
_clock_value = 0


def lamport_tick(seen: int | None = None) -> int:
    """Advance this process's Lamport clock (past ``seen`` if a received clock is given)."""
    global _clock_value
    with _clock_lock:
        _clock_value = max(_clock_value, seen or 0) + 1
        return _clock_value


_offset_cache = (0.0, 0.0)  # (valid until, offset): the offset changes twice a year at most


def utcoffset() -> float:
    """Hours west of UTC, as Celery's events carry it (looked up at most once a minute)."""
    global _offset_cache
    now = time.time()
    if now >= _offset_cache[0]:
        offset = (time.altzone if time.daylight and time.localtime(now).tm_isdst > 0 else time.timezone) / 3600
        _offset_cache = (now + 60.0, offset)
    return _offset_cache[1]


def default_hostname() -> str:
    return f"gen{os.getpid()}@{socket.gethostname()}"


Listener = Callable[[dict[str, Any]], Any]


def call_listener(fn: Listener, event: dict[str, Any]) -> None:
    """Call a user's listener; whatever it raises is logged, never passed on."""
    try:
        fn(event)
    except Exception:
        logger.exception("event listener %s failed on %s", getattr(fn, "__qualname__", fn), event.get("type"))


class Listeners:
    """Functions registered per event type (``"*"`` hears every type)."""

    def __init__(self) -> None:
        self._by_type: dict[str, list[Listener]] = {}

    def add(self, type_: str, fn: Listener) -> None:
        self._by_type.setdefault(type_, []).append(fn)

    def remove(self, type_: str, fn: Listener) -> None:
        found = self._by_type.get(type_, [])
        if fn in found:
            found.remove(fn)
            if not found:  # only types with listeners stay: an empty dict means nobody listens
                del self._by_type[type_]

    def __bool__(self) -> bool:
        return bool(self._by_type)

    def dispatch(self, event: dict[str, Any]) -> None:
        for fn in [*self._by_type.get(event.get("type", ""), ()), *self._by_type.get("*", ())]:
            call_listener(fn, event)


_app_listeners: weakref.WeakKeyDictionary[Any, Listeners] = weakref.WeakKeyDictionary()


def listeners_of(app: Celery) -> Listeners:
    """The app's listeners, kept outside the dispatcher: a forked child gets a new dispatcher, not new listeners."""
    found = _app_listeners.get(app)
    if found is None:
        found = _app_listeners[app] = Listeners()
    return found


def _flush_at_exit(ref: weakref.ref[EventDispatcher]) -> None:
    """Events still buffered when the process ends are appended, if the dispatcher is still alive."""
    dispatcher = ref()
    if dispatcher is not None:
        dispatcher.flush()


class EventDispatcher:
    """Buffers events and appends them to the broker's event stream in batches."""

    def __init__(self, app: Celery, hostname: str | None = None) -> None:
        self.app = app
        self.hostname = hostname or default_hostname()
        self.enabled = True
        self.listeners = listeners_of(app)
        self._follower: StreamListener | None = None
        self._buffer: list[bytes] = []
        self._lock = threading.RLock()  # re-entrant: a value's repr may itself send an event
        self._flush_lock = threading.Lock()  # batches reach the stream in the order they were taken
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False
        atexit.register(_flush_at_exit, weakref.ref(self))

    # -- the listener API -----------------------------------------------------------------------
    def on(self, type_: str, fn: Listener | None = None) -> Any:
        """Call ``fn(event)`` for events of ``type_`` (``"*"``: all); usable as a decorator."""
        if fn is None:
            return lambda f: self.on(type_, f) or f
        self.listeners.add(type_, fn)
        return None

    def off(self, type_: str, fn: Listener) -> None:
        self.listeners.remove(type_, fn)

    def listen(self, from_now: bool = True, cursor: str | None = None) -> StreamListener:
        """Feed the listeners from the stream (every process's events) in a background thread."""
        if self._follower is None or not self._follower.is_alive():
            self._follower = StreamListener(Receiver(self.app, handlers={"*": self.listeners.dispatch},
                                                     cursor=cursor, from_now=from_now))
            self._follower.start()
        return self._follower

    def Receiver(self, *args: Any, **kwargs: Any) -> Receiver:  # noqa: N802 - Celery's spelling
        return Receiver(self.app, *args, **kwargs)

    def State(self, **kwargs: Any) -> State:  # noqa: N802 - Celery's spelling
        return State(**kwargs)

    # -- sending ---------------------------------------------------------------------------------
    def event(self, type_: str, **fields: Any) -> dict[str, Any]:
        """An event dict with the fields every Celery event carries."""
        return self._stamped(type_, fields)

    def _stamped(self, type_: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` (taken over, not copied) with the type, origin, clock and time added."""
        fields["type"] = type_
        if not fields.get("hostname"):
            fields["hostname"] = self.hostname
        fields["utcoffset"] = utcoffset()
        fields["pid"] = _pid
        fields["clock"] = lamport_tick()
        fields["timestamp"] = time.time()
        return fields

    def send(self, type_: str, **fields: Any) -> None:
        if self.enabled:
            self._emit(type_, fields)

    def _emit(self, type_: str, fields: dict[str, Any]) -> None:
        """Stamp ``fields`` (taken over, not copied: a worker sends three events per task) and buffer it."""
        if self._pid != _pid:
            self._adopt_after_fork()
        with self._lock:  # clock and buffer place are taken together: a process's clocks rise along the stream
            event = self._stamped(type_, fields)
            self._buffer.append(right_sized(orjson.dumps(event, default=safe_repr)))
            size = len(self._buffer)
        if self._thread is None:
            self._ensure_thread()
        if size == _FLUSH_SIZE:  # once per batch: the thread takes the whole buffer when it wakes
            self._wake.set()
        if self._follower is None and self.listeners:
            self.listeners.dispatch(event)

    def task_sent(self, msg: Message) -> None:
        if not self.enabled:
            return
        eta, expires = msg.eta, msg.expires
        self._emit("task-sent", {
            "uuid": msg.id, "root_id": msg.root_id or msg.id, "parent_id": msg.parent_id, "name": msg.task,
            "args": msg.argsrepr or safe_repr(tuple(msg.args)), "kwargs": msg.kwargsrepr or safe_repr(dict(msg.kwargs)),
            "retries": msg.retries, "eta": eta.isoformat() if eta else None,
            "expires": expires.isoformat() if expires else None, "queue": msg.queue, "exchange": "",
            "routing_key": msg.queue, "priority": msg.priority, "group": msg.group,
        })

    def _adopt_after_fork(self) -> None:
        """In a forked child the parent's thread, buffer and locks (perhaps held by then) are not its own."""
        if self._pid != _pid:
            self._pid, self._thread, self._buffer = _pid, None, []
            self._lock, self._flush_lock = threading.RLock(), threading.Lock()

    def _ensure_thread(self) -> None:
        if self._thread is None:  # none yet, or reset in a forked child; its loop ends when the dispatcher closes
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
        """Append everything buffered (one broker call).

        Flushes from two threads (the dispatcher's own and an explicit one) take turns, so a batch
        taken later never reaches the stream before one taken earlier.
        """
        self._adopt_after_fork()
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return
            conf = self.app.conf
            try:
                self.app.broker.stream_append(STREAM, batch, maxlen=conf.event_stream_maxlen,
                                              max_age=conf.event_stream_max_age)
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
            if isinstance(event, dict):
                event["_cursor"] = cursor
                events.append(event)
        return events

    def itercapture(self, limit: int | None = None, timeout: float = 1.0) -> Iterator[dict[str, Any]]:
        count = 0
        while limit is None or count < limit:
            for event in self.read(timeout=timeout):
                yield event
                count += 1


class Receiver(EventReceiver):
    """Celery-style receiver: ``Receiver(app, handlers={"task-failed": fn, "*": log}).capture()``.

    ``cursor`` resumes after an event already seen (``event["_cursor"]``); without one, reading
    starts at the oldest retained event, or at the newest with ``from_now=True``.
    """

    def __init__(self, app: Celery, *args: Any, handlers: dict[str, Listener] | None = None,
                 cursor: str | None = None, from_now: bool = False, **_: Any) -> None:
        super().__init__(app, cursor=cursor, from_now=from_now)
        self.handlers = dict(handlers or {})
        self.should_stop = False

    def process(self, event: dict[str, Any]) -> None:
        handler = self.handlers.get(event.get("type", "")) or self.handlers.get("*")
        if handler is not None:
            call_listener(handler, event)

    def capture(self, limit: int | None = None, timeout: float | None = None, wakeup: bool = True) -> int:
        """Hand events to the handlers until ``limit`` events, ``timeout`` seconds, or ``should_stop``."""
        if wakeup:
            self.wakeup_workers()
        deadline = None if timeout is None else time.monotonic() + timeout
        count = 0
        while not self.should_stop and (limit is None or count < limit):
            wait = 1.0 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                break
            for event in self.read(limit=1000 if limit is None else limit - count, timeout=min(wait, 1.0)):
                self.process(event)
                count += 1
        return count

    def wakeup_workers(self) -> None:
        """Ask every worker for a heartbeat now, so a new receiver sees them at once."""
        try:
            self.app.control.broadcast("heartbeat")
        except Exception as exc:
            logger.warning("could not ask workers for a heartbeat: %r", exc)


class StreamListener(threading.Thread):
    """Runs a receiver forever in the background; a broker outage pauses it, never ends it."""

    def __init__(self, receiver: Receiver) -> None:
        super().__init__(name="celeriac-event-listener", daemon=True)
        self.receiver = receiver

    def run(self) -> None:
        while not self.receiver.should_stop:
            try:
                self.receiver.capture(timeout=1.0, wakeup=False)
            except Exception as exc:
                logger.warning("reading events failed (%r); retrying", exc)
                time.sleep(1.0)

    def stop(self) -> None:
        self.receiver.should_stop = True

