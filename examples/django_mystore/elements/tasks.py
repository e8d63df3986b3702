from celeriac import shared_task
import os
import time
# How long slow_task sleeps: the tutorial's 10 seconds unless EXAMPLE_TASK_SECONDS says otherwise.
TASK_SECONDS = float(os.environ.get("EXAMPLE_TASK_SECONDS", "10"))
@shared_task
def slow_task(name):
    print(f"Starting heavy task for: {name}")
    time.sleep(TASK_SECONDS)  # Simulates a 10-second process (e.g., generating a PDF)
    return f"Task completed for {name}!"
