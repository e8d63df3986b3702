"""The producer: a few thousand tasks of mixed kinds, spread evenly over the fault phase.

A task counts as sent only once ``apply_async`` has returned (the broker accepted it). A send
that fails (broker down, disk full) is tried again with the same task id until it is accepted, so
a publish that was stored although its reply was lost cannot create a second task id.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

MIX = [  # kind, weight
    ("short", 40), ("ashort", 20), ("countdown", 15), ("retrying", 10), ("long", 10), ("along", 5),
]


def pick(tasks: Any, rng: random.Random) -> tuple[str, Any, tuple, dict]:
    """One task: (kind, task, args, apply_async options)."""
    kind = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
    if kind == "short":
        return kind, tasks.short, (rng.randint(0, 1000),), {}
    if kind == "ashort":
        return kind, tasks.ashort, (rng.randint(0, 1000),), {}
    if kind == "countdown":
        return kind, tasks.short, (rng.randint(0, 1000),), {"countdown": rng.uniform(1, 6)}
    if kind == "retrying":
        return kind, tasks.retrying, (rng.randint(1, 2),), {}
    if kind == "long":
        return kind, tasks.long, (rng.uniform(2, 8),), {}
    return kind, tasks.along, (rng.uniform(2, 8),), {}


class Producer:
    """Sends ``total`` tasks over ``seconds`` in a thread; ``sent`` maps task id to kind."""

    def __init__(self, tasks: Any, total: int, seconds: float, seed: int) -> None:
        self.tasks = tasks
        self.total = total
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.sent: dict[str, str] = {}
        self.kinds: Counter[str] = Counter()
        self.send_errors = 0
        self.thread = threading.Thread(target=self._run, name="producer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        for i in range(self.total):
            kind, task, args, options = pick(self.tasks, self.rng)
            task_id = str(uuid.uuid4())
            self._send(task, args, options, task_id, deadline=started + self.seconds + 120)
            self.sent[task_id] = kind
            self.kinds[kind] += 1
            ahead = started + (i + 1) * self.seconds / self.total - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # pacing the load, not waiting for an event

    def _send(self, task: Any, args: tuple, options: dict, task_id: str, deadline: float) -> None:
        delay = 0.05
        while True:
            try:
                task.apply_async(args, task_id=task_id, **options)
                return
            except Exception:
                self.send_errors += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)  # backoff before trying the same id again
                delay = min(delay * 2, 1.0)

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()
