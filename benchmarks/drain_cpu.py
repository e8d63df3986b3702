"""CPU time per task of a draining celeriac worker and of Redis: where a no-op task's cost lands.

    .venv/bin/python benchmarks/drain_cpu.py --tasks 20000
    .venv/bin/python benchmarks/drain_cpu.py --tasks 20000 -- --prefetch-multiplier 16

Queues N no-op tasks on Redis (db 12), starts ``celeriac worker -P prefork -c 2`` (plus any flags
after ``--``), waits until it is ready, and reads the CPU time (user + system) of the worker's
processes and of the Redis server before the first result and after the last one. Throughput
alone moves with whatever else the machine runs; CPU per task moves much less, so it is the figure
to compare when changing the worker. Redis's CPU includes anything else it served meanwhile.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import psutil
from compare_redis import Side, Stamper, enqueue
from harness import Worker, machine_note


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def redis_server() -> psutil.Process:
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "redis-server":
            return proc
    raise SystemExit("no redis-server process on this machine (Redis's CPU cannot be read)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("flags", nargs="*", help="extra worker flags (after --)")
    opts = parser.parse_args()
    side = Side("celeriac", "redis://127.0.0.1:6379/12", 12, "bench_celeriac", flush_dbs=[12])
    side.flush()
    print(f"start: {machine_note()}")
    _, ids = enqueue(side.app().noop, opts.tasks)
    server = redis_server()
    stamper = Stamper()
    with tempfile.TemporaryDirectory(prefix="celeriac-drain-cpu-") as tmp:
        worker = Worker("celeriac", ["-P", "prefork", "-c", "2", *opts.flags], side.env, Path(tmp) / "worker.log")
        try:
            worker.wait_ready()
            root = psutil.Process(worker.proc.pid)
            procs = [root, *root.children(recursive=True)]
            before = cpu_seconds(procs), cpu_seconds([server])
            stamps = stamper.wait(set(ids), timeout=60 + opts.tasks / 50)
            after = cpu_seconds(procs), cpu_seconds([server])
        finally:
            stamper.close()
            worker.stop()
            side.flush()
    rate = (len(ids) - 1) / (max(stamps) - min(stamps))
    per_task = [(b - a) / opts.tasks * 1e6 for a, b in zip(before, after, strict=True)]
    print(f"end: {machine_note()}")
    print(f"drained {opts.tasks:,} no-op tasks at {rate:,.0f} tasks/s; CPU per task: worker processes "
          f"{per_task[0]:.0f} us, Redis {per_task[1]:.0f} us; peak worker RSS {worker.peak_rss / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
