# celery_app/config.py

from celeriac import Celery

app = Celery(
    "tasks",
    broker="redis://localhost:6379/0", # Message Broker URL
    backend="redis://localhost:6379/0", # Backed Results URL
    include=["celery_app.tasks"],
)
