"""Jinja2 set-up: autoescaping everywhere, and the filters the templates use."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import jinja2
import orjson
from starlette.templating import Jinja2Templates

from .options import Options

STATE_CLASS = {"SUCCESS": "ok", "FAILURE": "bad", "REVOKED": "muted", "REJECTED": "bad", "RETRY": "warn",
               "STARTED": "run", "RECEIVED": "wait", "PENDING": "wait"}


def when(ts: float | None) -> str:
    if not ts or isinstance(ts, jinja2.Undefined):
        return ""
    return dt.datetime.fromtimestamp(float(ts), dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def clock(ts: float | None, now: float | None = None) -> str:
    """Short time for tables: the time of day today, the date and minute otherwise (UTC)."""
    if not ts or isinstance(ts, jinja2.Undefined):
        return ""
    moment = dt.datetime.fromtimestamp(float(ts), dt.UTC)
    today = dt.datetime.fromtimestamp(now or time.time(), dt.UTC).date()
    return moment.strftime("%H:%M:%S") if moment.date() == today else moment.strftime("%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    if seconds is None or isinstance(seconds, jinja2.Undefined):
        return ""
    s = float(seconds)
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s" if s < 120 else f"{s / 60:.1f} min"


def progress(raw: str | None) -> dict[str, Any] | None:
    """``{"current", "total"}`` meta as a percentage, or None when it is not a progress meta."""
    try:
        meta: Any = orjson.loads(raw) if raw else {}
        current, total = float(meta["current"]), float(meta["total"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    pct = 0 if total <= 0 else max(0, min(100, round(100 * current / total)))
    return {"current": meta["current"], "total": meta["total"], "pct": pct}


def pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=repr).decode()


def setup_templates(directory: Path, opts: Options) -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(directory)), autoescape=True)
    templates = Jinja2Templates(env=env)
    env.filters.update(when=when, clock=clock, duration=duration, progress=progress, pretty=pretty,
                       state_class=lambda s: STATE_CLASS.get(s or "", "run"))
    env.globals.update(read_only=opts.read_only)
    return templates
