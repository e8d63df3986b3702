"""``celeriac -A proj worker``: Celery's options, celeriac's runtime."""

from __future__ import annotations

import sys

import click

from ..worker.controller import WorkController
from ..worker.options import POOLS, WorkerOptions


@click.command(context_settings={"ignore_unknown_options": False})
@click.option("-l", "--loglevel", default="INFO", show_default=True, help="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
@click.option("-c", "--concurrency", type=int, help="Processes, threads or coroutines (default: CPU count; 100 for async).")
@click.option("-P", "--pool", type=click.Choice([*POOLS, "gevent", "eventlet"]), help="Pool implementation.")
@click.option("-Q", "--queues", multiple=True, help="Queues to consume, comma separated.")
@click.option("-n", "--hostname", help="Node name (%h, %n, %d expand).")
@click.option("--max-tasks-per-child", type=int, help="Replace a child after this many tasks.")
@click.option("--max-memory-per-child", type=int, help="Replace a child above this resident memory (KiB).")
@click.option("--autoscale", help="MAX,MIN pool size: grow with queue depth, shrink when idle.")
@click.option("--prefetch-multiplier", type=int, help="Messages a slot may hold (default: the worker_prefetch_multiplier setting, 4).")
@click.option("-E", "--task-events", is_flag=True, help="Accepted for compatibility: events are always on.")
@click.option("-B", "--beat", is_flag=True, help="Also run the beat scheduler in this worker.")
@click.option("-O", "optimization", help="Accepted for compatibility (fair scheduling is the only mode).")
@click.option("--without-heartbeat", is_flag=True, help="Accepted for compatibility.")
@click.option("--without-gossip", is_flag=True, help="Accepted for compatibility.")
@click.option("--without-mingle", is_flag=True, help="Accepted for compatibility.")
@click.pass_context
def worker(ctx: click.Context, **flags: object) -> None:
    """Start a worker."""
    from .main import get_app

    app = get_app(ctx)
    options = WorkerOptions.resolve(app.conf, **flags)
    code = WorkController(app, options).start()
    sys.exit(code)


def register(group: click.Group) -> None:
    group.add_command(worker)
