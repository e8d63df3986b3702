"""Beat: send periodic tasks, with any number of beat processes and exactly one leader.

Every beat process runs :meth:`Beat.tick` in a loop. A tick first takes or renews the lease
``beat-leader`` in the result backend; only the holder sends. Followers retry every third of
the lease, so when a leader dies another takes over within about ``beat_lease_seconds``.

For each entry the leader reads the entry's stored state, asks the pure
:func:`celeriac.beat_entries.plan` what to do, and sends a due run under a task id derived from
(entry, due time). The intent is stored before the send and cleared after it, so a leader that
takes over mid-send can tell whether the run already went out. The loop sleeps until the next
due time or lease renewal, whichever is first; :meth:`Beat.stop` wakes it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from . import signals
from .beat_entries import Entry, Pending, RunState, check_policy, decode_state, encode_state, load_entries, plan, run_id
from .schedules import app_timezone

logger = logging.getLogger("celeriac.beat")

LEASE_NAME = "beat-leader"
DEFAULT_MAX_INTERVAL = 300.0
DEFAULT_GRACE = 60.0


class Beat:
    """The periodic task scheduler (``celeriac -A proj beat``)."""

    def __init__(self, app: Any, clock: Callable[[], float] = time.time, owner: str | None = None,
                 max_interval: float | None = None) -> None:
        conf = app.conf
        self.app = app
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = float(conf.beat_lease_seconds)
        self.policy = check_policy(conf.beat_missed_run_policy or "catch_up_once")
        self.grace = dt.timedelta(seconds=float(conf.beat_cron_starting_deadline or DEFAULT_GRACE))
        self.max_interval = float(max_interval or conf.beat_max_loop_interval or DEFAULT_MAX_INTERVAL)
        self.tz = app_timezone(conf)
        self.is_leader = False
        self._renew_at = 0.0
        self._entries: list[Entry] | None = None
        self._stop = threading.Event()

    @property
    def entries(self) -> list[Entry]:
        if self._entries is None:
            self._entries = load_entries(self.app)
        return self._entries

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    # -- the loop ----------------------------------------------------------------------------
    def run(self, stop_event: threading.Event | None = None) -> None:
        """Tick until stopped; give up the lease on the way out so another beat leads at once."""
        stop = stop_event or self._stop
        self._stop = stop
        signals.beat_init.send(sender=self)
        logger.info("beat: starting (%d entries, owner %s)", len(self.entries), self.owner)
        try:
            while not stop.is_set():
                stop.wait(self._safe_tick())
        finally:
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        if self.is_leader:
            self.is_leader = False
            try:
                self.app.backend.release_lease(LEASE_NAME, self.owner)
            except Exception as exc:
                logger.warning("beat: could not release the lease: %r", exc)

    def _safe_tick(self) -> float:
        try:
            return self.tick()
        except Exception as exc:  # the backend or broker is down: keep trying, never die
            logger.exception("beat: tick failed: %r", exc)
            return min(5.0, self.lease_seconds / 3)

    def tick(self) -> float:
        """Send what is due now; return the seconds to sleep before the next tick."""
        moment = self.clock()
        if not self._hold_lease(moment):
            return self.lease_seconds / 3
        now = self.now()
        checks = [self._visit(entry, now) for entry in self.entries]
        wake = min([self._renew_at, *(c.timestamp() for c in checks)])
        return max(0.0, min(wake - self.clock(), self.max_interval))

    # -- leadership --------------------------------------------------------------------------
    def _hold_lease(self, moment: float) -> bool:
        if self.is_leader and moment < self._renew_at:
            return True
        held = self.app.backend.acquire_lease(LEASE_NAME, self.owner, self.lease_seconds)
        if held and not self.is_leader:
            logger.info("beat: %s is the leader now", self.owner)
        elif self.is_leader and not held:
            logger.warning("beat: %s lost the lease; waiting as a follower", self.owner)
        self.is_leader = held
        self._renew_at = moment + self.lease_seconds / 3
        return held

    # -- one entry ---------------------------------------------------------------------------
    def state(self, entry: Entry) -> RunState:
        return decode_state(self.app.backend.kv_get(entry.key))

    def _save(self, entry: Entry, state: RunState) -> None:
        self.app.backend.kv_set(entry.key, encode_state(state))

    def _visit(self, entry: Entry, now: dt.datetime) -> dt.datetime:
        state = self.state(entry)
        if state.pending is not None:
            state = self._finish_pending(entry, state)
        if state.last_run is None:
            state = state.with_(last_run=now)  # first sighting: the schedule counts from here
            self._save(entry, state)
        assert state.last_run is not None
        decision = plan(entry.schedule, state.last_run, now, self.tz, policy=self.policy, grace=self.grace)
        if decision.due is None:
            return decision.next_check
        if decision.send:
            task_id = run_id(entry, decision.due)
            self._save(entry, RunState(decision.last_run, Pending(decision.due, task_id)))
            self._send(entry, task_id, decision.due)
        else:
            logger.info("beat: skipping missed run of %s due %s (policy skip)", entry.name, decision.due.isoformat())
        self._save(entry, RunState(decision.last_run))
        return decision.next_check

    def _finish_pending(self, entry: Entry, state: RunState) -> RunState:
        """A previous leader stopped mid-send: send again only if the run never reached the backend."""
        pending = state.pending
        assert pending is not None
        if self.app.backend.get(pending.task_id) is None:
            logger.warning("beat: resending run of %s due %s after a takeover", entry.name, pending.due.isoformat())
            self._send(entry, pending.task_id, pending.due)
        cleared = state.with_(pending=None)
        self._save(entry, cleared)
        return cleared

    def _send(self, entry: Entry, task_id: str, due: dt.datetime) -> None:
        logger.info("beat: Sending due task %s (%s) [%s] due %s", entry.name, entry.task, task_id, due.isoformat())
        self.app.send_task(entry.task, entry.args, entry.kwargs, task_id=task_id, **entry.options)


def run_embedded(app: Any, stop_event: threading.Event) -> None:
    """Run beat inside a worker (``worker -B``) until ``stop_event`` is set."""
    scheduler = Beat(app)
    signals.beat_embedded_init.send(sender=scheduler)
    scheduler.run(stop_event)


__all__ = ["LEASE_NAME", "Beat", "run_embedded"]
