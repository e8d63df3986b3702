"""``python run.py``: the Flask development server with the tutorial's blueprint (port from $PORT, default 5000)."""

import os

from flask import Flask
from my_app.celery_views import celery_bp
from my_app.status_views import status_bp

app = Flask(__name__)
app.register_blueprint(celery_bp)
app.register_blueprint(status_bp)

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
