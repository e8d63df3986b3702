"""Helpers shared by pages, API and actions: the dashboard context, filters, Flower's task JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .auth import base_path, csrf_token
from .queries import TaskFilter

if TYPE_CHECKING:
    from .app import Dashboard


class BadInput(ValueError):
    """A request parameter that cannot be used; answered with 400 and the reason."""


def whole(params: Mapping[str, Any], name: str, default: int, low: int = 0, high: int = 2**62) -> int:
    """An integer parameter within [low, high]; anything else is BadInput."""
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise BadInput(f"{name} must be a whole number, got {str(value)[:40]!r}") from None
    if not low <= number <= high:
        raise BadInput(f"{name} must be between {low} and {high}")
    return number


def dash(request: Request) -> Dashboard:
    return request.app.state.dash  # type: ignore[no-any-return]


def parse_time(value: str | None) -> float | None:
    """Epoch seconds or an ISO date/time (as the time filters and Flower's ``received_start`` send)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def task_filter(params: Mapping[str, Any]) -> TaskFilter:
    """Our names (state, name, worker, queue, since, until, search) and Flower's (taskname, workername...)."""
    names = ("state", "name", "taskname", "worker", "workername", "queue", "since", "received_start", "until",
             "received_end", "search")
    wrong = [n for n in names if params.get(n) is not None and not isinstance(params.get(n), (str, int, float))]
    if wrong:
        raise BadInput(f"filter {wrong[0]} must be text")
    params = {n: str(params[n]) for n in names if params.get(n) is not None}
    return TaskFilter(
        state=(params.get("state") or "").upper(),
        name=params.get("name") or params.get("taskname") or "",
        worker=params.get("worker") or params.get("workername") or "",
        queue=params.get("queue") or "",
        since=parse_time(params.get("since") or params.get("received_start")),
        until=parse_time(params.get("until") or params.get("received_end")),
        search=(params.get("search") or "").strip(),
    )


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    d = dash(request)
    context = {**context, "csrf": csrf_token(request), "user": request.scope.get("user"),
               "prefix": base_path(request.scope, d.opts)}
    return d.templates.TemplateResponse(request, template, context, status_code=status_code)


def task_json(row: dict[str, Any]) -> dict[str, Any]:
    """A task in the shape Flower's ``/api/tasks`` and ``/api/task/info`` return."""
    state = row["state"]
    finished = row.get("finished_at")
    return {
        "uuid": row["uuid"], "name": row.get("name"), "state": state, "hostname": row.get("worker"),
        "worker": row.get("worker"), "queue": row.get("queue"), "routing_key": row.get("queue"),
        "args": row.get("args"), "kwargs": row.get("kwargs"), "result": row.get("result"),
        "exception": row.get("exception"), "traceback": row.get("traceback"), "eta": row.get("eta"),
        "expires": row.get("expires"), "retries": row.get("retries"), "runtime": row.get("runtime"),
        "sent": row.get("sent_at"), "received": row.get("received_at"), "started": row.get("started_at"),
        "succeeded": finished if state == "SUCCESS" else None, "failed": finished if state == "FAILURE" else None,
        "revoked": finished if state == "REVOKED" else None, "rejected": finished if state == "REJECTED" else None,
        "timestamp": row.get("updated"), "root_id": row.get("root_id"), "parent_id": row.get("parent_id"),
        "group_id": row.get("group_id"), "retry_of": row.get("retry_of"),
        "progress": orjson.loads(row["progress"]) if row.get("progress") else None,
    }
