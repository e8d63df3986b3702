"""``celeriac demo``: a worker, the dashboard and a steady stream of example tasks, no server needed."""

from __future__ import annotations

import click


@click.command()
@click.option("--port", default=5555, show_default=True, help="Dashboard port.")
@click.option("--duration", type=float, default=0, help="Stop after this many seconds (0 = until Ctrl-C).")
@click.option("--db", default="sqlite:///celeriac-demo.sqlite3", show_default=True, help="Embedded broker file.")
def demo(port: int, duration: float, db: str) -> None:
    """Run the demo on the embedded SQLite broker."""
    from ..demo import run_demo

    run_demo(port=port, duration=duration, url=db)
