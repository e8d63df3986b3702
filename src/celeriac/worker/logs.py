"""Worker logging in Celery's format, and ``print`` inside tasks routed to the log.

Lines are written in batches: a busy worker logs two lines per task, and a write per line costs
more than the task (each write also hands the interpreter lock to another thread). A line waits
at most ``BatchingHandler.delay`` seconds; warnings and errors are written at once, with
everything before them, and a prefork child writes what it holds before it exits.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
from typing import Any, TextIO

from .. import signals


class LoggingProxy(io.TextIOBase):
    """A file-like object that turns written lines into log records (for ``print`` in tasks)."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger = logger
        self.level = level
        self._partial = ""

    def write(self, text: str) -> int:
        data = self._partial + text
        *lines, self._partial = data.split("\n")
        for line in lines:
            if line.strip():
                self.logger.log(self.level, line)
        return len(text)

    def flush(self) -> None:
        if self._partial.strip():
            self.logger.log(self.level, self._partial)
        self._partial = ""

    def isatty(self) -> bool:
        return False


class QuickLines:
    """Log lines from one fixed place, stamped from a template instead of built from scratch.

    A worker logs two lines per task. ``Logger.info`` looks up the calling frame and derives file,
    module, thread and process names for every record, which costs more than running a small task.
    Here those fields come from a record made once per thread (the origin is the given ``pathname``,
    line 0); only the time, message and arguments change. Filters and handlers run as usual, and a
    custom record factory (``logging.setLogRecordFactory``) is honoured by taking the generic path,
    unless it marks itself ``plain_fields`` (it only sets fields that hold for the whole process).

    When the worker's own setup is in place (no filters on the way, one ``BatchingHandler`` with a
    ``WorkerFormatter`` whose format uses only fields that hold for the thread, besides the time and
    the message), the line is written straight from the format split once around those two, and no
    record is made at all: the same text, for about a third of the cost.
    """

    def __init__(self, logger: logging.Logger, pathname: str) -> None:
        self.logger = logger
        self.pathname = pathname
        self._local = threading.local()
        os.register_at_fork(after_in_child=self._forget)  # a child's records carry its own process

    def _forget(self) -> None:
        self._local = threading.local()

    def info(self, msg: str, *args: Any) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        factory = logging.getLogRecordFactory()
        if factory is not logging.LogRecord and not getattr(factory, "plain_fields", False):
            logger.info(msg, *args)
            return
        fields, started = self._template()
        route = self._direct_route(fields)
        if route is not None:
            handler, formatter, (head, middle, tail) = route
            now = time.time()
            text = msg % args if args else msg
            stamp = formatter.stamp(now) if middle is not None else ""
            handler.add_line(f"{head}{stamp}{middle or ''}{text}{tail}{handler.terminator}", logging.INFO)
            return
        record = logging.LogRecord.__new__(logging.LogRecord)
        record.__dict__.update(fields)
        record.msg, record.args = msg, args
        record.created = now = time.time()
        record.msecs = int((now - int(now)) * 1000) + 0.0
        record.relativeCreated = (now - started) * 1000
        logger.handle(record)

    def _direct_route(self, fields: dict[str, Any]) -> tuple[BatchingHandler, WorkerFormatter, tuple[str, str | None, str]] | None:
        """The one handler an INFO record of this logger would reach and its format's fixed parts, when
        writing the line directly gives what ``logger.handle`` would; None otherwise."""
        found: BatchingHandler | None = None
        current: logging.Logger | None = self.logger
        while current is not None:
            if current.filters or current.disabled:
                return None
            for handler in current.handlers:
                if logging.INFO >= handler.level:
                    if found is not None or type(handler) is not BatchingHandler or handler.filters:
                        return None
                    found = handler
            current = current.parent if current.propagate else None
        formatter = found.formatter if found is not None else None
        if found is None or type(formatter) is not WorkerFormatter:
            return None
        cached = getattr(self._local, "parts", None)  # per thread: its fields, hence its line, are its own
        if cached is None or cached[0] is not fields or cached[1] is not formatter or cached[2] is not formatter._style._fmt:
            cached = self._local.parts = (fields, formatter, formatter._style._fmt, formatter.split(fields))
        parts = cached[3]
        return (found, formatter, parts) if parts is not None else None

    def _template(self) -> tuple[dict[str, Any], float]:
        """This thread's record fields and logging's start time (made again after a fork or a rename)."""
        template: tuple[dict[str, Any], float] | None = getattr(self._local, "template", None)
        if template is None or template[0]["threadName"] != threading.current_thread().name:
            record = logging.getLogRecordFactory()(self.logger.name, logging.INFO, self.pathname, 0, "", (), None)
            template = self._local.template = (dict(record.__dict__), record.created - record.relativeCreated / 1000)
        return template


class WorkerFormatter(logging.Formatter):
    """The worker's format; the date and time of a record are formatted once per second, not per line."""

    _second = -1
    _text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        if datefmt is not None or not self.default_msec_format:
            return super().formatTime(record, datefmt)
        return self.stamp(record.created, record.msecs)

    def stamp(self, created: float, msecs: float | None = None) -> str:
        """``asctime`` of a record made at ``created`` (its ``msecs`` as ``LogRecord`` computes them)."""
        second = int(created)
        if second != self._second:
            self._text = time.strftime(self.default_time_format, self.converter(created))
            self._second = second
        msec_format = self.default_msec_format or "%s,%03d"  # callers check it is set
        return msec_format % (self._text, int((created - second) * 1000) if msecs is None else msecs)

    def split(self, fields: dict[str, Any]) -> tuple[str, str | None, str] | None:
        """This format, for records with these fixed ``fields``, split around the time and the message:
        (before the time, between time and message or None when there is no time, after the message).
        None when it needs anything else per record, or cannot be split that way."""
        fmt = self._style._fmt
        if (type(self._style) is not logging.PercentStyle or self.datefmt is not None or not self.default_msec_format
                or type(self).formatTime is not WorkerFormatter.formatTime or type(self).format is not logging.Formatter.format
                or any(f"%({name})" in fmt for name in ("created", "msecs", "relativeCreated", "exc_text", "stack_info"))):
            return None
        timed = "%(asctime)s" in fmt
        if fmt.count("%(message)s") != 1 or fmt.count("%(asctime)") != int(timed):
            return None
        at, said = "\x00celeriac-time\x00", "\x00celeriac-message\x00"
        try:
            text = fmt % {**fields, "asctime": at, "message": said}
        except (KeyError, TypeError, ValueError):
            return None
        if text.count(said) != 1 or text.count(at) != int(timed) or (timed and text.index(at) > text.index(said)):
            return None
        before, after = text.split(said)
        if not timed:
            return before, None, after
        head, middle = before.split(at)
        return head, middle, after


class BatchingHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes whole lines in batches, within ``delay`` seconds of the first."""

    def __init__(self, stream: TextIO, delay: float = 0.05, limit: int = 4000) -> None:
        super().__init__(stream)
        self.delay = delay
        self.limit = limit  # characters; one write of whole lines stays within a pipe's atomic size
        self._lines: list[str] = []
        self._size = 0
        self._due = threading.Event()
        self._writer_pid = 0
        os.register_at_fork(before=self.flush, after_in_child=self._forget_writer)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._add(line, record.levelno)

    def add_line(self, line: str, levelno: int) -> None:
        """A line formatted elsewhere (see ``QuickLines``), ending with the terminator."""
        self.acquire()
        try:
            self._add(line, levelno)
        finally:
            self.release()

    def _add(self, line: str, levelno: int) -> None:
        first = not self._lines
        self._lines.append(line)
        self._size += len(line)
        if levelno >= logging.WARNING or self._size >= self.limit:
            self._write_out()
        elif first:
            self._start_writer()
            self._due.set()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_out()
        finally:
            self.release()

    def _write_out(self) -> None:
        if not self._lines:
            return
        text, self._lines, self._size = "".join(self._lines), [], 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # a closed or broken stream: what logging does for a failed emit
            self.handleError(logging.makeLogRecord({"msg": text.rstrip()}))

    def _start_writer(self) -> None:
        if self._writer_pid != os.getpid():  # none yet, or inherited from the parent (threads do not fork)
            self._writer_pid = os.getpid()
            threading.Thread(target=self._write_when_due, name="celeriac-log-writer", daemon=True).start()

    def _write_when_due(self) -> None:
        while True:
            self._due.wait()
            time.sleep(self.delay)
            self._due.clear()
            self.flush()

    def _forget_writer(self) -> None:
        self._writer_pid = 0
        self._due = threading.Event()


def flush_logs() -> None:
    """Write every batched line now (before a process ends without running exit handlers)."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def setup_logging(conf: Any, loglevel: str) -> None:
    """Configure the root logger like Celery's worker does, unless a handler wants to do it."""
    level = getattr(logging, loglevel.upper(), logging.INFO)
    if signals.setup_logging.receivers:
        signals.setup_logging.send(sender=None, loglevel=level, logfile=None, format=conf.worker_log_format, colorize=False)
        return
    if hasattr(sys.stderr, "reconfigure"):
        sys.stderr.reconfigure(line_buffering=True)
    root = logging.getLogger()
    if conf.worker_hijack_root_logger:
        for handler in list(root.handlers):
            root.removeHandler(handler)
    handler = BatchingHandler(sys.stderr)
    handler.setFormatter(WorkerFormatter(conf.worker_log_format))
    root.addHandler(handler)
    root.setLevel(level)
    signals.after_setup_logger.send(sender=None, logger=root, loglevel=level, logfile=None, format=conf.worker_log_format,
                                    colorize=False)
    if conf.worker_redirect_stdouts:
        redirect_level = getattr(logging, str(conf.worker_redirect_stdouts_level).upper(), logging.WARNING)
        sys.stdout = LoggingProxy(logging.getLogger("celeriac.redirected"), redirect_level)
