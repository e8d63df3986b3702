"""Following the control stream: revokes everywhere, and the remote-control commands with replies.

The worker's main process answers commands (``ping``, ``inspect ...``, ``pool_grow`` ...); prefork
children follow the same stream only to honour revokes and limit changes themselves.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from ..control import STREAM
from .revoked import RevokedIds

if TYPE_CHECKING:
    from .controller import WorkController

logger = logging.getLogger("celeriac.worker.control")

Handler = Callable[["WorkController", dict[str, Any]], Any]
HANDLERS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    """Register a remote-control command under Celery's name."""
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


class ControlFollower(threading.Thread):
    """Reads the control stream from where it stood at start and handles commands meant for us."""

    def __init__(self, controller: WorkController, reply: bool, revoked: RevokedIds | None = None,
                 stop: threading.Event | None = None) -> None:
        super().__init__(name="celeriac-control", daemon=True)
        self.controller = controller
        self.app = controller.app
        self.reply = reply
        self.revoked = revoked or controller.revoked
        self.stop = stop or controller.stop_event
        self.cursor = self.app.broker.stream_tail(STREAM)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                entries = self.app.broker.stream_read(STREAM, self.cursor, limit=100, timeout=1.0)
            except Exception as exc:
                self.controller.log_outage(exc)
                self.stop.wait(1.0)
                continue
            for cursor, data in entries:
                self.cursor = cursor
                self._handle(data)

    def _handle(self, data: bytes) -> None:
        try:
            cmd = orjson.loads(data)
        except orjson.JSONDecodeError:
            logger.warning("ignoring an undecodable control command")
            return
        destination = cmd.get("destination")
        if destination and self.controller.options.hostname not in destination:
            return
        if cmd.get("expires") and cmd["expires"] < time.time():
            return
        method = cmd.get("method")
        args = cmd.get("arguments") or {}
        if method == "revoke":
            self.revoked.add(_ids(args.get("task_id")))
        if not self.reply:
            if method in ("rate_limit", "time_limit"):
                HANDLERS[method](self.controller, args)  # a child applies limits to its own copy of the task
            return
        self._answer(cmd, method, args)

    def _answer(self, cmd: dict[str, Any], method: str | None, args: dict[str, Any]) -> None:
        handler = HANDLERS.get(method or "")
        try:
            result = handler(self.controller, args) if handler else {"error": f"unknown command {method!r}"}
        except Exception as exc:
            logger.exception("control command %s failed", method)
            result = {"error": repr(exc)}
        if cmd.get("reply_to"):
            payload = orjson.dumps({self.controller.options.hostname: result}, default=repr)
            self.app.broker.mailbox_put(cmd["reply_to"], payload, ttl=60)


def _ids(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


@command("ping")
def _ping(controller: WorkController, args: dict[str, Any]) -> Any:
    return {"ok": "pong"}


@command("revoke")
def _revoke(controller: WorkController, args: dict[str, Any]) -> Any:
    ids = _ids(args.get("task_id"))
    controller.revoked.add(ids)
    if args.get("terminate"):
        signum = getattr(signal, str(args.get("signal") or "SIGTERM").upper(), signal.SIGTERM)
        for task_id in ids:
            controller.pool.terminate(task_id, int(signum))
    return {"ok": f"tasks {', '.join(ids)} flagged as revoked"}


@command("shutdown")
def _shutdown(controller: WorkController, args: dict[str, Any]) -> Any:
    controller.shutdown(cold=False)
    return {"ok": "shutting down"}


@command("active")
def _active(controller: WorkController, args: dict[str, Any]) -> Any:
    return controller.pool.active()


@command("reserved")
def _reserved(controller: WorkController, args: dict[str, Any]) -> Any:
    return controller.pool.reserved()


@command("scheduled")
def _scheduled(controller: WorkController, args: dict[str, Any]) -> Any:
    return []  # delayed tasks wait in the broker, never in a worker


@command("registered")
def _registered(controller: WorkController, args: dict[str, Any]) -> Any:
    return sorted(controller.app.tasks)


@command("revoked")
def _revoked(controller: WorkController, args: dict[str, Any]) -> Any:
    return controller.revoked.as_list()


@command("pool_grow")
def _pool_grow(controller: WorkController, args: dict[str, Any]) -> Any:
    controller.pool.grow(int(args.get("n", 1)))
    return {"ok": f"pool will grow by {args.get('n', 1)}"}


@command("pool_shrink")
def _pool_shrink(controller: WorkController, args: dict[str, Any]) -> Any:
    controller.pool.shrink(int(args.get("n", 1)))
    return {"ok": f"pool will shrink by {args.get('n', 1)}"}


@command("rate_limit")
def _rate_limit(controller: WorkController, args: dict[str, Any]) -> Any:
    task = controller.app.tasks.get(args.get("task_name", ""))
    if task is None:
        return {"error": f"unknown task {args.get('task_name')!r}"}
    task.rate_limit = args.get("rate_limit")
    return {"ok": f"new rate limit set successfully: {args.get('rate_limit')}"}


@command("time_limit")
def _time_limit(controller: WorkController, args: dict[str, Any]) -> Any:
    task = controller.app.tasks.get(args.get("task_name", ""))
    if task is None:
        return {"error": f"unknown task {args.get('task_name')!r}"}
    task.soft_time_limit, task.time_limit = args.get("soft"), args.get("hard")
    return {"ok": "time limits set successfully"}


@command("stats")
def _stats(controller: WorkController, args: dict[str, Any]) -> Any:
    import os
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "pid": os.getpid(), "uptime": round(time.time() - controller.started, 3), "clock": 0,
        "pool": {"implementation": controller.options.pool, "max-concurrency": controller.pool.size(),
                 "processes": [controller.options.concurrency]},
        "total": {"processed": controller.pool.processed()},
        "broker": {"transport": controller.app.broker.transport},
        "prefetch_count": controller.options.prefetch_multiplier * controller.pool.size(),
        "rusage": {"utime": usage.ru_utime, "stime": usage.ru_stime, "maxrss": usage.ru_maxrss},
    }


@command("active_queues")
def _active_queues(controller: WorkController, args: dict[str, Any]) -> Any:
    return [
        {"name": q, "exchange": {"name": q, "type": "direct", "arguments": None, "durable": True, "passive": False,
                                 "auto_delete": False, "delivery_mode": None, "no_declare": False},
         "routing_key": q, "queue_arguments": None, "binding_arguments": None, "consumer_arguments": None,
         "durable": True, "exclusive": False, "auto_delete": False, "no_ack": False, "alias": None, "bindings": [],
         "no_declare": None, "expires": None, "message_ttl": None, "max_length": None, "max_length_bytes": None,
         "max_priority": None}
        for q in controller.options.queues
    ]


@command("conf")
def _conf(controller: WorkController, args: dict[str, Any]) -> Any:
    from .banner import mask_url

    conf = controller.app.conf.with_defaults() if args.get("with_defaults") else dict(controller.app.conf)
    safe = {k: (mask_url(v) if isinstance(v, str) and "://" in v else v) for k, v in conf.items()}
    return {k: v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else repr(v) for k, v in safe.items()}


@command("enable_events")
def _enable_events(controller: WorkController, args: dict[str, Any]) -> Any:
    return {"ok": "task events already enabled"}


@command("disable_events")
def _disable_events(controller: WorkController, args: dict[str, Any]) -> Any:
    return {"ok": "task events are always on"}


@command("heartbeat")
def _heartbeat(controller: WorkController, args: dict[str, Any]) -> Any:
    controller._send_worker_event("worker-heartbeat")
    return {"ok": "heartbeat sent"}
