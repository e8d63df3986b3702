"""Shared fixtures: services, temporary apps, and worker processes."""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

SERVICES = {
    "redis": ("127.0.0.1", 6379),
    "rabbitmq": ("127.0.0.1", 5672),
    "postgres": ("127.0.0.1", 5432),
}


def service_up(name: str) -> bool:
    host, port = SERVICES[name]
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Skip outside CI when a server is absent; in CI a missing server is a failure."""
    if service_up(name):
        return
    host, port = SERVICES[name]
    message = f"{name} is not answering at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI must run these tests; .ci/run starts the services)")
    pytest.skip(f"{message}; start it to run these tests")


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'celeriac.sqlite3'}"


@pytest.fixture
def memory_url(request):
    # a unique name keeps tests from sharing an in-process store
    import re

    return f"memory://{re.sub(r'[^A-Za-z0-9_-]', '-', request.node.name)}-{id(request)}"


@pytest.fixture(scope="session", autouse=True)
def _rabbitmq_test_queues_deleted():
    """Queues and exchanges of the RabbitMQ runs of the events and control tests go when the session ends."""
    yield
    from tests.contract.rabbitmq_factories import delete_prefixed
    from tests.test_control_support import RABBITMQ_PREFIXES

    for prefix in RABBITMQ_PREFIXES:
        delete_prefixed(prefix)
