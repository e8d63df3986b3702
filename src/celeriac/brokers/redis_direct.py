"""Script calls on a connection each thread keeps to itself: the hot path of sends, claims and settles.

Going through redis-py's client costs about 30 us of CPU per command on top of the round trip
(checking a pooled connection out and in, asking the socket whether stale data waits, the retry
wrapper, reply callbacks), as much as the round trip's own system calls. Sends, claims and settles
are one script call each, so they take a shortcut: ``EVALSHA`` written and read on a connection
that only this thread of this process uses, made by the client's own pool (same address, TLS,
credentials, timeouts and health checks).

Anything unusual leaves the shortcut for the client's ordinary path, which already knows what to
do: a script the server does not know (after a restart or ``SCRIPT FLUSH``) is loaded there, and a
lost connection is retried there with backoff and reported once. A script whose reply was lost that
way may run twice, exactly as under redis-py's own retry. While an outage lasts, calls go straight
to the ordinary path, so none of them first waits out a connect timeout here.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .redis_connection import CONNECTION_ERRORS, Outage
from .redis_lib import redis

logger = logging.getLogger("celeriac.redis")
NoScriptError = redis.exceptions.NoScriptError
NO_RETRY = redis.retry.Retry(redis.backoff.NoBackoff(), 0)


class DirectScripts:
    """Runs registered scripts on per-thread connections, falling back to the client on trouble."""

    def __init__(self, outage: Outage) -> None:
        self.outage = outage
        self._local = threading.local()
        self._open: weakref.WeakSet[Any] = weakref.WeakSet()  # every connection made, for close()

    def call(self, script: Any, keys: Sequence[str], args: Sequence[Any], client: Any) -> Any:
        if self.outage.down:
            return script(keys=keys, args=args, client=client)
        conn = self._connection(client.connection_pool)
        try:
            _write(conn, script, keys, args)
            reply = conn.read_response()
        except NoScriptError:
            return script(keys=keys, args=args, client=client)
        except CONNECTION_ERRORS as exc:  # an outage is logged by the ordinary path if it lasts
            logger.debug("script connection lost (%r); calling again through the pool", exc)
            self._drop(client.connection_pool, conn)
            return script(keys=keys, args=args, client=client)
        return reply

    def call_many(self, script: Any, calls: Iterable[tuple[Sequence[str], Sequence[Any]]], client: Any,
                  done: Callable[[int], None], depth: int = 2) -> None:
        """Run ``script`` once per (keys, args), in order, with up to ``depth`` calls in flight.

        ``calls`` may be built lazily: Redis runs one call while the next is built and the one
        before is reported through ``done(index)``, called once each call is known to have run. A call
        the shortcut could not complete (script not loaded, connection lost: from there on the
        replies are unknown) runs again through the ordinary path, as ``call`` does for one. A
        script error is raised once every call was made, after ``done`` for those that ran.
        """
        conn = None if self.outage.down else self._connection(client.connection_pool)
        pipeline = _Pipeline(self, script, client, conn, done)
        try:
            for index, (keys, args) in enumerate(calls):
                pipeline.write(index, keys, args)
                while len(pipeline.flight) >= depth:
                    pipeline.land_oldest()
            while pipeline.flight:
                pipeline.land_oldest()
        finally:
            if pipeline.flight and pipeline.conn is not None:  # left early: unread replies would answer the next call
                self._drop(client.connection_pool, pipeline.conn)
        if pipeline.failures:
            raise pipeline.failures[0]

    def start(self, script: Any, keys: Sequence[str], args: Sequence[Any], client: Any) -> Any | None:
        """Write one call on this thread's connection and return the connection, its reply unread.

        None when the shortcut is not usable now (an outage, or the write failed): the caller goes
        the ordinary way. Until ``finish`` reads the reply nothing else may use the connection.
        """
        return self.start_commands([("EVALSHA", script.sha, len(keys), *keys, *args)], client)

    def finish(self, conn: Any) -> Any | None:
        """The reply to ``start`` (a script error is raised); None when the connection was lost.

        It may run in another thread than ``start``: a lost connection is only closed here, and
        reconnects when its own thread uses it next.
        """
        try:
            return conn.read_response()
        except CONNECTION_ERRORS as exc:
            logger.debug("script connection lost (%r)", exc)
            conn.disconnect()
            return None

    def start_commands(self, commands: Sequence[Sequence[Any]], client: Any) -> Any | None:
        """Write plain commands (no script) on this thread's connection, their replies unread.

        For callers that have a scripted way to do the same: None (an outage, or the write failed)
        tells them to take it. Until ``finish_commands`` reads the replies nothing else may use the
        connection.
        """
        if self.outage.down:
            return None
        conn = self._connection(client.connection_pool)
        try:
            conn.send_packed_command(conn.pack_commands(commands))
        except CONNECTION_ERRORS as exc:
            logger.debug("shortcut connection lost (%r)", exc)
            self._drop(client.connection_pool, conn)
            return None
        return conn

    def finish_commands(self, conn: Any, count: int) -> list[Any] | None:
        """The ``count`` replies to ``start_commands``, an error reply as its exception (every reply
        is read, so the connection stays in step); None when the connection was lost."""
        replies: list[Any] = []
        try:
            for _ in range(count):
                try:
                    replies.append(conn.read_response())
                except redis.exceptions.ResponseError as exc:
                    replies.append(exc)
        except CONNECTION_ERRORS as exc:
            logger.debug("command connection lost (%r)", exc)
            conn.disconnect()
            return None
        return replies

    def _connection(self, pool: Any) -> Any:
        """This thread's connection from ``pool`` (one per pool: a fetcher's client retries differently)."""
        held: dict[int, Any] | None = getattr(self._local, "held", None)
        if held is None or self._local.pid != os.getpid():
            # a new thread, or a forked child: never write on a socket the parent also uses
            held = self._local.held = {}
            self._local.pid = os.getpid()
        conn = held.get(id(pool))
        if conn is None:
            conn = held[id(pool)] = pool.make_connection()
            conn.retry = NO_RETRY  # the ordinary path does the retrying, once
            self._open.add(conn)
        return conn

    def _drop(self, pool: Any, conn: Any) -> None:
        held: dict[int, Any] | None = getattr(self._local, "held", None)  # None: close() ran meanwhile
        if held is not None and held.get(id(pool)) is conn:
            del held[id(pool)]
        self._open.discard(conn)
        conn.disconnect()

    def close(self) -> None:
        """Close every connection this process made (other threads' included: call it when they are done)."""
        for conn in list(self._open):
            if conn.pid == os.getpid():
                conn.disconnect()
        self._open = weakref.WeakSet()
        self._local = threading.local()


def _write(conn: Any, script: Any, keys: Sequence[str], args: Sequence[Any]) -> None:
    """Send one ``EVALSHA`` of ``script`` on ``conn`` without reading the reply."""
    conn.send_packed_command(conn.pack_command("EVALSHA", script.sha, len(keys), *keys, *args))


class _Pipeline:
    """The calls of one ``call_many`` written ahead of their replies on a thread's own connection."""

    def __init__(self, direct: DirectScripts, script: Any, client: Any, conn: Any, done: Callable[[int], None]) -> None:
        self.direct = direct
        self.script = script
        self.client = client
        self.conn = conn  # None: the ordinary path for every call from now on
        self.done = done
        self.flight: deque[tuple[int, Sequence[str], Sequence[Any]]] = deque()
        self.failures: list[Exception] = []

    def write(self, index: int, keys: Sequence[str], args: Sequence[Any]) -> None:
        if self.conn is None:
            self._ordinary(index, keys, args)
            return
        self.flight.append((index, keys, args))
        try:
            _write(self.conn, self.script, keys, args)
        except CONNECTION_ERRORS as exc:
            self._lost(exc)

    def land_oldest(self) -> None:
        """Read the oldest call's reply and report it."""
        index, keys, args = self.flight[0]
        try:
            self.conn.read_response()
        except NoScriptError:
            self.flight.popleft()
            self._ordinary(index, keys, args)
        except CONNECTION_ERRORS as exc:
            self._lost(exc)
        except redis.exceptions.ResponseError as exc:
            self.flight.popleft()
            self.failures.append(exc)
        else:
            self.flight.popleft()
            self.done(index)

    def _ordinary(self, index: int, keys: Sequence[str], args: Sequence[Any]) -> None:
        self.script(keys=keys, args=args, client=self.client)
        self.done(index)

    def _lost(self, exc: Exception) -> None:
        """Every call in flight goes again through the ordinary path, and so do the ones after."""
        logger.debug("script connection lost (%r); calling again through the pool", exc)
        self.direct._drop(self.client.connection_pool, self.conn)
        self.conn = None
        while self.flight:
            self._ordinary(*self.flight.popleft())
