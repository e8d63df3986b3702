"""The backend used when no result backend is configured: stores nothing, explains on read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from ..exceptions import ImproperlyConfigured
from .base import Meta, ResultBackend

_WHY = (
    "no result backend is configured, so results are not stored; set result_backend "
    "(for example backend='redis://localhost:6379/0' or 'sqlite:///celeriac.sqlite3')"
)


class DisabledBackend(ResultBackend):
    """Accepts writes silently; every read raises with the setting to add."""

    enabled = False
    url = "disabled://"

    def _refuse(self) -> NoReturn:
        raise ImproperlyConfigured(_WHY)

    def store_many(self, metas: Sequence[Meta], *, expires: float | None) -> None:
        return None

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Meta]:
        self._refuse()

    def wait(self, task_ids: Sequence[str], timeout: float) -> None:
        self._refuse()

    def forget(self, task_ids: Sequence[str]) -> None:
        return None

    def revoke(self, task_ids: Sequence[str], *, ttl: float, terminate: bool = False, signal: str | None = None) -> None:
        return None

    def revoked(self) -> dict[str, dict[str, Any]]:
        return {}

    def save_group(self, group_id: str, task_ids: Sequence[str], *, expires: float | None) -> None:
        self._refuse()

    def restore_group(self, group_id: str) -> list[str] | None:
        self._refuse()

    def delete_group(self, group_id: str) -> None:
        return None

    def chord_init(self, group_id: str, size: int, *, expires: float | None) -> None:
        self._refuse()

    def chord_join(self, group_id: str, index: int, task_id: str, item: Any) -> list[Any] | None:
        self._refuse()

    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        self._refuse()

    def release_lease(self, name: str, owner: str) -> None:
        return None

    def kv_get(self, key: str) -> bytes | None:
        self._refuse()

    def kv_set(self, key: str, value: bytes) -> None:
        self._refuse()
