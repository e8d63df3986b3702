"""The application: settings, the task registry, and sending.

``Celery("proj")`` with nothing else configured uses one SQLite file in the working directory as
broker and result store. Connections open on first use, never at import.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import logging
import os
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from .. import backends, brokers, message, serializers
from ..config import DEFAULT_SQLITE_URL, Settings, as_seconds, env_overrides, from_object
from ..exceptions import ImproperlyConfigured, NotRegistered
from ..result import AsyncResult
from ..signals import Signal
from . import registry
from .imports import django_installed_apps, import_object, import_related
from .publisher import publish, store_progress
from .registry import current_app as current_app  # re-exported: celeriac.app.base.current_app
from .sending import build_message, utcnow
from .task import BoundTaskDecorator, Task, TaskDecorator, make_task

if TYPE_CHECKING:
    from ..backends.base import ResultBackend
    from ..brokers.base import Broker
    from ..control import Control
    from ..events import EventDispatcher
    from ..result import GroupResult

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("celeriac.app")

class Celery:
    """A celeriac application (also exported as ``Celeriac``)."""

    task_cls: type[Task[Any, Any]] = Task

    def __init__(
        self,
        main: str | None = None,
        broker: str | None = None,
        backend: str | None = None,
        include: Sequence[str] | None = None,
        *,
        task_cls: type[Task[Any, Any]] | str | None = None,
        config_source: Any = None,
        set_as_current: bool = True,
        namespace: str | None = None,
        autofinalize: bool = True,
        **settings: Any,
    ) -> None:
        self.main = main
        self.namespace = namespace
        self.autofinalize = autofinalize
        self.conf = Settings()
        if settings:
            self.conf.update(settings)
        if broker:
            self.conf.broker_url = broker
        if backend:
            self.conf.result_backend = backend
        if include:
            self.conf.include = tuple(include)
        if task_cls is not None:
            self.task_cls = import_object(task_cls) if isinstance(task_cls, str) else task_cls
        self._tasks: dict[str, Task[Any, Any]] = {}
        self._pending: list[tuple[Callable[..., Any], dict[str, Any]]] = []
        self._finalized = False
        self._broker: Broker | None = None
        self._backend: ResultBackend | None = None
        self._events: EventDispatcher | None = None
        self._control: Control | None = None
        self._autodiscover: list[tuple[Sequence[str] | Callable[[], Sequence[str]] | None, str]] = []
        self._pid = os.getpid()
        self.on_after_configure = Signal("on_after_configure")
        self.on_after_finalize = Signal("on_after_finalize")
        self._periodic: list[tuple[Any, Any, str | None, dict[str, Any]]] = []
        if config_source is not None:
            self.config_from_object(config_source)
        registry.adopt(self, set_as_current)
        self._configured = False
        if os.environ.get("DJANGO_SETTINGS_MODULE") and importlib.util.find_spec("django") is not None:
            from ..contrib.django import use_django

            use_django(self)  # set Django up before autodiscovery reads INSTALLED_APPS

    # -- configuration ----------------------------------------------------------------------
    def config_from_object(self, obj: Any, *, namespace: str | None = None, silent: bool = False, force: bool = False) -> None:
        """Load settings from an object, a module name or ``"module:attr"`` (``django.conf:settings``)."""
        if isinstance(obj, str):
            try:
                obj = import_object(obj)
            except ImportError:
                if silent:
                    return
                raise
        self.namespace = namespace or self.namespace
        self.conf.update(from_object(obj, namespace=namespace))
        self._reset_connections()

    def config_from_envvar(self, variable_name: str, *, silent: bool = False) -> None:
        module = os.environ.get(variable_name)
        if not module:
            if silent:
                return
            raise ImproperlyConfigured(f"environment variable {variable_name} is not set")
        self.config_from_object(module)

    def _reset_connections(self) -> None:
        self._broker = None
        self._backend = None

    def _configure(self) -> None:
        if not self._configured:
            self._configured = True
            self.on_after_configure.send(sender=self)

    @property
    def broker_url(self) -> str:
        """The broker URL in force: env override, then settings, then the SQLite default."""
        return env_overrides().get("broker_url") or self.conf.broker_url or DEFAULT_SQLITE_URL

    @property
    def result_backend_url(self) -> str:
        env = env_overrides().get("result_backend")
        if env:
            return env
        configured = self.conf.result_backend
        if configured:
            return str(configured)
        if brokers.scheme_of(self.broker_url) in ("sqlite", "memory"):
            return self.broker_url
        return "disabled://"

    @property
    def result_expires(self) -> float | None:
        return as_seconds(self.conf.result_expires) or None

    def check(self) -> None:
        """Validate URLs and settings now, with messages that say what to write instead."""
        from .. import serializers

        brokers.scheme_of(self.broker_url)
        if brokers.scheme_of(self.broker_url) not in brokers.SCHEMES:
            brokers.from_url(self.broker_url)
        for name in self.conf.accept_content:
            serializers.get(name)
        serializers.get(self.conf.task_serializer)
        if self.conf.task_serializer not in self.conf.accept_content and serializers.get(
            self.conf.task_serializer
        ).content_type not in serializers.accepted_types(self.conf.accept_content):
            raise ImproperlyConfigured(
                f"task_serializer {self.conf.task_serializer!r} is not in accept_content {self.conf.accept_content!r}"
            )

    # -- connections ------------------------------------------------------------------------
    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            for conn in (self._broker, self._backend):
                if conn is not None:
                    conn.after_fork()
            self._events = None

    @property
    def broker(self) -> Broker:
        self._check_fork()
        if self._broker is None:
            self._broker = brokers.from_url(self.broker_url, dict(self.conf.broker_transport_options or {}))
        return self._broker

    @property
    def backend(self) -> ResultBackend:
        self._check_fork()
        if self._backend is None:
            self._backend = backends.from_url(
                self.result_backend_url, dict(self.conf.result_backend_transport_options or {})
            )
        return self._backend

    @property
    def events(self) -> EventDispatcher:
        self._check_fork()
        if self._events is None:
            from ..events import EventDispatcher

            self._events = EventDispatcher(self)
        return self._events

    @property
    def control(self) -> Control:
        if self._control is None:
            from ..control import Control

            self._control = Control(self)
        return self._control

    @property
    def accepted_content(self) -> frozenset[str]:
        accept = tuple(self.conf.accept_content)
        cached = getattr(self, "_accepted_cache", None)
        if cached is None or cached[0] != accept:
            cached = self._accepted_cache = (accept, serializers.accepted_types(accept))
        return cached[1]

    def close(self) -> None:
        if self._events is not None:
            self._events.flush()
        for conn in (self._broker, self._backend):
            if conn is not None:
                conn.close()
        self._broker = self._backend = None

    # -- tasks ------------------------------------------------------------------------------
    @overload
    def task(self, fun: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...

    @overload
    def task(self, fun: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self, *, name: str | None = ..., bind: Literal[True], base: type[Task[Any, Any]] | None = ..., **options: Any
    ) -> BoundTaskDecorator: ...

    @overload
    def task(
        self, *, name: str | None = ..., bind: Literal[False] = ..., base: type[Task[Any, Any]] | None = ...,
        **options: Any,
    ) -> TaskDecorator: ...

    def task(self, fun: Callable[..., Any] | None = None, *, name: str | None = None, bind: bool = False,
             base: type[Task[Any, Any]] | None = None, **options: Any) -> Any:
        """Register a function as a task, bare (``@app.task``) or with options."""
        options.update(bind=bind, base=base)
        if name is not None:
            options["name"] = name

        def decorate(f: Callable[..., Any]) -> Task[Any, Any]:
            return self._register(f, dict(options))

        if fun is not None and callable(fun):
            return decorate(fun)
        return decorate

    def _register(self, fun: Callable[..., Any], options: dict[str, Any]) -> Task[Any, Any]:
        base = options.pop("base", None) or self.task_cls
        options.pop("shared", None)
        name = options.get("name") or f"{fun.__module__}.{fun.__name__}"
        existing = self._tasks.get(name)
        if existing is not None and getattr(existing, "_orig", None) is fun:
            return existing
        task = make_task(self, fun, base, options)
        self._tasks[task.name] = task
        return task

    @property
    def tasks(self) -> dict[str, Task[Any, Any]]:
        if self.autofinalize and not self._finalized:
            self.finalize()
        return self._tasks

    def finalize(self, auto: bool = False) -> None:
        """Import ``include``/``imports`` modules and autodiscovered packages; register shared tasks."""
        if self._finalized:
            return
        self._finalized = True
        self._configure()
        for make in list(registry.shared_tasks):
            make(self)
        self.import_default_modules()
        self._register_builtin_tasks()
        self.on_after_finalize.send(sender=self)

    def import_default_modules(self) -> None:
        for module in [*self.conf.imports, *self.conf.include]:
            importlib.import_module(module)
        for packages, related_name in self._autodiscover:
            names = packages() if callable(packages) else packages
            for package in names or django_installed_apps():
                import_related(package, related_name)
        for make in list(registry.shared_tasks):
            make(self)

    def _register_builtin_tasks(self) -> None:
        from ..canvas import register_builtins

        register_builtins(self)

    def autodiscover_tasks(
        self, packages: Sequence[str] | Callable[[], Sequence[str]] | None = None, related_name: str = "tasks", force: bool = False
    ) -> None:
        """Import ``<package>.tasks`` for each package (Django's INSTALLED_APPS when none are given)."""
        self._autodiscover.append((packages, related_name))
        if force or self._finalized:
            for package in (packages() if callable(packages) else packages) or django_installed_apps():
                import_related(package, related_name)
            for make in list(registry.shared_tasks):
                make(self)

    def lookup(self, name: str) -> Task[Any, Any]:
        try:
            return self.tasks[name]
        except KeyError:
            raise NotRegistered(name) from None

    def add_periodic_task(self, schedule: Any, sig: Any, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None,
                          name: str | None = None, **options: Any) -> str:
        """Add an entry to ``beat_schedule`` (as Celery's ``add_periodic_task``)."""
        from ..canvas import signature

        call = signature(sig) if not isinstance(sig, str) else signature(sig, args, kwargs)
        key = name or f"{call.name}{tuple(call.args)!r}"
        entry = {"task": call.name, "schedule": schedule, "args": tuple(call.args or args),
                 "kwargs": dict(call.kwargs or kwargs or {}), "options": {**call.options, **options}}
        self.conf.beat_schedule = {**dict(self.conf.beat_schedule or {}), key: entry}
        return key

    # -- sending ----------------------------------------------------------------------------
    def send_task(self, name: str, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
                  **options: Any) -> AsyncResult[Any]:
        """Send a task by name (it need not be registered here)."""
        task = options.pop("task", None) or self._tasks.get(name)
        msg = build_message(self, name, args, kwargs, options, task=task)
        self.send_message(msg)
        result: AsyncResult[Any] = AsyncResult(msg.id, app=self, task_name=name)
        return result

    def send_message(self, msg: message.Message) -> None:
        """Encode, record the task as sent (PENDING), publish, and emit ``task-sent``."""
        publish(self, msg)

    def store_state(self, task_id: str, state: str, meta: Any, *, task_name: str | None = None, request: Any = None) -> None:
        """Store a custom or progress state for a running task."""
        store_progress(self, task_id, state, meta, task_name=task_name, request=request)

    # -- results ----------------------------------------------------------------------------
    def AsyncResult(self, task_id: str, **kwargs: Any) -> AsyncResult[Any]:  # noqa: N802 - Celery's name
        return AsyncResult(task_id, app=self, **kwargs)

    def GroupResult(self, group_id: str, results: Sequence[Any] = (), **kwargs: Any) -> GroupResult:  # noqa: N802
        from ..result import GroupResult

        return GroupResult(group_id, results, app=self, **kwargs)

    def signature(self, name: str, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
                  **options: Any) -> Any:
        from ..canvas import Signature

        return Signature(name, args, kwargs, options, app=self)

    # -- running ----------------------------------------------------------------------------
    def worker_main(self, argv: Sequence[str] | None = None) -> None:
        from ..cli.main import main

        main(args=list(argv or ["worker"]), obj={"app": self}, standalone_mode=False)

    start = worker_main

    def now(self) -> dt.datetime:
        return utcnow()

    def __repr__(self) -> str:
        return f"<Celery {self.main or '__main__'} at {id(self):#x}>"


Celeriac = Celery


def __getattr__(name: str) -> Any:
    if name == "shared_task":  # it lives beside its proxy; old imports keep working
        from .shared import shared_task

        return shared_task
    raise AttributeError(name)
