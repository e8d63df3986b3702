from celeriac import Celery
import os
import time
# We configure Celery using Redis as the mailbox (broker)
celery_app = Celery(
   "tasks",
   broker="redis://localhost:6379/0",
   backend="redis://localhost:6379/0" # To save the result
)
# How long slow_task sleeps: the tutorial's 10 seconds unless EXAMPLE_TASK_SECONDS says otherwise.
TASK_SECONDS = float(os.environ.get("EXAMPLE_TASK_SECONDS", "10"))
@celery_app.task
def slow_task(name):
   """This is the task that the worker will execute in the background."""
   print(f"Starting heavy task for: {name}")
   time.sleep(TASK_SECONDS)  # Simulates a 10-second process
   return f"Task completed for {name}!"
