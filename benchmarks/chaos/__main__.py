"""Fault-injection harness: mixed tasks through real workers while things break; nothing may be lost.

    .venv/bin/python -m benchmarks.chaos --broker sqlite --tasks 3000 --duration 120
    .venv/bin/python -m benchmarks.chaos --broker redis --tasks 3000 --duration 120
    .venv/bin/python -m benchmarks.chaos --broker rabbitmq --tasks 3000 --duration 120

Needs root (tmpfs mounts, ``ss -K``) and, per broker, ``redis-server`` or a local RabbitMQ.
Exit status 1 when a task was lost or a worker crashed by itself. See ``docs/reliability.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .run import Options, run

COLUMNS = ["broker", "tasks sent", "worker kills", "child kills", "broker restarts", "disconnects", "cuts > lease",
           "disk fills", "tasks lost", "ran more than once", "repeats without a fault", "dead-lettered", "failed",
           "worker crashes (input)", "seconds"]


def table(rows: list[dict]) -> str:
    """A Markdown table, one row per run, so it can be pasted into the docs as is."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=["sqlite", "redis", "rabbitmq"], required=True)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of faults (load is sent in the first 80%%)")
    parser.add_argument("--workers", type=int, default=3, help="prefork workers (plus one -P async worker)")
    parser.add_argument("--concurrency", "-c", type=int, default=2)
    parser.add_argument("--lease", type=float, default=5.0, help="visibility_timeout in seconds")
    parser.add_argument("--interval", type=float, default=3.0, help="mean seconds between small faults")
    parser.add_argument("--drain", type=float, default=120.0, help="seconds allowed after the faults for results")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--redis-persistence", choices=["always", "none"], default="always",
                        help="the private Redis's AOF (appendfsync always) or nothing on disk")
    parser.add_argument("--out", type=Path, default=None, help="logs and run records (default /tmp/celeriac-chaos/...)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    out = args.out or Path("/tmp/celeriac-chaos") / f"{args.broker}-{time.strftime('%Y%m%d-%H%M%S')}"
    opts = Options(args.broker, args.tasks, args.duration, out, args.workers, args.concurrency, args.lease,
                   args.interval, args.drain, args.seed, redis_persistence=args.redis_persistence == "always")
    result = run(opts)
    print(table([result]))
    print(f"logs, fault log and run records: {out}")
    if result["lost ids"]:
        print(f"lost: {result['tasks lost']}, of which never started: {result['lost, never started']}; first ids:",
              " ".join(result["lost ids"]))
    if result["unexplained ids"]:
        print("repeated with no fault to explain it:", " ".join(result["unexplained ids"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    sys.exit(1 if result["tasks lost"] or result["worker crashes (input)"] else 0)


if __name__ == "__main__":
    main()
