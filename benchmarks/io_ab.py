"""The I/O row for celeriac source trees taken in turns: tasks sleeping 10 ms, ``async def``, ``-P async``.

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/io_ab.py --src /tmp/before/src --src src --rounds 3

Each round runs every tree once: ``--io-tasks`` tasks that sleep 10 ms are queued, then drained by a
fresh ``worker -P async -c <concurrency>`` started from that tree (its ``src`` first on
``PYTHONPATH``), timed as in ``compare_redis.py``'s I/O row. The producer and the listener are this
process for every tree, so only the worker differs.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from compare_redis import REDIS, io_phase
from harness import machine_note, median
from latency_ab import TreeSide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", required=True, help="a celeriac source tree (its src directory); repeat")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--io-tasks", type=int, default=2_000)
    parser.add_argument("--io-concurrency", type=int, default=100)
    parser.add_argument("--loglevel", default="INFO")
    opts = parser.parse_args()
    for src in opts.src:
        if not (Path(src) / "celeriac" / "__init__.py").is_file():
            parser.error(f"{src} holds no celeriac package")
    sides = [TreeSide("celeriac", f"{REDIS}/12", 12, "bench_celeriac", flush_dbs=[12], src=src) for src in opts.src]
    flags = ["-P", "async", "-c", str(opts.io_concurrency)]
    print(f"start: {machine_note()}")
    rates: dict[str, list[float]] = {src: [] for src in opts.src}
    with tempfile.TemporaryDirectory(prefix="celeriac-io-ab-") as tmp:
        for number in range(1, opts.rounds + 1):
            for side in sides:
                rate = io_phase(side, "asleep", flags, opts, Path(tmp))["drain"]
                rates[side.src].append(rate)
                print(f"round {number} {side.src}: {rate:,.0f} tasks/s", flush=True)
    print(f"end: {machine_note()}")
    for src, runs in rates.items():
        print(f"{src}: median over {len(runs)} runs {median(runs):,.0f} tasks/s ({min(runs):,.0f} to {max(runs):,.0f})")


if __name__ == "__main__":
    main()
