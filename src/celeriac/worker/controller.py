"""``WorkController``: starts a pool, prints the banner, handles signals, heartbeats and control.

Shutdown: the first SIGTERM/SIGINT is warm (stop fetching, finish running tasks, exit 0); a second
one, or SIGQUIT, is cold (running tasks go back to the queue at once).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import platform
import signal
import sys
import threading
import time
from typing import Any

from .. import __version__, signals
from ..app.base import Celery
from .banner import banner
from .handler import Job
from .logs import setup_logging
from .options import WorkerOptions
from .remote import ControlFollower
from .revoked import RevokedIds

logger = logging.getLogger("celeriac.worker")


def _make_pool(controller: WorkController) -> Any:
    options = controller.options
    if options.pool == "prefork":
        from .prefork import PreforkPool

        return PreforkPool(controller, options)
    if options.pool == "async":
        from .asyncpool import AsyncPool

        return AsyncPool(controller, options)
    from .threaded import ThreadPool

    return ThreadPool(controller, options, solo=options.pool == "solo")


def _compact_before_fork() -> None:
    """Return start-up garbage to the OS before forking: each child would count it in its resident size.

    Imports and configuration leave freed blocks in the C heap that stay resident until trimmed;
    what survives the collection is frozen, so the children's collections leave those pages shared.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # malloc_trim is glibc's
        ctypes.CDLL(None).malloc_trim(0)
    gc.freeze()


class WorkController:
    """One worker node: a pool plus the threads that keep it visible and steerable."""

    def __init__(self, app: Celery, options: WorkerOptions, embedded: bool = False) -> None:
        self.app = app
        self.options = options
        self.embedded = embedded
        self.logger = logger
        self.revoked = RevokedIds(float(app.conf.task_revoked_ttl))
        self.stop_event = threading.Event()
        self.started = time.time()
        self.pool: Any = None
        self._shutdowns = 0
        self._outage_logged = False
        self._idle_since = time.monotonic()
        self._last_scale = 0.0

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> int:
        """Run until shut down; ``embedded`` workers (tests, threads) leave logging and signals alone."""
        if not self.embedded:
            setup_logging(self.app.conf, self.options.loglevel)
        self.app.check()
        self.app.finalize()
        signals.worker_init.send(sender=self)
        self.app.events.hostname = self.options.hostname
        if not self.embedded:
            out = sys.__stdout__ or sys.stderr
            out.write(banner(self) + "\n")
            out.flush()
            self._install_signals()
        self._load_revoked()
        self.pool = _make_pool(self)
        if self.pool.name == "prefork":
            _compact_before_fork()
        self.pool.start()
        self._start_threads()
        logger.info("%s ready.", self.options.hostname)
        signals.worker_ready.send(sender=self)
        self.pool.join()
        self.stop_event.set()
        self._send_worker_event("worker-offline")
        self.app.events.flush()
        signals.worker_shutdown.send(sender=self)
        return 0

    def _load_revoked(self) -> None:
        try:
            if self.app.backend.enabled:
                self.revoked.load(self.app.backend.revoked())
        except Exception as exc:
            logger.warning("could not load revoked ids from the result backend: %r", exc)

    def _start_threads(self) -> None:
        self._send_worker_event("worker-online")
        threading.Thread(target=self._heartbeats, name="celeriac-heartbeat", daemon=True).start()
        ControlFollower(self, reply=True).start()
        if self.options.beat:
            self._start_beat()

    def _start_beat(self) -> None:
        from ..beat import run_embedded

        threading.Thread(target=run_embedded, args=(self.app, self.stop_event), name="celeriac-beat", daemon=True).start()

    def follow_revokes(self, revoked: RevokedIds, stop: threading.Event) -> None:
        """In a prefork child: honour revokes without asking the supervisor."""
        revoked.add(self.revoked.as_list())
        ControlFollower(self, reply=False, revoked=revoked, stop=stop).start()

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGQUIT, lambda *_: self.shutdown(cold=True))

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        self._shutdowns += 1
        self.shutdown(cold=self._shutdowns > 1)

    def shutdown(self, cold: bool = False) -> None:
        kind = "cold" if cold else "warm"
        logger.warning("worker: %s shutdown (%s)", kind.capitalize(), "running tasks go back to the queue" if cold
                       else "finishing running tasks")
        signals.worker_shutting_down.send(sender=self.options.hostname, sig="", how=kind, exitcode=0)
        self.stop_event.set()
        if self.pool is not None:
            self.pool.stop(cold=cold)

    # -- heartbeats and events ----------------------------------------------------------------
    def _heartbeats(self) -> None:
        interval = self.options.heartbeat_interval
        while not self.stop_event.wait(interval):
            try:
                self._send_worker_event("worker-heartbeat")
                signals.heartbeat_sent.send(sender=self)
            except Exception as exc:
                self.log_outage(exc)

    def _send_worker_event(self, type_: str) -> None:
        active = len(self.pool.active()) if self.pool is not None else 0
        processed = self.pool.processed() if self.pool is not None else 0
        self.app.events.send(
            type_, hostname=self.options.hostname, freq=self.options.heartbeat_interval, active=active,
            processed=processed, loadavg=[round(x, 2) for x in os.getloadavg()], sw_ident="py-celeriac",
            sw_ver=__version__, sw_sys=platform.system(), pool=self.options.pool,
            concurrency=self.pool.size() if self.pool is not None else self.options.concurrency,
            queues=self.options.queues,
        )
        if type_ == "worker-offline":
            self.app.events.flush()

    def log_outage(self, exc: BaseException) -> None:
        if not self._outage_logged:
            logger.warning("broker unreachable (%r); retrying with backoff", exc)
            self._outage_logged = True

    # -- autoscale ----------------------------------------------------------------------------
    def autoscale_tick(self, pool: Any) -> None:
        """Grow with queue depth, shrink after a few idle seconds (``--autoscale=MAX,MIN``)."""
        if not self.options.autoscale or time.monotonic() - self._last_scale < 1.0:
            return
        self._last_scale = time.monotonic()
        high, low = self.options.autoscale
        try:
            depth = sum(s.ready for s in self.app.broker.stats(self.options.queues))
        except Exception:
            return
        busy = len(pool.active())
        size = pool.size()
        # ready work at a tick means no child could take it (an idle child takes it within milliseconds);
        # "busy" alone is misleading between one task's end and the next one's start
        if depth > 0 and size < high:
            pool.grow(min(high - size, max(1, depth)))
            self._idle_since = time.monotonic()
        elif depth == 0 and busy < size:
            if time.monotonic() - self._idle_since > 5.0 and size > low:
                pool.shrink(1)
                self._idle_since = time.monotonic()
        else:
            self._idle_since = time.monotonic()

    # -- descriptions for inspect ---------------------------------------------------------------
    def describe_job(self, job: Job) -> dict[str, Any]:
        return {
            "id": job.message.id, "name": job.message.task, "args": job.message.argsrepr,
            "kwargs": job.message.kwargsrepr, "type": job.message.task, "hostname": self.options.hostname,
            "time_start": job.started_at, "acknowledged": not job.acks_late, "worker_pid": os.getpid(),
            "delivery_info": job.request.delivery_info,
        }
