"""The account at the end: every task id the producer had accepted, looked up in the result store.

* completed: its result is SUCCESS.
* dead-lettered: FAILURE ``WorkerLostError`` (delivered more than ``task_max_deliveries`` times),
  or found in the broker's dead-letter queue. Accounted for, reported apart.
* failed: any other FAILURE (the harness's tasks never fail, so this should be 0).
* lost: anything else once the drain deadline has passed: no result, or a result still PENDING,
  STARTED or RETRY, and not in the dead-letter queue.

"Ran more than once" comes from the run records the task bodies write outside the system under
test: a task id counts when any one attempt (same id, same retry number) started twice or more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READY = {"SUCCESS", "FAILURE", "REVOKED"}


@dataclass
class Account:
    sent: int = 0
    completed: int = 0
    dead_lettered: int = 0
    failed: int = 0
    lost: list[str] = field(default_factory=list)
    ran_more_than_once: int = 0
    never_ran_but_done: int = 0
    unexplained: list[str] = field(default_factory=list)
    lost_never_started: int = 0


def fetch_metas(backend: Any, ids: list[str]) -> dict[str, dict]:
    metas: dict[str, dict] = {}
    for i in range(0, len(ids), 500):
        metas.update(backend.get_many(ids[i:i + 500]))
    return metas


def drain(backend: Any, ids: list[str], timeout: float) -> dict[str, dict]:
    """Poll the result store until every id is ready or ``timeout`` passes (bounded)."""
    deadline = time.monotonic() + timeout
    metas: dict[str, dict] = {}
    waiting = list(ids)
    while True:
        try:
            metas.update({k: v for k, v in fetch_metas(backend, waiting).items()})
        except Exception as exc:  # the store may still be recovering from the last fault
            print(f"result store not readable yet: {exc!r}")
        waiting = [i for i in waiting if (metas.get(i) or {}).get("status") not in READY]
        if not waiting or time.monotonic() > deadline:
            return metas
        time.sleep(1.0)  # poll interval of a bounded loop


Runs = dict[tuple[str, int], list[tuple[float, int]]]


def read_runs(runs_dir: Path) -> Runs:
    """(task id, retry number) -> [(start time, pid)] in time order, from every process's record file."""
    runs: Runs = {}
    for path in runs_dir.glob("*.runs"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:
                runs.setdefault((parts[0], int(parts[1])), []).append((float(parts[3]), int(parts[2])))
    for starts in runs.values():
        starts.sort()
    return runs


def unexplained_repeats(runs: Runs, events: list[tuple[float, float, frozenset[int] | None, str]], slack: float = 1.0) -> list[str]:
    """Repeats with no fault to explain them: no fault hit the first run's process, and no broker
    restart or full disk, between the two starts. Each one would be a bug worth reading."""
    found = []
    for (tid, _), starts in runs.items():
        for (t1, pid), (t2, _) in zip(starts, starts[1:], strict=False):
            hit = any(s <= t2 + slack and e >= t1 - slack and (pids is None or pid in pids) for s, e, pids, _ in events)
            if not hit:
                found.append(tid)
    return sorted(set(found))


def is_dead_letter(meta: dict | None) -> bool:
    text = repr((meta or {}).get("result", "")) + str((meta or {}).get("traceback", ""))
    return (meta or {}).get("status") == "FAILURE" and "WorkerLostError" in text


def account(sent: dict[str, str], metas: dict[str, dict], dead_ids: set[str], runs: Runs) -> Account:
    acc = Account(sent=len(sent))
    started = {tid for tid, _ in runs}
    repeated = {tid for (tid, _), starts in runs.items() if len(starts) > 1}
    for tid in sent:
        meta = metas.get(tid)
        status = (meta or {}).get("status")
        if status == "SUCCESS":
            acc.completed += 1
            acc.never_ran_but_done += tid not in started
        elif is_dead_letter(meta) or tid in dead_ids:
            acc.dead_lettered += 1
        elif status in READY:
            acc.failed += 1
        else:
            acc.lost.append(tid)
    acc.ran_more_than_once = len(repeated & set(sent))
    acc.lost_never_started = sum(tid not in started for tid in acc.lost)
    return acc


def dead_letter_ids(broker: Any) -> set[str]:
    try:
        return {d.message_id for d in broker.dead_letters(None, limit=100_000)}
    except Exception as exc:
        print(f"could not list dead letters: {exc!r}")
        return set()
