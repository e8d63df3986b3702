"""CPU time per task of a draining celeriac worker and of Redis: where a no-op task's cost lands.

    .venv/bin/python benchmarks/drain_cpu.py --tasks 20000
    .venv/bin/python benchmarks/drain_cpu.py --tasks 20000 -- --prefetch-multiplier 16
    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/drain_cpu.py --src /tmp/before/src --src src --rounds 5

Queues N no-op tasks on Redis (db 12), starts ``celeriac worker -P prefork -c 2`` (plus any flags
after ``--``), waits until it is ready, and reads the CPU time (user + system) of the worker's
processes and of the Redis server from when the worker is ready until the last result is stored
(throughput is timed by the results' own ``date_done``, see ``compare_redis.wait_stored``).
Throughput alone moves with whatever else the machine runs; CPU per task moves much less, so it is
the figure to compare when changing the worker. Redis's CPU includes anything else it served meanwhile, and
its network system calls; "scripts" is the time Redis spent running Lua scripts (``EVALSHA`` in
``INFO commandstats``, reset when the drain starts), where celeriac's own Redis work happens.

With ``--src`` (repeated) the worker is started from each source tree in turn, ``--rounds`` times,
and the medians are compared: the way to tell a change from the day.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import psutil
import redis
from compare_redis import REDIS, Side, enqueue, stored_stamps, wait_stored
from harness import Worker, machine_note, median
from latency_ab import TreeSide


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


def script_seconds(client: redis.Redis) -> float:
    """Time Redis has spent running scripts since its statistics were last reset."""
    stats = client.info("commandstats")
    return sum(stats.get(name, {}).get("usec", 0) for name in ("cmdstat_evalsha", "cmdstat_eval")) / 1e6


def one_drain(side: Side, tasks: int, flags: list[str]) -> tuple[float, float, float, float, float]:
    """(tasks/s, worker CPU, Redis CPU and Redis script time in us per task, peak worker RSS bytes)."""
    side.flush()
    _, ids = enqueue(side.app().noop, tasks)
    server = redis_server()
    stats = redis.Redis.from_url(REDIS)
    with tempfile.TemporaryDirectory(prefix="celeriac-drain-cpu-") as tmp:
        worker = Worker("celeriac", ["-P", "prefork", "-c", "2", *flags], side.env, Path(tmp) / "worker.log")
        try:
            worker.wait_ready()
            root = psutil.Process(worker.proc.pid)
            procs = [root, *root.children(recursive=True)]
            stats.config_resetstat()
            before = cpu_seconds(procs), cpu_seconds([server]), 0.0
            wait_stored(side.backend_db, ids, timeout=60 + tasks / 50)
            after = cpu_seconds(procs), cpu_seconds([server]), script_seconds(stats)
            stamps = stored_stamps(side.backend_db, ids)
        finally:
            worker.stop()
            side.flush()
    rate = (len(ids) - 1) / (max(stamps) - min(stamps))
    worker_us, redis_us, script_us = ((b - a) / tasks * 1e6 for a, b in zip(before, after, strict=True))
    return rate, worker_us, redis_us, script_us, worker.peak_rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--src", action="append", default=[], help="a celeriac source tree (its src directory); repeat")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("flags", nargs="*", help="extra worker flags (after --)")
    opts = parser.parse_args()
    for src in opts.src:
        if not (Path(src) / "celeriac" / "__init__.py").is_file():
            parser.error(f"{src} holds no celeriac package")
    sides: list[Side] = [TreeSide("celeriac", "redis://127.0.0.1:6379/12", 12, "bench_celeriac", flush_dbs=[12], src=src)
                         for src in opts.src] or [Side("celeriac", "redis://127.0.0.1:6379/12", 12, "bench_celeriac",
                                                       flush_dbs=[12])]
    print(f"start: {machine_note()}")
    runs: dict[int, list[tuple[float, float, float, float, float]]] = {i: [] for i in range(len(sides))}
    for number in range(1, opts.rounds + 1):
        for i, side in enumerate(sides):
            rate, worker_us, redis_us, script_us, rss = result = one_drain(side, opts.tasks, opts.flags)
            runs[i].append(result)
            label = f"round {number} {getattr(side, 'src', '') or 'installed'}"
            print(f"{label}: drained {opts.tasks:,} no-op tasks at {rate:,.0f} tasks/s; CPU per task: worker processes "
                  f"{worker_us:.0f} us, Redis {redis_us:.0f} us (scripts {script_us:.0f} us); peak worker RSS "
                  f"{rss / 2**20:.0f} MiB", flush=True)
    print(f"end: {machine_note()}")
    if opts.rounds > 1 or len(sides) > 1:
        for i, side in enumerate(sides):
            rates, workers, rediss, scripts, _ = zip(*runs[i], strict=True)
            print(f"{getattr(side, 'src', '') or 'installed'}: medians over {len(rates)} runs: {median(rates):,.0f} tasks/s, "
                  f"worker {median(workers):.0f} us, Redis {median(rediss):.0f} us (scripts {median(scripts):.0f} us) per task")


if __name__ == "__main__":
    main()
