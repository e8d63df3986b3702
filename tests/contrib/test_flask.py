"""The Flask extension: configuration from the Flask config, tasks inside the app context."""

from __future__ import annotations

import pytest
from flask import Flask, current_app

from celeriac import Celery
from celeriac.contrib.flask import Celeriac, FlaskTask, celeriac_app_for, settings_from_config


def make_flask(**config):
    app = Flask("shop")
    app.config.update(config)
    return app


def test_nested_and_prefixed_settings_are_read_and_prefixed_wins():
    config = {"CELERY": {"broker_url": "memory://nested", "task_default_queue": "shop"},
              "CELERY_BROKER_URL": "memory://prefixed", "SECRET_KEY": "x"}
    assert settings_from_config(config) == {"broker_url": "memory://prefixed", "task_default_queue": "shop"}


def test_nested_config_must_be_a_mapping():
    with pytest.raises(TypeError, match="mapping"):
        settings_from_config({"CELERY": "redis://"})


def test_extension_binds_an_app_configured_from_flask(memory_url):
    flask_app = make_flask(CELERY={"broker_url": memory_url})
    Celeriac(flask_app)
    app = celeriac_app_for(flask_app)
    assert app.broker_url == memory_url
    assert issubclass(app.task_cls, FlaskTask)


def test_tasks_run_inside_the_flask_app_context(memory_url):
    flask_app = make_flask(CELERY={"broker_url": memory_url}, GREETING="Hej")
    app = Celeriac(flask_app).celeriac_app

    @app.task
    def greet(name):
        return f"{current_app.config['GREETING']}, {name}"

    assert greet.apply(("Ada",)).get() == "Hej, Ada"
    assert greet("Bo") == "Hej, Bo"


def test_init_app_later_adopts_a_given_app_and_its_task_base(memory_url):
    class Audited(FlaskTask):
        pass

    own = Celery("own", broker=memory_url, task_cls=Audited, set_as_current=False)
    ext = Celeriac(celeriac_app=own)
    flask_app = make_flask(GREETING="Hi")
    assert ext.init_app(flask_app) is own
    assert own.task_cls is Audited and flask_app.extensions["celeriac"] is own


def test_unbound_flask_app_says_how_to_bind():
    with pytest.raises(RuntimeError, match="Celeriac\\(app\\)"):
        celeriac_app_for(make_flask())
