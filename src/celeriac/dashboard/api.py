"""Read-only JSON endpoints (Flower's shapes), metrics, health, OpenAPI, and the login routes."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from .. import states
from . import charts, metrics, queries
from .common import dash, task_filter, task_json, whole
from .openapi import SPEC
from .pages import inspect_all, queue_stats


def workers(request: Request) -> Response:
    """``/api/workers``: ``{name: inspect replies}``; ``?status=true`` gives ``{name: online}``."""
    d = dash(request)
    rows = queries.workers(d.store)
    if request.query_params.get("status", "").lower() in ("1", "true"):
        return JSONResponse({w["hostname"]: w["online"] for w in rows})
    wanted = request.query_params.get("workername")
    rows = [w for w in rows if not wanted or w["hostname"] == wanted]
    replies = inspect_all(d, [w["hostname"] for w in rows if w["online"]])
    out = {}
    for w in rows:
        info = {"status": w["online"], "active": w["active"], "processed": w["processed"], "loadavg": w["loadavg"],
                "freq": w["freq"], "heartbeat": w["last_seen"], "sw_ident": w["sw_ident"], "sw_ver": w["sw_ver"]}
        info.update({k: v.get(w["hostname"]) for k, v in replies.items() if v and w["hostname"] in v})
        out[w["hostname"]] = info
    return JSONResponse(out)


def tasks(request: Request) -> Response:
    """``/api/tasks``: ``{uuid: task}`` newest first; ``limit``, ``offset`` and our ``after`` cursor."""
    d = dash(request)
    params = request.query_params
    limit = whole(params, "limit", 100, 1, 10_000)
    page = queries.list_tasks(d.store, task_filter(params), limit=limit, after=params.get("after", ""),
                              offset=whole(params, "offset", 0))
    headers = {"X-Next-Cursor": page.next} if page.next else {}
    return JSONResponse({r["uuid"]: task_json(r) for r in page.rows}, headers=headers)


def task_types(request: Request) -> Response:
    return JSONResponse({"task-types": queries.distinct(dash(request).store, "name")})


def task_info(request: Request) -> Response:
    d = dash(request)
    row = queries.get_task(d.store, request.path_params["task_id"])
    if row is None:
        return JSONResponse({"error": f"Unknown task '{request.path_params['task_id']}'"}, status_code=404)
    info = task_json(row)
    info["children"] = [c["uuid"] for c in queries.relatives(d.store, row)["children"]]
    return JSONResponse(info)


def task_result(request: Request) -> Response:
    """Flower's ``{"task-id", "state", "result"}``; the value comes from the result backend."""
    d = dash(request)
    task_id = request.path_params["task_id"]
    meta = d.app.backend.get(task_id) if d.app.backend.enabled else None
    state = (meta or {}).get("status") or "PENDING"
    body: dict[str, Any] = {"task-id": task_id, "state": state}
    if state in states.READY_STATES or meta:
        body["result"] = (meta or {}).get("result")
    if state == states.FAILURE:
        body["traceback"] = (meta or {}).get("traceback")
    return JSONResponse(body)


def queues(request: Request) -> Response:
    stats = queue_stats(request)
    return JSONResponse({"active_queues": [
        {"name": q.name, "messages": q.ready, "delayed": q.delayed, "in_flight": q.in_flight, "dead": q.dead,
         "oldest_age": q.oldest_age} for q in stats]})


def chart_data(request: Request) -> Response:
    """Series for the overview charts (the page polls this on every live tick)."""
    d = dash(request)
    now = time.time()
    return JSONResponse({"tasks": charts.task_series(d.store, now), "queues": charts.queue_series(d.store, now)})


def prometheus(request: Request) -> Response:
    d = dash(request)
    text = metrics.render(d.ingester.counters, queries.workers(d.store), queue_stats(request))
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


def healthcheck(request: Request) -> Response:
    dash(request).store.db.scalar("SELECT 1")
    return PlainTextResponse("OK")


def openapi(request: Request) -> Response:
    return JSONResponse(SPEC)


async def login(request: Request) -> Response:
    return await dash(request).oauth.login(request)


async def oauth_callback(request: Request) -> Response:
    return await dash(request).oauth.callback(request)


async def logout(request: Request) -> Response:
    return await dash(request).oauth.logout(request)
