"""``celeriac``: the command line, spelled as Celery's (``celeriac -A proj worker``)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import click

from ..app.base import Celery
from ..exceptions import ImproperlyConfigured

OPTIONAL_COMMANDS = ("celeriac.cli.beat", "celeriac.cli.dashboard", "celeriac.cli.events")

#: command name -> the module whose ``register(group)`` adds it; a module is imported when one of its
#: commands is first looked up, so ``celeriac worker`` does not load beat, the dashboard or the operator commands
COMMAND_MODULES = {
    "worker": "celeriac.cli.worker",
    **dict.fromkeys(("call", "result", "purge", "status", "inspect", "control", "demo"), "celeriac.cli.operations"),
    "beat": "celeriac.cli.beat",
    **dict.fromkeys(("flower", "dashboard"), "celeriac.cli.dashboard"),
    "events": "celeriac.cli.events",
}


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


class LazyCommands(MutableMapping[str, click.Command]):
    """The group's commands, each module imported and registered on first use."""

    def __init__(self, group: click.Group, modules: dict[str, str]) -> None:
        self.group = group
        self.loaded: dict[str, click.Command] = {}
        self.pending = {name: module for name, module in modules.items()
                        if module not in OPTIONAL_COMMANDS or importlib.util.find_spec(module) is not None}

    def _load(self, name: str) -> None:
        module = self.pending.get(name)
        if module is None:
            return
        for other in [n for n, m in self.pending.items() if m == module]:
            del self.pending[other]
        importlib.import_module(module).register(self.group)

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.loaded:
            self._load(name)
        return self.loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.pending.pop(name, None)
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if self.pending.pop(name, None) is None:
            del self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter([*self.loaded, *(n for n in self.pending if n not in self.loaded)])

    def __len__(self) -> int:
        return len(self.loaded.keys() | self.pending.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.loaded or name in self.pending


cli.commands = LazyCommands(cli, COMMAND_MODULES)  # type: ignore[assignment]  # click only uses the mapping protocol


def main(args: list[str] | None = None, **kwargs: Any) -> Any:
    return cli.main(args=args, prog_name="celeriac", **kwargs)
