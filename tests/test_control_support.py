"""Shared pieces for the events and remote-control tests: a task module, a client app, an event log.

No tests live here; ``test_control_*`` and ``test_events_*`` import from it.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celeriac import Celery
from celeriac.events import Receiver
from tests.conftest import require_service
from tests.workers import worker_env, write_module

TASKS = '''
import asyncio
import os
import time

from celeriac import Celery

app = Celery("tasks", broker=os.environ["T_BROKER"], backend=os.environ["T_BACKEND"])
app.conf.broker_transport_options = {"password": "hunter2", "visibility_timeout": 60, "queue_prefix": os.environ.get("T_PREFIX", "")}


@app.task
def add(x, y):
    return x + y


@app.task
def block(seconds=600):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)
    return "finished"


@app.task
async def ablock(seconds=600):
    await asyncio.sleep(seconds)
    return "finished"


@app.task(rate_limit="4/s")
def limited(i):
    return i


@app.task
def free(i):
    return i


@app.task
def boom():
    raise ValueError("boom")


def broken_listener(event):
    raise RuntimeError("this listener is broken")


app.events.on("task-failed", broken_listener)
'''


#: queue prefixes given to RabbitMQ tests; their queues are deleted when the session ends (conftest)
RABBITMQ_PREFIXES: list[str] = []


def urls(kind: str, tmp_path: Path) -> dict[str, str]:
    """Broker and backend URLs for a test: SQLite in ``tmp_path``, or Redis or RabbitMQ (results in SQLite)."""
    sqlite = f"sqlite:///{tmp_path / 'celeriac.sqlite3'}"
    if kind == "sqlite":
        return {"T_BROKER": sqlite, "T_BACKEND": sqlite}
    if kind == "rabbitmq":
        require_service("rabbitmq")
        prefix = f"t{uuid.uuid4().hex[:10]}."
        RABBITMQ_PREFIXES.append(prefix)
        return {"T_BROKER": "amqp://guest:guest@127.0.0.1:5672//", "T_BACKEND": sqlite, "T_PREFIX": prefix}
    require_service("redis")
    db = 11
    import redis

    redis.Redis.from_url(f"redis://127.0.0.1:6379/{db}").flushdb()
    return {"T_BROKER": f"redis://127.0.0.1:6379/{db}", "T_BACKEND": sqlite}


def project(tmp_path: Path, kind: str = "sqlite") -> tuple[dict[str, str], Celery]:
    """Write the task module; return the worker environment and a client app on the same broker."""
    write_module(tmp_path, "tasks", TASKS)
    env = urls(kind, tmp_path)
    client = Celery("client", broker=env["T_BROKER"], backend=env["T_BACKEND"])
    client.conf.broker_transport_options = {"queue_prefix": env.get("T_PREFIX", "")}
    return env, client


def run_cli(tmp_path: Path, env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``celeriac -A tasks ARGS`` as an operator types it."""
    return subprocess.run([sys.executable, "-m", "celeriac", "-A", "tasks", *args], cwd=tmp_path,
                          env=worker_env(tmp_path, env), capture_output=True, text=True, timeout=timeout)


class EventLog:
    """Every event since creation, and a way to wait for the one a test expects."""

    def __init__(self, app: Celery) -> None:
        self.receiver = Receiver(app, from_now=True)
        self.events: list[dict[str, Any]] = []

    def wait_for(self, type_: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        return self.wait_until(lambda e: e["type"] == type_ and all(e.get(k) == v for k, v in fields.items()),
                               timeout, f"{type_} {fields}")

    def wait_until(self, match: Callable[[dict[str, Any]], bool], timeout: float = 30.0, what: str = "") -> dict[str, Any]:
        seen = 0
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[seen:]:
                if match(event):
                    return event
            seen = len(self.events)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no event {what} within {timeout}s; saw {[e['type'] for e in self.events][-30:]}")
            self.events.extend(self.receiver.read(timeout=min(remaining, 1.0)))

    def of(self, uuid: str) -> list[str]:
        return [e["type"] for e in self.events if e.get("uuid") == uuid]


def stats_until(client: Celery, node: str, check: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
    """Poll ``inspect stats`` until ``check`` holds (no event reports pool size changes)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = (client.control.inspect(destination=[node], timeout=2.0).stats() or {}).get(node)
        if reply and check(reply):
            return reply
        if time.monotonic() > deadline:
            raise AssertionError(f"stats never matched; last: {reply}")
        time.sleep(0.2)
