"""The built-in monitoring dashboard (``celeriac -A proj flower``): history, live pages, Flower's API."""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
