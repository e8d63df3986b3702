"""The broker contract (see ``celeriac/brokers/base.py``), run against every broker."""

from __future__ import annotations

import threading
import time

from celeriac.brokers.base import Outgoing


def _ids(deliveries):
    return [d.message_id for d in deliveries]


def test_published_message_is_fetched_once_with_its_payload(broker):
    broker.publish("q1", b"payload-1", message_id="m1")
    got = broker.fetch(["q1"], 10, consumer="c1", timeout=2)
    assert [(d.message_id, d.payload, d.delivery_count) for d in got] == [("m1", b"payload-1", 1)]
    assert broker.fetch(["q1"], 10, consumer="c2", timeout=0.2) == []


def test_fifo_within_a_priority_and_higher_priority_first(broker):
    broker.publish_many([Outgoing("q", b"a", "low-1", 0), Outgoing("q", b"b", "low-2", 0), Outgoing("q", b"c", "high", 9)])
    got = []
    while len(got) < 3:
        batch = broker.fetch(["q"], 1, consumer="c", timeout=2)
        assert batch, "messages went missing"
        got += batch
    assert _ids(got) == ["high", "low-1", "low-2"]


def test_fetch_returns_empty_after_timeout_when_idle(broker):
    start = time.monotonic()
    assert broker.fetch(["empty"], 5, consumer="c", timeout=0.3) == []
    assert time.monotonic() - start >= 0.25


def test_fetch_wakes_when_a_message_arrives(broker):
    broker.fetch(["wake"], 1, consumer="c", timeout=0.01)  # warm up connections
    timer = threading.Timer(0.3, lambda: broker.publish("wake", b"x", message_id="late"))
    timer.start()
    start = time.monotonic()
    got = broker.fetch(["wake"], 1, consumer="c", timeout=5)
    timer.join()
    assert _ids(got) == ["late"]
    assert time.monotonic() - start < 2.0


def test_ack_removes_the_message_for_good(make_broker):
    broker = make_broker(visibility_timeout=0.5)
    broker.publish("q", b"x", message_id="m")
    (d,) = broker.fetch(["q"], 1, consumer="c", timeout=2)
    broker.ack([d])
    time.sleep(0.7)  # past the lease: an acked message must not come back
    assert broker.fetch(["q"], 1, consumer="c", timeout=0.3) == []


def test_expired_lease_makes_the_message_visible_again_with_a_higher_count(make_broker):
    broker = make_broker(visibility_timeout=0.5)
    broker.publish("q", b"x", message_id="m")
    (first,) = broker.fetch(["q"], 1, consumer="dead", timeout=2)
    again = broker.fetch(["q"], 1, consumer="alive", timeout=3)
    assert _ids(again) == ["m"]
    assert again[0].delivery_count == first.delivery_count + 1


def test_renewed_lease_keeps_the_message_held(make_broker):
    broker = make_broker(visibility_timeout=0.6)
    broker.publish("q", b"x", message_id="m")
    (d,) = broker.fetch(["q"], 1, consumer="c", timeout=2)
    for _ in range(4):
        time.sleep(0.3)
        broker.renew([d])
    assert broker.fetch(["q"], 1, consumer="other", timeout=0.1) == []


def test_reclaim_of_a_dead_consumer_is_immediate(make_broker):
    broker = make_broker(visibility_timeout=60)
    broker.publish_many([Outgoing("q", b"1", "a"), Outgoing("q", b"2", "b")])
    held = broker.fetch(["q"], 2, consumer="dead-one", timeout=2)
    assert len(held) == 2
    assert broker.reclaim("dead-one") == 2
    again = broker.fetch(["q"], 2, consumer="new", timeout=2)
    assert sorted(_ids(again)) == ["a", "b"]
    assert all(d.delivery_count == 2 for d in again)


def test_release_returns_unstarted_messages_without_counting_a_delivery(broker):
    broker.publish("q", b"x", message_id="m")
    (d,) = broker.fetch(["q"], 1, consumer="c", timeout=2)
    broker.release([d])
    (again,) = broker.fetch(["q"], 1, consumer="c2", timeout=2)
    assert again.message_id == "m"
    assert again.delivery_count == d.delivery_count


def test_delayed_message_waits_in_the_broker_until_its_eta(broker):
    broker.publish("q", b"x", message_id="later", eta=time.time() + 0.8)
    assert broker.fetch(["q"], 1, consumer="c", timeout=0.2) == []
    got = broker.fetch(["q"], 1, consumer="c", timeout=3)
    assert _ids(got) == ["later"]


def test_far_future_eta_is_stored_not_delivered(broker):
    broker.publish("q", b"x", message_id="days", eta=time.time() + 3 * 86400)
    assert broker.fetch(["q"], 1, consumer="c", timeout=0.3) == []
    (stats,) = broker.stats(["q"])
    assert stats.delayed == 1 and stats.ready == 0


def test_delayed_message_is_delivered_once_to_competing_consumers(broker):
    broker.publish("q", b"x", message_id="once", eta=time.time() + 0.3)
    found = []

    def consume(name):
        found.extend(broker.fetch(["q"], 1, consumer=name, timeout=2))

    threads = [threading.Thread(target=consume, args=(f"c{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _ids(found) == ["once"]


def test_dead_letter_keeps_the_reason_and_can_be_requeued(broker):
    broker.publish("q", b"poison", message_id="bad")
    (d,) = broker.fetch(["q"], 1, consumer="c", timeout=2)
    broker.dead_letter(d, "cannot decode: boom")
    (dead,) = broker.dead_letters("q")
    assert (dead.message_id, dead.reason, dead.payload) == ("bad", "cannot decode: boom", b"poison")
    assert broker.stats(["q"])[0].dead == 1
    assert broker.requeue_dead([dead.id]) == 1
    assert _ids(broker.fetch(["q"], 1, consumer="c", timeout=2)) == ["bad"]
    assert broker.dead_letters("q") == []


def test_stats_count_ready_delayed_and_in_flight(broker):
    broker.publish_many([Outgoing("s", b"1", "r1"), Outgoing("s", b"2", "r2"), Outgoing("s", b"3", "d1", eta=time.time() + 60)])
    broker.fetch(["s"], 1, consumer="c", timeout=2)
    (stats,) = broker.stats(["s"])
    assert (stats.ready, stats.delayed, stats.in_flight) == (1, 1, 1)
    assert stats.oldest_age is not None and stats.oldest_age >= 0


def test_purge_deletes_waiting_messages(broker):
    broker.publish_many([Outgoing("p", b"1", "a"), Outgoing("p", b"2", "b", eta=time.time() + 60)])
    assert broker.purge("p") == 2
    assert broker.fetch(["p"], 5, consumer="c", timeout=0.2) == []


def test_queues_are_independent(broker):
    broker.publish("one", b"1", message_id="for-one")
    assert broker.fetch(["two"], 1, consumer="c", timeout=0.2) == []
    assert _ids(broker.fetch(["one"], 1, consumer="c", timeout=2)) == ["for-one"]


def test_stream_is_read_in_order_from_a_cursor(broker):
    broker.stream_append("ev", [b"e1", b"e2"], maxlen=100, max_age=3600)
    first = broker.stream_read("ev", None, limit=10, timeout=1)
    assert [item for _, item in first] == [b"e1", b"e2"]
    broker.stream_append("ev", [b"e3"], maxlen=100, max_age=3600)
    rest = broker.stream_read("ev", first[-1][0], limit=10, timeout=1)
    assert [item for _, item in rest] == [b"e3"]
    assert broker.stream_tail("ev") == rest[-1][0]


def test_a_read_limit_inside_one_append_continues_where_it_stopped(broker):
    broker.stream_append("ev3", [f"e{i}".encode() for i in range(5)], maxlen=100, max_age=3600)
    seen, cursor = [], None
    for _ in range(3):
        got = broker.stream_read("ev3", cursor, limit=2, timeout=1)
        assert 0 < len(got) <= 2
        seen += [item for _, item in got]
        cursor = got[-1][0]
    assert seen == [b"e0", b"e1", b"e2", b"e3", b"e4"]
    assert broker.stream_tail("ev3") == cursor
    assert broker.stream_read("ev3", cursor, limit=2, timeout=0.3) == []


def test_stream_read_waits_for_new_entries(broker):
    broker.stream_append("ev2", [b"old"], maxlen=100, max_age=3600)
    tail = broker.stream_tail("ev2")
    timer = threading.Timer(0.3, lambda: broker.stream_append("ev2", [b"new"], maxlen=100, max_age=3600))
    timer.start()
    got = broker.stream_read("ev2", tail, limit=10, timeout=5)
    timer.join()
    assert [item for _, item in got] == [b"new"]


def test_mailbox_delivers_each_item_once(broker):
    broker.mailbox_put("box", b"r1", ttl=10)
    broker.mailbox_put("box", b"r2", ttl=10)
    assert broker.mailbox_take("box", timeout=1) == [b"r1", b"r2"]
    assert broker.mailbox_take("box", timeout=0.2) == []
