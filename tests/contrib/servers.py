"""Run an example as a user would: copy it out of the repo, start its web server and its worker.

    with example_site("fastapi_router", env) as site:
        site.start_web(["-m", "uvicorn", "api:app", "--port", str(site.port)], ready="Uvicorn running")
        with site.worker("mycelery.celery_app"):
            site.get("/celery/run-task/Ada")
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.workers import WorkerProcess, worker_env, worker_process

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TASK_SECONDS = "3"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sqlite_env(directory: Path) -> dict[str, str]:
    """The SQLite run of a tutorial whose code names Redis: both URLs overridden to one file."""
    url = f"sqlite:///{directory / 'celeriac.sqlite3'}"
    return {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url}


def redis_env() -> dict[str, str]:
    """The Redis run: a database of its own so other suites' workers never take these tasks."""
    from tests.conftest import require_service

    require_service("redis")
    url = "redis://127.0.0.1:6379/11"
    return {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url}


class Site:
    """A copied example with a web server on a free port and the worker started on demand."""

    def __init__(self, root: Path, env: Mapping[str, str]) -> None:
        self.root = root
        self.env = {"EXAMPLE_TASK_SECONDS": TASK_SECONDS, **env}
        self.port = free_port()
        self.web: WorkerProcess | None = None
        self.others: list[WorkerProcess] = []

    def start(self, args: Sequence[str], ready: str, env: Mapping[str, str] | None = None) -> WorkerProcess:
        """Start ``python <args>`` in the example's folder and wait for its ``ready`` line."""
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=self.root, env=worker_env(self.root, {**self.env, **(env or {})}),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        started = WorkerProcess(proc)
        self.others.append(started)
        started.wait_for_line(ready, timeout=60)
        return started

    def start_web(self, args: Sequence[str], ready: str, env: Mapping[str, str] | None = None) -> WorkerProcess:
        self.web = self.start(args, ready, env)
        return self.web

    @contextmanager
    def worker(self, app: str, *args: str) -> Iterator[WorkerProcess]:
        with worker_process(app, cwd=self.root, env=self.env, args=["-c", "1", *args], ready_timeout=60) as w:
            yield w

    def request(self, method: str, path: str) -> tuple[int, Any]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())

    def get(self, path: str) -> Any:
        return self.request("GET", path)[1]

    def stop(self) -> None:
        for started in self.others:
            if started.proc.poll() is None:
                os.killpg(started.proc.pid, signal.SIGTERM)
                try:
                    started.proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(started.proc.pid, signal.SIGKILL)


@contextmanager
def example_site(name: str, tmp_path: Path, env: Mapping[str, str]) -> Iterator[Site]:
    """Copy ``examples/<name>`` to ``tmp_path`` (so runs leave nothing in the repo) and clean up after."""
    root = tmp_path / name
    shutil.copytree(EXAMPLES / name, root, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3*"))
    site = Site(root, env)
    try:
        yield site
    except BaseException:
        if site.web is not None:
            print(f"--- web server output ---\n{site.web.output[-6000:]}")
        raise
    finally:
        site.stop()


def tutorial_flow(site: Site, worker: WorkerProcess, start_path: str, status_path: str, method: str = "GET") -> dict[str, Any]:
    """What the tutorials show: the id comes back while the task sleeps; PENDING, then SUCCESS.

    Returns the final status body for the caller to check the result.
    """
    started = time.monotonic()
    code, body = site.request(method, start_path)
    answered_in = time.monotonic() - started
    task_id = body["task_id"]
    assert code in (200, 202) and task_id
    assert answered_in < float(TASK_SECONDS), f"the request waited for the task ({answered_in:.1f}s)"
    worker.wait_for_line(f"[{task_id}] received")
    pending = site.get(status_path.format(task_id=task_id))
    assert pending["status"] == "PENDING", pending
    worker.wait_for_line(f"[{task_id}] succeeded")
    done = status_once_settled(site, status_path.format(task_id=task_id))
    assert done["status"] == "SUCCESS", done
    return done


def status_once_settled(site: Site, path: str, timeout: float = 5.0) -> dict[str, Any]:
    """The status after the worker's batched settle lands (it follows the log line by milliseconds)."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = site.get(path)
        if body.get("status") not in ("PENDING", "STARTED") or time.monotonic() > deadline:
            return body
        time.sleep(0.02)
