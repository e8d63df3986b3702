"""What only the SQLite broker does: its wake-up sockets, as threads of one process use them.

The contract suite (tests/contract) covers the semantics every broker shares.
"""

from __future__ import annotations

import threading
import time

from celeriac.brokers import from_url as broker_from_url
from celeriac.brokers.base import Outgoing


def test_a_thread_about_to_wait_still_wakes_for_a_message_another_thread_was_woken_with(tmp_path):
    """Two threads fetch the same queue from one broker (``-P threads``). A publish of two messages
    sends one wake-up per socket; the first thread must not use up the second one's."""
    broker = broker_from_url(f"sqlite:///{tmp_path / 'broker.sqlite3'}", {})
    a_waiting, b_about_to_wait, let_b_wait = threading.Event(), threading.Event(), threading.Event()
    next_due_in = broker._next_due_in

    def paused_before_waiting(queues):  # called between a fetch's empty claim and its wait
        if threading.current_thread().name == "b" and not let_b_wait.is_set():
            b_about_to_wait.set()
            let_b_wait.wait(10)
        elif threading.current_thread().name == "a":
            a_waiting.set()
        return next_due_in(queues)

    broker._next_due_in = paused_before_waiting
    got: dict[str, list[str]] = {}
    took: dict[str, float] = {}

    def fetch(name: str) -> None:
        started = time.monotonic()
        got[name] = [d.message_id for d in broker.fetch(["q"], 1, consumer=name, timeout=8)]
        took[name] = time.monotonic() - started

    a = threading.Thread(target=fetch, args=("a",), name="a")
    b = threading.Thread(target=fetch, args=("b",), name="b")
    try:
        a.start()
        assert a_waiting.wait(5)
        b.start()
        assert b_about_to_wait.wait(5)
        broker.publish_many([Outgoing("q", b"1", "m1"), Outgoing("q", b"2", "m2")])
        a.join(5)
        assert got["a"] == ["m1"]
        released = time.monotonic()
        let_b_wait.set()
        b.join(10)
        assert got["b"] == ["m2"], "the second thread slept through its message"
        assert time.monotonic() - released < 0.5, f"the second thread woke only after {took['b']:.1f} s"
    finally:
        let_b_wait.set()
        a.join(10)
        b.join(10)
        broker.close()


def test_each_fetching_thread_waits_on_a_socket_of_its_own_and_removes_it_when_it_ends(tmp_path):
    broker = broker_from_url(f"sqlite:///{tmp_path / 'broker.sqlite3'}", {})
    wake_dir = broker.notifier.directory

    def sockets() -> list[str]:
        return [p.name for p in wake_dir.iterdir() if p.name.startswith("q-own.")]

    got: list[str] = []
    threads = [threading.Thread(target=lambda i=i: got.extend(
        d.message_id for d in broker.fetch(["own"], 1, consumer=f"c{i}", timeout=10))) for i in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(sockets()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(sockets()) == 3
    broker.publish_many([Outgoing("own", b"x", f"m{i}") for i in range(3)])
    for thread in threads:
        thread.join(10)
    assert sorted(got) == ["m0", "m1", "m2"]
    assert sockets() == [], "a thread that ended left its socket behind"
    broker.fetch(["own"], 1, consumer="main", timeout=0)
    assert len(sockets()) == 1
    broker.close()
    assert sockets() == [], "close() left a socket file behind"
