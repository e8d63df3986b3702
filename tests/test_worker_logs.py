"""The worker's log handler: batched lines, warnings at once, and Celery's timestamp format."""

from __future__ import annotations

import io
import logging
import time

from celeriac.worker.logs import BatchingHandler, WorkerFormatter

FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"


def _record(level: int, msg: str, created: float | None = None) -> logging.LogRecord:
    record = logging.LogRecord("celeriac.worker", level, __file__, 1, msg, None, None)
    if created is not None:
        record.created, record.msecs = created, (created - int(created)) * 1000
    return record


def test_timestamps_read_as_the_standard_formatter_writes_them():
    standard, ours = logging.Formatter(FORMAT), WorkerFormatter(FORMAT)
    for created in (1_700_000_000.0, 1_700_000_000.5, 1_700_000_000.999, 1_700_000_001.0004, time.time()):
        record = _record(logging.INFO, "x", created)
        assert ours.format(record) == standard.format(record)


def test_info_lines_wait_for_the_batch_and_a_warning_writes_everything_in_order():
    stream = io.StringIO()
    handler = BatchingHandler(stream, delay=3600)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.handle(_record(logging.INFO, "received"))
    handler.handle(_record(logging.INFO, "succeeded"))
    assert stream.getvalue() == ""
    handler.handle(_record(logging.WARNING, "lost the connection"))
    assert stream.getvalue() == "INFO received\nINFO succeeded\nWARNING lost the connection\n"
    handler.handle(_record(logging.INFO, "later"))
    handler.flush()
    assert stream.getvalue().endswith("WARNING lost the connection\nINFO later\n")


def test_a_quiet_worker_still_writes_its_lines_within_the_delay():
    stream = io.StringIO()
    handler = BatchingHandler(stream, delay=0.02)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(_record(logging.INFO, "ready."))
    deadline = time.monotonic() + 5
    while stream.getvalue() != "ready.\n":
        assert time.monotonic() < deadline, "the batched line was never written"
        time.sleep(0.01)


def test_a_batch_never_grows_past_its_limit():
    stream = io.StringIO()
    handler = BatchingHandler(stream, delay=3600, limit=100)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for i in range(10):
        handler.handle(_record(logging.INFO, f"line {i:02d} " + "x" * 20))
    written = stream.getvalue().splitlines()
    assert written == [f"line {i:02d} " + "x" * 20 for i in range(len(written))] and 3 <= len(written) < 10
