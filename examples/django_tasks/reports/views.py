"""Enqueue Django tasks and read their results through Django's own API."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .tasks import attempt_number, broken_report, build_report

try:
    from django.tasks import default_task_backend
except ImportError:  # Django < 6: the backport
    from django_tasks import default_task_backend


def _accepted(result):
    return JsonResponse({"result_id": result.id, "status": result.status}, status=202)


@csrf_exempt
def start_report(request, size):
    return _accepted(build_report.enqueue(size))


@csrf_exempt
def start_attempt(request):
    return _accepted(attempt_number.enqueue())


@csrf_exempt
def start_broken(request):
    return _accepted(broken_report.enqueue())


def task_result(request, result_id):
    result = default_task_backend.get_result(result_id)
    body = {"result_id": result.id, "task": result.task.name, "status": result.status, "is_finished": result.is_finished,
            "errors": [error.exception_class_path for error in result.errors]}
    if result.status == "SUCCESSFUL":
        body["return_value"] = result.return_value
    return JsonResponse(body)
