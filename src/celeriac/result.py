"""``AsyncResult`` and friends: read a task's state and wait for its outcome.

``get()`` waits on the backend's notification (``backend.wait``), re-reading only when woken.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import exceptions, states
from .app.request import current_request
from .excinfo import dict_to_exception

if TYPE_CHECKING:
    from .app.base import Celery
    from .backends.base import Meta, ResultBackend

R = TypeVar("R")


def _assert_not_in_task() -> None:
    request = current_request()
    if request is not None and request.id is not None and not request.is_eager:
        raise RuntimeError(
            "Never call result.get() within a task: it can deadlock the worker. "
            "Use a chain, a chord or a callback (link=) instead."
        )


class AsyncResult(Generic[R]):
    """The result of a task sent to a worker, read from the result backend."""

    def __init__(
        self,
        id: str,  # noqa: A002 - Celery's name
        backend: ResultBackend | None = None,
        task_name: str | None = None,
        app: Celery | None = None,
        parent: AsyncResult[Any] | None = None,
    ) -> None:
        if app is None:
            from .app.base import current_app

            app = current_app()
        self.id = id
        self.app = app
        self._backend = backend  # the app's, looked up when first used: most results are never read
        self.task_name = task_name
        self._parent = parent
        self._cache: Meta | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its id, task name and parent (for sessions and caches): unpickled, it uses the current app."""
        return AsyncResult, (self.id, None, self.task_name, None, self._parent)

    @property
    def backend(self) -> ResultBackend:
        if self._backend is None:
            self._backend = self.app.backend
        return self._backend

    @backend.setter
    def backend(self, value: ResultBackend) -> None:
        self._backend = value

    @property
    def task_id(self) -> str:
        return self.id

    # -- reading ----------------------------------------------------------------------------
    def _meta(self) -> Meta:
        if self._cache is not None:
            return self._cache
        meta = self.backend.get(self.id) or {"task_id": self.id, "status": states.PENDING, "result": None}
        if meta.get("status") in states.READY_STATES:
            self._cache = meta
        return meta

    @property
    def state(self) -> str:
        return str(self._meta().get("status", states.PENDING))

    status = state

    @property
    def info(self) -> Any:
        meta = self._meta()
        if meta.get("status") in states.EXCEPTION_STATES:
            return dict_to_exception(meta.get("result"))
        return meta.get("result")

    result = info

    @property
    def traceback(self) -> str | None:
        return self._meta().get("traceback")

    @property
    def date_done(self) -> dt.datetime | None:
        value = self._meta().get("date_done")
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else value

    @property
    def retries(self) -> int | None:
        return self._meta().get("retries")

    @property
    def name(self) -> str | None:
        return self._meta().get("name") or self.task_name

    @property
    def args(self) -> Any:
        return self._meta().get("args")

    @property
    def kwargs(self) -> Any:
        return self._meta().get("kwargs")

    @property
    def worker(self) -> str | None:
        return self._meta().get("worker")

    @property
    def queue(self) -> str | None:
        return self._meta().get("queue")

    @property
    def children(self) -> list[Any] | None:
        return self._meta().get("children")

    @property
    def parent(self) -> AsyncResult[Any] | None:
        if self._parent is not None:
            return self._parent
        parent_id = self._meta().get("parent_id")
        return AsyncResult(parent_id, app=self.app) if parent_id else None

    @parent.setter
    def parent(self, value: AsyncResult[Any] | None) -> None:
        self._parent = value

    def is_known(self) -> bool:
        """True if this id was sent (or has any stored state); False for an id nobody sent."""
        return self.backend.get(self.id) is not None

    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    # -- waiting ----------------------------------------------------------------------------
    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 0.5,
        disable_sync_subtasks: bool = True,
        **_: Any,
    ) -> R:
        """Wait for the outcome; raise the task's exception when ``propagate`` (the default)."""
        if disable_sync_subtasks:
            _assert_not_in_task()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            meta = self._meta()
            status = meta.get("status")
            if status in states.READY_STATES:
                return self._outcome(meta, propagate)
            remaining = 60.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise exceptions.TimeoutError(f"task {self.id} not ready after {timeout}s (state {status})")
            self.backend.wait([self.id], min(remaining, 60.0))

    wait = get

    def _outcome(self, meta: Meta, propagate: bool) -> Any:
        status = meta.get("status")
        if status in states.PROPAGATE_STATES:
            exc = dict_to_exception(meta.get("result"))
            if propagate:
                raise exc
            return exc
        return meta.get("result")

    def forget(self) -> None:
        self._cache = None
        self.backend.forget([self.id])

    def revoke(self, terminate: bool = False, signal: str | None = None, **kwargs: Any) -> None:
        self.app.control.revoke(self.id, terminate=terminate, signal=signal, **kwargs)

    def as_tuple(self) -> tuple[tuple[str, Any], Any]:
        return ((self.id, self._parent.as_tuple() if self._parent else None), None)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncResult):
            return other.id == self.id
        return other == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.id}>"

    def __str__(self) -> str:
        return self.id


class EagerResult(AsyncResult[R]):
    """The outcome of ``apply()``: already known, never read from a backend."""

    def __init__(self, id: str, value: Any, state: str, traceback: str | None = None, name: str | None = None) -> None:  # noqa: A002
        self.id = id
        self._value = value
        self._state = state
        self._traceback = traceback
        self.task_name = name
        self._parent = None
        self._cache = None

    @property
    def state(self) -> str:
        return self._state

    status = state

    @property
    def info(self) -> Any:
        return self._value

    result = info

    @property
    def traceback(self) -> str | None:
        return self._traceback

    def ready(self) -> bool:
        return True

    def is_known(self) -> bool:
        return True

    def get(self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5,
            disable_sync_subtasks: bool = True, **_: Any) -> R:
        if self._state in states.PROPAGATE_STATES and propagate:
            raise self._value
        value: R = self._value
        return value

    wait = get

    def forget(self) -> None:
        return None

    def __reduce__(self) -> tuple[Any, ...]:
        return EagerResult, (self.id, self._value, self._state, self._traceback, self.task_name)


class ResultSet:
    """Several results waited on together."""

    def __init__(self, results: Sequence[AsyncResult[Any]], app: Celery | None = None) -> None:
        self.results = list(results)
        self._app = app

    def __reduce__(self) -> tuple[Any, ...]:
        return ResultSet, (self.results,)

    def __iter__(self) -> Iterator[AsyncResult[Any]]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> AsyncResult[Any]:
        return self.results[index]

    def ready(self) -> bool:
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        return any(r.failed() for r in self.results)

    def waiting(self) -> bool:
        return not self.ready()

    def completed_count(self) -> int:
        return sum(1 for r in self.results if r.successful())

    def get(self, timeout: float | None = None, propagate: bool = True, **kwargs: Any) -> list[Any]:
        return self.join(timeout=timeout, propagate=propagate, **kwargs)

    def join(self, timeout: float | None = None, propagate: bool = True, **kwargs: Any) -> list[Any]:
        """Wait for every result in order and return their values."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            values.append(result.get(timeout=remaining, propagate=propagate, **kwargs))
        return values

    def revoke(self, terminate: bool = False, signal: str | None = None) -> None:
        for result in self.results:
            result.revoke(terminate=terminate, signal=signal)

    def forget(self) -> None:
        for result in self.results:
            result.forget()


class GroupResult(ResultSet):
    """The results of a group, with the group's id (``save``/``restore`` through the backend)."""

    def __init__(
        self, id: str | None = None, results: Sequence[AsyncResult[Any]] = (), parent: AsyncResult[Any] | None = None,  # noqa: A002
        app: Celery | None = None,
    ) -> None:
        super().__init__(results, app=app)
        self.id = id
        self.parent = parent

    def __reduce__(self) -> tuple[Any, ...]:
        return GroupResult, (self.id, self.results, self.parent)

    def save(self, backend: ResultBackend | None = None) -> GroupResult:
        from .app.base import current_app

        app = self._app or current_app()
        (backend or app.backend).save_group(str(self.id), [r.id for r in self.results], expires=app.result_expires)
        return self

    @classmethod
    def restore(cls, id: str, backend: ResultBackend | None = None, app: Celery | None = None) -> GroupResult | None:  # noqa: A002
        from .app.base import current_app

        app = app or current_app()
        ids = (backend or app.backend).restore_group(id)
        if ids is None:
            return None
        return cls(id, [AsyncResult(t, app=app) for t in ids], app=app)

    def delete(self, backend: ResultBackend | None = None) -> None:
        from .app.base import current_app

        app = self._app or current_app()
        (backend or app.backend).delete_group(str(self.id))

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(r.id for r in self.results)}]>"


def result_from_tuple(value: Any, app: Celery | None = None) -> AsyncResult[Any] | GroupResult | None:
    """Rebuild a result from Celery's tuple form (``[[id, parent], children]``)."""
    if not value:
        return None
    (task_id, parent), children = value
    if children:
        return GroupResult(task_id, [result_from_tuple(c, app) for c in children], app=app)  # type: ignore[misc]
    return AsyncResult(task_id, app=app, parent=result_from_tuple(parent, app) if parent else None)  # type: ignore[arg-type]


__all__ = ["AsyncResult", "EagerResult", "GroupResult", "ResultSet", "result_from_tuple"]
