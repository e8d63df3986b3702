"""The fault schedule: small faults every few seconds, big ones at fixed points of the run.

Small faults (every ``interval`` s, chosen at random): ``kill -9`` of a worker's supervisor
(restarted at once, under the same node name), ``kill -9`` of a prefork child, and on Redis and
RabbitMQ a disconnect (the worker's broker sockets are destroyed with ``ss -K``, so both ends see
the connection die). Big faults, at fixed fractions of the run so that even a short run has them:
broker restarts, a cut of one worker for longer than its lease, and a full disk under SQLite.

The cut is ``SIGSTOP`` of the worker's whole process group plus the destruction of its sockets,
held for 1.6 leases, then ``SIGCONT``: the server sees the worker gone, its leases expire and other
workers take its messages, and then the worker wakes up in the middle of tasks it no longer holds.
A network namespace would be the literal cut, but the services listen on loopback only.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable

import psutil

from .services import PrivateRedis, RabbitMQ, SmallDisk
from .workers import Worker


def destroy_sockets(pids: list[int], port: int) -> int:
    """Destroy the established TCP connections of ``pids`` to ``127.0.0.1:port``; return how many."""
    killed = 0
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        for c in conns:
            if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED:
                flt = ["src", f"{c.laddr.ip}:{c.laddr.port}", "dst", f"{c.raddr.ip}:{port}"]
                out = subprocess.run(["ss", "-K", "-tn", *flt], capture_output=True, text=True).stdout
                killed += max(0, len(out.strip().splitlines()) - 1)
    return killed


class Faults:
    """Runs the schedule in a thread; ``counts`` holds what was done, ``log`` when."""

    def __init__(self, fleet: list[Worker], service: PrivateRedis | RabbitMQ | SmallDisk | None,
                 lease: float, interval: float, seed: int) -> None:
        self.fleet = fleet
        self.service = service
        self.lease = lease
        self.interval = interval
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.log: list[str] = []
        #: (start, end, pids or None for every process, kind): wall-clock windows, to explain repeats
        self.events: list[tuple[float, float, frozenset[int] | None, str]] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def note(self, what: str) -> None:
        self.log.append(f"{time.monotonic() - self.t0:7.1f}s {time.strftime('%H:%M:%S')} {what}")

    def event(self, start: float, kind: str, pids: list[int] | None) -> None:
        self.events.append((start, time.time(), None if pids is None else frozenset(pids), kind))

    def big_faults(self) -> list[tuple[float, Callable[[], None]]]:
        """(fraction of the run, fault) pairs for this broker."""
        if isinstance(self.service, SmallDisk):
            return [(0.25, self.disk_full), (0.45, self.cut), (0.7, self.disk_full)]
        return [(0.3, self.broker_restart), (0.45, self.cut), (0.65, self.broker_restart)]

    def run(self, duration: float) -> None:
        """Inject faults until ``duration`` has passed or ``stop`` is set."""
        end = self.t0 + duration
        pending = sorted(((self.t0 + f * duration, fn) for f, fn in self.big_faults()), key=lambda p: p[0])
        while not self.stop.wait(self.interval * self.rng.uniform(0.5, 1.5)) and time.monotonic() < end:
            self.restart_crashed()
            if pending and time.monotonic() >= pending[0][0]:
                pending.pop(0)[1]()
            else:
                self.small_fault()
        self.restart_crashed()

    def restart_crashed(self) -> None:
        """A worker that exited without being killed by us is a crash: count it and start it again."""
        for w in self.fleet:
            if not w.alive and not w.expected_exit:
                self.counts["worker crashes"] += 1
                self.note(f"CRASH {w.name} exit={w.proc.returncode if w.proc else None}")
                w.start()

    def small_fault(self) -> None:
        choices = ["worker", "child", "child"]
        if isinstance(self.service, PrivateRedis | RabbitMQ):
            choices.append("disconnect")
        kind = self.rng.choice(choices)
        if kind == "worker":
            w = self.rng.choice(self.fleet)
            self.event(time.time(), kind, w.pids())
            w.kill9()
            w.start()
            self.counts["worker kills"] += 1
            self.note(f"kill -9 worker {w.name}")
        elif kind == "child":
            prefork = [w for w in self.fleet if w.children()]
            pid = self.rng.choice(prefork).kill_child() if prefork else None
            if pid:
                self.event(time.time(), kind, [pid])
                self.counts["child kills"] += 1
                self.note("kill -9 child")
        else:
            w = self.rng.choice([w for w in self.fleet if w.alive] or self.fleet)
            self.event(time.time(), kind, w.pids())
            n = destroy_sockets(w.pids(), self.service.port)
            self.counts["disconnects"] += 1
            self.note(f"disconnect {w.name}: {n} sockets")

    def broker_restart(self) -> None:
        """Crash Redis (or stop RabbitMQ's app), keep it down a moment, bring it back: always."""
        self.note("broker down")
        start = time.time()
        try:
            if isinstance(self.service, PrivateRedis):
                self.service.crash()
            else:
                self.service.stop_app()
            self.stop.wait(2.0)
        finally:
            if isinstance(self.service, PrivateRedis):
                self.service.start()
            else:
                self.service.start_app()
            self.event(start, "broker restart", None)
        self.counts["broker restarts"] += 1
        self.note("broker up")

    def cut(self) -> None:
        """Freeze one worker and cut its sockets for longer than its lease."""
        w = self.fleet[self.counts["cuts"] % len(self.fleet)]  # prefork first, then the others in turn
        self.note(f"cut {w.name} for {1.6 * self.lease:.1f}s")
        start, pids = time.time(), w.pids()
        w.group_signal(signal.SIGSTOP)
        try:
            if isinstance(self.service, PrivateRedis | RabbitMQ):
                destroy_sockets(w.pids(), self.service.port)
            self.stop.wait(1.6 * self.lease)
        finally:
            w.group_signal(signal.SIGCONT)
            self.event(start, "cut", pids)
        self.counts["cuts"] += 1
        self.note(f"cut {w.name} over")

    def disk_full(self) -> None:
        """Fill the tmpfs under the SQLite file, hold it full for a few seconds, free it: always."""
        start = time.time()
        try:
            written = self.service.fill()
            self.note(f"disk full ({written} bytes of filler)")
            self.stop.wait(3.0)
        finally:
            self.service.free()
            self.event(start, "disk full", None)
        self.counts["disk fills"] += 1
        self.note("disk freed")
