"""The services the harness breaks: a private Redis, the local RabbitMQ, a small tmpfs for SQLite.

Every fault has a matching repair, and the harness calls the repair in a ``finally`` block.
The Redis server is the harness's own (a free port, its own directory), so restarting it touches
no one else's data. It keeps an append-only file with ``appendfsync always``: a ``kill -9`` of the
server loses nothing it acknowledged, which is the configuration ``docs/redis.md`` recommends
for production (``everysec`` may lose the last second).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float) -> None:
    """Block until something accepts connections on ``port`` (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class PrivateRedis:
    """A ``redis-server`` of the harness's own, restartable by ``kill -9``."""

    def __init__(self, workdir: Path, persistent: bool = True) -> None:
        self.dir = workdir / "redis"
        self.dir.mkdir(exist_ok=True)
        self.port = free_port()
        self.persistent = persistent
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", *aof,
               "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")]
        self.proc = subprocess.Popen(cmd, start_new_session=True)
        wait_port(self.port, 20)
        self._wait_loaded()

    def _wait_loaded(self) -> None:
        """A server still loading its AOF answers LOADING; wait for a real PONG."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True).stdout
            if "PONG" in out:
                return
            time.sleep(0.05)
        raise TimeoutError("redis did not finish loading")

    def crash(self) -> None:
        """``kill -9`` the server: no shutdown, no final write."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        self.crash()


class RabbitMQ:
    """The local RabbitMQ node; a restart is ``stop_app`` then ``start_app`` (messages are durable)."""

    port = 5672
    url = "amqp://guest:guest@127.0.0.1:5672//"

    def __init__(self) -> None:
        self.stopped = False

    def stop_app(self) -> None:
        self.stopped = True
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True, timeout=120)

    def start_app(self) -> None:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True, timeout=120)
        wait_port(self.port, 60)
        self.stopped = False

    def restore(self) -> None:
        if self.stopped:
            self.start_app()

    def delete_queues(self, prefix: str) -> None:
        """Remove the queues a run declared (they all start with its prefix)."""
        out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, timeout=60).stdout
        for name in out.split():
            if name.startswith(prefix):
                subprocess.run(["rabbitmqctl", "-q", "delete_queue", name], capture_output=True, timeout=60)


class SmallDisk:
    """A tmpfs of ``size_mb`` for the SQLite file, which the harness can fill to the last byte."""

    def __init__(self, mountpoint: Path, size_mb: int) -> None:
        self.path = mountpoint
        self.size_mb = size_mb
        self.filler = mountpoint / "filler"
        self.mounted = False

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "tmpfs", str(self.path)], check=True)
        self.mounted = True

    def fill(self) -> int:
        """Write zeros until the disk refuses (ENOSPC); return the bytes written."""
        written, chunk = 0, b"\0" * 65536
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                try:
                    written += os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        return written
                    chunk = chunk[: len(chunk) // 2]
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        """Keep a copy of the SQLite files for a post-mortem, then unmount (lazily, if still busy)."""
        if self.mounted:
            self.free()
            keep = self.path.parent / "sqlite-copy"
            keep.mkdir(exist_ok=True)
            for f in self.path.glob("*.sqlite3*"):
                shutil.copy2(f, keep / f.name)
            subprocess.run(["umount", "-l", str(self.path)], check=False)
            self.mounted = False
