"""Exceptions to and from Celery's stored form ``{"exc_type", "exc_message", "exc_module"}``."""

from __future__ import annotations

import builtins
import importlib
import traceback as tb
from typing import Any

from . import exceptions
from .message import safe_repr

# Celery names its own exceptions by module; ours answer to both.
_ALIASES = {"celery.exceptions": "celeriac.exceptions", "billiard.exceptions": "celeriac.exceptions"}


def _json_safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return safe_repr(value)


def exception_to_dict(exc: BaseException) -> dict[str, Any]:
    """The JSON form of an exception, as Celery stores it."""
    cls = type(exc)
    return {"exc_type": cls.__qualname__, "exc_message": _json_safe(list(exc.args)), "exc_module": cls.__module__}


def _find_class(module: str, name: str) -> type[BaseException] | None:
    module = _ALIASES.get(module, module)
    try:
        found = getattr(importlib.import_module(module), name, None) if module != "builtins" else getattr(builtins, name, None)
    except Exception:
        found = None
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    return None


def dict_to_exception(data: Any) -> BaseException:
    """Rebuild the exception a task raised; unknown classes are synthesised with the same name."""
    if isinstance(data, BaseException):
        return data
    if not isinstance(data, dict) or "exc_type" not in data:
        return exceptions.CeleriacError(data)
    name = str(data["exc_type"])
    module = str(data.get("exc_module") or "builtins")
    message = data.get("exc_message")
    args = tuple(message) if isinstance(message, (list, tuple)) else (message,)
    cls = _find_class(module, name)
    if cls is None:
        cls = type(name, (exceptions.CeleriacError,), {"__module__": module})
    try:
        return cls(*args)
    except Exception:
        error = cls.__new__(cls)
        error.args = args
        return error


def format_traceback(exc: BaseException) -> str:
    return "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
