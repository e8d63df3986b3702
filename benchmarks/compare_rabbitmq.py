"""The same comparison as ``compare_redis.py`` with RabbitMQ as the broker for both libraries.

    .venv/bin/python benchmarks/compare_rabbitmq.py --tasks 20000 --repeat 3
    .venv/bin/python benchmarks/compare_rabbitmq.py --quick

Results go to Redis for both (celeriac db 12, Celery db 14 by default), so the broker is the only
thing that changes. celeriac's queues carry the prefix ``bench.``, Celery's queue is ``bench_celery``;
every queue and exchange either of them declared under those names is deleted at the end.
"""

from __future__ import annotations

import subprocess
import sys

from compare_redis import main

AMQP = "amqp://guest:guest@127.0.0.1:5672//"


def bench_names(kind: str) -> list[str]:
    """Queues or exchanges this benchmark declared, found with ``rabbitmqctl`` (no management API here)."""
    out = subprocess.run(["rabbitmqctl", "-q", f"list_{kind}", "name"], capture_output=True, text=True, timeout=120).stdout
    names = [line.strip() for line in out.splitlines()[1:]]
    return [n for n in names if n.startswith(("bench.", "bench_celery"))]


def delete_declared() -> None:
    """Delete the benchmark's queues and exchanges (and nothing else) over AMQP."""
    from kombu import Connection

    queues, exchanges = bench_names("queues"), bench_names("exchanges")
    with Connection(AMQP) as conn:
        for name in queues:
            conn.default_channel.queue_delete(name)
        for name in exchanges:
            conn.default_channel.exchange_delete(name)
    print(f"deleted {len(queues)} queue(s) and {len(exchanges)} exchange(s) named bench.* / bench_celery*")


if __name__ == "__main__":
    if "--broker" not in sys.argv:
        sys.argv[1:1] = ["--broker", AMQP]
    try:
        main()
    finally:
        delete_declared()
