"""The status endpoint the tutorial suggests adding: PENDING until the worker stores the outcome."""

from flask import Blueprint, jsonify

from my_app.tasks import celery_app

status_bp = Blueprint("status_views", __name__)


@status_bp.route("/status/<task_id>")
def task_status(task_id):
    result = celery_app.AsyncResult(task_id)
    return jsonify({"task_id": task_id, "status": result.status, "result": result.result})
