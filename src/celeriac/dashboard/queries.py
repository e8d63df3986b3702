"""The read model: task lists (keyset pages), one task with its relatives, workers, chart series."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from .schema import TASK_COLUMNS
from .store import Store

_COLS = ", ".join(TASK_COLUMNS)
_EQUALS = ("state", "name", "worker", "queue")


@dataclass
class TaskFilter:
    """What the tasks page and ``/api/tasks`` filter on; empty fields do not filter."""

    state: str = ""
    name: str = ""
    worker: str = ""
    queue: str = ""
    since: float | None = None
    until: float | None = None
    search: str = ""

    def where(self, store: Store) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for key in _EQUALS:
            value = getattr(self, key)
            if value:
                clauses.append(f"{key} = ?")
                params.append(value)
        if self.since is not None:
            clauses.append("created >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("created <= ?")
            params.append(self.until)
        if self.search:
            clause, values = _search_clause(store, self.search)
            clauses.append(clause)
            params += values
        return clauses, params

    def as_query(self) -> dict[str, str]:
        out = {k: str(getattr(self, k)) for k in (*_EQUALS, "search") if getattr(self, k)}
        out.update({k: str(getattr(self, k)) for k in ("since", "until") if getattr(self, k) is not None})
        return out


_BODY = "(coalesce(args,'') || ' ' || coalesce(kwargs,'') || ' ' || coalesce(result,'') || ' ' || coalesce(exception,''))"
_DENSE = 2000


def _search_clause(store: Store, text: str) -> tuple[str, list[Any]]:
    """Rare terms: the trigram index names the few rows. Common terms: scan newest-first with LIKE,
    which finds a page of matches after a few thousand rows (cheaper than listing every match)."""
    like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if store.searchable and store.db.dialect == "sqlite" and len(text) >= 3:
        phrase = '"' + text.replace('"', '""') + '"'
        ids = [r["rowid"] for r in store.db.query(
            "SELECT rowid FROM task_search WHERE task_search MATCH ? LIMIT ?", (phrase, _DENSE))]
        if len(ids) < _DENSE:
            return f"rowid IN ({', '.join('?' for _ in ids) or 'NULL'})", ids
    op = "ILIKE" if store.db.dialect == "postgres" else "LIKE"
    return f"{_BODY} {op} ? ESCAPE '\\'", [like]


def encode_cursor(row: dict[str, Any]) -> str:
    raw = orjson.dumps([row["created"], row["uuid"]])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[float, str] | None:
    try:
        created, uuid = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return float(created), str(uuid)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return None


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next: str | None = None
    prev: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def list_tasks(store: Store, flt: TaskFilter, *, limit: int = 50, after: str = "", before: str = "",
               offset: int = 0) -> Page:
    """Newest first; ``after``/``before`` are cursors of the last/first row of a neighbouring page."""
    clauses, params = flt.where(store)
    backwards = bool(before) and not after
    mark = decode_cursor(before if backwards else after) if (after or before) else None
    if mark is not None:
        clauses.append("(created, uuid) > (?, ?)" if backwards else "(created, uuid) < (?, ?)")
        params += list(mark)
    order = "ASC" if backwards else "DESC"
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {_COLS} FROM tasks {where} ORDER BY created {order}, uuid {order} LIMIT ? OFFSET ?"  # noqa: S608
    rows = store.db.query(sql, [*params, limit + 1, max(0, offset)])
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    has_next = more if not backwards else True
    has_prev = (mark is not None or offset > 0) if not backwards else more
    return Page(rows, encode_cursor(rows[-1]) if rows and has_next else None,
                encode_cursor(rows[0]) if rows and has_prev else None)


def get_task(store: Store, uuid: str) -> dict[str, Any] | None:
    rows = store.task_rows([uuid])
    return rows[0] if rows else None


def timeline(store: Store, uuid: str) -> list[dict[str, Any]]:
    rows = store.db.query("SELECT ts, type, hostname, data FROM task_events WHERE uuid = ? ORDER BY ts LIMIT 500", (uuid,))
    for row in rows:
        row["data"] = orjson.loads(row["data"] or "{}")
    return rows


def relatives(store: Store, task: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Children, retries (re-sends of this task), the group it belongs to, and the parent."""
    def select(where: str, value: Any) -> list[dict[str, Any]]:
        if not value:
            return []
        return store.db.query(
            f"SELECT uuid, name, state, created FROM tasks WHERE {where} = ? ORDER BY created LIMIT 200", (value,))  # noqa: S608
    return {
        "children": select("parent_id", task["uuid"]),
        "retries": select("retry_of", task["uuid"]),
        "group": select("group_id", task.get("group_id")),
        "parent": select("uuid", task.get("parent_id")),
        "original": select("uuid", task.get("retry_of")),
    }


def workers(store: Store, now: float | None = None) -> list[dict[str, Any]]:
    """Every worker seen, ``online`` while its last heartbeat is younger than two heartbeat periods."""
    now = now or time.time()
    rows = store.db.query("SELECT * FROM workers ORDER BY hostname")
    for row in rows:
        row["loadavg"] = orjson.loads(row["loadavg"] or "null")
        row["info"] = orjson.loads(row["info"] or "{}")
        row["online"] = row["status"] == "online" and now - float(row["last_seen"] or 0) <= 2 * float(row["freq"] or 2.0)
    return rows


def worker(store: Store, hostname: str) -> dict[str, Any] | None:
    return next((w for w in workers(store) if w["hostname"] == hostname), None)


def distinct(store: Store, column: str) -> list[str]:
    """Values for a filter's drop-down (workers and queues are few; names come from recent tasks)."""
    if column == "worker":
        return [r["hostname"] for r in store.db.query("SELECT hostname FROM workers ORDER BY hostname")]
    if column not in ("name", "queue"):
        return []
    rows = store.db.query(f"SELECT DISTINCT {column} AS v FROM (SELECT {column} FROM tasks ORDER BY created DESC "  # noqa: S608
                          f"LIMIT 5000) recent WHERE {column} IS NOT NULL ORDER BY v")
    return [r["v"] for r in rows]
