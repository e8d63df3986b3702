"""The result backend contract (see ``celeriac/backends/base.py``), run against every backend."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from decimal import Decimal


def meta(task_id, status, result=None):
    return {"task_id": task_id, "status": status, "result": result, "traceback": None, "children": [], "date_done": None}


def test_stored_meta_reads_back_with_rich_types(backend):
    value = {"when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "amount": Decimal("1.50"),
             "id": uuid.UUID(int=7), "raw": b"\x00\xff"}
    backend.store(meta("t1", "SUCCESS", value), expires=60)
    assert backend.get("t1")["result"] == value


def test_missing_id_is_absent(backend):
    assert backend.get("never-sent") is None
    assert backend.get_many(["never-sent"]) == {}


def test_ready_state_is_never_replaced(backend):
    backend.store(meta("t2", "SUCCESS", 5), expires=60)
    backend.store(meta("t2", "STARTED"), expires=60)
    assert backend.get("t2")["status"] == "SUCCESS"


def test_progress_states_replace_each_other(backend):
    backend.store(meta("t3", "PENDING"), expires=60)
    backend.store(meta("t3", "PROGRESS", {"current": 40, "total": 100}), expires=60)
    assert backend.get("t3")["result"] == {"current": 40, "total": 100}


def test_expired_results_are_gone(backend):
    backend.store(meta("t4", "SUCCESS", 1), expires=0.3)
    time.sleep(0.6)
    assert backend.get("t4") is None


def test_wait_is_woken_by_a_store(backend):
    backend.get_many(["t5"])
    timer = threading.Timer(0.3, lambda: backend.store(meta("t5", "SUCCESS", 1), expires=60))
    timer.start()
    start = time.monotonic()
    deadline = start + 5
    while backend.get("t5") is None and time.monotonic() < deadline:
        backend.wait(["t5"], deadline - time.monotonic())
    timer.join()
    assert backend.get("t5")["status"] == "SUCCESS"
    assert time.monotonic() - start < 2.5


def test_forget_deletes(backend):
    backend.store(meta("t6", "SUCCESS", 1), expires=60)
    backend.forget(["t6"])
    assert backend.get("t6") is None


def test_revoked_ids_are_kept_until_their_ttl(backend):
    backend.revoke(["r1", "r2"], ttl=60, terminate=True, signal="SIGKILL")
    backend.revoke(["r3"], ttl=0.3)
    revoked = backend.revoked()
    assert {"r1", "r2", "r3"} <= set(revoked)
    assert revoked["r1"]["terminate"] is True and revoked["r1"]["signal"] == "SIGKILL"
    time.sleep(0.5)
    assert "r3" not in backend.revoked()


def test_group_save_and_restore(backend):
    backend.save_group("g1", ["a", "b", "c"], expires=60)
    assert backend.restore_group("g1") == ["a", "b", "c"]
    backend.delete_group("g1")
    assert backend.restore_group("g1") is None


def test_chord_join_completes_exactly_once_in_index_order(backend):
    backend.chord_init("c1", 20, expires=60)
    outcomes = []
    lock = threading.Lock()

    def join(i):
        done = backend.chord_join("c1", i, f"t{i}", i * 10)
        with lock:
            outcomes.append(done)

    threads = [threading.Thread(target=join, args=(i,)) for i in reversed(range(20))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    completed = [o for o in outcomes if o is not None]
    assert completed == [[i * 10 for i in range(20)]]


def test_chord_join_ignores_a_duplicate_delivery(backend):
    backend.chord_init("c2", 2, expires=60)
    assert backend.chord_join("c2", 0, "t0", "a") is None
    assert backend.chord_join("c2", 0, "t0", "a") is None
    assert backend.chord_join("c2", 1, "t1", "b") == ["a", "b"]


def test_lease_has_one_holder_until_it_expires(backend):
    assert backend.acquire_lease("beat", "one", ttl=0.5)
    assert not backend.acquire_lease("beat", "two", ttl=0.5)
    assert backend.acquire_lease("beat", "one", ttl=0.5)
    time.sleep(0.7)
    assert backend.acquire_lease("beat", "two", ttl=5)
    backend.release_lease("beat", "two")
    assert backend.acquire_lease("beat", "one", ttl=5)


def test_kv_round_trips(backend):
    assert backend.kv_get("k") is None
    backend.kv_set("k", b"v1")
    backend.kv_set("k", b"v2")
    assert backend.kv_get("k") == b"v2"
