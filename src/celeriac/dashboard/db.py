"""Connections to the history store: one SQLite file (default) or PostgreSQL by URL.

Queries are written once with ``?`` placeholders; the PostgreSQL connection rewrites them. Each
thread gets its own connection, so the ingester thread and request threads never share one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from ..exceptions import ImproperlyConfigured

Row = dict[str, Any]


def mask_url(url: str | None) -> str:
    """A URL with its password replaced, safe to show on a page."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":**@", 1)
    return parts._replace(netloc=netloc).geturl()


_SECRET_KEYS = ("password", "secret", "token", "passwd", "api_key", "apikey", "private")


def redact(value: Any) -> Any:
    """A copy of a worker's reply with URL passwords masked and secret-looking settings hidden."""
    if isinstance(value, dict):
        return {k: "********" if isinstance(k, str) and any(w in k.lower() for w in _SECRET_KEYS) and v
                else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str) and "://" in value and "@" in value:
        try:
            return mask_url(value)
        except ValueError:
            return value
    return value


class Database:
    """Per-thread connections with ``query``/``execute``/``executemany`` and a transaction helper."""

    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    def _open(self) -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql

    @property
    def conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self.conn.execute(self._sql(sql), tuple(params))
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.conn.execute(self._sql(sql), tuple(params)).fetchall()
        return rows[0][0] if rows else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.transaction() as conn:
            conn.execute(self._sql(sql), tuple(params))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    def executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            conn.executemany(self._sql(sql), rows)

    def run(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> None:
        conn.execute(self._sql(sql), tuple(params))

    def close(self) -> None:
        """Close this thread's connection now; the other threads' connections as soon as they are idle.

        Another thread (the ingester) may be running a statement, and closing a SQLite connection
        under it crashes the interpreter, so other threads' connections are only let go of here:
        each closes when its last reference goes.
        """
        own = getattr(self._local, "conn", None)
        self._local = threading.local()
        if own is not None:
            with contextlib.suppress(Exception):
                own.close()


class SQLiteDatabase(Database):
    """WAL mode so page requests read while the ingester writes."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        path = unquote(urlsplit(url).path)
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise ImproperlyConfigured(f"dashboard store URL {url!r} names no file")
        self.path = path if os.path.isabs(path) else os.path.abspath(path)

    def _open(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


class PostgresDatabase(Database):
    """psycopg 3, autocommit outside explicit transactions."""

    dialect = "postgres"

    def _open(self) -> Any:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImproperlyConfigured("a postgresql:// dashboard store needs: pip install 'celeriac[postgres]'") from exc
        return psycopg.connect(self.url, autocommit=True)

    def _sql(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        conn = self.conn
        with conn.transaction():
            yield conn

    def executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)


def open_database(url: str) -> Database:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return SQLiteDatabase(url)
    if scheme in ("postgresql", "postgres"):
        return PostgresDatabase(url)
    raise ImproperlyConfigured(f"unsupported dashboard store {mask_url(url)!r}: use sqlite:///file.db or postgresql://...")
