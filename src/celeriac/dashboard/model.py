"""How events change a task row. Pure functions: no I/O, so ordering rules are easy to test.

Events from different processes arrive out of order (a producer's ``task-sent`` may land after the
worker's ``task-started``). A finished state is final; earlier states only move forward in time.
"""

from __future__ import annotations

from typing import Any

import orjson

FINISHED = frozenset({"SUCCESS", "FAILURE", "REVOKED", "REJECTED"})
STATE_OF = {
    "task-sent": "PENDING", "task-received": "RECEIVED", "task-started": "STARTED", "task-succeeded": "SUCCESS",
    "task-failed": "FAILURE", "task-retried": "RETRY", "task-revoked": "REVOKED", "task-rejected": "REJECTED",
}
_COPY = ("name", "args", "kwargs", "eta", "expires", "retries", "root_id", "parent_id", "queue")
_STAMP = {"task-sent": "sent_at", "task-received": "received_at", "task-started": "started_at"}


def new_row(uuid: str, ts: float) -> dict[str, Any]:
    return {"uuid": uuid, "state": "PENDING", "created": ts, "updated": ts, "state_ts": 0.0}


def _may_move(row: dict[str, Any], state: str, ts: float) -> bool:
    current = row.get("state")
    if current in FINISHED:
        return state in FINISHED and ts >= row["state_ts"] and current != "REVOKED"
    if state == "PENDING":
        return row["state_ts"] == 0.0
    return state in FINISHED or ts >= row["state_ts"]


def _set_state(row: dict[str, Any], state: str, ts: float) -> None:
    if _may_move(row, state, ts):
        row["state"], row["state_ts"] = state, ts


def _copy_fields(row: dict[str, Any], event: dict[str, Any]) -> None:
    for key in _COPY:
        value = event.get(key)
        if value is not None and value != "" and (key != "queue" or not row.get("queue")):
            row[key] = value
    if event.get("group"):
        row["group_id"] = event["group"]
    if event.get("retry_of"):
        row["retry_of"] = event["retry_of"]


def apply(row: dict[str, Any], event: dict[str, Any]) -> None:
    """Fold one task event into its row."""
    kind = event["type"]
    ts = float(event.get("timestamp") or 0.0)
    row["created"] = min(row["created"], ts) if row.get("created") else ts
    row["updated"] = max(row.get("updated") or 0.0, ts)
    _copy_fields(row, event)
    if kind in _STAMP:
        row[_STAMP[kind]] = ts
    if kind != "task-sent" and event.get("hostname"):
        row["worker"] = event["hostname"]
    if kind == "task-progress":
        row["progress"] = orjson.dumps(event.get("meta")).decode()
        _set_state(row, str(event.get("state") or "PROGRESS"), ts)
        return
    _finish_fields(row, kind, event, ts)
    if kind in STATE_OF:
        _set_state(row, STATE_OF[kind], ts)


def _finish_fields(row: dict[str, Any], kind: str, event: dict[str, Any], ts: float) -> None:
    if kind == "task-succeeded":
        row.update(result=event.get("result"), runtime=event.get("runtime"), finished_at=ts)
    elif kind in ("task-failed", "task-retried"):
        row.update(exception=event.get("exception"), traceback=event.get("traceback"))
        if kind == "task-failed":
            row["finished_at"] = ts
    elif kind in ("task-revoked", "task-rejected") and not row.get("finished_at"):
        row["finished_at"] = ts


def from_backend(row: dict[str, Any], meta: dict[str, Any], now: float) -> bool:
    """Fill a row from the result backend (for tasks whose events were missed); True if it changed."""
    status = meta.get("status")
    if not status or status == row.get("state") or row.get("state") in FINISHED:
        return False
    if status == "PENDING" or (status not in FINISHED and row.get("state") not in ("PENDING", None)):
        return False
    row["state"], row["state_ts"], row["updated"] = status, now, now
    result = meta.get("result")
    if status == "SUCCESS":
        row["result"] = repr(result)
    elif status == "FAILURE" and isinstance(result, dict):
        row["exception"] = f"{result.get('exc_type')}({result.get('exc_message')!r})"
        row["traceback"] = meta.get("traceback")
    if status in FINISHED:
        row["finished_at"] = now
    row["worker"] = row.get("worker") or meta.get("worker")
    return True
