"""The worker's log handler: batched lines, warnings at once, and Celery's timestamp format."""

from __future__ import annotations

import io
import logging
import os
import threading
import time

import pytest

from celeriac.worker.logs import BatchingHandler, QuickLines, WorkerFormatter

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


DETAILED = "%(levelname)s %(name)s %(processName)s %(process)d %(threadName)s %(thread)d %(filename)s %(module)s %(message)s"


@pytest.fixture
def captured():
    """A logger of its own whose records end up as formatted lines in a list."""
    logger = logging.getLogger(f"celeriac.test.quick.{time.monotonic_ns()}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    lines: list[str] = []
    handler = logging.Handler()
    handler.setFormatter(logging.Formatter(DETAILED))
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    logger.addHandler(handler)
    return logger, lines


def test_quick_lines_read_like_the_same_call_through_logger_info(captured):
    logger, lines = captured
    quick = QuickLines(logger, __file__)
    quick.info("Task %s[%s] received", "proj.add", "id-1")
    logger.info("Task %s[%s] received", "proj.add", "id-1")
    done = threading.Thread(target=lambda: (quick.info("in %s", "a thread"), logger.info("in %s", "a thread")), name="Other")
    done.start()
    done.join()
    assert lines[0] == lines[1] and "INFO" in lines[0] and "Task proj.add[id-1] received" in lines[0]
    assert lines[2] == lines[3] and " Other " in lines[2]
    assert lines[0] != lines[2]  # the thread's own name and id, not the first thread's


def test_quick_lines_honour_the_level_the_filters_and_a_custom_record_factory(captured):
    logger, lines = captured
    quick = QuickLines(logger, __file__)
    logger.setLevel(logging.WARNING)
    quick.info("hidden by the level")
    logger.setLevel(logging.INFO)
    logger.addFilter(lambda record: "secret" not in record.getMessage())
    quick.info("a %s line", "secret")
    quick.info("a %s line", "plain")
    original = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = original(*args, **kwargs)
        record.msg = "[tagged] " + record.msg
        return record

    logging.setLogRecordFactory(factory)
    try:
        quick.info("made by the %s", "factory")
    finally:
        logging.setLogRecordFactory(original)
    assert [line.split()[-3:] for line in lines] == [["a", "plain", "line"], ["by", "the", "factory"]]
    assert "[tagged] made by the factory" in lines[1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_quick_lines_in_a_forked_child_carry_the_child_process_id(captured):
    logger, lines = captured
    quick = QuickLines(logger, __file__)
    quick.info("parent")
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: log, send the line back, leave at once
        try:
            quick.info("child")
            os.write(writer, lines[-1].encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        child_line = pipe.read().decode()
    os.waitpid(pid, 0)
    assert f" {os.getpid()} " in lines[0] and f" {pid} " in child_line and child_line.endswith(" child")


def _worker_setup(fmt: str) -> tuple[logging.Logger, io.StringIO, BatchingHandler]:
    """A logger of its own set up as the worker sets up the root logger."""
    logger = logging.getLogger(f"celeriac.test.direct.{time.monotonic_ns()}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    stream = io.StringIO()
    handler = BatchingHandler(stream, delay=3600)
    handler.setFormatter(WorkerFormatter(fmt))
    logger.addHandler(handler)
    return logger, stream, handler


@pytest.mark.parametrize("fmt", [FORMAT, DETAILED, "%(message)s -- %(levelname)s", "%(asctime)s%(message)s",
                                 "%(created)f %(message)s", "%(asctime)-30s %(message)s"])
def test_lines_written_directly_read_as_the_records_logging_would_format(fmt, monkeypatch):
    logger, stream, handler = _worker_setup(fmt)
    quick = QuickLines(logger, __file__)
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0457)
    quick.info("Task %s[%s] succeeded in %ss: %s", "proj.add", "id-1", 0.25, "3")
    handler.addFilter(lambda record: True)  # any filter sends lines through logging's records
    quick.info("Task %s[%s] succeeded in %ss: %s", "proj.add", "id-1", 0.25, "3")
    handler.flush()
    direct, through_records = stream.getvalue().splitlines()
    assert direct == through_records and "Task proj.add[id-1] succeeded in 0.25s: 3" in direct


def test_the_worker_setup_writes_task_lines_without_making_records(monkeypatch):
    logger, stream, handler = _worker_setup(FORMAT)

    def no_records(record):
        raise AssertionError("a record was made")

    monkeypatch.setattr(logger, "handle", no_records)
    QuickLines(logger, __file__).info("Task %s[%s] received", "proj.add", "id-1")
    handler.flush()
    assert stream.getvalue().endswith("] Task proj.add[id-1] received\n")
    second = logging.StreamHandler(io.StringIO())  # a second handler: each must get the record
    logger.addHandler(second)
    with pytest.raises(AssertionError, match="a record was made"):
        QuickLines(logger, __file__).info("Task %s[%s] received", "proj.add", "id-2")


def test_stamps_match_logging_own_time_format_within_and_across_milliseconds_and_seconds():
    ours, theirs = WorkerFormatter("%(asctime)s %(message)s"), logging.Formatter("%(asctime)s %(message)s")
    base = 1_790_000_000.0
    moments = [base + 0.9994, base + 0.9996, base + 0.9999, base + 1.0, base + 1.0004, base + 1.0009, base + 1.001,
               base + 1.001, base + 59.9995, base + 60.0002]
    for created in moments:
        record = logging.makeLogRecord({"msg": "x", "created": created, "msecs": int((created - int(created)) * 1000)})
        assert ours.stamp(created) == theirs.formatTime(record), created
        assert ours.formatTime(record) == theirs.formatTime(record), created
