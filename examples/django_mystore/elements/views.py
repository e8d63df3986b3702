"""Start the tutorial's task and read its status, as JSON."""

from django.http import JsonResponse
from mystore.celery import app

from .tasks import slow_task


def run_task(request, name):
    task = slow_task.delay(name)
    return JsonResponse({"message": "Task received and sent to the worker", "task_id": task.id})


def task_status(request, task_id):
    result = app.AsyncResult(task_id)
    value = result.result if result.successful() else None
    return JsonResponse({"task_id": task_id, "status": result.status, "result": value})
