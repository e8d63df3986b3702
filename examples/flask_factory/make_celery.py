"""The worker's entry point: ``celeriac -A make_celery worker --loglevel=info``."""

from my_factory import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celeriac"]
celery_app.autodiscover_tasks(["my_factory"])
