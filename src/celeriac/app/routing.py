"""Routing: which queue a task goes to, as a pure function of the settings and the call."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Route = Mapping[str, Any] | Callable[..., Any] | Sequence[Any]


def _match_mapping(routes: Mapping[Any, Any], name: str) -> Mapping[str, Any] | None:
    if name in routes:
        return _as_options(routes[name])
    for pattern, options in routes.items():
        if isinstance(pattern, re.Pattern):
            if pattern.match(name):
                return _as_options(options)
        elif isinstance(pattern, str) and any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(name, pattern):
            return _as_options(options)
    return None


def _as_options(value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):
        return {"queue": value}
    return dict(value or {})


def route(
    routes: Route | None,
    name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    options: Mapping[str, Any],
    task: Any = None,
) -> Mapping[str, Any]:
    """Options from ``task_routes`` for a call: a dict (names or globs), a callable, or a list of them."""
    if not routes:
        return {}
    items: Sequence[Any] = routes if isinstance(routes, (list, tuple)) else [routes]
    for item in items:
        if callable(item):
            found = item(name, args, kwargs, options, task=task)
            if found:
                return _as_options(found)
        elif isinstance(item, Mapping):
            found_map = _match_mapping(item, name)
            if found_map:
                return found_map
    return {}
