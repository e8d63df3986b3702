"""Prefork pool: a supervisor and N forked children that each fetch, run and settle for themselves.

Each child keeps what it runs and holds on a shared memory board (``board.py``) that the supervisor
reads when it needs to; a task with a hard time limit is also announced over a pipe. The supervisor
enforces hard time limits (kill, settle FAILURE, replace the child), terminates revoked tasks,
replaces children that die (their messages are reclaimed at once), recycles children (max tasks /
memory), and grows or shrinks the pool. What runs inside a child is in ``prefork_child.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..brokers.base import Delivery
from ..exceptions import TimeLimitExceeded
from ..message import Message
from .board import Board
from .forked import ForkedProcess, NoticeReader
from .handler import TaskHandler
from .prefork_child import child_main

if TYPE_CHECKING:
    from .options import WorkerOptions

logger = logging.getLogger("celeriac.worker")

_HARD_LIMIT_GRACE_ASYNC = 2.0


@dataclass
class Child:
    index: int
    process: ForkedProcess
    conn: NoticeReader
    consumer: str
    board: Board
    current: dict[str, Any] | None = None  # the running task, when it has a hard time limit
    kill_reason: str | None = None
    kill_signum: int | None = None
    retiring: bool = False
    started: float = field(default_factory=time.time)


class PreforkPool:
    """The supervisor side of the prefork pool."""

    name = "prefork"

    def __init__(self, controller: Any, options: WorkerOptions) -> None:
        self.controller = controller
        self.app = controller.app
        self.options = options
        self.children: dict[int, Child] = {}
        self.target = options.concurrency
        self.stopping = False
        self.cold = False
        self._next_index = 1
        self._processed = 0
        self._reaped_totals: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._handler: TaskHandler | None = None

    # -- control surface ----------------------------------------------------------------------
    def size(self) -> int:
        return len([c for c in self.children.values() if not c.retiring])

    def processed(self) -> int:
        with self._lock:
            return self._processed + sum(c.board.processed() for c in self.children.values())

    @property
    def totals(self) -> Counter[str]:
        """Tasks run per name, by every child this pool has had."""
        with self._lock:
            totals = Counter(self._reaped_totals)
            for child in self.children.values():
                totals.update(child.board.totals())
        return totals

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            running = [(c, c.board.current()) for c in self.children.values()]
        return [dict(notice, worker_pid=c.process.pid) for c, notice in running if notice]

    def reserved(self) -> list[dict[str, Any]]:
        """Messages children hold but have not started (ids and queues; bodies stay in the child)."""
        with self._lock:
            held = [(c, c.board.reserved()) for c in self.children.values()]
        return [{"id": mid, "hostname": self.options.hostname, "worker_pid": c.process.pid,
                 "delivery_info": {"routing_key": queue}}
                for c, reserved in held for mid, queue in reserved]

    def grow(self, n: int = 1) -> None:
        with self._lock:
            self.target += n
        self._poke()

    def shrink(self, n: int = 1) -> None:
        with self._lock:
            self.target = max(0, self.target - n)
        self._poke()

    def terminate(self, task_id: str, signum: int) -> bool:
        with self._lock:
            for child in self.children.values():
                notice = child.board.current()
                if notice and notice.get("id") == task_id:
                    child.current = notice
                    child.kill_reason, child.kill_signum = "terminated", signum
                    os.kill(child.process.pid, signum)
                    return True
        return False

    def stop(self, cold: bool = False) -> None:
        self.stopping = True
        self.cold = self.cold or cold
        with self._lock:
            children = list(self.children.values())
        for child in children:
            self._tell_to_stop(child.process.pid)
        self._poke()

    def _tell_to_stop(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL if self.cold else signal.SIGUSR1)

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"!")

    # -- supervision --------------------------------------------------------------------------
    def start(self) -> None:
        for _ in range(self.target):
            self._spawn()

    def join(self) -> None:
        """Supervise until stopped and every child has exited."""
        while self.children or not self.stopping:
            self._maintain_size()
            for fd in self._wait_ready(self._next_deadline()):
                self._on_ready(fd)
            self._enforce_hard_limits()
            self.controller.autoscale_tick(self)

    def _wait_ready(self, timeout: float) -> list[int]:
        """File descriptors ready to read: children's notices, children's ends, or a poke."""
        poller = select.poll()
        for child in self.children.values():
            poller.register(child.conn.fileno(), select.POLLIN)
            poller.register(child.process.sentinel, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            return [fd for fd, _ in poller.poll(max(0, int(timeout * 1000)))]
        except InterruptedError:
            return []

    def _on_ready(self, fd: int) -> None:
        if fd == self._wake_r:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 512)
            return
        for pid, child in list(self.children.items()):
            if fd == child.conn.fileno():
                self._read_notices(child)
            elif fd == child.process.sentinel:
                self._read_notices(child)
                self._reap(pid, child)

    def _read_notices(self, child: Child) -> None:
        """Start notices of tasks with a hard time limit (the only thing children send)."""
        for notice in child.conn.read():
            child.current = orjson.loads(notice)

    def _spawn(self) -> None:
        index = self._next_index
        self._next_index += 1
        board = Board()
        consumer = f"{self.options.hostname}/{os.getpid()}-{index}-{time.monotonic_ns() % 10**6}"
        process = ForkedProcess(child_main, (self.controller, index, consumer, board), name=f"ForkPoolWorker-{index}",
                                blocked=(signal.SIGUSR1,))  # a stop sent before the child can take it waits for it
        process.start()
        assert process.notices is not None  # started above
        with self._lock:
            self.children[process.pid] = Child(index, process, process.notices, consumer, board)
        if self.stopping:  # a shutdown that came while this child was forking did not see it
            self._tell_to_stop(process.pid)

    def _maintain_size(self) -> None:
        if self.stopping:
            return
        with self._lock:
            live = [c for c in self.children.values() if not c.retiring]
            surplus = len(live) - self.target
        for _ in range(-surplus):
            self._spawn()
        for child in sorted(live, key=lambda c: c.board.current() is not None)[:max(0, surplus)]:
            child.retiring = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.process.pid, signal.SIGUSR1)

    def _reap(self, pid: int, child: Child) -> None:
        child.process.join(1)
        with self._lock:
            self.children.pop(pid, None)
            self._processed += child.board.processed()
            self._reaped_totals.update(child.board.totals())
        code = child.process.exitcode
        if child.kill_reason is not None and child.current is not None:
            self._settle_killed(child, code)
        reclaimed = self.app.broker.reclaim(child.consumer)
        if code is not None and code != 0 and child.kill_reason is None:
            hint = _OUTSIDE_SIGTERM if code == -signal.SIGTERM else ""
            logger.error("Process %r pid:%s exited with %s; %s message(s) it held are back in the queue%s",
                         f"ForkPoolWorker-{child.index}", pid, _describe_exit(code), reclaimed, hint)

    def _settle_killed(self, child: Child, code: int | None) -> None:
        notice = child.current or {}
        msg = Message(id=notice["id"], task=notice["name"], queue=notice["queue"])
        delivery = Delivery(notice["queue"], b"", notice["mid"], notice["tag"], notice["dc"])
        handler = self._supervisor_handler()
        if child.kill_reason == "time limit":
            exc = TimeLimitExceeded(notice.get("hard"))
            handler.store_failure(msg, exc, f"TimeLimitExceeded: hard time limit ({notice.get('hard')}s) exceeded\n")
            handler.events.send("task-failed", uuid=msg.id, exception=repr(exc), traceback="")
            logger.error("Task %s[%s] hard time limit (%ss) exceeded; child replaced", msg.task, msg.id, notice.get("hard"))
            self._ack_quietly(delivery)
        elif child.kill_reason == "terminated":
            handler.settle_revoked(delivery, msg, "terminated", terminated=True, signum=child.kill_signum)

    def _ack_quietly(self, delivery: Delivery) -> None:
        try:
            self.app.broker.ack([delivery])
        except Exception as exc:  # brokers that ack per connection redeliver; the stored outcome wins
            logger.debug("ack after kill not possible here (%r); redelivery will be recognised", exc)

    def _supervisor_handler(self) -> TaskHandler:
        if self._handler is None:
            self._handler = TaskHandler(self.app, self.options.hostname, self.controller.revoked)
        return self._handler

    def _next_deadline(self) -> float:
        now = time.time()
        deadlines = [_hard_deadline(c.current) for c in self.children.values() if c.current]
        soonest = min([d for d in deadlines if d is not None], default=now + 1.0)
        return max(0.01, min(1.0, soonest - now))

    def _enforce_hard_limits(self) -> None:
        now = time.time()
        for child in list(self.children.values()):
            deadline = _hard_deadline(child.current) if child.current else None
            if deadline is not None and now >= deadline and child.kill_reason is None:
                if not _same_task(child.current, child.board.current()):
                    child.current = None  # it ended in time; the child does not announce ends
                    continue
                child.kill_reason = "time limit"
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid, signal.SIGKILL)


def _same_task(announced: dict[str, Any] | None, running: dict[str, Any] | None) -> bool:
    return bool(announced and running and announced["tag"] == running["tag"] and announced["t"] == running["t"])


def _hard_deadline(notice: dict[str, Any] | None) -> float | None:
    if not notice or not notice.get("hard"):
        return None
    grace = _HARD_LIMIT_GRACE_ASYNC if notice.get("async") else 0.0
    return float(notice["t"]) + float(notice["hard"]) + grace


#: a child ended by a SIGTERM from outside, most often one sent to every process of the worker
_OUTSIDE_SIGTERM = (" (this worker did not send that SIGTERM; for running tasks to finish, signal the main process"
                    " only, e.g. systemd KillMode=mixed)")


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"signal {-code}"
    return f"exitcode {code}"
