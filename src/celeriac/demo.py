"""``celeriac demo``: the embedded broker, a worker, the dashboard and a stream of example tasks."""

from __future__ import annotations

import importlib.util
import itertools
import os
import signal
import subprocess
import sys
import time
from typing import Any

DEMO_APP = "celeriac.demo_tasks"


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "celeriac", "-A", DEMO_APP, *args], env=env)


def _send_round(n: int) -> list[tuple[str, Any]]:
    from . import demo_tasks as t

    first = n == 1
    sent = [("add(2, 3)", t.add.delay(2, 3)), ("fetch_page", t.fetch_page.delay(f"https://example.org/{n}"))]
    if first or n % 3 == 0:
        sent.append(("make_report", t.make_report.delay(f"customer-{n}")))
    if first or n % 5 == 0:
        sent.append(("call_flaky_api (retries)", t.call_flaky_api.delay(2)))
        sent.append(("divide(1, 0) (fails)", t.divide.delay(1, 0)))
    if first or n % 7 == 0:
        sent.append(("add in 5s (countdown)", t.add.apply_async((n, n), countdown=5)))
        sent.append(("resize_video (progress)", t.resize_video.delay(50)))
    return sent


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_demo(port: int = 5555, duration: float = 0, url: str = "sqlite:///celeriac-demo.sqlite3") -> None:
    """Run until Ctrl-C, SIGTERM or a closed terminal (or ``duration`` seconds), then stop everything cleanly.

    Without the handlers, SIGTERM or SIGHUP would end this process at once and leave the worker and
    the dashboard running (and port 5555 taken) behind it.
    """
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    env = dict(os.environ, CELERIAC_BROKER_URL=url, CELERIAC_RESULT_BACKEND=url, PYTHONUNBUFFERED="1")
    os.environ.update(CELERIAC_BROKER_URL=url, CELERIAC_RESULT_BACKEND=url)
    procs = [_start(["worker", "-l", "info", "-P", "prefork", "-c", "2"], env)]
    if importlib.util.find_spec("celeriac.cli.dashboard") is not None:
        procs.append(_start(["flower", "--port", str(port)], env))
        print(f"\n  Dashboard: http://127.0.0.1:{port}\n", flush=True)  # noqa: T201
    print(f"  Broker and results: {url}\n  Stop with Ctrl-C.\n", flush=True)  # noqa: T201
    deadline = time.monotonic() + duration if duration else None
    try:
        for n in itertools.count(1):
            for label, result in _send_round(n):
                print(f"  sent {label:<28} id={result.id}", flush=True)  # noqa: T201
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(2.0)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
