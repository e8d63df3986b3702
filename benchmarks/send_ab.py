"""The producer's cost per task for celeriac source trees taken in turns: is a change, or the day, to blame?

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/send_ab.py --src /tmp/before/src --src src --rounds 5

Each round runs every tree once, each in a fresh process with that tree's ``src`` first on
``PYTHONPATH``: ``--tasks`` single ``.delay()`` calls of ``bench.noop``, then one ``group`` of
``--group`` of them (signatures built before the clock), as the enqueue rows of ``compare_redis.py``
send them, to a Redis broker and backend. It prints wall time and this process's CPU time (user and
system, which includes the event thread) per task. No worker runs; the database is flushed between
runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import redis
from compare_redis import REDIS
from harness import HERE, machine_note, median

DB = 12

_CHILD = """
import json, resource, sys, time
import bench_app, celeriac
from celeriac import group

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

tasks, size = int(sys.argv[1]), int(sys.argv[2])
bench_app.noop.delay()  # connections and scripts in place before the clock
out = {}
wall, used = time.perf_counter(), cpu()
for _ in range(tasks):
    bench_app.noop.delay()
out["delay"] = ((time.perf_counter() - wall) / tasks, (cpu() - used) / tasks)
members = group(bench_app.noop.s() for _ in range(size))
wall, used = time.perf_counter(), cpu()
members.apply_async()
out["group"] = ((time.perf_counter() - wall) / size, (cpu() - used) / size)
print(json.dumps(out))
"""


def one_run(src: str, opts: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """(wall s, CPU s) per task for single calls and for the group, from a fresh process of ``src``."""
    redis.Redis.from_url(f"{REDIS}/{DB}").flushdb()
    env = {**os.environ, "PYTHONPATH": f"{Path(src).resolve()}:{HERE}", "BENCH_LIB": "celeriac",
           "BENCH_BROKER": f"{REDIS}/{DB}", "BENCH_BACKEND": f"{REDIS}/{DB}", "BENCH_QUEUE": "bench_send"}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(opts.tasks), str(opts.group)], env=env, cwd=HERE,
                          capture_output=True, text=True, check=True)
    return {kind: tuple(pair) for kind, pair in json.loads(done.stdout.splitlines()[-1]).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", required=True, help="a celeriac source tree (its src directory); repeat")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=5_000, help="single .delay() calls per run")
    parser.add_argument("--group", type=int, default=20_000, help="tasks in the group per run")
    opts = parser.parse_args()
    for src in opts.src:
        if not (Path(src) / "celeriac" / "__init__.py").is_file():
            parser.error(f"{src} holds no celeriac package")
    print(f"start: {machine_note()}")
    runs: dict[str, list[dict[str, tuple[float, float]]]] = {src: [] for src in opts.src}
    try:
        for number in range(1, opts.rounds + 1):
            for src in opts.src:
                run = one_run(src, opts)
                runs[src].append(run)
                text = ", ".join(f"{kind} {1e6 * wall:.0f} us wall / {1e6 * used:.0f} us CPU" for kind, (wall, used) in run.items())
                print(f"round {number} {src}: {text}", flush=True)
    finally:
        redis.Redis.from_url(f"{REDIS}/{DB}").flushdb()
    print(f"end: {machine_note()}")
    for src, results in runs.items():
        for kind in ("delay", "group"):
            walls = [r[kind][0] for r in results]
            cpus = [r[kind][1] for r in results]
            print(f"{src} {kind}: median {1 / median(walls):,.0f} tasks/s, {1e6 * median(walls):.0f} us wall, "
                  f"{1e6 * median(cpus):.0f} us CPU per task")


if __name__ == "__main__":
    main()
