"""Mapping a task over many items: ``xmap``/``xstarmap`` (one message) and ``chunks`` (a group of them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .canvas import Signature
from .workflows import _copy, group, plain

if TYPE_CHECKING:
    from .app.base import Celery


class xmap(Signature):  # noqa: N801 - Celery's name
    """One message that maps a task over ``it`` inside the worker (``task.map(it)``)."""

    builtin = "celery.map"
    kind = "xmap"

    def __init__(self, task: Any, it: Iterable[Any], app: Celery | None = None, **options: Any) -> None:
        sig = _copy(task, app)
        super().__init__(self.builtin, (), {"task": plain(sig), "it": plain(list(it))}, options,
                         app=app or sig._app, subtask_type=self.kind)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Celery | None) -> xmap:
        return cls(d["kwargs"]["task"], d["kwargs"]["it"], app=app, **dict(d.get("options") or {}))

    def __repr__(self) -> str:
        return f"[{self['kwargs']['task']['task']}(x) for x in {self['kwargs']['it']!r}]"


class xstarmap(xmap):  # noqa: N801 - Celery's name
    """Like :class:`xmap`, with each item spread as positional arguments (``task.starmap(it)``)."""

    builtin = "celery.starmap"
    kind = "xstarmap"

    def __repr__(self) -> str:
        return f"[{self['kwargs']['task']['task']}(*x) for x in {self['kwargs']['it']!r}]"


class chunks(Signature):  # noqa: N801 - Celery's name
    """Split ``it`` into parts of ``n`` items, one ``starmap`` task per part, run as a group."""

    def __init__(self, task: Any, it: Iterable[Any], n: int, app: Celery | None = None, **options: Any) -> None:
        if int(n) < 1:
            raise ValueError(f"chunks needs n >= 1, got {n!r}")
        sig = _copy(task, app)
        super().__init__("celery.chunks", (), {"task": plain(sig), "it": plain(list(it)), "n": int(n)}, options,
                         app=app or sig._app, subtask_type="chunks")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Celery | None) -> chunks:
        kw = d["kwargs"]
        return cls(kw["task"], kw["it"], kw["n"], app=app, **dict(d.get("options") or {}))

    def group(self) -> group:
        kw = self["kwargs"]
        items, size = kw["it"], kw["n"]
        parts = [items[i:i + size] for i in range(0, len(items), size)]
        return group([xstarmap(kw["task"], part, app=self._app) for part in parts], app=self._app)

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        return self.group().apply_async(args, kwargs, **{**self.options, **options})

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        return self.group().apply(args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)


def register_builtins(app: Celery) -> None:
    """The tasks workers need to run ``xmap``, ``xstarmap`` and ``chunks`` messages."""
    from .canvas import register_builtins as register

    register(app)
