"""Schedules: ``crontab`` and intervals (placeholder module, filled in with beat)."""

from __future__ import annotations
