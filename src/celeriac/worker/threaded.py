"""Pools that run in the worker's own process: ``threads`` (N slots) and ``solo`` (one, main thread).

Every slot fetches for itself. Sync tasks run in the slot's thread; async tasks on the slot's own
event loop. Time limits are raised inside the task (async exceptions in threads, SIGALRM in solo);
a thread cannot be killed, so a task stuck in C code outlives its hard limit here (use prefork).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .handler import TaskHandler
from .limits import ThreadLimits, main_thread_timer
from .loop import Holdings, LoopRunner, SlotLoop
from .settler import Settler

if TYPE_CHECKING:
    from .options import WorkerOptions


class ThreadPool:
    """N slot loops in threads of this process (``-P threads``), or one in the main thread (``solo``)."""

    def __init__(self, controller: Any, options: WorkerOptions, solo: bool = False) -> None:
        self.controller = controller
        self.app = controller.app
        self.options = options
        self.solo = solo
        self.name = "solo" if solo else "threads"
        self.stop_event = threading.Event()
        self.holdings = Holdings(self.app.broker, self.app.broker.default_lease)
        self.handler = TaskHandler(self.app, options.hostname, controller.revoked)
        self.handler.settler = Settler(self.app)
        self.loops: list[SlotLoop] = []
        self.threads: list[tuple[threading.Thread, threading.Event, SlotLoop]] = []
        self.consumer = f"{options.hostname}/{__import__('os').getpid()}"
        self._limits = ThreadLimits()

    def _loop(self, index: int) -> SlotLoop:
        in_main = threading.current_thread() is threading.main_thread()
        runner = LoopRunner(main_thread_timer.limit if self.solo and in_main else self._limits.limit)
        loop = SlotLoop(self.handler, self.holdings, self.holdings.slot(f"{self.name}-{index}"), queues=self.options.queues,
                        consumer=self.consumer, prefetch=self.options.prefetch_multiplier, runner=runner)
        self.loops.append(loop)
        return loop

    def start(self) -> None:
        self.holdings.start()
        if not self.solo:
            self.grow(self.options.concurrency)

    def join(self) -> None:
        if self.solo:
            self._loop(1).run(self.stop_event)
        else:
            self.stop_event.wait()
            for thread, _, _ in self.threads:
                thread.join()
        self.holdings.stop.set()
        self.handler.flush()

    def grow(self, n: int = 1) -> None:
        for _ in range(n):
            stop = threading.Event()
            loop = self._loop(len(self.threads) + 1)
            thread = threading.Thread(target=self._run_slot, args=(loop, stop), name=f"ThreadPoolWorker-{len(self.threads) + 1}",
                                      daemon=True)
            self.threads.append((thread, stop, loop))
            thread.start()

    def _run_slot(self, loop: SlotLoop, stop: threading.Event) -> None:
        both = _AnyEvent(stop, self.stop_event)
        loop.run(both)

    def shrink(self, n: int = 1) -> None:
        for _, stop, _ in self.threads[-n:]:
            stop.set()
        self.threads = self.threads[:-n] if n else self.threads

    def size(self) -> int:
        return 1 if self.solo else len(self.threads)

    def processed(self) -> int:
        return sum(loop.processed for loop in self.loops)

    def active(self) -> list[dict[str, Any]]:
        return [self.controller.describe_job(job) for job in self.holdings.running_jobs()]

    def reserved(self) -> list[dict[str, Any]]:
        return [{"id": d.message_id, "delivery_info": {"routing_key": d.queue}} for d in self.holdings.reserved()]

    def terminate(self, task_id: str, signum: int) -> bool:
        from ..exceptions import TaskRevokedError
        from .limits import raise_in_thread

        for thread, _, loop in self.threads:
            job = loop.slot.job
            if job is not None and job.message.id == task_id and thread.ident is not None:
                return raise_in_thread(thread.ident, TaskRevokedError)
        return False

    def stop(self, cold: bool = False) -> None:
        self.stop_event.set()


class _AnyEvent:
    """Set when either of two events is set (a slot's own stop, or the pool's)."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()
