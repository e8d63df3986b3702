"""Inside a prefork child: its signals, its own connections and slot loop, and its board.

The supervisor side is ``prefork.py``; the two share only the board (``board.py``) and the notice
pipe (``forked.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from ..brokers.base import Delivery
from .board import Board, fit_notice
from .forked import NoticeWriter
from .handler import Job, TaskHandler
from .limits import main_thread_timer
from .logs import flush_logs
from .loop import Holdings, LoopRunner, Slot, SlotLoop, limits_for
from .revoked import RevokedIds
from .settler import Settler


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this child if the supervisor dies (so no orphan keeps running)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def child_main(conn: NoticeWriter, controller: Any, index: int, consumer: str, board: Board) -> None:
    """Entry point of a forked child: its own connections, its own loop."""
    _die_with_parent()
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGUSR1, lambda *_: stop.set())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})  # blocked since the fork (prefork.PreforkPool._spawn)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    child = ChildWorker(controller, index, conn, consumer, board)
    try:
        child.run(stop)
    finally:
        flush_logs()
    os._exit(0)


class ChildWorker:
    """One prefork child: fetches for itself, keeps its board current for the supervisor."""

    def __init__(self, controller: Any, index: int, conn: NoticeWriter, consumer: str, board: Board) -> None:
        self.controller = controller
        self.app = controller.app
        self.options = controller.options
        self.conn = conn
        self.consumer = consumer
        self.index = index
        self.board = board
        self.holdings: Holdings | None = None
        self.slot: Slot | None = None
        self._processed = 0
        self._totals: Counter[str] = Counter()
        self._totals_written = 0.0

    def run(self, stop: threading.Event) -> None:
        from .. import signals

        controller, options = self.controller, self.options
        self.app._check_fork()
        revoked = RevokedIds(float(self.app.conf.task_revoked_ttl))
        controller.follow_revokes(revoked, stop)
        handler = TaskHandler(self.app, options.hostname, revoked)
        handler.settler = Settler(self.app, wake_on_add=False)  # the loop kicks it before each task
        holdings = self.holdings = Holdings(self.app.broker, self.app.broker.default_lease, on_free=self._write_reserved)
        holdings.start()
        slot = self.slot = holdings.slot(f"ForkPoolWorker-{self.index}")
        loop = SlotLoop(handler, holdings, slot, queues=options.queues,
                        consumer=self.consumer, prefetch=options.prefetch_multiplier,
                        runner=LoopRunner(main_thread_timer.limit, hard_in_process=False),
                        on_start=self._started, on_done=self._done, on_fetch=self._write_reserved, on_idle=self._write_totals)
        signals.worker_process_init.send(sender=None)
        try:
            loop.run(stop, options.max_tasks_per_child, options.max_memory_per_child)
        finally:
            holdings.stop.set()
            handler.settler.close()
            self._write_totals()
            signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
            self.app.events.flush()

    def _started(self, job: Job) -> None:
        soft, hard = limits_for(job)
        d = job.delivery
        notice = fit_notice({
            "id": job.message.id, "name": job.message.task, "hard": hard, "soft": soft,
            "async": job.task.is_async, "tag": d.tag, "queue": d.queue, "mid": d.message_id, "dc": d.delivery_count,
            "t": time.time(), "args": job.message.argsrepr, "kwargs": job.message.kwargsrepr,
            "delivery_info": job.request.delivery_info,
        })
        self.board.write("current", notice)
        self.board.set_held(len(self.slot.buffer) if self.slot is not None else 0)
        if hard:
            self.conn.send_bytes(notice)  # the supervisor must wake at the deadline

    def _done(self, job: Job) -> None:
        self.board.write("current", b"")
        self._processed += 1
        self.board.set_processed(self._processed)
        self._totals[job.message.task] += 1
        if time.monotonic() - self._totals_written > 1.0:
            self._write_totals()

    def _write_totals(self) -> None:
        self._totals_written = time.monotonic()
        self.board.write("totals", orjson.dumps(self._totals))

    def _write_reserved(self, _changed: Sequence[Delivery] = ()) -> None:
        """What this child holds but has not started (``inspect reserved``), after a fetch or the keeper
        giving prefetched messages back; a start only lowers the count of the list's entries still held."""
        held = self.holdings.reserved() if self.holdings is not None else []
        self.board.write_reserved([[d.message_id, d.queue] for d in held])
