"""Prometheus text for ``/metrics``: Flower's metric names plus queue depth and latency."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, float("inf"))


class Counters:
    """In-process counters fed by the ingester (Prometheus counters may restart from zero)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: Counter[tuple[str, str, str]] = Counter()
        self.runtime: dict[tuple[str, str], list[float]] = {}

    def count(self, events: Iterable[dict[str, Any]], names: Mapping[str, str | None] | None = None) -> None:
        """Count task events; ``names`` gives the task name for events that carry only the uuid."""
        names = names or {}
        with self._lock:
            for e in events:
                if not str(e.get("type", "")).startswith("task-"):
                    continue
                key = (e["type"], str(e.get("name") or names.get(e.get("uuid", "")) or ""), str(e.get("hostname") or ""))
                self.events[key] += 1
                if e["type"] == "task-succeeded" and e.get("runtime") is not None:
                    self._observe((key[1], key[2]), float(e["runtime"]))

    def _observe(self, key: tuple[str, str], value: float) -> None:
        hist = self.runtime.setdefault(key, [0.0] * (len(BUCKETS) + 1))
        for i, edge in enumerate(BUCKETS):
            if value <= edge:
                hist[i] += 1
        hist[-1] += value


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(name: str, labels: dict[str, Any], value: float) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value:g}"


def render(counters: Counters, workers: Sequence[dict[str, Any]], queues: Sequence[Any]) -> str:
    out = ["# HELP flower_events_total Task events seen, by type, task and worker.", "# TYPE flower_events_total counter"]
    with counters._lock:
        out += [_line("flower_events_total", {"type": t, "task": n, "worker": w}, c) for (t, n, w), c in counters.events.items()]
        out += ["# HELP flower_task_runtime_seconds Task runtime.", "# TYPE flower_task_runtime_seconds histogram"]
        for (task, worker), hist in counters.runtime.items():
            labels = {"task": task, "worker": worker}
            for edge, count in zip(BUCKETS, hist, strict=False):
                out.append(_line("flower_task_runtime_seconds_bucket", {**labels, "le": "+Inf" if edge == float("inf") else edge}, count))
            out.append(_line("flower_task_runtime_seconds_sum", labels, hist[-1]))
            out.append(_line("flower_task_runtime_seconds_count", labels, hist[len(BUCKETS) - 1]))
    out += ["# HELP flower_worker_online Worker online (1) or offline (0).", "# TYPE flower_worker_online gauge"]
    out += [_line("flower_worker_online", {"worker": w["hostname"]}, 1 if w["online"] else 0) for w in workers]
    out += ["# HELP flower_worker_number_of_currently_executing_tasks Tasks running on a worker.",
            "# TYPE flower_worker_number_of_currently_executing_tasks gauge"]
    out += [_line("flower_worker_number_of_currently_executing_tasks", {"worker": w["hostname"]}, w["active"] or 0)
            for w in workers if w["online"]]
    out += _queue_lines(queues)
    return "\n".join(out) + "\n"


def _queue_lines(queues: Sequence[Any]) -> list[str]:
    out: list[str] = []
    for metric, attr, help_ in (
        ("celeriac_queue_depth", "ready", "Messages ready to run."),
        ("celeriac_queue_delayed", "delayed", "Messages waiting for their eta."),
        ("celeriac_queue_in_flight", "in_flight", "Messages held by workers."),
        ("celeriac_queue_dead_letters", "dead", "Messages in the dead-letter store."),
        ("celeriac_queue_latency_seconds", "oldest_age", "Age of the oldest ready message."),
    ):
        out += [f"# HELP {metric} {help_}", f"# TYPE {metric} gauge"]
        out += [_line(metric, {"queue": q.name}, float(getattr(q, attr) or 0)) for q in queues]
    return out
