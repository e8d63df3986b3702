"""RabbitMQ-only behaviour: URLs, priorities, quorum queues, connection loss, delays, dead letters."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import threading
import time
import uuid

import aiormq
import pytest

from celeriac.brokers import from_url
from celeriac.brokers.base import Outgoing
from celeriac.brokers.rabbitmq_url import parse_url

from .conftest import IN_CI, require_service
from .contract.rabbitmq_factories import URL, delete_prefixed

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def make():
    """Brokers on their own queue prefix and connection name; everything is deleted after."""
    made = []

    def factory(**options):
        prefix = f"t{uuid.uuid4().hex[:10]}."
        name = f"celeriac-test-{uuid.uuid4().hex[:8]}"
        broker = from_url(options.pop("url", URL), {"queue_prefix": prefix, "connection_name": name, **options})
        made.append((broker, prefix))
        return broker

    yield factory
    for broker, prefix in made:
        broker.close()
        delete_prefixed(prefix)


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=True).stdout


def connections_named(name: str) -> list[tuple[str, str]]:
    """(pid, heartbeat timeout) of the server's connections whose client gave ``name``."""
    out = rabbitmqctl("list_connections", "--no-table-headers", "pid", "timeout", "client_properties")
    return [tuple(line.split("\t")[:2]) for line in out.splitlines() if f'{{"connection_name","{name}"}}' in line]


def close_connections(name: str) -> int:
    """Close this test's connections from the server side (other users' are left alone)."""
    found = connections_named(name)
    for pid, _ in found:
        rabbitmqctl("close_connection", pid, "test")
    return len(found)


# -- URLs ------------------------------------------------------------------------------------
def test_url_gives_user_password_vhost_and_heartbeat():
    settings = parse_url("amqp://alice:s%40cret@mq.example:5673/orders%2Feu?heartbeat=15")
    assert (settings.user, settings.password, settings.host, settings.port) == ("alice", "s@cret", "mq.example", 5673)
    assert (settings.vhost, settings.heartbeat, settings.tls) == ("orders/eu", 15, False)


def test_celery_style_double_slash_means_the_default_vhost():
    assert parse_url("amqp://guest:guest@localhost:5672//").vhost == "/"
    assert parse_url("pyamqp://").vhost == "/"
    assert parse_url("amqp://localhost/jobs").vhost == "jobs"


def test_amqps_turns_on_tls_with_its_own_default_port():
    settings = parse_url("amqps://u:p@mq.example/?cafile=/etc/ca.pem")
    assert (settings.tls, settings.port, settings.tls_options) == (True, 5671, {"cafile": "/etc/ca.pem"})
    assert settings.client_url().startswith("amqps://")


def test_unknown_url_option_is_reported():
    from celeriac.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="heartbeat"):
        parse_url("amqp://localhost//?heartbeats=5")


def test_heartbeat_from_the_url_is_what_the_server_agreed(make):
    require_service("rabbitmq")
    broker = make(url=URL + "?heartbeat=7")
    broker.publish("hb", b"x", message_id="m")
    (conn,) = connections_named(broker.connection_name)
    assert conn[1] == "7"


# -- priorities and queue types ------------------------------------------------------------------
def test_all_ten_priorities_come_out_highest_first(make):
    require_service("rabbitmq")
    broker = make()
    order = [3, 0, 9, 5, 1, 8, 2, 7, 4, 6]
    broker.publish_many([Outgoing("prio", b"x", f"p{p}", priority=p) for p in order])
    got = []
    while len(got) < 10:
        batch = broker.fetch(["prio"], 1, consumer="c", timeout=2)
        assert batch, "a message went missing"
        got += batch
        broker.ack(batch)
    assert [d.priority for d in got] == sorted(order, reverse=True)


def test_quorum_option_declares_quorum_queues_that_count_redeliveries(make):
    require_service("rabbitmq")
    first = make(queue_type="quorum")
    first.publish("qq", b"x", message_id="m")
    types = dict(line.split("\t") for line in rabbitmqctl("list_queues", "--no-table-headers", "name", "type").splitlines())
    assert types[first.topology.queue("qq")] == "quorum"
    (d,) = first.fetch(["qq"], 1, consumer="dies", timeout=2)
    first.close()  # unacked: RabbitMQ returns it and counts the delivery
    second = from_url(URL, {"queue_prefix": first.topology.prefix, "queue_type": "quorum"})
    try:
        (again,) = second.fetch(["qq"], 1, consumer="c", timeout=5)
        assert (again.message_id, again.delivery_count) == ("m", d.delivery_count + 1)
    finally:
        second.close()


def test_classic_queue_counts_a_delivery_lost_with_its_connection(make):
    require_service("rabbitmq")
    first = make()
    first.publish("cq", b"x", message_id="m")
    (d,) = first.fetch(["cq"], 1, consumer="dies", timeout=2)
    first.close()
    second = make(queue_prefix=first.topology.prefix)
    (again,) = second.fetch(["cq"], 1, consumer="c", timeout=5)
    assert again.delivery_count == d.delivery_count + 1


def test_classic_queue_counts_every_delivery_lost_with_a_connection(make):
    require_service("rabbitmq")
    prefix = make().topology.prefix
    make(queue_prefix=prefix).publish("crash", b"x", message_id="poison")
    counts = []
    for _ in range(3):
        holder = make(queue_prefix=prefix)
        (d,) = holder.fetch(["crash"], 1, consumer="dies", timeout=5)
        counts.append(d.delivery_count)
        holder.close()  # the connection goes away with the message unacked
    assert counts == [1, 2, 3]


# -- connection loss -----------------------------------------------------------------------------
def test_connection_closed_by_the_server_under_load_loses_nothing(make):
    require_service("rabbitmq")
    producer, consumer = make(), None
    consumer = make(queue_prefix=producer.topology.prefix, connection_name=producer.connection_name)
    total = 400
    sent: list[str] = []
    seen: set[str] = set()
    halfway, done, errors = threading.Event(), threading.Event(), []

    def produce():
        try:
            for start in range(0, total, 10):
                batch = [Outgoing("load", b"x", f"m{i}") for i in range(start, start + 10)]
                producer.publish_many(batch)
                sent.extend(m.message_id for m in batch)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    def consume():
        while not done.is_set():
            got = consumer.fetch(["load"], 20, consumer="c", timeout=0.5)
            seen.update(d.message_id for d in got)
            consumer.ack(got)
            if len(seen) >= total // 4:
                halfway.set()
            if len(seen) >= total:
                done.set()

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    assert halfway.wait(30)
    assert close_connections(producer.connection_name) >= 1
    threads[0].join(60)
    done.wait(60)
    done.set()
    threads[1].join(10)
    assert errors == []
    assert len(sent) == total
    assert seen == set(sent)


# -- delays and the consumer timeout ----------------------------------------------------------------
def test_delays_of_different_lengths_arrive_in_due_order(make):
    require_service("rabbitmq")
    broker = make()
    now = time.time()
    broker.publish_many([Outgoing("d", b"x", f"after-{s}", eta=now + s) for s in (3, 1, 2)])
    got = []
    while len(got) < 3:
        batch = broker.fetch(["d"], 1, consumer="c", timeout=5)
        assert batch, "a delayed message went missing"
        got.append((batch[0].message_id, time.time() - now))
        broker.ack(batch)
    assert [m for m, _ in got] == ["after-1", "after-2", "after-3"]
    assert all(waited >= int(m.split("-")[1]) - 0.05 for m, waited in got)


def test_delay_routing_key_spells_the_seconds_in_binary_before_the_queue():
    from celeriac.brokers.rabbitmq_topology import DELAY_LEVELS, delay_routing_key, queue_of_delay_key

    key = delay_routing_key(5, "app.jobs")
    assert key == "0." * (DELAY_LEVELS - 3) + "1.0.1.app.jobs"
    assert queue_of_delay_key(key) == "app.jobs"
    assert queue_of_delay_key("app.jobs") == "app.jobs"


def _server_version() -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", rabbitmqctl("version"))[:3])


@pytest.fixture
def short_consumer_timeout():
    """A 1.5 s consumer timeout: per consumer on RabbitMQ >= 3.12, else server-wide for the test."""
    if _server_version() >= (3, 12):
        yield {"consumer_timeout": 1.5}
        return
    if not (IN_CI or os.environ.get("CELERIAC_TEST_GLOBAL_CONSUMER_TIMEOUT")):
        pytest.skip("RabbitMQ < 3.12 has only a server-wide consumer timeout; set CELERIAC_TEST_GLOBAL_CONSUMER_TIMEOUT=1")
    rabbitmqctl("eval", "application:set_env(rabbit, channel_tick_interval, 250).")
    rabbitmqctl("eval", "application:set_env(rabbit, consumer_timeout, 1500).")
    try:
        yield {}
    finally:
        rabbitmqctl("eval", "application:set_env(rabbit, consumer_timeout, 1800000).")
        rabbitmqctl("eval", "application:set_env(rabbit, channel_tick_interval, 60000).")


def test_countdown_longer_than_the_consumer_timeout_runs_once(make, short_consumer_timeout):
    require_service("rabbitmq")
    broker = make(**short_consumer_timeout)
    broker.fetch(["ct"], 1, consumer="c", timeout=0.01)  # connect while the short timeout is in force
    broker.publish("ct", b"x", message_id="later", eta=time.time() + 4)
    (d,) = broker.fetch(["ct"], 1, consumer="c", timeout=8)
    assert (d.message_id, d.delivery_count) == ("later", 1)
    broker.ack([d])
    time.sleep(2.5)  # longer than the consumer timeout: a killed channel would have returned it
    assert broker.fetch(["ct"], 1, consumer="c", timeout=0.5) == []


# -- dead letters -------------------------------------------------------------------------------------
async def _reject_one(real_queue: str) -> None:
    conn = await aiormq.connect(URL)
    try:
        channel = await conn.channel()
        message = await channel.basic_get(real_queue)
        await channel.basic_reject(message.delivery.delivery_tag, requeue=False)
    finally:
        await conn.close()


def test_message_rejected_by_another_client_lands_in_the_dead_letter_queue(make):
    require_service("rabbitmq")
    broker = make()
    broker.publish("dl", b"body", message_id="rejected-one")
    asyncio.run(_reject_one(broker.topology.queue("dl")))
    (dead,) = broker.dead_letters("dl")
    assert (dead.message_id, dead.payload) == ("rejected-one", b"body")
    assert "rejected" in dead.reason
    assert broker.stats(["dl"])[0].dead == 1
    assert broker.requeue_dead([dead.id]) == 1
    (again,) = broker.fetch(["dl"], 1, consumer="c", timeout=2)
    assert (again.message_id, again.delivery_count) == ("rejected-one", 1)


def test_dead_letters_keep_their_queue_reason_and_order(make):
    require_service("rabbitmq")
    broker = make()
    broker.publish_many([Outgoing("a", b"1", "first"), Outgoing("b", b"2", "second")])
    for queue, reason in (("a", "boom a"), ("b", "boom b")):
        (d,) = broker.fetch([queue], 1, consumer="c", timeout=2)
        broker.dead_letter(d, reason)
    newest_first = broker.dead_letters()
    assert [(x.queue, x.message_id, x.reason) for x in newest_first] == [("b", "second", "boom b"), ("a", "first", "boom a")]


# -- processes ------------------------------------------------------------------------------------------
def test_a_forked_child_uses_its_own_connection(make):
    require_service("rabbitmq")
    broker = make()
    broker.publish("fork", b"parent", message_id="from-parent")
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            broker.after_fork()
            broker.publish("fork", b"child", message_id="from-child")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    got = broker.fetch(["fork"], 2, consumer="c", timeout=2)
    assert sorted(d.message_id for d in got) == ["from-child", "from-parent"]


def test_wakeup_interrupts_a_blocked_fetch(make):
    require_service("rabbitmq")
    broker = make()
    broker.fetch(["idle"], 1, consumer="c", timeout=0.01)
    timer = threading.Timer(0.3, broker.wakeup)
    timer.start()
    start = time.monotonic()
    assert broker.fetch(["idle"], 1, consumer="c", timeout=10) == []
    timer.join()
    assert time.monotonic() - start < 5


# -- streams -------------------------------------------------------------------------------------
def test_a_large_append_spans_several_stream_messages_in_order(make):
    require_service("rabbitmq")
    from celeriac.brokers.packing import PACK_BYTES

    broker = make()
    items = [f"{i:05d}".encode() + b"x" * 20_000 for i in range(3 * PACK_BYTES // 20_000)]
    broker.stream_append("big", items, maxlen=10_000, max_age=3600)
    got, cursor = [], None
    while batch := broker.stream_read("big", cursor, limit=7, timeout=1):
        got += [item for _, item in batch]
        cursor = batch[-1][0]
    assert got == items
    assert len({c.split("-")[0] for c, _ in broker.stream_read("big", None, limit=len(items), timeout=1)}) >= 3


def test_stream_messages_of_one_item_each_and_plain_offsets_still_read(make):
    """Entries appended one message per item, with plain offsets as cursors, as earlier versions did."""
    require_service("rabbitmq")
    from aiormq import spec

    from celeriac.brokers.rabbitmq_publish import Envelope, send

    broker = make()

    async def append_plain(link, _claims, streams, items):
        real = await streams._stream("old", 100, 3600)
        await send(link, [Envelope("", item, spec.Basic.Properties(delivery_mode=2), 0, "", real) for item in items])

    broker._call(append_plain, [b"a", b"b", b"c"])
    first = broker.stream_read("old", None, limit=10, timeout=1)
    assert [item for _, item in first] == [b"a", b"b", b"c"]
    plain_offset_of_a = first[0][0].split("-")[0]
    assert [item for _, item in broker.stream_read("old", plain_offset_of_a, limit=10, timeout=1)] == [b"b", b"c"]

