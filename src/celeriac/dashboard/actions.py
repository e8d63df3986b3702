"""State-changing endpoints. Each one first passes ``guard`` (read-only mode, CSRF), then acts."""

from __future__ import annotations

import ast
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import states
from ..exceptions import EncodeError, ImproperlyConfigured
from .auth import guard
from .common import BadInput, dash, task_filter, whole
from .queries import get_task, list_tasks

Handler = Callable[[Request, dict[str, Any]], Any]
_REVOCABLE = {"PENDING", "RECEIVED", "RETRY"}


async def _params(request: Request) -> tuple[dict[str, Any], Any]:
    """Query string, urlencoded form fields and a JSON body, merged (Flower clients use all three)."""
    merged: dict[str, Any] = dict(request.query_params)
    form = None
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise BadInput("the body is not valid JSON") from None
        if isinstance(body, dict):
            merged.update(body)
    elif kind.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        form = {k: v[-1] for k, v in fields.items()}
        merged.update(form)
        merged["ids"] = fields.get("id", [])
    return merged, form


def action(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a blocking handler: guard first, run it in a thread, answer JSON."""
    async def endpoint(request: Request) -> Response:
        params, form = await _params(request)
        refused = guard(dash(request).opts)(request, form)
        if refused is not None:
            return refused
        result = await run_in_threadpool(fn, request, params)
        if isinstance(result, Response):
            return result
        return JSONResponse(result)
    endpoint.__name__ = fn.__name__
    endpoint.__doc__ = fn.__doc__
    return endpoint


def _seconds(params: dict[str, Any], name: str) -> float | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a number of seconds") from None
    if not 0 < seconds < 10**9:
        raise BadInput(f"{name} must be a positive number of seconds")
    return seconds


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _send(request: Request, params: dict[str, Any]) -> dict[str, Any]:
    args, kwargs, options = params.get("args") or [], params.get("kwargs") or {}, params.get("options") or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict) or not isinstance(options, dict):
        raise BadInput("args must be a list, kwargs and options objects")
    try:
        result = dash(request).app.send_task(request.path_params["name"], args, kwargs, **options)
    except (TypeError, EncodeError, ImproperlyConfigured) as exc:
        raise BadInput(str(exc)) from exc
    return {"task-id": result.id, "state": states.PENDING}


async_apply = action(_send)
send_task = action(_send)


@action
def revoke(request: Request, params: dict[str, Any]) -> Any:
    """Revoke (and with ``terminate`` kill) a task; a task no worker holds is shown revoked at once."""
    d = dash(request)
    task_id = request.path_params["task_id"]
    terminate = str(params.get("terminate", "")).lower() in ("1", "true", "yes", "on")
    signal = params.get("signal") or "SIGTERM"
    d.app.control.revoke(task_id, terminate=terminate, signal=signal)
    row = get_task(d.store, task_id)
    if row is None or row["state"] in _REVOCABLE:
        d.app.events.send("task-revoked", uuid=task_id, terminated=terminate, signum=signal if terminate else None,
                          expired=False, hostname=f"dashboard@{request.url.hostname}")
        d.app.events.flush()
    return {"message": f"Revoked '{task_id}'"}


def _original_arguments(d: Any, row: dict[str, Any]) -> tuple[list[Any], dict[str, Any]] | None:
    """Prefer the backend's stored arguments; else read the event's repr if it is a plain literal."""
    meta = d.app.backend.get(row["uuid"]) if d.app.backend.enabled else None
    if meta and meta.get("args") is not None:
        return list(meta.get("args") or []), dict(meta.get("kwargs") or {})
    try:
        args = ast.literal_eval(row.get("args") or "()")
        kwargs = ast.literal_eval(row.get("kwargs") or "{}")
    except (ValueError, SyntaxError):
        return None
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
        return None
    return list(args), kwargs


def retry_task(d: Any, row: dict[str, Any]) -> str | None:
    """Send the task again with its arguments and a new id, linked to the original."""
    found = _original_arguments(d, row)
    if found is None or not row.get("name"):
        return None
    options: dict[str, Any] = {"headers": {"retry_of": row["uuid"]}}
    if row.get("queue"):
        options["queue"] = row["queue"]
    result = d.app.send_task(row["name"], found[0], found[1], **options)
    d.store.link_retry(result.id, row)
    return str(result.id)


@action
def retry(request: Request, params: dict[str, Any]) -> Any:
    d = dash(request)
    row = get_task(d.store, request.path_params["task_id"])
    if row is None:
        return _error("unknown task", 404)
    new_id = retry_task(d, row)
    if new_id is None:
        return _error("the original arguments are not known (they were not plain literals)", 409)
    return {"message": f"Sent again as '{new_id}'", "task-id": new_id, "retry_of": row["uuid"]}


@action
def bulk_retry(request: Request, params: dict[str, Any]) -> Any:
    """Retry every task matching the filter (failed ones unless a state is given), up to ``limit``."""
    d = dash(request)
    flt = task_filter({**params, "state": params.get("state") or states.FAILURE})
    limit, after = whole(params, "limit", 1000, 1, 10_000), ""
    sent: list[str] = []
    while len(sent) < limit:
        page = list_tasks(d.store, flt, limit=min(200, limit - len(sent)), after=after)
        sent += [new for row in page.rows if (new := retry_task(d, row))]
        if not page.next:
            break
        after = page.next
    return {"message": f"Sent {len(sent)} task(s) again", "task-ids": sent}


@action
def requeue(request: Request, params: dict[str, Any]) -> Any:
    ids = params.get("ids") or params.get("id") or []
    if not isinstance(ids, (str, list)):
        raise BadInput("ids must be a dead letter id or a list of them")
    ids = [ids] if isinstance(ids, str) else [str(i) for i in ids]
    count = dash(request).app.broker.requeue_dead(ids)
    return {"message": f"Requeued {count} message(s)", "requeued": count}


def _control(request: Request, command: str, arguments: dict[str, Any], done: str) -> Any:
    d = dash(request)
    destination = [str(arguments.pop("_worker", None) or request.path_params["name"])]
    replies = d.app.control.broadcast(command, arguments, destination=destination, reply=True,
                                      timeout=d.opts.inspect_timeout, limit=1)
    if not replies:
        return JSONResponse({"message": f"{done} (sent; no reply from {destination[0]} yet)"}, status_code=202)
    return {"message": done, "replies": replies}


@action
def shutdown(request: Request, params: dict[str, Any]) -> Any:
    return _control(request, "shutdown", {}, "Shutting down!")


@action
def pool_grow(request: Request, params: dict[str, Any]) -> Any:
    n = whole(params, "n", 1, 1, 1000)
    return _control(request, "pool_grow", {"n": n}, f"Growing worker's pool by {n}")


@action
def pool_shrink(request: Request, params: dict[str, Any]) -> Any:
    n = whole(params, "n", 1, 1, 1000)
    return _control(request, "pool_shrink", {"n": n}, f"Shrinking worker's pool by {n}")


@action
def add_consumer(request: Request, params: dict[str, Any]) -> Any:
    return _control(request, "add_consumer", {"queue": params.get("queue")}, f"Consuming from '{params.get('queue')}'")


@action
def cancel_consumer(request: Request, params: dict[str, Any]) -> Any:
    return _control(request, "cancel_consumer", {"queue": params.get("queue")}, f"Stopped consuming '{params.get('queue')}'")


@action
def rate_limit(request: Request, params: dict[str, Any]) -> Any:
    task, worker, limit = request.path_params["name"], params.get("workername"), params.get("ratelimit")
    if not worker:
        return _error("workername is required", 400)
    args = {"task_name": task, "rate_limit": limit, "_worker": worker}
    return _control(request, "rate_limit", args, f"new rate limit set successfully for {task}")


@action
def time_limit(request: Request, params: dict[str, Any]) -> Any:
    task, worker = request.path_params["name"], params.get("workername")
    if not worker:
        return _error("workername is required", 400)
    soft, hard = _seconds(params, "soft"), _seconds(params, "hard")
    args = {"task_name": task, "soft": soft, "hard": hard, "_worker": worker}
    return _control(request, "time_limit", args, f"time limits set successfully for {task}")
