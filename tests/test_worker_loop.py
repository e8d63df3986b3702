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


class _Claimed:
    """A fetch made ahead on the memory broker: claimed when started, handed over once."""

    def __init__(self, batch: list[Delivery]) -> None:
        self.started = loop.time.monotonic()
        self._batch = batch

    def collect(self) -> list[Delivery]:
        batch, self._batch = self._batch, []
        return batch


def test_a_slot_claims_ahead_as_many_quick_tasks_as_fit_its_time_budget(memory_url, monkeypatch):
    import threading
    import time

    from celeriac import Celery
    from celeriac.worker.handler import TaskHandler
    from celeriac.worker.revoked import RevokedIds

    app = Celery("ahead", broker=memory_url, backend=memory_url)

    @app.task(name="ahead.work")
    def work(seconds):
        time.sleep(seconds)

    broker = app.broker
    asked: list[int] = []

    def fetch_ahead(queues, limit, *, consumer):
        asked.append(limit)
        return _Claimed(broker.fetch(queues, limit, consumer=consumer, timeout=0))

    monkeypatch.setattr(broker, "fetch_ahead", fetch_ahead, raising=False)
    handler = TaskHandler(app, "test@host", RevokedIds(60))
    holdings = loop.Holdings(broker, lease=30.0)
    slot_loop = loop.SlotLoop(handler, holdings, holdings.slot("s1"), queues=["celery"], consumer="c1", prefetch=4,
                              runner=loop.LoopRunner())

    def drain(count: int, seconds: float) -> list[int]:
        asked.clear()
        results = [work.delay(seconds) for _ in range(count)]
        slot_loop.processed = 0
        slot_loop.run(threading.Event(), max_tasks=count)
        assert all(r.state == "SUCCESS" for r in results)
        return list(asked)

    quick = drain(300, 0)  # each task well under AHEAD_BUDGET / 16
    assert 4 < max(quick) <= 4 * loop.AHEAD_GROWTH
    assert min(quick) >= 4
    slow = drain(60, 0.003)  # about one task per AHEAD_BUDGET: the prefetch limit again
    assert slow[-5:] == [4] * 5
