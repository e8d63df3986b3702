"""Exceptions raised by celeriac, with Celery's names so ``except`` clauses carry over.

The tree::

    CeleriacError
    ├── ImproperlyConfigured          bad setting, bad URL, unknown option (raised at start)
    ├── ContentDisallowed             a serializer that is not in ``accept_content``
    ├── EncodeError                   arguments that cannot be serialized (nothing is sent)
    │   └── MessageTooLarge           payload above ``task_message_max_size``
    ├── DecodeError                   a message that cannot be decoded (goes to dead-letter)
    ├── NotRegistered                 unknown task name
    ├── TaskError
    │   ├── Retry                     raised by ``Task.retry`` to ask for a later run
    │   ├── Reject                    raised by a task to reject its message
    │   ├── Ignore                    raised by a task to settle nothing
    │   ├── MaxRetriesExceededError
    │   ├── TaskRevokedError
    │   ├── WorkerLostError           the process running the task died
    │   ├── ChordError                a chord header task failed
    │   ├── TimeLimitExceeded         hard time limit
    │   └── QueueNotFound
    ├── SoftTimeLimitExceeded         raised inside the task at the soft limit
    ├── TimeoutError                  ``AsyncResult.get`` waited too long
    └── BrokerConnectionError         the broker cannot be reached
"""

from __future__ import annotations

import builtins
from typing import Any


class CeleriacError(Exception):
    """Base of every celeriac error."""


class ImproperlyConfigured(CeleriacError, ValueError):
    """A setting, URL or option is wrong; the message says what to write instead."""


class ContentDisallowed(CeleriacError):
    """The message uses a serializer the application does not accept."""


class EncodeError(CeleriacError, TypeError):
    """Arguments or results could not be serialized."""


class MessageTooLarge(EncodeError):
    """The encoded message is larger than ``task_message_max_size``."""


class DecodeError(CeleriacError):
    """A message body could not be decoded."""


class NotRegistered(CeleriacError, KeyError):
    """No task of that name is registered."""

    def __str__(self) -> str:
        return f"task {self.args[0]!r} is not registered" if self.args else "task not registered"


class TaskError(CeleriacError):
    """Base of errors about one task."""


class Retry(TaskError):
    """Raised by :meth:`Task.retry`; the worker re-sends the task with a new eta."""

    def __init__(
        self,
        message: str | None = None,
        exc: BaseException | None = None,
        when: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.message = message
        self.exc = exc
        self.when = when
        self.sig_args: tuple[Any, ...] | None = kwargs.get("sig_args")
        self.sig_kwargs: dict[str, Any] | None = kwargs.get("sig_kwargs")
        self.options: dict[str, Any] = dict(kwargs.get("options") or {})
        super().__init__(message, exc, when)

    def humanize(self) -> str:
        return f"in {self.when}s" if self.when is not None else "now"

    def __str__(self) -> str:
        if self.message:
            return self.message
        reason = f": {self.exc!r}" if self.exc is not None else ""
        return f"Retry {self.humanize()}{reason}"


class Reject(TaskError):
    """Raised by a task to reject (dead-letter or requeue) its own message."""

    def __init__(self, reason: Any = None, requeue: bool = False) -> None:
        self.reason = reason
        self.requeue = requeue
        super().__init__(reason, requeue)


class Ignore(TaskError):
    """Raised by a task that has settled its own state; the worker stores nothing."""


class MaxRetriesExceededError(TaskError):
    """The task asked to retry more than ``max_retries`` times."""


class TaskRevokedError(TaskError):
    """The task was revoked (or expired) before it could finish."""


class WorkerLostError(TaskError):
    """The process running the task died, or the message was delivered too often."""


class ChordError(TaskError):
    """A task in a chord header failed, so the callback cannot run."""


class TimeLimitExceeded(TaskError):
    """The task ran past its hard time limit and was stopped."""


class QueueNotFound(TaskError, KeyError):
    """A queue named in routing is not known."""


class SoftTimeLimitExceeded(CeleriacError):
    """Raised inside a running task when its soft time limit passes."""


class TimeoutError(CeleriacError, builtins.TimeoutError):  # noqa: A001 - Celery's name
    """``AsyncResult.get`` gave up waiting."""


class BrokerConnectionError(CeleriacError, ConnectionError):
    """The broker could not be reached."""


class SecurityError(CeleriacError):
    """A stored result names something that is not an exception class."""


class ChordTimeoutError(TimeoutError):
    """Waiting on a chord gave up."""


__all__ = [name for name, value in dict(globals()).items() if isinstance(value, type) and issubclass(value, BaseException)]
