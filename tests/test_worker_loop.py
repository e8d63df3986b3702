"""A slot never runs prefetched messages whose leases may have lapsed while its process was stopped."""

from __future__ import annotations

from celeriac.brokers.base import Delivery
from celeriac.brokers.memory import MemoryBroker
from celeriac.worker import loop


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_prefetched_messages_are_dropped_after_the_lease_lapses(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(loop.time, "monotonic", clock)
    holdings = loop.Holdings(MemoryBroker("memory://loop-test"), lease=5.0)
    slot = holdings.slot("s1")
    holdings.fill(slot, [Delivery("q", b"", f"m{i}", str(i)) for i in range(3)])
    assert holdings.next(slot).message_id == "m0"
    holdings.done(slot)
    clock.now += 10  # the process was stopped (SIGSTOP, a cut network) for twice the lease
    assert holdings.next(slot) is None
    assert not slot.buffer


def test_renewed_leases_keep_prefetched_messages_runnable(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(loop.time, "monotonic", clock)
    broker = MemoryBroker("memory://loop-test-2")
    holdings = loop.Holdings(broker, lease=5.0)
    slot = holdings.slot("s1")
    holdings.fill(slot, [Delivery("q", b"", "m0", "1"), Delivery("q", b"", "m1", "2")])
    clock.now += 3.9
    holdings._renew_and_free(renew=True)  # what the keeper thread does every third of a lease
    clock.now += 3.9
    assert holdings.next(slot).message_id == "m0"
