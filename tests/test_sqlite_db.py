"""The embedded SQLite file's connections: per thread, and closing never pulls one from under a reader."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from celeriac.sqlite_db import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)"


def test_close_while_other_threads_read_does_not_crash_the_process(tmp_path):
    """Threads keep querying while another closes the database over and over (in a child process:
    the failure this guards against is a segmentation fault, which would take the test run with it)."""
    script = textwrap.dedent("""
        import os, sys, threading, time
        from celeriac.sqlite_db import Database

        db = Database(sys.argv[1], "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)")
        db.connection().executemany("INSERT INTO t (v) VALUES (?)", [(os.urandom(200),) for _ in range(20000)])
        stop = threading.Event()
        reads = []

        def reader():
            while not stop.is_set():
                reads.append(db.connection().execute("SELECT count(*) FROM t WHERE v > x'80'").fetchone()[0])

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
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "race.sqlite3")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    count, all_found = done.stdout.split()[1:]
    assert int(count) > 0 and all_found == "True"


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
