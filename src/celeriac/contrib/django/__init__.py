"""Django: settings under the ``CELERY`` namespace, tasks found in ``INSTALLED_APPS``, sends tied to commits.

The project layout Django users already have works as it is::

    # mystore/celery.py
    app = Celery("mystore")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.autodiscover_tasks()

:func:`use_django` makes an app Django-aware: Django is set up before tasks are imported (a worker
imports ``mystore.celery`` without ``manage.py``), tasks get :class:`DjangoTask` as their base
(``delay_on_commit``), and database connections are tidied around each task as a request would.

``celeriac.contrib.django.tasks_backend.CeleriacBackend`` runs Django's own ``@task`` functions
(``django.tasks``, or the ``django_tasks`` backport) on celeriac workers.
"""

from __future__ import annotations

from .setup import django_configured, setup_django, use_django
from .task import DjangoTask

__all__ = ["DjangoTask", "django_configured", "setup_django", "use_django"]
