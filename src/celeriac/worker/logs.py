"""Worker logging in Celery's format, and ``print`` inside tasks routed to the log."""

from __future__ import annotations

import io
import logging
import sys
from typing import Any

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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(conf.worker_log_format))
    root.addHandler(handler)
    root.setLevel(level)
    signals.after_setup_logger.send(sender=None, logger=root, loglevel=level, logfile=None, format=conf.worker_log_format,
                                    colorize=False)
    if conf.worker_redirect_stdouts:
        redirect_level = getattr(logging, str(conf.worker_redirect_stdouts_level).upper(), logging.WARNING)
        sys.stdout = LoggingProxy(logging.getLogger("celeriac.redirected"), redirect_level)
