"""Enqueue a Django task and read its result through Django's own API."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .tasks import build_report


@csrf_exempt
def start_report(request, size):
    result = build_report.enqueue(size)
    return JsonResponse({"result_id": result.id, "status": result.status}, status=202)


def report_result(request, result_id):
    result = build_report.get_result(result_id)
    body = {"result_id": result.id, "status": result.status, "is_finished": result.is_finished}
    if result.status == "SUCCESSFUL":
        body["return_value"] = result.return_value
    return JsonResponse(body)
