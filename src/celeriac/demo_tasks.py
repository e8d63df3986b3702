"""Example tasks for ``celeriac demo``: successes, a failure, retries, a countdown, async, progress."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from celeriac import Celery

app = Celery("demo")


@app.task
def add(x: int, y: int) -> int:
    """A quick task."""
    return x + y


@app.task
def make_report(name: str) -> str:
    """A slow task, like generating a PDF."""
    time.sleep(random.uniform(0.5, 2.0))
    return f"report for {name} ready"


@app.task(bind=True, max_retries=3)
def call_flaky_api(self: Any, attempt_ok: int) -> str:
    """Fails until its retry number reaches ``attempt_ok``, then succeeds."""
    retries = self.request.retries
    if retries < attempt_ok:
        raise self.retry(countdown=1, exc=ConnectionError("the API timed out"))
    return f"API answered after {retries} retries"


@app.task
def divide(x: float, y: float) -> float:
    """Fails with ZeroDivisionError when ``y`` is 0."""
    return x / y


@app.task
async def fetch_page(url: str) -> dict[str, object]:
    """An ``async def`` task: many of these run at once in one process."""
    await asyncio.sleep(random.uniform(0.05, 0.3))
    return {"url": url, "status": 200}


@app.task(bind=True)
def resize_video(self: Any, frames: int) -> str:
    """Reports progress with ``update_state`` while it works."""
    for done in range(0, frames + 1, max(1, frames // 10)):
        self.update_state(state="PROGRESS", meta={"current": done, "total": frames})
        time.sleep(0.2)
    return f"{frames} frames resized"
