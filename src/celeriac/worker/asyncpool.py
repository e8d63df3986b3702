"""``-P async``: one event loop runs many coroutines at once (``-c`` of them), sync tasks in threads.

Broker and backend calls are blocking, so fetching, preparing and settling run in a small thread
pool; task coroutines run on the loop with soft limits raised inside them and hard limits
cancelling them.
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
            for delivery in await self._io_call(self._fetch, self.capacity - len(tasks)):
                task = asyncio.create_task(self._process(delivery))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

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

    async def _process(self, delivery: Delivery) -> None:
        try:
            if not await self._io_call(ratelimit.admit, self.app, delivery):
                return
            job = await self._io_call(self.handler.prepare, delivery)
            if job is None:
                return
            await self._io_call(self.handler.mark_started, job)
            soft, hard = limits_for(job)
            run = asyncio.create_task(execute_async(job.task, job.request, soft, hard))
            self.running[job.message.id] = (job, run)
            try:
                outcome = await run
            except asyncio.CancelledError:
                if job.message.id not in self._terminated:
                    raise
                self._terminated.discard(job.message.id)
                await self._io_call(self.handler.settle_revoked, job.delivery, job.message, "terminated", True)
                return
            finally:
                self.running.pop(job.message.id, None)
            await self._io_call(self.handler.settle, job, outcome)
            self._processed += 1
            if not self.running:
                await self._io_call(self.handler.flush)
        except Exception:
            self.controller.logger.exception("internal error handling %s; it will be redelivered", delivery.message_id)
        finally:
            self.holdings.unhold(delivery)

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

