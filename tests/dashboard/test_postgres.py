"""The history store on PostgreSQL: the same behaviour as on SQLite."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from celeriac.dashboard import queries
from celeriac.dashboard.queries import TaskFilter
from celeriac.dashboard.store import Store
from tests.conftest import require_service

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url():
    require_service("postgres")
    psycopg = pytest.importorskip("psycopg")
    name = f"dash_{uuid.uuid4().hex[:10]}"
    admin = os.environ.get("CELERIAC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield admin.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _lifecycle(uid, ts, args="(1, 2)", fail=False):
    return [
        {"type": "task-sent", "uuid": uid, "timestamp": ts, "name": "proj.add", "args": args, "kwargs": "{}", "queue": "celery"},
        {"type": "task-started", "uuid": uid, "timestamp": ts + 1, "hostname": "w@h"},
        {"type": "task-failed", "uuid": uid, "timestamp": ts + 2, "hostname": "w@h", "exception": "KeyError('k')"}
        if fail else {"type": "task-succeeded", "uuid": uid, "timestamp": ts + 2, "hostname": "w@h", "result": "3", "runtime": 0.5},
    ]


def test_postgres_store_ingests_filters_searches_and_resumes(pg_url):
    store = Store(pg_url)
    now = time.time()
    events = [e for i in range(30) for e in _lifecycle(f"t{i:02d}", now + i, args=f"('order-{i}',)", fail=i % 10 == 0)]
    store.ingest(events, cursor="42-0")
    store.ingest([{"type": "worker-heartbeat", "hostname": "w@h", "freq": 2.0, "timestamp": now + 40}])
    assert Store(pg_url).get_meta("cursor") == "42-0"
    failed = queries.list_tasks(store, TaskFilter(state="FAILURE")).rows
    assert [r["uuid"] for r in failed] == ["t20", "t10", "t00"]
    assert [r["uuid"] for r in queries.list_tasks(store, TaskFilter(search="order-17")).rows] == ["t17"]
    assert [r["uuid"] for r in queries.list_tasks(store, TaskFilter(search="keyerror")).rows] == ["t20", "t10", "t00"]
    page = queries.list_tasks(store, TaskFilter(), limit=20)
    rest = queries.list_tasks(store, TaskFilter(), limit=20, after=page.next)
    assert len(page.rows) == 20 and len(rest.rows) == 10 and rest.next is None
    assert queries.workers(store, now + 41)[0]["online"]
    assert Store(pg_url).cookie_secret() == store.cookie_secret()
    store.prune(max_tasks=5, max_age=1e6, now=now + 100)
    assert len(queries.list_tasks(store, TaskFilter(), limit=100).rows) == 5
