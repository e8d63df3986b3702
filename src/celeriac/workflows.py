"""Workflow primitives built on signatures: chain (and what the worker does after a task).

A chain travels as Celery does: the first task's message carries ``chain`` = the remaining
steps in reverse order; after success the worker pops the last element and sends it with the
result prepended to its args.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .canvas import Signature, maybe_signature, signature

if TYPE_CHECKING:
    from .app.base import Celery
    from .message import Message
    from .result import AsyncResult


class chain(Signature):  # noqa: N801 - Celery's name
    """Run tasks one after another, each getting the previous result as its first argument."""

    def __init__(self, *tasks: Any, app: Celery | None = None, **options: Any) -> None:
        steps: list[Signature] = []
        for task in tasks[0] if len(tasks) == 1 and isinstance(tasks[0], (list, tuple)) else tasks:
            sig = signature(task)
            steps.extend(sig.tasks if isinstance(sig, chain) else [sig])
        _prepare_ids(steps)
        super().__init__("celery.chain", (), {"tasks": [dict(s) for s in steps]}, options, app=app or (steps[0]._app if steps else None),
                         subtask_type="chain")
        self.tasks: list[Signature] = steps

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> AsyncResult[Any]:
        if not self.tasks:
            raise ValueError("empty chain")
        first, *rest = self.tasks
        opts = {**self.options, **options}
        remaining = [dict(s) for s in reversed(rest)]
        results = first.clone(args, kwargs).apply_async(chain=remaining or None, **opts)
        return _chain_result(self, results)

    def __or__(self, other: Any) -> chain:
        return chain(*self.tasks, other, app=self._app)

    def __call__(self, *args: Any, **kwargs: Any) -> AsyncResult[Any]:
        return self.apply_async(args, kwargs)

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks)


def _chain_result(sig: chain, first: AsyncResult[Any]) -> AsyncResult[Any]:
    """The result of the last step, with ``parent`` links back to the first."""
    from .result import AsyncResult

    # ids of later steps are fixed up front so the caller can wait on the last one
    return first if len(sig.tasks) == 1 else AsyncResult(sig.tasks[-1].options["task_id"], app=first.app, parent=first)


def _prepare_ids(steps: Iterable[Signature]) -> None:
    from .message import new_id

    for step in steps:
        step.options.setdefault("task_id", new_id())


def on_task_success(app: Celery, msg: Message, value: Any) -> None:
    """Send callbacks (``link``) and the next chain step for a task that succeeded."""
    lineage = {"parent_id": msg.id, "root_id": msg.root_id or msg.id}
    for callback in msg.callbacks or ():
        sig = maybe_signature(callback, app)
        if sig is not None:
            sig.apply_async((value,), **lineage)
    if msg.chain:
        steps = list(msg.chain)
        nxt = maybe_signature(steps.pop(), app)
        if nxt is not None:
            nxt.apply_async((value,), chain=steps or None, **lineage)


def on_task_failure(app: Celery, msg: Message, exc: BaseException) -> None:
    """Send errbacks (``link_error``) with the failed task's id, and to the chain's errbacks."""
    lineage = {"parent_id": msg.id, "root_id": msg.root_id or msg.id}
    errbacks = list(msg.errbacks or ())
    for step in msg.chain or ():
        errbacks.extend((step.get("options") or {}).get("link_error") or ())
    for errback in errbacks:
        sig = maybe_signature(errback, app)
        if sig is not None:
            sig.apply_async((msg.id,), **lineage)


def register_builtins(app: Celery) -> None:
    """Tasks the canvas needs on every worker (none yet beyond the chain protocol)."""
