"""Tasks run by the chaos harness and the soak test, configured from the environment.

Every task body first appends ``<task id> <retries> <pid> <time>`` to a file of its own process under
``CHAOS_RUNS``. That record lives outside the broker and the result store, so the harness can count
how often a body started even when the system under test forgot it.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from celeriac import Celery

app = Celery("chaos_tasks", broker=os.environ["CHAOS_BROKER"], backend=os.environ.get("CHAOS_BACKEND") or os.environ["CHAOS_BROKER"])
app.conf.broker_transport_options = {"visibility_timeout": float(os.environ.get("CHAOS_VISIBILITY", "5"))}
if os.environ.get("CHAOS_PREFIX"):
    app.conf.broker_transport_options["queue_prefix"] = os.environ["CHAOS_PREFIX"]
app.conf.result_backend_transport_options = {"visibility_timeout": float(os.environ.get("CHAOS_VISIBILITY", "5"))}
app.conf.task_max_deliveries = int(os.environ.get("CHAOS_MAX_DELIVERIES", "5"))
RUNS = Path(os.environ.get("CHAOS_RUNS", "."))


def record(task_id: str | None, retries: int) -> None:
    """One line per started body, written and closed at once so a ``kill -9`` right after keeps it."""
    if os.environ.get("CHAOS_NO_RECORD"):
        return
    fd = os.open(RUNS / f"{os.getpid()}.runs", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{task_id} {retries} {os.getpid()} {time.time():.3f}\n".encode())
    finally:
        os.close(fd)


@app.task(bind=True, name="chaos.short")
def short(self, n: int) -> int:
    record(self.request.id, self.request.retries)
    time.sleep(0.005)
    return n


@app.task(bind=True, name="chaos.long")
def long(self, seconds: float) -> float:
    """Longer than the lease: only renewals keep it from running twice."""
    record(self.request.id, self.request.retries)
    time.sleep(seconds)
    return seconds


@app.task(bind=True, name="chaos.ashort")
async def ashort(self, n: int) -> int:
    record(self.request.id, self.request.retries)
    await asyncio.sleep(0.005)
    return n


@app.task(bind=True, name="chaos.along")
async def along(self, seconds: float) -> float:
    record(self.request.id, self.request.retries)
    await asyncio.sleep(seconds)
    return seconds


@app.task(bind=True, name="chaos.retrying", max_retries=10)
def retrying(self, times: int) -> int:
    """Fails ``times`` times, each retry a new message with a short countdown."""
    record(self.request.id, self.request.retries)
    if self.request.retries < times:
        raise self.retry(countdown=0.5, exc=RuntimeError("not yet"))
    return self.request.retries
