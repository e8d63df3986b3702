"""One harness run: services up, workers up, load and faults, drain, account, everything restored."""

from __future__ import annotations

import importlib
import os
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import verify
from .faults import Faults
from .load import Producer
from .services import PrivateRedis, RabbitMQ, SmallDisk
from .workers import HERE, Worker


@dataclass
class Options:
    broker: str
    tasks: int
    duration: float
    out: Path
    workers: int = 3
    concurrency: int = 2
    lease: float = 5.0
    interval: float = 3.0
    drain: float = 120.0
    seed: int = 1
    disk_mb: int = 128
    redis_persistence: bool = True


def start_service(opts: Options, stack: ExitStack) -> tuple[Any, dict[str, str]]:
    """Bring up what the broker needs and register its cleanup; return (service, env)."""
    if opts.broker == "sqlite":
        disk = SmallDisk(opts.out / "disk", opts.disk_mb)
        disk.mount()
        stack.callback(disk.unmount)
        url = f"sqlite:///{disk.path / 'chaos.sqlite3'}"
        return disk, {"CHAOS_BROKER": url, "CHAOS_BACKEND": url}
    if opts.broker == "redis":
        redis = PrivateRedis(opts.out, persistent=opts.redis_persistence)
        redis.start()
        stack.callback(redis.stop)
        return redis, {"CHAOS_BROKER": redis.url, "CHAOS_BACKEND": redis.url}
    rabbit = RabbitMQ()
    prefix = f"chaos{uuid.uuid4().hex[:8]}."
    stack.callback(rabbit.delete_queues, prefix)
    stack.callback(rabbit.restore)
    backend = f"sqlite:///{opts.out / 'results.sqlite3'}"
    return rabbit, {"CHAOS_BROKER": rabbit.url, "CHAOS_BACKEND": backend, "CHAOS_PREFIX": prefix}


def load_tasks(env: dict[str, str]) -> Any:
    """Import the task module in this process, configured like the workers."""
    os.environ.update(env)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module("tasks")


def start_fleet(opts: Options, env: dict[str, str], stack: ExitStack) -> list[Worker]:
    fleet = [Worker(f"prefork{i}", ["-P", "prefork", "-c", str(opts.concurrency)], env, opts.out) for i in range(opts.workers)]
    fleet.append(Worker("async0", ["-P", "async", "-c", "20"], env, opts.out))
    for w in fleet:
        stack.callback(w.stop)
        w.start()
    for w in fleet:
        if not w.ready.wait(90):
            raise RuntimeError(f"{w.name} not ready, see {w.log}")
    return fleet


def run(opts: Options) -> dict[str, Any]:
    """The whole run; returns the figures of the table (and writes the fault log)."""
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "runs").mkdir(exist_ok=True)
    with ExitStack() as stack:
        service, env = start_service(opts, stack)
        env |= {"CHAOS_RUNS": str(opts.out / "runs"), "CHAOS_VISIBILITY": str(opts.lease)}
        tasks = load_tasks(env)
        fleet = start_fleet(opts, env, stack)
        faults = Faults(fleet, service, opts.lease, opts.interval, opts.seed)
        producer = Producer(tasks, opts.tasks, opts.duration * 0.8, opts.seed)
        started = time.monotonic()
        producer.start()
        try:
            faults.run(opts.duration)
        finally:
            faults.stop.set()
            (opts.out / "faults.log").write_text("\n".join(faults.log) + "\n")
        producer.join(300)
        metas = verify.drain(tasks.app.backend, list(producer.sent), opts.drain)
        faults.restart_crashed()
        runs = verify.read_runs(opts.out / "runs")
        acc = verify.account(producer.sent, metas, verify.dead_letter_ids(tasks.app.broker), runs)
        acc.unexplained = verify.unexplained_repeats(runs, faults.events)
        return figures(opts, acc, faults, producer, time.monotonic() - started)


def figures(opts: Options, acc: verify.Account, faults: Faults, producer: Producer, elapsed: float) -> dict[str, Any]:
    c = faults.counts
    return {
        "broker": opts.broker, "tasks sent": acc.sent, "worker kills": c["worker kills"], "child kills": c["child kills"],
        "broker restarts": c["broker restarts"], "disconnects": c["disconnects"], "cuts > lease": c["cuts"],
        "disk fills": c["disk fills"], "completed": acc.completed, "tasks lost": len(acc.lost),
        "ran more than once": acc.ran_more_than_once, "repeats without a fault": len(acc.unexplained),
        "unexplained ids": acc.unexplained[:20], "dead-lettered": acc.dead_lettered, "failed": acc.failed,
        "worker crashes (input)": c["worker crashes"], "send retries": producer.send_errors,
        "seconds": round(elapsed, 1), "lost ids": acc.lost[:20], "lost, never started": acc.lost_never_started,
        "kinds": dict(producer.kinds),
    }
