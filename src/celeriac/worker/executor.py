"""Running one task body and classifying what happened. No broker or backend I/O here.

``execute`` (sync) and ``execute_async`` return an :data:`Outcome`; the caller settles it.
Autoretry (``autoretry_for``) turns a listed exception into a retry decision here, so settling
only ever sees Succeeded, Retried, Failed, Rejected or Ignored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Generator
from dataclasses import dataclass, field
from typing import Any

from .. import signals
from ..app.request import Request, pop_request, push_request
from ..app.task import Task
from ..exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded, TimeLimitExceeded
from ..excinfo import format_traceback


@dataclass(frozen=True, slots=True)
class Succeeded:
    value: Any
    runtime: float


@dataclass(frozen=True, slots=True)
class Retried:
    exc: Retry
    countdown: float
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    traceback: str
    runtime: float


@dataclass(frozen=True, slots=True)
class Failed:
    exc: BaseException
    traceback: str
    runtime: float
    internal: bool = False


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: Any
    requeue: bool
    runtime: float


@dataclass(frozen=True, slots=True)
class Ignored:
    runtime: float = 0.0


Outcome = Succeeded | Retried | Failed | Rejected | Ignored


@dataclass
class _Attempt:
    task: Task[Any, Any]
    request: Request
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def _classify(attempt: _Attempt, exc: BaseException) -> Outcome:
    """Turn an exception out of a task body into an outcome (autoretry included)."""
    task, request = attempt.task, attempt.request
    if isinstance(exc, Retry):
        return _retried(attempt, exc)
    if isinstance(exc, Reject):
        return Rejected(exc.reason, exc.requeue, attempt.elapsed())
    if isinstance(exc, Ignore):
        return Ignored(attempt.elapsed())
    if task.autoretry_for and isinstance(exc, tuple(task.autoretry_for)) and not (
        task.dont_autoretry_for and isinstance(exc, tuple(task.dont_autoretry_for))
    ):
        token = push_request(request)
        try:
            task.retry(exc=exc, **dict(task.retry_kwargs))
        except Retry as retry:
            return _retried(attempt, retry)
        except BaseException as final:  # max retries reached: the original error (or MaxRetries)
            return Failed(final, format_traceback(final), attempt.elapsed())
        finally:
            pop_request(token)
    return Failed(exc, format_traceback(exc), attempt.elapsed())


def _retried(attempt: _Attempt, retry: Retry) -> Retried:
    request = attempt.request
    args = retry.sig_args if retry.sig_args is not None else tuple(request.args)
    kwargs = retry.sig_kwargs if retry.sig_kwargs is not None else dict(request.kwargs)
    options = retry.options
    cause = retry.exc if retry.exc is not None else retry
    return Retried(retry, float(retry.when or 0.0), tuple(args), dict(kwargs), dict(options), format_traceback(cause), attempt.elapsed())


def _prerun(task: Task[Any, Any], request: Request) -> None:
    signals.task_prerun.send(sender=task, task_id=request.id, task=task, args=request.args, kwargs=request.kwargs)
    task.before_start(request.id or "", request.args, request.kwargs)


def _postrun(task: Task[Any, Any], request: Request, outcome: Outcome) -> None:
    state = type(outcome).__name__
    retval = outcome.value if isinstance(outcome, Succeeded) else getattr(outcome, "exc", None)
    signals.task_postrun.send(sender=task, task_id=request.id, task=task, args=request.args,
                              kwargs=request.kwargs, retval=retval, state=state)


def execute(task: Task[Any, Any], request: Request) -> Outcome:
    """Run a sync task (or an async one on a fresh event loop) in this thread."""
    if task.is_async:
        return asyncio.run(execute_async(task, request))
    attempt = _Attempt(task, request)
    token = push_request(request)
    try:
        _prerun(task, request)
        value = task(*request.args, **request.kwargs)
        outcome: Outcome = Succeeded(value, attempt.elapsed())
    except Exception as exc:
        outcome = _classify(attempt, exc)
    finally:
        pop_request(token)
    _postrun(task, request, outcome)
    return outcome


async def execute_async(task: Task[Any, Any], request: Request, soft_limit: float | None = None,
                        hard_limit: float | None = None) -> Outcome:
    """Run a task on the running loop; sync tasks go to a thread. Limits cancel or interrupt it."""
    attempt = _Attempt(task, request)
    token = push_request(request)
    try:
        _prerun(task, request)
        if task.is_async:
            value = await _limited(task(*request.args, **request.kwargs), soft_limit, hard_limit)
        else:
            value = await asyncio.to_thread(_call_in_thread, task, request, soft_limit, hard_limit)
        outcome: Outcome = Succeeded(value, attempt.elapsed())
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError) and not isinstance(exc, _HardLimit):
            raise
        outcome = _classify(attempt, TimeLimitExceeded(hard_limit) if isinstance(exc, _HardLimit) else exc)
    finally:
        pop_request(token)
    _postrun(task, request, outcome)
    return outcome


def _call_in_thread(task: Task[Any, Any], request: Request, soft: float | None, hard: float | None) -> Any:
    """A sync task in a pool thread, with its limits raised inside that thread."""
    from .limits import thread_limits

    token = push_request(request)
    try:
        with thread_limits.limit(soft, hard):
            return task(*request.args, **request.kwargs)
    finally:
        pop_request(token)


class _HardLimit(asyncio.CancelledError):
    """Internal: the hard limit cancelled the coroutine."""


class Interruptible:
    """Drives a coroutine so that an exception can be thrown into it at its current ``await``.

    asyncio can only cancel a task; this wrapper turns a cancellation it asked for into
    :class:`SoftTimeLimitExceeded` raised inside the coroutine, which can catch it and clean up.
    """

    def __init__(self, coro: Awaitable[Any]) -> None:
        self.coro = coro.__await__()
        self.pending: BaseException | None = None

    def interrupt(self, exc: BaseException) -> None:
        self.pending = exc
        task = self._task
        if task is not None:
            task.cancel()

    def __await__(self) -> Generator[Any, Any, Any]:
        self._task = asyncio.current_task()
        send: Any = None
        throw: BaseException | None = None
        while True:
            try:
                yielded = self.coro.throw(throw) if throw is not None else self.coro.send(send)
            except StopIteration as stop:
                return stop.value
            try:
                send, throw = (yield yielded), None
            except BaseException as exc:
                send, throw = None, exc
                if isinstance(exc, asyncio.CancelledError) and self.pending is not None:
                    throw, self.pending = self.pending, None
                    if self._task is not None:
                        self._task.uncancel()

    _task: asyncio.Task[Any] | None = None


async def _limited(coro: Awaitable[Any], soft_limit: float | None, hard_limit: float | None) -> Any:
    if not soft_limit and not hard_limit:
        return await coro
    loop = asyncio.get_running_loop()
    driver = Interruptible(coro)
    handles = []
    if soft_limit:
        handles.append(loop.call_later(soft_limit, driver.interrupt, SoftTimeLimitExceeded(f"soft time limit ({soft_limit}s) exceeded")))
    if hard_limit:
        handles.append(loop.call_later(hard_limit, driver.interrupt, _HardLimit(f"hard time limit ({hard_limit}s) exceeded")))
    try:
        return await driver
    finally:
        for handle in handles:
            handle.cancel()
