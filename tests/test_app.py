"""The app: settings, task registration, sending, and errors at the call."""

from __future__ import annotations

import types

import pytest

from celeriac import Celeriac, Celery, shared_task
from celeriac.app.task import Task
from celeriac.exceptions import ContentDisallowed, EncodeError, ImproperlyConfigured, MessageTooLarge, NotRegistered


@pytest.fixture
def app(memory_url):
    return Celery("proj", broker=memory_url, backend=memory_url)


def _depth(app):
    return sum(s.ready + s.delayed for s in app.broker.stats())


def test_celeriac_is_the_same_class_as_celery():
    assert Celeriac is Celery


def test_task_name_is_module_and_function(app):
    @app.task
    def add(x, y):
        return x + y

    assert add.name == f"{__name__}.add"
    assert app.tasks[add.name] is add


def test_task_with_options_keeps_them(app):
    @app.task(name="custom.name", max_retries=7, ignore_result=True)
    def f():
        return 1

    assert (f.name, f.max_retries, f.ignore_result) == ("custom.name", 7, True)


def test_calling_a_task_runs_it_inline(app):
    @app.task
    def mul(x, y):
        return x * y

    assert mul(6, 7) == 42
    assert _depth(app) == 0


def test_delay_sends_and_records_the_task_as_sent(app):
    @app.task
    def add(x, y):
        return x + y

    result = add.delay(2, 3)
    assert result.state == "PENDING"
    assert result.is_known()
    assert not app.AsyncResult("nobody-sent-this").is_known()
    assert _depth(app) == 1


def test_apply_async_options_reach_the_message(app):
    from celeriac import message

    @app.task
    def add(x, y):
        return x + y

    add.apply_async((1, 2), queue="fast", priority=7, task_id="fixed-id", headers={"tenant": "a"},
                    time_limit=30, soft_time_limit=20, expires=120)
    (delivery,) = app.broker.fetch(["fast"], 1, consumer="t", timeout=1)
    msg = message.decode(delivery.payload, app.accepted_content)
    assert (msg.id, msg.priority, msg.time_limit, msg.soft_time_limit, tuple(msg.args)) == ("fixed-id", 7, 30, 20, (1, 2))
    assert msg.extra_headers["tenant"] == "a"
    assert msg.expires is not None


def test_countdown_keeps_the_message_delayed_in_the_broker(app):
    @app.task
    def add(x, y):
        return x + y

    add.apply_async((1, 2), countdown=60)
    (stats,) = app.broker.stats(["celery"])
    assert (stats.ready, stats.delayed) == (0, 1)


def test_task_routes_choose_the_queue(memory_url):
    app = Celery("proj", broker=memory_url, backend=memory_url, task_routes={"reports.*": {"queue": "slow"}})

    @app.task(name="reports.monthly")
    def monthly():
        return None

    monthly.delay()
    assert [s.name for s in app.broker.stats() if s.ready] == ["slow"]


def test_send_task_by_name_needs_no_registration(app):
    result = app.send_task("elsewhere.defined", (1,), {"a": 2})
    assert result.is_known() and result.name == "elsewhere.defined"


def test_unknown_setting_close_to_a_known_one_is_an_error(app):
    with pytest.raises(ImproperlyConfigured, match="did you mean 'broker_url'"):
        app.conf.update(broker_ulr="redis://")


def test_unknown_unrelated_setting_is_logged_not_fatal(app, caplog):
    app.conf.update(my_own_thing=1)
    assert "ignoring unknown setting 'my_own_thing'" in caplog.text


def test_old_upper_case_names_are_translated(app):
    app.conf.update(CELERY_ALWAYS_EAGER=True, BROKER_URL="memory://x")
    assert app.conf.task_always_eager is True
    assert app.conf.broker_url == "memory://x"


def test_a_setting_read_as_an_attribute_follows_every_way_of_changing_it(app):
    conf = app.conf
    assert conf.task_default_queue == "celery"  # read once: kept for the next read
    conf.task_default_queue = "by-attribute"
    assert conf.task_default_queue == "by-attribute"
    conf["task_default_queue"] = "by-item"
    assert conf.task_default_queue == "by-item"
    conf.update(CELERY_DEFAULT_QUEUE="by-old-name")
    assert conf.task_default_queue == "by-old-name"
    conf |= {"task_default_queue": "by-merge"}
    assert conf.task_default_queue == "by-merge"
    del conf["task_default_queue"]
    assert conf.task_default_queue == "celery"
    conf.setdefault("task_default_queue", "by-setdefault")
    assert conf.task_default_queue == "by-setdefault"
    assert conf.pop("task_default_queue") == "by-setdefault"
    assert conf.task_default_queue == "celery"
    app.config_from_object({"task_default_queue": "by-object"})
    assert conf.task_default_queue == "by-object"
    conf.clear()
    assert conf.task_default_queue == "celery" and conf.changes() == {}
    with pytest.raises(AttributeError):
        conf.no_such_setting  # noqa: B018


def test_config_from_object_with_django_style_namespace(app):
    settings = types.SimpleNamespace(CELERY_BROKER_URL="memory://ns", CELERY_RESULT_BACKEND="memory://ns",
                                     CELERY_TASK_SERIALIZER="json", DEBUG=True, SECRET_KEY="x")
    app.config_from_object(settings, namespace="CELERY")
    assert app.conf.broker_url == "memory://ns"
    assert app.conf.result_backend == "memory://ns"


def test_config_from_object_by_module_name(app, tmp_path, monkeypatch):
    (tmp_path / "celeryconfig.py").write_text("broker_url = 'memory://mod'\ntask_default_queue = 'q1'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app.config_from_object("celeryconfig")
    assert (app.conf.broker_url, app.conf.task_default_queue) == ("memory://mod", "q1")


def test_env_var_overrides_the_broker_url(monkeypatch):
    monkeypatch.setenv("CELERIAC_BROKER_URL", "memory://from-env")
    app = Celery("proj", broker="redis://ignored:1/0")
    assert app.broker_url == "memory://from-env"


def test_no_configuration_means_one_sqlite_file_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CELERIAC_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERIAC_RESULT_BACKEND", raising=False)
    app = Celery("tasks")
    assert app.broker_url == app.result_backend_url == "sqlite:///celeriac.sqlite3"
    app.send_task("x.y")
    assert (tmp_path / "celeriac.sqlite3").exists()


@pytest.mark.parametrize("url, hint", [
    ("localhost:6379", "expected a URL"),
    ("redsi://localhost", "unknown broker scheme 'redsi'"),
    ("sqlite://relative.db", "three slashes"),
])
def test_bad_broker_url_says_what_to_write(url, hint):
    app = Celery("proj", broker=url)
    with pytest.raises(ImproperlyConfigured, match=hint):
        app.send_task("x")


def test_non_serializable_argument_fails_at_the_call_and_sends_nothing(app):
    @app.task
    def f(x):
        return x

    with pytest.raises(EncodeError, match="object"):
        f.delay(object())
    assert _depth(app) == 0


def test_pickle_is_refused_unless_accepted(app):
    @app.task(serializer="pickle")
    def f(x):
        return x

    with pytest.raises(ContentDisallowed, match="accept_content"):
        f.delay(1)
    assert _depth(app) == 0
    app.conf.accept_content = ["json", "pickle"]
    assert f.delay(1).is_known()


def test_oversized_payload_is_refused_at_the_call(app):
    app.conf.task_message_max_size = 1000

    @app.task
    def f(x):
        return x

    with pytest.raises(MessageTooLarge, match="over the limit of 1000"):
        f.delay("x" * 2000)
    assert _depth(app) == 0


def test_lookup_of_an_unknown_task_is_not_registered(app):
    with pytest.raises(NotRegistered):
        app.lookup("missing.task")


def test_custom_task_class_applies_to_every_task(memory_url):
    class Tagged(Task):
        tag = "custom"

    app = Celery("proj", broker=memory_url, backend=memory_url, task_cls=Tagged)

    @app.task
    def f():
        return 1

    assert isinstance(f, Tagged) and f.tag == "custom"


def test_shared_task_binds_to_the_current_app(memory_url):
    @shared_task
    def shared_add(x, y):
        return x + y

    app = Celery("later", broker=memory_url, backend=memory_url)
    assert shared_add.name in app.tasks
    assert shared_add(1, 2) == 3
    assert shared_add.delay(1, 2).is_known()


def test_autodiscover_imports_package_tasks_modules(memory_url, tmp_path, monkeypatch):
    pkg = tmp_path / "shopapp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tasks.py").write_text("from celeriac import shared_task\n@shared_task\ndef ship(order):\n    return order\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = Celery("proj", broker=memory_url, backend=memory_url)
    app.autodiscover_tasks(["shopapp"])
    assert "shopapp.tasks.ship" in app.tasks
