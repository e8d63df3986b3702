"""The object ``@shared_task`` returns: the task of the current app, resolved on each use."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Literal, ParamSpec, TypeVar, overload

from .task import BoundTaskDecorator, Task, TaskDecorator

P = ParamSpec("P")
R = TypeVar("R")


class SharedTaskProxy:
    """Stands for the same task in whichever app is current (as Celery's shared tasks do)."""

    def __init__(self, fun: Callable[..., Any], options: dict[str, Any]) -> None:
        self._fun = fun
        self._options = dict(options)
        self.__wrapped__ = fun
        self.__doc__ = fun.__doc__
        self.__name__ = fun.__name__
        self.__module__ = fun.__module__

    def _task(self) -> Any:
        from .registry import current_app

        app = current_app()
        name = self._options.get("name") or f"{self._fun.__module__}.{self._fun.__name__}"
        task = app._tasks.get(name)
        if task is None:
            task = app._register(self._fun, dict(self._options))
        return task

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._task(), attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._task()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<@shared_task: {self._fun.__module__}.{self._fun.__name__}>"


@overload
def shared_task(fun: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...


@overload
def shared_task(fun: Callable[P, R], /) -> Task[P, R]: ...


@overload
def shared_task(
    *, name: str | None = ..., bind: Literal[True], base: type[Task[Any, Any]] | None = ..., **options: Any
) -> BoundTaskDecorator: ...


@overload
def shared_task(
    *, name: str | None = ..., bind: Literal[False] = ..., base: type[Task[Any, Any]] | None = ..., **options: Any
) -> TaskDecorator: ...


def shared_task(fun: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Declare a task usable by every app (Django apps, reusable libraries)."""
    def decorate(f: Callable[..., Any]) -> Task[Any, Any]:
        from .registry import all_apps, shared_tasks

        shared_tasks.append(lambda app: app._register(f, dict(options)))
        for app in list(all_apps):
            app._register(f, dict(options))
        return SharedTaskProxy(f, options)  # type: ignore[return-value]

    if fun is not None and callable(fun):
        return decorate(fun)
    return decorate
