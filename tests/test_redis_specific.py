"""What only the Redis broker and backend do: URLs, key prefixes, Celery-readable results, reconnects.

The contract suite (tests/contract) covers the shared semantics; these tests need a real Redis at
127.0.0.1:6379. The restart test stops and restarts that server (without persistence).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import ssl
import subprocess
import threading
import time
import uuid

import orjson
import pytest
import redis

from celeriac.backends import from_url as backend_from_url
from celeriac.brokers import from_url as broker_from_url
from celeriac.brokers.redis_connection import parse_url
from celeriac.exceptions import ImproperlyConfigured

from .conftest import require_service, service_up
from .contract.redis_factories import delete_prefix

URL = "redis://127.0.0.1:6379/0"
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]


# -- URL parsing (no server needed) -----------------------------------------------------------
def test_url_with_password_port_and_db():
    target = parse_url("redis://:s%40cret@cache.example:6380/5")
    assert (target.kind, target.host, target.port, target.db, target.password) == ("tcp", "cache.example", 6380, 5, "s@cret")


def test_url_with_user_and_defaults():
    target = parse_url("redis://app:pw@localhost")
    assert (target.username, target.password, target.port, target.db) == ("app", "pw", 6379, 0)


def test_unix_socket_url_takes_the_db_from_virtual_host():
    target = parse_url("redis+socket:///var/run/redis/redis.sock?virtual_host=3")
    assert (target.kind, target.path, target.db) == ("unix", "/var/run/redis/redis.sock", 3)


def test_tls_url_reads_cert_requirements_from_the_query():
    target = parse_url("rediss://:pw@secure.example:6379/1?ssl_cert_reqs=none&ssl_ca_certs=/etc/ca.pem")
    assert target.ssl == {"ssl_cert_reqs": ssl.CERT_NONE, "ssl_ca_certs": "/etc/ca.pem"}
    assert parse_url("rediss://secure.example/0?ssl_cert_reqs=CERT_REQUIRED").ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert parse_url("redis://plain.example/0").ssl is None


def test_tls_url_rejects_an_unknown_cert_requirement():
    with pytest.raises(ImproperlyConfigured, match="ssl_cert_reqs"):
        parse_url("rediss://secure.example/0?ssl_cert_reqs=maybe")


def test_sentinel_url_lists_every_sentinel():
    target = parse_url("redis+sentinel://:pw@s1.example:26379/2;sentinel://s2.example:26380/2;sentinel://s3.example")
    assert target.kind == "sentinel"
    assert target.sentinels == [("s1.example", 26379), ("s2.example", 26380), ("s3.example", 26379)]
    assert (target.db, target.password) == (2, "pw")


def test_sentinel_needs_a_master_name():
    broker = broker_from_url("redis+sentinel://127.0.0.1:26379/0", {})
    with pytest.raises(ImproperlyConfigured, match="master_name"):
        broker.publish("q", b"x", message_id="m")


def test_non_numeric_db_is_reported():
    with pytest.raises(ImproperlyConfigured, match="database"):
        parse_url("redis://localhost/zero")


# -- against the server -----------------------------------------------------------------------
@pytest.fixture
def prefix():
    require_service("redis")
    value = f"test-{uuid.uuid4().hex[:12]}:"
    yield value
    delete_prefix(value)


def _raw(db: int = 0) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=6379, db=db)


def test_db_in_the_url_is_the_db_written(prefix):
    broker = broker_from_url("redis://127.0.0.1:6379/3", {"global_keyprefix": prefix})
    try:
        broker.publish("q", b"x", message_id="in-db-3")
        raw = _raw(3)
        assert raw.exists(f"{prefix}celeriac:queues") == 1
        assert _raw(0).exists(f"{prefix}celeriac:queues") == 0
        raw.delete(*raw.keys(f"{prefix}*"))
    finally:
        broker.close()


def test_key_prefix_isolates_brokers_on_one_server(prefix):
    other = f"{prefix}other:"
    first = broker_from_url(URL, {"global_keyprefix": prefix})
    second = broker_from_url(URL, {"global_keyprefix": other})
    try:
        first.publish("shared-name", b"x", message_id="for-first")
        assert second.fetch(["shared-name"], 1, consumer="c", timeout=0.2) == []
        assert [d.message_id for d in first.fetch(["shared-name"], 1, consumer="c", timeout=2)] == ["for-first"]
        assert all(key.startswith(prefix.encode()) for key in _raw().scan_iter(match=f"*{prefix}*"))
    finally:
        first.close()
        second.close()


def test_a_late_store_over_a_ready_state_changes_nothing_and_publishes_nothing(prefix):
    backend = backend_from_url(URL, {"global_keyprefix": prefix})
    raw = _raw()
    key = f"{prefix}celery-task-meta-late"
    pubsub = raw.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(key)
    try:
        assert pubsub.get_message(timeout=1) is None
        done = {"task_id": "late", "status": "SUCCESS", "result": "RETRY me", "traceback": None, "children": []}
        backend.store(done, expires=60)
        assert pubsub.get_message(timeout=2) is not None
        before = raw.get(key)
        backend.store({**done, "status": "RETRY", "result": "SUCCESS?"}, expires=3600)
        backend.store({"task_id": "late", "status": "PENDING", "result": None}, expires=None)
        assert raw.get(key) == before
        assert 0 < raw.ttl(key) <= 3600  # still expires
        assert pubsub.get_message(timeout=0.5) is None
    finally:
        pubsub.close()
        backend.close()


def test_results_use_celery_keys_and_are_published(prefix):
    backend = backend_from_url(URL, {"global_keyprefix": prefix})
    raw = _raw()
    pubsub = raw.pubsub(ignore_subscribe_messages=True)
    channel = f"{prefix}celery-task-meta-abc"
    pubsub.subscribe(channel)
    try:
        assert pubsub.get_message(timeout=1) is None  # subscription confirmed, nothing yet
        backend.store({"task_id": "abc", "status": "SUCCESS", "result": 5, "traceback": None, "children": []}, expires=60)
        stored = orjson.loads(raw.get(channel))
        assert (stored["status"], stored["result"]) == ("SUCCESS", 5)
        assert 0 < raw.ttl(channel) <= 60
        message = pubsub.get_message(timeout=2)
        assert message is not None and orjson.loads(message["data"]) == stored
    finally:
        pubsub.close()
        backend.close()


def test_forked_child_uses_its_own_connections(prefix):
    broker = broker_from_url(URL, {"global_keyprefix": prefix})
    broker.publish("fork", b"parent", message_id="from-parent")  # the parent's pool is open now

    def child() -> None:
        broker.after_fork()
        broker.publish("fork", b"child", message_id="from-child")

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(10)
    assert process.exitcode == 0
    got = broker.fetch(["fork"], 10, consumer="c", timeout=2)
    assert sorted(d.message_id for d in got) == ["from-child", "from-parent"]
    broker.close()


def test_a_forked_child_and_its_parent_publish_at_once_without_crossing_replies(prefix):
    broker = broker_from_url(URL, {"global_keyprefix": prefix})
    broker.publish("cross", b"x", message_id="warm-up")  # this thread's connection is open before the fork
    ready = multiprocessing.get_context("fork").Event()

    def child() -> None:  # no after_fork(): the broker must notice the fork by itself
        ready.wait(5)
        for i in range(300):
            broker.publish("cross", b"x", message_id=f"child-{i}")

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    ready.set()
    for i in range(300):
        broker.publish("cross", b"x", message_id=f"parent-{i}")
    process.join(20)
    assert process.exitcode == 0
    got = {d.message_id for d in broker.fetch(["cross"], 1000, consumer="c", timeout=2)}
    broker.close()
    assert got == {"warm-up"} | {f"{who}-{i}" for who in ("child", "parent") for i in range(300)}


def test_scripts_the_server_forgot_are_loaded_again(prefix):
    broker = broker_from_url(URL, {"global_keyprefix": prefix})
    backend = backend_from_url(URL, {"global_keyprefix": prefix})
    try:
        broker.publish("forgot", b"x", message_id="before")
        backend.store({"task_id": "forgot-1", "status": "SUCCESS", "result": 1}, expires=60)
        _raw().script_flush()  # what a restart without persistence does to loaded scripts
        broker.publish("forgot", b"x", message_id="after")
        backend.store({"task_id": "forgot-2", "status": "SUCCESS", "result": 2}, expires=60)
        got = broker.fetch(["forgot"], 10, consumer="c", timeout=2)
        assert [d.message_id for d in got] == ["before", "after"]
        assert backend.get("forgot-2")["result"] == 2
    finally:
        broker.close()
        backend.close()


def test_closing_a_broker_closes_the_connections_of_every_thread_that_used_it(prefix):
    name = f"close-{uuid.uuid4().hex[:8]}"
    broker = broker_from_url(URL, {"global_keyprefix": prefix, "client_name": name})
    closed = threading.Event()
    published = [threading.Event() for _ in range(3)]

    def publish(i: int) -> None:
        broker.publish("closing", b"x", message_id=f"m{i}")
        published[i].set()
        closed.wait(10)  # alive, and holding its connection, until the broker is closed

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    broker.publish("closing", b"x", message_id="main")
    try:
        assert all(event.wait(10) for event in published)
        assert _named_clients(name) >= 4
        broker.close()
        assert _wait_until(lambda: _named_clients(name) == 0), f"{_named_clients(name)} connection(s) left open"
    finally:
        closed.set()
        for thread in threads:
            thread.join(5)


def test_a_script_call_whose_connection_close_took_away_still_goes_through(prefix):
    broker = broker_from_url(URL, {"global_keyprefix": prefix})
    try:
        broker.publish("cut", b"x", message_id="before")
        pool = broker.client.connection_pool
        conn = broker._direct._connection(pool)  # this thread's connection, as a call in progress holds it
        broker._direct.close()  # what close() in another thread does meanwhile: the socket goes
        broker._direct._drop(pool, conn)  # the call's cleanup before it retries through the pool
        broker.publish("cut", b"x", message_id="after")
        got = broker.fetch(["cut"], 10, consumer="c", timeout=2)
        assert [d.message_id for d in got] == ["before", "after"]
    finally:
        broker.close()


def _named_clients(name: str) -> int:
    return sum(1 for c in _raw().client_list() if c.get("name") == name)


def test_threads_share_a_broker_and_each_message_is_delivered_once(prefix):
    broker = broker_from_url(URL, {"global_keyprefix": prefix})
    seen: list[str] = []
    lock = threading.Lock()
    done = threading.Event()

    errors: list[BaseException] = []

    def consume(name: str) -> None:
        try:
            while not done.is_set():
                batch = broker.fetch(["t"], 7, consumer=name, timeout=0.5)
                broker.ack(batch)
                with lock:
                    seen.extend(d.message_id for d in batch)
                    if len(seen) >= 300:
                        done.set()
        except BaseException as exc:
            errors.append(exc)
            raise

    threads = [threading.Thread(target=consume, args=(f"c{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for start in range(0, 300, 50):
        broker.publish_many([_outgoing("t", f"m{i}") for i in range(start, start + 50)])
    done.wait(20)
    for thread in threads:
        thread.join(5)
    broker.close()
    assert errors == []
    assert sorted(seen) == sorted(f"m{i}" for i in range(300))


def _outgoing(queue: str, message_id: str):
    from celeriac.brokers.base import Outgoing

    return Outgoing(queue, message_id.encode(), message_id)


def _blocked_clients(name: str) -> int:
    return sum(1 for c in _raw().client_list() if c.get("name") == name and "b" in c.get("flags", ""))


def _wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_wakeup_interrupts_a_blocked_fetch(prefix):
    name = f"wake-{uuid.uuid4().hex[:8]}"
    broker = broker_from_url(URL, {"global_keyprefix": prefix, "client_name": name, "visibility_timeout": 60})
    result: list[float] = []

    def fetch() -> None:
        start = time.monotonic()
        broker.fetch(["idle"], 1, consumer="c", timeout=20)
        result.append(time.monotonic() - start)

    thread = threading.Thread(target=fetch)
    thread.start()
    assert _wait_until(lambda: _blocked_clients(name) == 1), "the fetch never blocked in Redis"
    broker.wakeup()
    thread.join(5)
    broker.close()
    assert result and result[0] < 5


def test_blocked_fetch_recreates_groups_when_its_streams_are_deleted(prefix):
    name = f"gone-{uuid.uuid4().hex[:8]}"
    broker = broker_from_url(URL, {"global_keyprefix": prefix, "client_name": name})
    got: list[object] = []

    def consume() -> None:
        try:
            got.extend(d.message_id for d in broker.fetch(["g"], 1, consumer="c", timeout=10))
        except Exception as exc:
            got.append(exc)

    thread = threading.Thread(target=consume)
    thread.start()
    assert _wait_until(lambda: _blocked_clients(name) == 1)
    raw = _raw()
    raw.delete(*[key for key in raw.scan_iter(match=f"{prefix}celeriac:q:*")])  # as a FLUSHDB would
    broker.publish("g", b"x", message_id="after-delete")
    thread.join(15)
    broker.close()
    assert got == ["after-delete"]


def test_blocked_fetch_wakes_for_a_delayed_message_sent_while_it_waits(prefix):
    name = f"eta-{uuid.uuid4().hex[:8]}"
    broker = broker_from_url(URL, {"global_keyprefix": prefix, "client_name": name, "visibility_timeout": 60})
    got: list[tuple[str, float]] = []

    def consume() -> None:
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            got.extend((d.message_id, time.time()) for d in broker.fetch(["e"], 1, consumer="c", timeout=10))

    thread = threading.Thread(target=consume)
    thread.start()
    assert _wait_until(lambda: _blocked_clients(name) == 1)  # blocked for up to 5 s
    eta = time.time() + 0.5
    broker.publish("e", b"x", message_id="soon", eta=eta)
    thread.join(15)
    broker.close()
    assert [mid for mid, _ in got] == ["soon"]
    assert eta <= got[0][1] < eta + 1.0


def test_dead_letters_of_every_queue_are_listed_and_requeued_by_id(prefix):
    broker = broker_from_url(URL, {"global_keyprefix": prefix})
    for queue in ("dl-a", "dl-b"):
        broker.publish(queue, b"poison", message_id=f"bad-{queue}")
        (delivery,) = broker.fetch([queue], 1, consumer="c", timeout=2)
        broker.dead_letter(delivery, f"cannot run in {queue}")
    dead = broker.dead_letters()
    assert sorted((d.queue, d.message_id, d.reason) for d in dead) == [
        ("dl-a", "bad-dl-a", "cannot run in dl-a"), ("dl-b", "bad-dl-b", "cannot run in dl-b")]
    assert broker.requeue_dead([d.id for d in dead]) == 2
    assert [d.message_id for d in broker.fetch(["dl-b"], 5, consumer="c", timeout=2)] == ["bad-dl-b"]
    assert broker.dead_letters() == []
    broker.close()


def _kill_connections(name: str) -> int:
    """Kill this test's own connections (as CLIENT KILL TYPE normal would, without touching others)."""
    raw = _raw()
    killed = 0
    for client in raw.client_list():
        if client.get("name") == name:
            killed += raw.execute_command("CLIENT", "KILL", "ID", client["id"])
    return killed


def test_blocked_fetch_survives_killed_connections(prefix):
    name = f"kill-{uuid.uuid4().hex[:8]}"
    broker = broker_from_url(URL, {"global_keyprefix": prefix, "client_name": name})
    got: list[str] = []

    def consume() -> None:
        deadline = time.monotonic() + 15
        while not got and time.monotonic() < deadline:
            got.extend(d.message_id for d in broker.fetch(["k"], 1, consumer="c", timeout=1))

    thread = threading.Thread(target=consume)
    thread.start()
    assert _wait_until(lambda: _blocked_clients(name) == 1)
    assert _kill_connections(name) >= 1
    broker.publish("k", b"x", message_id="after-kill")  # this client's pool was killed too
    thread.join(20)
    broker.close()
    assert got == ["after-kill"]


def test_result_wait_survives_killed_connections(prefix):
    name = f"killres-{uuid.uuid4().hex[:8]}"
    backend = backend_from_url(URL, {"global_keyprefix": prefix, "client_name": name})
    writer = backend_from_url(URL, {"global_keyprefix": prefix})
    backend.wait(["late"], 0.01)  # starts the pub/sub listener
    assert backend.get("late") is None
    assert _kill_connections(name) >= 2  # the command connection and the listener's
    timer = threading.Timer(0.5, lambda: writer.store({"task_id": "late", "status": "SUCCESS", "result": 1}, expires=60))
    start = time.monotonic()
    timer.start()
    while backend.get("late") is None and time.monotonic() - start < 10:
        backend.wait(["late"], 5)
    elapsed = time.monotonic() - start
    timer.join()
    meta = backend.get("late")
    backend.close()
    writer.close()
    assert meta is not None and meta["status"] == "SUCCESS"
    assert elapsed < 4


# -- a real restart -----------------------------------------------------------------------------
def _restart_redis_after(action) -> None:
    """Stop Redis (nothing is saved), run ``action`` while it is down, and always start it again."""
    subprocess.run(["redis-cli", "shutdown", "nosave"], capture_output=True, timeout=10)
    try:
        assert _wait_until(lambda: not service_up("redis"), 10), "Redis did not stop"
        action()
    finally:
        subprocess.run(REDIS_START, check=True, timeout=20)
        assert _wait_until(lambda: service_up("redis") and _ping(), 20), "Redis did not come back"


def _ping() -> bool:
    try:
        return bool(_raw().ping())
    except redis.ConnectionError:
        return False


@pytest.mark.skipif(os.geteuid() != 0, reason="restarting the shared Redis needs root")
def test_consuming_resumes_after_a_redis_restart(prefix, caplog):
    broker = broker_from_url(URL, {"global_keyprefix": prefix, "visibility_timeout": 5})
    backend = backend_from_url(URL, {"global_keyprefix": prefix})
    got: list[str] = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            batch = broker.fetch(["r"], 10, consumer="c", timeout=0.5)
            broker.ack(batch)
            got.extend(d.message_id for d in batch)

    consumer = threading.Thread(target=consume)
    caplog.set_level(logging.WARNING, logger="celeriac.redis")
    broker.publish("r", b"x", message_id="before")
    consumer.start()
    try:
        assert _wait_until(lambda: got == ["before"], 5)
        backend.get("after-restart")
        _restart_redis_after(lambda: time.sleep(0.5))  # down for a moment, as in a real restart
        broker.publish("r", b"x", message_id="after")
        assert _wait_until(lambda: got == ["before", "after"], 20), f"consumed {got} after the restart"
        writer = threading.Timer(0.3, lambda: backend.store({"task_id": "after-restart", "status": "SUCCESS"}, expires=60))
        writer.start()
        start = time.monotonic()
        while backend.get("after-restart") is None and time.monotonic() - start < 10:
            backend.wait(["after-restart"], 5)
        writer.join()
        assert time.monotonic() - start < 5
    finally:
        stop.set()
        consumer.join(10)
        broker.close()
        backend.close()
    lost = [r for r in caplog.records if r.getMessage().startswith("broker: lost the connection")]
    assert len(lost) == 1


# -- packed streams (events, broadcast control) -------------------------------------------------
def _stream_broker(prefix: str):
    return broker_from_url(URL, transport_options={"global_keyprefix": prefix})


def _read_all(broker, stream: str) -> list[bytes]:
    items, cursor = [], None
    while batch := broker.stream_read(stream, cursor, limit=7, timeout=0.2):
        items += [item for _, item in batch]
        cursor = batch[-1][0]
    return items


def test_an_append_is_one_stream_entry_whatever_its_item_count(prefix):
    broker = _stream_broker(prefix)
    try:
        broker.stream_append("ev", [f"e{i}".encode() for i in range(300)], maxlen=10_000, max_age=3600)
        broker.stream_append("ev", [b"last"], maxlen=10_000, max_age=3600)
        assert _raw().xlen(f"{prefix}celeriac:s:ev") == 2
        assert _read_all(broker, "ev") == [*(f"e{i}".encode() for i in range(300)), b"last"]
    finally:
        broker.close()


def test_a_lone_item_is_stored_as_earlier_versions_read_it(prefix):
    """Control commands are appended one at a time: workers of earlier versions read field ``d``."""
    broker = _stream_broker(prefix)
    try:
        broker.stream_append("ctl", [b"ping"], maxlen=100, max_age=3600)
        broker.stream_append("ctl", [b"a", b"b"], maxlen=100, max_age=3600)
        entries = _raw().xrange(f"{prefix}celeriac:s:ctl")
        assert entries[0][1] == {b"d": b"ping"} and list(entries[1][1]) == [b"b"]
        assert _read_all(broker, "ctl") == [b"ping", b"a", b"b"]
    finally:
        broker.close()


def test_a_read_gathers_items_across_many_entries_up_to_its_limit(prefix):
    """Entries are read a few at a time (each may hold hundreds of items), but one read still
    returns as many items as its limit allows when they are there."""
    from celeriac.brokers.redis_streams import READ_ENTRIES

    broker = _stream_broker(prefix)
    try:
        for i in range(3 * READ_ENTRIES):
            broker.stream_append("ev", [f"e{i}".encode()], maxlen=1000, max_age=3600)
        asked: list[int] = []
        real_xread = broker.client.xread
        broker.client.xread = lambda streams, count, block: asked.append(count) or real_xread(streams, count=count, block=block)
        got = broker.stream_read("ev", None, limit=2 * READ_ENTRIES + 1, timeout=1)
        assert asked == [READ_ENTRIES, READ_ENTRIES, 1]
        assert [item for _, item in got] == [f"e{i}".encode() for i in range(2 * READ_ENTRIES + 1)]
        rest = broker.stream_read("ev", got[-1][0], limit=1000, timeout=1)
        assert [item for _, item in rest] == [f"e{i}".encode() for i in range(2 * READ_ENTRIES + 1, 3 * READ_ENTRIES)]
    finally:
        broker.close()


def test_count_trimming_keeps_the_entries_that_hold_the_newest_maxlen_items(prefix):
    broker = _stream_broker(prefix)
    try:
        for batch in range(4):
            broker.stream_append("ev", [f"{batch}-{i}".encode() for i in range(6)], maxlen=10, max_age=3600)
        # 24 items in entries of 6: the two newest entries hold the newest 10, the older two went whole
        assert _read_all(broker, "ev") == [f"{batch}-{i}".encode() for batch in (2, 3) for i in range(6)]
        assert _raw().zcard(f"{prefix}celeriac:s:ev:index") == 2
    finally:
        broker.close()


def test_single_item_entries_of_older_versions_are_read_then_trimmed_by_count(prefix):
    raw, key = _raw(), f"{prefix}celeriac:s:ev"
    for i in range(3):
        raw.xadd(key, {"d": f"old{i}"})
    broker = _stream_broker(prefix)
    try:
        broker.stream_append("ev", [b"new0", b"new1"], maxlen=4, max_age=3600)
        assert _read_all(broker, "ev") == [b"old0", b"old1", b"old2", b"new0", b"new1"]
        broker.stream_append("ev", [b"new2", b"new3", b"new4", b"new5"], maxlen=4, max_age=3600)
        # the newest entry holds the newest 4 items: everything before it went, uncounted entries too
        assert _read_all(broker, "ev") == [b"new2", b"new3", b"new4", b"new5"]
    finally:
        broker.close()


# -- calm queues: priority 0 only, claimed by a plain XREADGROUP -------------------------------
def _count_claim_scripts(broker) -> list[int]:
    """Wrap ``broker.script`` so the returned list holds the number of CLAIM script calls."""
    calls = [0]
    script = broker.script

    def counting(name, keys, args, client=None):
        if name == "CLAIM":
            calls[0] += 1
        return script(name, keys, args, client=client)

    broker.script = counting
    return calls


def test_a_backlog_at_priority_0_is_claimed_in_order_with_one_script_call(prefix, monkeypatch):
    from celeriac.brokers import redis_fetch
    from celeriac.brokers.base import Outgoing

    monkeypatch.setattr(redis_fetch, "CALM_FOR", 30.0)
    broker = broker_from_url(URL, {"global_keyprefix": prefix})
    try:
        broker.publish_many([Outgoing("calm", b"x", f"m{i}") for i in range(40)])
        claims = _count_claim_scripts(broker)
        got = [d for _ in range(10) for d in broker.fetch(["calm"], 4, consumer="c", timeout=1)]
        assert [d.message_id for d in got] == [f"m{i}" for i in range(40)]
        assert {(d.delivery_count, d.priority) for d in got} == {(1, 0)}
        assert claims[0] == 1  # the first claim found the queue calm; the other nine read the stream
        broker.ack(got)
        assert broker.stats(["calm"])[0].in_flight == 0
    finally:
        broker.close()


def test_a_higher_priority_message_ends_a_calm_run_by_the_next_claim(prefix, monkeypatch):
    from celeriac.brokers import redis_fetch
    from celeriac.brokers.base import Outgoing

    monkeypatch.setattr(redis_fetch, "CALM_FOR", 30.0)  # only the mark can end the run
    broker = broker_from_url(URL, {"global_keyprefix": prefix})
    try:
        broker.publish_many([Outgoing("rank", b"x", f"low{i}") for i in range(20)])
        first = broker.fetch(["rank"], 4, consumer="c", timeout=1) + broker.fetch(["rank"], 4, consumer="c", timeout=1)
        broker.publish("rank", b"x", message_id="urgent", priority=9)
        after = [broker.fetch(["rank"], 4, consumer="c", timeout=1) for _ in range(4)]
        ids = [d.message_id for batch in [first, *after] for d in batch]
        # the claim that found the mark moved may still have read priority 0; the one after starts with it
        assert ids.index("urgent") in (8, 12)
        assert [i for i in ids if i != "urgent"] == [f"low{i}" for i in range(20)]
    finally:
        broker.close()


def test_a_delayed_message_falls_due_on_time_during_a_calm_run(prefix, monkeypatch):
    from celeriac.brokers import redis_fetch
    from celeriac.brokers.base import Outgoing

    monkeypatch.setattr(redis_fetch, "CALM_FOR", 30.0)
    broker = broker_from_url(URL, {"global_keyprefix": prefix, "visibility_timeout": 60})
    try:
        for start in range(0, 20_000, 1000):
            broker.publish_many([Outgoing("due", b"x", f"m{i}") for i in range(start, start + 1000)])
        broker.fetch(["due"], 1, consumer="c", timeout=1)  # a full claim: the queue is calm
        eta = time.time() + 0.3
        # priority 9: once promoted it is claimed first, not behind the backlog at its own priority
        broker.publish("due", b"x", message_id="delayed", eta=eta, priority=9)
        seen, arrived = 0, None
        while arrived is None and seen < 19_999:
            for d in broker.fetch(["due"], 1, consumer="c", timeout=1):
                if d.message_id == "delayed":
                    arrived = time.time()
                seen += 1
        assert arrived is not None and seen < 19_999, "the backlog ran out before the delayed message came"
        assert eta - 0.002 <= arrived < eta + 0.1  # due times are kept in ms
    finally:
        broker.close()


def test_a_calm_run_recreates_the_groups_when_its_streams_are_deleted(prefix, monkeypatch):
    from celeriac.brokers import redis_fetch
    from celeriac.brokers.base import Outgoing

    monkeypatch.setattr(redis_fetch, "CALM_FOR", 30.0)
    broker = broker_from_url(URL, {"global_keyprefix": prefix})
    try:
        broker.publish_many([Outgoing("gone", b"x", f"old{i}") for i in range(10)])
        assert len(broker.fetch(["gone"], 4, consumer="c", timeout=1)) == 4
        raw = _raw()
        raw.delete(*[key for key in raw.scan_iter(match=f"{prefix}celeriac:q:*")])  # as a FLUSHDB would
        broker.publish_many([Outgoing("gone", b"x", f"new{i}") for i in range(3)])
        got: list[str] = []
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            got += [d.message_id for d in broker.fetch(["gone"], 4, consumer="c", timeout=1)]
        assert got == ["new0", "new1", "new2"]
    finally:
        broker.close()


def test_a_calm_run_still_takes_over_expired_leases(prefix):
    from celeriac.brokers.base import Outgoing

    broker = broker_from_url(URL, {"global_keyprefix": prefix, "visibility_timeout": 0.5})
    try:
        broker.publish_many([Outgoing("lease", b"x", "held")])
        for start in range(0, 20_000, 1000):
            broker.publish_many([Outgoing("lease", b"x", f"m{i}") for i in range(start, start + 1000)])
        (held,) = broker.fetch(["lease"], 1, consumer="dead", timeout=1)  # never acked
        taken_at = time.monotonic()
        seen, again = 0, None
        while again is None and seen < 20_000:
            for d in broker.fetch(["lease"], 1, consumer="alive", timeout=1):
                if d.message_id == "held":
                    again = d
                seen += 1
        assert again is not None and seen < 20_000, "the backlog ran out before the lease was taken over"
        assert again.delivery_count == held.delivery_count + 1
        assert time.monotonic() - taken_at < 0.5 + 1.0
    finally:
        broker.close()
