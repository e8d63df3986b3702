"""``celeriac -A proj events``: watch workers and tasks live, or ``--dump`` every event as it arrives."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from .main import get_app


@click.command()
@click.option("-d", "--dump", is_flag=True, help="Print every event as it arrives (one line each) instead of the view.")
@click.option("-F", "--freq", "--frequency", "freq", type=float, default=1.0, show_default=True,
              help="Seconds between screen refreshes.")
@click.option("--json", "as_json", is_flag=True, help="With --dump: print each event as one JSON object.")
@click.option("--from-start", is_flag=True, help="Begin with the oldest retained event instead of new ones only.")
@click.option("--limit", type=int, help="With --dump: exit after this many events.")
@click.pass_context
def events(ctx: click.Context, dump: bool, freq: float, as_json: bool, from_start: bool, limit: int | None) -> None:
    """Live view of workers and tasks (``q`` quits), or a dump of raw events."""
    app = get_app(ctx)
    receiver = app.events.Receiver(from_now=not from_start)
    if dump:
        receiver.handlers["*"] = lambda event: click.echo(dump_line(event, as_json))
        try:
            receiver.capture(limit=limit)
        except KeyboardInterrupt:
            pass
        return
    from .events_tui import run_view

    run_view(app, receiver, freq=max(0.1, freq))


def dump_line(event: dict[str, Any], as_json: bool = False) -> str:
    """One event as one line: ``time hostname type key=value ...``, or JSON."""
    fields = {k: v for k, v in event.items() if not k.startswith("_")}
    if as_json:
        return json.dumps(fields, default=repr, sort_keys=True)
    when = dt.datetime.fromtimestamp(float(fields.pop("timestamp", 0) or 0), dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    host, kind = fields.pop("hostname", "?"), fields.pop("type", "?")
    for noise in ("utcoffset", "pid", "clock"):
        fields.pop(noise, None)
    rest = " ".join(f"{k}={json.dumps(v, default=repr)}" for k, v in sorted(fields.items()))
    return f"{when} {host} {kind} {rest}".rstrip()


def register(group: click.Group) -> None:
    group.add_command(events)
