"""``celeriac``: the command line, spelled as Celery's (``celeriac -A proj worker``)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

import click

from ..app.base import Celery
from ..exceptions import ImproperlyConfigured

OPTIONAL_COMMANDS = ("celeriac.cli.beat", "celeriac.cli.dashboard", "celeriac.cli.events")


def find_app(spec: str) -> Celery:
    """Load the app named by ``-A``: ``module``, ``module.attr``, ``package.module.attr`` or ``module:attr``."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attr = spec.partition(":")
    obj = _import_path(module_name) if not attr else importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    if isinstance(obj, Celery):
        return obj
    found = _app_in_module(obj)
    if found is not None:
        return found
    raise click.UsageError(f"-A {spec}: no celeriac app found there (expected an attribute such as 'app' or 'celery')")


def _import_path(path: str) -> Any:
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as exc:
        module, _, attr = path.rpartition(".")
        if not module or exc.name not in (path, None) and not path.startswith(f"{exc.name}."):
            raise
        return getattr(_import_path(module), attr)


def _app_in_module(module: Any) -> Celery | None:
    for attr in ("app", "celery", "celery_app", "celeriac"):
        candidate = getattr(module, attr, None)
        if isinstance(candidate, Celery):
            return candidate
    for value in vars(module).values() if hasattr(module, "__dict__") else ():
        if isinstance(value, Celery):
            return value
    name: str | None = getattr(module, "__name__", None)
    if name and getattr(module, "__path__", None) and importlib.util.find_spec(f"{name}.celery"):
        return _app_in_module(importlib.import_module(f"{name}.celery"))
    return None


class AppGroup(click.Group):
    """Reports configuration errors as one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImproperlyConfigured as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=AppGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-A", "--app", "app_spec", envvar="CELERIAC_APP", help="The app: module, module.attr or module:attr.")
@click.option("-b", "--broker", help="Broker URL (overrides the app's setting).")
@click.option("--result-backend", help="Result backend URL (overrides the app's setting).")
@click.option("--workdir", type=click.Path(file_okay=False), help="Change to this directory first.")
@click.version_option(package_name="celeriac")
@click.pass_context
def cli(ctx: click.Context, app_spec: str | None, broker: str | None, result_backend: str | None, workdir: str | None) -> None:
    """celeriac: run workers, send and inspect tasks, watch the dashboard."""
    if workdir:
        os.chdir(workdir)
    ctx.ensure_object(dict)
    if "app" not in ctx.obj:
        ctx.obj["app_spec"] = app_spec
        ctx.obj["overrides"] = {"broker_url": broker, "result_backend": result_backend}


def get_app(ctx: click.Context) -> Celery:
    """The app for a command: ``-A`` if given, else a default app on the configured broker."""
    obj = ctx.find_root().obj
    if "app" not in obj:
        spec = obj.get("app_spec")
        loaded = find_app(spec) if spec else Celery("default")
        for key, value in (obj.get("overrides") or {}).items():
            if value:
                loaded.conf[key] = value
        obj["app"] = loaded
    app: Celery = obj["app"]
    return app


def _register_commands() -> None:
    from . import operations, worker

    worker.register(cli)
    operations.register(cli)
    for name in OPTIONAL_COMMANDS:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(cli)


_register_commands()


def main(args: list[str] | None = None, **kwargs: Any) -> Any:
    return cli.main(args=args, prog_name="celeriac", **kwargs)
