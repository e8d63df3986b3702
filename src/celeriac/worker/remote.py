"""Following the control stream: revokes everywhere, and the remote-control commands with replies.

The worker's main process answers commands (``ping``, ``inspect ...``, ``pool_grow`` ...); prefork
children follow the same stream without answering, to apply to their own copy of the worker what
only they can: revoked ids, rate and time limits, and the queues to consume (``add_consumer``).
The queue list is ``options.queues``, the one list every slot loop of a process fetches from.
"""

from __future__ import annotations

import logging
import os
import platform
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from .. import __version__, signals
from ..control import STREAM
from ..events import lamport_tick
from . import ratelimit
from .revoked import RevokedIds

if TYPE_CHECKING:
    from .controller import WorkController

logger = logging.getLogger("celeriac.worker.control")

Handler = Callable[["WorkController", dict[str, Any]], Any]
HANDLERS: dict[str, Handler] = {}
#: what a prefork child applies to itself (its copy of tasks, queues and rate share)
CHILD_COMMANDS = ("rate_limit", "time_limit", "add_consumer", "cancel_consumer", "pool_grow", "pool_shrink")
_SECRET_WORDS = ("password", "secret", "token", "passwd", "credential", "auth", "private", "api_key")


def command(name: str) -> Callable[[Handler], Handler]:
    """Register a remote-control command under Celery's name."""
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


#: where the worker's main follower stands in the control stream. Set when the worker starts (before
#: any child forks) and advanced as commands are applied, so a child forked at any time inherits
#: a position that matches the state it was forked with, and misses no later command.
_position: dict[str, str | None] = {}


@signals.worker_init.connect
def _remember_start(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, "app", None)
    if app is not None:
        _position["cursor"] = app.broker.stream_tail(STREAM)


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
        self.cursor = _position["cursor"] if "cursor" in _position else self.app.broker.stream_tail(STREAM)
        if not reply:
            ratelimit.set_share(self.app, getattr(controller.pool, "target", controller.options.concurrency))

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                entries = self.app.broker.stream_read(STREAM, self.cursor, limit=100, timeout=1.0)
            except Exception as exc:
                self.controller.log_outage(exc)
                self.stop.wait(1.0)
                continue
            for cursor, data in entries:
                try:
                    self._handle(data)
                except Exception:  # a reply that could not be sent must not stop the follower
                    logger.exception("handling a control command failed")
                self.cursor = cursor
                if self.reply:
                    _position["cursor"] = cursor

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
            if method in CHILD_COMMANDS:
                _apply_in_child(self.controller, method, args)
            if method in (*CHILD_COMMANDS, "revoke") and cmd.get("reply_to"):
                self.app.broker.mailbox_put(_child_box(cmd), b"1", ttl=60)
            return
        self._answer(cmd, method, args)

    def _answer(self, cmd: dict[str, Any], method: str | None, args: dict[str, Any]) -> None:
        handler = HANDLERS.get(method or "")
        children = self._children() if method in (*CHILD_COMMANDS, "revoke") and cmd.get("reply_to") else 0
        try:
            result = handler(self.controller, args) if handler else {"error": f"unknown command {method!r}"}
        except Exception as exc:
            logger.exception("control command %s failed", method)
            result = {"error": repr(exc)}
        if children:
            self._await_children(cmd, children)
        if cmd.get("reply_to"):
            payload = orjson.dumps({self.controller.options.hostname: result}, default=repr)
            self.app.broker.mailbox_put(cmd["reply_to"], payload, ttl=60)

    def _children(self) -> int:
        """Prefork children that must apply a command before the node's reply says it is done."""
        return len(getattr(self.controller.pool, "children", None) or {})

    def _await_children(self, cmd: dict[str, Any], expected: int, timeout: float = 3.0) -> None:
        """Reply only once every child has applied the command (or after ``timeout``, with a warning)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while seen < expected and (remaining := deadline - time.monotonic()) > 0:
            seen += len(self.app.broker.mailbox_take(_child_box(cmd), timeout=remaining))
        if seen < expected:
            logger.warning("%s: %d of %d pool children confirmed in time", cmd.get("method"), seen, expected)


def _child_box(cmd: dict[str, Any]) -> str:
    return f"children.{cmd.get('ticket')}"


def _apply_in_child(controller: WorkController, method: str, args: dict[str, Any]) -> None:
    """A prefork child's own part of a command; the supervisor answers for the node."""
    try:
        if method in ("pool_grow", "pool_shrink"):
            sign = 1 if method == "pool_grow" else -1
            rl = ratelimit.limiter(controller.app)
            ratelimit.set_share(controller.app, rl.share + sign * int(args.get("n", 1)))
        else:
            HANDLERS[method](controller, args)
    except Exception:
        logger.exception("control command %s failed in a pool child", method)


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


_REQUEST_KEYS = ("id", "name", "args", "kwargs", "type", "hostname", "time_start", "acknowledged", "delivery_info",
                 "worker_pid")


def _request_info(controller: WorkController, entry: dict[str, Any]) -> dict[str, Any]:
    """A running task in Celery's ``active`` shape, whichever pool described it."""
    info = {
        "id": entry.get("id"), "name": entry.get("name"), "args": entry.get("args"), "kwargs": entry.get("kwargs"),
        "type": entry.get("type") or entry.get("name"), "hostname": entry.get("hostname") or controller.options.hostname,
        "time_start": entry.get("time_start") or entry.get("t"), "acknowledged": entry.get("acknowledged", True),
        "delivery_info": entry.get("delivery_info") or {"routing_key": entry.get("queue")},
        "worker_pid": entry.get("worker_pid"),
    }
    return {key: info[key] for key in _REQUEST_KEYS}


@command("active")
def _active(controller: WorkController, args: dict[str, Any]) -> Any:
    return [_request_info(controller, entry) for entry in controller.pool.active()]


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
    rate = args.get("rate_limit") or None
    try:
        ratelimit.parse_rate(rate)
    except ValueError as exc:
        return {"error": str(exc)}
    task.rate_limit = rate
    return {"ok": f"new rate limit set successfully: {rate}" if rate else "rate limit disabled successfully"}


@command("time_limit")
def _time_limit(controller: WorkController, args: dict[str, Any]) -> Any:
    task = controller.app.tasks.get(args.get("task_name", ""))
    if task is None:
        return {"error": f"unknown task {args.get('task_name')!r}"}
    task.soft_time_limit, task.time_limit = args.get("soft"), args.get("hard")
    return {"ok": "time limits set successfully"}


@command("stats")
def _stats(controller: WorkController, args: dict[str, Any]) -> Any:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "pid": os.getpid(), "uptime": round(time.time() - controller.started, 3), "clock": lamport_tick(),
        "pool": {"implementation": controller.options.pool, "max-concurrency": controller.pool.size(),
                 "processes": [controller.options.concurrency]},
        "total": dict(getattr(controller.pool, "totals", None) or {}) or {"processed": controller.pool.processed()},
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
    conf = controller.app.conf.with_defaults() if args.get("with_defaults") else dict(controller.app.conf)
    return {key: _masked(key, value) for key, value in conf.items()}


def _masked(key: str, value: Any) -> Any:
    """A setting as JSON can carry it, with passwords (in URLs, options or secret-named keys) hidden."""
    from .banner import mask_url

    if value and any(word in key.lower() for word in _SECRET_WORDS) and not isinstance(value, bool):
        return "********"
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    if isinstance(value, dict):
        return {str(k): _masked(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(key, v) for v in value]
    return value if isinstance(value, (int, float, bool, type(None))) else repr(value)


@command("query_task")
def _query_task(controller: WorkController, args: dict[str, Any]) -> Any:
    wanted = set(_ids(args.get("ids") or args.get("id")))
    found: dict[str, Any] = {}
    active = [_request_info(controller, entry) for entry in controller.pool.active()]
    for state, requests in (("active", active), ("reserved", controller.pool.reserved())):
        for request in requests:
            if request.get("id") in wanted:
                found.setdefault(request["id"], [state, request])
    return found


@command("report")
def _report(controller: WorkController, args: dict[str, Any]) -> Any:
    options = controller.options
    lines = [
        f"software -> celeriac:{__version__} ({platform.python_implementation()} {platform.python_version()})",
        f"platform -> system:{platform.system()} arch:{platform.machine()}",
        f"node -> {options.hostname} pid:{os.getpid()} pool:{options.pool} concurrency:{controller.pool.size()}",
        f"broker -> {_masked('broker_url', controller.app.conf.broker_url or '')}",
        f"queues -> {', '.join(options.queues)}",
        f"tasks -> {len(controller.app.tasks)} registered, {controller.pool.processed()} processed",
    ]
    return {"ok": "\n".join(lines)}


@command("add_consumer")
def _add_consumer(controller: WorkController, args: dict[str, Any]) -> Any:
    queue = str(args.get("queue") or "")
    if not queue:
        return {"error": "add_consumer needs a queue name"}
    queues = controller.options.queues
    if queue in queues:
        return {"ok": f"already consuming from {queue!r}"}
    queues[:] = [*queues, queue]
    _wake_fetchers(controller)
    return {"ok": f"add consumer {queue}"}


@command("cancel_consumer")
def _cancel_consumer(controller: WorkController, args: dict[str, Any]) -> Any:
    queue = str(args.get("queue") or "")
    queues = controller.options.queues
    if queue not in queues:
        return {"error": f"not consuming from {queue!r}"}
    queues[:] = [q for q in queues if q != queue]
    _wake_fetchers(controller)
    return {"ok": f"no longer consuming from {queue}"}


def _wake_fetchers(controller: WorkController) -> None:
    """A fetch blocked on the old queue list returns, so the next one uses the new list."""
    try:
        controller.app.broker.wakeup()
    except Exception as exc:
        logger.debug("could not wake fetchers: %r", exc)


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
