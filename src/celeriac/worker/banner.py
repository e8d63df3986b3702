"""The start banner, with broker and backend passwords masked."""

from __future__ import annotations

import datetime as dt
import platform
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import __version__


def mask_url(url: str) -> str:
    """Hide the password in a URL (``redis://:secret@host`` -> ``redis://:**@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:**@{host}{port}", parts.path, parts.query, parts.fragment))


def banner(controller: Any) -> str:
    app, options = controller.app, controller.options
    tasks = sorted(name for name in app.tasks if not name.startswith("celery."))
    pool = options.pool
    concurrency = f"{options.concurrency} ({pool})"
    if options.autoscale:
        concurrency = f"{{min={options.autoscale[1]}, max={options.autoscale[0]}}} ({pool})"
    lines = [
        f" -------------- {options.hostname} v{__version__}",
        f"--- ***** ----- {platform.platform()} {dt.datetime.now():%Y-%m-%d %H:%M:%S}",
        "-- ******* ---- ",
        "- *** --- * --- [config]",
        f"- ** ---------- .> app:         {app.main or '__main__'}:{id(app):#x}",
        f"- ** ---------- .> transport:   {mask_url(app.broker_url)}",
        f"- ** ---------- .> results:     {mask_url(app.result_backend_url)}",
        f"- *** --- * --- .> concurrency: {concurrency}",
        "-- ******* ---- .> task events: ON",
        "--- ***** ----- ",
        " -------------- [queues]",
        *(f"                .> {q:<12} exchange={q}(direct) key={q}" for q in options.queues),
        "",
        "[tasks]",
        *(f"  . {name}" for name in tasks),
        "",
    ]
    return "\n".join(lines)
