"""Signatures and workflow primitives (chain, group, chord, ...).

A signature is a dict with Celery's keys (``task``, ``args``, ``kwargs``, ``options``,
``subtask_type``, ``immutable``), so it travels in messages as is.

The worker calls :func:`after_success` and :func:`after_failure` when it settles a task; they
send what the message's ``callbacks``/``errbacks``/``chain``/``chord`` ask for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app.base import Celery
    from .message import Message
    from .result import AsyncResult


class Signature(dict[str, Any]):
    """A task call that can be passed around, sent later, or linked."""

    def __init__(
        self,
        task: str | Mapping[str, Any] | None = None,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        app: Celery | None = None,
        subtask_type: str | None = None,
        immutable: bool = False,
        **extra_options: Any,
    ) -> None:
        if isinstance(task, Mapping):
            super().__init__(task)
            self.setdefault("options", {})
        else:
            opts = dict(options or {}, **extra_options)
            immutable = bool(opts.pop("immutable", immutable))
            super().__init__(
                task=getattr(task, "name", task), args=list(args or ()), kwargs=dict(kwargs or {}),
                options=opts, subtask_type=subtask_type, immutable=immutable,
            )
        self._app = app

    @property
    def app(self) -> Celery:
        from .app.base import current_app

        return self._app or current_app()

    @property
    def name(self) -> str:
        return str(self["task"])

    @property
    def args(self) -> list[Any]:
        return list(self.get("args") or ())

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.get("kwargs") or {})

    @property
    def options(self) -> dict[str, Any]:
        return self["options"]  # type: ignore[no-any-return]

    @property
    def immutable(self) -> bool:
        return bool(self.get("immutable"))

    def clone(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None, **options: Any) -> Signature:
        """A copy with extra args prepended (unless immutable), kwargs merged and options updated."""
        new_args = self.args if self.immutable or not args else [*args, *self.args]
        new_kwargs = self.kwargs if self.immutable else {**self.kwargs, **dict(kwargs or {})}
        sig = Signature(dict(self), app=self._app)
        sig.update(args=new_args, kwargs=new_kwargs, options={**self.options, **options})
        return sig

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        if immutable is not None:
            self["immutable"] = immutable
        self.options.update(options)
        return self

    def link(self, callback: Mapping[str, Any]) -> Mapping[str, Any]:
        self.options.setdefault("link", []).append(dict(callback))
        return callback

    def link_error(self, errback: Mapping[str, Any]) -> Mapping[str, Any]:
        self.options.setdefault("link_error", []).append(dict(errback))
        return errback

    def apply_async(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None, **options: Any) -> AsyncResult[Any]:
        sig = self.clone(args, kwargs, **options)
        task = self.app._tasks.get(sig.name)
        opts = {k: v for k, v in sig.options.items() if k not in ("subtask_type",)}
        if task is not None:
            return task.apply_async(sig.args, sig.kwargs, **opts)
        return self.app.send_task(sig.name, sig.args, sig.kwargs, **opts)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult[Any]:
        return self.apply_async(args, kwargs)

    def apply(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None, **options: Any) -> Any:
        sig = self.clone(args, kwargs, **options)
        return self.app.tasks[sig.name].apply(sig.args, sig.kwargs, **sig.options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        sig = self.clone(args, kwargs)
        return self.app.tasks[sig.name](*sig.args, **sig.kwargs)

    def __or__(self, other: Any) -> Any:
        from .workflows import chain

        return chain(self, other)

    def __repr__(self) -> str:
        args = ", ".join([*(repr(a) for a in self.args), *(f"{k}={v!r}" for k, v in self.kwargs.items())])
        return f"{self.name}({args})"


def signature(varies: Any, *args: Any, **kwargs: Any) -> Signature:
    """Celery's ``signature()``: from a name, a task, or a dict."""
    if isinstance(varies, Signature):
        return varies
    if isinstance(varies, Mapping):
        return Signature(varies, app=kwargs.get("app"))
    return Signature(varies, *args, **kwargs)


subtask = signature


def maybe_signature(value: Any, app: Celery | None = None) -> Signature | None:
    if value is None:
        return None
    sig = signature(value)
    if app is not None:
        sig._app = app
    return sig


def after_success(app: Celery, msg: Message, value: Any) -> None:
    """Send the callbacks and the next chain step of a task that succeeded."""
    from .workflows import on_task_success

    on_task_success(app, msg, value)


def after_failure(app: Celery, msg: Message, exc: BaseException) -> None:
    """Send errbacks and fail a waiting chord for a task that failed."""
    from .workflows import on_task_failure

    on_task_failure(app, msg, exc)


def register_builtins(app: Celery) -> None:
    from .workflows import register_builtins as register

    register(app)


def __getattr__(name: str) -> Any:
    if name in ("chain", "group", "chord", "chunks", "xmap", "xstarmap"):
        from . import workflows

        return getattr(workflows, name)
    raise AttributeError(name)
