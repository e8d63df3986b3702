"""Server-rendered pages. Each handler reads the store and renders one template (or its live part)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import states
from . import charts, queries
from .common import dash, render, task_filter, whole
from .db import mask_url, redact
from .ingest import queue_names

STATES = ["PENDING", "RECEIVED", "STARTED", "PROGRESS", "RETRY", "SUCCESS", "FAILURE", "REVOKED", "REJECTED"]
_INSPECT = ("stats", "active", "reserved", "scheduled", "registered", "active_queues", "revoked", "conf")


def _fragment(request: Request, name: str, full: str, context: dict[str, Any]) -> Response:
    partial = request.query_params.get("fragment") == "1"
    return render(request, name if partial else full, context)


def overview(request: Request) -> Response:
    d = dash(request)
    now = time.time()
    context = {
        "counts": charts.state_counts(d.store, now - charts.WINDOW),
        "workers": queries.workers(d.store, now),
        "queues": queue_stats(request),
        "broker_url": mask_url(d.app.broker_url),
        "backend_url": mask_url(d.app.result_backend_url),
        "page": "overview",
    }
    return _fragment(request, "_overview_live.html", "overview.html", context)


def tasks(request: Request) -> Response:
    d = dash(request)
    params = request.query_params
    flt = task_filter(params)
    page = queries.list_tasks(d.store, flt, limit=whole(params, "limit", 50, 1, 500),
                              after=params.get("after", ""), before=params.get("before", ""))
    context = {
        "page_rows": page, "flt": flt, "query": flt.as_query(), "states": STATES, "page": "tasks",
        "names": queries.distinct(d.store, "name"), "workers": queries.distinct(d.store, "worker"),
        "queues": queries.distinct(d.store, "queue"), "cursor_args": _cursor_args(params),
    }
    return _fragment(request, "_tasks_table.html", "tasks.html", context)


def _cursor_args(params: Any) -> dict[str, str]:
    return {k: params[k] for k in ("after", "before") if params.get(k)}


def task(request: Request) -> Response:
    d = dash(request)
    task_id = request.path_params["task_id"]
    row = queries.get_task(d.store, task_id)
    meta = _backend_meta(request, task_id)
    if row is None and meta is None:
        return render(request, "missing.html", {"what": "task", "name": task_id, "page": "tasks"}, status_code=404)
    context = {
        "task": row or _row_from_meta(task_id, meta or {}),
        "meta": meta, "timeline": queries.timeline(d.store, task_id),
        "rel": queries.relatives(d.store, row) if row else {}, "page": "tasks",
        "finished": (row or {}).get("state") in states.READY_STATES,
    }
    return _fragment(request, "_task_body.html", "task.html", context)


def _row_from_meta(task_id: str, meta: dict[str, Any]) -> dict[str, Any]:
    """A task the history has not heard of yet, as far as the result backend knows it."""
    return {"uuid": task_id, "state": meta.get("status") or "PENDING", "name": meta.get("name"),
            "queue": meta.get("queue"), "worker": meta.get("worker"), "runtime": None}


def _backend_meta(request: Request, task_id: str) -> dict[str, Any] | None:
    backend = dash(request).app.backend
    if not backend.enabled:
        return None
    try:
        return backend.get(task_id)
    except Exception:
        return None


def workers(request: Request) -> Response:
    rows = queries.workers(dash(request).store)
    return _fragment(request, "_workers_table.html", "workers.html", {"workers": rows, "page": "workers"})


def worker(request: Request) -> Response:
    d = dash(request)
    name = request.path_params["name"]
    row = queries.worker(d.store, name)
    if row is None:
        return render(request, "missing.html", {"what": "worker", "name": name, "page": "workers"}, status_code=404)
    replies = inspect_worker(d, name) if row["online"] else {}
    return render(request, "worker.html", {"w": row, "inspect": replies, "page": "workers"})


def inspect_worker(d: Any, name: str) -> dict[str, Any]:
    return {method: (reply or {}).get(name) for method, reply in inspect_all(d, [name]).items()}


def inspect_all(d: Any, names: list[str], methods: tuple[str, ...] = _INSPECT) -> dict[str, dict[str, Any] | None]:
    """Ask workers everything at once, in parallel: silent workers cost one timeout, not eight."""
    if not names:
        return {}
    insp = d.app.control.inspect(destination=names, timeout=d.opts.inspect_timeout)
    with ThreadPoolExecutor(len(methods)) as pool:
        futures = {m: pool.submit(getattr(insp, m)) for m in methods}
    out: dict[str, dict[str, Any] | None] = {}
    for method, fut in futures.items():
        try:
            out[method] = redact(fut.result())
        except Exception:
            out[method] = None
    return out


def queue_stats(request: Request) -> list[Any]:
    d = dash(request)
    names = queue_names(d.app) + [q for q in queries.distinct(d.store, "queue") if q not in queue_names(d.app)]
    try:
        return list(d.app.broker.stats(names))
    except Exception:
        return []


def broker(request: Request) -> Response:
    d = dash(request)
    try:
        dead = d.app.broker.dead_letters(None, limit=100)
    except Exception:
        dead = []
    context = {"queues": queue_stats(request), "dead": dead, "broker_url": mask_url(d.app.broker_url), "page": "broker"}
    return _fragment(request, "_broker_live.html", "broker.html", context)


def schedules(request: Request) -> Response:
    entries = []
    for name, entry in sorted((dash(request).app.conf.beat_schedule or {}).items()):
        entries.append({"name": name, "task": entry.get("task"), "schedule": str(entry.get("schedule")),
                        "args": entry.get("args", ()), "kwargs": entry.get("kwargs", {}), "options": entry.get("options", {})})
    return render(request, "schedules.html", {"entries": entries, "page": "schedules"})
