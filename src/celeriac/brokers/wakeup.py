"""Cross-process wake-ups for the SQLite store, so idle waiters block instead of polling.

Each waiter binds a Unix datagram socket in a directory derived from the database path and the
channel name; a writer sends one byte to every socket of the channel after it commits. A waiter
still re-checks the database after its timeout, so a lost datagram costs latency, never work.
Every waiting thread has sockets of its own (:class:`ThreadWaiters`), bound before its first read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import socket
import tempfile
import threading
import time
from pathlib import Path


def wake_dir(db_path: str) -> Path:
    """Directory of wake-up sockets for one database file (short, to fit AF_UNIX paths)."""
    digest = hashlib.sha1(os.path.abspath(db_path).encode(), usedforsecurity=False).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"celeriac-wake-{digest}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


class Notifier:
    """Sends wake-ups to the waiters of a channel."""

    def __init__(self, db_path: str) -> None:
        self.directory = wake_dir(db_path)
        self._sock: socket.socket | None = None
        self._pid = os.getpid()

    def _socket(self) -> socket.socket:
        if self._sock is None or self._pid != os.getpid():
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
            self._pid = os.getpid()
        return self._sock

    def notify(self, channel: str) -> None:
        """Wake every waiter on ``channel``; dead waiters' sockets are removed."""
        prefix = f"{channel}."
        try:
            entries = os.scandir(self.directory)
        except FileNotFoundError:
            return
        sock = self._socket()
        with entries:
            for entry in entries:
                if not entry.name.startswith(prefix):
                    continue
                try:
                    sock.sendto(b"!", entry.path)
                except (ConnectionRefusedError, FileNotFoundError):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                except (BlockingIOError, OSError):
                    pass  # its buffer is full: it is awake already


class Waiter:
    """Blocks until a channel is notified or a timeout passes. One per thread that waits."""

    def __init__(self, db_path: str, channel: str) -> None:
        directory = wake_dir(db_path)
        self.path = str(directory / f"{channel}.{os.getpid()}.{threading.get_ident() % 100000}.{id(self) % 10000}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.owner = os.getpid()

    def wait(self, timeout: float) -> bool:
        """True if woken, False on timeout. Drains pending wake-ups."""
        if timeout > 0:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return False
        return self.drain()

    def drain(self) -> bool:
        woke = False
        while True:
            try:
                self.sock.recv(64)
                woke = True
            except (BlockingIOError, OSError):
                return woke

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.owner == os.getpid():  # a forked child must not remove its parent's socket
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def __del__(self) -> None:  # a waiter dropped with its thread takes its socket file along
        try:  # noqa: SIM105 - not contextlib: at interpreter exit the module's globals may be gone
            self.close()
        except Exception:  # noqa: S110
            pass


class MultiWaiter:
    """Waits on several channels at once (one socket each, selected together)."""

    def __init__(self, path: str, channels: list[str]) -> None:
        self.channels = channels
        self.waiters = [Waiter(path, channel) for channel in channels]

    def wait(self, timeout: float) -> bool:
        socks = [w.sock for w in self.waiters]
        ready, _, _ = select.select(socks, [], [], max(0.0, timeout))
        woke = False
        for waiter in self.waiters:
            woke = waiter.drain() or woke
        return bool(ready) or woke

    def close(self) -> None:
        for waiter in self.waiters:
            waiter.close()


class ThreadWaiters:
    """Each thread's waiters, by the channels they wait on.

    A wake-up datagram wakes one socket. Threads that shared a socket could use up each other's
    wake-ups: one thread drains the datagram meant for both while the other is between its read and
    its wait, and that one then sleeps until its re-check although a message waits for it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.channels: set[str] = set()  # every channel some thread waits on, for wakeup()
        self._local = threading.local()

    def get(self, channels: list[str]) -> MultiWaiter:
        """This thread's waiter for ``channels``; its sockets exist before the caller's first read."""
        mine = self._mine()
        key = ",".join(channels)
        waiter = mine.get(key)
        if waiter is None:
            waiter = mine[key] = MultiWaiter(self.path, channels)
            self.channels.update(channels)
        return waiter

    def has(self, channels: list[str]) -> bool:
        """Whether this thread already waits on ``channels`` (so no notification since can be missed)."""
        return ",".join(channels) in self._mine()

    def _mine(self) -> dict[str, MultiWaiter]:
        mine: dict[str, MultiWaiter] | None = getattr(self._local, "waiters", None)
        if mine is None or self._local.pid != os.getpid():  # first use here, or a forked child
            mine = self._local.waiters = {}
            self._local.pid = os.getpid()
        return mine

    def forget(self) -> None:
        """Close this thread's sockets now; other threads' close as they drop their waiters."""
        mine: dict[str, MultiWaiter] = getattr(self._local, "waiters", None) or {}
        for waiter in mine.values():
            waiter.close()  # a child closes its copy of the socket; only the owner removes the file
        self._local = threading.local()


def sleep_until(deadline: float) -> float:
    """Seconds left until ``deadline`` on the monotonic clock (never negative)."""
    return max(0.0, deadline - time.monotonic())
