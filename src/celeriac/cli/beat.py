"""``celeriac -A proj beat``: run the periodic task scheduler.

Any number of these may run at once; one leads and the others stand by (see ``celeriac.beat``).
The main command group calls :func:`register` and passes the app in ``ctx.obj["app"]``.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click

from ..beat import Beat, run_embedded

LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"


@click.command("beat", help="Send periodic tasks on schedule (one leader among any number of beats).")
@click.option("-l", "--loglevel", default="WARNING", show_default=True, help="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
@click.option("-s", "--schedule", "schedule_file", default=None,
              help="Accepted for Celery compatibility; run state lives in the result backend.")
@click.option("--max-interval", type=float, default=None, help="Longest sleep between checks, in seconds.")
@click.pass_context
def beat(ctx: click.Context, loglevel: str, schedule_file: str | None, max_interval: float | None) -> None:
    app = _app(ctx)
    level = logging.getLevelName(loglevel.upper())
    if not isinstance(level, int):
        raise click.BadParameter(f"unknown log level {loglevel!r}", param_hint="--loglevel")
    logging.basicConfig(level=level, format=LOG_FORMAT)
    scheduler = Beat(app, max_interval=max_interval)
    stop = threading.Event()
    _stop_on_signals(stop)
    click.echo(f"celeriac beat: {len(scheduler.entries)} entries, lease {scheduler.lease_seconds:g}s, owner {scheduler.owner}")
    scheduler.run(stop)


def _app(ctx: click.Context) -> Any:
    """The app the main group resolved from ``-A`` (or one passed in ``obj``)."""
    obj = ctx.find_root().obj or {}
    if "app" in obj:
        return obj["app"]
    if "app_spec" in obj:
        from .main import get_app

        return get_app(ctx)
    raise click.UsageError("no app: pass -A/--app")


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: Any) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def register(group: click.Group) -> None:
    """Add ``beat`` to the main command group."""
    group.add_command(beat)


__all__ = ["beat", "register", "run_embedded"]
