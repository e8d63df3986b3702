"""Series for the overview charts: throughput, failures, runtime percentiles, queue depth."""

from __future__ import annotations

import time
from typing import Any

from .store import Store

WINDOW = 15 * 60.0
STEP = 10.0
_RUNTIME_SAMPLE = 20_000


def _buckets(now: float, window: float, step: float) -> list[float]:
    first = (now - window) // step * step
    return [first + i * step for i in range(int(window // step) + 1)]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def task_series(store: Store, now: float | None = None, window: float = WINDOW, step: float = STEP) -> dict[str, Any]:
    """Finished tasks per bucket (split into succeeded/failed) and runtime p50/p95/p99."""
    now = now or time.time()
    xs = _buckets(now, window, step)
    index = {x: i for i, x in enumerate(xs)}
    ok, failed = [0] * len(xs), [0] * len(xs)
    rows = store.db.query(
        "SELECT CAST(finished_at / ? AS INTEGER) AS b, state, COUNT(*) AS n FROM tasks WHERE finished_at >= ? "
        "GROUP BY b, state", (step, xs[0]))
    for row in rows:
        i = index.get(float(row["b"]) * step)
        if i is not None:
            (failed if row["state"] == "FAILURE" else ok)[i] += int(row["n"])
    runtimes: list[list[float]] = [[] for _ in xs]
    for row in store.db.query("SELECT finished_at, runtime FROM tasks WHERE finished_at >= ? AND runtime IS NOT NULL "
                              "ORDER BY finished_at DESC LIMIT ?", (xs[0], _RUNTIME_SAMPLE)):
        i = index.get(float(row["finished_at"]) // step * step)
        if i is not None:
            runtimes[i].append(float(row["runtime"]))
    return {"x": xs, "succeeded": ok, "failed": failed,
            **{f"p{q}": [_percentile(r, q / 100) for r in runtimes] for q in (50, 95, 99)}}


def queue_series(store: Store, now: float | None = None, window: float = WINDOW) -> dict[str, Any]:
    """Ready messages per queue at each broker sample."""
    now = now or time.time()
    rows = store.db.query("SELECT ts, queue, ready FROM queue_samples WHERE ts >= ? ORDER BY ts", (now - window,))
    xs = sorted({float(r["ts"]) for r in rows})
    pos = {x: i for i, x in enumerate(xs)}
    queues: dict[str, list[int | None]] = {}
    for row in rows:
        series = queues.setdefault(row["queue"], [None] * len(xs))
        series[pos[float(row["ts"])]] = row["ready"]
    return {"x": xs, "queues": queues}


def state_counts(store: Store, since: float) -> dict[str, int]:
    rows = store.db.query("SELECT state, COUNT(*) AS n FROM tasks WHERE created >= ? GROUP BY state", (since,))
    return {r["state"]: int(r["n"]) for r in rows}
