"""Signatures and workflow primitives (chain, group, chord, ...).

A signature is a dict with Celery's keys (``task``, ``args``, ``kwargs``, ``options``,
``subtask_type``, ``immutable``), so it travels in messages as is.

The worker calls :func:`after_success` and :func:`after_failure` when it settles a task; they
send what the message's ``callbacks``/``errbacks``/``chain``/``chord`` ask for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import states
from .app.registry import current_app
from .message import new_id
from .result import AsyncResult

if TYPE_CHECKING:
    from .app.base import Celery
    from .message import Message


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
        new_args, new_kwargs = self._call_arguments(args, kwargs)
        sig = Signature(dict(self), app=self._app)
        sig.update(args=new_args, kwargs=new_kwargs, options={**self.options, **options})
        return sig

    def _call_arguments(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None) -> tuple[list[Any], dict[str, Any]]:
        """The args and kwargs of a call with ``args`` prepended (unless immutable) and ``kwargs`` merged."""
        if self.get("immutable"):
            return self.args, self.kwargs
        own = self.get("args") or ()
        new_args = [*args, *own] if args else list(own)
        return new_args, {**(self.get("kwargs") or {}), **(kwargs or {})}

    @property
    def id(self) -> str | None:  # noqa: A003 - Celery's name
        return self.options.get("task_id")

    def freeze(self) -> Any:
        """Fix the task id now, so the result can be known before sending (chains, chords)."""
        options = self["options"]
        task_id = options.get("task_id")
        if task_id is None:
            task_id = options["task_id"] = new_id()
        return AsyncResult(task_id, app=self.app)

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
        # what ``self.clone(args, kwargs, **options)`` would hold, without building the copy
        call_args, call_kwargs = self._call_arguments(args, kwargs)
        opts = {**self["options"], **options}
        opts.pop("subtask_type", None)
        app, name = self.app, self.name
        task = app._tasks.get(name)
        if task is not None:
            return task.apply_async(call_args, call_kwargs, **opts)
        return app.send_task(name, call_args, call_kwargs, **opts)

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
    """Celery's ``signature()``: from a name, a task, or a dict (chains, groups and chords included)."""
    if isinstance(varies, Signature):
        return varies
    if isinstance(varies, Mapping):
        from .workflows import from_dict

        return from_dict(varies, kwargs.get("app"))
    return Signature(varies, *args, **kwargs)


subtask = signature


def maybe_signature(value: Any, app: Celery | None = None) -> Signature | None:
    """A signature from a dict (as found in a message), bound to ``app``; None stays None."""
    if value is None:
        return None
    if isinstance(value, Mapping) and not isinstance(value, Signature):
        from .workflows import from_dict

        return from_dict(value, app)
    sig = signature(value)
    if app is not None:
        sig._app = app
    return sig


def after_success(app: Celery, msg: Message, value: Any) -> None:
    """Send the callbacks, the next chain step, and a completed chord's body for a task that succeeded."""
    lineage = _lineage(msg)
    for callback in msg.callbacks or ():
        maybe_signature(callback, app).apply_async((value,), **lineage)  # type: ignore[union-attr]
    if msg.chain:
        steps = list(msg.chain)
        nxt = maybe_signature(steps.pop(), app)
        nxt.apply_async((value,), chain=steps or None, **lineage)  # type: ignore[union-attr]
    if msg.chord:
        _join_chord(app, msg, value)


def after_failure(app: Celery, msg: Message, exc: BaseException) -> None:
    """Call errbacks, fail the chain steps that will never run, and fail a waiting chord's body."""
    from .excinfo import exception_to_dict, format_traceback

    failure = exception_to_dict(exc)
    traceback = format_traceback(exc)
    request = _request_dict(msg)
    for errback in msg.errbacks or ():
        _call_errback(app, errback, request, failure, traceback)
    for step in msg.chain or ():
        _store_failure(app, maybe_signature(step, app), failure, traceback, msg.id)  # type: ignore[arg-type]
    if msg.chord:
        _fail_chord(app, msg, exc)


def _lineage(msg: Message) -> dict[str, Any]:
    return {"parent_id": msg.id, "root_id": msg.root_id or msg.id}


def _join_chord(app: Celery, msg: Message, value: Any) -> None:
    """Count this header result; the one task that completes the header sends the body."""
    if msg.group is None:
        return
    results = app.backend.chord_join(msg.group, int(msg.group_index or 0), msg.id, value)
    if results is not None:
        maybe_signature(msg.chord, app).apply_async((results,), **_lineage(msg))  # type: ignore[union-attr]


def _fail_chord(app: Celery, msg: Message, exc: BaseException) -> None:
    """A header task failed: the body fails with ChordError naming it, once, and its errbacks run."""
    from .exceptions import ChordError
    from .excinfo import exception_to_dict

    body = maybe_signature(msg.chord, app)
    assert body is not None
    body_id = result_id(body)
    stored = app.backend.get(body_id) if body_id and app.backend.enabled else None
    if stored is not None and stored.get("status") == states.FAILURE:
        return
    error = ChordError(f"Dependency {msg.id} raised {exc!r}")
    failure, traceback = exception_to_dict(error), f"{type(error).__name__}: {error}\n"
    _store_failure(app, body, failure, traceback, msg.id)
    request = {"id": body_id, "task": body.name, "args": body.args, "kwargs": body.kwargs, "group": None,
               "parent_id": msg.id, "root_id": msg.root_id or msg.id}
    for errback in _errbacks_of(body):
        _call_errback(app, errback, request, failure, traceback)


def result_id(sig: Signature) -> str | None:
    """The id whose result stands for ``sig`` (the last step of a chain, a chord's body)."""
    kind = sig.get("subtask_type")
    if kind == "chain":
        return result_id(signature(sig["kwargs"]["tasks"][-1]))
    if kind == "chord":
        return result_id(signature(sig["kwargs"]["body"]))
    return sig.options.get("task_id") or sig.options.get("group_id")


def _errbacks_of(sig: Signature) -> list[Any]:
    kind = sig.get("subtask_type")
    if kind == "chain":
        return _errbacks_of(signature(sig["kwargs"]["tasks"][0]))
    return list(sig.options.get("link_error") or ())


def _frozen_ids(sig: Signature) -> list[tuple[str, str]]:
    """(task id, name) of every task ``sig`` would have sent, as far as ids were fixed in advance."""
    kind = sig.get("subtask_type")
    if kind in ("chain", "group"):
        found = [pair for task in sig["kwargs"]["tasks"] for pair in _frozen_ids(signature(task))]
    elif kind == "chord":
        found = _frozen_ids(signature(sig["kwargs"]["body"]))
    else:
        found = [(sig.options["task_id"], sig.name)] if sig.options.get("task_id") else []
    for step in sig.options.get("chain") or ():
        found.extend(_frozen_ids(signature(step)))
    return found


def _store_failure(app: Celery, sig: Signature, failure: Any, traceback: str, parent_id: str) -> None:
    """Mark the tasks that will never run as failed with the cause, so waiting on them raises it."""
    if not app.backend.enabled:
        return
    from .app.sending import utcnow

    metas = [{"task_id": tid, "status": states.FAILURE, "result": failure, "traceback": traceback, "children": [],
              "date_done": utcnow().isoformat(), "name": name, "parent_id": parent_id} for tid, name in _frozen_ids(sig)]
    if metas:
        app.backend.store_many(metas, expires=app.result_expires)


def _request_dict(msg: Message) -> dict[str, Any]:
    return {"id": msg.id, "task": msg.task, "args": list(msg.args), "kwargs": dict(msg.kwargs), "group": msg.group,
            "group_index": msg.group_index, "parent_id": msg.parent_id, "root_id": msg.root_id, "retries": msg.retries}


def _call_errback(app: Celery, errback: Any, request: dict[str, Any], failure: Any, traceback: str) -> None:
    """Old style: ``errback(task_id)``. New style, for a task taking three arguments: ``(request, exc, traceback)``."""
    sig = maybe_signature(errback, app)
    assert sig is not None
    args = (request, failure, traceback) if _takes_three(app, sig.name) else (request["id"],)
    sig.apply_async(args, parent_id=request["id"], root_id=request.get("root_id") or request["id"])


def _takes_three(app: Celery, name: str) -> bool:
    import inspect

    task = app._tasks.get(name)
    if task is None:
        return False
    try:
        params = inspect.signature(task.run).parameters.values()
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.kind in positional) == 3


def register_builtins(app: Celery) -> None:
    """The tasks workers need to run ``xmap``, ``xstarmap`` and ``chunks`` messages.

    The workflow code they use is imported when one of them runs, not by every app that finalizes.
    """

    @app.task(name="celery.map")
    def run_map(task: Any, it: list[Any]) -> list[Any]:
        from .workflows import from_dict

        sig = from_dict(task, app)
        return [sig(item) for item in it]

    @app.task(name="celery.starmap")
    def run_starmap(task: Any, it: list[Any]) -> list[Any]:
        from .workflows import from_dict

        sig = from_dict(task, app)
        return [sig(*item) for item in it]

    @app.task(name="celery.chunks")
    def run_chunks(task: Any, it: list[Any], n: int) -> str | None:
        from .workflows_maps import chunks

        group_id: str | None = chunks(task, it, n, app=app).apply_async().id
        return group_id


def __getattr__(name: str) -> Any:
    if name in ("chain", "group", "chord", "chunks", "xmap", "xstarmap"):
        from . import workflows

        return getattr(workflows, name)
    raise AttributeError(name)
