"""Task module loaded by both workers in the benchmarks: the same tasks under the same names.

``BENCH_LIB`` picks the library (``celeriac`` or ``celery``); ``BENCH_BROKER``, ``BENCH_BACKEND`` and
``BENCH_QUEUE`` say where the tasks go. Celery runs with its defaults except where
``BENCH_ACKS_LATE=1`` asks for ``task_acks_late``.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time

_lib = importlib.import_module(os.environ.get("BENCH_LIB", "celeriac"))

app = _lib.Celery("bench_app", broker=os.environ["BENCH_BROKER"], backend=os.environ["BENCH_BACKEND"])
app.conf.task_default_queue = os.environ.get("BENCH_QUEUE", "celery")
app.conf.broker_transport_options = {"queue_prefix": os.environ["BENCH_PREFIX"]} if os.environ.get("BENCH_PREFIX") else {}
if os.environ.get("BENCH_ACKS_LATE") == "1":
    app.conf.task_acks_late = True


@app.task(name="bench.noop")
def noop() -> None:
    """Nothing: what is left is the cost of moving a task."""


@app.task(name="bench.sleep")
def sleep(seconds: float) -> None:
    """Blocking I/O stand-in."""
    time.sleep(seconds)


if _lib.__name__ == "celeriac":

    @app.task(name="bench.asleep")
    async def asleep(seconds: float) -> None:
        """Non-blocking I/O stand-in (``-P async`` runs many at once)."""
        await asyncio.sleep(seconds)
