"""Soak: one worker under steady load for N minutes; its memory must stay flat.

    .venv/bin/python -m benchmarks.chaos.soak --minutes 10                 # SQLite, 50 tasks/s
    .venv/bin/python -m benchmarks.chaos.soak --minutes 10 --broker redis://127.0.0.1:6379/15

A producer sends a steady mix of sync and ``async def`` tasks at ``--rate`` per second to a prefork
worker. The resident memory of the supervisor and of its children is sampled every 10 s. The
"start" figure is taken after a warm-up minute (imports, caches and the first SQLite pages settle
then); the verdict compares the end with it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

from .workers import Worker

MB = 1024 * 1024


def load_tasks(env: dict[str, str]):
    os.environ.update(env)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    return importlib.import_module("tasks")


def produce(tasks, deadline: float, rate: float) -> int:
    """Send at a fixed pace until ``deadline``; the pace is kept against the clock, not per sleep."""
    started, sent = time.monotonic(), 0
    kinds = [(tasks.short, (1,)), (tasks.ashort, (2,)), (tasks.short, (3,)), (tasks.retrying, (1,))]
    while time.monotonic() < deadline:
        task, args = kinds[sent % len(kinds)]
        task.delay(*args)
        sent += 1
        ahead = started + sent / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    return sent


def sample_line(minute: float, worker: Worker) -> tuple[int, int, str]:
    own, kids = worker.tree_rss()
    return own, kids, f"{minute:6.1f} min  supervisor {own / MB:7.1f} MB  children {kids / MB:7.1f} MB  total {(own + kids) / MB:7.1f} MB"


def run(args: argparse.Namespace, workdir: Path) -> int:
    broker = args.broker or f"sqlite:///{workdir / 'soak.sqlite3'}"
    env = {"CHAOS_BROKER": broker, "CHAOS_BACKEND": broker, "CHAOS_RUNS": str(workdir), "CHAOS_NO_RECORD": "1"}
    tasks = load_tasks(env)
    worker = Worker("soak", ["-P", "prefork", "-c", str(args.concurrency)], env, workdir)
    worker.start()
    try:
        if not worker.ready.wait(60):
            raise SystemExit(f"worker not ready, see {worker.log}")
        return measure(args, tasks, worker)
    finally:
        worker.stop()


def measure(args: argparse.Namespace, tasks, worker: Worker) -> int:
    """Produce in slices of 10 s and sample memory after each slice."""
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    samples, sent = [], 0
    while time.monotonic() < end:
        sent += produce(tasks, min(end, time.monotonic() + 10), args.rate)
        own, kids, line = sample_line((time.monotonic() - t0) / 60, worker)
        samples.append((time.monotonic() - t0, own + kids, own, kids))
        print(line, flush=True)
        if not worker.alive:
            raise SystemExit(f"worker died, see {worker.log}")
    backlog = sum(q.ready + q.in_flight for q in tasks.app.broker.stats())
    print(f"backlog at the end (ready + in flight): {backlog}")
    return report(samples, sent, args)


def report(samples: list[tuple[float, int, int, int]], sent: int, args: argparse.Namespace) -> int:
    warm = [s for s in samples if s[0] >= min(60.0, args.minutes * 60 / 4)] or samples
    first, last = warm[0], warm[-1]
    growth = (last[1] - first[1]) / first[1] * 100 if first[1] else 0.0
    print(f"\nsent {sent} tasks in {args.minutes} min at {args.rate}/s, prefork -c {args.concurrency}")
    print("| | supervisor | children | total |\n|---|---|---|---|")
    for label, s in (("start (after warm-up)", first), ("end", last)):
        print(f"| {label} | {s[2] / MB:.1f} MB | {s[3] / MB:.1f} MB | {s[1] / MB:.1f} MB |")
    print(f"growth: {growth:+.1f}% (limit {args.max_growth:.0f}%)")
    return 0 if growth <= args.max_growth else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="tasks per second")
    parser.add_argument("--concurrency", "-c", type=int, default=2)
    parser.add_argument("--broker", default="", help="broker and backend URL (default: a fresh SQLite file)")
    parser.add_argument("--max-growth", type=float, default=10.0, help="allowed RSS growth in percent")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="celeriac-soak-") as tmp:
        sys.exit(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
