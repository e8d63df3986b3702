"""The chaos harness, short: a few hundred mixed tasks per broker while workers, children and the
broker are killed, one worker is cut off for longer than its lease, and (SQLite) the disk fills up.
Nothing may be lost and no worker may crash by itself. The long run is ``python -m benchmarks.chaos``
(see ``docs/reliability.md``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the harness mounts a tmpfs and destroys sockets (root)")


def run_harness(broker: str, tmp_path: Path) -> dict:
    out = tmp_path / "chaos"
    cmd = [sys.executable, "-m", "benchmarks.chaos", "--broker", broker, "--tasks", "250", "--duration", "25",
           "--interval", "2", "--drain", "60", "--out", str(out), "--json", str(tmp_path / "figures.json")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280)
    print(proc.stdout[-4000:], proc.stderr[-4000:])
    faults = out / "faults.log"
    print(faults.read_text() if faults.exists() else "no fault log")
    assert (tmp_path / "figures.json").exists(), f"harness did not finish (exit {proc.returncode})"
    return json.loads((tmp_path / "figures.json").read_text())


def check(figures: dict) -> None:
    assert figures["tasks sent"] == 250
    assert figures["tasks lost"] == 0, figures["lost ids"]
    assert figures["worker crashes (input)"] == 0
    assert figures["failed"] == 0
    assert figures["worker kills"] + figures["child kills"] > 0
    assert figures["cuts > lease"] == 1


@needs_root
@pytest.mark.timeout(300)
def test_sqlite_loses_nothing_under_faults(tmp_path):
    figures = run_harness("sqlite", tmp_path)
    check(figures)
    assert figures["disk fills"] >= 1


@needs_root
@pytest.mark.redis
@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server to run a private instance")
def test_redis_loses_nothing_under_faults(tmp_path):
    figures = run_harness("redis", tmp_path)
    check(figures)
    assert figures["broker restarts"] >= 1


@needs_root
@pytest.mark.rabbitmq
@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="restarting RabbitMQ needs rabbitmqctl")
def test_rabbitmq_loses_nothing_under_faults(tmp_path):
    figures = run_harness("rabbitmq", tmp_path)
    check(figures)
    assert figures["broker restarts"] >= 1
