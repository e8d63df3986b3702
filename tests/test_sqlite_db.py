"""The embedded SQLite file's connections: per thread, and closing never pulls one from under a reader."""

from __future__ import annotations

import threading

from celeriac.sqlite_db import Database

from .close_race import assert_close_is_safe_while_others_read

SCHEMA = "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)"


def test_close_while_other_threads_read_does_not_crash_the_process(tmp_path):
    """Threads keep querying while another closes the database over and over."""
    assert_close_is_safe_while_others_read(
        tmp_path / "race.sqlite3",
        setup="""
            from celeriac.sqlite_db import Database
            db = Database(sys.argv[1], "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)")
        """,
        fill='db.connection().executemany("INSERT INTO t (v) VALUES (?)", [(os.urandom(200),) for _ in range(20000)])',
        read="""db.connection().execute("SELECT count(*) FROM t WHERE v > x'80'").fetchone()[0]""",
    )


def test_close_ends_this_threads_connection_and_the_next_use_opens_a_new_one(tmp_path):
    db = Database(str(tmp_path / "db.sqlite3"), SCHEMA)
    first = db.connection()
    first.execute("INSERT INTO t (v) VALUES (x'01')")
    db.close()
    second = db.connection()
    assert second is not first
    assert second.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(db.connection()))
    thread.start()
    thread.join()
    assert other[0] is not second  # one connection per thread
