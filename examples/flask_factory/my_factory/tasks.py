"""Tasks that read the Flask config: they run inside the app context the extension pushes."""

import os
import time

from flask import current_app

from celeriac import shared_task


@shared_task
def greet(name):
    time.sleep(float(os.environ.get("EXAMPLE_TASK_SECONDS", "10")))
    return f"{current_app.config['GREETING']}, {name}!"


@shared_task(bind=True, max_retries=3, default_retry_delay=0.2)
def flaky(self, fail_times):
    """Fails ``fail_times`` times, then succeeds: the retry count comes back in the result."""
    if self.request.retries < fail_times:
        raise self.retry(exc=RuntimeError("not yet"))
    return {"retries": self.request.retries, "app": current_app.name}
