"""A small project whose tasks are declared with Django's own ``@task`` and run by celeriac workers."""

import importlib.util
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

# Django 6 has django.tasks built in; before that the django_tasks backport provides it.
BACKPORT = [] if importlib.util.find_spec("django.tasks") else ["django_tasks"]
INSTALLED_APPS = [*BACKPORT, "reports"]

ROOT_URLCONF = "tasksite.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": "celeriac.contrib.django.tasks_backend.CeleriacBackend",
        "OPTIONS": {"APP": "tasksite.celery:app"},
    }
}

# Nothing set: one SQLite file in the working directory. For Redis:
# CELERY_BROKER_URL = "redis://localhost:6379/0"
# CELERY_RESULT_BACKEND = "redis://localhost:6379/0"
