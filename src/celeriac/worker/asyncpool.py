"""``-P async``: one event loop runs many coroutines at once (``-c`` of them), sync tasks in threads.

Broker and backend calls are blocking, so fetching, preparing and settling run in a small thread
pool; task coroutines run on the loop with soft limits raised inside them and hard limits
cancelling them.

Each hand-off between the loop and that pool wakes two threads, which costs more than preparing or
settling a short task. So a fetched batch is prepared in one hand-off, and finished tasks are
settled together: whatever finished while the previous settling ran goes in the next one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from typing import TYPE_CHECKING, Any

from . import ratelimit
from .executor import execute_async
from .handler import Job, TaskHandler
from .loop import Holdings, limits_for
from .settler import Settler

if TYPE_CHECKING:
    from ..brokers.base import Delivery
    from .options import WorkerOptions


_TERMINATED = object()  # the outcome of a coroutine cancelled by revoke(terminate=True)


class AsyncPool:
    """Coroutine pool in the worker process."""

    name = "async"

    def __init__(self, controller: Any, options: WorkerOptions) -> None:
        self.controller = controller
        self.app = controller.app
        self.options = options
        self.capacity = options.concurrency
        self.handler = TaskHandler(self.app, options.hostname, controller.revoked)
        self.handler.settler = Settler(self.app)
        self.holdings = Holdings(self.app.broker, self.app.broker.default_lease)
        self.consumer = f"{options.hostname}/{os.getpid()}"
        self.stop_event = threading.Event()
        self.running: dict[str, tuple[Job, asyncio.Task[Any]]] = {}
        self._processed = 0
        self._terminated: set[str] = set()
        self._finished: list[tuple[Job, Any]] = []  # outcomes waiting for the next settling
        self._settling: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._io = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="celeriac-io")

    def start(self) -> None:
        self.holdings.start()

    def join(self) -> None:
        asyncio.run(self._main())
        self.holdings.stop.set()
        self.handler.flush()
        self._io.shutdown(wait=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=max(4, self.capacity)))
        tasks: set[asyncio.Task[Any]] = set()
        while not self.stop_event.is_set():
            if len(tasks) >= self.capacity:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                tasks.difference_update(done)
                continue
            batch = await self._io_call(self._fetch, self.capacity - len(tasks))
            if not batch:
                continue
            if ratelimit.limiter(self.app).limited_tasks():  # admitting may sleep: one hand-off each
                started = [asyncio.create_task(self._process(delivery)) for delivery in batch]
            else:
                started = [asyncio.create_task(self._run(job)) for job in await self._io_call(self._begin, batch)]
            for task in started:
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._settling is not None:
            await self._settling

    def _fetch(self, want: int) -> list[Delivery]:
        try:
            batch = self.app.broker.fetch(self.options.queues, max(1, want), consumer=self.consumer, timeout=1.0)
        except Exception as exc:
            self.controller.log_outage(exc)
            self.stop_event.wait(1.0)
            return []
        self.holdings.hold(batch)
        return batch

    async def _io_call(self, fn: Any, *args: Any) -> Any:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._io, fn, *args)

    def _begin(self, deliveries: list[Delivery]) -> list[Job]:
        """Decode, check and mark started a fetched batch (in the I/O pool: a redelivery check may block)."""
        jobs = []
        for delivery in deliveries:
            try:
                job = self.handler.prepare(delivery)
                if job is not None:
                    self.handler.mark_started(job)
                    jobs.append(job)
                    continue
            except Exception:
                self.controller.logger.exception("internal error handling %s; it will be redelivered", delivery.message_id)
            self.holdings.unhold(delivery)
        return jobs

    async def _process(self, delivery: Delivery) -> None:
        """One delivery on its own, from admission on (used while rate limits are in force)."""
        try:
            if not await self._io_call(ratelimit.admit, self.app, delivery):
                self.holdings.unhold(delivery)
                return
            jobs = await self._io_call(self._begin, [delivery])
        except Exception:
            self.controller.logger.exception("internal error handling %s; it will be redelivered", delivery.message_id)
            self.holdings.unhold(delivery)
            return
        if jobs:
            await self._run(jobs[0])

    async def _run(self, job: Job) -> None:
        """Run a started job's coroutine; its outcome joins the next settling."""
        soft, hard = limits_for(job)
        run = asyncio.create_task(execute_async(job.task, job.request, soft, hard))
        self.running[job.message.id] = (job, run)
        try:
            outcome: object = await run
        except asyncio.CancelledError:
            if job.message.id not in self._terminated:
                self.holdings.unhold(job.delivery)
                raise
            self._terminated.discard(job.message.id)
            outcome = _TERMINATED
        except Exception:
            self.controller.logger.exception("internal error handling %s; it will be redelivered", job.message.id)
            self.holdings.unhold(job.delivery)
            return
        finally:
            self.running.pop(job.message.id, None)
        self._finished.append((job, outcome))
        if self._settling is None or self._settling.done():
            self._settling = asyncio.create_task(self._settle_finished())

    async def _settle_finished(self) -> None:
        while self._finished:
            batch, self._finished = self._finished, []
            await self._io_call(self._settle, batch, not self.running and not self._finished)
            self._processed += len(batch)

    def _settle(self, batch: list[tuple[Job, Any]], idle: bool) -> None:
        """Store outcomes, send follow-ups and events; write at once when nothing else runs."""
        for job, outcome in batch:
            try:
                if outcome is _TERMINATED:
                    self.handler.settle_revoked(job.delivery, job.message, "terminated", True)
                else:
                    self.handler.settle(job, outcome)
            except Exception:
                self.controller.logger.exception("internal error handling %s; it will be redelivered", job.message.id)
            finally:
                self.holdings.unhold(job.delivery)
        if idle:
            try:
                self.handler.flush()
            except Exception as exc:  # the settler keeps the batch and its thread tries again
                self.controller.logger.warning("could not settle finished tasks now (%r); retrying", exc)

    # -- control surface ----------------------------------------------------------------------
    def stop(self, cold: bool = False) -> None:
        self.stop_event.set()

    def size(self) -> int:
        return self.capacity

    def grow(self, n: int = 1) -> None:
        self.capacity += n

    def shrink(self, n: int = 1) -> None:
        self.capacity = max(1, self.capacity - n)

    def processed(self) -> int:
        return self._processed

    def active(self) -> list[dict[str, Any]]:
        return [self.controller.describe_job(job) for job, _ in list(self.running.values())]

    def reserved(self) -> list[dict[str, Any]]:
        return []

    def terminate(self, task_id: str, signum: int) -> bool:
        entry = self.running.get(task_id)
        if entry is None or self._loop is None:
            return False
        self._terminated.add(task_id)
        self._loop.call_soon_threadsafe(entry[1].cancel, "revoked")
        return True

