"""Task arguments and results containing HTML or script are shown as text in headless chromium.

A real worker runs a task whose arguments carry ``<script>`` and ``<img onerror>``; the tasks list,
the task page and a reflected query string must show the text literally and never run it.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

import celeriac
from tests.workers import worker_process, write_module

from .test_browser import PASSWORD, USER, Dashboard, browser, page  # noqa: F401 - fixtures used by name

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

SCRIPT = "<script>window.__pwned=1</script>"
IMAGE = '<img src=x onerror="window.__pwned=2">'
HANDLER = "\" autofocus onfocus=\"window.__pwned=3"

SOURCE = """
    import celeriac

    app = celeriac.Celery("tasks", broker="{url}", backend="{url}", result_extended=True)

    @app.task(name="tasks.echo")
    def echo(text, note=None):
        return {{"echo": text, "note": note}}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """``tasks.py`` for the worker and the dashboard processes; this process only sends, by name."""
    cwd = tmp_path_factory.mktemp("xss")
    url = f"sqlite:///{cwd / 'broker.sqlite3'}"
    write_module(cwd, "tasks", SOURCE.format(url=url))
    client = celeriac.Celery("client", broker=url, backend=url, set_as_current=False)
    dash = Dashboard(cwd, f"sqlite:///{cwd / 'history.sqlite3'}")
    dash.start()
    yield cwd, client, dash
    dash.stop()
    client.close()


def not_pwned(pg) -> None:
    assert pg.evaluate("() => typeof window.__pwned") == "undefined"


def test_script_in_task_arguments_is_shown_as_text(page, project):  # noqa: F811 - the imported fixture
    cwd, client, dash = project
    with worker_process("tasks", cwd=cwd, args=["-P", "solo"]):
        result = client.send_task("tasks.echo", (SCRIPT + IMAGE,), {"note": HANDLER})
        assert result.get(timeout=30)["echo"] == SCRIPT + IMAGE
    page.goto(dash.url + "/tasks")
    expect(page.locator(f'tr[data-uuid="{result.id}"]')).to_contain_text("SUCCESS")
    expect(page.locator(f'tr[data-uuid="{result.id}"]')).to_contain_text(SCRIPT)
    not_pwned(page)
    page.goto(f"{dash.url}/task/{result.id}")
    expect(page.locator("#task-args")).to_contain_text(SCRIPT)
    expect(page.locator("#task-args")).to_contain_text("<img src=x onerror=")
    expect(page.locator("#task-kwargs")).to_contain_text("onfocus=")
    expect(page.locator("#task-result")).to_contain_text("onerror=")
    assert page.locator("#task-body img").count() == 0
    not_pwned(page)


@pytest.mark.parametrize("path", [f"/tasks?search={quote(SCRIPT)}", f"/tasks?since={quote(HANDLER)}",
                                  f"/task/{quote(SCRIPT, safe='')}", f"/worker/{quote(IMAGE, safe='')}",
                                  f"/tasks?state={quote(IMAGE)}&name={quote(SCRIPT)}"])
def test_script_in_the_address_is_not_reflected_into_the_page(page, project, path):  # noqa: F811
    _, _, dash = project
    page.goto(dash.url + path)
    page.wait_for_load_state("load")
    not_pwned(page)
