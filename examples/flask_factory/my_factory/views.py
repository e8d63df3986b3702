from flask import Blueprint, current_app, jsonify

from .tasks import flaky, greet

bp = Blueprint("tasks", __name__)


@bp.post("/greet/<name>")
def start_greeting(name):
    return jsonify({"task_id": greet.delay(name).id}), 202


@bp.post("/flaky/<int:fail_times>")
def start_flaky(fail_times):
    return jsonify({"task_id": flaky.delay(fail_times).id}), 202


@bp.get("/status/<task_id>")
def task_status(task_id):
    result = current_app.extensions["celeriac"].AsyncResult(task_id)
    value = result.result if result.successful() else None
    return jsonify({"task_id": task_id, "status": result.status, "result": value})
