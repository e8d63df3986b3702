"""Real worker processes for the chaos harness and the soak: start, kill, stop, measure.

Each worker runs in its own session (process group), so one signal reaches the supervisor and all
its children, and a cleanup can never miss a child. Output goes to a log file through a reader
thread, which also sets an event when the worker prints ``ready.``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent


class Worker:
    """One ``celeriac -A tasks worker`` process tree that can be killed and started again."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], logdir: Path) -> None:
        self.name = name
        self.args = list(args)
        self.env = dict(env)
        self.log = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = threading.Event()
        self.expected_exit = False
        self.starts = 0

    def start(self) -> None:
        """Start (or start again); the caller waits on ``ready`` if it cares."""
        cmd = [sys.executable, "-m", "celeriac", "-A", "tasks", "worker", "-l", "info", "-n", f"{self.name}@chaos", *self.args]
        env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONUNBUFFERED": "1", **self.env}
        self.ready.clear()
        self.expected_exit = False
        self.proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with open(self.log, "ab") as out:
            out.write(f"--- start {self.starts} pid {proc.pid}\n".encode())
            for line in proc.stdout:
                out.write(line)
                out.flush()
                if line.rstrip().endswith(b"ready."):
                    self.ready.set()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children() if self.alive else []
        except psutil.NoSuchProcess:
            return []

    def pids(self) -> list[int]:
        """Supervisor and children: whose sockets belong to this worker."""
        return [self.proc.pid, *(c.pid for c in self.children())] if self.alive else []

    def kill9(self) -> None:
        """``kill -9`` the supervisor alone; its children die with it (parent-death signal)."""
        self.expected_exit = True
        if self.alive:
            self.proc.kill()
            self.proc.wait(10)

    def kill_child(self) -> int | None:
        """``kill -9`` one random child and return its pid; the supervisor replaces it and reclaims its work."""
        kids = self.children()
        if not kids:
            return None
        child = random.choice(kids)
        try:
            child.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            return None
        return child.pid

    def group_signal(self, signum: int) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 30.0) -> None:
        """Warm shutdown, then ``SIGKILL`` the whole group whatever happened."""
        self.expected_exit = True
        if self.proc is None:
            return
        self.group_signal(signal.SIGCONT)
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.group_signal(signal.SIGKILL)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def tree_rss(self) -> tuple[int, int]:
        """Resident bytes of the supervisor and of all its descendants."""
        try:
            root = psutil.Process(self.proc.pid)
            own = root.memory_info().rss
            kids = 0
            for child in root.children(recursive=True):
                try:
                    kids += child.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            return own, kids
        except (psutil.NoSuchProcess, AttributeError):
            return 0, 0
