"""``celeriac events`` in a real terminal (tmux) and ``events --dump`` as a plain process."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from tests.test_control_support import project
from tests.workers import worker_env, worker_process

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def screen_until(session: str, check, timeout: float = 30.0) -> str:
    """Poll the terminal until ``check(text)`` holds: a screen has no event to wait on."""
    deadline = time.monotonic() + timeout
    while True:
        text = tmux("capture-pane", "-p", "-t", session)
        if check(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"the screen never matched:\n{text}")
        time.sleep(0.2)


@pytest.fixture
def session(tmp_path):
    name = f"celeriac-events-{uuid.uuid4().hex[:8]}"
    yield name
    tmux("kill-session", "-t", name)


def test_the_live_view_shows_workers_and_tasks_and_quits_on_q(tmp_path, session):
    env, client = project(tmp_path)
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in worker_env(tmp_path, env).items() if k in (*env, "PYTHONPATH"))
    command = f"cd {shlex.quote(str(tmp_path))} && {exports} {shlex.quote(sys.executable)} -m celeriac -A tasks events --freq 0.2"
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "threads", "-c", "2", "-n", "tui@%h"]) as worker:
        name = worker.wait_for_line("ready.").split()[-2]
        tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "48", command)
        screen_until(session, lambda text: name in text and "ONLINE" in text)
        done = client.send_task("tasks.add", (20, 22))
        failed = client.send_task("tasks.boom")
        assert done.get(timeout=30) == 42
        failed.get(timeout=30, propagate=False)
        text = screen_until(session, lambda text: done.id in text and failed.id in text and "ValueError" in text)
        assert any(done.id in line and "SUCCESS" in line and "tasks.add" in line for line in text.splitlines())
        assert any(failed.id in line and "FAILURE" in line for line in text.splitlines())
    screen_until(session, lambda text: "OFFLINE" in text)
    tmux("send-keys", "-t", session, "q")
    deadline = time.monotonic() + 15
    while session in tmux("list-sessions", "-F", "#{session_name}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session not in tmux("list-sessions", "-F", "#{session_name}")


def test_dump_prints_each_event_as_it_arrives(tmp_path):
    env, client = project(tmp_path)
    with worker_process("tasks", cwd=tmp_path, env=env, args=["-P", "threads", "-c", "1", "-n", "dump@%h"]) as worker:
        worker.wait_for_line("ready.")
        dump = subprocess.Popen([sys.executable, "-m", "celeriac", "-A", "tasks", "events", "--dump"], cwd=tmp_path,
                                env=worker_env(tmp_path, env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert "worker-heartbeat" in dump.stdout.readline()  # the dump asks workers for one as it starts
            result = client.send_task("tasks.add", (1, 2))
            assert result.get(timeout=30) == 3
            lines = []
            while not any("task-succeeded" in line for line in lines):
                lines.append(dump.stdout.readline())
        finally:
            dump.terminate()
            dump.wait(10)
    mine = [line for line in lines if result.id in line]
    assert [line.split()[3] for line in mine if "task-sent" not in line] == ["task-received", "task-started", "task-succeeded"]
    assert any('result="3"' in line for line in mine)
    assert all(line.split()[2] == "dump@" + line.split()[2].split("@")[1] for line in mine if "task-sent" not in line)
