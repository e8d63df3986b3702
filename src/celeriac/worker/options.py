"""Worker options: CLI flags over settings over defaults, resolved once at start."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ImproperlyConfigured

POOLS = ("prefork", "threads", "solo", "async")


def expand_hostname(name: str | None) -> str:
    """Node name with Celery's ``%h`` (host), ``%n`` (short host) and ``%d`` (domain) expansions."""
    host = socket.gethostname()
    short, _, domain = host.partition(".")
    name = name or "celeriac@%h"
    return name.replace("%h", host).replace("%n", short).replace("%d", domain)


def parse_autoscale(value: str | None) -> tuple[int, int] | None:
    """``"10,3"`` -> (max 10, min 3), as Celery's ``--autoscale``."""
    if not value:
        return None
    try:
        parts = [int(p) for p in str(value).split(",")]
    except ValueError:
        raise ImproperlyConfigured(f"--autoscale takes MAX[,MIN], got {value!r}") from None
    high, low = (parts + [0])[:2] if len(parts) == 1 else parts[:2]
    if high < 1 or low < 0 or low > high:
        raise ImproperlyConfigured(f"--autoscale needs MAX >= MIN >= 0 and MAX >= 1, got {value!r}")
    return high, low


@dataclass
class WorkerOptions:
    """Everything a worker needs to know about how to run."""

    hostname: str
    pool: str = "prefork"
    concurrency: int = 1
    queues: list[str] = field(default_factory=lambda: ["celery"])
    prefetch_multiplier: int = 1
    max_tasks_per_child: int | None = None
    max_memory_per_child: int | None = None
    autoscale: tuple[int, int] | None = None
    loglevel: str = "INFO"
    beat: bool = False
    heartbeat_interval: float = 2.0

    @classmethod
    def resolve(cls, conf: Any, **flags: Any) -> WorkerOptions:
        pool = flags.get("pool") or conf.worker_pool or "prefork"
        if pool in ("gevent", "eventlet"):
            pool = "async"
        if pool not in POOLS:
            raise ImproperlyConfigured(f"unknown pool {pool!r}; choose one of: {', '.join(POOLS)}")
        autoscale = parse_autoscale(flags.get("autoscale"))
        default_concurrency = 100 if pool == "async" else (1 if pool == "solo" else os.cpu_count() or 1)
        concurrency = int(flags.get("concurrency") or conf.worker_concurrency or default_concurrency)
        if autoscale:
            concurrency = max(autoscale[1], 1)
        queues = flags.get("queues")
        queue_list = [q.strip() for q in ",".join(queues).split(",") if q.strip()] if queues else [conf.task_default_queue]
        return cls(
            hostname=expand_hostname(flags.get("hostname")),
            pool=pool,
            concurrency=1 if pool == "solo" else concurrency,
            queues=queue_list,
            prefetch_multiplier=int(flags.get("prefetch_multiplier") or conf.worker_prefetch_multiplier or 1),
            max_tasks_per_child=flags.get("max_tasks_per_child") or conf.worker_max_tasks_per_child,
            max_memory_per_child=flags.get("max_memory_per_child") or conf.worker_max_memory_per_child,
            autoscale=autoscale,
            loglevel=str(flags.get("loglevel") or "INFO").upper(),
            beat=bool(flags.get("beat")),
            heartbeat_interval=float(conf.worker_heartbeat_interval or 2.0),
        )
