"""Beat's schedule entries, their persisted run state, and the pure "what to do now" decision.

Stored state, one key per entry in the result backend's key/value store::

    celeriac.beat.entry.<name> = {"last_run": iso, "pending": {"due": iso, "task_id": id} | null}

``last_run`` is the baseline the next due time is computed from. ``pending`` is written just
before a run is sent and cleared just after, so a beat that takes over after a crash knows a
send may have happened and which task id it used (see ``docs/schedules.md``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from .exceptions import ImproperlyConfigured
from .schedules import BaseSchedule, maybe_schedule, next_run

POLICIES = ("catch_up_once", "skip")
_NAMESPACE = uuid.UUID("9b0c1f7e-4c1a-4a8e-9d0e-6c2b7f3e5a11")


@dataclass(frozen=True)
class Entry:
    """One ``beat_schedule`` item."""

    name: str
    task: str
    schedule: BaseSchedule
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"celeriac.beat.entry.{self.name}"


def load_entries(app: Any) -> list[Entry]:
    """Entries from ``beat_schedule`` after the app's configure/finalize hooks have added theirs."""
    app.finalize()
    return [_entry(app, name, spec) for name, spec in dict(app.conf.beat_schedule or {}).items()]


def _entry(app: Any, name: str, spec: Any) -> Entry:
    if not isinstance(spec, Mapping):
        raise ImproperlyConfigured(f"beat_schedule[{name!r}] must be a dict with 'task' and 'schedule', got {spec!r}")
    task = spec.get("task")
    task = getattr(task, "name", task)
    if not isinstance(task, str) or not task:
        raise ImproperlyConfigured(f"beat_schedule[{name!r}] needs 'task' (a task name), got {spec.get('task')!r}")
    if "schedule" not in spec:
        raise ImproperlyConfigured(f"beat_schedule[{name!r}] needs 'schedule' (crontab, timedelta or seconds)")
    try:
        sched = maybe_schedule(spec["schedule"], app)
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"beat_schedule[{name!r}]: {exc}") from None
    return Entry(name, task, sched, tuple(spec.get("args") or ()), dict(spec.get("kwargs") or {}),
                 dict(spec.get("options") or {}))


@dataclass(frozen=True)
class Pending:
    due: dt.datetime
    task_id: str


@dataclass(frozen=True)
class RunState:
    last_run: dt.datetime | None = None
    pending: Pending | None = None

    def with_(self, **changes: Any) -> RunState:
        return replace(self, **changes)


def encode_state(state: RunState) -> bytes:
    pending = None if state.pending is None else {"due": state.pending.due.isoformat(), "task_id": state.pending.task_id}
    return orjson.dumps({"last_run": state.last_run.isoformat() if state.last_run else None, "pending": pending})


def decode_state(data: bytes | None) -> RunState:
    if not data:
        return RunState()
    raw = orjson.loads(data)
    last = dt.datetime.fromisoformat(raw["last_run"]) if raw.get("last_run") else None
    pending = raw.get("pending")
    return RunState(last, Pending(dt.datetime.fromisoformat(pending["due"]), pending["task_id"]) if pending else None)


def run_id(entry: Entry, due: dt.datetime) -> str:
    """The task id of run ``due`` of ``entry``: the same in every beat process, so a resend is recognisable."""
    return str(uuid.uuid5(_NAMESPACE, f"{entry.name}\x00{entry.task}\x00{due.astimezone(dt.UTC).isoformat()}"))


@dataclass(frozen=True)
class Plan:
    """What to do with one entry now."""

    send: bool
    due: dt.datetime | None
    last_run: dt.datetime
    next_check: dt.datetime


def plan(sched: BaseSchedule, last_run: dt.datetime, now: dt.datetime, tz: dt.tzinfo, *, policy: str,
         grace: dt.timedelta) -> Plan:
    """Decide whether a run is due. A run later than ``grace`` was missed: sent once, or skipped."""
    due = next_run(sched, last_run, now, tz)
    if due > now:
        return Plan(False, None, last_run, due)
    missed = now - due > grace
    baseline = now if missed else due
    return Plan(not (missed and policy == "skip"), due, baseline, next_run(sched, baseline, now, tz))


def check_policy(value: Any) -> str:
    if value not in POLICIES:
        raise ImproperlyConfigured(f"beat_missed_run_policy must be one of {POLICIES}, got {value!r}")
    return str(value)
