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
from collections.abc import Sequence
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
            conn.send_packed_command(conn.pack_command("EVALSHA", script.sha, len(keys), *keys, *args))
            reply = conn.read_response()
        except NoScriptError:
            return script(keys=keys, args=args, client=client)
        except CONNECTION_ERRORS as exc:  # an outage is logged by the ordinary path if it lasts
            logger.debug("script connection lost (%r); calling again through the pool", exc)
            self._drop(client.connection_pool, conn)
            return script(keys=keys, args=args, client=client)
        return reply

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
        self._local.held.pop(id(pool), None)
        self._open.discard(conn)
        conn.disconnect()

    def close(self) -> None:
        """Close every connection this process made (other threads' included: call it when they are done)."""
        for conn in list(self._open):
            if conn.pid == os.getpid():
                conn.disconnect()
        self._open = weakref.WeakSet()
        self._local = threading.local()
