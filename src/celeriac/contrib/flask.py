"""Flask: one extension that makes a celeriac app from the Flask config and runs tasks in its app context.

    celeriac = Celeriac(flask_app)        # or Celeriac() then celeriac.init_app(flask_app)
    celery_app = flask_app.extensions["celeriac"]

Settings come from a nested ``CELERY`` mapping (``app.config["CELERY"] = {"broker_url": ...}``) and from
``CELERY_``-prefixed keys (``CELERY_BROKER_URL``); prefixed keys win, since ``from_prefixed_env`` writes them.
Every task runs inside ``flask_app.app_context()``, so ``current_app.config`` and extensions that need
an app context (Flask-SQLAlchemy, say) work in the worker as they do in a view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, has_app_context

from ..app.base import Celery
from ..app.task import Task
from ..config import from_object

EXTENSION_KEY = "celeriac"


class FlaskTask(Task[Any, Any]):
    """Runs the task body inside the bound Flask app's context (unless one is already pushed)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        flask_app: Flask | None = getattr(self.app, "flask_app", None)
        if flask_app is None or has_app_context():
            return super().__call__(*args, **kwargs)
        with flask_app.app_context():
            return super().__call__(*args, **kwargs)


def settings_from_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The celeriac settings in a Flask config: the nested ``CELERY`` mapping, then ``CELERY_*`` keys."""
    nested = config.get("CELERY") or {}
    if not isinstance(nested, Mapping):
        raise TypeError(f"app.config['CELERY'] must be a mapping of settings, not {type(nested).__name__}")
    settings = from_object(dict(nested))
    settings.update(from_object(config, namespace="CELERY"))
    return settings


class Celeriac:
    """The Flask extension. ``celeriac_app`` lets you bind an app you made yourself."""

    def __init__(self, flask_app: Flask | None = None, celeriac_app: Celery | None = None) -> None:
        self.celeriac_app = celeriac_app
        if flask_app is not None:
            self.init_app(flask_app)

    def init_app(self, flask_app: Flask) -> Celery:
        """Configure (or create) the celeriac app for ``flask_app`` and register it as an extension."""
        app = self.celeriac_app
        if app is None:
            app = Celery(flask_app.import_name, task_cls=FlaskTask)
            self.celeriac_app = app
        elif not issubclass(app.task_cls, FlaskTask):
            app.task_cls = type("FlaskTask", (FlaskTask, app.task_cls), {})
        app.config_from_object(settings_from_config(flask_app.config))
        setattr(app, "flask_app", flask_app)  # noqa: B010 - tasks reach the Flask app through their celeriac app
        flask_app.extensions[EXTENSION_KEY] = app
        return app


def celeriac_app_for(flask_app: Flask) -> Celery:
    """The celeriac app bound to ``flask_app`` by :class:`Celeriac`."""
    try:
        bound: Celery = flask_app.extensions[EXTENSION_KEY]
        return bound
    except KeyError:
        raise RuntimeError("this Flask app has no celeriac extension: call Celeriac(app) or init_app(app) first") from None
