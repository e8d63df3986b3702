"""The worker on the in-process memory broker (threads, solo and async pools in this process)."""

from __future__ import annotations

import asyncio
import time

import pytest

from celeriac import Celery
from celeriac.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celeriac.testing import start_worker


@pytest.fixture
def app(memory_url):
    app = Celery("mem", broker=memory_url, backend=memory_url)

    @app.task
    def add(x, y):
        return x + y

    @app.task
    async def aadd(x, y):
        await asyncio.sleep(0.01)
        return x + y

    @app.task(soft_time_limit=0.3)
    async def soft():
        try:
            await asyncio.sleep(5)
        except SoftTimeLimitExceeded:
            return "caught"

    @app.task(time_limit=0.3)
    def spin():
        end = time.time() + 5
        while time.time() < end:
            pass

    @app.task(bind=True, max_retries=2)
    def flaky(self):
        if self.request.retries < 2:
            raise self.retry(countdown=0.05)
        return self.request.retries

    return app


@pytest.mark.parametrize("pool", ["threads", "solo", "async"])
def test_memory_broker_runs_sync_and_async_tasks(app, pool):
    with start_worker(app, pool=pool, concurrency=2):
        assert app.tasks["tests.test_worker_memory.add"].delay(1, 2).get(timeout=10) == 3
        assert app.tasks["tests.test_worker_memory.aadd"].delay(3, 4).get(timeout=10) == 7
        assert app.tasks["tests.test_worker_memory.flaky"].delay().get(timeout=10) == 2


@pytest.mark.parametrize("pool", ["threads", "async"])
def test_soft_limit_on_the_memory_broker(app, pool):
    with start_worker(app, pool=pool):
        assert app.tasks["tests.test_worker_memory.soft"].delay().get(timeout=10) == "caught"


def test_hard_limit_stops_a_busy_thread(app):
    with start_worker(app, pool="threads"):
        with pytest.raises(TimeLimitExceeded):
            app.tasks["tests.test_worker_memory.spin"].delay().get(timeout=10)


def test_many_async_tasks_run_concurrently_in_one_process(app):
    @app.task
    async def nap():
        await asyncio.sleep(0.2)
        return 1

    with start_worker(app, pool="async", concurrency=100):
        start = time.monotonic()
        results = [nap.delay() for _ in range(100)]
        assert sum(r.get(timeout=20) for r in results) == 100
        assert time.monotonic() - start < 5  # 100 naps of 0.2 s did not run one after another
