"""Tables of the history store.

``tasks`` holds one row per task id, newest first by ``(created, uuid)``: every list is a keyset
walk of one index, so a page costs the same at row 10 and at row 1,000,000. ``task_events`` is
each task's timeline; ``workers`` the last heartbeat per host; ``queue_samples`` broker depth over
time; ``meta`` the event-stream cursor and the cookie secret. Search in args/kwargs/results uses a
trigram index (SQLite FTS5, PostgreSQL pg_trgm) so substring search does not scan the table.
"""

from __future__ import annotations

from .db import Database

TASK_COLUMNS = (
    "uuid", "name", "state", "queue", "worker", "args", "kwargs", "result", "exception", "traceback",
    "eta", "expires", "retries", "root_id", "parent_id", "group_id", "retry_of", "sent_at", "received_at",
    "started_at", "finished_at", "runtime", "progress", "created", "updated", "state_ts",
)

_TASKS = """
CREATE TABLE IF NOT EXISTS tasks (
  {rowid}
  uuid TEXT NOT NULL UNIQUE, name TEXT, state TEXT NOT NULL, queue TEXT, worker TEXT,
  args TEXT, kwargs TEXT, result TEXT, exception TEXT, traceback TEXT, eta TEXT, expires TEXT,
  retries INTEGER, root_id TEXT, parent_id TEXT, group_id TEXT, retry_of TEXT,
  sent_at {real}, received_at {real}, started_at {real}, finished_at {real}, runtime {real},
  progress TEXT, created {real} NOT NULL, updated {real} NOT NULL, state_ts {real} NOT NULL
)"""

_OTHERS = [
    "CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created, uuid)",
    "CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, created, uuid)",
    "CREATE INDEX IF NOT EXISTS tasks_name ON tasks (name, created, uuid)",
    "CREATE INDEX IF NOT EXISTS tasks_worker ON tasks (worker, created, uuid)",
    "CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (queue, created, uuid)",
    "CREATE INDEX IF NOT EXISTS tasks_finished ON tasks (finished_at)",
    # (column, created): also the order of the lists, so the planner never prefers a scan by time
    "CREATE INDEX IF NOT EXISTS tasks_parent_created ON tasks (parent_id, created)",
    "CREATE INDEX IF NOT EXISTS tasks_group_created ON tasks (group_id, created)",
    "CREATE INDEX IF NOT EXISTS tasks_retry_of_created ON tasks (retry_of, created)",
    """CREATE TABLE IF NOT EXISTS task_events (
         uuid TEXT NOT NULL, ts {real} NOT NULL, type TEXT NOT NULL, hostname TEXT, data TEXT)""",
    "CREATE INDEX IF NOT EXISTS task_events_uuid ON task_events (uuid, ts)",
    "CREATE INDEX IF NOT EXISTS task_events_ts ON task_events (ts)",
    """CREATE TABLE IF NOT EXISTS workers (
         hostname TEXT PRIMARY KEY, status TEXT, freq {real}, last_seen {real}, first_seen {real},
         active INTEGER, processed INTEGER, loadavg TEXT, sw_ident TEXT, sw_ver TEXT, sw_sys TEXT, info TEXT)""",
    """CREATE TABLE IF NOT EXISTS queue_samples (
         ts {real} NOT NULL, queue TEXT NOT NULL, ready INTEGER, delayed INTEGER, in_flight INTEGER,
         dead INTEGER, oldest_age {real})""",
    "CREATE INDEX IF NOT EXISTS queue_samples_ts ON queue_samples (ts)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
]

_SQLITE_SEARCH = "CREATE VIRTUAL TABLE IF NOT EXISTS task_search USING fts5(body, tokenize='trigram')"
_PG_SEARCH = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS tasks_search ON tasks USING gin "
    "((coalesce(args,'') || ' ' || coalesce(kwargs,'') || ' ' || coalesce(result,'') || ' ' || coalesce(exception,'')) gin_trgm_ops)",
]


def create(db: Database) -> bool:
    """Create what is missing; return whether a trigram search index is available."""
    pg = db.dialect == "postgres"
    real = "DOUBLE PRECISION" if pg else "REAL"
    rowid = "id BIGSERIAL PRIMARY KEY," if pg else ""
    with db.transaction() as conn:
        db.run(conn, _TASKS.format(rowid=rowid, real=real))
        for ddl in _OTHERS:
            db.run(conn, ddl.format(real=real))
    return _create_search(db, pg)


def _create_search(db: Database, pg: bool) -> bool:
    statements = _PG_SEARCH if pg else [_SQLITE_SEARCH]
    try:
        for ddl in statements:
            db.execute(ddl)
    except Exception:  # no trigram support here: search falls back to LIKE
        return False
    return True
