"""The route table: every URL the dashboard serves, on one screen."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import actions, api, live, pages

STATIC = Path(__file__).parent / "static"


def routes(prefix: str = "") -> list[Route | Mount]:
    table: list[Route | Mount] = [
        # pages (Flower's paths)
        Route("/", pages.overview),
        Route("/dashboard", pages.overview),
        Route("/tasks", pages.tasks),
        Route("/task/{task_id}", pages.task),
        Route("/workers", pages.workers),
        Route("/worker/{name}", pages.worker),
        Route("/broker", pages.broker),
        Route("/queues", pages.broker),
        Route("/schedules", pages.schedules),
        # login
        Route("/login", api.login),
        Route("/oauth2/callback", api.oauth_callback),
        Route("/logout", api.logout),
        # Flower's API
        Route("/api/workers", api.workers),
        Route("/api/tasks", api.tasks),
        Route("/api/task/types", api.task_types),
        Route("/api/task/info/{task_id}", api.task_info),
        Route("/api/task/result/{task_id}", api.task_result),
        Route("/api/task/async-apply/{name}", actions.async_apply, methods=["POST"]),
        Route("/api/task/apply/{name}", actions.async_apply, methods=["POST"]),
        Route("/api/task/send-task/{name}", actions.send_task, methods=["POST"]),
        Route("/api/task/revoke/{task_id}", actions.revoke, methods=["POST"]),
        Route("/api/task/abort/{task_id}", actions.revoke, methods=["POST"]),
        Route("/api/task/rate-limit/{name}", actions.rate_limit, methods=["POST"]),
        Route("/api/task/timeout/{name}", actions.time_limit, methods=["POST"]),
        Route("/api/worker/shutdown/{name}", actions.shutdown, methods=["POST"]),
        Route("/api/worker/pool/grow/{name}", actions.pool_grow, methods=["POST"]),
        Route("/api/worker/pool/shrink/{name}", actions.pool_shrink, methods=["POST"]),
        Route("/api/worker/queue/add-consumer/{name}", actions.add_consumer, methods=["POST"]),
        Route("/api/worker/queue/cancel-consumer/{name}", actions.cancel_consumer, methods=["POST"]),
        Route("/api/queues/length", api.queues),
        # celeriac's own API
        Route("/api/task/retry/{task_id}", actions.retry, methods=["POST"]),
        Route("/api/tasks/retry", actions.bulk_retry, methods=["POST"]),
        Route("/api/queues/requeue", actions.requeue, methods=["POST"]),
        Route("/api/charts", api.chart_data),
        Route("/api/live", live.stream),
        Route("/api/openapi.json", api.openapi),
        Route("/metrics", api.prometheus),
        Route("/healthcheck", api.healthcheck),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return [Mount(prefix, routes=table)] if prefix else table
