"""What the events say about the fleet: workers (online or not) and tasks, kept in memory.

Feed it every event (``state.event(e)``); it never raises on an event it does not understand.
A worker counts as online while its last heartbeat is younger than ``HEARTBEAT_WINDOW`` times its
``freq``: three heartbeats (6 s by default) tolerate one lost or late heartbeat on a loaded host
and still show a dead worker as offline within seconds. ``worker-offline`` takes it down at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from . import states

HEARTBEAT_WINDOW = 3.0

TASK_EVENT_STATES = {
    "task-sent": states.PENDING, "task-received": states.RECEIVED, "task-started": states.STARTED,
    "task-succeeded": states.SUCCESS, "task-failed": states.FAILURE, "task-retried": states.RETRY,
    "task-revoked": states.REVOKED, "task-rejected": states.REJECTED,
}
_TASK_FIELDS = ("name", "args", "kwargs", "result", "exception", "traceback", "runtime", "retries", "eta",
                "expires", "root_id", "parent_id", "queue", "terminated", "signum", "expired")


@dataclass
class WorkerState:
    """One worker node as its events describe it."""

    hostname: str
    freq: float = 2.0
    last_seen: float = 0.0  # local receive time, as Celery's State uses
    offline: bool = False
    active: int = 0
    processed: int = 0
    loadavg: list[float] = field(default_factory=list)
    pid: int | None = None
    sw_ident: str = ""
    sw_ver: str = ""

    def alive(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return not self.offline and now < self.last_seen + self.freq * HEARTBEAT_WINDOW

    def update(self, event: dict[str, Any], now: float) -> None:
        self.last_seen = now
        self.offline = event["type"] == "worker-offline"
        self.freq = float(event.get("freq") or self.freq)
        for name in ("active", "processed", "loadavg", "pid", "sw_ident", "sw_ver"):
            if event.get(name) is not None:
                setattr(self, name, event[name])


@dataclass
class TaskState:
    """One task as its events describe it; fields keep Celery's event names."""

    uuid: str
    state: str = states.PENDING
    worker: str | None = None
    timestamp: float = 0.0
    times: dict[str, float] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        return self.fields.get("name")

    def update(self, event: dict[str, Any]) -> None:
        new = TASK_EVENT_STATES.get(event["type"])
        self.fields.update((k, event[k]) for k in _TASK_FIELDS if event.get(k) is not None)
        self.times[event["type"].removeprefix("task-")] = float(event.get("timestamp") or 0)
        self.timestamp = max(self.timestamp, float(event.get("timestamp") or 0))
        if event["type"] != "task-sent":
            self.worker = event.get("hostname") or self.worker
        if new is not None and self._moves_forward(new):
            self.state = new

    def _moves_forward(self, new: str) -> bool:
        """Events from different processes can arrive out of order: never go back to PENDING or out of a final state."""
        if self.state in states.READY_STATES:
            return new in states.READY_STATES
        return new != states.PENDING or self.state == states.PENDING


class State:
    """Workers and the newest ``max_tasks`` tasks, updated from events."""

    def __init__(self, max_tasks: int = 10_000, clock: Any = time.time) -> None:
        self.workers: dict[str, WorkerState] = {}
        self.tasks: OrderedDict[str, TaskState] = OrderedDict()
        self.max_tasks = max_tasks
        self.clock = clock
        self.event_count = 0

    def event(self, event: dict[str, Any]) -> None:
        """Apply one event (a dict with ``type``); unknown types only count."""
        self.event_count += 1
        kind = str(event.get("type", ""))
        if kind.startswith("worker-"):
            self._worker(event)
        elif kind.startswith("task-") and event.get("uuid"):
            self._task(event)

    def _worker(self, event: dict[str, Any]) -> None:
        host = str(event.get("hostname"))
        worker = self.workers.get(host) or self.workers.setdefault(host, WorkerState(host))
        worker.update(event, self.clock())

    def _task(self, event: dict[str, Any]) -> None:
        uuid = str(event["uuid"])
        task = self.tasks.get(uuid)
        if task is None:
            task = self.tasks[uuid] = TaskState(uuid)
            while len(self.tasks) > self.max_tasks:
                self.tasks.popitem(last=False)
        task.update(event)
        host = event.get("hostname")
        if event["type"] != "task-sent" and host in self.workers:
            self.workers[host].last_seen = max(self.workers[host].last_seen, self.clock())

    def alive_workers(self) -> list[WorkerState]:
        now = self.clock()
        return [w for w in self.workers.values() if w.alive(now)]

    def tasks_by_time(self, limit: int | None = None) -> list[TaskState]:
        """Newest first."""
        ordered = sorted(self.tasks.values(), key=lambda t: t.timestamp, reverse=True)
        return ordered if limit is None else ordered[:limit]

    def tasks_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.tasks.values():
            counts[task.state] = counts.get(task.state, 0) + 1
        return counts
