"""The dashboard in headless Debian chromium: what a user does and sees, with a real worker.

Each test saves a screenshot of the page it checks: under ``docs/img/`` when ``CELERIAC_SCREENSHOTS=1``
(to refresh the documentation), otherwise in the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.workers import worker_env, worker_process, write_module

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
IMG = DOCS_IMG if os.environ.get("CELERIAC_SCREENSHOTS") == "1" else Path(tempfile.gettempdir()) / "celeriac-screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
USER, PASSWORD = "admin", "correct horse"

TASKS = """
    import time
    import celeriac

    app = celeriac.Celery("tasks", broker="{url}", backend="{url}", result_extended=True)
    app.conf.beat_schedule = {{"cleanup-every-hour": {{"task": "tasks.add", "schedule": 3600.0, "args": (1, 1)}}}}

    @app.task(name="tasks.add")
    def add(x, y):
        return x + y

    @app.task(name="tasks.report")
    def report(customer, options):
        return {{"customer": customer, "rows": 1200, "options": options}}

    @app.task(name="tasks.boom")
    def boom(value):
        raise ValueError(f"cannot handle {{value!r}}")

    @app.task(bind=True, name="tasks.crunch")
    def crunch(self, n):
        for i in range(n):
            self.update_state(state="PROGRESS", meta={{"current": i, "total": n}})
            time.sleep(0.5)
        return n
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dashboard:
    """``celeriac -A tasks flower`` as a process, so a restart is a real restart."""

    def __init__(self, cwd: Path, db: str) -> None:
        self.cwd, self.db, self.port = cwd, db, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "celeriac", "-A", "tasks", "flower", f"--port={self.port}",
               f"--basic_auth={USER}:{PASSWORD}", f"--db={self.db}"]
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=worker_env(self.cwd), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(f"dashboard did not start: {self.proc.stdout.read() if self.proc.poll() is not None else ''}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("proj")
    url = f"sqlite:///{cwd / 'broker.sqlite3'}"
    write_module(cwd, "tasks", TASKS.format(url=url))
    sys.path.insert(0, str(cwd))
    import tasks  # the same module the worker and the dashboard load

    yield cwd, tasks
    sys.path.remove(str(cwd))
    sys.modules.pop("tasks", None)


@pytest.fixture(scope="module")
def dashboard(project):
    cwd, _ = project
    dash = Dashboard(cwd, f"sqlite:///{cwd / 'history.sqlite3'}")
    dash.start()
    yield dash
    dash.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD},
                                  viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    context.close()


def shot(pg, name: str) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(IMG / f"{name}.png"), full_page=True)


def row(pg, task_id: str):
    return pg.locator(f'tr[data-uuid="{task_id}"]')


def test_basic_auth_login(browser, page, dashboard):
    anonymous = browser.new_context()
    assert anonymous.request.get(dashboard.url + "/tasks").status == 401
    with pytest.raises(playwright_api.Error, match="AUTH"):
        anonymous.new_page().goto(dashboard.url + "/tasks")  # chromium gives up on the challenge
    anonymous.close()
    response = page.goto(dashboard.url + "/tasks")
    assert response.status == 200
    playwright_api.expect(page.get_by_role("link", name="Workers")).to_be_visible()


def test_task_goes_from_queued_to_success_live_and_shows_full_arguments(page, project, dashboard):
    cwd, tasks = project
    page.goto(dashboard.url + "/tasks")
    options = {"format": "csv", "columns": ["date", "amount", "customer"], "note": "x" * 1500}
    result = tasks.report.delay("ACME <Holdings>", options=options)
    playwright_api.expect(row(page, result.id)).to_contain_text("PENDING")
    with worker_process("tasks", cwd=cwd, args=["-c", "1"]):
        playwright_api.expect(row(page, result.id)).to_contain_text("SUCCESS")
        row(page, result.id).locator(f'a[title="{result.id}"]').click()
        playwright_api.expect(page.locator("#task-state")).to_have_text("SUCCESS")
        playwright_api.expect(page.locator("#task-args")).to_contain_text("ACME <Holdings>")
        playwright_api.expect(page.locator("#task-kwargs")).to_contain_text("x" * 1500)
        playwright_api.expect(page.locator("#task-result")).to_contain_text('"rows": 1200')
        shot(page, "task")


def test_progress_bar_moves_while_the_task_runs(page, project, dashboard):
    cwd, tasks = project
    with worker_process("tasks", cwd=cwd, args=["-c", "1"]):
        result = tasks.crunch.delay(8)
        page.goto(f"{dashboard.url}/task/{result.id}")
        bar = page.locator('#task-body [role="progressbar"]')
        playwright_api.expect(bar).to_have_attribute("aria-valuenow", "50")
        shot(page, "task-progress")
        playwright_api.expect(page.locator("#task-state")).to_have_text("SUCCESS")


def test_revoke_a_queued_task_from_the_ui(page, project, dashboard):
    _, tasks = project
    result = tasks.add.delay(20, 22)
    page.goto(f"{dashboard.url}/task/{result.id}")
    playwright_api.expect(page.locator("#task-state")).to_have_text("PENDING")
    page.get_by_role("button", name="Revoke").click()
    playwright_api.expect(page.locator("#toast")).to_contain_text("Revoked")
    playwright_api.expect(page.locator("#task-state")).to_have_text("REVOKED")
    assert result.id in tasks.app.backend.revoked()


def test_retry_a_failed_task_from_the_ui(page, project, dashboard):
    cwd, tasks = project
    with worker_process("tasks", cwd=cwd, args=["-c", "1"]):
        failed = tasks.boom.delay("bad input")
        page.goto(f"{dashboard.url}/task/{failed.id}")
        playwright_api.expect(page.locator("#task-state")).to_have_text("FAILURE")
        playwright_api.expect(page.locator("#task-traceback")).to_contain_text("ValueError")
        page.get_by_role("button", name="Retry").click()
        playwright_api.expect(page.locator("#toast")).to_contain_text("Sent again as")
        again = page.locator("dt:text('Re-sent as') + dd a").first
        playwright_api.expect(again).to_be_visible()
        shot(page, "task-failed")
        again.click()
        playwright_api.expect(page.locator("#task-state")).to_have_text("FAILURE")
        playwright_api.expect(page.locator("#task-args")).to_contain_text("bad input")


def test_worker_goes_offline(page, project, dashboard):
    cwd, _ = project
    page.goto(dashboard.url + "/workers")
    with worker_process("tasks", cwd=cwd, args=["-c", "2", "-n", "shown@host"]) as worker:
        status = page.locator('tr[data-worker="shown@host"] .worker-status')
        playwright_api.expect(status).to_have_text("online")
        shot(page, "workers")
        page.goto(dashboard.url + "/worker/shown@host")
        playwright_api.expect(page.get_by_role("heading", name="Control")).to_be_visible()
        shot(page, "worker")
        page.goto(dashboard.url + "/workers")
        worker.stop()
    playwright_api.expect(status).to_have_text("offline")


def test_overview_queues_and_schedules_pages(page, project, dashboard):
    _, tasks = project
    for i in range(3):
        tasks.add.delay(i, i)
    page.goto(dashboard.url + "/")
    playwright_api.expect(page.locator("#chart-throughput .u-legend")).to_contain_text("finished")
    playwright_api.expect(page.locator("#chart-queues .u-legend")).to_contain_text("celery")
    shot(page, "overview")
    page.goto(dashboard.url + "/tasks")
    playwright_api.expect(page.locator("#tasks-table tbody tr")).not_to_have_count(0)
    shot(page, "tasks")
    page.goto(dashboard.url + "/broker")
    playwright_api.expect(page.locator("td", has_text="celery").first).to_be_visible()
    shot(page, "queues")
    page.goto(dashboard.url + "/schedules")
    playwright_api.expect(page.get_by_text("cleanup-every-hour")).to_be_visible()
    shot(page, "schedules")


def test_phone_layout(browser, dashboard):
    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD},
                                  viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    pg = context.new_page()
    pg.goto(dashboard.url + "/tasks")
    playwright_api.expect(pg.locator("#tasks-table tbody tr").first).to_be_visible()
    width = pg.evaluate("document.documentElement.scrollWidth")
    assert width <= 400  # nothing forces sideways scrolling of the page
    shot(pg, "tasks-phone")
    context.close()


def test_restart_keeps_the_history(page, dashboard):
    page.goto(dashboard.url + "/api/tasks?limit=1000")
    before = set(page.evaluate("() => Object.keys(JSON.parse(document.body.innerText))"))
    assert len(before) >= 5
    dashboard.stop()
    dashboard.start()
    page.goto(dashboard.url + "/api/tasks?limit=1000")
    after = set(page.evaluate("() => Object.keys(JSON.parse(document.body.innerText))"))
    assert before <= after
    page.goto(dashboard.url + "/tasks")
    playwright_api.expect(page.locator("#tasks-table tbody tr")).not_to_have_count(0)
