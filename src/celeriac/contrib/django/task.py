"""``DjangoTask``: sending that waits for the surrounding database transaction to commit.

A view that saves a row and sends a task about it must not let the worker look for the row before
it is committed; ``delay_on_commit`` sends only once the transaction commits (and never if it rolls back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional, untyped

from ...app.task import Task


class DjangoTask(Task[Any, Any]):
    """A task whose sends can be deferred to ``transaction.on_commit``."""

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """``delay`` once the current transaction commits (at once outside a transaction)."""
        transaction.on_commit(lambda: self.delay(*args, **kwargs))

    def apply_async_on_commit(
        self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None, *,
        using: str | None = None, **options: Any,
    ) -> None:
        """``apply_async`` once the transaction on database ``using`` commits.

        Returns nothing: the task id does not exist until the send happens. Pass ``task_id=`` to
        know it in advance.
        """
        transaction.on_commit(lambda: self.apply_async(args, kwargs, **options), using=using)
