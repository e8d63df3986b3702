"""The result backend contract: task states, revokes, group/chord counters and leases.

A task's *meta* is Celery's result document::

    {"task_id", "status", "result", "traceback", "children", "date_done",
     + "name", "args", "kwargs", "worker", "retries", "queue", "date_sent", "sent"}

``result`` is already JSON-safe (exceptions as ``{"exc_type", "exc_message", "exc_module"}``);
backends store the document as given, with kombu's JSON tags. ``sent: true`` marks a task that
was recorded at send time, which is how a queued task differs from an id nobody sent.

Semantics every backend keeps (``tests/contract/test_backend_contract.py``):

* ``store`` never lets a worse state overwrite a ready one (a late STARTED never hides SUCCESS).
* ``wait`` returns when any of the ids changes or the timeout passes; it is woken by a
  notification where the store has one, never by a busy loop.
* ``chord_join`` is an atomic counter: exactly one caller, the one that completes the header,
  receives the ordered results.
* ``acquire_lease`` gives a named lease to one owner at a time (beat leadership).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from .. import states

Meta = dict[str, Any]


def may_replace(old: Mapping[str, Any] | None, new_status: str) -> bool:
    """A ready state is final, except that a retried task may run again."""
    if old is None:
        return True
    old_status = old.get("status")
    if old_status in states.READY_STATES:
        return False
    return True


class ResultBackend(abc.ABC):
    """Where workers store outcomes and clients read them."""

    url: str = ""
    #: False for the disabled backend: nothing is stored and ``get()`` explains why
    enabled: bool = True

    # -- task results -----------------------------------------------------------------------
    @abc.abstractmethod
    def store_many(self, metas: Sequence[Meta], *, expires: float | None) -> None:
        """Store several task metas (one round trip where the store allows)."""

    def store(self, meta: Meta, *, expires: float | None) -> None:
        self.store_many([meta], expires=expires)

    @abc.abstractmethod
    def get_many(self, task_ids: Sequence[str]) -> dict[str, Meta]:
        """Metas of the ids that are stored (missing ids are absent from the answer)."""

    def get(self, task_id: str) -> Meta | None:
        return self.get_many([task_id]).get(task_id)

    @abc.abstractmethod
    def wait(self, task_ids: Sequence[str], timeout: float) -> None:
        """Block until one of ``task_ids`` may have changed, or ``timeout`` passes."""

    @abc.abstractmethod
    def forget(self, task_ids: Sequence[str]) -> None:
        """Delete stored results."""

    # -- revokes ----------------------------------------------------------------------------
    @abc.abstractmethod
    def revoke(self, task_ids: Sequence[str], *, ttl: float, terminate: bool = False, signal: str | None = None) -> None:
        """Record revoked ids centrally so every worker, even one started later, honours them."""

    @abc.abstractmethod
    def revoked(self) -> dict[str, dict[str, Any]]:
        """Every revoked id that has not expired, with ``{"terminate", "signal", "at"}``."""

    # -- groups and chords ------------------------------------------------------------------
    @abc.abstractmethod
    def save_group(self, group_id: str, task_ids: Sequence[str], *, expires: float | None) -> None:
        """Remember which tasks make up a group (``GroupResult.save``)."""

    @abc.abstractmethod
    def restore_group(self, group_id: str) -> list[str] | None:
        """The task ids of a saved group."""

    @abc.abstractmethod
    def delete_group(self, group_id: str) -> None:
        """Forget a saved group."""

    @abc.abstractmethod
    def chord_init(self, group_id: str, size: int, *, expires: float | None) -> None:
        """Prepare the counter of a chord header of ``size`` tasks."""

    @abc.abstractmethod
    def chord_join(self, group_id: str, index: int, task_id: str, item: Any) -> list[Any] | None:
        """Record one header result; return all items in index order to the one completing caller."""

    # -- leases -----------------------------------------------------------------------------
    @abc.abstractmethod
    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Take or renew lease ``name`` for ``owner``; False while someone else holds it."""

    @abc.abstractmethod
    def release_lease(self, name: str, owner: str) -> None:
        """Give up a lease held by ``owner``."""

    # -- key/value for schedulers ------------------------------------------------------------
    @abc.abstractmethod
    def kv_get(self, key: str) -> bytes | None:
        """A small persistent value (beat's last-run times)."""

    @abc.abstractmethod
    def kv_set(self, key: str, value: bytes) -> None:
        """Set a small persistent value."""

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional hook
        """Close connections; reopened lazily."""

    def after_fork(self) -> None:
        self.close()
