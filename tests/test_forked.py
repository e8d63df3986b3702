"""Forked children of the prefork pool: notices arrive whole, ends and exit statuses are seen."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from celeriac.worker.forked import ForkedProcess

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def _wait_readable(fd: int, timeout: float = 10.0) -> None:
    ready, _, _ = select.select([fd], [], [], timeout)
    assert ready, f"fd {fd} not readable within {timeout}s"


def _send_and_exit(conn, payloads, code):
    for payload in payloads:
        conn.send_bytes(payload)
    raise SystemExit(code)


def test_notices_arrive_whole_even_past_the_pipe_buffer_and_the_exit_code_is_read():
    big = os.urandom(200_000)  # three times a pipe's buffer: the reader sees it in pieces
    child = ForkedProcess(_send_and_exit, ([b"first", big, b""], 3), name="ForkPoolWorker-9")
    child.start()
    got: list[bytes] = []
    while len(got) < 3:
        _wait_readable(child.notices.fileno())
        got += child.notices.read()
    _wait_readable(child.sentinel)
    child.join(5)
    assert got == [b"first", big, b""]
    assert child.exitcode == 3


def _sleep_forever(conn):
    conn.send_bytes(b"up")
    while True:
        time.sleep(1)


def test_a_killed_child_is_seen_through_its_sentinel_with_the_signal_as_exit_code():
    child = ForkedProcess(_sleep_forever, (), name="ForkPoolWorker-1")
    child.start()
    _wait_readable(child.notices.fileno())
    assert child.notices.read() == [b"up"]
    assert child.exitcode is None  # still running
    os.kill(child.pid, signal.SIGKILL)
    _wait_readable(child.sentinel)
    child.join(5)
    assert child.exitcode == -signal.SIGKILL


def _raise(conn):
    raise RuntimeError("boom in the child")


def test_an_exception_in_the_child_ends_it_with_code_1():
    child = ForkedProcess(_raise, (), name="ForkPoolWorker-2")
    child.start()
    child.join(10)
    assert child.exitcode == 1


def test_a_child_names_its_log_records_and_does_not_read_the_terminal(tmp_path):
    """Run in a fresh interpreter (no multiprocessing loaded), as a worker supervisor is."""
    script = tmp_path / "child_names.py"
    script.write_text(textwrap.dedent("""
        import logging, select, sys
        from celeriac.worker.forked import ForkedProcess

        def target(conn):
            record = logging.getLogger("x").makeRecord("x", logging.INFO, __file__, 1, "m", (), None)
            conn.send_bytes(f"{record.processName}|{sys.stdin.read()!r}".encode())

        child = ForkedProcess(target, (), name="ForkPoolWorker-7")
        child.start()
        select.select([child.notices.fileno()], [], [], 30)
        notice = child.notices.read()[0].decode()
        child.join(30)
        here = logging.getLogger("x").makeRecord("x", logging.INFO, __file__, 1, "m", (), None).processName
        print("multiprocessing" in sys.modules, child.exitcode, notice, here)
    """))
    out = subprocess.run([sys.executable, str(script)], input="typed on the terminal", capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.split() == ["False", "0", "ForkPoolWorker-7|''", "MainProcess"]


def test_a_shutdown_that_comes_while_a_child_forks_still_reaches_that_child(monkeypatch):
    """The supervisor replaces a child (after a hard time limit, say) just as SIGTERM arrives: the
    new child must be told to stop too, or the supervisor waits for it for ever."""
    import types

    from celeriac import Celery
    from celeriac.worker import prefork
    from celeriac.worker.options import WorkerOptions

    pool = prefork.PreforkPool(types.SimpleNamespace(app=Celery("t", broker="memory://")), WorkerOptions(hostname="h"))
    told: list[tuple[int, int]] = []

    class Forking:
        """Stands for a child being forked: the shutdown lands before the supervisor records it."""

        def __init__(self, target, args, name, blocked=()):
            self.pid, self.notices = 4242, object()

        def start(self):
            pool.stop()  # what the SIGTERM handler does, between the fork and the bookkeeping

    monkeypatch.setattr(prefork, "ForkedProcess", Forking)
    monkeypatch.setattr(prefork.os, "kill", lambda pid, signum: told.append((pid, signum)))
    try:
        pool._spawn()
    finally:
        os.close(pool._wake_r)
        os.close(pool._wake_w)
    assert told == [(4242, signal.SIGUSR1)]


def _take_stop_late(conn, go_fd):
    """A child that installs its stop handler only when the parent says so (as a busy fork might)."""
    os.read(go_fd, 1)  # the parent has already signalled by now
    stopped = []
    signal.signal(signal.SIGUSR1, lambda *_: stopped.append(True))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    raise SystemExit(0 if stopped else 3)


@pytest.mark.parametrize("blocked", [(signal.SIGUSR1,), ()])
def test_a_stop_signal_sent_before_the_child_handles_it_waits_for_its_handler(blocked):
    go_r, go_w = os.pipe()
    child = ForkedProcess(_take_stop_late, (go_r,), name="late-handler", blocked=blocked)
    try:
        child.start()
        os.kill(child.pid, signal.SIGUSR1)  # before the child has a handler
        os.write(go_w, b"x")
        child.join(10)
    finally:
        os.close(go_r)
        os.close(go_w)
    if blocked:
        assert child.exitcode == 0  # the signal waited and reached the handler
    else:
        assert child.exitcode == -signal.SIGUSR1  # the default action: the child dies of it
    # the parent's own mask is as it was
    assert signal.SIGUSR1 not in signal.pthread_sigmask(signal.SIG_BLOCK, set())
