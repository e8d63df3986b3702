from flask import Blueprint, jsonify
from my_app.tasks import slow_task
# We define a Blueprint for Celery-related routes
celery_bp = Blueprint('celery_views', __name__)
@celery_bp.route("/run-task/<name>", methods=["POST", "GET"])
def run_background_task(name):
    # .delay() tells Python: "Don't execute this here, send it to the worker"
    # This is asynchronous: Flask responds immediately to the user.
    task = slow_task.delay(name)

    return jsonify({
        "message": "Task received and sent to the basement",
        "task_id": task.id
    })
