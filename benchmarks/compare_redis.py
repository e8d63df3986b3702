"""celeriac and Celery 5 side by side on the same broker, in one run, with the same task counts.

    .venv/bin/python benchmarks/compare_redis.py --tasks 20000 --repeat 3
    .venv/bin/python benchmarks/compare_redis.py --quick                  # smoke run, well under a minute
    .venv/bin/python benchmarks/compare_redis.py --broker amqp://guest:guest@127.0.0.1:5672//

Each repetition runs, for celeriac and then for Celery:
  enqueue   N single ``.delay()`` calls of a no-op task in a loop, no worker running; and, before
            that (then flushed), the same N tasks sent as one ``group(...).apply_async()``;
  drain     a worker (prefork, -c processes) started on those N tasks, timed from the first stored
            result to the last one by the ``date_done`` stamps the workers wrote, read from the result
            store (Redis) when the drain is over (``--clock listener``: by a subscriber to the results
            as they are published, which costs the measuring process CPU during the drain), peak RSS of the worker tree
            (sampled during the drain only) and its PSS (shared pages divided among the processes
            sharing them) when the drain ends;
  latency   the same worker, now idle, fed one no-op task every 1/rate s; latency is send time to
            the moment the result is published by the result backend (both publish every stored
            result on its key's channel, and one independent subscriber timestamps them);
  I/O       M tasks sleeping 10 ms, enqueued then drained: celeriac with ``async def`` under
            ``-P async``; Celery with prefork (same process count) and with ``-P threads``; and,
            for a like-for-like reading, celeriac's plain ``def`` task in those two pools too.
The table holds the median of the repetitions and the ratio celeriac/Celery. Each library has its
own Redis database (broker and results together, as in the tutorials; flushed before each phase)
and its own queue name; results go to Redis for both, whatever the broker. Celery runs with its
defaults (prefetch multiplier 4, ``acks_late`` off, task events off); ``--celery-events`` starts its
workers with ``-E``, which celeriac's default (events on, for the dashboard) matches.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import redis
from harness import Worker, load_app, machine_note, median, percentile

REDIS = "redis://127.0.0.1:6379"


@dataclass
class Side:
    """One library's broker, backend and queue; the dbs it owns are flushed between phases."""

    lib: str
    broker: str
    backend_db: int
    queue: str
    prefix: str = ""
    acks_late: bool = False
    events: bool = False  # start the worker with -E (celeriac sends task events by default; Celery does not)
    flush_dbs: list[int] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {"BENCH_BROKER": self.broker, "BENCH_BACKEND": f"{REDIS}/{self.backend_db}", "BENCH_QUEUE": self.queue}
        if self.prefix:
            env["BENCH_PREFIX"] = self.prefix
        if self.acks_late:
            env["BENCH_ACKS_LATE"] = "1"
        return env

    @property
    def worker_flags(self) -> list[str]:
        return ["-E"] if self.events else []

    def flush(self) -> None:
        for db in self.flush_dbs:
            redis.Redis.from_url(f"{REDIS}/{db}").flushdb()

    def app(self):
        """The sender's app, loaded once (as a producer process would hold it)."""
        if not hasattr(self, "_app"):
            self._app = load_app(self.lib, self.env)
        return self._app


def verify_stored(db: int, ids: list[str]) -> None:
    """Every task's result must be in the result store as SUCCESS (published is not enough)."""
    client = redis.Redis.from_url(f"{REDIS}/{db}")
    keys = [f"celery-task-meta-{i}" for i in ids]
    missing = sum(1 for i in range(0, len(keys), 1000) for v in client.mget(keys[i : i + 1000]) if not v or b'"SUCCESS"' not in v)
    if missing:
        raise RuntimeError(f"{missing} of {len(ids)} results are not stored as SUCCESS")


def wait_stored(db: int, ids: list[str], timeout: float, poll: float = 0.1) -> None:
    """Block until every task's result is stored as SUCCESS (then ``stored_stamps`` reads their times).

    A drain is timed by the workers' own completion stamps, read once it is over. A listener that
    takes every result as it is published (``Stamper``) costs the measuring process about 10 us of
    CPU per result, 17 % of a core at 17,000 results/s, and on a 2-core machine that CPU is taken
    from whichever worker is faster. While waiting, the store is read in send order from the first
    task not yet done, a few dozen keys per look while the drain is under way.
    """
    client = redis.Redis.from_url(f"{REDIS}/{db}")
    pending = list(reversed(ids))  # the next to check at the end: popped as they are found done
    deadline = time.perf_counter() + timeout
    chunk = 64
    while pending:
        keys = [f"celery-task-meta-{i}" for i in pending[-1 : -chunk - 1 : -1]]
        done = 0
        for value in client.mget(keys):
            if not value or b'"SUCCESS"' not in value:
                break
            done += 1
        del pending[len(pending) - done :]
        if done == len(keys):
            chunk = min(chunk * 2, 2048)
            continue
        chunk = 64
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {len(ids) - len(pending)} of {len(ids)} results stored after {timeout:.0f}s")
        time.sleep(poll)


def stored_stamps(db: int, ids: list[str]) -> list[float]:
    """Each stored result's ``date_done``, in epoch seconds (both libraries write it as ISO 8601 with microseconds)."""
    client = redis.Redis.from_url(f"{REDIS}/{db}")
    keys = [f"celery-task-meta-{i}" for i in ids]
    metas = [orjson.loads(v) for at in range(0, len(keys), 2000) for v in client.mget(keys[at : at + 2000])]
    return [dt.datetime.fromisoformat(meta["date_done"]).timestamp() for meta in metas]


def enqueue(task, count: int, args: tuple = ()) -> tuple[float, list[str]]:
    """Single ``.delay()`` calls in a loop: (tasks/s, ids)."""
    ids = []
    started = time.perf_counter()
    for _ in range(count):
        ids.append(task.delay(*args).id)
    return count / (time.perf_counter() - started), ids


def enqueue_group(lib: str, task, count: int) -> float:
    """One ``group(...).apply_async()`` of ``count`` no-op tasks: tasks/s (signatures built before the clock)."""
    members = importlib.import_module(lib).group(task.s() for _ in range(count))
    started = time.perf_counter()
    members.apply_async()
    return count / (time.perf_counter() - started)


class Stamper(threading.Thread):
    """Timestamps each SUCCESS published on ``celery-task-meta-<id>`` (pub/sub spans every db).

    Only a substring test per message, so the listener keeps up with thousands of results a second.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, float] = {}
        self.error: Exception | None = None
        self._pubsub = redis.Redis.from_url(REDIS).pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe("celery-task-meta-*")
        self._done = threading.Event()
        self.start()
        time.sleep(0.2)  # subscription in place before anything is measured

    def run(self) -> None:
        try:
            while not self._done.is_set():
                msg = self._pubsub.get_message(timeout=0.1)
                if msg and msg["type"] == "pmessage" and b'"SUCCESS"' in msg["data"]:
                    self.seen.setdefault(msg["channel"][17:].decode(), time.perf_counter())
        except redis.RedisError as exc:  # results published while away are lost: the phase must fail
            self.error = exc

    def wait(self, ids: set[str] | dict[str, float], timeout: float) -> list[float]:
        """Block until every id has been seen; return their stamps."""
        deadline = time.perf_counter() + timeout
        while len(self.seen.keys() & ids) < len(ids):
            if self.error:
                raise RuntimeError(f"lost the result subscription: {self.error!r}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"only {len(self.seen.keys() & ids)} of {len(ids)} results after {timeout:.0f}s")
            time.sleep(0.05)
        return [self.seen[i] for i in ids]

    def close(self) -> None:
        self._done.set()
        self.join(2)
        self._pubsub.close()


def latency(task, rate: float, count: int) -> tuple[float, float]:
    """Send ``count`` tasks at a steady ``rate``; return (p50, p99) in ms of send -> result published."""
    stamper = Stamper()
    sent: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        for i in range(count):
            pause = t0 + i / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            at = time.perf_counter()
            sent[task.delay().id] = at
        stamper.wait(sent, timeout=60)
    finally:
        stamper.close()
    lat = [(stamper.seen[i] - at) * 1000 for i, at in sent.items()]
    return percentile(lat, 50), percentile(lat, 99)


def run_worker(side: Side, flags: list[str], ids: list[str], log: Path, loglevel: str, then=None,
               listener: bool = False) -> dict[str, float]:
    """Start a worker on already queued tasks, time the drain, optionally run ``then()``, stop it.

    The clock runs from the first result stored to the last (the workers' ``date_done`` stamps), so
    worker start-up (paid once, and very different between the two) is left out. ``listener=True``
    times it by a subscriber to the published results instead, as this benchmark did before
    (``wait_stored`` says why it no longer does).
    """
    stamper = Stamper() if listener else None
    worker = Worker(side.lib, [*flags, *side.worker_flags], side.env, log, loglevel)
    try:
        timeout = 60 + len(ids) / 50
        if stamper is not None:
            stamps = stamper.wait(set(ids), timeout=timeout)
            stamper.close()
            verify_stored(side.backend_db, ids)
        else:
            wait_stored(side.backend_db, ids, timeout=timeout)
            stamps = stored_stamps(side.backend_db, ids)
        worker.stop_sampling()  # the peak of the drain; sampling would disturb what ``then`` times
        out = {"drain": (len(ids) - 1) / (max(stamps) - min(stamps)), "rss": worker.peak_rss, "pss": worker.tree_pss()}
        if then:
            worker.wait_ready()
            out.update(then())
        return out
    except BaseException:
        print(f"--- {side.lib} worker log ---\n{worker.tail()}")
        raise
    finally:
        if stamper is not None:
            stamper.close()
        worker.stop()


def noop_phases(side: Side, opts, tmp: Path) -> dict[str, float]:
    """Enqueue, drain, then latency at a steady rate on the same (warm, idle) worker."""
    side.flush()
    app = side.app()
    group_rate = enqueue_group(side.lib, app.noop, opts.tasks)
    side.flush()
    rate, ids = enqueue(app.noop, opts.tasks)

    def steady() -> dict[str, float]:
        p50, p99 = latency(app.noop, opts.rate, opts.latency_tasks)
        return {"p50": p50, "p99": p99}

    flags = ["-P", "prefork", "-c", str(opts.processes)]
    out = run_worker(side, flags, ids, tmp / f"{side.lib}-noop.log", opts.loglevel, then=steady,
                     listener=getattr(opts, "clock", "store") == "listener")
    return {"enqueue": rate, "enqueue_group": group_rate, **out}


def io_phase(side: Side, task_name: str, flags: list[str], opts, tmp: Path) -> dict[str, float]:
    """``--io-tasks`` tasks sleeping 10 ms, queued first, then drained by a worker with ``flags``."""
    side.flush()
    task = getattr(side.app(), task_name)
    _, ids = enqueue(task, opts.io_tasks, (0.01,))
    return run_worker(side, flags, ids, tmp / f"{side.lib}-{task_name}.log", opts.loglevel,
                      listener=getattr(opts, "clock", "store") == "listener")


def io_runs(ours: Side, celery: Side, opts) -> list[tuple[str, Side, str, list[str]]]:
    """(key, side, task, worker flags) of the I/O runs: the issue's pairing, then same pool for both."""
    prefork = ["-P", "prefork", "-c", str(opts.processes)]
    threads = ["-P", "threads", "-c", str(opts.io_concurrency)]
    return [
        ("celeriac", ours, "asleep", ["-P", "async", "-c", str(opts.io_concurrency)]),
        ("celeriac-prefork", ours, "sleep", prefork),
        ("celeriac-threads", ours, "sleep", threads),
        ("celery", celery, "sleep", prefork),
        ("celery-threads", celery, "sleep", threads),
    ]


def repetition(ours: Side, celery: Side, opts, tmp: Path) -> dict[str, float]:
    """Every measurement once, celeriac first then Celery; keys are ``<metric>:<who>``."""
    got: dict[str, float] = {}
    for who, side in (("celeriac", ours), ("celery", celery)):
        for key, value in noop_phases(side, opts, tmp).items():
            got[f"{key}:{who}"] = value
    for who, side, task_name, flags in io_runs(ours, celery, opts):
        res = io_phase(side, task_name, flags, opts, tmp)
        got[f"io:{who}"], got[f"io_rss:{who}"] = res["drain"], res["rss"]
    return got


def table_rows(opts) -> list[tuple[str, str, str, str]]:
    """(label, metric, celeriac key, Celery key) in print order."""
    io = f"{opts.io_tasks:,} x sleep 10 ms, tasks/s"
    asy, pre, thr = f"-P async -c {opts.io_concurrency}", f"prefork -c {opts.processes}", f"threads -c {opts.io_concurrency}"
    return [
        ("enqueue, single .delay(), tasks/s", "enqueue", "celeriac", "celery"),
        (f"enqueue, one group of {opts.tasks:,} (.apply_async()), tasks/s", "enqueue_group", "celeriac", "celery"),
        (f"drain {opts.tasks:,} no-op, {pre}, tasks/s", "drain", "celeriac", "celery"),
        (f"latency p50 at {opts.rate:g}/s, ms", "p50", "celeriac", "celery"),
        (f"latency p99 at {opts.rate:g}/s, ms", "p99", "celeriac", "celery"),
        (f"peak worker RSS (drain, {pre}), MiB", "rss", "celeriac", "celery"),
        (f"worker PSS at the end of the drain ({pre}), MiB", "pss", "celeriac", "celery"),
        (f"{io}: async def {asy} vs Celery {pre}", "io", "celeriac", "celery"),
        (f"{io}: async def {asy} vs Celery {thr}", "io", "celeriac", "celery-threads"),
        (f"{io}: def, {pre} for both", "io", "celeriac-prefork", "celery"),
        (f"{io}: def, {thr} for both", "io", "celeriac-threads", "celery-threads"),
        (f"peak worker RSS (I/O: {asy} vs Celery {pre}), MiB", "io_rss", "celeriac", "celery"),
        (f"peak worker RSS (I/O: {asy} vs Celery {thr}), MiB", "io_rss", "celeriac", "celery-threads"),
    ]


def print_table(reps: list[dict[str, float]], opts) -> None:
    """Medians over the repetitions and the ratio celeriac/Celery, as a Markdown table."""
    ours, theirs = sides(opts)
    print(f"\nMedians of {len(reps)} repetition(s). Brokers: celeriac {ours.broker}, Celery {theirs.broker};")
    print(f"results: celeriac {ours.env['BENCH_BACKEND']}, Celery {theirs.env['BENCH_BACKEND']}.")
    print(f"Task events: celeriac on (its default), Celery {'on (-E)' if theirs.events else 'off (its default)'}.")
    clock = "a subscriber to the published results" if opts.clock == "listener" else "the stored results' date_done"
    print(f"Drains (and the I/O rows) timed by {clock}.\n")
    print("| measurement | celeriac | Celery 5 | celeriac/Celery |")
    print("|---|---:|---:|---:|")
    for label, metric, ours, theirs in table_rows(opts):
        a = median([r[f"{metric}:{ours}"] for r in reps])
        b = median([r[f"{metric}:{theirs}"] for r in reps])
        if "rss" in metric or "pss" in metric:
            a, b = a / 2**20, b / 2**20
        fmt = "{:,.2f}" if metric in ("p50", "p99") else "{:,.0f}"
        print(f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {a / b:.2f}x |")


def sides(opts) -> tuple[Side, Side]:
    """celeriac and Celery on the same broker; separate Redis dbs (Redis broker) or queues (RabbitMQ)."""
    dbs = [int(d) for d in opts.dbs.split(",")]
    if opts.broker.startswith("redis"):
        ours = Side("celeriac", f"{REDIS}/{dbs[0]}", dbs[1], "bench_celeriac", flush_dbs=sorted(set(dbs[:2])))
        theirs = Side("celery", f"{REDIS}/{dbs[2]}", dbs[3], "bench_celery", flush_dbs=sorted(set(dbs[2:])))
    else:
        ours = Side("celeriac", opts.broker, dbs[1], "bench_celeriac", prefix="bench.", flush_dbs=[dbs[1]])
        theirs = Side("celery", opts.broker, dbs[3], "bench_celery", flush_dbs=[dbs[3]])
    theirs.acks_late = opts.celery_acks_late
    theirs.events = opts.celery_events
    return ours, theirs


def parse_args(argv=None, broker: str = f"{REDIS}/0"):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default=broker, help="redis://... (db numbers come from --dbs) or amqp://...")
    parser.add_argument("--tasks", type=int, default=20_000, help="no-op tasks for enqueue and drain")
    parser.add_argument("--io-tasks", type=int, default=2_000, help="tasks sleeping 10 ms")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2, help="worker processes (prefork -c) for both")
    parser.add_argument("--io-concurrency", type=int, default=100, help="coroutines (celeriac) / threads (Celery)")
    parser.add_argument("--rate", type=float, default=200.0, help="steady send rate for latency, tasks/s")
    parser.add_argument("--latency-tasks", type=int, default=2_000)
    parser.add_argument("--dbs", default="12,12,14,14",
                        help="Redis dbs: celeriac broker,results, Celery broker,results (one db each, as in the tutorials)")
    parser.add_argument("--loglevel", default="INFO", help="worker log level, the same for both")
    parser.add_argument("--celery-acks-late", action="store_true", help="run Celery with task_acks_late=True")
    parser.add_argument("--celery-events", action="store_true",
                        help="run Celery's workers with -E (task events on, as celeriac's are by default)")
    parser.add_argument("--clock", choices=("store", "listener"), default="store",
                        help="time drains by the results' stored date_done (default) or by a subscriber to their publication")
    parser.add_argument("--quick", action="store_true", help="smoke run: small counts, one repetition")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.tasks, opts.io_tasks, opts.latency_tasks, opts.repeat = 1_000, 200, 200, 1
    return opts


def retrying(run, attempts: int = 3):
    """Run a repetition again if a server went away under it (tests elsewhere may restart Redis)."""
    for attempt in range(1, attempts + 1):
        try:
            return run()
        except (redis.RedisError, RuntimeError, TimeoutError, OSError) as exc:
            if attempt == attempts:
                raise
            print(f"repetition failed ({exc!r}); running it again", flush=True)
            time.sleep(5)


def main(argv=None, broker: str = f"{REDIS}/0") -> None:
    opts = parse_args(argv, broker)
    ours, theirs = sides(opts)
    reps = []
    print(f"start: {machine_note()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="celeriac-compare-") as tmp:
        try:
            for n in range(opts.repeat):
                started = time.perf_counter()
                reps.append(retrying(lambda: repetition(ours, theirs, opts, Path(tmp))))
                raw = ", ".join(f"{k}={v / 2**20 if 'rss' in k or 'pss' in k else v:,.1f}" for k, v in sorted(reps[-1].items()))
                print(f"repetition {n + 1}/{opts.repeat} ({time.perf_counter() - started:.0f} s): {raw}", flush=True)
        finally:
            for side in (ours, theirs):
                side.flush()
    print(f"end: {machine_note()}")
    print_table(reps, opts)


if __name__ == "__main__":
    main()
