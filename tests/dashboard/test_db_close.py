"""The dashboard's own database: closing it never pulls a connection from under another thread."""

from __future__ import annotations

import threading

from celeriac.dashboard.db import SQLiteDatabase

from ..close_race import assert_close_is_safe_while_others_read


def test_close_while_the_ingester_reads_does_not_crash_the_process(tmp_path):
    """Threads keep querying while another closes the database over and over."""
    assert_close_is_safe_while_others_read(
        tmp_path / "dash.sqlite3",
        setup="""
            from celeriac.dashboard.db import SQLiteDatabase
            db = SQLiteDatabase("sqlite:///" + sys.argv[1])
            db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)")
        """,
        fill="""
            with db.transaction() as conn:
                db.executemany(conn, "INSERT INTO t (v) VALUES (?)", [(os.urandom(200),) for _ in range(20000)])
        """,
        read="""db.scalar("SELECT count(*) FROM t WHERE v > x'80'")""",
    )


def test_close_ends_this_threads_connection_and_other_threads_keep_working(tmp_path):
    db = SQLiteDatabase(f"sqlite:///{tmp_path / 'dash.sqlite3'}")
    db.execute("CREATE TABLE t (v INTEGER)")
    db.execute("INSERT INTO t (v) VALUES (1)")
    other_conn = []
    opened, closed, checked = threading.Event(), threading.Event(), []

    def other() -> None:
        other_conn.append(db.conn)
        opened.set()
        closed.wait(5)
        checked.append(db.scalar("SELECT v FROM t"))  # a fresh connection after close()

    thread = threading.Thread(target=other)
    thread.start()
    opened.wait(5)
    mine = db.conn
    db.close()
    closed.set()
    thread.join(5)
    assert checked == [1]
    assert db.conn is not mine and db.scalar("SELECT v FROM t") == 1
    db.close()
