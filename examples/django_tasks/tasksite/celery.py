import os

from celeriac import Celery
from celeriac.contrib.django import use_django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tasksite.settings")

app = Celery("tasksite")
app.config_from_object("django.conf:settings", namespace="CELERY")
use_django(app)
app.autodiscover_tasks()
