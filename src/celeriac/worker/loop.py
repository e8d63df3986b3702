"""The fetch-run-settle loop of one execution slot (a prefork child, a pool thread, or solo).

Each slot fetches for itself, so no message hops through a parent process. A keeper thread per
process renews the leases of everything held, and gives back prefetched messages a slot has
not started when its current task runs long, so a busy slot never starves an idle one.

While the queue is deep and tasks are quick, a slot starts its next fetch as it starts the last
message it holds (on brokers that can, ``Broker.fetch_ahead``) and collects it after that task, so
the broker's work overlaps the task's instead of following it. The slot then holds, for the length
of one task, the running message and one more batch. If that task runs long, the keeper collects
the batch and gives it back, as it does with prefetched messages.

A batch fetched ahead is sized by time, not only by count: it holds as many messages as the slot's
recent tasks would run in ``AHEAD_BUDGET``, at least the prefetch limit and at most
``AHEAD_GROWTH`` times it. Each claim costs the same round trip whatever its size, so for tasks of
a fraction of a millisecond that round trip, not the task, is the cost; a few milliseconds of such
tasks are not worth keeping from another worker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from . import ratelimit
from .executor import Outcome, execute, execute_async
from .handler import Job, TaskHandler

if TYPE_CHECKING:
    from ..brokers.base import Broker, Delivery, PendingFetch

logger = logging.getLogger("celeriac.worker")

RELEASE_AFTER = 0.5  # seconds a task may run before its slot's unstarted prefetch is given back
FREE_CHECK_EVERY = 0.1
QUICK_TASK = 0.05  # a slot fetches ahead only while its last task took less than this
AHEAD_BUDGET = 0.004  # seconds of recent tasks' running time one batch fetched ahead may hold
AHEAD_GROWTH = 4  # a batch fetched ahead holds at most this many times the prefetch limit


@dataclass
class Slot:
    """What one slot holds: prefetched deliveries and the one running."""

    name: str
    buffer: deque[Delivery] = field(default_factory=deque)
    fetched_at: float = 0.0
    running: Delivery | None = None
    running_since: float = 0.0
    job: Job | None = None
    ahead: PendingFetch | None = None  # a fetch started before the running task, not yet collected


class Holdings:
    """Every delivery a process holds, with a keeper thread that renews leases and frees prefetch."""

    def __init__(self, broker: Broker, lease: float, on_free: Callable[[list[Delivery]], None] | None = None) -> None:
        self.broker = broker
        self.lease = lease
        self.on_free = on_free
        self.renewed_at = 0.0
        self.slots: list[Slot] = []
        self.loose: dict[str, Delivery] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="celeriac-leases", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def slot(self, name: str) -> Slot:
        slot = Slot(name)
        with self.lock:
            self.slots.append(slot)
        return slot

    def fill(self, slot: Slot, deliveries: Sequence[Delivery], fetched_at: float | None = None) -> None:
        with self.lock:
            slot.buffer.extend(deliveries)
            slot.fetched_at = time.monotonic() if fetched_at is None else fetched_at

    def start_ahead(self, slot: Slot, pending: PendingFetch) -> None:
        with self.lock:
            slot.ahead = pending

    def end_ahead(self, slot: Slot) -> None:
        with self.lock:
            slot.ahead = None

    def next(self, slot: Slot) -> Delivery | None:
        with self.lock:
            if slot.buffer and self._lapsed(slot):
                # this process was stopped or cut off for longer than the lease: another consumer may own
                # these messages now, so they are neither run nor given back here
                logger.warning("%s: leases of %s prefetched message(s) may have lapsed; leaving them to the broker",
                               slot.name, len(slot.buffer))
                slot.buffer.clear()
            if not slot.buffer:
                return None
            slot.running, slot.running_since = slot.buffer.popleft(), time.monotonic()
            return slot.running

    def done(self, slot: Slot) -> None:
        with self.lock:
            slot.running, slot.job = None, None

    def _lapsed(self, slot: Slot) -> bool:
        """Whether the leases of the slot's prefetched messages may have run out (0.8 of a lease, for margin)."""
        return time.monotonic() - max(slot.fetched_at, self.renewed_at) > self.lease * 0.8

    def give_back(self, slot: Slot) -> None:
        """Release everything a slot holds but has not started (shutdown, recycling)."""
        with self.lock:
            unstarted, slot.buffer = list(slot.buffer), deque()
        if unstarted:
            self.broker.release(unstarted)

    def hold(self, deliveries: Sequence[Delivery]) -> None:
        """Track deliveries outside any slot (the async pool) so their leases are renewed."""
        with self.lock:
            self.loose.update((d.tag, d) for d in deliveries)

    def unhold(self, delivery: Delivery) -> None:
        with self.lock:
            self.loose.pop(delivery.tag, None)

    def running_jobs(self) -> list[Job]:
        with self.lock:
            return [s.job for s in self.slots if s.job is not None]

    def reserved(self) -> list[Delivery]:
        with self.lock:
            return [d for s in self.slots for d in s.buffer]

    def _keep(self) -> None:
        renew_every = max(0.05, min(self.lease / 3, 5.0))
        next_renewal = time.monotonic() + renew_every
        while not self.stop.wait(min(FREE_CHECK_EVERY, renew_every)):
            renew = time.monotonic() >= next_renewal
            if renew:
                next_renewal = time.monotonic() + renew_every
            try:
                self._renew_and_free(renew)
            except Exception as exc:  # the broker is away: the next round tries again
                logger.warning("lease renewal failed: %r", exc)

    def _renew_and_free(self, renew: bool) -> None:
        now = time.monotonic()
        held: list[Delivery] = []
        freed: list[Delivery] = []
        late: list[PendingFetch] = []
        with self.lock:
            for slot in self.slots:
                if slot.running is not None:
                    held.append(slot.running)
                    if now - slot.running_since > RELEASE_AFTER:
                        freed.extend(slot.buffer)
                        slot.buffer.clear()
                        if slot.ahead is not None:  # the slot clears it once it has collected it too
                            late.append(slot.ahead)
                held.extend(slot.buffer)
            held.extend(self.loose.values())
        for pending in late:  # fetched ahead of a task that turned out long: give the batch back
            freed.extend(pending.collect())  # the first collect gets the batch, later ones nothing
        if freed:
            self.broker.release(freed)
            if self.on_free:
                self.on_free(freed)
        if held and renew:
            started = time.monotonic()
            self.broker.renew(held, lease=self.lease)
            self.renewed_at = started


class StopFlag(Protocol):
    """Anything that says when to stop (an Event, or either of two)."""

    def is_set(self) -> bool: ...


Runner = Callable[[Job], Outcome]
Notify = Callable[[Job], None]


class SlotLoop:
    """Fetch for one slot, run, settle; never dies of a bad message or a broker outage."""

    def __init__(self, handler: TaskHandler, holdings: Holdings, slot: Slot, *, queues: Sequence[str], consumer: str,
                 prefetch: int, runner: Runner, on_start: Notify | None = None, on_done: Notify | None = None,
                 on_fetch: Callable[[Sequence[Delivery]], None] | None = None,
                 on_idle: Callable[[], None] | None = None) -> None:
        self.handler = handler
        self.holdings = holdings
        self.slot = slot
        self.queues = queues if isinstance(queues, list) else list(queues)  # the worker's list: add_consumer edits it
        self.consumer = consumer
        self.prefetch = max(1, prefetch)
        self.runner = runner
        self.on_start = on_start
        self.on_done = on_done
        self.on_fetch = on_fetch
        self.on_idle = on_idle
        self.processed = 0
        self._outage = False
        self._last_full = False
        self._quick = True  # the last task took less than QUICK_TASK
        self._task_seconds = QUICK_TASK  # a moving average of recent tasks' time in this slot

    def run(self, stop: StopFlag, max_tasks: int | None = None, memory_limit_kib: int | None = None) -> None:
        try:
            while not stop.is_set() and (max_tasks is None or self.processed < max_tasks):
                delivery = self.holdings.next(self.slot)
                if delivery is None:
                    self._refill()
                    continue
                if self._quick and self._last_full and not self.slot.buffer:
                    self._fetch_ahead()
                started = time.monotonic()
                self._process(delivery)
                took = time.monotonic() - started
                self._quick = took < QUICK_TASK
                self._task_seconds += (took - self._task_seconds) * 0.25
                self._collect_ahead()
                if memory_limit_kib and _rss_kib() > memory_limit_kib:
                    logger.info("child %s above %s KiB after a task: recycling", self.slot.name, memory_limit_kib)
                    break
        finally:
            self._collect_ahead()
            self.holdings.give_back(self.slot)
            self._flush()

    def _flush(self) -> None:
        try:
            self.handler.flush()
        except Exception as exc:  # unsettled messages come back after their lease
            logger.warning("could not settle finished tasks now (%r); they will be redelivered if this persists", exc)

    def _refill(self) -> None:
        """Take more work without waiting if there is some; settle what finished before waiting for more.

        Under load (the last fetch filled the prefetch) finished tasks keep batching, and the settler
        writes them within milliseconds; when the queue looks shallow or is empty they are written
        first, so a lightly loaded worker adds no round trip to its results.
        """
        if not self._last_full:
            self._flush()
        if self._fetch(timeout=0):
            return
        if self.on_idle:
            self.on_idle()
        self._flush()
        self._fetch(timeout=1.0)

    def _fetch(self, timeout: float) -> bool:
        broker = self.handler.app.broker
        try:
            batch = broker.fetch(self.queues, self.prefetch, consumer=self.consumer, timeout=timeout)
        except Exception as exc:
            if not self._outage:
                logger.warning("cannot fetch from the broker (%r); retrying", exc)
                self._outage = True
            time.sleep(1.0)
            return False
        if self._outage:
            logger.info("broker reachable again; consuming resumed")
            self._outage = False
        self._last_full = len(batch) >= self.prefetch
        self.holdings.fill(self.slot, batch)
        if batch and self.on_fetch:
            self.on_fetch(batch)
        return bool(batch)

    def _ahead_size(self) -> int:
        """How many messages to claim ahead: what recent tasks would run in AHEAD_BUDGET, within bounds."""
        fits = int(AHEAD_BUDGET / self._task_seconds) if self._task_seconds > 0 else self.prefetch * AHEAD_GROWTH
        return max(self.prefetch, min(self.prefetch * AHEAD_GROWTH, fits))

    def _fetch_ahead(self) -> None:
        try:
            pending = self.handler.app.broker.fetch_ahead(self.queues, self._ahead_size(), consumer=self.consumer)
        except Exception as exc:  # the ordinary fetch after this task reports an outage
            logger.debug("could not fetch ahead (%r)", exc)
            return
        if pending is not None:
            self.holdings.start_ahead(self.slot, pending)

    def _collect_ahead(self) -> None:
        """Take in the fetch started ahead (after the keeper, if it is collecting it: the two never
        read its connection at once, and the slot's next fetch uses that connection)."""
        pending = self.slot.ahead
        if pending is None:
            return
        try:
            batch = pending.collect()
        except Exception as exc:  # what it claimed comes back when its lease runs out
            logger.debug("could not collect a fetch made ahead (%r)", exc)
            batch = []
        finally:
            self.holdings.end_ahead(self.slot)
        self._last_full = len(batch) >= self.prefetch
        self.holdings.fill(self.slot, batch, fetched_at=pending.started)
        if batch and self.on_fetch:
            self.on_fetch(batch)

    def _process(self, delivery: Delivery) -> None:
        try:
            if not ratelimit.admit(self.handler.app, delivery):
                return
            job = self.handler.prepare(delivery)
            if job is None:
                return
            self.slot.job = job
            if self.on_start:
                self.on_start(job)
            self.handler.mark_started(job)
            if self.handler.settler is not None:
                self.handler.settler.kick()
            outcome = self.runner(job)
            self.handler.settle(job, outcome, write_now=not self._last_full and not self.slot.buffer)
            self.processed += 1
            if self.on_done:
                self.on_done(job)
        except Exception:
            # the lease brings the message back if nothing settled it
            logger.exception("internal error handling message %s; it will be redelivered", delivery.message_id)
        finally:
            self.holdings.done(self.slot)


def limits_for(job: Job) -> tuple[float | None, float | None]:
    """(soft, hard) seconds for a job: message header, then task attribute, then global setting.

    Looked up once per job: a prefork child needs them when it announces the task and again to run it.
    """
    if job.limits is None:
        conf = job.task.app.conf
        msg = job.message
        soft = msg.soft_time_limit or job.task.soft_time_limit or conf.task_soft_time_limit
        hard = msg.time_limit or job.task.time_limit or conf.task_time_limit
        job.limits = (float(soft) if soft else None, float(hard) if hard else None)
    return job.limits


class LoopRunner:
    """Runs jobs in this thread: sync tasks directly, async tasks on this thread's own event loop."""

    def __init__(self, sync_limits: Callable[[float | None, float | None], Any] | None = None,
                 hard_in_process: bool = True) -> None:
        self.sync_limits = sync_limits
        self.hard_in_process = hard_in_process
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, job: Job) -> Outcome:
        soft, hard = limits_for(job)
        if job.task.is_async:
            return self._event_loop().run_until_complete(execute_async(job.task, job.request, soft, hard))
        if self.sync_limits is None or not (soft or hard):
            return execute(job.task, job.request)
        with self.sync_limits(soft, hard if self.hard_in_process else None):
            return execute(job.task, job.request)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop


def _rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    import resource

    return pages * resource.getpagesize() // 1024
