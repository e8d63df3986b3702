"""Importing what settings name: config objects, task modules, Django's installed apps."""

from __future__ import annotations

import importlib
from typing import Any


def import_object(path: str) -> Any:
    """``"module"``, ``"module.attr"`` or ``"module:attr.sub"`` to the object it names."""
    module, sep, attr = path.partition(":")
    if not sep:
        module, _, attr = path.rpartition(".")
        try:
            return importlib.import_module(path)
        except ImportError:
            if not module:
                raise
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def import_related(package: str, related_name: str) -> None:
    """Import ``<package>.<related_name>`` if it exists (a package without tasks is fine)."""
    try:
        importlib.import_module(f"{package}.{related_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.{related_name}":
            raise


def django_installed_apps() -> list[str]:
    """Django's INSTALLED_APPS packages, or nothing when Django is not in use."""
    try:
        from django.apps import apps  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional dependency
    except ImportError:
        return []
    return [config.name for config in apps.get_app_configs()]
