"""``celeriac demo`` runs a worker (and the dashboard) on the embedded broker and its tasks complete."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys

from celeriac import Celery


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_sends_example_tasks_that_a_worker_completes(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    run = subprocess.run([sys.executable, "-m", "celeriac", "demo", "--duration", "6", "--port", str(_free_port()), "--db", url],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "sent add(2, 3)" in run.stdout and "divide(1, 0) (fails)" in run.stdout
    app = Celery("check", broker=url)
    states = {}
    for line in run.stdout.splitlines():
        if line.strip().startswith("sent "):
            label, _, task_id = line.strip()[5:].rpartition(" id=")
            states.setdefault(label.strip(), []).append(app.AsyncResult(task_id))
    assert {r.get(timeout=10) for r in states["add(2, 3)"] if r.ready()} == {5}
    assert any(r.state == "FAILURE" and isinstance(r.result, ZeroDivisionError) for r in states["divide(1, 0) (fails)"])
    assert all(r.state == "SUCCESS" for r in states["fetch_page"][:1])
    flaky = states["call_flaky_api (retries)"][0]
    assert flaky.state in ("RETRY", "SUCCESS")


def test_a_demo_stopped_with_sigterm_stops_its_worker_and_dashboard(tmp_path):
    import psutil

    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    demo = subprocess.Popen([sys.executable, "-m", "celeriac", "demo", "--port", str(_free_port()), "--db", url],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    started: list[psutil.Process] = []
    try:
        for line in demo.stdout:  # the first round is sent once the worker and the dashboard are started
            if line.strip().startswith("sent "):
                break
        started = psutil.Process(demo.pid).children(recursive=True)
        assert len(started) >= 2
        demo.terminate()
        assert demo.wait(60) == 0
        gone, alive = psutil.wait_procs(started, timeout=30)
        assert alive == []
    finally:
        for proc in started:  # left behind only if the test failed
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        demo.kill()
        demo.wait()
