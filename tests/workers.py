"""Real worker processes for tests: start ``celeriac -A module worker`` and wait for ``ready.``.

    with worker_process("tasks", cwd=tmp_path, env={"CELERIAC_BROKER_URL": url}, args=["-P", "prefork", "-c", "2"]) as w:
        ...
        w.wait_for_line("succeeded")

Tests write their task module into ``tmp_path``; ``cwd`` is put on PYTHONPATH.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


class WorkerProcess:
    """A running worker and everything it has printed so far."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for_line(self, needle: str, timeout: float = 30.0, count: int = 1) -> str:
        """Block until ``needle`` has appeared in ``count`` lines; return the last such line."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [line for line in self.lines if needle in line]
                if len(found) >= count:
                    return found[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    tail = "\n".join(self.lines[-40:])
                    raise AssertionError(f"worker never printed {needle!r} x{count}; exit={self.proc.poll()}\n{tail}")
                self._cond.wait(min(remaining, 0.5))

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> None:
        """``kill -9`` the supervisor (its children die with it)."""
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """Warm shutdown (SIGTERM) and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        return self.proc.returncode


def write_module(directory: Path, name: str, source: str) -> Path:
    """Write a task module for a test (dedented) and return its path."""
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def worker_env(cwd: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    merged = dict(os.environ)
    merged["PYTHONPATH"] = os.pathsep.join([str(cwd), merged.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    merged["PYTHONUNBUFFERED"] = "1"
    merged.update(env or {})
    return merged


@contextmanager
def worker_process(
    app: str,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    ready_timeout: float = 30.0,
    wait_ready: bool = True,
) -> Iterator[WorkerProcess]:
    """Start a worker for ``-A app`` in ``cwd`` and stop it (warm) when the block ends."""
    cmd = [sys.executable, "-m", "celeriac", "-A", app, "worker", "-l", "info", *args]
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=worker_env(cwd, env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    worker = WorkerProcess(proc)
    try:
        if wait_ready:
            worker.wait_for_line("ready.", timeout=ready_timeout)
        yield worker
    except BaseException:
        print(f"--- worker output ({app}) ---\n{worker.output[-6000:]}")  # shown by pytest on failure
        raise
    finally:
        worker.stop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
