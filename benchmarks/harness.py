"""Shared pieces of the benchmarks: real worker processes, their memory, and the clock.

A worker is started in its own session so that it and its children can be killed together, and its
output goes to a log file (a full pipe would stall it). The resident memory of the whole process
tree is sampled by a thread while the worker runs; the peak of the sum is what is reported.
"""

from __future__ import annotations

import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent


class Worker:
    """A worker process (supervisor and children) that records its peak resident memory."""

    def __init__(self, lib: str, args: Sequence[str], env: Mapping[str, str], log: Path, loglevel: str = "INFO") -> None:
        cmd = [sys.executable, "-m", lib, "-A", "bench_app", "worker", "-l", loglevel, *args]
        self.log = log
        self._out = open(log, "w")  # noqa: SIM115 - closed in stop()
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("CELERIAC_", "CELERY_", "BENCH_"))}
        full_env = {**clean, "PYTHONPATH": str(HERE), "PYTHONUNBUFFERED": "1", "BENCH_LIB": lib, **env}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=HERE, env=full_env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def tree_rss(self) -> int:
        """Bytes resident in the supervisor and all its descendants right now."""
        return self._tree_sum(lambda proc: proc.memory_info().rss)

    def tree_pss(self) -> int:
        """Proportional set size of the tree right now: each shared page divided among its sharers."""
        return self._tree_sum(lambda proc: proc.memory_full_info().pss)

    def _tree_sum(self, read: Callable[[psutil.Process], int]) -> int:
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for proc in procs:
            try:
                total += read(proc)
            except psutil.NoSuchProcess:
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_rss = max(self.peak_rss, self.tree_rss())

    def stop_sampling(self) -> None:
        """End the memory samples (the peak so far stays): a phase timed after this one, such as
        latency, must not share the measuring process with a thread that walks the process tree."""
        self._stop.set()
        self._sampler.join()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the log has a line ending in ``ready.`` (both libraries print one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.rstrip().endswith("ready.") for line in self.log.read_text(errors="replace").splitlines()):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"worker not ready; exit={self.proc.poll()}\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Warm shutdown, then kill whatever is left of the process group."""
        self._stop.set()
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
            self._out.close()


def drain_rate(done: Callable[[], int], total: int, timeout: float, poll: float = 0.01) -> float:
    """Poll the result store until ``total`` results are there; return tasks per second.

    The clock starts when the first results show up, so worker start-up (which differs a lot between
    the two libraries and is paid once) is left out; the results seen at that first look are too.
    """
    first: tuple[float, int] | None = None
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        count = done()
        now = time.perf_counter()
        if count and first is None:
            first = (now, count)
        if count >= total:
            assert first is not None
            return (total - first[1]) / (now - first[0]) if now > first[0] else float("inf")
        time.sleep(poll)
    raise TimeoutError(f"only {done()} of {total} results stored after {timeout:.0f}s")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: the figure is one that was measured)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def load_app(lib: str, env: Mapping[str, str]):
    """Import ``bench_app`` for one library under its own module name (both live in one sender process)."""
    import importlib.util

    os.environ.update({"BENCH_LIB": lib, **env})
    for key in ("BENCH_PREFIX", "BENCH_ACKS_LATE"):
        if key not in env:
            os.environ.pop(key, None)
    spec = importlib.util.spec_from_file_location(f"bench_app_{lib}", HERE / "bench_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine_note() -> str:
    """CPU count and load average, printed with every result: other work on the machine skews figures."""
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min)"
