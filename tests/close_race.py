"""A stress run for "closing never pulls a connection from under another thread", in a child process.

The failure it guards against is a segmentation fault, which would take the test run with it, so
the threads run in a fresh interpreter: ``setup`` defines ``db`` (20,000 rows in table ``t`` are
added through ``fill``), ``read`` counts rows on the calling thread's connection, and ``db.close()``
runs over and over meanwhile.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

_DRIVER = """
import os, sys, threading, time
{setup}
{fill}
stop = threading.Event()
reads = []

def reader():
    while not stop.is_set():
        reads.append({read})

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
"""


def assert_close_is_safe_while_others_read(path: Path, setup: str, fill: str, read: str) -> None:
    """Run the stress script on the database file ``path``; every read must have seen rows, and none crashed."""
    script = _DRIVER.format(setup=textwrap.dedent(setup), fill=textwrap.dedent(fill), read=read)
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    count, all_found = done.stdout.split()[1:]
    assert int(count) > 0 and all_found == "True"
