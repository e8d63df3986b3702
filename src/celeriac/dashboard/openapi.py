"""OpenAPI 3.1 description of the dashboard's HTTP API (served at ``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any


def _op(summary: str, params: tuple[str, ...] = (), method: str = "get", body: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": [{"name": p.strip("{}"), "in": "path" if p.startswith("{") else "query", "required": p.startswith("{"),
                        "schema": {"type": "string"}} for p in params],
        "responses": {"200": {"description": "OK", "content": {"application/json": {}}},
                      "401": {"description": "authentication required"}},
    }
    if method == "post":
        op["responses"]["403"] = {"description": "read-only mode, or a missing CSRF token from a browser"}
    if body:
        op["requestBody"] = {"content": {"application/json": {"schema": {"type": "object", "properties": {
            "args": {"type": "array"}, "kwargs": {"type": "object"}, "options": {"type": "object"}}}}}}
    return {method: op}


_FILTERS = ("state", "name", "worker", "queue", "since", "until", "search", "limit", "offset", "after",
            "taskname", "workername", "received_start", "received_end")

PATHS: dict[str, dict[str, Any]] = {
    "/api/workers": _op("Workers with their inspect replies; ?status=true for {name: online}", ("status", "workername")),
    "/api/tasks": _op("Tasks, newest first, as {uuid: task}; the X-Next-Cursor header pages on", _FILTERS),
    "/api/task/types": _op("Task names seen recently"),
    "/api/task/info/{task_id}": _op("One task", ("{task_id}",)),
    "/api/task/result/{task_id}": _op("A task's state and result from the result backend", ("{task_id}",)),
    "/api/task/async-apply/{name}": _op("Send a task; answers its id", ("{name}",), "post", True),
    "/api/task/send-task/{name}": _op("Send a task by name; answers its id", ("{name}",), "post", True),
    "/api/task/revoke/{task_id}": _op("Revoke a task", ("{task_id}", "terminate", "signal"), "post"),
    "/api/task/retry/{task_id}": _op("Send a task again with the same arguments, linked to it", ("{task_id}",), "post"),
    "/api/tasks/retry": _op("Send again every task matching a filter (FAILURE by default)", _FILTERS, "post"),
    "/api/task/rate-limit/{name}": _op("Set a task's rate limit on a worker", ("{name}", "workername", "ratelimit"), "post"),
    "/api/task/timeout/{name}": _op("Set a task's time limits on a worker", ("{name}", "workername", "soft", "hard"), "post"),
    "/api/worker/shutdown/{name}": _op("Shut a worker down", ("{name}",), "post"),
    "/api/worker/pool/grow/{name}": _op("Add pool processes", ("{name}", "n"), "post"),
    "/api/worker/pool/shrink/{name}": _op("Remove pool processes", ("{name}", "n"), "post"),
    "/api/worker/queue/add-consumer/{name}": _op("Consume from another queue", ("{name}", "queue"), "post"),
    "/api/worker/queue/cancel-consumer/{name}": _op("Stop consuming a queue", ("{name}", "queue"), "post"),
    "/api/queues/length": _op("Ready, delayed, in-flight and dead messages per queue, and the oldest age"),
    "/api/queues/requeue": _op("Send dead letters back to their queues", ("id",), "post"),
    "/api/charts": _op("Throughput, failures, runtime percentiles and queue depth series"),
    "/api/live": _op("Server-sent events: update, tick"),
    "/metrics": _op("Prometheus metrics"),
    "/healthcheck": _op("OK when the history store answers"),
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "celeriac dashboard API", "version": "1"},
    "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
    "security": [{"basic": []}],
    "paths": PATHS,
}
