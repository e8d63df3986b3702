"""Small helpers that Celery users import from ``celery.utils``."""
