"""Operator commands: ``call``, ``result``, ``purge``, ``status``, ``inspect``, ``control``, ``demo``."""

from __future__ import annotations

import json
from typing import Any

import click

from .main import get_app


def _json_arg(value: str | None, kind: type, name: str) -> Any:
    if not value:
        return kind()
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{name} must be JSON ({exc.msg})") from exc
    if not isinstance(parsed, kind):
        raise click.BadParameter(f"{name} must be a JSON {'list' if kind is list else 'object'}")
    return parsed


@click.command()
@click.argument("name")
@click.option("-a", "--args", help='Positional arguments as a JSON list, e.g. \'[2, 3]\'.')
@click.option("-k", "--kwargs", help='Keyword arguments as a JSON object, e.g. \'{"x": 1}\'.')
@click.option("--countdown", type=float)
@click.option("--eta", help="ISO-8601 time to run at.")
@click.option("--expires", type=float, help="Seconds until the task expires.")
@click.option("--queue", "-Q")
@click.option("--priority", type=int)
@click.pass_context
def call(ctx: click.Context, name: str, args: str | None, kwargs: str | None, **options: Any) -> None:
    """Send a task by name and print its id."""
    import datetime as dt

    app = get_app(ctx)
    if options.get("eta"):
        options["eta"] = dt.datetime.fromisoformat(options["eta"])
    result = app.send_task(name, _json_arg(args, list, "--args"), _json_arg(kwargs, dict, "--kwargs"),
                           **{k: v for k, v in options.items() if v is not None})
    app.events.flush()
    click.echo(result.id)


@click.command()
@click.argument("task_id")
@click.option("--traceback", is_flag=True, help="Print the traceback of a failed task.")
@click.option("--wait", "wait_seconds", type=float, help="Wait up to this many seconds for the outcome.")
@click.pass_context
def result(ctx: click.Context, task_id: str, traceback: bool, wait_seconds: float | None) -> None:
    """Print a task's state and result."""
    app = get_app(ctx)
    res = app.AsyncResult(task_id)
    if wait_seconds:
        try:
            res.get(timeout=wait_seconds, propagate=False)
        except Exception as exc:
            click.echo(f"not ready: {exc}", err=True)
    if not res.is_known():
        click.echo(f"{task_id}: unknown (no task with this id was sent, or its result expired)")
        ctx.exit(1)
    if traceback and res.traceback:
        click.echo(res.traceback)
    else:
        click.echo(f"{res.state}: {res.result!r}")


@click.command()
@click.option("-Q", "--queues", help="Comma-separated queues (default: the default queue).")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(ctx: click.Context, queues: str | None, force: bool) -> None:
    """Delete every waiting message from the queues."""
    app = get_app(ctx)
    names = [q for q in (queues or app.conf.task_default_queue).split(",") if q]
    if not force:
        click.confirm(f"Delete all waiting messages from {', '.join(names)}?", abort=True)
    count = sum(app.broker.purge(q) for q in names)
    click.echo(f"Purged {count} message{'s' if count != 1 else ''} from {len(names)} known task queue{'s' if len(names) != 1 else ''}.")


@click.command()
@click.option("-t", "--timeout", type=float, default=1.0, show_default=True)
@click.pass_context
def status(ctx: click.Context, timeout: float) -> None:
    """List workers that answer a ping."""
    app = get_app(ctx)
    replies = app.control.ping(timeout=timeout)
    for reply in replies:
        for node, answer in reply.items():
            click.echo(f"->  {node}: {'OK' if answer.get('ok') == 'pong' else answer}")
    click.echo(f"\n{len(replies)} node{'s' if len(replies) != 1 else ''} online.")
    if not replies:
        ctx.exit(1)


INSPECT_METHODS = ("active", "reserved", "scheduled", "registered", "stats", "revoked", "active_queues", "query_task",
                   "conf", "ping", "report")


@click.command()
@click.argument("method", type=click.Choice(INSPECT_METHODS))
@click.argument("arguments", nargs=-1)
@click.option("-t", "--timeout", type=float, default=1.0, show_default=True)
@click.option("-d", "--destination", help="Comma-separated node names.")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def inspect(ctx: click.Context, method: str, arguments: tuple[str, ...], timeout: float, destination: str | None,
            as_json: bool) -> None:
    """Ask workers what they are doing (``inspect active``)."""
    app = get_app(ctx)
    dest = destination.split(",") if destination else None
    insp = app.control.inspect(destination=dest, timeout=timeout)
    call_args: dict[str, Any] = {"ids": list(arguments)} if method == "query_task" else {}
    replies = insp._request(method, **call_args)
    _print_replies(replies, as_json)
    if not replies:
        ctx.exit(1)


CONTROL_METHODS = ("revoke", "terminate", "shutdown", "pool_grow", "pool_shrink", "rate_limit", "time_limit",
                   "add_consumer", "cancel_consumer", "enable_events", "disable_events", "heartbeat")


@click.command()
@click.argument("method", type=click.Choice(CONTROL_METHODS))
@click.argument("arguments", nargs=-1)
@click.option("-t", "--timeout", type=float, default=1.0, show_default=True)
@click.option("-d", "--destination", help="Comma-separated node names.")
@click.option("--terminate", is_flag=True, help="revoke: also stop the task if it is running.")
@click.option("--signal", "signal_name", default="SIGTERM", show_default=True, help="revoke --terminate: the signal.")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def control(ctx: click.Context, method: str, arguments: tuple[str, ...], timeout: float, destination: str | None,
            terminate: bool, signal_name: str, as_json: bool) -> None:
    """Steer workers (``control revoke ID``, ``control pool_grow 2``)."""
    app = get_app(ctx)
    dest = destination.split(",") if destination else None
    replies = _control(app, method, arguments, dest, timeout, terminate, signal_name)
    _print_replies({k: v for r in replies for k, v in r.items()} or None, as_json)


def _control(app: Any, method: str, arguments: tuple[str, ...], dest: list[str] | None, timeout: float,
             terminate: bool, signal_name: str) -> list[dict[str, Any]]:
    if method in ("revoke", "terminate"):
        if not arguments:
            raise click.UsageError(f"{method} needs at least one task id")
        return app.control.revoke(list(arguments), destination=dest, terminate=terminate or method == "terminate",
                                  signal=signal_name, reply=True, timeout=timeout)
    if method in ("pool_grow", "pool_shrink"):
        n = int(arguments[0]) if arguments else 1
        return app.control.broadcast(method, {"n": n}, destination=dest, reply=True, timeout=timeout)
    if method == "rate_limit":
        if len(arguments) != 2:
            raise click.UsageError("rate_limit TASK_NAME RATE (e.g. 10/m)")
        return app.control.broadcast(method, {"task_name": arguments[0], "rate_limit": arguments[1]}, destination=dest,
                                     reply=True, timeout=timeout)
    if method == "time_limit":
        if len(arguments) < 2:
            raise click.UsageError("time_limit TASK_NAME SOFT [HARD]")
        soft = float(arguments[1])
        hard = float(arguments[2]) if len(arguments) > 2 else None
        return app.control.broadcast(method, {"task_name": arguments[0], "soft": soft, "hard": hard}, destination=dest,
                                     reply=True, timeout=timeout)
    if method in ("add_consumer", "cancel_consumer"):
        if not arguments:
            raise click.UsageError(f"{method} QUEUE")
        return app.control.broadcast(method, {"queue": arguments[0]}, destination=dest, reply=True, timeout=timeout)
    return app.control.broadcast(method, {}, destination=dest, reply=True, timeout=timeout)


def _print_replies(replies: dict[str, Any] | None, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(replies or {}, indent=2, default=repr))
        return
    if not replies:
        click.echo("Error: No nodes replied within time constraint.", err=True)
        return
    for node, answer in replies.items():
        click.echo(f"->  {node}: OK")
        if isinstance(answer, list):
            for item in answer or ["- empty -"]:
                click.echo(f"    * {item}")
        else:
            click.echo(f"    {json.dumps(answer, default=repr)}")
    click.echo(f"\n{len(replies)} node{'s' if len(replies) != 1 else ''} online.")


def register(group: click.Group) -> None:
    from .demo import demo

    for command in (call, result, purge, status, inspect, control, demo):
        group.add_command(command)
