"""Latency of celeriac source trees taken in turns on the same Redis: is a change, or the day, to blame?

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/latency_ab.py --src /tmp/before/src --src src --rounds 5

Each round runs every tree once, one after the other: N no-op tasks are queued and drained by a
fresh ``worker -P prefork -c 2`` started from that tree (its ``src`` first on ``PYTHONPATH``), then the
same worker gets one task every ``1/rate`` s and the time from ``.delay()`` to the published result is
taken, as in the latency row of ``compare_redis.py``. The producer and the listener are this
process (this tree's code) for every tree, so only the worker differs. Day-to-day drift on a shared
machine is larger than most changes; alternating puts both trees under the same conditions.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from compare_redis import REDIS, Side, enqueue, latency, run_worker
from harness import HERE, machine_note, median


@dataclass
class TreeSide(Side):
    """celeriac as found in one source tree."""

    src: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "PYTHONPATH": f"{Path(self.src).resolve()}:{HERE}"}


def one_run(side: TreeSide, opts, tmp: Path) -> tuple[float, float, float]:
    """(drain tasks/s, p50 ms, p99 ms) of one fresh worker from ``side.src``."""
    side.flush()
    task = side.app().noop
    _, ids = enqueue(task, opts.tasks)
    out = run_worker(side, ["-P", "prefork", "-c", "2"], ids, tmp / "worker.log", "INFO",
                     then=lambda: dict(zip(("p50", "p99"), latency(task, opts.rate, opts.latency_tasks), strict=True)))
    return out["drain"], out["p50"], out["p99"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", required=True, help="a celeriac source tree (its src directory); repeat")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=10_000, help="no-op tasks drained before the latency phase")
    parser.add_argument("--latency-tasks", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=200.0, help="tasks per second in the latency phase")
    opts = parser.parse_args()
    for src in opts.src:
        if not (Path(src) / "celeriac" / "__init__.py").is_file():
            parser.error(f"{src} holds no celeriac package")
    sides = [TreeSide("celeriac", f"{REDIS}/12", 12, "bench_celeriac", flush_dbs=[12], src=src) for src in opts.src]
    print(f"start: {machine_note()}")
    results: dict[str, list[tuple[float, float, float]]] = {src: [] for src in opts.src}
    with tempfile.TemporaryDirectory(prefix="celeriac-latency-ab-") as tmp:
        for number in range(1, opts.rounds + 1):
            for side in sides:
                drain, p50, p99 = one_run(side, opts, Path(tmp))
                results[side.src].append((drain, p50, p99))
                print(f"round {number} {side.src}: drain {drain:,.0f}/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)
    print(f"end: {machine_note()}")
    for src, runs in results.items():
        print(f"{src}: medians over {len(runs)} runs: drain {median([r[0] for r in runs]):,.0f}/s, "
              f"p50 {median([r[1] for r in runs]):.2f} ms, p99 {median([r[2] for r in runs]):.2f} ms "
              f"(p99 {min(r[2] for r in runs):.2f} to {max(r[2] for r in runs):.2f})")


if __name__ == "__main__":
    main()
