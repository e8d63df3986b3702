"""Forked children for the prefork pool, without ``multiprocessing``.

The pool needs little from a child process: fork it, hear short notices from it, notice when it
ends and read its exit status. ``multiprocessing`` does this too but loads pickle, tempfile, shutil
and the compression modules into the supervisor, and every forked child carries the supervisor's
pages, so the worker's memory grows by that much per process. Here a child is ``os.fork`` and a
pipe for notices; its end is watched with a pidfd (Linux 5.3+) or, elsewhere, with a pipe that only
the child holds open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import struct
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any

_FRAME = struct.Struct("!I")


def _name_this_process(name: str) -> None:
    """Log records made in this process carry ``name`` as ``processName`` (Celery's log lines show it).

    Logging asks ``multiprocessing`` for the name when something has loaded it; otherwise a record
    factory stamps it (marked ``plain_fields``: it changes no field a record template would hold wrong).
    """
    mp = sys.modules.get("multiprocessing")
    if mp is not None:
        with contextlib.suppress(Exception):
            mp.current_process().name = name
        return
    make = logging.getLogRecordFactory()

    def named_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.processName = name
        return record

    named_record.plain_fields = make is logging.LogRecord or getattr(make, "plain_fields", False)  # type: ignore[attr-defined]
    logging.setLogRecordFactory(named_record)


class NoticeReader:
    """The supervisor's end of a child's notice pipe: whole frames, never blocking."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self._pending = b""

    def fileno(self) -> int:
        return self.fd

    def read(self) -> list[bytes]:
        """Every complete notice that has arrived (an empty list at end of file)."""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # nothing more for now (BlockingIOError), or the pipe is gone
                break
            if not chunk:
                break
            self._pending += chunk
        frames = []
        while len(self._pending) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(self._pending)
            if len(self._pending) < _FRAME.size + size:
                break
            frames.append(self._pending[_FRAME.size:_FRAME.size + size])
            self._pending = self._pending[_FRAME.size + size:]
        return frames

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class NoticeWriter:
    """The child's end: one frame per notice (a single writer thread keeps frames whole)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send_bytes(self, data: bytes) -> None:
        view = memoryview(_FRAME.pack(len(data)) + data)
        while view:
            view = view[os.write(self.fd, view):]


class ForkedProcess:
    """One child: ``start`` forks and runs ``target(writer, *args)`` there, then exits.

    ``blocked`` signals stay blocked in the child until its target unblocks them, once its own
    handlers are in place: one sent between the fork and then waits instead of taking the default
    action (for SIGUSR1, ending the child as if it had crashed).
    """

    def __init__(self, target: Callable[..., Any], args: tuple[Any, ...], name: str,
                 blocked: Iterable[int] = ()) -> None:
        self.target = target
        self.args = args
        self.blocked = set(blocked)
        self.name = name
        self.pid = 0
        self.sentinel = -1  # readable once the child has ended
        self.notices: NoticeReader | None = None
        self._status: int | None = None
        self._reaped = False

    def start(self) -> None:
        notice_r, notice_w = os.pipe()
        use_pidfd = hasattr(os, "pidfd_open")
        sentinel_r, sentinel_w = (-1, -1) if use_pidfd else os.pipe()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, self.blocked) if self.blocked else None
        try:
            pid = os.fork()
        except BaseException:
            self._restore(mask)
            raise
        if pid == 0:  # the child (the blocked signals stay blocked): never returns
            os.close(notice_r)
            if sentinel_r >= 0:
                os.close(sentinel_r)
            self._run_child(NoticeWriter(notice_w))
        self._restore(mask)
        os.close(notice_w)
        self.pid = pid
        self.notices = NoticeReader(notice_r)
        if use_pidfd:
            self.sentinel = os.pidfd_open(pid)
        else:
            os.close(sentinel_w)
            self.sentinel = sentinel_r

    @staticmethod
    def _restore(mask: set[int | signal.Signals] | None) -> None:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def _run_child(self, writer: NoticeWriter) -> None:
        code = 1
        try:
            _name_this_process(self.name)
            _detach_stdin()
            self.target(writer, *self.args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def join(self, timeout: float | None = None) -> None:
        """Reap the child if it ends within ``timeout`` seconds (None: wait for it)."""
        if self._reaped or not self.pid:
            return
        if timeout is not None:
            ended, _, _ = select.select([self.sentinel], [], [], max(0.0, timeout))
            if not ended:
                return
        try:
            _, self._status = os.waitpid(self.pid, 0)
        except ChildProcessError:  # reaped elsewhere: the exit status is lost
            pass
        self._reaped = True
        self._close_fds()

    @property
    def exitcode(self) -> int | None:
        """The exit code, or minus the signal number that ended it; None while it runs (or if unknown)."""
        if not self._reaped:
            self.join(0)
        return None if self._status is None else os.waitstatus_to_exitcode(self._status)

    def _close_fds(self) -> None:
        if self.notices is not None:
            self.notices.close()
        if self.sentinel >= 0:
            with contextlib.suppress(OSError):
                os.close(self.sentinel)
            self.sentinel = -1


def _detach_stdin() -> None:
    """A child never reads the terminal: its stdin is /dev/null (as multiprocessing arranges)."""
    with contextlib.suppress(Exception):
        if sys.stdin is not None:
            sys.stdin.close()
        sys.stdin = open(os.devnull)  # noqa: SIM115 - stays open for the life of the child
