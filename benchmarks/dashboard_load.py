"""Dashboard load test: 1,000,000 tasks in history, page and filter latency, and event ingest rate.

    .venv/bin/python benchmarks/dashboard_load.py                 # SQLite history in a temp dir
    .venv/bin/python benchmarks/dashboard_load.py --rows 200000 --keep /tmp/history.sqlite3
    .venv/bin/python benchmarks/dashboard_load.py --db postgresql://postgres@127.0.0.1/test

Prints the median and 95th percentile of each tasks-page request (full HTML page through the
ASGI app, including rendering), and the sustained ingest rate of a 2,000 events/s producer.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
from starlette.testclient import TestClient

import celeriac
from celeriac.dashboard import create_app
from celeriac.dashboard.ingest import Ingester
from celeriac.dashboard.schema import TASK_COLUMNS
from celeriac.dashboard.store import Store
from celeriac.events import STREAM

NAMES = [f"proj.tasks.job_{i}" for i in range(40)]
WORKERS = [f"worker{i}@host" for i in range(8)]
QUEUES = ["celery", "emails", "reports", "video"]
STATES = ["SUCCESS"] * 90 + ["FAILURE"] * 6 + ["RETRY"] * 2 + ["REVOKED", "PENDING"]


def _rows(start: int, count: int, t0: float):
    rnd = random.Random(start)
    for i in range(start, start + count):
        created = t0 + i * 0.05
        state = rnd.choice(STATES)
        yield (f"{i:08d}-0000-4000-8000-{rnd.getrandbits(48):012x}", rnd.choice(NAMES), state, rnd.choice(QUEUES),
               rnd.choice(WORKERS), f"({i}, 'customer-{rnd.randrange(100_000)}')", "{'notify': True}",
               repr(rnd.randrange(10_000)) if state == "SUCCESS" else None,
               "ValueError('bad input')" if state == "FAILURE" else None, None, None, None, 0, None, None, None, None,
               created, created + 0.01, created + 0.02, created + 0.3, 0.28, None, created, created + 0.3, created + 0.3)


def fill(store: Store, rows: int) -> None:
    """Bulk-load synthetic history (faster than replaying events; the ingest rate is measured separately)."""
    existing = store.db.scalar("SELECT COUNT(*) FROM tasks")
    if existing >= rows:
        print(f"history already holds {existing:,} tasks")
        return
    t0 = time.time() - rows * 0.05
    sql = f"INSERT INTO tasks ({', '.join(TASK_COLUMNS)}) VALUES ({', '.join('?' for _ in TASK_COLUMNS)})"
    started = time.perf_counter()
    for start in range(existing, rows, 50_000):
        with store.db.transaction() as conn:
            store.db.executemany(conn, sql, list(_rows(start, min(50_000, rows - start), t0)))
    if store.searchable and store.db.dialect == "sqlite":
        store.db.execute("INSERT INTO task_search (rowid, body) SELECT rowid, coalesce(args,'') || ' ' || "
                         "coalesce(kwargs,'') || ' ' || coalesce(result,'') || ' ' || coalesce(exception,'') FROM tasks")
    store.db.execute("ANALYZE")
    print(f"loaded {rows:,} tasks in {time.perf_counter() - started:.1f} s")


def time_requests(client: TestClient, cases: dict[str, dict[str, str]], repeat: int) -> None:
    print(f"\n{'request':<34}{'median ms':>10}{'p95 ms':>9}{'rows':>6}")
    for label, params in cases.items():
        samples = []
        for _ in range(repeat):
            began = time.perf_counter()
            response = client.get("/tasks", params=params)
            samples.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, response.text[:300]
        shown = response.text.count("<tr data-uuid=")
        samples.sort()
        p95 = samples[min(len(samples) - 1, int(0.95 * len(samples)))]
        print(f"{label:<34}{statistics.median(samples):>10.1f}{p95:>9.1f}{shown:>6}")


def _lifecycle_events(n: int) -> list[bytes]:
    uid, ts = f"bench-{n}", time.time()
    return [orjson.dumps({"type": t, "uuid": uid, "timestamp": ts, "hostname": "w@h", "name": "proj.bench",
                          "args": "(1, 2)", "kwargs": "{}", "result": "3", "runtime": 0.01})
            for t in ("task-sent", "task-received", "task-started", "task-succeeded")]


def _produce(capp: celeriac.Celery, rate: int, stop: threading.Event, produced: list[int]) -> None:
    """Append ``rate`` events/s in 20 batches a second (whole task lifecycles)."""
    tick, n = time.perf_counter(), 0
    while not stop.is_set():
        batch = []
        for _ in range(rate // 20 // 4):
            batch += _lifecycle_events(n)
            n += 1
        capp.broker.stream_append(STREAM, batch, maxlen=1_000_000, max_age=3600)
        produced[0] += len(batch)
        tick += 0.05
        time.sleep(max(0.0, tick - time.perf_counter()))


def measure_ingest(capp: celeriac.Celery, store: Store, rate: int, seconds: float) -> None:
    """A producer appends ``rate`` events/s while the ingester follows the stream; then a backlog burst."""
    ingester = Ingester(capp, store, sample_every=3600)
    ingester.receiver.cursor = capp.broker.stream_tail(STREAM)
    stop, produced = threading.Event(), [0]
    thread = threading.Thread(target=_produce, args=(capp, rate, stop, produced), daemon=True)
    began = time.perf_counter()
    thread.start()
    consumed = 0
    while time.perf_counter() - began < seconds:
        consumed += ingester.step(timeout=0.2)
    stop.set()
    thread.join()
    elapsed = time.perf_counter() - began
    drain_start = time.perf_counter()
    consumed += ingester.drain()
    print(f"\ningest: producer {produced[0] / elapsed:,.0f} events/s for {elapsed:.0f} s; ingester stored "
          f"{consumed:,} events; backlog at the end drained in {time.perf_counter() - drain_start:.2f} s")
    measure_burst(capp, ingester)


def measure_burst(capp: celeriac.Celery, ingester: Ingester, total: int = 40_000) -> None:
    """How fast a backlog (a dashboard that was down) is caught up."""
    for start in range(0, total, 2_000):
        batch = [orjson.dumps({"type": "task-succeeded", "uuid": f"burst-{start + i}", "timestamp": time.time(),
                               "hostname": "w@h", "result": "1", "runtime": 0.01}) for i in range(2_000)]
        capp.broker.stream_append(STREAM, batch, maxlen=1_000_000, max_age=3600)
    began = time.perf_counter()
    done = ingester.drain()
    elapsed = time.perf_counter() - began
    print(f"ingest capacity: {done:,} events caught up in {elapsed:.2f} s = {done / elapsed:,.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", help="history store URL (default: SQLite in a temp dir)")
    parser.add_argument("--keep", help="SQLite history file to reuse between runs")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--ingest-seconds", type=float, default=15.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dash-bench-"))
    db = args.db or f"sqlite:///{args.keep or work / 'history.sqlite3'}"
    store = Store(db)
    fill(store, args.rows)
    broker = f"sqlite:///{work / 'broker.sqlite3'}"
    capp = celeriac.Celery("bench", broker=broker, backend=broker, set_as_current=False)
    web = create_app(capp, db=db, ingest=False)
    middle = store.db.scalar("SELECT created FROM tasks ORDER BY created LIMIT 1 OFFSET ?", (args.rows // 2,))
    with TestClient(web) as client:
        first = client.get("/tasks").text
        assert "<tr data-uuid=" in first
        deep_cursor = client.get("/api/tasks", params={"limit": 50, "until": middle}).headers.get("x-next-cursor", "")
        time_requests(client, {
            "newest 50": {},
            "state=FAILURE": {"state": "FAILURE"},
            "state=REVOKED (1%)": {"state": "REVOKED"},
            "name=job_7": {"name": "proj.tasks.job_7"},
            "worker=worker3": {"worker": "worker3@host"},
            "queue=video": {"queue": "video"},
            "state+name+queue": {"state": "FAILURE", "name": "proj.tasks.job_7", "queue": "video"},
            "time window (1 h, mid-history)": {"since": str(middle - 3600), "until": str(middle)},
            "page in mid-history (cursor)": {"after": deep_cursor},
            "search 'customer-4242'": {"search": "customer-4242"},
            "search 'ValueError' + worker": {"search": "ValueError", "worker": "worker3@host"},
        }, args.repeat)
    measure_ingest(capp, Store(db), 2000, args.ingest_seconds)
    capp.close()
    if not args.keep and not args.db:
        for f in work.iterdir():
            os.unlink(f)


if __name__ == "__main__":
    sys.exit(main())
