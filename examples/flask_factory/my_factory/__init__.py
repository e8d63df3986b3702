"""An application factory: the celeriac app is made from the Flask config by the extension."""

from flask import Flask

from celeriac.contrib.flask import Celeriac


def create_app(test_config=None):
    app = Flask(__name__)
    app.config.from_mapping(
        GREETING="Hello",
        # Nothing configured means one SQLite file in the working directory; set
        # FLASK_CELERY_BROKER_URL=redis://localhost:6379/0 (and the backend) to use Redis.
        CELERY={"task_ignore_result": False},
    )
    app.config.from_prefixed_env()
    if test_config:
        app.config.from_mapping(test_config)
    Celeriac(app)

    from .views import bp

    app.register_blueprint(bp)
    return app
