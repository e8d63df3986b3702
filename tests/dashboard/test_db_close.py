"""The dashboard's own database: closing it never pulls a connection from under another thread."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from celeriac.dashboard.db import SQLiteDatabase


def test_close_while_the_ingester_reads_does_not_crash_the_process(tmp_path):
    """Threads keep querying while another closes the database over and over (in a child process:
    the failure this guards against is a segmentation fault, which would take the test run with it)."""
    script = textwrap.dedent("""
        import os, sys, threading, time
        from celeriac.dashboard.db import SQLiteDatabase

        db = SQLiteDatabase("sqlite:///" + sys.argv[1])
        db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)")
        with db.transaction() as conn:
            db.executemany(conn, "INSERT INTO t (v) VALUES (?)", [(os.urandom(200),) for _ in range(20000)])
        stop = threading.Event()
        reads = []

        def reader():
            while not stop.is_set():
                reads.append(db.scalar("SELECT count(*) FROM t WHERE v > x'80'"))

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            db.close()
            time.sleep(0.001)
        stop.set()
        for t in threads:
            t.join()
        print("reads", len(reads), min(reads) > 0)
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "dash.sqlite3")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    count, all_found = done.stdout.split()[1:]
    assert int(count) > 0 and all_found == "True"


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
