"""Django: sends tied to commits, the Django-aware app, and Django's view of stored results."""

from __future__ import annotations

import django
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
                       INSTALLED_APPS=[], USE_TZ=True)
    django.setup()

from django.db import transaction  # noqa: E402

from celeriac import Celery  # noqa: E402
from celeriac.app.task import Task  # noqa: E402
from celeriac.contrib.django import DjangoTask, use_django  # noqa: E402
from celeriac.contrib.django.tasks_results import TaskResultDoesNotExist, result_from_meta  # noqa: E402


@pytest.fixture
def app(memory_url):
    return use_django(Celery("shop", broker=memory_url, set_as_current=False))


@pytest.fixture
def ping(app):
    @app.task
    def ping(x):
        return x

    return ping


def test_use_django_gives_tasks_the_on_commit_methods(app, ping):
    assert isinstance(ping, DjangoTask)


def test_use_django_keeps_a_task_base_the_app_chose(memory_url):
    class Mine(Task):
        pass

    app = use_django(Celery("own", broker=memory_url, task_cls=Mine, set_as_current=False))
    assert app.task_cls is Mine


def test_delay_on_commit_sends_only_when_the_transaction_commits(app, ping):
    with transaction.atomic():
        ping.apply_async_on_commit((1,), task_id="after-commit")
        assert not app.AsyncResult("after-commit").is_known()
    assert app.AsyncResult("after-commit").state == "PENDING"
    assert app.AsyncResult("after-commit").is_known()


def test_delay_on_commit_never_sends_when_the_transaction_rolls_back(app, ping):
    with pytest.raises(RuntimeError), transaction.atomic():
        ping.apply_async_on_commit((1,), task_id="rolled-back")
        raise RuntimeError("rollback")
    assert not app.AsyncResult("rolled-back").is_known()


def test_delay_on_commit_outside_a_transaction_sends_at_once(app, ping):
    ping.apply_async_on_commit((3,), task_id="autocommit")
    assert app.AsyncResult("autocommit").is_known()


def test_an_unknown_result_id_does_not_exist_for_django():
    with pytest.raises(TaskResultDoesNotExist):
        result_from_meta("nope", None, "default")
