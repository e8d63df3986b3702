"""What a worker process loads: modules only some paths need are imported on first use."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_redis_client_loads_without_package_metadata_or_the_asyncio_client():
    out = _run("""
        import sys
        import celeriac.brokers.redis, celeriac.backends.redis
        import redis, redis.utils
        print(sorted(m for m in ("importlib.metadata", "email", "zipfile", "redis.asyncio") if m in sys.modules))
        print(redis.utils.get_lib_version() == redis.__version__)
        print(redis.asyncio.Redis.__module__)                 # first use imports the real client
        import redis.asyncio as aio
        from redis.asyncio import Redis
        print(aio.Redis is Redis is redis.asyncio.Redis)
        import importlib.metadata
        print(importlib.metadata.version("redis") == redis.__version__)
        print(redis.utils.metadata.PackageNotFoundError is importlib.metadata.PackageNotFoundError)
    """)
    assert out.split() == ["[]", "True", "redis.asyncio.client", "True", "True", "True"]


def test_redis_imported_first_is_left_alone():
    out = _run("""
        import sys, redis
        import celeriac.brokers.redis
        print(type(redis.utils.metadata).__name__, "redis.asyncio.client" in sys.modules)
    """)
    assert out.split() == ["module", "True"]


def test_cli_imports_a_command_module_when_its_command_is_used():
    out = _run("""
        import sys
        from celeriac.cli.main import cli
        print(sorted(cli.commands))
        print([m for m in ("celeriac.cli.worker", "celeriac.cli.beat", "celeriac.beat", "celeriac.cli.dashboard") if m in sys.modules])
        print(cli.commands["worker"].name, "celeriac.cli.worker" in sys.modules, "celeriac.cli.beat" in sys.modules)
        print(all(cli.commands[name].name == name for name in cli.commands), len(cli.commands))
    """)
    lines = out.splitlines()
    assert lines[0] == str(sorted(["beat", "call", "control", "dashboard", "demo", "events", "flower", "inspect", "purge",
                                   "result", "status", "worker"]))
    assert lines[1:] == ["[]", "worker True False", "True 12"]


def test_decimal_is_imported_only_to_decode_one():
    out = _run("""
        import sys
        from celeriac.serializers import json_dumps, json_loads
        print("decimal" in sys.modules, json_loads(json_dumps({"a": 1})))
        value = json_loads(b'[{"__type__": "decimal", "__value__": "1.50"}]')[0]
        print(type(value).__name__, value, json_dumps([value]).decode())
    """)
    assert out.splitlines() == ["False {'a': 1}", 'Decimal 1.50 [{"__type__":"decimal","__value__":"1.50"}]']


def test_the_prefork_worker_loads_neither_multiprocessing_nor_what_it_brings():
    out = _run("""
        import sys
        import celeriac.cli.worker, celeriac.worker.controller, celeriac.worker.prefork, celeriac.brokers.redis
        print(sorted(m for m in ("multiprocessing", "pickle", "tempfile", "shutil", "bz2", "lzma") if m in sys.modules))
    """)
    assert out.split() == ["[]"]
