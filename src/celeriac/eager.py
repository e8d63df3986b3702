"""``Task.apply()`` and ``task_always_eager``: run a task here, retries included, no broker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import states
from .app.request import Request
from .excinfo import exception_to_dict
from .message import new_id
from .worker.executor import Failed, Ignored, Rejected, Retried, Succeeded, execute

if TYPE_CHECKING:
    from .app.task import Task
    from .result import EagerResult


def run_eagerly(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> EagerResult[Any]:
    """Run ``task`` until it succeeds, fails or runs out of retries (countdowns are not waited)."""
    from .result import EagerResult

    task_id = options.get("task_id") or new_id()
    retries = int(options.get("retries", 0))
    while True:
        request = Request(id=task_id, task=task.name, args=args, kwargs=kwargs, retries=retries, is_eager=True,
                          called_directly=False, hostname="eager")
        outcome = execute(task, request)
        if isinstance(outcome, Retried):
            retries += 1
            args, kwargs = outcome.args, outcome.kwargs
            continue
        break
    app = task.app
    if isinstance(outcome, Succeeded):
        result: EagerResult[Any] = EagerResult(task_id, outcome.value, states.SUCCESS, name=task.name)
        _maybe_store(app, task_id, states.SUCCESS, outcome.value, None, task.name)
        return result
    if isinstance(outcome, Failed):
        if app.conf.task_eager_propagates or options.get("throw"):
            raise outcome.exc
        _maybe_store(app, task_id, states.FAILURE, exception_to_dict(outcome.exc), outcome.traceback, task.name)
        return EagerResult(task_id, outcome.exc, states.FAILURE, outcome.traceback, name=task.name)
    if isinstance(outcome, (Rejected, Ignored)):
        return EagerResult(task_id, None, states.IGNORED if isinstance(outcome, Ignored) else states.REJECTED, name=task.name)
    raise AssertionError(f"unexpected outcome {outcome!r}")


def _maybe_store(app: Any, task_id: str, state: str, result: Any, traceback: str | None, name: str) -> None:
    if app.conf.task_store_eager_result:
        app.backend.store({"task_id": task_id, "status": state, "result": result, "traceback": traceback,
                           "children": [], "date_done": app.now().isoformat(), "name": name}, expires=app.result_expires)
