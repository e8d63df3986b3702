"""Worker throughput and memory on the embedded SQLite broker (no server involved).

    .venv/bin/python benchmarks/worker_sqlite.py                     # 20,000 no-op, 2,000 x 10 ms
    .venv/bin/python benchmarks/worker_sqlite.py --tasks 2000 --io-tasks 200 -c 4

Each run enqueues every task first (single ``.delay()`` calls), then starts a real worker and times
the drain until every result is in the result store, read from the SQLite file itself. Peak RSS
is the largest sum over the worker's supervisor and children, sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from harness import Worker, drain_rate, load_app, machine_note

ROWS = [
    # label, task attribute, args, pool flags (None: use --pool/-c)
    ("no-op (worker pool as given)", "noop", (), None),
    ("sleep 10 ms, def (worker pool as given)", "sleep", (0.01,), None),
    ("sleep 10 ms, async def, -P async", "asleep", (0.01,), ["-P", "async"]),
]


def stored(db: Path):
    """A counter of finished results that reads the result table directly."""
    conn = sqlite3.connect(db, timeout=30)

    def count() -> int:
        return conn.execute("SELECT COUNT(*) FROM celeriac_results WHERE status = 'SUCCESS'").fetchone()[0]

    return count


def run_row(task_name: str, args: tuple, count: int, flags: list[str], workdir: Path) -> dict[str, float]:
    """One fresh database: enqueue ``count`` tasks, start the worker, time the drain."""
    db = workdir / f"{task_name}-{time.monotonic_ns()}.sqlite3"
    url = f"sqlite:///{db}"
    env = {"BENCH_BROKER": url, "BENCH_BACKEND": url}
    task = getattr(load_app("celeriac", env), task_name)
    started = time.perf_counter()
    for _ in range(count):
        task.delay(*args)
    enqueue = count / (time.perf_counter() - started)
    worker = Worker("celeriac", flags, env, workdir / f"{task_name}.log")
    try:
        rate = drain_rate(stored(db), count, timeout=600)
        return {"enqueue": enqueue, "drain": rate, "rss": worker.peak_rss}
    except BaseException:
        print(worker.tail())
        raise
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20_000, help="no-op tasks")
    parser.add_argument("--io-tasks", type=int, default=2_000, help="tasks sleeping 10 ms")
    parser.add_argument("-P", "--pool", default="prefork")
    parser.add_argument("-c", "--concurrency", type=int, default=2)
    parser.add_argument("--async-concurrency", type=int, default=100, help="coroutines for the -P async row")
    parser.add_argument("--prefetch-multiplier", type=int)
    opts = parser.parse_args()
    base = ["-P", opts.pool, "-c", str(opts.concurrency)]
    if opts.prefetch_multiplier:
        base += ["--prefetch-multiplier", str(opts.prefetch_multiplier)]
    print(f"SQLite broker and results; worker {' '.join(base)}; {machine_note()}")
    print("\n| tasks | count | enqueue, tasks/s | drain, tasks/s | peak worker RSS, MiB |\n|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="celeriac-bench-") as tmp:
        for label, name, args, flags in ROWS:
            count = opts.tasks if name == "noop" else opts.io_tasks
            row_flags = ["-P", "async", "-c", str(opts.async_concurrency)] if flags else base
            res = run_row(name, args, count, row_flags, Path(tmp))
            print(f"| {label} | {count:,} | {res['enqueue']:,.0f} | {res['drain']:,.0f} | {res['rss'] / 2**20:.0f} |", flush=True)
    print(f"\nend: {machine_note()}")


if __name__ == "__main__":
    main()
