"""One SQLite database file shared by the SQLite broker and result backend.

WAL mode lets readers run beside one writer; writes use short ``BEGIN IMMEDIATE`` transactions.
``synchronous=NORMAL`` keeps every commit safe from a killed process (not from power loss).
Connections are per thread and per process (a forked child opens its own).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from .exceptions import ImproperlyConfigured


def path_from_url(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite://`` (default file)."""
    parts = urlsplit(url)
    if parts.scheme not in ("sqlite", "sqla+sqlite", "db+sqlite"):
        raise ImproperlyConfigured(f"not an sqlite URL: {url!r}; write sqlite:///path/to/file.db")
    if parts.netloc:
        raise ImproperlyConfigured(
            f"bad sqlite URL {url!r}: use three slashes for a relative path (sqlite:///tasks.db) "
            "or four for an absolute one (sqlite:////var/lib/tasks.db)"
        )
    path = unquote(parts.path)
    if path.startswith("/"):
        path = path[1:]
    if path in ("", ":memory:"):
        raise ImproperlyConfigured(
            f"sqlite URL {url!r} names no file; workers run in other processes and need one "
            "(sqlite:///celeriac.sqlite3), or use memory:// inside one process"
        )
    return path if os.path.isabs(path) else os.path.abspath(path)


class Database:
    """Lazily opened, per-thread connections to one file, with the schema applied once."""

    def __init__(self, path: str, schema: str) -> None:
        self.path = path
        self.schema = schema
        self._local = threading.local()
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []

    def connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            self.abandon_inherited()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            raise ImproperlyConfigured(f"directory of the sqlite file does not exist: {directory}")
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        with self._write(conn):
            for statement in _statements(self.schema):
                conn.execute(statement)
        return conn

    @staticmethod
    @contextlib.contextmanager
    def _write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``) on this thread's connection."""
        return self._write(self.connection())

    def abandon_inherited(self) -> None:
        """In a forked child: never use, and never close, the parent's connections.

        Closing a connection inherited across fork can disturb the parent's locks and transactions
        (SQLite says not to carry connections across fork), so they are kept alive, untouched.
        """
        with self._lock:
            _ABANDONED.extend(self._connections)
            self._connections = []
        self._local = threading.local()
        self._pid = os.getpid()

    def close(self) -> None:
        """Close this thread's connection now; the other threads' connections as soon as they are idle.

        Closing a connection while another thread runs a statement on it crashes the interpreter
        (sqlite3 does not guard against it; a background thread such as the dashboard's ingester may
        be reading). So other threads' connections are only let go of here: each is closed when its
        last reference goes, at once if it is idle, or when the statement using it ends.
        """
        own: sqlite3.Connection | None = getattr(self._local, "conn", None)
        with self._lock:
            self._connections = []
        self._local = threading.local()
        if own is not None:
            with contextlib.suppress(sqlite3.Error):
                own.close()


_ABANDONED: list[sqlite3.Connection] = []


def _statements(schema: str) -> list[str]:
    return [part.strip() for part in schema.split(";") if part.strip()]
