"""Workflow primitives: chain, group, chord (chunks and xmap/xstarmap are in ``workflows_maps``).

They travel as Celery's signature dicts (``subtask_type`` says which). A chain rides in its first
task's message as ``chain`` = the remaining steps in reverse order; a chord's header tasks carry
``group``/``group_index`` and ``chord`` = the body, and the header is counted in the result
backend (``chord_join``), never by a polling task. ``freeze()`` fixes every id before sending,
so the caller gets the final result object at once. What the worker does after a task settles
is in :func:`celeriac.canvas.after_success` and :func:`celeriac.canvas.after_failure`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .app.publisher import batched_sends
from .canvas import Signature, signature
from .exceptions import ImproperlyConfigured
from .message import new_id

if TYPE_CHECKING:
    from .app.base import Celery
    from .result import GroupResult

#: options saying which group/chord a task belongs to; they go on the task whose result counts
MEMBERSHIP = ("group_id", "group_index", "chord")


def plain(value: Any) -> Any:
    """Signatures as plain dicts and lists, ready for a message."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _many(tasks: tuple[Any, ...]) -> list[Any]:
    """``f(a, b)``, ``f([a, b])`` and ``f(generator)`` all mean the same."""
    if len(tasks) == 1 and not isinstance(tasks[0], Mapping) and isinstance(tasks[0], Iterable):
        return list(tasks[0])
    return list(tasks)


def _copy(task: Any, app: Celery | None) -> Signature:
    """An independent copy, so freezing ids in one workflow never leaks into another."""
    sig = signature(task)
    return from_dict(plain(sig), app or sig._app)


def _app_of(sigs: list[Signature], app: Celery | None) -> Celery | None:
    return app or next((s._app for s in sigs if s._app is not None), None)


def set_membership(sig: Signature, members: Mapping[str, Any]) -> None:
    """Put group/chord membership on the task whose result stands for ``sig``."""
    if isinstance(sig, chain):
        set_membership(sig.tasks[-1], members)
    elif isinstance(sig, chord):
        set_membership(sig.body, members)
    else:
        sig.options.update(members)


def _root_parent(result: Any) -> Any:
    node = result
    while True:
        parent = node._parent if hasattr(node, "_parent") else getattr(node, "parent", None)
        if parent is None:
            return node
        node = parent


def _attach_parent(result: Any, parent: Any) -> None:
    if parent is None:
        return
    root = _root_parent(result)
    if hasattr(root, "_parent"):
        root._parent = parent
    else:
        root.parent = parent


def _pop(options: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: options.pop(k) for k in list(keys) if options.get(k) is not None}


def _link_options(sig: Signature, options: dict[str, Any]) -> None:
    """``link``/``link_error`` given when sending a workflow go where the workflow's methods put them."""
    for key, method in (("link", sig.link), ("link_error", sig.link_error)):
        value = options.pop(key, None)
        for item in value if isinstance(value, (list, tuple)) else ([value] if value is not None else []):
            method(item)


class chain(Signature):  # noqa: N801 - Celery's name
    """Run tasks one after another, each getting the previous result as its first argument."""

    def __init__(self, *tasks: Any, app: Celery | None = None, **options: Any) -> None:
        steps: list[Signature] = []
        for task in _many(tasks):
            sig = _copy(task, app)
            steps.extend(sig.tasks if isinstance(sig, chain) else [sig])
        super().__init__("celery.chain", (), {"tasks": steps}, options, app=_app_of(steps, app), subtask_type="chain")

    @property
    def tasks(self) -> list[Signature]:
        return self["kwargs"]["tasks"]  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Celery | None) -> chain:
        return cls(*[from_dict(t, app) for t in d["kwargs"]["tasks"]], app=app, **dict(d.get("options") or {}))

    def freeze(self) -> Any:
        result = None
        for step in self.tasks:
            frozen = step.freeze()
            _attach_parent(frozen, result)
            result = frozen
        return result

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        if not self.tasks:
            raise ValueError("cannot send an empty chain")
        if self.app.conf.task_always_eager:
            return self.apply(args, kwargs)
        options = {**self.options, **options}
        _link_options(self, options)
        result = self.freeze()
        members = _pop(options, MEMBERSHIP)
        if members:
            set_membership(self, members)
        first, *rest = self.tasks
        remaining = [*(options.pop("chain", None) or ()), *(plain(s) for s in reversed(rest))]
        first.apply_async(args, kwargs, chain=remaining or None, **options)
        return result

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Run every step here, in order (``task_always_eager``)."""
        result: Any = None
        for index, step in enumerate(self.tasks):
            result = step.apply(args, kwargs) if index == 0 else step.apply((result.get(),))
            if not result.successful():
                break
        return result

    def link(self, callback: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.tasks[-1].link(callback)

    def link_error(self, errback: Mapping[str, Any]) -> Mapping[str, Any]:
        for step in self.tasks:
            step.link_error(errback)
        return errback

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def __or__(self, other: Any) -> Any:
        return chain(*self.tasks, other, app=self._app)

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks)


class group(Signature):  # noqa: N801 - Celery's name
    """Run tasks in parallel; the result is a :class:`GroupResult` in the tasks' order."""

    def __init__(self, *tasks: Any, app: Celery | None = None, **options: Any) -> None:
        sigs = [_copy(t, app) for t in _many(tasks)]
        super().__init__("celery.group", (), {"tasks": sigs}, options, app=_app_of(sigs, app), subtask_type="group")

    @property
    def tasks(self) -> list[Signature]:
        return self["kwargs"]["tasks"]  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Celery | None) -> group:
        return cls([from_dict(t, app) for t in d["kwargs"]["tasks"]], app=app, **dict(d.get("options") or {}))

    def freeze(self) -> GroupResult:
        from .result import GroupResult

        group_id = self.options.setdefault("group_id", new_id())
        results = []
        for index, task in enumerate(self.tasks):
            results.append(task.freeze())
            set_membership(task, {"group_id": group_id, "group_index": index})
        return GroupResult(group_id, results, app=self.app)

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        if self.app.conf.task_always_eager:
            return self.apply(args, kwargs)
        options = {**self.options, **options}
        rest = options.pop("chain", None)
        if rest:  # a group followed by more steps is a chord whose body is the next step
            body = from_dict(rest[-1], self.app)
            return chord(self, body, app=self._app).apply_async(args, kwargs, chain=rest[:-1] or None, **options)
        _pop(options, MEMBERSHIP)
        result = self.freeze()
        with batched_sends():  # one broker call per few hundred tasks, not one per task
            for task in self.tasks:
                task.apply_async(args, kwargs, **options)
        return result

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> GroupResult:
        from .result import GroupResult

        group_id = self.options.get("group_id") or new_id()
        return GroupResult(group_id, [t.apply(args, kwargs) for t in self.tasks], app=self.app)

    def link(self, callback: Mapping[str, Any]) -> Mapping[str, Any]:
        for task in self.tasks:
            task.link(callback)
        return callback

    def link_error(self, errback: Mapping[str, Any]) -> Mapping[str, Any]:
        for task in self.tasks:
            task.link_error(errback)
        return errback

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def __or__(self, other: Any) -> Any:
        other = signature(other)
        if type(other) is Signature:
            return chord(self, other, app=self._app)
        return chain(self, other, app=self._app)

    def __len__(self) -> int:
        return len(self.tasks)

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(t) for t in self.tasks)}])"


class chord(Signature):  # noqa: N801 - Celery's name
    """Run the header in parallel, then the body with the list of header results."""

    def __init__(self, header: Any, body: Any = None, args: Any = None, kwargs: Any = None, app: Celery | None = None,
                 **options: Any) -> None:
        tasks = header.tasks if isinstance(header, group) else _many((header,))
        if isinstance(header, group) and header.options.get("group_id"):
            options.setdefault("group_id", header.options["group_id"])
        sigs = [_copy(t, app) for t in tasks]
        body_sig = _copy(body, app) if body is not None else None
        super().__init__("celery.chord", args, {"header": sigs, "body": body_sig, **dict(kwargs or {})}, options,
                         app=_app_of([*sigs, *([body_sig] if body_sig else [])], app), subtask_type="chord")

    @property
    def tasks(self) -> list[Signature]:
        return self["kwargs"]["header"]  # type: ignore[no-any-return]

    @property
    def body(self) -> Signature:
        return self["kwargs"]["body"]  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Celery | None) -> chord:
        kw = d["kwargs"]
        body = from_dict(kw["body"], app) if kw.get("body") else None
        return cls([from_dict(t, app) for t in kw["header"]], body, app=app, **dict(d.get("options") or {}))

    def freeze(self) -> Any:
        header = group(app=self._app, group_id=self.options.setdefault("group_id", new_id()))
        header["kwargs"]["tasks"] = self.tasks  # the same signatures, so their ids stick
        body_result = self.body.freeze()
        _attach_parent(body_result, header.freeze())
        return body_result

    def apply_async(self, args: Any = None, kwargs: Any = None, body: Any = None, **options: Any) -> Any:
        if body is not None:
            self["kwargs"]["body"] = _copy(body, self._app)
        if self.body is None:
            raise ValueError("a chord needs a body: chord(header)(body) or chord(header, body)")
        if self.app.conf.task_always_eager:
            return self.apply(args, kwargs)
        options = {**{k: v for k, v in self.options.items() if k != "group_id"}, **options}
        _link_options(self, options)
        self._prepare_body(options)
        result = self.freeze()
        self._send_header(args, kwargs, options)
        return result

    def _prepare_body(self, options: dict[str, Any]) -> None:
        rest = options.pop("chain", None)
        if rest:
            self.body.options["chain"] = list(rest)
        members = _pop(options, MEMBERSHIP)
        if members:
            set_membership(self.body, members)

    def _send_header(self, args: Any, kwargs: Any, options: dict[str, Any]) -> None:
        app = self.app
        if not app.backend.enabled:
            raise ImproperlyConfigured("chords need a result backend to count the header; set result_backend")
        group_id = self.options["group_id"]
        if not self.tasks:
            self.body.apply_async(([],), **_pop(options, ("parent_id", "root_id")))
            return
        app.backend.chord_init(group_id, len(self.tasks), expires=app.result_expires)
        body = plain(self.body)
        with batched_sends():
            for index, task in enumerate(self.tasks):
                set_membership(task, {"group_id": group_id, "group_index": index, "chord": body})
                task.apply_async(args, kwargs, **options)

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        values = [t.apply(args, kwargs).get() for t in self.tasks]
        return self.body.apply((values,))

    def link(self, callback: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.body.link(callback)

    def link_error(self, errback: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.body.link_error(errback)

    def __call__(self, body: Any = None, **options: Any) -> Any:
        return self.apply_async((), {}, body=body, **options)

    def __or__(self, other: Any) -> Any:
        return chain(self, other, app=self._app)

    def __repr__(self) -> str:
        return f"chord([{', '.join(repr(t) for t in self.tasks)}], {self.body!r})"


def from_dict(d: Mapping[str, Any], app: Celery | None = None) -> Signature:
    """The right signature class for a dict found in a message or a setting."""
    from .workflows_maps import chunks, xmap, xstarmap

    kinds: dict[str, Any] = {"chain": chain, "group": group, "chord": chord, "xmap": xmap, "xstarmap": xstarmap,
                             "chunks": chunks}
    kind = kinds.get(str(d.get("subtask_type") or ""))
    if kind is None:
        return Signature(d, app=app)
    return kind.from_dict(d, app)  # type: ignore[no-any-return]


def on_task_success(app: Celery, msg: Any, value: Any) -> None:
    from .canvas import after_success

    after_success(app, msg, value)


def on_task_failure(app: Celery, msg: Any, exc: BaseException) -> None:
    from .canvas import after_failure

    after_failure(app, msg, exc)


def register_builtins(app: Celery) -> None:
    """The tasks workers need to run ``xmap``, ``xstarmap`` and ``chunks`` messages."""
    from .canvas import register_builtins as register

    register(app)


def __getattr__(name: str) -> Any:
    if name in ("chunks", "xmap", "xstarmap"):
        from . import workflows_maps

        return getattr(workflows_maps, name)
    raise AttributeError(name)


__all__ = ["chain", "chord", "from_dict", "group", "plain", "register_builtins"]
