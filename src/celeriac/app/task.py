"""``Task``: what ``@app.task`` makes of a function, with Celery's attributes and calls.

A task is a singleton instance of a subclass made per function (``run`` is the function). The
worker runs a task by *calling* it, so a custom ``__call__`` (a Flask app context, say) wraps
every run, as in Celery. ``delay``/``apply_async`` keep the function's signature for type
checkers through ``ParamSpec``.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from .. import states
from ..exceptions import MaxRetriesExceededError, Retry
from ..retry import retry_countdown
from .request import Request, current_request, request_context

if TYPE_CHECKING:
    from ..canvas import Signature
    from ..result import AsyncResult, EagerResult
    from .base import Celery

P = ParamSpec("P")
R = TypeVar("R")


class Task(Generic[P, R]):
    """Base class of every task. Subclass it for shared behaviour (``base=MyTask``)."""

    name: str = ""
    app: Celery
    typing: ClassVar[bool] = True
    bind: ClassVar[bool] = False
    max_retries: int | None = 3
    default_retry_delay: float = 180
    rate_limit: str | None = None
    ignore_result: bool | None = None
    store_errors_even_if_ignored: bool | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    acks_late: bool | None = None
    acks_on_failure_or_timeout: bool | None = None
    reject_on_worker_lost: bool | None = None
    track_started: bool | None = None
    max_deliveries: int | None = None
    serializer: str | None = None
    priority: int | None = None
    queue: str | None = None
    expires: float | dt.datetime | None = None
    autoretry_for: Sequence[type[BaseException]] = ()
    dont_autoretry_for: Sequence[type[BaseException]] = ()
    retry_kwargs: Mapping[str, Any] = {}
    retry_backoff: bool | float = False
    retry_backoff_max: float = 600
    retry_jitter: bool = True
    throws: Sequence[type[BaseException]] = ()
    abstract: ClassVar[bool] = True
    is_async: bool = False

    # -- running ----------------------------------------------------------------------------
    def run(self, *args: P.args, **kwargs: P.kwargs) -> R:
        raise NotImplementedError("tasks must define run()")

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task body here and now (no broker). The worker calls this too."""
        if current_request() is None:
            with request_context(Request(id=None, task=self.name, args=args, kwargs=kwargs)):
                return self.run(*args, **kwargs)
        return self.run(*args, **kwargs)

    @property
    def request(self) -> Request:
        return current_request() or Request(task=self.name)

    # -- sending ----------------------------------------------------------------------------
    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send the task with these arguments; options go through :meth:`apply_async`."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: dt.datetime | None = None,
        expires: float | dt.datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        task_id: str | None = None,
        headers: Mapping[str, Any] | None = None,
        link: Any = None,
        link_error: Any = None,
        ignore_result: bool | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        serializer: str | None = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """Send the task with options, as Celery's ``apply_async``."""
        options.update(
            countdown=countdown, eta=eta, expires=expires, queue=queue, priority=priority, task_id=task_id,
            headers=headers, link=link, link_error=link_error, ignore_result=ignore_result,
            time_limit=time_limit, soft_time_limit=soft_time_limit, serializer=serializer,
        )
        options = {k: v for k, v in options.items() if v is not None}
        if self.app.conf.task_always_eager:
            eager: AsyncResult[R] = self.apply(args, kwargs, **options)
            return eager
        return self.app.send_task(self.name, args, kwargs, task=self, **options)

    def apply(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None, **options: Any) -> EagerResult[R]:
        """Run the task in this process and return an already-ready result (retries included)."""
        from ..eager import run_eagerly

        return run_eagerly(self, tuple(args or ()), dict(kwargs or {}), options)

    def AsyncResult(self, task_id: str, **kwargs: Any) -> AsyncResult[R]:  # noqa: N802 - Celery's name
        return self.app.AsyncResult(task_id, task_name=self.name, **kwargs)

    # -- signatures -------------------------------------------------------------------------
    def signature(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None, **options: Any) -> Signature:
        from ..canvas import Signature

        return Signature(self.name, args, kwargs, options, app=self.app)

    subtask = signature

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        return self.signature(args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        return self.signature(args, kwargs, immutable=True)

    def map(self, it: Any) -> Any:
        from ..workflows_maps import xmap

        return xmap(self.s(), it, app=self.app)

    def starmap(self, it: Any) -> Any:
        from ..workflows_maps import xstarmap

        return xstarmap(self.s(), it, app=self.app)

    def chunks(self, it: Any, n: int) -> Any:
        from ..workflows_maps import chunks

        return chunks(self.s(), it, n, app=self.app)

    # -- retrying and state -----------------------------------------------------------------
    def retry(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: dt.datetime | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        """Ask for another run later. Raises :class:`Retry` (the worker re-sends with a new eta).

        Past ``max_retries`` it raises ``exc`` if given, else :class:`MaxRetriesExceededError`.
        """
        request = self.request
        limit = self.max_retries if max_retries is None else max_retries
        if limit is not None and request.retries >= limit:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"Can't retry {self.name}[{request.id}] args:{tuple(request.args)} kwargs:{dict(request.kwargs)}"
            )
        if eta is not None:
            delay = max(0.0, (eta - dt.datetime.now(dt.UTC)).total_seconds())
        else:
            delay = retry_countdown(
                request.retries, countdown=countdown, default_delay=self.default_retry_delay,
                backoff=self.retry_backoff, backoff_max=self.retry_backoff_max, jitter=self.retry_jitter,
            )
        signal = Retry(exc=exc, when=delay, sig_args=tuple(request.args if args is None else args),
                       sig_kwargs=dict(request.kwargs if kwargs is None else kwargs), options=options)
        if throw:
            raise signal
        return signal

    def update_state(self, task_id: str | None = None, state: str | None = None, meta: Any = None, **kwargs: Any) -> None:
        """Store a custom state (``PROGRESS`` with ``{"current": 40, "total": 100}``, say)."""
        task_id = task_id or self.request.id
        if task_id is None:
            return
        self.app.store_state(task_id, state or states.PENDING, meta, task_name=self.name, request=self.request)

    def send_event(self, type_: str, **fields: Any) -> None:
        self.app.events.send(type_, uuid=self.request.id, **fields)

    # -- hooks (Celery's names and arguments) ------------------------------------------------
    def before_start(self, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Called in the worker before the task runs."""

    def on_success(self, retval: Any, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Called in the worker after the task returned."""

    def on_failure(self, exc: BaseException, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any], einfo: Any) -> None:
        """Called in the worker after the task raised."""

    def on_retry(self, exc: BaseException, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any], einfo: Any) -> None:
        """Called in the worker when the task is retried."""

    def after_return(
        self, status: str, retval: Any, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any], einfo: Any
    ) -> None:
        """Called in the worker after any outcome."""

    def __repr__(self) -> str:
        return f"<@task: {self.name} of {getattr(self.app, 'main', None)}>"


class TaskDecorator(Protocol):
    """What ``@app.task(...)`` returns: keeps the function's types, awaiting async ones."""

    @overload
    def __call__(self, fun: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...

    @overload
    def __call__(self, fun: Callable[P, R], /) -> Task[P, R]: ...


class BoundTaskDecorator(Protocol):
    """What ``@app.task(bind=True)`` returns: the function's first parameter is the task, not an argument."""

    @overload
    def __call__(self, fun: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]], /) -> Task[P, R]: ...

    @overload
    def __call__(self, fun: Callable[Concatenate[Any, P], R], /) -> Task[P, R]: ...


def make_task(app: Celery, fun: Callable[..., Any], base: type[Task[Any, Any]], options: dict[str, Any]) -> Task[Any, Any]:
    """Build the singleton task for ``fun``: a subclass of ``base`` whose ``run`` is ``fun``."""
    bind = bool(options.pop("bind", False))
    name = options.pop("name", None) or f"{fun.__module__}.{fun.__name__}"
    attrs: dict[str, Any] = {
        "name": name,
        "app": app,
        "run": fun if bind else staticmethod(fun),
        "_orig": staticmethod(fun),
        "__doc__": fun.__doc__,
        "__module__": fun.__module__,
        "__qualname__": fun.__qualname__,
        "__wrapped__": fun,
        "abstract": False,
        "is_async": inspect.iscoroutinefunction(fun),
        "bind": bind,
    }
    for key, value in options.items():
        if key.startswith("_"):
            continue
        attrs[key] = value
    cls = type(fun.__name__, (base,), attrs)
    return cls()
