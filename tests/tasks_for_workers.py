"""Task module written into each worker test's directory (as ``wtasks.py``)."""

SOURCE = r'''
import asyncio
import os
import time
from pathlib import Path

from celeriac import Celery
from celeriac.exceptions import SoftTimeLimitExceeded

app = Celery("wtasks")
app.conf.broker_transport_options = {"visibility_timeout": float(os.environ.get("VISIBILITY", "30"))}
app.conf.task_max_deliveries = int(os.environ.get("MAX_DELIVERIES", "5"))
if os.environ.get("GLOBAL_SOFT_LIMIT"):
    app.conf.task_soft_time_limit = float(os.environ["GLOBAL_SOFT_LIMIT"])
if os.environ.get("GLOBAL_HARD_LIMIT"):
    app.conf.task_time_limit = float(os.environ["GLOBAL_HARD_LIMIT"])
MARKS = Path(os.environ.get("MARKS_DIR", "."))


def mark(name):
    """Append a line per run, so a test can count how often a task body ran."""
    with open(MARKS / f"{name}.runs", "a") as f:
        f.write(f"{os.getpid()}\n")


@app.task
def add(x, y):
    print(f"adding {x} and {y}")
    return x + y


@app.task
async def aadd(x, y):
    await asyncio.sleep(0.01)
    return x + y


@app.task
def pid():
    return os.getpid()


@app.task
def slow(name, seconds):
    mark(name)
    print(f"started {name}")
    time.sleep(seconds)
    return name


@app.task
async def aslow(name, seconds):
    mark(name)
    await asyncio.sleep(seconds)
    return name


@app.task
def unlimited_sleep():
    try:
        time.sleep(5)
    except SoftTimeLimitExceeded:
        return "soft limit caught"
    return "no limit"


@app.task(soft_time_limit=0.5)
def soft_sync():
    try:
        time.sleep(5)
    except SoftTimeLimitExceeded:
        return "soft limit caught"
    return "no limit"


@app.task(soft_time_limit=0.5)
async def soft_async():
    try:
        await asyncio.sleep(5)
    except SoftTimeLimitExceeded:
        return "soft limit caught"
    return "no limit"


@app.task(time_limit=0.5)
def hard_sync():
    end = time.time() + 10
    while time.time() < end:
        time.sleep(0.01)
    return "finished"


@app.task(time_limit=0.5)
async def hard_async():
    await asyncio.sleep(10)
    return "finished"


@app.task
def suicide():
    mark("suicide")
    os.kill(os.getpid(), 9)


@app.task(acks_late=False)
def suicide_at_most_once():
    mark("suicide_amo")
    os.kill(os.getpid(), 9)


@app.task(bind=True, max_retries=3)
def retry_twice(self):
    if self.request.retries < 2:
        raise self.retry(countdown=1, exc=ValueError("not yet"))
    return self.request.retries
'''
