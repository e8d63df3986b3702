"""Testing helpers: a worker running in threads of the test process (any broker, memory included).

    with start_worker(app, pool="threads", concurrency=2):
        assert add.delay(2, 2).get(timeout=5) == 4
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .worker.controller import WorkController
from .worker.options import WorkerOptions

if TYPE_CHECKING:
    from .app.base import Celery


@contextmanager
def start_worker(app: Celery, pool: str = "threads", concurrency: int = 1, queues: list[str] | None = None,
                 hostname: str = "embedded@%h", **flags: Any) -> Iterator[WorkController]:
    """Run a worker in a background thread of this process until the block ends (warm shutdown)."""
    if pool == "prefork":
        raise ValueError("start_worker runs in threads of this process; use pool='threads', 'solo' or 'async'")
    options = WorkerOptions.resolve(app.conf, pool=pool, concurrency=concurrency, queues=queues, hostname=hostname, **flags)
    controller = WorkController(app, options, embedded=True)
    thread = threading.Thread(target=controller.start, name="celeriac-embedded-worker", daemon=True)
    thread.start()
    try:
        while controller.pool is None and thread.is_alive():
            thread.join(0.01)
        yield controller
    finally:
        controller.shutdown()
        thread.join(30)
