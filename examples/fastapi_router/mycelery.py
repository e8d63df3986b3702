from celeriac import Celery
from fastapi import APIRouter
import os
import time
# --- 1. Celery Configuration (The Broker and Backend) ---
# We define the Celery instance.
# broker: The "mailbox" where FastAPI leaves the messages (Redis).
# backend: Where the worker saves the results so FastAPI can read them later (Redis).
celery_app = Celery(
    "tasks",
    broker="redis://localhost:6379/0",
    backend="redis://localhost:6379/0"
)

# How long slow_task sleeps: the tutorial's 10 seconds unless EXAMPLE_TASK_SECONDS says otherwise.
TASK_SECONDS = float(os.environ.get("EXAMPLE_TASK_SECONDS", "10"))

# --- 2. The Worker ---
# This function does NOT execute on the FastAPI server.
# It executes in the separate Celery process (the "basement").
@celery_app.task
def slow_task(name: str):
    print(f"Starting heavy task for: {name}")
    time.sleep(TASK_SECONDS)  # Simulates a 10-second process (e.g., generating a PDF)
    return f"Task completed for {name}!"

celery_router = APIRouter()
# @celery_router.post("/run-task/{name}")
@celery_router.get("/run-task/{name}")
async def run_background_task(name: str):
    """
    Endpoint that receives the request and delegates it to Celery.
    Returns the task ID immediately, without waiting for it to finish.
    """
    # .delay() is the key: it sends the message to Redis and returns instantly.
    task = slow_task.delay(name)

    return {
        "message": "Task received and sent to the worker (basement)",
        "task_id": task.id,
        "info": "Use the ID to check the status at /celery/status/{task_id}"
    }

@celery_router.get("/status/{task_id}")
async def get_task_status(task_id: str):
    """
    Checks the status of a task in the Celery backend (Redis).
    """
    # We get the asynchronous result using the ID
    task_result = celery_app.AsyncResult(task_id)

    return {
        "task_id": task_id,
        "status": task_result.status, # States: PENDING, STARTED, SUCCESS, FAILURE
        "result": task_result.result  # The return value of the slow_task function (if finished)
    }
