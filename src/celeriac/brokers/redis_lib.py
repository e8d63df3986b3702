"""Import redis-py without loading ``importlib.metadata`` and ``redis.asyncio`` for it.

redis-py looks up its own version with ``importlib.metadata.version("redis")`` while it is being
imported (the value is a default argument of its client and connection classes). Importing
``importlib.metadata`` pulls in ``zipfile``, ``email``, ``csv``, ``pathlib``, ``shutil``, ``tempfile``
and the compression modules: about 3 MiB of memory in every process, paid again by each prefork
child. During ``import redis`` a stand-in module answers ``version()`` from the name of the
``<name>-<version>.dist-info`` directory, the way installers write it; whenever that is not
conclusive, and for any other attribute, the real ``importlib.metadata`` is imported and used.
Likewise ``redis/__init__`` imports redis-py's asyncio client (another 0.6 MiB) that celeriac
does not use: ``redis.asyncio`` is a stand-in that imports the real module when one of its
attributes is first read, and ``import redis.asyncio`` anywhere later loads the real one as usual.
Stand-ins are only in ``sys.modules`` while redis-py is imported, and only for modules that
nothing had loaded before.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import types
from collections.abc import Iterator
from typing import Any

_METADATA = "importlib.metadata"
_ASYNCIO = "redis.asyncio"


def _real(name: str) -> Any:
    """The real module ``name``, imported now if only its stand-in was there."""
    if isinstance(sys.modules.get(name), _StandIn):
        del sys.modules[name]
    return importlib.import_module(name)


def _dist_info_version(name: str) -> str | None:
    """The version from the first ``<name>-<version>.dist-info`` on ``sys.path``; None if unsure."""
    prefix = name.replace("-", "_").replace(".", "_").lower() + "-"
    for entry in sys.path:
        try:
            items = os.listdir(entry or ".")
        except FileNotFoundError:
            continue
        except OSError:  # a zip file or an unreadable directory: let importlib.metadata decide
            return None
        found = [item for item in items if item.lower().startswith(prefix)]
        if not found:
            continue
        if len(found) == 1 and found[0].lower().endswith(".dist-info"):
            version = found[0][len(prefix):-len(".dist-info")]
            return version if version and "-" not in version else None
        return None  # egg-info, several candidates, or a look-alike: not conclusive
    return None


def _version(name: str) -> str:
    found = _dist_info_version(name)
    if found is not None:
        return found
    version: str = _real(_METADATA).version(name)
    return version


class _StandIn(types.ModuleType):
    """Takes a module's place in ``sys.modules`` while redis-py is imported; any attribute it does
    not define itself comes from the real module, imported on that first use."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(_real(self.__name__), attr)


@contextlib.contextmanager
def _standing_in(*stand_ins: _StandIn) -> Iterator[None]:
    placed = [module for module in stand_ins if module.__name__ not in sys.modules]
    for module in placed:
        sys.modules[module.__name__] = module
    try:
        yield
    finally:
        for module in placed:
            if sys.modules.get(module.__name__) is module:
                del sys.modules[module.__name__]


class _MetadataStandIn(_StandIn):
    """``importlib.metadata`` while redis-py is imported: ``version()`` answered here."""

    version = staticmethod(_version)


_metadata = _MetadataStandIn(_METADATA, "Answers version() while redis-py is imported; everything else is importlib.metadata's.")
#: redis-py's asyncio client (``redis.asyncio``), unused here, is imported only when something touches it
_asyncio = _StandIn(_ASYNCIO, "redis-py's asyncio client, imported on first use.")

with _standing_in(*(() if "redis" in sys.modules else (_metadata, _asyncio))):
    import redis  # noqa: E402  # the stand-ins must be in place first

__all__ = ["redis"]
